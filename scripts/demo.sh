#!/usr/bin/env bash
# The main job on a fresh machine: install what it lacks, build the `strata` binary (release;
# redb finalised state, RocksDB hot stores, so the first build compiles RocksDB's C++), and run
# `strata demo`, which generates a synthetic Zcash-shaped chain, ingests it into a new tiered
# store (hot chunks, closed chunks frozen into packs), verifies everything and prints stats,
# chunk states and txoutsetinfo.
#   bash scripts/demo.sh [--blocks N] [--seed S] [--dir DIR] [--chunk-size H] [--spam|--no-spam] [--no-tiers]
#   (see `strata demo --help`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}"
echo "==> building strata (release)"
cargo build --locked --release -p cli --bin strata
echo "==> strata demo $*"
exec "$CARGO_TARGET_DIR/release/strata" demo "$@"
