#!/bin/sh
# Trace one sample of los.fs_read and of mk.fs_read instruction by instruction and write the
# profiles. Usage (from anywhere):  prof/profile.sh [libos|microkernel]...   (default: both)
# Needs: qemu-system-x86_64, gdb (with Python), binutils (nm, objdump, addr2line), python3.
set -e
cd "$(dirname "$0")/.."
cargo os build
for p in ${@:-libos microkernel}; do
    short=$([ "$p" = libos ] && echo los || echo mk)
    python3 prof/run.py "$p" > "prof/out/run-$p.log" 2>&1 || { tail -20 "prof/out/run-$p.log"; exit 1; }
    grep '\[prof\]' "prof/out/run-$p.log"
    python3 prof/analyse.py "$p" > "prof/out/${short}_report.txt"
    echo "profile: prof/out/${short}_report.txt"
done
