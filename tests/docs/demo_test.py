#!/usr/bin/env python3
"""tools/demo as a newcomer runs it (README, "Commands"): the scripted tour and
one command of one's own. Nothing it prints may look like an error that is not
part of the tour: no pam_wrapper line (PWRAP_*, even with its debug output
turned up: the demo must not load pam_wrapper, whose machine-wide /tmp/pam.X
directories made it print PWRAP_ERROR lines), and each step ends with the exit
code the tour expects.

usage: demo_test.py SOURCE_ROOT BUILD_ROOT   (BUILD_ROOT has examples/pamcheck)
"""
import os
import re
import subprocess
import sys

# The tour's steps in order: a wrong password, and no answer at all, fail.
TOUR_EXITS = [0, 1, 0, 0, 0, 0, 1]
# Lines of the tour that report an expected failure.
EXPECTED_FAILURES = {"pamcheck: Authentication failure",
                     "pamcheck: Authentication service cannot retrieve authentication info",
                     "pamcheck: conversation failed: input closed"}


def run(root, env, args, stdin):
    proc = subprocess.run([os.path.join(root, "tools", "demo")] + args, env=env, input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)
    print("$ tools/demo %s\n%s(exit %d)" % (" ".join(args), proc.stdout, proc.returncode))
    return proc


def main():
    root, build = sys.argv[1:3]
    # Whatever a newcomer's shell holds: pam_wrapper's debug switch turned up.
    env = dict(os.environ, HANDOFF_DEMO_BUILD=build, PAM_WRAPPER_DEBUGLEVEL="3")
    failures = []
    tour = run(root, env, [], "")
    own = run(root, env, ["demo-login", "alice", "authenticate"], "wonderland\n")
    for name, proc in (("the tour", tour), ("demo-login alice authenticate", own)):
        for line in proc.stdout.splitlines():
            text = line.strip()
            if re.search(r"PWRAP|error|warning", text, re.I) or (
                    text.startswith("pamcheck: ") and "fail" in text.lower()
                    and not any(e in text for e in EXPECTED_FAILURES)):
                failures.append("%s printed %r" % (name, line))
    exits = [int(m) for m in re.findall(r"^\(exit (\d+)\)$", tour.stdout, re.M)]
    if tour.returncode != 0 or exits != TOUR_EXITS:
        failures.append("the tour exited %d with steps %s, not 0 with %s"
                        % (tour.returncode, exits, TOUR_EXITS))
    if own.returncode != 0 or "successfully authenticated" not in own.stdout:
        failures.append("demo-login alice authenticate with 'wonderland' did not succeed")
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
