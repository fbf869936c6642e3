#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan, the whole tree instrumented) and runs each
# for a bounded time over a scratch copy of its seed corpus in fuzz/corpus/ (the tree is not
# modified). Fails when a target crashes, leaks, times out or runs out of memory; crashing
# inputs are kept in BUILDDIR/fuzz-artifacts/. Prints the executions of each target.
# Usage: tools/fuzz-ci.sh [BUILDDIR]   (as root, for apt-get; FUZZ_TIME=seconds per target, 45)
# Takes about 4 minutes on 2 cores once built: the targets two at a time, three rounds.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/build-fuzz}
secs=${FUZZ_TIME:-45}
targets="varlink maps elf json-writer libmemctl methods symtab"

# clang itself, and libclang-rt-14-dev for libFuzzer (libclang_rt.fuzzer) and the sanitizers.
missing=
for p in clang libclang-rt-14-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
        echo "Installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The rest of the build dependencies, configure and build: the lead's setup script.
echo "== build $builddir (clang, --enable-fuzzing)"
CC=clang "$top/tools/setup.sh" "$builddir" --enable-fuzzing --enable-sanitizers
for t in $targets; do
        [ -x "$builddir/fuzz/fuzz-$t" ] || { echo "fuzz/fuzz-$t was not built: is $builddir configured with --enable-fuzzing?"; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=$builddir/fuzz-artifacts
mkdir -p "$artifacts"

run_one() {
        t=$1
        mkdir -p "$work/$t/art"
        cp -r "$top/fuzz/corpus/$t" "$work/$t/corpus"
        # -timeout: one input taking 10 s is a hang; leaks count as failures (libFuzzer's default).
        ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                "$builddir/fuzz/fuzz-$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$work/$t/art/" "$work/$t/corpus" \
                >"$work/$t/log" 2>&1 && rc=0 || rc=$?
        # Under set -e a failing target would end this subshell before its status is written.
        echo "$rc" >"$work/$t/rc"
}

# Two at a time: the machines this runs on have 2 cores.
# shellcheck disable=SC2086 # word splitting wanted: one argument per target
set -- $targets
while [ $# -gt 0 ]; do
        run_one "$1" &
        if [ $# -gt 1 ]; then
                run_one "$2" &
                shift
        fi
        shift
        wait
done

status=0
for t in $targets; do
        rc=$(cat "$work/$t/rc")
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n1)
        crashes=$(find "$work/$t/art" -type f | wc -l)
        if [ "$rc" = 0 ] && [ "$crashes" -eq 0 ]; then
                echo "fuzz-$t: ${execs:-?} executions in ${secs} s, no crash"
        else
                status=1
                echo "fuzz-$t: FAILED (exit $rc) after ${execs:-?} executions"
                grep -E 'ERROR|invariant violated|runtime error|SUMMARY' "$work/$t/log" | head -n 20 || true
                tail -n 40 "$work/$t/log"
                for f in "$work/$t/art"/*; do
                        [ -f "$f" ] || continue
                        cp "$f" "$artifacts/$t-$(basename "$f")"
                        echo "reproduce: $builddir/fuzz/fuzz-$t $artifacts/$t-$(basename "$f")"
                done
        fi
done
exit $status
