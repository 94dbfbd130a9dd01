#!/usr/bin/env python3
"""authd scenarios, each against a daemon of its own, with a client of ours.

usage: authd_test.py AUTHD SCENARIO

Services come from the test build (pam_matrix with the test password file,
read through --confdir, so no preload is needed). Every scenario ends the same
way: the daemon is still up, still logs a user in, has no PAM thread left, and
exits 0 on SIGTERM with nothing on stderr (no sanitizer or valgrind report).
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import greetd_client as g  # noqa: E402

failures = []


def expect(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED: " + what)


def expect_error(reply, error_type, description=None, what=""):
    ok = reply.get("type") == "error" and reply.get("error_type") == error_type
    if description is not None:
        ok = ok and description in reply.get("description", "")
    expect(ok, "%s: wanted error %s %r, got %r" % (what, error_type, description, reply))


def expect_prompt(reply, kind, text, what=""):
    expect(reply == {"type": "auth_message", "auth_message_type": kind, "auth_message": text},
           "%s: wanted %s %r, got %r" % (what, kind, text, reply))


def settle(daemon, sessions=0):
    """Waits until no PAM transaction is left (threads back to the idle count)."""
    deadline = time.monotonic() + g.TIMEOUT
    while True:
        stats = daemon.stats()
        if (stats["threads"] == daemon.idle_threads and stats["ending"] == 0
                and stats["sessions"] == sessions):
            return stats
        if time.monotonic() > deadline:
            expect(False, "PAM threads left behind: %r" % stats)
            return stats
        time.sleep(0.05)


def outcome(daemon, want, username="alice"):
    event = daemon.next_event("session")
    expect(event.get("outcome") == want and event.get("username") == username,
           "session outcome %r for %r, got %r" % (want, username, event))


# ---------------------------------------------------------------------------
# Scenarios. Each gets a running daemon (and may start its own).
# ---------------------------------------------------------------------------


def right_password(d, authd):
    c = d.client()
    reply = c.create("alice")
    expect_prompt(reply, "secret", "Password: ", "create_session")
    expect(c.answer("secret") == {"type": "success"}, "the right password is success")
    outcome(d, "success")
    expect(c.start(["sway", "--debug"], ["XDG_SESSION_TYPE=wayland"]) == {"type": "success"},
           "start_session after success")
    started = d.next_event("start_session")
    expect(started.get("cmd") == ["sway", "--debug"], "recorded command: %r" % started)
    expect(started.get("env") == ["XDG_SESSION_TYPE=wayland"], "recorded environment: %r" % started)
    expect(started.get("username") == "alice" and started.get("pam_user") == "alice",
           "recorded user: %r" % started)
    # The session is consumed: the connection can log in again.
    expect(c.log_in("bob", ["hunter2"]) == {"type": "success"}, "a second login on one connection")
    expect(c.cancel() == {"type": "success"}, "cancel after success")


def wrong_password(d, authd):
    c = d.client()
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    expect_error(c.answer("not-it"), "auth_error", "Authentication failure", "wrong password")
    outcome(d, "auth_error")
    # greetd's rule: the failed session stays, dead, until cancel_session.
    expect_error(c.create("alice"), "error", "already", "create_session after a failure")
    expect_error(c.start(["sway"]), "auth_error", "Authentication failure",
                 "start_session repeats the failure")
    expect_error(c.answer("secret"), "error", "failed", "an answer to a failed session")
    # Unlike greetd (whose worker has gone), authd answers this cancel with success.
    expect(c.cancel() == {"type": "success"}, "cancel after a failure")
    expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "retry after the cancel")
    expect(c.cancel() == {"type": "success"}, "cancel after success")
    expect(c.cancel() == {"type": "success"}, "cancel with no session")


def unknown_user(d, authd):
    c = d.client()
    expect_error(c.log_in("nobody", ["secret"]), "auth_error", None, "unknown user")
    outcome(d, "auth_error", "nobody")


def info_messages(d, authd):
    d2 = g.Daemon(authd, service="authd_info")
    try:
        c = d2.client()
        expect_prompt(c.create("alice"), "info", "Welcome alice", "pam_echo before the prompt")
        expect_prompt(c.answer(), "secret", "Password: ", "the prompt after the info")
        expect_prompt(c.answer("secret"), "info", "Authentication succeeded", "verbose info")
        # agreety acknowledges info messages with an empty response: accepted too.
        expect(c.answer("") == {"type": "success"}, "success after the last info")
        expect(c.cancel() == {"type": "success"}, "cancel after success")
        expect_prompt(c.create("alice"), "info", "Welcome alice", "again")
        expect_prompt(c.answer(), "secret", "Password: ", "prompt")
        expect_prompt(c.answer("wrong"), "error", "Authentication failed", "verbose error")
        expect_error(c.answer(), "auth_error", "Authentication failure", "after the error message")
    finally:
        finish(d2)


def several_messages_in_one_call(d, authd):
    d2 = g.Daemon(authd, service="authd_multi")
    try:
        c = d2.client()
        expect_prompt(c.create("alice"), "info", "three messages in one call", "first of three")
        expect_prompt(c.answer(), "visible", "Login: ", "second of three")
        expect_prompt(c.answer("alice"), "secret", "Password: ", "third of three")
        expect(c.answer("secret") == {"type": "success"},
               "the module received both answers at their indices")
        c.cancel()
        c2 = d2.client()
        expect_error(c2.log_in("alice", ["bob", "secret"]), "auth_error", None,
                     "answers in the wrong slots fail")
    finally:
        finish(d2)


def no_prompt(d, authd):
    d2 = g.Daemon(authd, service="permit")
    try:
        c = d2.client()
        expect(c.create("anyone") == {"type": "success"}, "pam_permit: success at once")
        expect(c.start(["true"]) == {"type": "success"}, "start_session without env")
    finally:
        finish(d2)


def cancel_mid_prompt(d, authd):
    c = d.client()
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    expect(c.cancel() == {"type": "success"}, "cancel_session mid-prompt")
    outcome(d, "cancelled")
    settle(d, sessions=0)
    expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "log in after a cancel")


def disconnect_mid_prompt(d, authd):
    """The per-connection model: a disconnect ends the connection's session."""
    d2 = g.Daemon(authd, extra=["--sessions", "per-connection"])
    try:
        disconnect_ends_session(d2)
    finally:
        finish(d2)
    # greetd's model: a disconnect leaves the session for another connection.
    c = d.client()
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    c.close()
    c = d.client()
    expect(c.answer("secret") == {"type": "success"}, "answered on another connection")
    outcome(d, "success")
    expect(c.start(["sway"]) == {"type": "success"}, "started on that connection")
    settle(d)


def disconnect_ends_session(d):
    for _ in range(5):
        c = d.client()
        expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
        c.close()
        outcome(d, "disconnected")
    settle(d)
    # Gone right after answering (PAM may be running or done).
    for _ in range(5):
        c = d.client()
        c.create("alice")
        c.send({"type": "post_auth_message_response", "response": "secret"})
        c.close()
        event = d.next_event("session")
        expect(event["outcome"] in ("success", "disconnected"), "answer then leave: %r" % event)
    settle(d)


def answer_timeout(d, authd):
    d2 = g.Daemon(authd, extra=["--answer-timeout", "1"])
    try:
        c = d2.client()
        expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
        time.sleep(1.5)
        expect_error(c.answer("secret"), "auth_error", "timed out", "a late answer")
        outcome(d2, "timed_out")
        settle(d2, sessions=1)
        expect(c.cancel() == {"type": "success"}, "cancel the timed-out session")
        expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "log in after a timeout")
        c.cancel()
        # A client that says nothing is never let go, answer timeout or not.
        idle = d2.client()
        time.sleep(1.5)
        expect(idle.log_in("alice", ["secret"]) == {"type": "success"}, "an idle client stays")
        idle.cancel()
    finally:
        finish(d2)


def max_sessions(d, authd):
    d2 = g.Daemon(authd, extra=["--max-sessions", "2", "--max-clients", "3",
                                "--sessions", "per-connection"])
    try:
        first, second = d2.client(), d2.client()
        expect_prompt(first.create("alice"), "secret", "Password: ", "first")
        expect_prompt(second.create("bob"), "secret", "Password: ", "second")
        third = d2.client()
        expect_error(third.create("alice"), "error", "too many sessions", "a third session")
        fourth = d2.client()  # refused as soon as it is accepted, before it says anything
        expect_error(fourth.receive(), "error", "too many clients", "the fourth client")
        expect(fourth.is_closed(), "the fourth client is closed, not queued")
        expect(first.answer("secret") == {"type": "success"}, "the first still works")
        outcome(d2, "success")
        if os.environ.get("HANDOFF_AUTHD_ISOLATION") != "thread":
            # Its worker awaits start_session: a live process holds its place.
            expect_error(third.create("alice"), "error", "too many sessions",
                         "an authenticated session's worker holds its place")
            expect(first.start(["true"]) == {"type": "success"}, "the first starts")
            expect(d2.next_event("start_session").get("cmd") == ["true"], "the first's record")
        # A finished transaction holds no place: the third may start now.
        expect(third.log_in("alice", ["secret"]) == {"type": "success"},
               "a free place is given again")
        outcome(d2, "success")
        expect(second.answer("hunter2") == {"type": "success"}, "the second still works")
        outcome(d2, "success", "bob")
        for c in (first, second, third):
            c.close()
        settle(d2)
    finally:
        finish(d2)


def out_of_order(d, authd):
    """greetd's answers, measured against greetd 0.9 (tests/authd/conformance.py)."""
    c = d.client()
    expect_error(c.answer("secret"), "error", "no session under configuration",
                 "an answer with no session")
    expect_error(c.start(["sway"]), "error", "no session active", "start_session with no session")
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    expect_error(c.create("bob"), "error", "already", "a second create_session")
    # start_session before authentication is done drops the session.
    expect_error(c.start(["sway"]), "error", "session is not ready", "start_session mid-prompt")
    outcome(d, "not_ready")
    expect_error(c.answer("secret"), "error", "no session under configuration",
                 "the session was dropped")
    # No answer to a secret prompt fails the authentication, and the dead
    # session stays until cancel_session.
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session again")
    expect_error(c.answer(), "auth_error", None, "a prompt answered with nothing")
    outcome(d, "auth_error")
    expect_error(c.create("alice"), "error", "already", "create_session after the failure")
    expect_error(c.start(["sway"]), "auth_error", None, "start_session repeats the failure")
    expect(c.cancel() == {"type": "success"}, "cancel the dead session")
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session a third time")
    expect(c.answer("secret") == {"type": "success"}, "the right answer")
    expect_error(c.answer("secret"), "error", "no auth message", "an answer with nothing pending")
    expect_error(c.create("alice"), "error", "already", "create_session while ready")
    expect(c.start(["sway"]) == {"type": "success"}, "start_session when ready")
    expect_error(c.start(["sway"]), "error", "no session", "start_session twice")


def pipelined(d, authd):
    c = d.client()
    create = b'{"type": "create_session", "username": "alice"}'
    answer = b'{"type": "post_auth_message_response", "response": "secret"}'
    start = b'{"type": "start_session", "cmd": ["sh"]}'
    c.send_raw(b"".join(struct.pack("=I", len(p)) + p for p in (create, answer, start)))
    expect_prompt(c.receive(), "secret", "Password: ", "first of three pipelined")
    expect(c.receive() == {"type": "success"}, "second of three pipelined")
    expect(c.receive() == {"type": "success"}, "third of three pipelined")


# Bad input: (name, raw bytes after the length, wanted description). Each gets
# an error and leaves the connection and the session as they were.
BAD_PAYLOADS = [
    ("empty frame", b"", "empty frame"),
    ("invalid UTF-8", b'{"type": "create_session", "username": "\xff\xfe"}', "UTF-8"),
    ("overlong UTF-8", b'{"type": "create_session", "username": "\xc0\xaf"}', "UTF-8"),
    ("lone surrogate", b'{"type": "create_session", "username": "\\ud800"}', "JSON"),
    ("truncated JSON", b'{"type": "create_', "JSON"),
    ("trailing garbage", b'{"type": "cancel_session"} x', "JSON"),
    ("not an object", b'["create_session"]', "object"),
    ("a string", b'"create_session"', "object"),
    ("no type", b'{"username": "alice"}', "type"),
    ("type of the wrong type", b'{"type": 5}', "type"),
    ("unknown type", b'{"type": "reboot"}', "unknown request type"),
    ("username missing", b'{"type": "create_session"}', "username"),
    ("username a number", b'{"type": "create_session", "username": 5}', "username"),
    ("username with NUL", b'{"type": "create_session", "username": "al\\u0000ice"}', "NUL"),
    ("response a number", b'{"type": "post_auth_message_response", "response": 5}', "response"),
    ("response an object", b'{"type": "post_auth_message_response", "response": {}}',
     "response"),
    ("response with NUL", b'{"type": "post_auth_message_response", "response": "a\\u0000b"}',
     "NUL"),
    ("cmd missing", b'{"type": "start_session"}', "cmd"),
    ("cmd a string", b'{"type": "start_session", "cmd": "sway"}', "cmd"),
    ("cmd of numbers", b'{"type": "start_session", "cmd": [1, 2]}', "cmd"),
    ("env an object", b'{"type": "start_session", "cmd": ["sway"], "env": {"A": "b"}}', "env"),
    ("deep nesting", b"[" * 30000 + b"]" * 30000, "object"),
]


def bad_input(d, authd):
    for mid_prompt in (False, True):
        c = d.client()
        if mid_prompt:
            expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
        for name, payload, description in BAD_PAYLOADS:
            c.send_frame(payload)
            reply = c.receive()
            expect_error(reply, "error", description, name + (" mid-prompt" if mid_prompt else ""))
        if mid_prompt:
            # PAM takes answers of at most PAM_MAX_RESP_SIZE - 1 bytes: a longer
            # one is refused like a NUL, and the prompt stays.
            for size in (512, 60000):
                expect_error(c.answer("x" * size), "error", "too long",
                             "response of %d bytes mid-prompt" % size)
            expect(c.answer("secret") == {"type": "success"}, "the prompt survived every bad input")
        else:
            expect(c.log_in("alice", ["secret"]) == {"type": "success"},
                   "the connection survived every bad input")
        c.cancel()
        c.close()
    settle(d)


def oversized_frames(d, authd):
    at_limit = b'{"type": "cancel_session"}'
    at_limit += b" " * (65536 - len(at_limit))
    c = d.client()
    c.send_frame(at_limit)
    expect(c.receive() == {"type": "success"}, "a payload of exactly 65536 bytes is read")
    for length in (65537, 2 ** 31, 2 ** 32 - 1):
        c = d.client()
        expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
        c.send_raw(struct.pack("=I", length) + b"{")
        expect_error(c.receive(), "error", "longer than 65536", "length %d" % length)
        expect(c.is_closed(), "closed after a frame of %d bytes" % length)
        # greetd's model: the session outlives the connection.
        c = d.client()
        expect(c.cancel() == {"type": "success"}, "cancelled from another connection")
        outcome(d, "cancelled")
    settle(d)


def torn_frames(d, authd):
    # A header cut short, a payload cut short, bytes one at a time.
    c = d.client()
    c.send_raw(b"\x10\x00")
    c.close()
    c = d.client()
    c.send_raw(struct.pack("=I", 100) + b'{"type"')
    c.close()
    c = d.client()
    frame = struct.pack("=I", 26) + b'{"type": "cancel_session"}'
    for i in range(len(frame)):
        c.send_raw(frame[i:i + 1])
        time.sleep(0.002)
    expect(c.receive() == {"type": "success"}, "a frame sent byte by byte")
    c = d.client()
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    c.sock.shutdown(socket.SHUT_WR)  # half-closed: the reply still comes, then the end
    expect(c.is_closed(), "a client that stops sending mid-prompt is let go")
    c = d.client()
    expect(c.cancel() == {"type": "success"}, "its session is cancelled from another connection")
    outcome(d, "cancelled")
    settle(d)


def protocol_model(d, authd, steps=int(os.environ.get("HANDOFF_AUTHD_MODEL_STEPS", "300"))):
    """A random walk of requests, checked after every step against a model of
    what authd must answer (seeded, so a failure repeats)."""
    seed = int(os.environ.get("HANDOFF_AUTHD_SEED", "20261125"))
    rng = random.Random(seed)
    print("protocol model: seed %d, %d steps" % (seed, steps))
    walk_shared(d, rng, steps)
    d2 = g.Daemon(authd, extra=["--sessions", "per-connection"])
    try:
        walk(d2, rng, steps)
    finally:
        finish(d2)


def walk_shared(d, rng, steps):
    """greetd's model: one session, whichever of three connections asks (and
    a connection that goes, or is closed for a huge frame, leaves it)."""
    clients = [d.client() for _ in range(3)]
    state, user = "none", None
    for step in range(steps):
        k = rng.randrange(len(clients))
        c = clients[k]
        action = rng.choice(["create", "right", "wrong", "empty", "start", "cancel", "garbage",
                             "disconnect", "huge"])
        where = "shared step %d (%s on connection %d in state %s)" % (step, action, k, state)
        if action == "create":
            name = rng.choice(["alice", "bob"])
            reply = c.create(name)
            if state == "none":
                expect_prompt(reply, "secret", "Password: ", where)
                state, user = "asking", name
            else:
                expect_error(reply, "error", "already", where)
        elif action in ("right", "wrong", "empty"):
            reply = c.answer({"right": "secret", "wrong": "nope", "empty": None}[action])
            if state == "asking" and action == "right" and user == "alice":
                expect(reply == {"type": "success"}, where + ": %r" % reply)
                state = "ready"
            elif state == "asking":
                expect_error(reply, "auth_error", None, where)
                state = "failed"
            elif state == "none":
                expect_error(reply, "error", "no session under configuration", where)
            elif state == "ready":
                expect_error(reply, "error", "no auth message", where)
            else:
                expect_error(reply, "error", "failed", where)
        elif action == "start":
            reply = c.start(["sh"])
            if state == "ready":
                expect(reply == {"type": "success"}, where + ": %r" % reply)
                state = "none"
            elif state == "failed":
                expect_error(reply, "auth_error", None, where)
            elif state == "asking":
                expect_error(reply, "error", "session is not ready", where)
                state = "none"
            else:
                expect_error(reply, "error", "no session active", where)
        elif action == "cancel":
            expect(c.cancel() == {"type": "success"}, where)
            state = "none"
        elif action == "garbage":
            name, payload, description = rng.choice(BAD_PAYLOADS[:-1])
            c.send_frame(payload)
            expect_error(c.receive(), "error", description, where + " " + name)
        else:
            if action == "huge":
                c.send_raw(struct.pack("=I", 2 ** 31))
                expect_error(c.receive(), "error", "longer", where)
            c.close()
            clients[k] = d.client()
        if failures:
            print("model diverged at %s" % where)
            break
    clients[0].cancel()
    for c in clients:
        c.close()
    settle(d)


def walk(d, rng, steps):
    clients = [[d.client(), "none"] for _ in range(3)]
    for step in range(steps):
        slot = clients[rng.randrange(len(clients))]
        c, state = slot
        action = rng.choice(["create", "right", "wrong", "empty", "start", "cancel", "garbage",
                             "disconnect", "huge"])
        where = "step %d (%s in state %s)" % (step, action, state)
        if action == "create":
            reply = c.create(rng.choice(["alice", "bob"]) if state == "none" else "alice")
            if state == "none":
                expect_prompt(reply, "secret", "Password: ", where)
                state = "asking"
            else:
                expect_error(reply, "error", "already", where)
        elif action in ("right", "wrong", "empty"):
            response = {"right": None, "wrong": "nope", "empty": None}[action]
            if action == "right":
                response = "secret"  # alice's and bob's differ: bob's fails
            reply = c.answer(response)
            if state == "asking":
                if reply.get("type") == "success":
                    expect(action == "right", where + ": %r" % reply)
                    state = "ready"
                else:
                    expect_error(reply, "auth_error", None, where)
                    state = "failed"
            else:
                expect_error(reply, "error", None, where)
        elif action == "start":
            reply = c.start(["sh"])
            if state == "ready":
                expect(reply == {"type": "success"}, where + ": %r" % reply)
                state = "none"
            elif state == "failed":
                expect_error(reply, "auth_error", None, where)
            else:
                expect_error(reply, "error", None, where)
                state = "none"  # not ready: dropped
        elif action == "cancel":
            expect(c.cancel() == {"type": "success"}, where)
            state = "none"
        elif action == "garbage":
            name, payload, description = rng.choice(BAD_PAYLOADS[:-1])
            c.send_frame(payload)
            expect_error(c.receive(), "error", description, where + " " + name)
        elif action in ("disconnect", "huge"):
            if action == "huge":
                c.send_raw(struct.pack("=I", 2 ** 31))
                expect_error(c.receive(), "error", "longer", where)
            c.close()
            c, state = d.client(), "none"
        slot[0], slot[1] = c, state
        if failures:
            print("model diverged at %s" % where)
            break
    for c, _ in clients:
        c.close()
    settle(d)


def out_of_descriptors(d, authd):
    """With few descriptors authd still answers, does not spin, and recovers."""
    # A session in a worker process holds three descriptors (its socket, an
    # epoll and a timer; a thread's channel one), and valgrind keeps some of
    # the limit for itself: the budget leaves room for 8 sessions either way.
    process = os.environ.get("HANDOFF_AUTHD_ISOLATION", "process") == "process"
    max_fds = 72 if process else 40
    env = None
    if not process:
        # libpam's own leak when pam_start cannot open the configuration (see the file).
        env = dict(os.environ)
        supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libpam_emfile.supp")
        env["LSAN_OPTIONS"] = ":".join(filter(None, [env.get("LSAN_OPTIONS"),
                                                     "suppressions=" + supp,
                                                     "print_suppressions=0"]))
    d2 = g.Daemon(authd, extra=["--max-sessions", "64", "--sessions", "per-connection"],
                  max_fds=max_fds, env=env)
    try:
        served = [d2.client() for _ in range(8)]
        for c in served:
            expect_prompt(c.create("alice"), "secret", "Password: ", "before the limit")
        more = [d2.client() for _ in range(48)]
        answered = {"error": 0, "waiting": 0}
        for c in more:
            c.sock.settimeout(0.5)
            try:
                c.send({"type": "create_session", "username": "alice"})
                reply = c.receive()
                expect(reply.get("type") == "error" and reply.get("error_type") == "error",
                       "out of descriptors: %r" % reply)
                answered["error"] += 1
            except (socket.timeout, g.Closed, ConnectionError):
                answered["waiting"] += 1
        print("with %d descriptors, 8 sessions then 48 more clients: %r" % (max_fds, answered))
        expect(answered["error"] > 0, "some sessions found no descriptor for their channel")
        expect(answered["waiting"] > 0, "some clients wait unaccepted")
        # Saturated and idle, it must not spin on its listener.
        before = d2.stats()["cpu_us"]
        time.sleep(1.0)
        spent = d2.stats()["cpu_us"] - before
        expect(spent < 300000, "authd spins while out of descriptors: %d us in 1 s" % spent)
        for c in more:
            c.close()
        time.sleep(0.3)
        # The sessions from before the limit go on once there is room again.
        for c in served:
            expect(c.answer("secret") == {"type": "success"}, "a session from before the limit")
            c.close()
        time.sleep(0.3)
        settle(d2)
        c = d2.client()
        expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "served again afterwards")
        c.close()
    finally:
        finish(d2)


# ---------------------------------------------------------------------------
# Greeter patterns, limits, and PAM beyond greetd
# ---------------------------------------------------------------------------

MODULES = os.environ.get("HANDOFF_PAM_MODULES", "/usr/lib/x86_64-linux-gnu/pam_wrapper")
TESTMOD = os.environ.get("HANDOFF_AUTHD_TESTMOD", "")


class Services:
    """A service directory of a scenario's own: `matrix` holds `lines`, with
    @MATRIX@ (pam_matrix on a copy of the test password file) and @TESTMOD@
    (pam_authd_test.so) filled in."""

    def __init__(self, lines):
        self.dir = tempfile.mkdtemp(prefix="authd-services-")
        self.passdb = os.path.join(self.dir, "passdb")
        shutil.copy(os.path.join(g.BUILD, "passdb"), self.passdb)
        matrix = "%s/pam_matrix.so passdb=%s" % (MODULES, self.passdb)
        with open(os.path.join(self.dir, "matrix"), "w") as f:
            for line in lines:
                f.write(line.replace("@MATRIX@", matrix).replace("@TESTMOD@", TESTMOD) + "\n")

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def connection_per_request(d, authd):
    """gtkgreet: every request on a connection of its own (roundtrip_json)."""
    for _ in range(3):
        def roundtrip(obj):
            c = d.client()
            try:
                return c.request(obj)
            finally:
                c.close()
        expect_prompt(roundtrip({"type": "create_session", "username": "alice"}), "secret",
                      "Password: ", "create_session on its own connection")
        expect(roundtrip({"type": "post_auth_message_response", "response": "secret"}) ==
               {"type": "success"}, "the answer on a second connection")
        outcome(d, "success")
        expect(roundtrip({"type": "start_session", "cmd": ["sway"], "env": []}) ==
               {"type": "success"}, "start_session on a third")
        expect(d.next_event("start_session").get("username") == "alice", "alice's session")
    # A wrong password, then gtkgreet's cancel_session, on connections of their own.
    c = d.client()
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    c.close()
    c = d.client()
    expect_error(c.answer("nope"), "auth_error", None, "the wrong password")
    c.close()
    c = d.client()
    expect(c.cancel() == {"type": "success"}, "cancel_session")
    c.close()
    settle(d)


def idle_client(d, authd):
    """tuigreet: connects at start-up and idles at its user-name screen. No
    idle client is dropped, with the defaults or with every timeout at 1 s
    (the answer and read timeouts time a prompt and a frame, not silence)."""
    for extra in ([], ["--answer-timeout", "1", "--read-timeout", "1"]):
        d2 = g.Daemon(authd, extra=extra)
        try:
            c = d2.client()
            time.sleep(2.5)
            expect(c.log_in("alice", ["secret"]) == {"type": "success"},
                   "a client idle for 2.5 s logs in (%r)" % extra)
            # Idle again between authentication and start_session.
            time.sleep(2.5)
            expect(c.start(["sway"]) == {"type": "success"}, "and starts after 2.5 s more")
        finally:
            finish(d2)


def flood(d, authd):
    """Connections looping create_session/cancel_session while PAM sleeps in a
    fail delay must not run more than --max-sessions transactions, nor one
    connection more than 2."""
    services = Services(["auth optional pam_faildelay.so delay=1500000", "auth required @MATRIX@",
                         "account required pam_permit.so"])
    try:
        for model in ("shared", "per-connection"):
            d2 = g.Daemon(authd, confdir=services.dir,
                          extra=["--max-sessions", "4", "--sessions", model])
            try:
                # One connection alone, then three taking turns.
                c = d2.client()
                turns = [c] * 20 + [c, d2.client(), d2.client()] * 20
                refused, most = 0, 0
                for client in turns:
                    c = client
                    reply = c.create("alice")
                    if reply.get("type") == "error":
                        expect("too many sessions" in reply.get("description", ""),
                               "a refused create_session says why: %r" % reply)
                        refused += 1
                        time.sleep(0.01)
                    c.cancel()
                    threads = d2.stats()["threads"] - d2.idle_threads
                    most = max(most, threads)
                print("%s: at most %d PAM threads, %d create_session refused" % (model, most,
                                                                                refused))
                expect(most <= 4, "%s: %d PAM threads under --max-sessions 4" % (model, most))
                expect(refused > 0, "%s: the loop was refused at the limit" % model)
                if model == "per-connection":
                    # One connection holds at most 2: another still gets a session.
                    settle(d2)
                    other = d2.client()
                    expect_prompt(c.create("alice"), "secret", "Password: ", "first")
                    c.cancel()  # ending for 1.5 s in the fail delay
                    expect_prompt(c.create("alice"), "secret", "Password: ", "second")
                    c.cancel()
                    expect_error(c.create("alice"), "error", "this connection",
                                 "a third of one connection")
                    expect_prompt(other.create("alice"), "secret", "Password: ",
                                  "a second connection beside the flooding one")
                    other.close()
                for client in set(turns):
                    client.close()
                settle(d2)
            finally:
                finish(d2)
    finally:
        services.remove()


def slowloris(d, authd):
    """Clients that send two bytes of a header and stall are closed after the
    read deadline, and the daemon serves again."""
    d2 = g.Daemon(authd, extra=["--max-clients", "4", "--read-timeout", "1"])
    try:
        stalled = []
        for _ in range(4):
            c = d2.client()
            c.send_raw(b"\x10\x00")
            stalled.append(c)
        time.sleep(0.2)
        refused = d2.client()
        expect_error(refused.receive(), "error", "too many clients", "every place is held")
        refused.close()
        start = time.monotonic()
        for c in stalled:
            expect(c.is_closed(), "a stalled header is closed")
        took = time.monotonic() - start
        expect(took < 3.0, "stalled clients closed after %.1f s (read deadline 1 s)" % took)
        # A payload begun and not finished is closed the same way.
        c = d2.client()
        c.send_raw(struct.pack("=I", 100) + b'{"type"')
        expect(c.is_closed(), "a stalled payload is closed")
        ok = d2.client()
        expect(ok.log_in("alice", ["secret"]) == {"type": "success"}, "served again")
        ok.cancel()
        ok.close()
    finally:
        finish(d2)


def stalled_reader(d, authd, sessions=160 if g.WRAPPER else 320):
    """A reader of authd's standard output that never reads must not stop the
    daemon: records beyond the buffer are dropped and counted. (The authd of
    0.2 stopped after 1071 sessions of 100-byte commands. Each record here
    carries a 2000-byte command, so the pipe and authd's buffer, 64 KiB each,
    fill after about 62 sessions: 160 under valgrind are well past that, and
    each session is a worker process there.)"""
    services = Services(["auth required pam_permit.so", "account required pam_permit.so"])
    directory = tempfile.mkdtemp(prefix="authd-test-")
    path = os.path.join(directory, "authd.sock")
    proc = subprocess.Popen(g.WRAPPER + [authd, "--socket", path, "--service", "matrix",
                                         "--confdir", services.dir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + g.TIMEOUT
        while True:  # the socket exists once bound, and listens a moment later
            try:
                c = g.Client(path, timeout=10)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        done = 0
        try:
            for n in range(sessions):
                if c.create("user%d" % n) != {"type": "success"}:
                    break
                if c.start(["sway", "x" * 2000]) != {"type": "success"}:
                    break
                done += 1
        except (socket.timeout, g.Closed, ConnectionError) as e:
            expect(False, "authd stopped answering after %d sessions: %r" % (done, e))
        expect(done == sessions, "%d of %d sessions with nobody reading" % (done, sessions))
        c.close()
        # Now read: the records that fitted, then a stats line that counts the rest.
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        stats = None
        deadline = time.monotonic() + g.TIMEOUT
        while stats is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
            for line in list(lines):
                event = json.loads(line)
                if event.get("event") == "stats":
                    stats = event
        print("%d records read" % len(lines))
        expect(stats is not None and stats["records_dropped"] > 0,
               "dropped records are counted: %r" % stats)
        print("%d sessions, %s records dropped" % (done, stats and stats["records_dropped"]))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=g.TIMEOUT * 2)
        reader.join(timeout=g.TIMEOUT)
        expect(proc.returncode == 0, "authd exit code %r" % proc.returncode)
        err = "".join(line for line in proc.stderr.read().decode(errors="replace")
                      .splitlines(True) if not line.startswith("PWRAP_"))
        expect(err.strip() == "", "authd wrote to stderr:\n" + err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        services.remove()
        shutil.rmtree(directory, ignore_errors=True)


def setcred(d, authd):
    """greetd calls pam_setcred after pam_acct_mgmt: its failure fails the login."""
    services = Services(["auth required @MATRIX@", "auth required @TESTMOD@ setcred_fails",
                         "account required pam_permit.so"])
    try:
        d2 = g.Daemon(authd, confdir=services.dir)
        try:
            c = d2.client()
            expect_error(c.log_in("alice", ["secret"]), "auth_error", None,
                         "a failing pam_setcred fails the login")
            outcome(d2, "auth_error")
            c.cancel()
        finally:
            finish(d2)
    finally:
        services.remove()


def expired_password(d, authd):
    """Beyond greetd: an expired password (PAM_NEW_AUTHTOK_REQD from
    pam_acct_mgmt) is changed with pam_chauthtok, its prompts relayed."""
    services = Services(["auth required @MATRIX@", "account required @TESTMOD@ expired",
                         "password required @MATRIX@"])
    try:
        d2 = g.Daemon(authd, confdir=services.dir)
        try:
            c = d2.client()
            prompts = []
            reply = c.create("alice")
            answers = ["secret", "secret", "fresh-one", "fresh-one"]
            while reply.get("type") == "auth_message" and answers:
                prompts.append((reply["auth_message_type"], reply["auth_message"]))
                reply = c.answer(answers.pop(0) if reply["auth_message_type"] in
                                 ("secret", "visible") else None)
            print("prompts: %r" % prompts)
            expect(reply == {"type": "success"}, "the password changed, the login succeeds: %r"
                   % reply)
            expect(len(prompts) == 4, "the password, then pam_chauthtok's prompts: %r" % prompts)
            event = d2.next_event("session")
            # In both isolations: a worker process reports it to the daemon.
            expect(event.get("outcome") == "success" and event.get("password_changed") is True,
                   "the session says the password changed: %r" % event)
            c.cancel()
            with open(services.passdb) as f:
                expect("alice:fresh-one:matrix" in f.read(), "pam_matrix stored the new one")
            # A wrong old password: the change fails, and so does the login.
            with open(services.passdb, "w") as f:
                f.write("alice:secret:matrix\n")
            reply = c.create("alice")
            answers = ["secret", "wrong", "x1", "x1"]
            while reply.get("type") == "auth_message" and answers:
                reply = c.answer(answers.pop(0))
            expect_error(reply, "auth_error", None, "a failed change fails the login")
            event = d2.next_event("session")
            expect(event.get("outcome") == "auth_error" and "password_changed" not in event,
                   "a failed change is not reported as a change: %r" % event)
            c.cancel()
        finally:
            finish(d2)
    finally:
        services.remove()


def scan_memory(pid, needles):
    """Every readable mapping of the process, searched for each needle:
    {needle: [mapping names where it was found]}."""
    found = {n: [] for n in needles}
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else "[anon]"
            if "r" not in fields[1] or name in ("[vvar]", "[vsyscall]"):
                continue
            overlap = max(len(n) for n in needles)
            tail = b""
            for at in range(start, end, 1 << 22):  # 4 MiB at a time
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(1 << 22, end - at))
                except (OSError, ValueError, OverflowError):
                    break
                for n in needles:
                    if n in data and name not in found[n]:
                        found[n].append(name)
                tail = data[-overlap:]
    return found


def memory_scan(d, authd):
    """No password left in authd's memory by its own parsing: sent normally
    (short and long), inside invalid JSON, as the first of two duplicate
    keys, as an answer of 600 bytes, and as the user name (12 and 40 bytes).
    The PAM module accepts any answer and wipes it, so what is found is
    authd's."""
    if g.WRAPPER:
        print("under a wrapper (valgrind) the process's memory is the tool's too: skipped")
        return
    if d.stats()["heap_source"] == "sanitizer":
        # Terabytes of shadow mappings, and an allocator that keeps freed
        # blocks (libpam's among them) whole in its quarantine.
        print("a sanitizer build: its heap is not glibc's, skipped (the plain builds scan)")
        return
    services = Services(["auth required @TESTMOD@ any", "account required pam_permit.so"])
    rng = random.SystemRandom()

    def secret(n):
        return "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n))
    short, long_, invalid, duplicate, huge, username, long_username = (
        secret(10), secret(40), secret(12), secret(12), secret(600), secret(12), secret(40))
    try:
        d2 = g.Daemon(authd, confdir=services.dir)
        try:
            c = d2.client()
            expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
            c.send_frame(b'{"type": "post_auth_message_response", "response": "%s' %
                         invalid.encode())
            expect_error(c.receive(), "error", "JSON", "an answer inside invalid JSON")
            c.send_frame(b'{"type": "post_auth_message_response", "response": "%s", '
                         b'"response": "decoy-answer"}' % duplicate.encode())
            expect(c.receive() == {"type": "success"}, "duplicate keys: the last one answers")
            expect(c.cancel() == {"type": "success"}, "cancel")
            expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
            expect_error(c.answer(huge), "error", "too long", "an answer of 600 bytes")
            expect(c.answer(short) == {"type": "success"}, "a short answer")
            expect(c.start(["sway"]) == {"type": "success"}, "start_session")
            expect(c.log_in("alice", [long_]) == {"type": "success"}, "a long answer")
            expect(c.cancel() == {"type": "success"}, "cancel")
            # A password typed into the user-name field.
            for name in (username, long_username):
                expect(c.log_in(name, ["x"]) == {"type": "success"}, "the user name")
                expect(c.start(["sway"]) == {"type": "success"}, "start_session")
            c.close()
            settle(d2)
            needles = {"short": short, "long": long_, "invalid JSON": invalid,
                       "duplicate key": duplicate, "600 bytes": huge, "user name": username,
                       "long user name": long_username}
            found = scan_memory(d2.proc.pid, [v.encode() for v in needles.values()])
            for what, value in needles.items():
                where = found[value.encode()]
                expect(not where, "the %s password is still in authd's memory: %r" % (what, where))
            print("memory scan: %d passwords, %d found" %
                  (len(needles), sum(1 for v in found.values() if v)))
        finally:
            finish(d2)
    finally:
        services.remove()


def children_and_fds(daemon):
    """authd's child processes (zombies included) and its open descriptors."""
    pid = daemon.proc.pid
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        children = f.read().split()
    return children, len(os.listdir("/proc/%d/fd" % pid))


def misbehaving_module(authd, how):
    """A module that crashes, exits or hangs (tests/pam/pam_oddball.cpp): in
    process isolation the session gets an error, the next client is answered,
    and no child or descriptor is left. A thread-mode authd cannot contain it
    (the module's crash or exit is authd's own): skipped there."""
    if os.environ.get("HANDOFF_AUTHD_ISOLATION") == "thread":
        print("skipped: in thread isolation a module that can %s takes authd with it" % how)
        sys.exit(77)
    # A hung module is killed once silent for --answer-timeout seconds.
    d2 = g.Daemon(authd, service="oddball_" + how, extra=["--answer-timeout", "1"])
    try:
        settle(d2)
        before = children_and_fds(d2)
        for attempt in range(3):  # each client is answered, the daemon stays
            c = d2.client()
            reply = c.create("alice")
            expect(reply.get("type") == "error" and reply.get("error_type") == "error",
                   "module %s, client %d: wanted error, got %r" % (how, attempt, reply))
            outcome(d2, "error")
            c.cancel()  # greetd's model: the failed session stays until cancelled
            c.close()
        settle(d2)
        deadline = time.monotonic() + g.TIMEOUT  # until authd has seen the clients go
        while children_and_fds(d2) != before and time.monotonic() < deadline:
            time.sleep(0.05)
        expect(children_and_fds(d2) == before,
               "module %s: children and descriptors %r, before %r"
               % (how, children_and_fds(d2), before))
    finally:
        expect(d2.alive(), "authd is still running")
        code, stderr = d2.stop()
        expect(code == 0, "authd exit code %d" % code)
        # A worker's own death leaves its sanitizer's or valgrind's words on stderr.
        del stderr


def module_crash(d, authd):
    misbehaving_module(authd, "crash")


def module_exit(d, authd):
    misbehaving_module(authd, "exit")


def module_hang(d, authd):
    misbehaving_module(authd, "hang")


def start_in_worker(d, authd):
    """Process isolation: the authenticated worker awaits start_session, the
    request goes to it, and the record is what the worker reports it received
    (its pid beside), not the daemon's copy. Thread isolation: the daemon's."""
    process = os.environ.get("HANDOFF_AUTHD_ISOLATION") != "thread"
    daemon_pid = d.proc.pid
    c = d.client()
    expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "logged in")
    outcome(d, "success")
    cmd = ["sh", "-c", "exec \"$0\" \"$@\"", "", "caf\u00e9", " spaces "]
    env = ["A=1", "EMPTY=", "LONG=" + "x" * 1000] + ["V%d=%d" % (i, i) for i in range(50)]
    expect(c.start(cmd, env) == {"type": "success"}, "start_session")
    started = d.next_event("start_session")
    expect(started.get("cmd") == cmd and started.get("env") == env,
           "the record holds the request unchanged: %r" % started)
    if process:
        worker = started.get("worker")
        expect(isinstance(worker, int) and worker > 0 and worker != daemon_pid,
               "written from the worker's report (its pid %r, the daemon's %d)"
               % (worker, daemon_pid))
        # A request whose record exceeds the report's 4096 bytes: the worker
        # cannot report it, and the session does not start.
        expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "logged in again")
        outcome(d, "success")
        expect_error(c.start(["sway"], ["BIG=" + "y" * 5000]), "error", "did not start",
                     "a request too long to record")
        # The worker gone while it awaits start_session: the session failed.
        expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "logged in a third time")
        outcome(d, "success")
        with open("/proc/%d/task/%d/children" % (daemon_pid, daemon_pid)) as f:
            workers = [int(p) for p in f.read().split()]
        expect(len(workers) == 1, "one worker awaits start_session: %r" % workers)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        reply = c.start(["sway"])
        expect_error(reply, "error", None, "start_session after its worker died")
        c.cancel()
    else:
        expect("worker" not in started, "a thread has no worker: %r" % started)
    settle(d)


SCENARIOS = {f.__name__: f for f in [
    start_in_worker,
    right_password, wrong_password, unknown_user, info_messages, several_messages_in_one_call,
    no_prompt, cancel_mid_prompt, disconnect_mid_prompt, answer_timeout, max_sessions,
    out_of_order, pipelined, bad_input, oversized_frames, torn_frames, protocol_model,
    out_of_descriptors, connection_per_request, idle_client, flood, slowloris, stalled_reader,
    setcred, expired_password, memory_scan, module_crash, module_exit, module_hang]}


def finish(daemon):
    """The end of every scenario: still up, still serving, no thread left,
    a clean exit with nothing on stderr."""
    expect(daemon.alive(), "authd is still running")
    if daemon.alive():
        c = daemon.client()
        c.cancel()  # whatever session a scenario left
        reply = c.create("alice")
        if reply.get("type") in ("auth_message", "success"):
            c.cancel()
        else:
            expect(False, "authd no longer serves: %r" % reply)
        c.close()
    code, stderr = daemon.stop()
    expect(code == 0, "authd exit code %d" % code)
    expect(stderr.strip() == "", "authd wrote to stderr:\n" + stderr)


def main():
    authd, name = sys.argv[1], sys.argv[2]
    d = g.Daemon(authd)
    try:
        SCENARIOS[name](d, authd)
    finally:
        finish(d)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
