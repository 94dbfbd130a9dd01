#!/usr/bin/env python3
"""End-to-end scenarios: pamcheck and Debian's pamtester side by side.

usage: e2e.py SCENARIO PAMCHECK [PAMTESTER]

Each scenario runs both programs on the same pam_wrapper services with the
same input and checks pamcheck's exit code and result lines; where pamtester
works on the scenario, its exit code and result lines must agree with
pamcheck's (result lines compared without the program-name prefix). What
pamtester did is printed either way, for the record. The environment
(LD_PRELOAD, PAM_WRAPPER_SERVICE_DIR, ...) comes from the Meson test.
"""
import os
import subprocess
import sys

BUILD = os.environ.get("HANDOFF_TEST_BUILDDIR", ".")


# HANDOFF_PAMCHECK_WRAPPER runs pamcheck (never pamtester) under a tool,
# e.g. "valgrind --error-exitcode=99 --leak-check=full": tools/check does.
WRAPPER = os.environ.get("HANDOFF_PAMCHECK_WRAPPER", "").split()


class Run:
    def __init__(self, program, args, stdin_text, leaks_are_ours=True):
        command = [program] + args
        if WRAPPER and os.path.basename(program) == "pamcheck":
            wrapper = list(WRAPPER)
            if not leaks_are_ours and os.path.basename(wrapper[0]) == "valgrind":
                wrapper.append("--leak-check=no")  # a module's leak, not pamcheck's
            command = wrapper + command
        proc = subprocess.run(command, input=stdin_text.encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        self.code = proc.returncode
        self.out = proc.stdout.decode(errors="replace")
        self.err = "\n".join(line for line in proc.stderr.decode(errors="replace").splitlines()
                             if not line.startswith("PWRAP_"))

    def results(self):
        """Result lines without the program name: 'successfully authenticated'."""
        lines = []
        for line in (self.out + "\n" + self.err).splitlines():
            # A prompt without a newline may stand before the line ("Password: pamtester: ...").
            for name in ("pamcheck: ", "pamtester: "):
                at = line.find(name)
                if at < 0:
                    continue
                rest = line[at + len(name):].strip()
                if not rest.startswith(("invoking", "performing", "conversation failed")):
                    lines.append(rest)
        return lines

    def __str__(self):
        return "exit %d\n  stdout: %r\n  stderr: %r" % (self.code, self.out, self.err)


failures = []


def expect(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED: " + what)


def side_by_side(pamcheck, pamtester, args, stdin_text="", want_code=0, want_lines=None,
                 pamtester_may_fail=False, reset=None, same_lines=True, leaks_are_ours=True,
                 compare=True):
    if reset:
        reset()
    ours = Run(pamcheck, args, stdin_text, leaks_are_ours)
    print("pamcheck %s\n%s" % (" ".join(args), ours))
    expect(ours.code == want_code, "pamcheck exit %d, wanted %d" % (ours.code, want_code))
    for line in want_lines or []:
        expect(line in ours.results(), "pamcheck result %r missing from %r" % (line, ours.results()))
    if not pamtester:
        print("pamtester: not installed, comparison skipped")
        return ours, None
    if reset:
        reset()
    theirs = Run(pamtester, args, stdin_text)
    print("pamtester %s\n%s" % (" ".join(args), theirs))
    if not compare:
        print("pamtester recorded for reference, not compared (exit %d)" % theirs.code)
        return ours, theirs
    crashed = theirs.code < 0  # killed by a signal
    if crashed:
        print("pamtester crashed (exit %d): no comparison" % theirs.code)
        expect(pamtester_may_fail, "pamtester crashed where it should work")
        return ours, theirs
    expect(theirs.code == ours.code,
           "exit codes differ: pamcheck %d, pamtester %d" % (ours.code, theirs.code))
    if same_lines:
        expect(theirs.results() == ours.results(),
               "result lines differ: pamcheck %r, pamtester %r" % (ours.results(), theirs.results()))
    elif theirs.results() != ours.results():
        print("result lines differ, as expected here: pamcheck %r, pamtester %r"
              % (ours.results(), theirs.results()))
    return ours, theirs


def reset_chpw():
    with open(os.path.join(BUILD, "passdb_matrix_chpw_e2e"), "w") as f:
        f.write("dave:old-pw:matrix_chpw_e2e\n")


def scenario(name, pamcheck, pamtester):
    ok = "successfully authenticated"
    if name == "matrix_right":
        side_by_side(pamcheck, pamtester, ["matrix", "alice", "authenticate"], "secret\n", 0, [ok])
    elif name == "matrix_wrong":
        side_by_side(pamcheck, pamtester, ["matrix", "alice", "authenticate"], "wrong\n", 1,
                     ["Authentication failure"])
    elif name == "matrix_unknown_user":
        side_by_side(pamcheck, pamtester, ["matrix", "nobody", "authenticate"], "secret\n", 1)
    elif name == "matrix_echo":
        side_by_side(pamcheck, pamtester, ["matrix_echo", "alice", "authenticate"], "secret\n", 0, [ok])
    elif name == "matrix_all_operations":
        side_by_side(pamcheck, pamtester,
                     ["matrix", "alice", "authenticate", "acct_mgmt", "open_session", "setcred",
                      "close_session"], "secret\n", 0,
                     [ok, "account management done.", "successfully opened a session",
                      "credential info has successfully been set.",
                      "session has successfully been closed."])
    elif name == "matrix_verbose":
        # pam_matrix's verbose info message: pamtester's misc_conv crashes on it.
        ours, _ = side_by_side(pamcheck, pamtester, ["matrix_verbose", "alice", "authenticate"],
                               "secret\n", 0, [ok], pamtester_may_fail=True)
        expect("Authentication succeeded" in ours.out, "pam_matrix's info message not shown")
    elif name == "matrix_flags":
        side_by_side(pamcheck, pamtester,
                     ["matrix", "alice", "authenticate(PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK)"],
                     "secret\n", 0, [ok])
    elif name == "matrix_eof":
        # pamtester's conversation mishandles EOF (pam_matrix then reports a
        # credentials failure); pamcheck fails the conversation and says why.
        ours, _ = side_by_side(pamcheck, pamtester, ["matrix", "alice", "authenticate"], "", 1,
                               same_lines=False)
        expect("input closed" in ours.err, "pamcheck did not say why the conversation failed")
    elif name == "matrix_overlong_answer":
        # pamcheck refuses an answer PAM cannot take; nothing is truncated.
        # pamtester passes a cut-down answer on (a wrong password); pamcheck refuses it.
        ours, _ = side_by_side(pamcheck, pamtester, ["matrix", "alice", "authenticate"],
                               "secret" + "x" * 600 + "\n", 1, same_lines=False)
        expect("too long" in ours.err, "pamcheck did not report the overlong answer")
    elif name == "chatty":
        # pam_chatty never frees the replies to its info messages.
        ours, _ = side_by_side(pamcheck, pamtester, ["chatty", "alice", "authenticate"], "", 0, [ok],
                               leaks_are_ours=False)
        expect(ours.out.count("Authentication succeeded") == 8, "pam_chatty's 8 info lines not all shown")
        expect(ours.err.count("Authentication generated an error") == 8,
               "pam_chatty's 8 error lines not all shown")
    elif name == "permit":
        side_by_side(pamcheck, pamtester,
                     ["permit", "alice", "authenticate", "acct_mgmt", "open_session", "close_session",
                      "chauthtok"], "", 0,
                     [ok, "authentication token altered successfully."])
    elif name == "deny":
        side_by_side(pamcheck, pamtester, ["deny", "alice", "authenticate"], "", 1,
                     ["Authentication failure"])
    elif name == "echo":
        ours, _ = side_by_side(pamcheck, pamtester, ["echo", "alice", "authenticate"], "", 0, [ok])
        expect("Hello alice from echo" in ours.out, "pam_echo's message not shown")
    elif name == "stress":
        side_by_side(pamcheck, pamtester,
                     ["stress", "alice", "authenticate", "acct_mgmt", "open_session", "close_session"],
                     "pw\n", 0, [ok])
        side_by_side(pamcheck, pamtester, ["stress", "alice", "chauthtok"], "new\nnew\n", 0,
                     ["authentication token altered successfully."])
    elif name == "chauthtok_round_trip":
        for program in filter(None, [pamcheck, pamtester]):
            reset_chpw()
            changed = Run(program, ["matrix_chpw_e2e", "dave", "chauthtok"], "old-pw\nnew-pw\nnew-pw\n")
            print("%s chauthtok\n%s" % (program, changed))
            expect(changed.code == 0, "%s could not change the password" % program)
            new = Run(program, ["matrix_chpw_e2e", "dave", "authenticate"], "new-pw\n")
            expect(new.code == 0, "%s: the new password does not authenticate" % program)
            old = Run(program, ["matrix_chpw_e2e", "dave", "authenticate"], "old-pw\n")
            expect(old.code == 1, "%s: the old password still authenticates" % program)
    elif name == "items_and_env":
        ours = Run(pamcheck, ["-I", "rhost=client.example", "-I", "tty=pts/3", "-E", "GREETING=hi",
                              "--print-env", "matrix_items", "alice", "authenticate", "open_session"],
                   "secret\n")
        print("pamcheck items\n%s" % ours)
        expect(ours.code == 0, "pamcheck with items failed")
        expect("GREETING=hi" in ours.out.splitlines(), "-E variable not in the PAM environment")
        expect("PAM_RHOST=client.example" in ours.out.splitlines(), "-I rhost did not reach the modules")
        expect("PAM_TTY=pts/3" in ours.out.splitlines(), "-I tty did not reach the modules")
        side_by_side(pamcheck, pamtester,
                     ["-I", "rhost=client.example", "-E", "GREETING=hi", "matrix", "alice",
                      "authenticate"], "secret\n", 0, [ok])
    elif name == "answers_file":
        path = os.path.join(BUILD, "e2e_answers")
        with open(path, "w") as f:
            f.write("secret\n")
        ours = Run(pamcheck, ["--answers", path, "matrix", "alice", "authenticate"], "")
        print("pamcheck --answers\n%s" % ours)
        expect(ours.code == 0 and ok in ours.results(), "--answers did not authenticate")
    elif name == "usage_errors":
        side_by_side(pamcheck, pamtester, [], "", 255)
        side_by_side(pamcheck, pamtester, ["matrix"], "", 255)
        side_by_side(pamcheck, pamtester, ["matrix", "alice", "frobnicate"], "", 1)
        side_by_side(pamcheck, pamtester, ["matrix", "alice", "authenticate(PAM_BOGUS)"], "", 1)
        side_by_side(pamcheck, pamtester, ["matrix", "alice", "authenticate(PAM_SILENT|"], "", 255)
        side_by_side(pamcheck, pamtester, ["permit", "alice", "authenticate()"], "", 0)
        side_by_side(pamcheck, pamtester, ["permit", "alice", "authenticate(32768)"], "", 0)
        helped = Run(pamcheck, ["--help"], "")
        expect(helped.code == 0 and "usage:" in helped.out, "--help did not print usage")
    elif name == "non_interactive":
        ours = Run(pamcheck, ["--non-interactive", "echo", "alice", "authenticate"], "")
        expect(ours.code == 0 and "Hello alice from echo" in ours.out,
               "non-interactive mode must still show info messages")
        ours = Run(pamcheck, ["--non-interactive", "matrix", "alice", "authenticate"], "secret\n")
        print("pamcheck --non-interactive\n%s" % ours)
        expect(ours.code == 1, "non-interactive mode must fail prompts")
    elif name == "oddball":
        # Our own module sends what stock modules do not; it authenticates only
        # when the conversation answered correctly (see pam_oddball.cpp).
        side_by_side(pamcheck, pamtester, ["oddball_multi", "alice", "authenticate"],
                     "alice\nsecret\n", 0, [ok], compare=False)
        for case in ("info_null_resp", "null_text", "bad_style", "null_entry", "zero", "too_many"):
            side_by_side(pamcheck, pamtester, ["oddball_" + case, "alice", "authenticate"], "x\n", 0,
                         [ok], compare=False)
    else:
        print("unknown scenario " + name)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    tester = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    sys.exit(scenario(sys.argv[1], sys.argv[2], tester))
