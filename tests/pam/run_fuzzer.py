#!/usr/bin/env python3
"""Runs the conversation fuzzer for a bounded time over the corpus in the repo.

usage: run_fuzzer.py FUZZER CORPUS SECONDS

New inputs go to a temporary directory, so the repository is never written.
Prints libFuzzer's final statistics (executions reached) and fails when the
fuzzer found a crash, a leak or a contract breach.
"""
import subprocess
import sys
import tempfile


def main(argv):
    fuzzer, corpus, seconds = argv[1], argv[2], argv[3]
    with tempfile.TemporaryDirectory() as scratch:
        run = subprocess.run([fuzzer, scratch, corpus, "-max_total_time=" + seconds,
                              "-print_final_stats=1", "-artifact_prefix=" + scratch + "/",
                              "-max_len=512"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True)
    stats = [line for line in run.stdout.splitlines()
             if line.startswith(("stat::number_of_executed_units", "stat::peak_rss_mb", "Done "))]
    print("\n".join(stats))
    if run.returncode != 0:
        print(run.stdout[-6000:])
        # libFuzzer exits with 77 on a finding (its -error_exitcode), which
        # Meson reads as a skipped test: any failure is reported as 1.
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
