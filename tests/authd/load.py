#!/usr/bin/env python3
"""A load run against one authd: many sessions, a fixed number at a time, of
four kinds (right password, wrong password, cancelled mid-prompt, disconnected
mid-prompt), each checked by its client and again by the daemon's own log.

usage: load.py AUTHD [--sessions N] [--concurrency C] [--mix right,wrong,cancel,disconnect]
               [--service NAME] [--preload LIBPAM_WRAPPER] [--json FILE]

After a warm-up round (so thread stacks, malloc arenas and the daemon's own
vectors exist), the daemon's live heap bytes, RSS and thread count are taken;
after the run, once every session has ended, they must be back: the thread
count exactly, the heap within --heap-slack bytes, the RSS within --rss-slack
KiB. The daemon must then exit 0 with nothing on stderr (no sanitizer report).
Prints sessions per second; --json writes the figures for tools/bench-authd.
"""
import argparse
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import greetd_client as g  # noqa: E402

KINDS = ["right", "wrong", "cancel", "disconnect"]
# What the daemon logs for each kind.
OUTCOME = {"right": "success", "wrong": "auth_error", "cancel": "cancelled",
           "disconnect": "disconnected"}
USERS = [("alice", "secret"), ("bob", "hunter2")]


def one_session(path, kind, n):
    """Runs one session of `kind`; returns None when every reply was right,
    else what went wrong."""
    user, password = USERS[n % len(USERS)]
    c = g.Client(path)
    try:
        reply = c.create(user)
        if reply != {"type": "auth_message", "auth_message_type": "secret",
                     "auth_message": "Password: "}:
            return "create_session: %r" % reply
        if kind == "right":
            reply = c.answer(password)
            if reply != {"type": "success"}:
                return "right password: %r" % reply
            reply = c.start(["load-session"], ["N=%d" % n])
            if reply != {"type": "success"}:
                return "start_session: %r" % reply
        elif kind == "wrong":
            reply = c.answer(password + "-wrong")
            if reply.get("type") != "error" or reply.get("error_type") != "auth_error":
                return "wrong password: %r" % reply
        elif kind == "cancel":
            reply = c.cancel()
            if reply != {"type": "success"}:
                return "cancel_session: %r" % reply
        return None
    finally:
        c.close()


def run_batch(path, kinds, concurrency):
    """Runs the sessions `kinds` with `concurrency` clients at a time."""
    work = queue.Queue()
    for n, kind in enumerate(kinds):
        work.put((n, kind))
    errors = []

    def worker():
        while True:
            try:
                n, kind = work.get_nowait()
            except queue.Empty:
                return
            try:
                problem = one_session(path, kind, n)
            except Exception as e:  # a closed socket, a timeout
                problem = repr(e)
            if problem:
                errors.append("session %d (%s): %s" % (n, kind, problem))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start, errors


def settle(d):
    deadline = time.monotonic() + g.TIMEOUT
    while True:
        s = d.stats()
        if s["threads"] == d.idle_threads and s["ending"] == 0 and s["clients"] == 0:
            return s
        if time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def outcomes(d, count):
    """The next `count` session outcomes from the daemon's log."""
    seen = {}
    for _ in range(count):
        event = d.next_event("session")
        seen[event.get("outcome")] = seen.get(event.get("outcome"), 0) + 1
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("authd")
    ap.add_argument("--sessions", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--mix", default="right,wrong,cancel,disconnect")
    ap.add_argument("--service", default="matrix")
    ap.add_argument("--preload", metavar="LIBPAM_WRAPPER",
                    help="read the services through pam_wrapper (preloaded into authd "
                         "only) rather than --confdir, as bench_pam_e2e does")
    ap.add_argument("--heap-slack", type=int, default=4096)
    ap.add_argument("--rss-slack", type=int, default=2048)
    ap.add_argument("--mallinfo-slack", type=int, default=65536)
    ap.add_argument("--json")
    args = ap.parse_args()
    mix = args.mix.split(",")
    kinds = [mix[n % len(mix)] for n in range(args.sessions)]
    failures = []

    env = None
    if args.preload:
        env = dict(os.environ, LD_PRELOAD=args.preload, PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=g.SERVICES, PAM_WRAPPER_DISABLE_DEEPBIND="1",
                   UID_WRAPPER_DISABLE_DEEPBIND="1")
    d = g.Daemon(args.authd, service=args.service, confdir=None if args.preload else g.SERVICES,
                 extra=["--max-sessions", str(args.concurrency * 2),
                        "--sessions", "per-connection"], env=env)
    try:
        warm = [mix[n % len(mix)] for n in range(args.concurrency)]
        _, errors = run_batch(d.socket, warm, args.concurrency)
        failures += errors
        outcomes(d, len(warm))
        before = settle(d)
        print("before: %s" % json.dumps(before))

        elapsed, errors = run_batch(d.socket, kinds, args.concurrency)
        failures += errors[:20]
        seen = outcomes(d, len(kinds))
        want = {}
        for k in kinds:
            want[OUTCOME[k]] = want.get(OUTCOME[k], 0) + 1
        if seen != want:
            failures.append("the daemon's outcomes %r, wanted %r" % (seen, want))
        after = settle(d)
        print("after:  %s" % json.dumps(after))
        rate = len(kinds) / elapsed
        print("%d sessions (%s), %d at a time: %.2f s, %.0f sessions/s"
              % (len(kinds), args.mix, args.concurrency, elapsed, rate))

        if after["threads"] != before["threads"]:
            failures.append("threads %d after, %d before" % (after["threads"], before["threads"]))
        if after["clients"] or after["sessions"] or after["ending"]:
            failures.append("sessions left: %r" % after)
        heap_growth = after["heap_bytes"] - before["heap_bytes"]
        rss_growth = after["rss_kb"] - before["rss_kb"]
        heap_slack = args.heap_slack
        if after["heap_source"] != "sanitizer":
            # glibc's mallinfo2 counts chunks parked in arenas and caches as in
            # use: tens of KiB of noise. The exact check is the sanitizer build's.
            heap_slack = max(heap_slack, args.mallinfo_slack)
        print("live heap %+d bytes (%s), RSS %+d KiB"
              % (heap_growth, after["heap_source"], rss_growth))
        if heap_growth > heap_slack:
            failures.append("live heap grew by %d bytes (slack %d)" % (heap_growth, heap_slack))
        if rss_growth > args.rss_slack:
            failures.append("RSS grew by %d KiB (slack %d)" % (rss_growth, args.rss_slack))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"sessions": len(kinds), "mix": args.mix,
                           "concurrency": args.concurrency, "seconds": elapsed,
                           "sessions_per_s": rate, "before": before, "after": after}, f)
    finally:
        code, stderr = d.stop()
        if code != 0:
            failures.append("authd exit code %d" % code)
        if stderr.strip():
            failures.append("authd wrote to stderr:\n" + stderr[:4000])
    for f in failures:
        print("FAILED: " + f)
    if failures:
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
