#!/bin/sh
# Rebuilds tiny.o (committed, so the tests need no cross toolchain): a Mach-O object for
# x86_64 macOS, made by any rustc without the target's std (no_core needs no library).
set -e
cd "$(dirname "$0")"
RUSTC_BOOTSTRAP=1 "${RUSTC:-rustc}" --target x86_64-apple-darwin --emit obj -C opt-level=1 \
    -C panic=abort -o tiny.o tiny.rs
