#!/usr/bin/env python3
"""greetd's own greeter, agreety (Debian's greetd package), logging in through
authd: driven in a pseudo-terminal with GREETD_SOCK pointing at the daemon.

usage: agreety_test.py AUTHD [AGREETY]

Without agreety the test is skipped (exit 77). Checks: the right password logs
in (agreety exits 0 after start_session, which authd records with agreety's
command); the wrong one is refused ("Login incorrect", nothing started); a
wrong then a right password in one run; the password never shows on the
terminal; a slow typist logs in with the defaults; the daemon ends with no thread left and a clean exit.
"""
import fcntl
import os
import select
import shutil
import signal
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import greetd_client as g  # noqa: E402

failures = []


def expect(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED: " + what)


class Greeter:
    """agreety on a pseudo-terminal of its own."""

    def __init__(self, agreety, socket_path, max_failures):
        env = dict(os.environ, GREETD_SOCK=socket_path, TERM="dumb")
        env.pop("LD_PRELOAD", None)
        # The test keeps the terminal's side too, to see its echo flag.
        self.fd, self.tty = os.openpty()
        self.pid = os.fork()
        if self.pid == 0:
            os.setsid()
            fcntl.ioctl(self.tty, termios.TIOCSCTTY, 0)
            for std in (0, 1, 2):
                os.dup2(self.tty, std)
            os.closerange(3, 256)
            os.execve(agreety, [agreety, "--cmd", "handoff-session",
                                "--max-failures", str(max_failures)], env)
        self.screen = b""
        self.seen = 0  # what expect() has matched so far

    def expect(self, text, timeout=g.TIMEOUT):
        """Reads the terminal until `text` appears after the last match;
        False on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen[self.seen:]:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the child is gone
                return False
            if not chunk:
                return False
            self.screen += chunk
        self.seen = self.screen.index(text.encode(), self.seen) + len(text)
        return True

    def type(self, line):
        os.write(self.fd, line.encode() + b"\r")

    def echo_turns_off(self, timeout=g.TIMEOUT):
        """Waits until the greeter has turned echo off, as a user would wait
        for the prompt before typing a password."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not termios.tcgetattr(self.tty)[3] & termios.ECHO:
                return True
            time.sleep(0.01)
        return False

    def wait(self, timeout=g.TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.expect("\0never\0", timeout=0.1)  # keep draining the terminal
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.close()
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.close()
        return None

    def close(self):
        os.close(self.fd)
        os.close(self.tty)


def log_in(greeter, user, password, what, think=0.0):
    expect(greeter.expect("login: "), "%s: agreety asks for the login: %r" % (what, greeter.screen))
    time.sleep(think)
    greeter.type(user)
    expect(greeter.expect("Password: "), "%s: authd's prompt reaches agreety: %r"
           % (what, greeter.screen))
    expect(greeter.echo_turns_off(), "%s: a secret auth_message is read with echo off" % what)
    time.sleep(think)
    greeter.type(password)


SLOW = float(os.environ.get("HANDOFF_AUTHD_SLOW_TYPIST", "2.5"))


def slow_typist(authd, agreety):
    """A user slower than any timeout a test can wait for: with authd's
    defaults (no answer timeout, as greetd) the login succeeds; with
    --answer-timeout 1 the same user is refused, so the test can tell."""
    for extra, logs_in in (([], True), (["--answer-timeout", "1"], False)):
        d = g.Daemon(authd, extra=extra)
        try:
            greeter = Greeter(agreety, d.socket, 1)
            log_in(greeter, "alice", "secret", "slow typist %r" % extra, think=SLOW)
            if logs_in:
                code = greeter.wait()
                expect(code == 0, "the slow typist logs in with the defaults, got %r: %r"
                       % (code, greeter.screen))
            else:
                expect(greeter.expect("Login incorrect"),
                       "--answer-timeout 1 refuses the slow typist: %r" % greeter.screen)
                greeter.wait()
        finally:
            code, stderr = d.stop()
            expect(code == 0, "authd exit code %d" % code)
            expect(stderr.strip() == "", "authd wrote to stderr:\n" + stderr)


def main():
    authd = sys.argv[1]
    agreety = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else shutil.which("agreety")
    if not agreety or not os.path.exists(agreety):
        agreety = "/usr/sbin/agreety" if os.path.exists("/usr/sbin/agreety") else None
    if not agreety:
        print("agreety not installed (Debian: greetd): skipped")
        sys.exit(77)

    slow_typist(authd, agreety)
    d = g.Daemon(authd)
    try:
        # The right password: agreety starts its command and exits 0.
        greeter = Greeter(agreety, d.socket, 1)
        log_in(greeter, "alice", "secret", "right password")
        code = greeter.wait()
        expect(code == 0, "agreety exits 0 after logging in, got %r: %r" % (code, greeter.screen))
        started = d.next_event("start_session")
        expect(started.get("username") == "alice" and started.get("cmd") == ["handoff-session"],
               "authd recorded agreety's start_session: %r" % started)
        expect(b"secret" not in greeter.screen, "the password never shows on the terminal: %r" % greeter.screen)

        # The wrong password: "Login incorrect", nothing started.
        greeter = Greeter(agreety, d.socket, 1)
        log_in(greeter, "alice", "not-the-password", "wrong password")
        expect(greeter.expect("Login incorrect"), "agreety says Login incorrect: %r"
               % greeter.screen)
        code = greeter.wait()
        expect(code == 0, "agreety ends after its one failure, got %r" % code)
        event = d.next_event("session")
        while event.get("outcome") == "success" or event.get("username") == "warm-up":
            event = d.next_event("session")
        expect(event.get("outcome") == "auth_error", "authd saw an auth_error: %r" % event)

        # Wrong, then right, in one run (agreety cancels and reconnects).
        greeter = Greeter(agreety, d.socket, 2)
        log_in(greeter, "bob", "secret", "first try")
        expect(greeter.expect("Login incorrect"), "first try refused: %r" % greeter.screen)
        log_in(greeter, "bob", "hunter2", "second try")
        code = greeter.wait()
        expect(code == 0, "the second try logs in, got %r: %r" % (code, greeter.screen))
        started = d.next_event("start_session")
        expect(started.get("username") == "bob", "bob's session recorded: %r" % started)
        expect(b"hunter2" not in greeter.screen, "bob's password never shows")

        deadline = time.monotonic() + g.TIMEOUT
        while time.monotonic() < deadline:
            stats = d.stats()
            if stats["threads"] == d.idle_threads and stats["ending"] == 0 and \
                    stats["clients"] == 0:
                break
            time.sleep(0.05)
        expect(stats["threads"] == d.idle_threads and stats["clients"] == 0,
               "nothing left behind: %r" % stats)
    finally:
        code, stderr = d.stop()
        expect(code == 0, "authd exit code %d" % code)
        expect(stderr.strip() == "", "authd wrote to stderr:\n" + stderr)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
