#!/usr/bin/env python3
"""Instructions and heap allocations per conversation call, under callgrind.

usage: instructions.py --workload [LABEL=]PATH [--workload ...] [--shapes 1x8,32x64h,...]
                       [--calls A,B] [--variants c_minimal,...] [--markdown] [--jobs N]

For each workload build, variant and shape (NUM_MSGxLENGTH, "h" for every
second message an info message) the workload runs twice under
valgrind --tool=callgrind --toggle-collect=<the conversation function>, with A
and B calls: only instructions executed inside the conversation function (and
what it calls: malloc, strlen, memcpy, the handler) are counted, and
(Ir(B) - Ir(A)) / (B - A) cancels whatever the first calls pay once (lazy
symbol binding). The free that follows each call (libpam's side) is not
counted. callgrind counts instructions, not time: the numbers repeat exactly
for the same binary and input.

Fails (exit 1) when any variant's heap allocations per call differ from
1 + the number of answers.

With --profile SHAPE (and one --workload), prints where each variant's
instructions go instead: callgrind_annotate's per-function counts, with the
same two-run subtraction, grouped into the allocator, the answer scan
(strlen/memchr), the copies (memcpy/memset) and the conversation's own code.
"""
import argparse
import concurrent.futures
import re
import subprocess
import sys

C_VARIANTS = ["c_minimal", "c_strdup", "c_correct"]
HANDOFF_VARIANTS = ["handoff_per_message", "handoff_batch"]
VARIANTS = C_VARIANTS + HANDOFF_VARIANTS
SHAPES = ["1x8", "1x511", "4x8", "4x64", "16x64", "32x8", "32x64", "32x511", "32x64h"]


def run(workload, variant, shape, calls, function=None):
    cmd = [workload, variant, shape, str(calls)]
    if function is not None:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               "--toggle-collect=" + function] + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p


def measure(workload, variant, shape, a, b):
    """Instructions per call of the conversation function; allocations per call."""
    probe = run(workload, variant, shape, 0).stdout
    name = re.search(r"^function (.+)$", probe, re.M).group(1)
    # The exact signature: a lambda inside c_function must not toggle again.
    if not name.endswith("_conv"):
        name += "(int, pam_message const**, pam_response**, void*)"
    counts = []
    for calls in (a, b):
        p = run(workload, variant, shape, calls, name)
        collected = re.search(r"Collected : (\d+)", p.stderr)
        if not collected:
            raise RuntimeError("no counts in callgrind output:\n" + p.stderr)
        counts.append(int(collected.group(1)))
    allocs = float(re.search(r"allocations_per_call ([0-9.]+)", p.stdout).group(1))
    expected = int(re.search(r"expected_allocations (\d+)", p.stdout).group(1))
    return (counts[1] - counts[0]) / (b - a), allocs, expected


GROUPS = [
    ("allocator (malloc, calloc, glibc internals, counting wrapper)",
     re.compile(r"malloc|calloc|alloc_perturb|__wrap_|arena|tcache")),
    ("answer scan (strlen, memchr)", re.compile(r"strlen|memchr")),
    ("copies (memcpy, memset)", re.compile(r"memcpy|memmove|memset")),
    ("dynamic linker", re.compile(r"_dl_|dl-|ld-linux")),
]
OWN = "conversation code (validation, loop, handler, hand-over, copies inlined)"


def profile_counts(workload, variant, shape, calls, function):
    """Instructions per function for one run, from callgrind_annotate."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
               "--toggle-collect=" + function, workload, variant, shape, str(calls)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        if p.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), p.stderr))
        ann = subprocess.run(["callgrind_annotate", "--threshold=100", "--show-percs=no", out],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    counts = {}
    for line in ann.splitlines():
        m = re.match(r"^\s*([0-9,]+)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line and ":" in m.group(2):
            counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return counts


def profile(workload, variants, shape, a, b):
    columns = {}
    for v in variants:
        probe = run(workload, v, shape, 0).stdout
        name = re.search(r"^function (.+)$", probe, re.M).group(1)
        if not name.endswith("_conv"):
            name += "(int, pam_message const**, pam_response**, void*)"
        ca = profile_counts(workload, v, shape, a, name)
        cb = profile_counts(workload, v, shape, b, name)
        groups = {}
        for fn in set(ca) | set(cb):
            per_call = (cb.get(fn, 0) - ca.get(fn, 0)) / (b - a)
            group = next((g for g, pattern in GROUPS if pattern.search(fn)), OWN)
            groups[group] = groups.get(group, 0) + per_call
        columns[v] = groups
    print("| %s | " % shape + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for group in [OWN] + [g for g, _ in GROUPS]:
        if all(abs(columns[v].get(group, 0)) < 0.5 for v in variants):
            continue
        print("| %s | " % group + " | ".join("%.0f" % columns[v].get(group, 0) for v in variants) + " |")
    print("| total | " + " | ".join("%.0f" % sum(columns[v].values()) for v in variants) + " |")
    print()


def fmt_ratio(x, base):
    return "%.2f" % (x / base) if base else "-"


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--workload", action="append", required=True)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--calls", default="200,600")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--profile", metavar="SHAPE")
    args = p.parse_args(argv[1:])
    a, b = (int(x) for x in args.calls.split(","))
    variants = args.variants.split(",")
    if args.profile:
        profile(args.workload[0].rpartition("=")[2], variants, args.profile, a, b)
        return 0
    shapes = args.shapes.split(",")
    builds = []
    for w in args.workload:
        label, _, path = w.rpartition("=")
        builds.append((label or path, path))

    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for label, path in builds:
            for shape in shapes:
                for v in variants:
                    jobs[(label, shape, v)] = pool.submit(measure, path, v, shape, a, b)
    results = {k: f.result() for k, f in jobs.items()}

    bad = []
    for (label, shape, v), (ir, allocs, expected) in sorted(results.items()):
        if abs(allocs - expected) > 1e-9:
            bad.append((label, shape, v, allocs, expected))
        if not args.markdown:
            print("%-12s %-7s %-20s %9.1f instr/call  %.2f allocs/call (1 + answers = %d)"
                  % (label, shape, v, ir, allocs, expected))

    if args.markdown:
        bases = [v for v in ("c_correct", "c_minimal", "c_strdup") if v in variants]
        ours = [v for v in variants if v not in C_VARIANTS]
        for label, _ in builds:
            print("#### %s\n" % label)
            print("Instructions per call; for handoff, the ratio to "
                  + " / ".join(bases) + ".\n")
            print("| shape | " + " | ".join(variants) + " | allocs/call |")
            print("|---|" + "---|" * len(variants) + "---|")
            for shape in shapes:
                cells = []
                for v in variants:
                    ir = results[(label, shape, v)][0]
                    if v in C_VARIANTS:
                        cells.append("%.0f" % ir)
                    else:
                        ratios = [fmt_ratio(ir, results[(label, shape, c)][0]) for c in bases]
                        cells.append("%.0f (%s)" % (ir, " / ".join(ratios)))
                allocs = results[(label, shape, variants[-1])][1]
                print("| %s | %s | %.0f |" % (shape, " | ".join(cells), allocs))
            print()
        if ours and bases:
            print("#### Ratios, worst shape of each build\n")
            print("| build | " + " | ".join("%s / %s" % (o, c) for o in ours for c in bases) + " |")
            print("|---|" + "---|" * (len(ours) * len(bases)))
            for label, _ in builds:
                cells = []
                for o in ours:
                    for c in bases:
                        worst = max(results[(label, s, o)][0] / results[(label, s, c)][0]
                                    for s in shapes)
                        cells.append("%.3f" % worst)
                print("| %s | %s |" % (label, " | ".join(cells)))
            print()
    if bad:
        print("allocation count differs from 1 + answers: %r" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
