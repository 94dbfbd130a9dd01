#!/usr/bin/env python3
"""authd against the real greetd: the same request sequences, the same answers.

usage: conformance.py AUTHD [--table] [--only NAME,...]
       conformance.py --greeter RESULT_FILE SEQUENCE   (run by greetd)

Each sequence is a list of requests a greeter sends, some on new connections.
It runs against greetd (Debian's package, as root on a free virtual console,
its PAM redirected through pam_wrapper: the stack of the sequence in a
service directory of our own, no system file touched), with this script as
greetd's greeter, and against authd with the same PAM stack. The answers are
compared by type, error_type, auth_message_type and auth_message. A sequence
whose answers differ must be listed in KNOWN_DIFFERENCES with its reason (a
deliberate difference, each with a test of authd's side in authd_test.py);
any other difference fails the run, and so does a listed one that went away.

Without root, a virtual console, greetd or libpam_wrapper the run is skipped
(exit 77) with the reason.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import greetd_client as g  # noqa: E402

GREETD = "/usr/sbin/greetd"
REPLY_TIMEOUT = 2.0  # greetd answers at once; silence this long is "no reply"

MATRIX = "matrix"  # the stack most sequences use: pam_matrix, password "secret"


def stack(kind, moddir, passdb, testmod):
    matrix = "%s/pam_matrix.so passdb=%s" % (moddir, passdb)
    stacks = {
        "matrix": ["auth required " + matrix, "account required " + matrix,
                   "password required " + matrix, "session required " + matrix],
        "info": ["auth required pam_echo.so Welcome %u", "auth required %s verbose" % matrix,
                 "account required pam_permit.so", "session required pam_permit.so"],
        "permit": ["auth required pam_permit.so", "account required pam_permit.so",
                   "session required pam_permit.so"],
        "account_denied": ["auth required " + matrix, "account required pam_deny.so",
                           "session required pam_permit.so"],
        "setcred_fails": ["auth required " + matrix, "auth required %s setcred_fails" % testmod,
                          "account required pam_permit.so", "session required pam_permit.so"],
        "visible": ["auth required %s visible" % testmod, "account required pam_permit.so",
                    "session required pam_permit.so"],
    }
    return "\n".join(stacks[kind]) + "\n"


# ---------------------------------------------------------------------------
# The sequences. A step is a request (sent on the current connection, one
# answer read), "new" (the next requests go on a new connection, the old one
# stays open), "close" (the current connection closed, a new one opened),
# ("raw", bytes) (a payload sent as it is), ("sleep", s).
# ---------------------------------------------------------------------------

def create(user="root"):
    return {"type": "create_session", "username": user}


def answer(response=None, omit=False):
    r = {"type": "post_auth_message_response"}
    if not omit:
        r["response"] = response
    return r


def start(cmd=("true",), env=None):
    r = {"type": "start_session", "cmd": list(cmd)}
    if env is not None:
        r["env"] = env
    return r


CANCEL = {"type": "cancel_session"}
PAUSE = ("sleep", 0.3)  # greetd may stop answering a request sent at once after an auth_error

SEQUENCES = [
    # name, PAM stack, steps
    ("login", MATRIX, [create(), answer("secret"), start()]),
    ("login_with_env", MATRIX, [create(), answer("secret"), start(env=["A=b"])]),
    ("login_then_cancel", MATRIX, [create(), answer("secret"), CANCEL, create()]),
    ("wrong_password", MATRIX, [create(), answer("nope"), PAUSE, start()]),
    ("unknown_user", MATRIX, [create("nobody"), answer("secret"), PAUSE, start()]),
    ("empty_password", MATRIX, [create(), answer(""), PAUSE, start()]),
    ("null_response_to_secret", MATRIX, [create(), answer(None), PAUSE, start()]),
    ("omitted_response_to_secret", MATRIX, [create(), answer(omit=True), PAUSE, start()]),
    ("after_auth_error_create", MATRIX, [create(), answer("nope"), PAUSE, create()]),
    ("after_auth_error_start", MATRIX, [create(), answer("nope"), PAUSE, start()]),
    ("after_auth_error_answer", MATRIX, [create(), answer("nope"), PAUSE, answer("secret")]),
    ("after_auth_error_cancel_create", MATRIX,
     [create(), answer("nope"), PAUSE, CANCEL, create(), answer("secret")]),
    ("after_auth_error_at_once", MATRIX, [create(), answer("nope"), create(), CANCEL]),
    ("start_before_auth", MATRIX, [create(), start(), answer("secret")]),
    ("start_before_auth_then_create", MATRIX, [create(), start(), create(), answer("secret")]),
    ("start_without_session", MATRIX, [start()]),
    ("answer_without_session", MATRIX, [answer("secret")]),
    ("cancel_without_session", MATRIX, [CANCEL, CANCEL]),
    ("create_twice", MATRIX, [create(), create()]),
    ("cancel_mid_prompt", MATRIX, [create(), CANCEL, create(), answer("secret")]),
    ("after_success_answer", MATRIX, [create(), answer("secret"), answer("secret")]),
    ("after_success_create", MATRIX, [create(), answer("secret"), create()]),
    ("start_twice", MATRIX, [create(), answer("secret"), start(), start()]),
    ("start_empty_cmd", MATRIX, [create(), answer("secret"), start(cmd=())]),
    ("connection_per_request", MATRIX,
     ["new", create(), "new", answer("secret"), "new", start()]),
    ("disconnect_mid_prompt", MATRIX, [create(), "close", answer("secret")]),
    ("disconnect_after_auth_error", MATRIX, [create(), answer("nope"), PAUSE, "close", create()]),
    ("second_connection_create", MATRIX, [create(), "new", create()]),
    ("second_connection_cancels", MATRIX, [create(), "new", CANCEL, create()]),
    ("bad_json", MATRIX, [("raw", b'{"type": "create_')]),
    ("unknown_type", MATRIX, [("raw", b'{"type": "reboot"}')]),
    ("create_without_username", MATRIX, [("raw", b'{"type": "create_session"}')]),
    ("response_a_number", MATRIX,
     [create(), ("raw", b'{"type": "post_auth_message_response", "response": 5}')]),
    ("info_messages", "info", [create(), answer(), answer("secret"), answer(), start()]),
    ("info_then_wrong", "info", [create(), answer(), answer("nope"), answer(), PAUSE, start()]),
    ("info_answered_with_text", "info", [create(), answer("hello"), answer("secret")]),
    ("no_prompt", "permit", [create(), start()]),
    ("account_denied", "account_denied", [create(), answer("secret"), PAUSE, start()]),
    ("setcred_fails", "setcred_fails", [create(), answer("secret"), PAUSE, start()]),
    ("visible_prompt_null", "visible", [create(), answer(None), PAUSE, start()]),
]

# Differences kept on purpose: sequence -> why (each has a test in authd_test.py).
CANCEL_AFTER_AUTH_ERROR = (
    "greetd's worker has exited after an auth_error, and its cancel_session reports the "
    "failed send to it as an error (the session is gone all the same); authd answers success "
    "(authd_test.py wrong_password)")
BAD_INPUT = (
    "greetd closes the connection without a reply; authd answers an error naming the fault "
    "and keeps the connection and the session (authd_test.py bad_input)")
INFO_AFTER_PROMPT = (
    "greetd does not answer the acknowledgement of an info or error message that follows the "
    "last prompt (the greeter hangs); authd answers (authd_test.py info_messages)")
# Where greetd's answer depends on timing: either result passes.
RACY = {
    "after_auth_error_at_once": (
        "greetd answers the cancel_session sent at once after an auth_error with success or with "
        "the error of its exiting worker, as the race goes; authd: success"),
}
KNOWN_DIFFERENCES = {
    "after_auth_error_cancel_create": CANCEL_AFTER_AUTH_ERROR,
    "bad_json": BAD_INPUT,
    "unknown_type": BAD_INPUT,
    "create_without_username": BAD_INPUT,
    "response_a_number": BAD_INPUT,
    "info_messages": INFO_AFTER_PROMPT,
    "info_then_wrong": INFO_AFTER_PROMPT,
}


# ---------------------------------------------------------------------------
# The greeter: one sequence against $GREETD_SOCK (or a socket), its answers
# written to a file as a JSON list.
# ---------------------------------------------------------------------------

def run_steps(path, steps):
    results = []
    conns = []

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(REPLY_TIMEOUT)
        s.connect(path)
        conns.append(s)
        return s

    def read_exactly(s, n):
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise g.Closed()
            data += chunk
        return data

    current = connect()
    for step in steps:
        if step == "new":
            current = connect()
            continue
        if step == "close":
            current.close()
            current = connect()
            continue
        if isinstance(step, tuple) and step[0] == "sleep":
            time.sleep(step[1])
            continue
        payload = step[1] if isinstance(step, tuple) else json.dumps(step).encode()
        try:
            current.sendall(struct.pack("=I", len(payload)) + payload)
            (length,) = struct.unpack("=I", read_exactly(current, 4))
            results.append(json.loads(read_exactly(current, length).decode()))
        except socket.timeout:
            results.append({"type": "no reply"})
            current = connect()
        except (g.Closed, ConnectionError):
            results.append({"type": "closed"})
            current = connect()
    for s in conns:
        s.close()
    return results


def greeter(result_file, name):
    if os.path.exists(result_file):
        return 0  # started again after a session: nothing more to do
    steps = dict((n, st) for n, _, st in SEQUENCES)[name]
    results = run_steps(os.environ["GREETD_SOCK"], steps)
    with open(result_file + ".tmp", "w") as f:
        json.dump(results, f)
    os.rename(result_file + ".tmp", result_file)
    return 0


# ---------------------------------------------------------------------------
# Running greetd and authd
# ---------------------------------------------------------------------------

def find_pam_wrapper():
    moddir = os.environ.get("HANDOFF_PAM_MODULES")
    if moddir and os.path.exists(os.path.join(moddir, "..", "libpam_wrapper.so")):
        return os.path.join(moddir, "..", "libpam_wrapper.so"), moddir
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        lib = os.path.join(d, "libpam_wrapper.so")
        if os.path.exists(lib):
            return lib, os.path.join(d, "pam_wrapper")
    return None, None


def ttys_in_use():
    used = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                target = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if target.startswith("/dev/tty") and target[8:].isdigit():
                    used.add(int(target[8:]))
        except OSError:
            pass
    return used


def free_vt():
    used = ttys_in_use()
    for n in range(63, 7, -1):
        if n not in used and os.path.exists("/dev/tty%d" % n):
            return n
    return None


def descendants(pid):
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(p))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(proc, grace=1.0):
    """greetd can ignore SIGTERM when stuck: SIGTERM, then SIGKILL by pid,
    greetd and every process it started (session workers too)."""
    pids = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    pids += [p for p in descendants(proc.pid) if p not in pids]
    survivors = [p for p in pids if running(p)] + ([proc.pid] if proc.poll() is None else [])
    for p in [proc.pid] + pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    return survivors


def running(pid):
    """Alive and not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Setup:
    def __init__(self, testmod):
        self.dir = tempfile.mkdtemp(prefix="authd-conformance-")
        self.lib, self.moddir = find_pam_wrapper()
        self.testmod = testmod
        self.passdb = os.path.join(self.dir, "passdb")
        with open(self.passdb, "w") as f:
            f.write("root:secret:greetd\n")

    def service_dir(self, kind):
        d = os.path.join(self.dir, "services-" + kind)
        if not os.path.isdir(d):
            os.mkdir(d)
            with open(os.path.join(d, "greetd"), "w") as f:
                f.write(stack(kind, self.moddir, self.passdb, self.testmod))
            with open(os.path.join(d, "greetd-greeter"), "w") as f:
                f.write("auth required pam_permit.so\naccount required pam_permit.so\n"
                        "session required pam_permit.so\n")
        return d

    def greetd(self, name, kind, vt):
        result = os.path.join(self.dir, name + ".json")
        config = os.path.join(self.dir, name + ".toml")
        with open(config, "w") as f:
            f.write('[terminal]\nvt = %d\n\n[default_session]\ncommand = "%s %s --greeter %s %s"\n'
                    'user = "root"\n' % (vt, sys.executable, os.path.abspath(__file__), result,
                                         name))
        env = dict(os.environ, LD_PRELOAD=self.lib, PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=self.service_dir(kind))
        proc = subprocess.Popen([GREETD, "--config", config], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(result) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        left = kill_tree(proc)
        if not os.path.exists(result):
            return [{"type": "greetd ended without the greeter's results"}], left
        with open(result) as f:
            return json.load(f), left

    def authd(self, authd, name, kind):
        steps = dict((n, st) for n, _, st in SEQUENCES)[name]
        d = g.Daemon(authd, service="greetd", confdir=self.service_dir(kind))
        try:
            return run_steps(d.socket, steps)
        finally:
            d.stop()


FIELDS = ("type", "error_type", "auth_message_type", "auth_message")


def key(reply):
    return tuple(reply.get(f) for f in FIELDS)


def show(reply):
    parts = [reply.get("type", "?")]
    for f in FIELDS[1:]:
        if f in reply:
            parts.append(str(reply[f]))
    if reply.get("type") == "error" and reply.get("error_type") == "error":
        parts.append(repr(reply.get("description", "")))
    return " ".join(parts)


def brief(reply):
    """A reply in a table cell."""
    t = reply.get("type")
    if t == "auth_message":
        return "%s `%s`" % (reply["auth_message_type"], reply["auth_message"])
    if t == "error" and reply.get("error_type") == "auth_error":
        return "auth_error"
    if t == "error":
        return "error “%s”" % reply.get("description", "")
    return t if t == "success" else "(%s)" % t


def brief_step(step):
    if step in ("new", "close"):
        return "[%s connection]" % step
    if isinstance(step, tuple):
        return "pause" if step[0] == "sleep" else "`%s`" % step[1].decode()
    t = step["type"]
    if t == "create_session":
        return "create(%s)" % step["username"]
    if t == "post_auth_message_response":
        return "answer(%s)" % ("omitted" if "response" not in step else
                               json.dumps(step["response"]))
    if t == "start_session":
        return "start(%s%s)" % (" ".join(step["cmd"]), ", env" if "env" in step else "")
    return "cancel"


def main(argv):
    if len(argv) >= 4 and argv[1] == "--greeter":
        return greeter(argv[2], argv[3])
    authd = argv[1]
    table = "--table" in argv
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].split(","))
    testmod = os.environ.get("HANDOFF_AUTHD_TESTMOD", "")
    lib, _ = find_pam_wrapper()
    vt = free_vt() if os.geteuid() == 0 else None
    why = None
    if os.geteuid() != 0:
        why = "not root (greetd needs root and a virtual console)"
    elif not os.path.exists(GREETD):
        why = "greetd is not installed (apt-get install greetd)"
    elif lib is None:
        why = "libpam_wrapper.so is not installed (apt-get install libpam-wrapper)"
    elif vt is None:
        why = "no free virtual console (/dev/ttyN)"
    elif not testmod:
        why = "HANDOFF_AUTHD_TESTMOD (the test PAM module) is not set"
    if why:
        print("SKIP: conformance against greetd: " + why)
        return 77
    setup = Setup(testmod)
    print("greetd on virtual console %d" % vt)
    rows, unexpected, flaky, outlived = [], [], [], 0
    started = time.monotonic()
    try:
        for name, kind, steps in SEQUENCES:
            if only and name not in only:
                continue
            known = name in KNOWN_DIFFERENCES
            racy = name in RACY
            for attempt in range(1 if racy else 2):
                theirs, left = setup.greetd(name, kind, vt)
                if not rows and theirs[0]["type"].startswith("greetd ended"):
                    # The first run: greetd cannot work here (a container's
                    # console it may not open), not a difference.
                    print("SKIP: conformance against greetd: greetd did not run its greeter "
                          "on virtual console %d" % vt)
                    return 77
                outlived += len(left)
                ours = setup.authd(authd, name, kind)
                same = len(theirs) == len(ours) and all(
                    key(a) == key(b) for a, b in zip(theirs, ours))
                if same != known:
                    break
                # greetd does not always answer alike (a request right after
                # an auth_error): once more before calling it a difference.
                if attempt == 0:
                    flaky.append((name, theirs, ours))
            if flaky and flaky[-1][0] == name and same != known:
                print("%-32s flaky: once %s" % (name, " | ".join(show(r) for r in flaky[-1][1])))
            elif flaky and flaky[-1][0] == name:
                flaky.pop()
            rows.append((name, theirs, ours, same))
            verdict = "same" if same else ("differs (known)" if known or racy else "DIFFERS")
            print("%-32s %s" % (name, verdict))
            if not same or table:
                print("    greetd: " + " | ".join(show(r) for r in theirs))
                print("    authd:  " + " | ".join(show(r) for r in ours))
            if same == known and not racy:
                unexpected.append(name)
    finally:
        shutil.rmtree(setup.dir, ignore_errors=True)
    same_count = sum(1 for r in rows if r[3])
    print("%d sequences, %d the same, %d different, %d answered differently by greetd once "
          "(%.0f s)" % (len(rows), same_count, len(rows) - same_count, len(flaky),
                        time.monotonic() - started))
    print("greetd's processes still running after its SIGTERM and a grace of 1 s: %d in %d runs"
          % (outlived, len(rows)))
    if "--markdown" in argv:
        print()
        print("| Sequence | greetd 0.9 | authd | Same, or why not |")
        print("|---|---|---|---|")
        steps = dict((n, st) for n, _, st in SEQUENCES)
        for name, theirs, ours, same in rows:
            print("| %s: %s | %s | %s | %s |" % (
                name, " → ".join(brief_step(st) for st in steps[name]),
                " → ".join(brief(r) for r in theirs),
                "the same" if [brief(r) for r in theirs] == [brief(r) for r in ours]
                else " → ".join(brief(r) for r in ours),
                RACY[name] if name in RACY else
                ("same" if [brief(r) for r in theirs] == [brief(r) for r in ours]
                 else "same (an `error`'s description is not compared)") if same
                else KNOWN_DIFFERENCES.get(name, "DIFFERS").split(" (authd_test")[0]))
    if unexpected:
        print("FAILED: unexpected result in: " + ", ".join(unexpected))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
