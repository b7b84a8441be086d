#!/usr/bin/env python3
"""Prints the trait/raw ratios of the last `cargo bench --bench kv` run of store-lmdb-compat
as a Markdown table.

Reads criterion's estimates under $CARGO_TARGET_DIR/criterion (default: target/criterion).
Usage: python3 crates/store-lmdb-compat/benches/ratios.py
"""
import json
import os
import sys

ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
# (group, trait benchmark, raw baseline, what is compared)
PAIRS = [
    ("bulk_insert", "traits_insert_sorted", "raw_write_batch", "1M sorted inserts, 10 synced batches: `insert_sorted` vs `WriteBatch::put_cf`"),
    ("bulk_insert", "traits_put", "raw_write_batch", "1M sorted inserts, 10 synced batches: `put` vs `WriteBatch::put_cf`"),
    ("point_get", "traits", "raw", "1M random point gets, one snapshot: `get` vs `Snapshot::get_cf`"),
    ("range_scan", "traits", "raw", "1M-row scan, owned rows: `range` vs `Snapshot::iterator_cf`"),
    ("range_scan", "traits_visit", "raw_borrowed", "1M-row scan, borrowed rows: `visit_range` vs raw iterator"),
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
