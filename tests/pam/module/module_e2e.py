#!/usr/bin/env python3
"""The demo module (and the README's module) driven by pamcheck, pamtester
and a libpamtest program, under pam_wrapper.

usage: module_e2e.py SCENARIO PAMCHECK PAMTESTER|"" PAMTEST_DEMO|""

Scenarios: demo (right, wrong, missing and empty code=, setcred), attempts
(several attempts in one transaction: the count shows), pamtest (the
libpamtest program), readme (the module printed in README.md).

pamtester cannot load a module built with sanitizers: meson passes "" for it
then, and pamcheck's results stand alone. HANDOFF_PAMCHECK_WRAPPER (e.g.
valgrind) wraps pamcheck and the libpamtest program, never pamtester.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2e  # noqa: E402  (Run, side_by_side, expect, failures)

OK = "successfully authenticated"


def demo(pamcheck, pamtester):
    e2e.side_by_side(pamcheck, pamtester, ["demo", "alice", "authenticate", "setcred"], "1234\n", 0,
                     [OK, "credential info has successfully been set."])
    ours, _ = e2e.side_by_side(pamcheck, pamtester, ["demo", "alice", "authenticate"], "9999\n", 1,
                               ["Authentication failure"])
    e2e.expect("Enter the code." in ours.out, "the demo's info message is not shown")
    e2e.side_by_side(pamcheck, pamtester, ["demo", "alice", "authenticate"], "12345\n", 1,
                     ["Authentication failure"])
    for service in ("demo_noarg", "demo_empty"):
        e2e.side_by_side(pamcheck, pamtester, [service, "alice", "authenticate"], "1234\n", 1,
                         ["Error in service module"])
    # PAM_SILENT: the info message is not shown, the prompt still is.
    for program in filter(None, [pamcheck, pamtester]):
        run = e2e.Run(program, ["demo", "alice", "authenticate(PAM_SILENT)"], "1234\n")
        print("%s demo authenticate(PAM_SILENT)\n%s" % (program, run))
        e2e.expect(run.code == 0, "%s: exit %d under PAM_SILENT" % (program, run.code))
        e2e.expect("Enter the code." not in run.out + run.err,
                   "%s: the info message is shown under PAM_SILENT" % program)
    # code= of PAM_MAX_RESP_SIZE bytes: refused before any prompt (the log line
    # is checked in test_pam_module.cpp).
    ours, _ = e2e.side_by_side(pamcheck, pamtester, ["demo_code_too_long", "alice", "authenticate"],
                               "1234\n", 1, ["Error in service module"])
    e2e.expect("Code:" not in ours.out + ours.err, "the demo prompted with an overlong code=")
    # An overlong answer: pamcheck refuses to send it; the module never sees it.
    e2e.side_by_side(pamcheck, pamtester, ["demo", "alice", "authenticate"],
                     "1234" + "x" * 600 + "\n", 1, same_lines=False)


def attempts(pamcheck, pamtester):
    # demo_retry: the demo is optional, so after a wrong code the operation
    # succeeds (pam_permit) and the next authenticate runs in the same
    # transaction, where the demo's info message shows the count.
    for program in filter(None, [pamcheck, pamtester]):
        run = e2e.Run(program, ["demo_retry", "alice", "authenticate", "authenticate", "authenticate"],
                      "0000\n1111\n1234\n")
        print("%s demo_retry\n%s" % (program, run))
        name = os.path.basename(program)
        e2e.expect(run.code == 0, "%s: exit %d" % (name, run.code))
        out = run.out.splitlines()
        shown = [line for line in out if "attempt" in line or line == "Enter the code."]
        e2e.expect(shown == ["Enter the code.", "1 failed attempt so far.", "2 failed attempts so far."],
                   "%s: info messages %r" % (name, shown))


def pamtest(pamtest_demo):
    if not pamtest_demo:
        print("libpamtest not found: scenario skipped")
        return 77
    command = [pamtest_demo]
    if e2e.WRAPPER:
        command = list(e2e.WRAPPER) + command
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    print(proc.stdout.decode(errors="replace"))
    print("\n".join(line for line in proc.stderr.decode(errors="replace").splitlines()
                    if not line.startswith("PWRAP_")))
    e2e.expect(proc.returncode == 0, "pamtest_demo exit %d" % proc.returncode)
    return 0


def readme(pamcheck, pamtester):
    e2e.side_by_side(pamcheck, pamtester, ["readme", "alice", "authenticate"], "4321\n", 0, [OK])
    e2e.side_by_side(pamcheck, pamtester, ["readme", "alice", "authenticate"], "1234\n", 1,
                     ["Authentication failure"])


def main(argv):
    if len(argv) != 5:
        print(__doc__)
        return 2
    name, pamcheck, pamtester, pamtest_demo = argv[1], argv[2], argv[3] or None, argv[4] or None
    if name == "demo":
        demo(pamcheck, pamtester)
    elif name == "attempts":
        attempts(pamcheck, pamtester)
    elif name == "pamtest":
        if pamtest(pamtest_demo) == 77:
            return 77
    elif name == "readme":
        readme(pamcheck, pamtester)
    else:
        print("unknown scenario " + name)
        return 2
    return 1 if e2e.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
