#!/usr/bin/env python3
"""Counts Meson test results across build directories.

usage: testlog_summary.py [--failed-builds N] TESTLOG.json...
       testlog_summary.py --inputs SUMMARY-INPUTS...
       testlog_summary.py --show-suite SUITE TESTLOG.json
       testlog_summary.py --no-skips TESTLOG.json

Reads Meson's testlog JSON files (one JSON object per line) and prints one
line "N passed, N failed" (", N skipped" when any were skipped). Builds that
failed before their tests ran are passed in with --failed-builds and counted
as failed, so a broken configuration can never look like a green run.
Exits 1 when anything failed or when no test ran at all.

--inputs adds up several runs of tools/check (its matrix and --ports): each
file, written by tools/check beside its builds, holds that run's number of
failed builds on its first line and its testlog paths on the following ones.
A file that is missing (a run that never finished) counts as a failed build.

--show-suite prints what each test of SUITE wrote (its figures), indented,
at most SHOW_LINES lines a test; it prints nothing when the suite did not run.

--no-skips exits 1, naming them, when any test of the log was skipped (a
missing testlog counts too): tools/check's plain-sequence configuration
allows none.
"""
import json
import sys

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}
SHOW_LINES = 40


def show_suite(suite, path):
    """Prints the output of every test named "project:SUITE / name" in path."""
    try:
        f = open(path)
    except OSError:
        return 0
    with f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            test = json.loads(line)
            name = test.get("name", "")
            if (":" + suite + " / ") not in name:
                continue
            print("    %s: %s" % (name.split(" / ", 1)[1], test.get("result")))
            out = ((test.get("stdout") or "") + (test.get("stderr") or "")).rstrip("\n").splitlines()
            for text in out[:SHOW_LINES]:
                print("      " + text)
            if len(out) > SHOW_LINES:
                print("      ... %d more lines in %s" % (len(out) - SHOW_LINES, path))
    return 0


def no_skips(path):
    """Exits 1 when a test of the log was skipped or the log is missing."""
    try:
        with open(path) as f:
            tests = [json.loads(line) for line in f if line.strip()]
    except OSError:
        print("    no testlog: %s" % path)
        return 1
    skipped = [t.get("name", "?") for t in tests if t.get("result") in SKIPPED]
    for name in skipped:
        print("    skipped, where no test may skip: %s" % name)
    return 1 if skipped else 0


def main(argv):
    args = argv[1:]
    if args[:1] == ["--show-suite"]:
        return show_suite(args[1], args[2])
    if args[:1] == ["--no-skips"]:
        return no_skips(args[1])
    failed_builds = 0
    if args[:1] == ["--failed-builds"]:
        failed_builds = int(args[1])
        args = args[2:]
    elif args[:1] == ["--inputs"]:
        logs = []
        for name in args[1:]:
            try:
                with open(name) as f:
                    lines = [line.strip() for line in f if line.strip()]
            except OSError:
                print("%s: missing, counted as a failed build" % name)
                failed_builds += 1
                continue
            failed_builds += int(lines[0]) if lines else 1
            logs += lines[1:]
        args = logs
    passed = failed = skipped = 0
    for path in args:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                result = json.loads(line).get("result")
                if result in PASSED:
                    passed += 1
                elif result in SKIPPED:
                    skipped += 1
                else:
                    failed += 1
    failed += failed_builds
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
