#!/usr/bin/env python3
"""pam_handoff_passwd (examples/pam_module) driven by pamcheck and pamtester
under pam_wrapper, alone and stacked (a second instance takes the tokens the
first was given: use_first_pass, use_authtok).

usage: passwd_e2e.py SCENARIO DIR PAMCHECK PAMTESTER|""

DIR holds the module's password files (passwd_db, and passwd_db2 for the
second module of a stack), rewritten before every run. Scenarios:
authenticate, change, refused, stacked, silent, delay, config.
pamtester cannot load a module built with sanitizers: meson passes "" then.
"""
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2e  # noqa: E402  (Run, side_by_side, expect, failures)

OK = "successfully authenticated"
CHANGED = "authentication token altered successfully."
FILE = "alice:0ld-secret\nbob:b0bs-pass\n"


class Files:
    def __init__(self, directory):
        self.db = os.path.join(directory, "passwd_db")
        self.db2 = os.path.join(directory, "passwd_db2")
        self.directory = directory

    def reset(self):
        with open(self.db, "w") as f:
            f.write(FILE)
        os.chmod(self.db, 0o600)
        with open(self.db2, "w") as f:
            f.write(FILE)

    def text(self, path=None):
        with open(path or self.db) as f:
            return f.read()

    def leftovers(self):
        """Temporary files the module left beside its file."""
        return [n for n in os.listdir(self.directory) if n.startswith("passwd_db.")]


def authenticate(files, pamcheck, pamtester):
    run = lambda *a, **k: e2e.side_by_side(pamcheck, pamtester, *a, reset=files.reset, **k)
    run(["passwd", "alice", "authenticate", "setcred"], "0ld-secret\n", 0,
        [OK, "credential info has successfully been set."])
    run(["passwd", "bob", "authenticate"], "b0bs-pass\n", 0, [OK])
    run(["passwd", "alice", "authenticate"], "b0bs-pass\n", 1, ["Authentication failure"])
    run(["passwd", "alice", "authenticate"], "0ld-secre\n", 1, ["Authentication failure"])
    run(["passwd", "carol", "authenticate"], "0ld-secret\n", 1, ["User not known to the underlying authentication module"])
    # A user name the file format cannot hold is unknown, never a partial match.
    run(["passwd", "alice:0ld-secret", "authenticate"], "0ld-secret\n", 1)
    # No password given (end of input): libpam's PAM_AUTHTOK_ERR, not success.
    ours, _ = run(["passwd", "alice", "authenticate"], "", 1, same_lines=False)
    e2e.expect(OK not in ours.results(), "authenticated without a password")


def change(files, pamcheck, pamtester):
    for program in filter(None, [pamcheck, pamtester]):
        name = os.path.basename(program)
        files.reset()
        run = e2e.Run(program, ["passwd", "alice", "chauthtok"], "0ld-secret\nn3w-secret\nn3w-secret\n")
        print("%s passwd alice chauthtok\n%s" % (name, run))
        e2e.expect(run.code == 0, "%s: chauthtok exit %d" % (name, run.code))
        e2e.expect(CHANGED in run.results(), "%s: %r" % (name, run.results()))
        e2e.expect(files.text() == "alice:n3w-secret\nbob:b0bs-pass\n",
                   "%s: file after the change: %r" % (name, files.text()))
        e2e.expect(stat.S_IMODE(os.stat(files.db).st_mode) == 0o600, "%s: mode" % name)
        e2e.expect(files.leftovers() == [], "%s: left behind %r" % (name, files.leftovers()))
        for prompt in ("Current password: ", "New password: ", "Retype new password: "):
            e2e.expect(prompt in run.out + run.err, "%s: prompt %r not shown" % (name, prompt))
        e2e.expect("Password changed for alice." in run.out, "%s: no info message" % name)
        # The new password works, the old one does not.
        for answer, code in (("n3w-secret\n", 0), ("0ld-secret\n", 1)):
            again = e2e.Run(program, ["passwd", "alice", "authenticate"], answer)
            e2e.expect(again.code == code, "%s: authenticate %r after the change: exit %d"
                       % (name, answer, again.code))


def refused(files, pamcheck, pamtester):
    cases = [
        # (answers, what the user is told, why)
        ("wrong-old\nn3w-secret\nn3w-secret\n", None, "a wrong old password"),
        ("0ld-secret\nn3w-secret\nn3w-secreT\n", "Sorry, passwords do not match.", "mistyped"),
        ("0ld-secret\nshort\n", "The password is shorter than 6 characters.", "too short"),
        ("0ld-secret\n0ld-secret\n", "The password is the same as the old one.", "the old one"),
        ("0ld-secret\n\n", None, "empty"),
        ("0ld-secret\n", None, "no new password at all"),
    ]
    for program in filter(None, [pamcheck, pamtester]):
        name = os.path.basename(program)
        for answers, told, why in cases:
            files.reset()
            run = e2e.Run(program, ["passwd", "alice", "chauthtok"], answers)
            print("%s chauthtok (%s)\n%s" % (name, why, run))
            e2e.expect(run.code == 1, "%s, %s: exit %d" % (name, why, run.code))
            e2e.expect(files.text() == FILE, "%s, %s: the file changed" % (name, why))
            e2e.expect(files.leftovers() == [], "%s, %s: left %r" % (name, why, files.leftovers()))
            if told:
                e2e.expect(told in run.out + run.err, "%s, %s: %r not shown" % (name, why, told))
        # A wrong old password: never asked for the new one.
        files.reset()
        run = e2e.Run(program, ["passwd", "alice", "chauthtok"], "wrong-old\nx\nx\n")
        e2e.expect("New password" not in run.out + run.err, "%s: asked for a new password" % name)


def stacked(files, pamcheck, pamtester):
    # The first instance asks; the second takes what it was given.
    for program in filter(None, [pamcheck, pamtester]):
        name = os.path.basename(program)
        files.reset()
        run = e2e.Run(program, ["passwd_stacked", "alice", "authenticate"], "0ld-secret\n")
        print("%s passwd_stacked authenticate\n%s" % (name, run))
        e2e.expect(run.code == 0, "%s: stacked authenticate exit %d" % (name, run.code))
        asked = (run.out + run.err).count("Password: ")
        e2e.expect(asked == 1, "%s: asked %d times" % (name, asked))
        files.reset()
        run = e2e.Run(program, ["passwd_stacked", "alice", "chauthtok"],
                      "0ld-secret\nn3w-secret\nn3w-secret\n")
        print("%s passwd_stacked chauthtok\n%s" % (name, run))
        e2e.expect(run.code == 0, "%s: stacked chauthtok exit %d" % (name, run.code))
        for path in (files.db, files.db2):
            e2e.expect(files.text(path) == "alice:n3w-secret\nbob:b0bs-pass\n",
                       "%s: %s after the change: %r" % (name, path, files.text(path)))
        for prompt in ("Current password: ", "New password: ", "Retype new password: "):
            shown = (run.out + run.err).count(prompt)
            e2e.expect(shown == 1, "%s: %r shown %d times" % (name, prompt, shown))
        # The second file disagrees on the old password: the change stops in
        # the preliminary pass, and neither file changes.
        files.reset()
        with open(files.db2, "w") as f:
            f.write("alice:other\n")
        run = e2e.Run(program, ["passwd_stacked", "alice", "chauthtok"],
                      "0ld-secret\nn3w-secret\nn3w-secret\n")
        e2e.expect(run.code == 1, "%s: stacked, wrong old: exit %d" % (name, run.code))
        e2e.expect(files.text() == FILE and files.text(files.db2) == "alice:other\n",
                   "%s: stacked, wrong old: a file changed" % name)
        e2e.expect("New password" not in run.out + run.err, "%s: asked for a new one" % name)


def silent(files, pamcheck, pamtester):
    for program in filter(None, [pamcheck, pamtester]):
        name = os.path.basename(program)
        for op, told in (("chauthtok", True), ("chauthtok(PAM_SILENT)", False)):
            files.reset()
            run = e2e.Run(program, ["passwd", "alice", op], "0ld-secret\nshort\n")
            print("%s %s\n%s" % (name, op, run))
            e2e.expect(run.code == 1, "%s %s: exit %d" % (name, op, run.code))
            shown = "shorter than" in run.out + run.err
            e2e.expect(shown == told, "%s %s: message shown: %s" % (name, op, shown))


def delay(files, pamcheck, pamtester):
    # libpam waits (2 s scaled by a random factor in 0.5 .. 1.5) after a wrong password, and
    # not after a right one: the difference, so that a slow pamcheck (under
    # valgrind) does not count.
    files.reset()
    took = {}
    for answer in ("wrong\n", "0ld-secret\n"):
        start = time.monotonic()
        run = e2e.Run(pamcheck, ["passwd_delay", "alice", "authenticate"], answer)
        took[answer] = time.monotonic() - start
        print("pamcheck passwd_delay %r: %.2f s\n%s" % (answer, took[answer], run))
    extra = took["wrong\n"] - took["0ld-secret\n"]
    e2e.expect(0.9 <= extra <= 10.0, "a wrong password took %.2f s longer" % extra)


def config(files, pamcheck, pamtester):
    files.reset()
    e2e.side_by_side(pamcheck, pamtester, ["passwd_noarg", "alice", "authenticate"],
                     "0ld-secret\n", 1, ["Error in service module"])
    # The log (pam_wrapper prints pam_syslog lines on stderr): the missing
    # file= and the unknown option by its name, never its value.
    proc = subprocess.run([pamcheck, "passwd_noarg", "alice", "authenticate"],
                          input=b"0ld-secret\n", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    log = proc.stderr.decode(errors="replace")
    print(log)
    e2e.expect("no file= argument in the service file" in log, "no log line for file=")
    e2e.expect("unknown option colour=" in log, "no log line for colour=")
    e2e.expect("blue" not in log, "the option's value reached the log")
    # A missing file is PAM_AUTHINFO_UNAVAIL, never success.
    os.unlink(files.db)
    e2e.side_by_side(pamcheck, pamtester, ["passwd", "alice", "authenticate"], "0ld-secret\n", 1,
                     ["Authentication service cannot retrieve authentication info"])


def main(argv):
    if len(argv) != 5:
        print(__doc__)
        return 2
    name, directory, pamcheck, pamtester = argv[1], argv[2], argv[3], argv[4] or None
    files = Files(directory)
    scenarios = {"authenticate": authenticate, "change": change, "refused": refused,
                 "stacked": stacked, "silent": silent, "delay": delay, "config": config}
    if name not in scenarios:
        print("unknown scenario " + name)
        return 2
    scenarios[name](files, pamcheck, pamtester)
    return 1 if e2e.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
