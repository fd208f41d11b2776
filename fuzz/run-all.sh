#!/bin/sh
# Runs every fuzz target for SECONDS (default 30) on its committed corpus
# (fuzz/seeds/TARGET, read only: new inputs go to a scratch directory), one after the
# other. Exits non-zero as soon as a target crashes, leaks, times out or runs out of
# memory; the crashing input is left in fuzz/artifacts/TARGET/.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain,
# RUSTC_BOOTSTRAP=1 unlocks the nightly flags cargo-fuzz passes (set here unless
# already set). Extra arguments after SECONDS go to `cargo fuzz run` (for example
# `--sanitizer none` where the address sanitizer runtime is missing).
set -eu
seconds=${1:-30}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"
cargo fuzz build -O "$@"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target" "seeds/$target"
    echo "== $target: ${seconds}s"
    cargo fuzz run -O "$@" "$target" "$scratch/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 2>"$scratch/$target.log" || {
        tail -n 60 "$scratch/$target.log" >&2
        echo "FAIL: $target crashed; input in fuzz/artifacts/$target/" >&2
        exit 1
    }
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+ +DONE)' \
        "$scratch/$target.log" || true
done
echo "all targets ran ${seconds}s without a crash"
