#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with cargo fuzz (libFuzzer), SECONDS per target
# (default 10: the short run CI does; try 600 or more for a real search).
#   ./scripts/fuzz.sh [SECONDS] [TARGET…]
# Installs cargo-fuzz when missing. cargo fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the
# stable toolchain accept them, and no sanitizer is used (the code under test is safe Rust).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi

export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    echo "==> fuzz $target for ${seconds}s"
    # Every target starts from the corpus it has grown before (kept out of git).
    log="$(mktemp)"
    if ! cargo fuzz run --sanitizer none "$target" -- -max_total_time="$seconds" -timeout=5 \
        >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed: the input is in fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$log" || tail -n 3 "$log"
    rm -f "$log"
done
