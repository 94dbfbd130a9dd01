#!/usr/bin/env python3
"""The terminal under signals, in a pseudo-terminal, as a shell runs a program.

usage: terminal_signals.py direct TERMINAL_PROMPT
       terminal_signals.py pamcheck PAMCHECK [PAMTESTER]

For every signal pam::terminal catches and for Ctrl-C, Ctrl-D, Ctrl-Z, a
timeout and a normal answer, the program prompts for a secret in its own
foreground process group (pty_shell.py plays the shell) and the test checks:
echo is off at the prompt; afterwards the termios is identical to the one
before; the process ended by the same signal, or stopped, and after the
shell's fg (SIGCONT) prompted again with echo off and accepted an answer.

`direct` runs tests/pam/terminal_prompt (pam::terminal in a host program)
with extra cases (threads, ignored signals, a host's own handler, stdin).
`pamcheck` runs pamcheck on the pam_wrapper service `matrix`, and Debian's
pamtester on the same cases: pamtester's behaviour is printed beside ours
and checked against what README's comparison says of it (pamtester 0.1.2-4),
so the comparison cannot go stale unnoticed.

Not under valgrind: valgrind 3.19 does not stop a process on a stop signal it
re-sends itself (raise(SIGTSTP) returns at once), and every start takes
seconds; the in-process tests (test_pam_terminal.cpp) run under valgrind.
"""
import os
import signal
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pty_shell  # noqa: E402

S = signal.Signals
ANSWER = b"secret\n"
PROMPT = "Password: "
# Scales every wait (a loaded machine, a sanitizer's startup).
SLOW = float(os.environ.get("HANDOFF_PTY_SLOW", "1"))


class Case:
    def __init__(self, name, act=None, want=None, text=None, args=(), background=False,
                 settle=5.0, echo=True, prompt=PROMPT, absent=None, pamtester=None):
        self.name = name
        self.act = act            # (shell, job) -> None, after the prompt shows
        self.want = want          # expected first outcome for our programs
        self.text = text          # expected on the screen (after the case)
        self.args = list(args)    # extra arguments
        self.background = background
        self.settle = settle      # how long to wait for the first outcome
        self.echo = echo          # an echo-off prompt (echo must be off at it)
        self.prompt = prompt      # the prompt to wait for
        self.absent = absent      # must never show on the screen
        # What README says pamtester does: (outcome, termios, part of "then").
        self.pamtester = pamtester


def key(data):
    return lambda shell, job: shell.type(data)


def send(sig):
    return lambda shell, job: job.kill(sig)


def common_cases(cancel_outcome):
    """The issue's table: every caught signal, the keys, a timeout, an answer."""
    echo_left_off = "ECHO cleared"
    blocked_tstp = ("still running", "(still prompting)", "answer: stopped by SIGTSTP")
    cases = [
        Case("answer", key(ANSWER), ("exited", 0), "ok", pamtester=("exit 0", "same", None)),
        Case("Ctrl-C", key(b"\x03"), cancel_outcome,
             pamtester=("killed by SIGINT", echo_left_off, None)),
        Case("kill -INT", send(S.SIGINT), cancel_outcome,
             pamtester=("killed by SIGINT", echo_left_off, None)),
        Case("Ctrl-D", key(b"\x04"), ("exited", 1), "input closed",
             pamtester=("exit 1", "same", None)),
        Case("Ctrl-Z", key(b"\x1a"), ("stopped", S.SIGTSTP), pamtester=blocked_tstp),
        Case("Ctrl-\\", key(b"\x1c"), ("killed", S.SIGQUIT),
             pamtester=("killed by SIGQUIT", echo_left_off, None)),
    ]
    for sig in (S.SIGTERM, S.SIGHUP, S.SIGQUIT, S.SIGALRM, S.SIGPIPE):
        cases.append(Case("kill -" + sig.name[3:], send(sig), ("killed", sig),
                          pamtester=("killed by " + sig.name, echo_left_off, None)))
    cases.append(Case("kill -TSTP", send(S.SIGTSTP), ("stopped", S.SIGTSTP),
                      pamtester=blocked_tstp))
    for sig in (S.SIGTTIN, S.SIGTTOU):
        cases.append(Case("kill -" + sig.name[3:], send(sig), ("stopped", sig),
                          pamtester=("stopped by " + sig.name, echo_left_off,
                                     "fg: no new prompt")))
    cases.append(Case("started in background", None, ("stopped", S.SIGTTOU), background=True,
                      pamtester=("stopped by SIGTTOU", "same", "fg: prompt again")))
    return cases


def run_case(shell, program, argv, case, env, is_ours):
    """Runs one case; returns (row, problems)."""
    pristine = shell.termios()
    problems = []
    row = {"case": case.name, "program": program}
    start = shell.mark()
    job = shell.start(argv, env, foreground=not case.background)
    try:
        if case.background:
            row["echo"] = "-"
        else:
            if not shell.expect(case.prompt, start, timeout=5 * SLOW):
                problems.append("no prompt within %.0f s" % (5 * SLOW))
            echo_off = shell.wait_until(lambda: not shell.echo_is_on(), 0.5 * SLOW)
            row["echo"] = "off" if echo_off else "ON"
            if is_ours and echo_off != case.echo:
                problems.append("echo %s at the prompt" % row["echo"])
            if case.act:
                case.act(shell, job)
        if case.want[0] == "running":
            settle = 0.3  # long enough for a signal that would end it
        else:
            settle = (case.settle if is_ours else 1.0) * SLOW
        first = job.wait(timeout=settle)
        row["outcome"] = pty_shell.outcome_text(first)
        change = pty_shell.describe_termios_change(pristine, shell.termios())
        row["termios"] = "same" if not change else change
        if first[0] == "running":
            row["termios"] = "(still prompting)"
        if is_ours:
            if first != case.want:
                problems.append("outcome %s, wanted %s"
                                % (row["outcome"], pty_shell.outcome_text(case.want)))
            if change and first[0] != "running":
                problems.append("termios after: " + change)
        if first[0] in ("stopped", "running"):
            row["then"] = continue_and_answer(shell, job, first, pristine, case, problems,
                                              is_ours)
        screen = shell.screen[start:].decode(errors="replace")
        if is_ours and case.text and not expected_text(case.text, program) in screen:
            problems.append("%r not on the screen: %r" % (expected_text(case.text, program),
                                                          screen))
        if is_ours and case.absent and case.absent in screen:
            problems.append("%r shown: %r" % (case.absent, screen))
        if is_ours and case.echo and case.prompt + ANSWER.decode().strip() in screen:
            problems.append("the secret was echoed: %r" % screen)
    finally:
        job.reap()
        termios.tcsetattr(shell.slave, termios.TCSANOW, pristine)  # pamtester leaves echo off
    return row, problems


def continue_and_answer(shell, job, first, pristine, case, problems, is_ours):
    """After a stop: fg, a new prompt with echo off, an answer. After a signal
    that changed nothing: the same prompt still takes an answer."""
    since = shell.mark()
    if first[0] == "stopped":
        job.fg()
        prompted = shell.expect(case.prompt, since, timeout=(3 if is_ours else 1) * SLOW)
    else:
        prompted = None
    echo_off = shell.wait_until(lambda: not shell.echo_is_on(), (0.5 if is_ours else 0.2) * SLOW)
    shell.type(ANSWER)
    final = job.wait(timeout=(5 if is_ours else 2) * SLOW)
    change = pty_shell.describe_termios_change(pristine, shell.termios())
    parts = []
    if prompted is not None:
        parts.append("fg: prompt again" if prompted else "fg: no new prompt")
        parts.append("echo off" if echo_off else "echo ON")
    parts.append("answer: " + pty_shell.outcome_text(final))
    parts.append("termios same" if not change else "termios: " + change)
    if is_ours:
        if prompted is False:
            problems.append("no prompt after fg")
        if case.echo and not echo_off:
            problems.append("echo on at the prompt after fg")
        if final != ("exited", 0):
            problems.append("after fg the answer gave %s" % pty_shell.outcome_text(final))
        if change:
            problems.append("termios at the end: " + change)
    return ", ".join(parts)


def expected_text(text, program):
    if text == "ok":
        return "successfully authenticated" if program != "terminal_prompt" else "answer 1: secret"
    return text


def print_table(rows):
    columns = [("case", "case"), ("program", "program"), ("echo", "echo at prompt"),
               ("termios", "termios after (or at stop)"), ("outcome", "outcome"),
               ("then", "after fg / answer")]
    widths = {k: max(len(title), *(len(str(r.get(k, ""))) for r in rows)) for k, title in columns}
    line = lambda values: "| " + " | ".join(str(values.get(k, "")).ljust(widths[k])
                                             for k, _ in columns) + " |"
    print(line({k: title for k, title in columns}))
    print("|" + "|".join("-" * (widths[k] + 2) for k, _ in columns) + "|")
    for r in rows:
        print(line(r))


# --- the direct program ------------------------------------------------------

def direct_cases():
    cancelled = ("exited", 1)
    cases = common_cases(cancelled)
    for c in cases:
        if c.name in ("Ctrl-C", "kill -INT"):
            c.text = "failure: cancelled"
    cases.append(Case("timeout", None, ("exited", 1), "failure: timed out",
                      args=["--timeout", "300"]))
    cases += [
        Case("Ctrl-C, --reraise", key(b"\x03"), ("killed", S.SIGINT), args=["--reraise"]),
        Case("kill -TERM, prompt in a thread", send(S.SIGTERM), ("killed", S.SIGTERM),
             args=["--in-thread"]),
        Case("Ctrl-Z, prompt in a thread", key(b"\x1a"), ("stopped", S.SIGTSTP),
             args=["--in-thread"]),
        Case("Ctrl-C, prompt in a thread", key(b"\x03"), cancelled, "failure: cancelled",
             args=["--in-thread"]),
        Case("kill -HUP, HUP ignored", send(S.SIGHUP), ("running", None), args=["--ignore", "HUP"]),
        Case("kill -TERM, host's own handler", send(S.SIGTERM), cancelled,
             "host handler ran: %d" % S.SIGTERM, args=["--host-handler", "TERM"]),
        Case("Ctrl-Z, echo-on prompt", key(b"\x1a"), ("stopped", S.SIGTSTP), args=["--echo-on"],
             echo=False),
        Case("answer, --stdin", key(ANSWER), ("exited", 0), "ok", args=["--stdin"]),
        Case("kill -TERM, --stdin", send(S.SIGTERM), ("killed", S.SIGTERM), args=["--stdin"]),
        Case("Ctrl-C at the first of two prompts", key(b"\x03"), cancelled, "failure: cancelled",
             args=["--prompts", "2"], prompt="Password 1: ", absent="Password 2: "),
    ]
    return cases


def two_threads(shell, program, problems):
    """Two threads prompt at once: the prompts take turns, echo is off at
    each, and the terminal ends as it began."""
    pristine = shell.termios()
    start = shell.mark()
    job = shell.start([program, "--two-threads"])
    answered = []
    try:
        for n in (1, 2):
            ok = shell.wait_until(
                lambda: shell.screen[start:].count(b"First: ") + shell.screen[start:].count(
                    b"Second: ") >= n, 5 * SLOW)
            if not ok:
                problems.append("prompt %d did not show" % n)
                break
            time.sleep(0.05)  # a second prompt would show now if they overlapped
            shell.pump()
            shown = shell.screen[start:].count(b"First: ") + shell.screen[start:].count(b"Second: ")
            if shown != n:
                problems.append("%d prompts on the screen at once" % shown)
            if shell.echo_is_on():
                problems.append("echo on at prompt %d" % n)
            shell.type(b"answer%d\n" % n)
            answered.append(n)
        outcome = job.wait(timeout=5 * SLOW)
        change = pty_shell.describe_termios_change(pristine, shell.termios())
        if outcome != ("exited", 0):
            problems.append("two threads: %s" % pty_shell.outcome_text(outcome))
        if change:
            problems.append("two threads, termios after: " + change)
        screen = shell.screen[start:].decode(errors="replace")
        for n in (1, 2):
            if "answer 1: answer%d" % n not in screen:
                problems.append("two threads: answer%d missing from %r" % (n, screen))
    finally:
        job.reap()
        termios.tcsetattr(shell.slave, termios.TCSANOW, pristine)
    return {"case": "two threads prompt at once", "program": "terminal_prompt",
            "echo": "off", "termios": "same" if not change else change,
            "outcome": pty_shell.outcome_text(outcome), "then": "prompts took turns"}


def run_direct(program):
    shell = pty_shell.Shell()
    rows, failures = [], []
    for case in direct_cases():
        row, problems = run_case(shell, "terminal_prompt", [program] + case.args, case, None, True)
        rows.append(row)
        failures += ["%s: %s" % (case.name, p) for p in problems]
    problems = []
    rows.append(two_threads(shell, program, problems))
    failures += ["two threads: " + p for p in problems]
    return rows, failures


# --- pamcheck beside pamtester -------------------------------------------------

def run_pam(pamcheck, pamtester):
    shell = pty_shell.Shell()
    rows, failures = [], []
    cases = common_cases(("killed", S.SIGINT))
    cases.append(Case("timeout", None, ("exited", 1), "timed out", args=["--timeout", "1"]))
    command = ["matrix", "alice", "authenticate"]
    for case in cases:
        ours = [pamcheck] + case.args + command
        row, problems = run_case(shell, "pamcheck", ours, case, None, True)
        rows.append(row)
        failures += ["pamcheck %s: %s" % (case.name, p) for p in problems]
        if not pamtester:
            continue
        if case.args:  # pamtester has no --timeout
            rows.append({"case": case.name, "program": "pamtester", "outcome": "n/a (no option)"})
            continue
        row, _ = run_case(shell, "pamtester", [pamtester] + command, case, None, False)
        rows.append(row)
        outcome, change, then = case.pamtester
        if (row["outcome"], row["termios"]) != (outcome, change) or (
                then and then not in row.get("then", "")):
            failures.append("pamtester %s: %s / %s / %s, but README says %s / %s / %s"
                            % (case.name, row["outcome"], row["termios"], row.get("then", ""),
                               outcome, change, then or ""))
    if not pamtester:
        print("pamtester: not installed, its column is missing")
    return rows, failures


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("direct", "pamcheck"):
        print(__doc__)
        return 2

    def body():
        began = time.monotonic()
        if args[0] == "direct":
            rows, failures = run_direct(args[1])
        else:
            rows, failures = run_pam(args[1], args[2] if len(args) > 2 and args[2] else None)
        print_table(rows)
        print("%d cases in %.1f s" % (len(rows), time.monotonic() - began))
        for f in failures:
            print("FAILED: " + f)
        return 1 if failures else 0

    return pty_shell.in_new_session(body)


if __name__ == "__main__":
    sys.exit(main())
