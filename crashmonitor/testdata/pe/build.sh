#!/bin/sh
# Rebuilds tiny.exe (committed, so the tests need no mingw): a 64-bit PE with a COFF
# symbol table, as GNU ld writes for the *-windows-gnu targets, and a .pdata table.
set -e
cd "$(dirname "$0")"
x86_64-w64-mingw32-gcc -O1 -fno-inline -nostdlib -Wl,-e,start -o tiny.exe tiny.c
