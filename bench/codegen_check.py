#!/usr/bin/env python3
"""Checks that handoff's owners compile to the same code as raw C at -O2.

usage: codegen_check.py COMPILER INCLUDE_DIR SOURCE [STD] [--known-different A,B]
       codegen_check.py --table COMPILER,COMPILER INCLUDE_DIR SOURCE


Compiles SOURCE to assembly with -O2 and compares, for every function
handoff_NAME, its instructions with those of raw_NAME (labels and
directives removed, local label names normalised). Prints both counts per
pair. Pairs named in --known-different are reported but allowed to differ
(bench/README.md says why); any other difference fails the check.
With --table, prints one markdown row per pair and a column per compiler
(instruction counts, handoff against raw) and fails on any difference.
"""
import re
import subprocess
import sys


def functions(asm):
    bodies, current = {}, None
    for line in asm.splitlines():
        m = re.match(r"^([A-Za-z_][\w.]*):", line)
        if m and not m.group(1).startswith(".L"):
            current = m.group(1)
            bodies[current] = []
            continue
        if current is None:
            continue
        text = line.split("#")[0].strip()
        if not text or text.startswith(".") or re.match(r"^\.L\w+:$", text):
            if text.startswith(".size") or text.startswith(".cfi_endproc"):
                pass
            continue
        bodies[current].append(re.sub(r"\.L\w+", ".L", text))
    return bodies


def compile_bodies(compiler, include, source, std="c++17"):
    asm = subprocess.run([compiler, "-std=" + std, "-O2", "-S", "-o", "-", "-I" + include,
                          "-fno-asynchronous-unwind-tables", source],
                         stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout
    return functions(asm)


def table(compilers, include, source):
    per = [compile_bodies(c, include, source) for c in compilers]
    names = sorted(b for b in per[0] if b.startswith("handoff_"))
    print("| handoff | raw C | " + " | ".join(compilers) + " |")
    print("|---|---|" + "---|" * len(compilers))
    failed = False
    for name in names:
        twin = "raw_" + name[len("handoff_"):]
        cells = []
        for bodies in per:
            ours, theirs = bodies.get(name, []), bodies.get(twin)
            if theirs is not None and ours == theirs:
                cells.append("same (%d)" % len(ours))
            else:
                failed = True
                cells.append("%d against %d" % (len(ours), len(theirs or [])))
        print("| `%s` | `%s` | %s |" % (name, twin, " | ".join(cells)))
    return 1 if failed else 0


def main(argv):
    if len(argv) == 5 and argv[1] == "--table":
        return table(argv[2].split(","), argv[3], argv[4])
    known = set()
    if "--known-different" in argv:
        at = argv.index("--known-different")
        known = set(filter(None, argv[at + 1].split(",")))
        argv = argv[:at] + argv[at + 2:]
    compiler, include, source = argv[1:4]
    std = argv[4] if len(argv) > 4 else "c++17"
    bodies = compile_bodies(compiler, include, source, std)
    failed = False
    for name in sorted(b for b in bodies if b.startswith("handoff_")):
        twin = "raw_" + name[len("handoff_"):]
        ours, theirs = bodies[name], bodies.get(twin)
        same = theirs is not None and ours == theirs
        verdict = "same" if same else ("different (known)" if name in known else "DIFFERENT")
        print("%-22s %3d instructions, %-22s %3d: %s" % (name, len(ours), twin,
              len(theirs or []), verdict))
        if same and name in known:
            print("  now the same: drop it from --known-different")
        if not same:
            failed = failed or name not in known
            print("  handoff: " + " ; ".join(ours))
            print("  raw:     " + " ; ".join(theirs or []))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
