#!/usr/bin/env python3
"""Compile-fail test: the control build must compile and the bad one must not.

usage: compile_fail.py SOURCE REGEX [--first-error] -- COMPILER [ARGS...]

SOURCE compiles as is (the control); with -DHANDOFF_EXPECT_FAIL it must fail,
and the compiler's diagnostics must match REGEX, so a test cannot pass because
of an unrelated error such as a missing include path. With --first-error the
first error the compiler reports must match: the library's own message must
come before any error from deeper inside the header.
"""
import os
import re
import subprocess
import sys


def compile_source(cmd, source, extra):
    # Some diagnostics (GCC's -Wmismatched-new-delete) come from code
    # generation, which -fsyntax-only never reaches.
    with open(source) as f:
        codegen = "compile-fail: codegen" in f.read()
    mode = ["-c", "-o", os.devnull] if codegen else ["-fsyntax-only"]
    run = subprocess.run(cmd + extra + mode + [source],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    return run.returncode, run.stdout


def main(argv):
    first_only = len(argv) > 3 and argv[3] == "--first-error"
    if first_only:
        argv = argv[:3] + argv[4:]
    if len(argv) < 5 or argv[3] != "--":
        print(__doc__)
        return 2
    source, pattern, cmd = argv[1], argv[2], argv[4:]
    code, out = compile_source(cmd, source, [])
    if code != 0:
        print("control build failed; the test itself is broken:\n" + out)
        return 1
    code, out = compile_source(cmd, source, ["-DHANDOFF_EXPECT_FAIL"])
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
