#!/usr/bin/env python3
"""Instructions and heap allocations per conversation call, under callgrind.

usage: instructions.py --workload PATH [--shapes 1x8,4x64,...] [--calls A,B]
                       [--variants c_minimal,...] [--markdown]

For each variant and shape (NUM_MSGxLENGTH) the workload runs twice under
valgrind --tool=callgrind, with A and B calls; (Ir(B) - Ir(A)) / (B - A) is
the instruction count of one call with start-up and set-up cancelled out.
callgrind counts instructions, not time, so the numbers repeat exactly for
the same binary and input. Ratios are against c_minimal, the hand-written C
conversation doing the least possible work.
"""
import argparse
import re
import subprocess
import sys

VARIANTS = ["c_minimal", "c_strdup", "handoff_per_message", "handoff_batch"]
SHAPES = ["1x8", "1x64", "1x511", "4x8", "4x64", "4x511", "16x8", "16x64", "16x511",
          "32x8", "32x64", "32x511"]


def measure(workload, variant, n, length, calls):
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         workload, variant, n, length, str(calls)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if run.returncode != 0:
        raise RuntimeError("%s %s %s failed:\n%s%s" % (variant, n, length, run.stdout, run.stderr))
    collected = re.search(r"Collected : (\d+)", run.stderr)
    allocations = re.search(r"allocations_per_call ([0-9.]+)", run.stdout)
    if not collected or not allocations:
        raise RuntimeError("no counts in callgrind output:\n" + run.stderr)
    return int(collected.group(1)), float(allocations.group(1))


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--calls", default="200,400")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv[1:])
    a, b = (int(x) for x in args.calls.split(","))
    variants = args.variants.split(",")
    rows = []
    for shape in args.shapes.split(","):
        n, length = shape.split("x")
        per_call = {}
        allocs = {}
        for v in variants:
            ir_a, _ = measure(args.workload, v, n, length, a)
            ir_b, alloc = measure(args.workload, v, n, length, b)
            per_call[v] = (ir_b - ir_a) / (b - a)
            allocs[v] = alloc
        rows.append((n, length, per_call, allocs))
        base = per_call.get("c_minimal")
        for v in variants:
            ratio = per_call[v] / base if base else float("nan")
            expected = 1 + int(n)
            print("num_msg=%-3s len=%-4s %-20s %9.1f instr/call  %.2fx c_minimal  "
                  "%.2f allocs/call (1 + answers = %d)"
                  % (n, length, v, per_call[v], ratio, allocs[v], expected))
    if args.markdown:
        print()
        print("| num_msg | len | " + " | ".join(variants) + " | allocs/call (handoff) |")
        print("|---|---|" + "---|" * len(variants) + "---|")
        for n, length, per_call, allocs in rows:
            base = per_call.get("c_minimal")
            cells = ["%.0f (%.2fx)" % (per_call[v], per_call[v] / base) for v in variants]
            handoff_allocs = allocs.get("handoff_batch", allocs.get(variants[-1]))
            print("| %s | %s | %s | %.0f |" % (n, length, " | ".join(cells), handoff_allocs))
    # The allocation target is exact: 1 + the number of answers, for every variant.
    bad = [(n, l, v) for n, l, _, al in rows for v, x in al.items() if abs(x - (1 + int(n))) > 1e-9]
    if bad:
        print("allocation count differs from 1 + answers: %r" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
