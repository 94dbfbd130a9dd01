#!/usr/bin/env python3
"""docs/testing.md, run as written: its test program built by g++ and clang++
(C++17 and C++20, strict warnings), its "by hand" commands and their output,
and its Meson and CMake projects built and tested in a temporary directory
against handoff installed there. Both projects' tests must pass, then fail
once the password file says otherwise (so they test something).

usage: testing_test.py SOURCE_ROOT
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doc_blocks  # noqa: E402  (the block parser and the strict flags)

DOC = os.path.join("docs", "testing.md")
# The tags of docs/testing.md's blocks: files of the project, then commands.
FILES = ["test_login.cpp", "pam.d/myapp.in", "passdb", "meson.build", "pam.d/meson.build",
         "CMakeLists.txt"]
COMMANDS = ["by-hand", "by-hand-output", "run"]
MARK = "extracted by tests/docs/testing_test.py as "


def bash(script, cwd, env):
    print("$ " + script.strip().replace("\n", "\n$ "), flush=True)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    print(proc.stdout + proc.stderr, end="", flush=True)
    return proc


def main():
    if os.environ.get("HANDOFF_IN_CONSUMER_TEST"):
        print("skipped: run by the consumer tests' build of a clone (it runs in the outer one)")
        return 77
    root = os.path.abspath(sys.argv[1])
    blocks = {}
    for b in doc_blocks.blocks_of(root, DOC):
        if not (b.marker or "").startswith(MARK):
            raise SystemExit("%s: a block not marked for this test (%s)" % (b.where(), b.marker))
        blocks[b.marker[len(MARK):]] = b.text
    missing = [t for t in FILES + COMMANDS if t not in blocks]
    if missing:
        raise SystemExit("%s: no block for %s" % (DOC, missing))

    work = tempfile.mkdtemp(prefix="handoff-testing-doc-")
    failures = []
    try:
        project = os.path.join(work, "myapp")
        for name in FILES:
            path = os.path.join(project, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(blocks[name])
        # The program under the strict flags, with both compilers and standards.
        for compiler, std in doc_blocks.CXX_BUILDS:
            doc_blocks.run([compiler, "-std=" + std] + doc_blocks.STRICT +
                           ["-I", os.path.join(root, "include"),
                            os.path.join(project, "test_login.cpp"),
                            "-o", os.path.join(work, "strict"), "-pthread", "-lpam"])
        print("test_login.cpp builds with g++ and clang++, C++17 and C++20, %s"
              % " ".join(doc_blocks.STRICT))
        # handoff installed as a user has it: pkg-config and CMake find it.
        prefix = os.path.join(work, "prefix")
        doc_blocks.run(["meson", "setup", os.path.join(work, "lib-build"), root,
                        "--prefix=" + prefix, "-Dtests=disabled", "-Dbench=disabled",
                        "-Dexamples=disabled"])
        doc_blocks.run(["meson", "install", "-C", os.path.join(work, "lib-build")])
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "share", "pkgconfig"),
                   CMAKE_PREFIX_PATH=prefix)
        for var in ("LD_PRELOAD", "PAM_WRAPPER", "PAM_WRAPPER_SERVICE_DIR"):
            env.pop(var, None)

        proc = bash(blocks["by-hand"], project, env)
        if proc.returncode != 0 or proc.stdout != blocks["by-hand-output"]:
            failures.append("by hand: exit %d, printed\n%s\nnot what docs/testing.md shows\n%s"
                            % (proc.returncode, proc.stdout, blocks["by-hand-output"]))
        proc = bash(blocks["run"], project, env)
        if proc.returncode != 0:
            failures.append("the Meson and CMake projects' tests failed (exit %d)"
                            % proc.returncode)
        # The same tests against a password file that refuses alice: both fail.
        with open(os.path.join(project, "passdb"), "w") as f:
            f.write("alice:wrong:myapp\n")
        for cmd in ("meson test -C build", "cd build-cmake && ctest"):
            if bash(cmd, project, env).returncode == 0:
                failures.append("%s passed with a password file that refuses alice" % cmd)
    except doc_blocks.Failed as e:
        failures.append(str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("docs/testing.md: %s" % ("failed" if failures else "every block runs as written"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
