#!/usr/bin/env bash
# The main job, as far as it exists: generate a deterministic Zcash-shaped chain, bulk-sync it
# into a new finalised-state store (redb), validate every block, and print txoutsetinfo.
#   BLOCKS=5000 SEED=42 STRATA_DEMO_DIR=/tmp/strata-demo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}"
blocks="${BLOCKS:-5000}"
seed="${SEED:-42}"
work="${STRATA_DEMO_DIR:-$(mktemp -d -t strata-demo.XXXXXX)}"
rm -rf "$work/fixture" "$work/store"
echo "==> building (release; the demo uses redb, so RocksDB's C++ is not built)"
cargo build --quiet --release -p finalised-state --example sync_fixture
echo "==> generating $blocks blocks (seed $seed) into $work/fixture, syncing into $work/store"
cargo run --quiet --release -p finalised-state --example sync_fixture -- \
  --synth "$blocks" "$seed" "$work/fixture" "$work/store"
