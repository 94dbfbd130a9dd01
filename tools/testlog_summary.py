#!/usr/bin/env python3
"""Counts Meson test results across build directories.

usage: testlog_summary.py [--failed-builds N] TESTLOG.json...

Reads Meson's testlog JSON files (one JSON object per line) and prints one
line "N passed, N failed" (", N skipped" when any were skipped). Builds that
failed before their tests ran are passed in with --failed-builds and counted
as failed, so a broken configuration can never look like a green run.
Exits 1 when anything failed or when no test ran at all.
"""
import json
import sys

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}


def main(argv):
    args = argv[1:]
    failed_builds = 0
    if args[:1] == ["--failed-builds"]:
        failed_builds = int(args[1])
        args = args[2:]
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
