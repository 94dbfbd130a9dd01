#!/usr/bin/env python3
"""Compile-fail tests: each snippet must fail to compile with
-DHANDOFF_EXPECT_FAIL, with a diagnostic of its own, and compile without it
(its control).

usage: compile_fail.py SOURCE REGEX [--first-error] -- COMPILER [ARGS...]
       compile_fail.py --controls SOURCE... -- COMPILER [ARGS...]

The first form compiles SOURCE with -DHANDOFF_EXPECT_FAIL: it must fail, and
the compiler's diagnostics must match REGEX, so a test cannot pass because of
an unrelated error such as a missing include path. With --first-error the
first error the compiler reports must match: the library's own message must
come before any error from deeper inside the header.

The second form is the controls of all the snippets, compiled as one
translation unit (each snippet in a namespace of its own, their #include
lines first): one compiler run instead of one per snippet, with the same
compiler, flags and mode. It must compile, so a snippet whose control is
broken fails the suite. A snippet's own test does not compile its control;
`meson test compile_fail_controls` does, for all of them.
"""
import os
import re
import subprocess
import sys
import tempfile


def codegen_needed(source):
    # Some diagnostics (GCC's -Wmismatched-new-delete) come from code
    # generation, which -fsyntax-only never reaches.
    with open(source) as f:
        return "compile-fail: codegen" in f.read()


def compile_source(cmd, source, extra, codegen):
    mode = ["-c", "-o", os.devnull] if codegen else ["-fsyntax-only"]
    run = subprocess.run(cmd + extra + mode + [source],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    return run.returncode, run.stdout


INCLUDE = re.compile(r"^\s*#\s*include\s*[<\"].*$")


def controls(sources, cmd):
    """One translation unit holding the control of every snippet."""
    includes, bodies = [], []
    for index, source in enumerate(sources):
        with open(source) as f:
            for line in f:
                if INCLUDE.match(line) and line.strip() not in includes:
                    includes.append(line.strip())
        # The snippet's own #include lines are no-ops here: every header was
        # included above, outside the namespaces, and has an include guard.
        bodies.append("namespace handoff_control_%d {\n#include \"%s\"\n}" % (
            index, os.path.abspath(source)))
    with tempfile.TemporaryDirectory(prefix="handoff-compile-fail-") as tmp:
        unit = os.path.join(tmp, "controls.cpp")
        with open(unit, "w") as f:
            f.write("\n".join(includes + bodies) + "\n")
        codegen = any(codegen_needed(s) for s in sources)
        code, out = compile_source(cmd, unit, [], codegen)
    if code != 0:
        print("a control build failed; the snippet it names is broken:\n" + out)
        return 1
    print("%d controls compiled in one translation unit" % len(sources))
    return 0


def main(argv):
    if "--" not in argv:
        print(__doc__)
        return 2
    split = argv.index("--")
    head, cmd = argv[1:split], argv[split + 1:]
    if head and head[0] == "--controls":
        return controls(head[1:], cmd) if len(head) > 1 and cmd else 2
    first_only = "--first-error" in head
    head = [a for a in head if a != "--first-error"]
    if len(head) != 2 or not cmd:
        print(__doc__)
        return 2
    source, pattern = head
    code, out = compile_source(cmd, source, ["-DHANDOFF_EXPECT_FAIL"], codegen_needed(source))
    if code == 0:
        print("expected a compile error, but it compiled")
        return 1
    if not re.search(pattern, out):
        print("compile failed, but not with /%s/:\n%s" % (pattern, out))
        return 1
    if first_only:
        errors = [line for line in out.splitlines() if re.search(r"\berror\b", line)]
        if not errors or not re.search(pattern, errors[0]):
            print("the first error does not match /%s/:\n%s" % (pattern, out))
            return 1
    print("failed as expected: " + next(
        (line for line in out.splitlines() if re.search(pattern, line)), ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
