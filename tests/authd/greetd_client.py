"""A greetd-IPC client of our own, and a runner for authd, for the tests.

The client speaks greetd-ipc(7) itself: a native-endian u32 length, then UTF-8
JSON. It can also send raw bytes, so the tests can be hostile. The runner
starts authd on a socket in a temporary directory and reads its standard
output (one JSON event per line) on a thread.
"""
import json
import os
import queue
import resource
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

BUILD = os.environ.get("HANDOFF_TEST_BUILDDIR", ".")
SERVICES = os.path.join(BUILD, "services")
# HANDOFF_AUTHD_WRAPPER runs authd under a tool (valgrind); tools/check sets it.
WRAPPER = os.environ.get("HANDOFF_AUTHD_WRAPPER", "").split()
TIMEOUT = float(os.environ.get("HANDOFF_AUTHD_TIMEOUT", "30"))


class Closed(Exception):
    """The daemon closed the connection."""


class Client:
    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.send_raw(struct.pack("=I", len(payload)) + payload)

    def send(self, obj):
        self.send_frame(json.dumps(obj).encode())

    def _exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise Closed()
            data += chunk
        return data

    def receive(self):
        (length,) = struct.unpack("=I", self._exactly(4))
        return json.loads(self._exactly(length).decode("utf-8"))

    def request(self, obj):
        self.send(obj)
        return self.receive()

    def is_closed(self):
        """True when the daemon has closed its end (EOF, or a reset)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    # The protocol's requests.
    def create(self, username):
        return self.request({"type": "create_session", "username": username})

    def answer(self, response=None):
        obj = {"type": "post_auth_message_response"}
        if response is not None:
            obj["response"] = response
        return self.request(obj)

    def start(self, cmd, env=()):
        return self.request({"type": "start_session", "cmd": list(cmd), "env": list(env)})

    def cancel(self):
        return self.request({"type": "cancel_session"})

    def log_in(self, username, answers, info=None):
        """create_session, then answer prompts from `answers` in order and
        acknowledge info/error messages (collected in `info`). Returns the
        final response (success or error)."""
        answers = list(answers)
        reply = self.create(username)
        while reply["type"] == "auth_message":
            if reply["auth_message_type"] in ("visible", "secret"):
                reply = self.answer(answers.pop(0))
            else:
                if info is not None:
                    info.append((reply["auth_message_type"], reply["auth_message"]))
                reply = self.answer()
        return reply


class Daemon:
    """authd on a socket of its own; stdout events collected on a thread."""

    def __init__(self, authd, service="matrix", extra=(), confdir=SERVICES, env=None,
                 max_fds=None):
        self.dir = tempfile.mkdtemp(prefix="authd-test-")
        self.socket = os.path.join(self.dir, "authd.sock")
        command = WRAPPER + [authd, "--socket", self.socket, "--service", service]
        if confdir:
            command += ["--confdir", confdir]
        command += list(extra)
        # Where each session's PAM runs (authd's --isolation), set per test by meson.
        if os.environ.get("HANDOFF_AUTHD_ISOLATION"):
            command += ["--isolation", os.environ["HANDOFF_AUTHD_ISOLATION"]]
        limit = None
        if max_fds is not None:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, max_fds))
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, preexec_fn=limit)
        self.events = queue.Queue()
        self.all_events = []
        self.stderr = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        first = self.next_event(timeout=TIMEOUT * 2)
        if first.get("event") != "listening":
            raise RuntimeError("authd did not start: %r %r" % (first, self.stderr))
        # The threads of an idle daemon, counted after one session has come and
        # gone: its own, plus any a sanitizer starts with the first thread.
        warm = self.client()
        warm.create("warm-up")
        warm.cancel()
        warm.close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            stats = self.stats()
            if stats["sessions"] == 0 and stats["ending"] == 0 and stats["clients"] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("authd does not settle after the warm-up: %r" % stats)
            time.sleep(0.02)
        self.idle_threads = stats["threads"]

    def _read_stdout(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            self.all_events.append(event)
            self.events.put(event)
        self.events.put({"event": "eof"})

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def next_event(self, kind=None, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %s event from authd" % (kind or "any"))
            event = self.events.get(timeout=left)
            if event.get("event") == "eof" or kind is None or event.get("event") == kind:
                return event

    def client(self):
        return Client(self.socket)

    def stats(self):
        self.proc.send_signal(signal.SIGUSR1)
        return self.next_event("stats")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit code and stderr (sanitizer and valgrind reports)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        time.sleep(0.05)  # let the reader threads drain the pipes
        try:
            os.rmdir(self.dir)
        except OSError:
            pass
        # pam_wrapper's own complaints (--preload runs: other processes racing
        # for its /tmp/pam.X directories) are not authd's output.
        return code, "".join(line for line in self.stderr if not line.startswith("PWRAP_"))
