#!/usr/bin/env bash
# The test command: formatting, lints, the whole test suite (doc tests included, both
# backends), and the layering rule that storage-traits depends on no backend.
set -euo pipefail
cd "$(dirname "$0")/.."

# The target directory lives outside the clone so a rerun on the same machine reuses the
# build (RocksDB's C++ takes ~15 minutes cold on two cores). It is CI's own: day-to-day
# builds with other feature sets (`-p crate`) compile RocksDB with other features, and
# sharing a directory with them means waiting on its lock.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/ci-verify}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# An explicit --target keeps build-time dependencies (cc, bindgen and their libc) apart from
# the crates being checked. Without it, `cargo clippy` (check mode) and `cargo test` (build
# mode) resolve those build dependencies into different units, so RocksDB's build script
# reruns and its C++ is compiled twice; with it, clippy and the tests share one C++ build.
host=$(rustc -vV | sed -n 's/^host: //p')

step() { printf '\n==> %s\n' "$*"; }

step "layering: storage-traits must not depend on a backend"
deps=$(cargo tree --locked -p storage-traits --all-features --edges normal,build,dev --prefix none --format '{p}')
if echo "$deps" | grep -E '^(redb|rocksdb|librocksdb-sys|store-redb|store-lmdb-compat) ' ; then
  echo "storage-traits depends on a backend (above): forbidden by DESIGN.md" >&2
  exit 1
fi
echo "ok"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --locked --target "$host" --workspace --all-targets --all-features -- -D warnings

step "cargo test (all features: both backends; doc tests included)"
cargo test --locked --target "$host" --workspace --all-features
