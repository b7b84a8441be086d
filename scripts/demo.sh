#!/usr/bin/env bash
# The main job on a fresh machine: install what it lacks, build the `strata` binary (release,
# redb backend, so RocksDB's C++ is not built), and run `strata demo`, which generates a
# synthetic Zcash-shaped chain, syncs it into a new store, verifies everything and prints
# stats and txoutsetinfo.
#   bash scripts/demo.sh [--blocks N] [--seed S] [--dir DIR] [--no-spam]   (see `strata demo --help`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}"
echo "==> building strata (release)"
cargo build --locked --release -p cli --bin strata
echo "==> strata demo $*"
exec "$CARGO_TARGET_DIR/release/strata" demo "$@"
