#!/usr/bin/env python3
"""authd scenarios, each against a daemon of its own, with a client of ours.

usage: authd_test.py AUTHD SCENARIO

Services come from the test build (pam_matrix with the test password file,
read through --confdir, so no preload is needed). Every scenario ends the same
way: the daemon is still up, still logs a user in, has no PAM thread left, and
exits 0 on SIGTERM with nothing on stderr (no sanitizer or valgrind report).
"""
import os
import random
import socket
import struct
import sys
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
    # An error ends the session (greetd's rule): no cancel needed to try again.
    expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "retry after a failure")
    # agreety sends cancel_session after an error and does not wait for the answer.
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
        settle(d2)
        expect(c.log_in("alice", ["secret"]) == {"type": "success"}, "log in after a timeout")
        # A client that holds no transaction and says nothing is let go.
        idle = d2.client()
        time.sleep(1.5)
        expect(idle.is_closed(), "an idle client is disconnected")
    finally:
        finish(d2)


def max_sessions(d, authd):
    d2 = g.Daemon(authd, extra=["--max-sessions", "2"])
    try:
        first, second = d2.client(), d2.client()
        expect_prompt(first.create("alice"), "secret", "Password: ", "first")
        expect_prompt(second.create("bob"), "secret", "Password: ", "second")
        third = d2.client()  # refused as soon as it is accepted, before it says anything
        expect_error(third.receive(), "error", "too many sessions", "the third client")
        expect(third.is_closed(), "the third client is closed, not queued")
        expect(first.answer("secret") == {"type": "success"}, "the first still works")
        first.close()
        outcome(d2, "success")
        time.sleep(0.1)
        fourth = d2.client()
        expect(fourth.log_in("alice", ["secret"]) == {"type": "success"},
               "a free place is given again")
        outcome(d2, "success")
        expect(second.answer("hunter2") == {"type": "success"}, "the second still works")
        second.close()
        fourth.close()
        outcome(d2, "success", "bob")
        settle(d2)
    finally:
        finish(d2)


def out_of_order(d, authd):
    c = d.client()
    expect_error(c.answer("secret"), "error", "no session", "an answer with no session")
    expect_error(c.start(["sway"]), "error", "no session", "start_session with no session")
    expect_prompt(c.create("alice"), "secret", "Password: ", "create_session")
    expect_error(c.create("bob"), "error", "already", "a second create_session")
    expect_error(c.start(["sway"]), "error", "not ready", "start_session mid-prompt")
    expect_error(c.answer(), "error", "needs a response", "a prompt answered with nothing")
    expect(c.answer("secret") == {"type": "success"}, "the prompt is still there after all that")
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
        outcome(d, "protocol_error")
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
    outcome(d, "disconnected")
    settle(d)


def protocol_model(d, authd, steps=int(os.environ.get("HANDOFF_AUTHD_MODEL_STEPS", "300"))):
    """A random walk of requests, checked after every step against a model of
    what authd must answer (seeded, so a failure repeats)."""
    seed = int(os.environ.get("HANDOFF_AUTHD_SEED", "20261125"))
    rng = random.Random(seed)
    print("protocol model: seed %d, %d steps" % (seed, steps))
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
            if state == "asking" and action == "empty":
                expect_error(reply, "error", "needs a response", where)
            elif state == "asking":
                if reply.get("type") == "success":
                    state = "ready"
                else:
                    expect_error(reply, "auth_error", "Authentication failure", where)
                    state = "none"
            else:
                expect_error(reply, "error", None, where)
        elif action == "start":
            reply = c.start(["sh"])
            if state == "ready":
                expect(reply == {"type": "success"}, where + ": %r" % reply)
                state = "none"
            else:
                expect_error(reply, "error", None, where)
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
    d2 = g.Daemon(authd, extra=["--max-sessions", "64"], max_fds=40)
    try:
        served = [d2.client() for _ in range(8)]
        for c in served:
            expect_prompt(c.create("alice"), "secret", "Password: ", "before the limit")
        more = [d2.client() for _ in range(32)]
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
        print("with 40 descriptors, 8 sessions then 32 more clients: %r" % answered)
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
            c.close()
            outcome(d2, "error")
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


SCENARIOS = {f.__name__: f for f in [
    right_password, wrong_password, unknown_user, info_messages, several_messages_in_one_call,
    no_prompt, cancel_mid_prompt, disconnect_mid_prompt, answer_timeout, max_sessions,
    out_of_order, pipelined, bad_input, oversized_frames, torn_frames, protocol_model,
    out_of_descriptors, module_crash, module_exit, module_hang]}


def finish(daemon):
    """The end of every scenario: still up, still serving, no thread left,
    a clean exit with nothing on stderr."""
    expect(daemon.alive(), "authd is still running")
    if daemon.alive():
        c = daemon.client()
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
