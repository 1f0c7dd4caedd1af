#!/bin/sh
# Trace one sample of bench rows instruction by instruction and write their profiles.
# Usage (from anywhere):  prof/profile.sh [libos|microkernel|ROW]...
#   no argument: los.fs_read and mk.fs_read; a personality: its fs_read; a row: that row
#   (prof/rows.py lists them: mk.null_call, mk.ssr_call, mk.fs_write, los.channel_rtt, ...)
# Needs: qemu-system-x86_64, gdb (with Python), binutils (nm, objdump, addr2line), python3.
set -e
cd "$(dirname "$0")/.."
cargo os build
mkdir -p prof/out
for arg in ${@:-libos microkernel}; do
    case "$arg" in
        libos) p=libos; row=los.fs_read ;;
        microkernel) p=microkernel; row=mk.fs_read ;;
        los.*) p=libos; row=$arg ;;
        mk.*) p=microkernel; row=$arg ;;
        *) echo "profile: $arg is neither a personality nor a row (prof/rows.py)"; exit 2 ;;
    esac
    tag=$(echo "$row" | tr . _)
    python3 prof/run.py "$p" "$row" > "prof/out/run-$tag.log" 2>&1 || { tail -20 "prof/out/run-$tag.log"; exit 1; }
    grep '\[prof\]' "prof/out/run-$tag.log" | grep -v '^\[prof\] row [0-9]*:'
    python3 prof/analyse.py "$row" > "prof/out/${tag}_report.txt"
    echo "profile: prof/out/${tag}_report.txt"
done
