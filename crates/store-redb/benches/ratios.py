#!/usr/bin/env python3
"""Prints the trait/raw ratios of the last `cargo bench -p store-redb` run as a Markdown table.

Reads criterion's estimates under $CARGO_TARGET_DIR/criterion (default: target/criterion).
Usage: python3 crates/store-redb/benches/ratios.py
"""
import json
import os
import sys

ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
# (group, trait benchmark, raw baseline, what is compared)
PAIRS = [
    ("insert_1m_sorted", "trait_insert_sorted", "raw_cursor_insert", "1M sorted inserts, one txn: `insert_sorted` vs redb write cursor"),
    ("insert_1m_sorted", "trait_put", "raw_table_insert", "1M sorted inserts, one txn: `put` vs `Table::insert`"),
    ("get_1m_random", "trait_get", "raw_get_owned", "1M random point gets, one snapshot: `get` vs redb `get` + copy to a `Vec` (identical work)"),
    ("get_1m_random", "trait_get", "raw_get", "1M random point gets: `get` vs redb `get` without the copy"),
    ("scan_1m", "trait_range", "raw_range_owned", "1M-row scan, owned rows: `range` vs redb `range` + copy to `Vec`s (identical work)"),
    ("scan_1m", "trait_visit_range", "raw_range", "1M-row scan, borrowed rows: `visit_range` vs redb `range`"),
    ("scan_1m", "trait_range", "raw_range", "1M-row scan: `range` (owned rows) vs redb `range` (borrowed)"),
]


def estimate(group, bench):
    path = os.path.join(ROOT, group, bench, "new", "estimates.json")
    with open(path) as f:
        e = json.load(f)
    return e["median"]["point_estimate"] / 1e6  # ms


def main():
    print("| benchmark | trait (ms) | raw (ms) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for group, t, r, what in PAIRS:
        try:
            tt, rr = estimate(group, t), estimate(group, r)
        except FileNotFoundError as e:
            print(f"missing: {e.filename}", file=sys.stderr)
            continue
        print(f"| {what} | {tt:.1f} | {rr:.1f} | {tt / rr:.2f} |")


if __name__ == "__main__":
    main()
