#!/bin/sh
# Builds memmapd, starts it on a private socket, and shows memctl output for a live process.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup.sh" "$top/build"
b=$top/build
sock=$(mktemp -d)/io.memmapd
"$b/daemon/memmapd" --socket "$sock" &
daemon=$!
sleep 300 & target=$!
trap 'kill $target $daemon 2>/dev/null; wait 2>/dev/null; rm -rf "$(dirname "$sock")"' EXIT
for i in 1 2 3 4 5 6 7 8 9 10; do [ -S "$sock" ] && break; sleep 0.2; done

set -x
"$b/client/memctl" --socket "$sock" status
"$b/client/memctl" --socket "$sock" maps "$target"
"$b/client/memctl" --socket "$sock" modules "$target"
grep -m2 -E 'libc|sleep' "/proc/$target/maps" | awk '{ split($1, r, "-"); print "0x" r[1] }' |
        "$b/client/memctl" --socket "$sock" lookup "$target"
