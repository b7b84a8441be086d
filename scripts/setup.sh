#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Strata. Idempotent: a rerun installs
# nothing. Needs root (or sudo) for apt-get.
set -euo pipefail

# libclang-dev: bindgen (librocksdb-sys) loads libclang at build time.
# g++/make: the RocksDB C++ build.
packages=(libclang-dev g++ make)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
else
  echo "setup: system packages present"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup" >&2; exit 1; }
cargo --version
