#!/bin/sh
# codeview.exe: a GNU-linked PE with COFF symbols and a CodeView (RSDS) record, which
# `--build-id` makes GNU ld write. `objdump -p codeview.exe` shows its GUID and age.
set -eu
cd "$(dirname "$0")"
x86_64-w64-mingw32-gcc -O1 -nostartfiles -nostdlib -e start -Wl,--build-id \
    -o codeview.exe codeview.c
