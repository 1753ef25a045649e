#!/usr/bin/env bash
# Every check pulse has, as CI runs it: formatting, lints, and the whole test suite (unit tests,
# integration tests against the real server, real Redis, and the page in headless Chromium).
# Installs what cargo cannot (redis-server, chromium, chromium-driver) with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]} with apt-get"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked
echo "==> fuzz every parser of untrusted input briefly (longer runs: ./scripts/fuzz.sh 600)"
./scripts/fuzz.sh 10
