#!/usr/bin/env python3
"""Ratio tables from Google Benchmark JSON output.

usage: summarize.py owners.json pam_e2e.json

Every ratio compares two benchmarks of the same run: handoff over the
hand-written C it replaces (below 1.00 is faster, above is slower).
"""
import json
import sys


def load(path):
    """Benchmarks by name: the median of the repetitions when there were any."""
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                runs[b["run_name"]] = b
        else:
            runs.setdefault(b["name"], b)
    return runs


def owners_table(runs):
    pairs = [("raw_strdup", "handoff_c_strdup", ["/8", "/64", "/511"]),
             ("raw_calloc_loop", "handoff_malloc_array", ["/16", "/256"]),
             ("raw_malloc_free", "handoff_c_unique_ptr", [""]),
             ("raw_string_list", "handoff_c_string_list", ["/4", "/32"]),
             ("raw_free", "handoff_secure_free", ["/64", "/512"])]
    print("| raw C | handoff | size | raw ns | handoff ns | ratio |")
    print("|---|---|---|---|---|---|")
    for raw, ours, sizes in pairs:
        for size in sizes:
            a = runs[raw + size]["real_time"]
            b = runs[ours + size]["real_time"]
            print("| %s | %s | %s | %.1f | %.1f | %.2fx |" % (raw, ours, size.lstrip("/") or "-", a, b, b / a))


def e2e_table(runs):
    print("| conversation | authentications/s | time in conversation |")
    print("|---|---|---|")
    for name in ("c_conversation/real_time", "handoff_conversation/real_time"):
        r = runs[name]
        print("| %s | %.0f | %.2f %% |" % (name.split("/")[0], r["auth_per_s"], r["conv_share_pct"]))
    c = runs["c_conversation/real_time"]["real_time"]
    h = runs["handoff_conversation/real_time"]["real_time"]
    print("\nhandoff / C time per authentication: %.2fx" % (h / c))


def main(argv):
    owners, e2e = (load(p) for p in argv[1:3])
    print("### Core owners (wall time)\n")
    owners_table(owners)
    print("\n### pam_authenticate against pam_matrix under pam_wrapper\n")
    e2e_table(e2e)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
