#!/usr/bin/env python3
"""The differential test: the demo module (handoff) and its C twin written with
Linux-PAM's helpers (pam_c_demo.c), each under the same hostile applications
(hostile_app.cpp), each run under valgrind under pam_wrapper.

usage: differential.py --check|--write README HOSTILE_APP VALGRIND

For every case and module it records: a crash (the process killed by a
signal), memory errors (valgrind's invalid reads, writes and frees, uses of
uninitialised values), definitely lost bytes, and what pam_authenticate
returned. The test fails when the handoff module is worse than the C one on
any of them in any case: it crashes, errs, leaks or returns a wrong code where
the C module does not (memory errors ranked: a write or free out of bounds is
worse than a read, which is worse than reading uninitialised bytes). The table of results is README.md's (between the
differential-table markers): --check fails when they differ, --write puts the
measured table there. The environment (pam_wrapper, the service directory)
comes from the Meson test.
"""
import concurrent.futures
import re
import subprocess
import sys
import tempfile

PAM_NAMES = {0: "PAM_SUCCESS", 4: "PAM_SYSTEM_ERR", 5: "PAM_BUF_ERR", 7: "PAM_AUTH_ERR",
             9: "PAM_AUTHINFO_UNAVAIL", 19: "PAM_CONV_ERR", 25: "PAM_ABORT",
             30: "PAM_CONV_AGAIN", 31: "PAM_INCOMPLETE", 3: "PAM_SERVICE_ERR"}

# A module failing the call: any code but success or "call again".
FAILURE = "a failure code"

# case: (what the application does, the codes a correct module returns)
CASES = [
    ("right", "answers the right code", ["PAM_SUCCESS"]),
    ("wrong", "answers a wrong code", ["PAM_AUTH_ERR"]),
    ("null_resp", "returns PAM_SUCCESS and leaves `*resp` NULL", FAILURE),
    ("null_answer", "answers the prompt with a NULL `resp`", FAILURE),
    ("garbage", "answers every slot, messages too, with bytes that are no text and "
                "`resp_retcode` 0x5a5a5a5a", FAILURE),
    ("wrong_count", "returns one `pam_response` fewer than `num_msg` (answering the prompts "
                    "among them)", FAILURE),
    ("unterminated", "answers with 600 bytes and no NUL", FAILURE),
    ("conv_again", "returns `PAM_CONV_AGAIN`", ["PAM_INCOMPLETE"]),
    ("buf_err", "returns `PAM_BUF_ERR`", FAILURE),
    ("set_data_reentry", "three attempts; in the second, the conversation stores one byte "
                         "with `pam_set_data` under `pam_handoff_demo.attempts`, the name both "
                         "modules' code gives its count",
     ["PAM_AUTH_ERR, PAM_AUTH_ERR, PAM_SUCCESS"]),
    ("pam_end_inside", "calls `pam_end` from inside the conversation, then answers rightly",
     ["PAM_SUCCESS"]),
    ("cancel", "its thread is cancelled (`pthread_cancel`) while the conversation waits",
     ["cancelled"]),
]
MODULES = [("C module with Linux-PAM helpers", "diff_c"), ("handoff module", "diff_handoff")]

BEGIN = "<!-- differential-table:begin (tests/pam/differential/differential.py --write) -->"
END = "<!-- differential-table:end -->"

MEMORY_ERROR = re.compile(r"^==\d+== (Invalid (read|write|free)|Mismatched free|"
                          r"Conditional jump or move depends on uninitialised|"
                          r"Use of uninitialised|Syscall param .* (uninitialised|unaddressable)|"
                          r"Source and destination overlap)", re.M)
DEFINITELY = re.compile(r"definitely lost: ([\d,]+) bytes")
SIGNAL = re.compile(r"Process terminating with default action of signal (\d+) \((\w+)\)")


class Outcome:
    def __init__(self, codes, crash, errors, leaked):
        self.codes, self.crash, self.errors, self.leaked = codes, crash, errors, leaked

    def code_ok(self, wanted):
        if self.crash or self.codes is None:
            return False
        if wanted == FAILURE:
            return self.codes not in ("PAM_SUCCESS", "PAM_INCOMPLETE", "PAM_CONV_AGAIN", "cancelled")
        return self.codes in wanted

    def cell(self):
        parts = ["crash (%s)" % self.crash] if self.crash else [self.codes or "no result"]
        if self.errors:
            parts.append(", ".join(self.errors))
        if self.leaked:
            parts.append("leaks %d bytes" % self.leaked)
        return "; ".join(parts)


# How bad a memory error is: writing or freeing what is not one's own, reading
# it, reading what was never written.
SEVERITY = {"invalid write": 3, "invalid free": 3, "mismatched free": 3, "invalid read": 2,
            "overlapping copy": 2, "bad syscall argument": 2, "uninitialised value": 1}


def severity(outcome):
    return max((SEVERITY[k] for k in outcome.errors), default=0)


def run(app, valgrind, service, case):
    # pam_wrapper's /tmp/pam.X directories collide when several test runs
    # share the machine ("Failed to copy config files"): such a run says
    # nothing about the module, so it is run again.
    for _ in range(5):
        outcome, text, flake = run_once(app, valgrind, service, case)
        if not flake:
            break
    return outcome, text


def run_once(app, valgrind, service, case):
    with tempfile.NamedTemporaryFile(prefix="handoff-differential-", suffix=".log") as log:
        command = [valgrind, "--log-file=" + log.name, "--leak-check=full",
                   "--show-leak-kinds=definite", "--num-callers=30", app, service, case]
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        text = open(log.name, errors="replace").read()
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    flake = "pwrap_init: Failed to copy config files" in err or "pam_start failed" in out
    codes = None
    m = re.search(r"^codes: (.*)$", out, re.M)
    if m:
        raw = m.group(1)
        codes = ", ".join(PAM_NAMES.get(int(c), c) if c.isdigit() else c for c in raw.split(","))
    crash = None
    s = SIGNAL.search(text)
    if s:
        crash = "SIG" + s.group(2)
    elif proc.returncode < 0:
        crash = "signal %d" % -proc.returncode
    kinds = []
    for e in MEMORY_ERROR.finditer(text):
        kind = e.group(1).lower()
        kind = {"conditional jump or move depends on uninitialised": "uninitialised value",
                "use of uninitialised": "uninitialised value",
                "source and destination overlap": "overlapping copy"}.get(kind, kind)
        if kind.startswith("syscall param"):
            kind = "bad syscall argument"
        if kind not in kinds:
            kinds.append(kind)
    leaked = sum(int(b.replace(",", "")) for b in DEFINITELY.findall(text))
    return Outcome(codes, crash, kinds, leaked), text, flake


def table(results):
    lines = ["| the application | " + " | ".join(name for name, _ in MODULES) + " |",
             "| --- | --- | --- |"]
    for case, what, _ in CASES:
        lines.append("| %s | %s |" % (what, " | ".join(results[(case, s)].cell() for _, s in MODULES)))
    return "\n".join(lines)


def main(argv):
    if len(argv) != 5 or argv[1] not in ("--check", "--write"):
        print(__doc__)
        return 2
    mode, readme, app, valgrind = argv[1:]
    results = {}
    worse = []
    # Two runs at a time: valgrind's start-up dominates, and the machine is shared.
    jobs = [(case, service) for case, _, _ in CASES for _, service in MODULES]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda job: run(app, valgrind, job[1], job[0]), jobs))
    for (case, service), (outcome, log) in zip(jobs, done):
        results[(case, service)] = outcome
        print("%-17s %-13s %s" % (case, service, outcome.cell()))
        if outcome.crash or outcome.errors or outcome.codes is None:
            print("\n".join("    " + line for line in log.splitlines()[:60]))
    for case, what, wanted in CASES:
        c, h = results[(case, "diff_c")], results[(case, "diff_handoff")]
        if h.crash and not c.crash:
            worse.append("%s: the handoff module crashes (%s), the C one does not" % (case, h.crash))
        if severity(h) > severity(c):
            worse.append("%s: the handoff module has worse memory errors (%s) than the C one (%s)"
                         % (case, ", ".join(h.errors), ", ".join(c.errors) or "none"))
        if h.leaked and not c.leaked:
            worse.append("%s: the handoff module leaks %d bytes, the C one nothing" % (case, h.leaked))
        if c.code_ok(wanted) and not h.code_ok(wanted):
            worse.append("%s: the handoff module returns %s, the C one %s" % (case, h.codes, c.codes))
    measured = table(results)
    print("\n" + measured + "\n")
    text = open(readme).read()
    if BEGIN not in text or END not in text:
        worse.append("README.md has no differential-table markers")
    else:
        before, rest = text.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        if mode == "--write":
            with open(readme, "w") as f:
                f.write(before + BEGIN + "\n" + measured + "\n" + END + after)
        elif rest.split(END, 1)[0].strip() != measured.strip():
            worse.append("README.md's differential table differs from what was measured "
                         "(run differential.py --write)")
    for w in worse:
        print("FAILED: " + w)
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
