"""A job-control shell in miniature on a pseudo-terminal, for tests.

Shell() must be made in a process that can become a session leader (see
in_new_session): it takes a fresh pty as its controlling terminal and ignores
the job-control signals, as an interactive shell does. Shell.start() runs a
program as a job: its own process group, given the terminal with tcsetpgrp
(or left in the background), default signal dispositions, stdin, stdout and
stderr on the pty. The test types on the master side, signals the job, waits
for it to exit or stop, brings it back with fg(), and reads the termios of
the terminal at any moment. Python's standard library only (no pexpect).
"""
import fcntl
import os
import resource
import select
import signal
import sys
import termios
import time

# What an interactive shell ignores for itself; its jobs get the defaults.
SHELL_IGNORES = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
# Python ignores these itself; a job must not inherit that.
PYTHON_IGNORES = (signal.SIGPIPE, signal.SIGXFSZ)
# The test may itself run with these ignored (nohup, a CI runner, a background
# job of a non-interactive shell); a job of an interactive shell starts with
# them at their defaults.
INHERITED_IGNORES = (signal.SIGHUP, signal.SIGTERM, signal.SIGALRM)

LFLAG_NAMES = ("ISIG", "ICANON", "ECHO", "ECHOE", "ECHOK", "ECHONL", "NOFLSH", "TOSTOP",
               "ECHOCTL", "ECHOPRT", "ECHOKE", "IEXTEN")


def in_new_session(body):
    """Runs body() in a child that is a session leader; returns its exit code.

    A test runner usually starts us as a process group leader, and a group
    leader cannot call setsid(): the child can."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setsid()
            code = body()
        except BaseException:  # report, never fall back into the parent's code
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    # A test runner's timeout ends us with SIGTERM: end the session with us.
    # Its terminal then hangs up, which sends SIGHUP to the jobs left on it.
    def end_session(signum, frame):
        os.kill(pid, signal.SIGKILL)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, end_session)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def describe_termios_change(before, after):
    """'' when identical, else what differs ('ECHO cleared, ECHONL set', ...)."""
    if before == after:
        return ""
    changes = []
    for name in LFLAG_NAMES:
        bit = getattr(termios, name)
        was, now = before[3] & bit, after[3] & bit
        if was and not now:
            changes.append(name + " cleared")
        elif now and not was:
            changes.append(name + " set")
    for index, field in ((0, "iflag"), (1, "oflag"), (2, "cflag"), (4, "ispeed"), (5, "ospeed"),
                         (6, "cc")):
        if before[index] != after[index]:
            changes.append(field + " differs")
    if not changes:
        changes.append("lflag differs")
    return ", ".join(changes)


class Shell:
    def __init__(self):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)
        for sig in SHELL_IGNORES:
            signal.signal(sig, signal.SIG_IGN)
        os.set_blocking(self.master, False)
        self.screen = b""

    # --- the terminal ------------------------------------------------------

    def termios(self):
        return termios.tcgetattr(self.slave)

    def echo_is_on(self):
        return bool(self.termios()[3] & termios.ECHO)

    def type(self, data):
        os.write(self.master, data)

    def pump(self, wait=0.0):
        """Reads what the jobs wrote to the terminal into self.screen."""
        ready, _, _ = select.select([self.master], [], [], wait)
        while ready:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            self.screen += chunk
            ready, _, _ = select.select([self.master], [], [], 0)

    def drain(self, quiet=0.02):
        """Reads until the terminal has been quiet for `quiet` seconds (the
        pty passes output on asynchronously, after the writer may have gone)."""
        while True:
            before = len(self.screen)
            self.pump(quiet)
            if len(self.screen) == before:
                return

    def mark(self):
        self.pump()
        return len(self.screen)

    def expect(self, text, since=0, timeout=5.0):
        """True once text appears on the screen after position `since`."""
        deadline = time.monotonic() + timeout
        while True:
            if text.encode() in self.screen[since:]:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.05))

    def wait_until(self, condition, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            self.pump(0.005)

    def take_terminal(self):
        os.tcsetpgrp(self.slave, os.getpgrp())

    # --- jobs ----------------------------------------------------------------

    def start(self, argv, env=None, foreground=True):
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                if foreground:
                    os.tcsetpgrp(self.slave, os.getpid())  # SIGTTOU still ignored here
                for sig in SHELL_IGNORES + PYTHON_IGNORES + INHERITED_IGNORES:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGQUIT: no core file
                for fd in (0, 1, 2):
                    os.dup2(self.slave, fd)
                os.closerange(3, 1 << 16)
                os.execve(argv[0], argv, env if env is not None else os.environ)
            finally:
                os._exit(127)
        try:
            os.setpgid(pid, pid)  # both sides, as shells do: no race with exec
        except OSError:
            pass
        if foreground:
            try:
                os.tcsetpgrp(self.slave, pid)
            except OSError:
                pass
        return Job(self, pid)


class Job:
    def __init__(self, shell, pid):
        self.shell = shell
        self.pid = pid
        self.done = False

    def wait(self, timeout=5.0):
        """('exited', code), ('killed', sig), ('stopped', sig) or ('running', None).

        When the job exits or stops, the shell takes the terminal back."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WUNTRACED | os.WNOHANG)
            if pid == self.pid:
                self.shell.take_terminal()
                self.shell.drain()
                if os.WIFSTOPPED(status):
                    return ("stopped", os.WSTOPSIG(status))
                self.done = True
                if os.WIFSIGNALED(status):
                    return ("killed", os.WTERMSIG(status))
                return ("exited", os.WEXITSTATUS(status))
            if time.monotonic() >= deadline:
                return ("running", None)
            self.shell.pump(0.005)

    def fg(self):
        """The shell's fg: the terminal to the job, then SIGCONT."""
        os.tcsetpgrp(self.shell.slave, self.pid)
        os.killpg(self.pid, signal.SIGCONT)

    def kill(self, sig):
        os.kill(self.pid, sig)

    def reap(self):
        """Ends a job the test is done with, whatever state it is in."""
        if self.done:
            return
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except OSError:
                pass
        os.waitpid(self.pid, 0)
        self.done = True
        self.shell.take_terminal()


def outcome_text(outcome):
    kind, value = outcome
    if kind == "exited":
        return "exit %d" % value
    if kind == "running":
        return "still running"
    return "%s by %s" % (kind, signal.Signals(value).name)
