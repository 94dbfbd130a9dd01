#!/usr/bin/env python3
"""Instructions of an owner against the C it replaces, under callgrind.

usage: owners_instructions.py --workload [LABEL=]PATH [--workload ...]
                              [--cases strdup:8,strdup:511,...] [--calls A,B]
                              [--limit OP=RATIO ...] [--markdown]

For each case OPERATION:SIZE, runs bench/owners_workload twice (A and B calls)
under valgrind --tool=callgrind with --toggle-collect on raw_OPERATION and
then on handoff_OPERATION: only what runs inside that function counts (malloc,
strlen, memcpy included; the free after it not), and (Ir(B) - Ir(A)) / (B - A)
cancels what the first calls pay once. The numbers repeat exactly.

With --limit OP=RATIO, fails (exit 1) when a case of OP has handoff above
RATIO times raw: the claims bench/README.md makes are checked, not only shown.
"""
import argparse
import subprocess
import re
import sys

CASES = "strdup:8,strdup:511,push_back:1000,zeroed:16,zeroed:1000"


def collected(workload, op, size, calls, function):
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           "--toggle-collect=" + function, workload, op, str(size), str(calls)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return int(re.search(r"Collected : (\d+)", p.stderr).group(1))


def per_call(workload, op, size, a, b, function):
    return (collected(workload, op, size, b, function)
            - collected(workload, op, size, a, function)) / (b - a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", action="append", required=True)
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--calls", default="100,300")
    ap.add_argument("--limit", action="append", default=[])
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    a, b = (int(x) for x in args.calls.split(","))
    limits = dict((k, float(v)) for k, v in (x.split("=") for x in args.limit))
    failed = False
    if args.markdown:
        print("| build | operation | size | raw C | handoff | ratio |")
        print("|---|---|---|---|---|---|")
    for spec in args.workload:
        label, _, path = spec.rpartition("=")
        label = label or path
        for case in args.cases.split(","):
            op, size = case.split(":")
            raw = per_call(path, op, size, a, b, "raw_" + op)
            ours = per_call(path, op, size, a, b, "handoff_" + op)
            ratio = ours / raw
            over = op in limits and ratio > limits[op]
            failed = failed or over
            mark = " OVER %.2f" % limits[op] if over else ""
            if args.markdown:
                print("| %s | `%s` | %s | %.0f | %.0f | %.3f%s |" % (
                    label, op, size, raw, ours, ratio, mark))
            else:
                print("%-10s %-10s %6s  raw %8.1f  handoff %8.1f  %.3fx%s" % (
                    label, op, size, raw, ours, ratio, mark))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
