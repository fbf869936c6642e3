#!/bin/sh
# Installs what is missing, then builds and runs the whole test suite twice: a plain
# -Werror build and an ASan+UBSan build, then the plain build's integration tests again beside two
# CPU-bound processes. Ends with one line: "N passed, N failed, N skipped", counted from
# automake's results and cmocka's per-test lines (tools/count-results.sh).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tools/count-results.sh"
status=0
passed=0
failed=0
skipped=0

run() {
        dir=$1; shift
        echo "== build $dir ($*)"
        run_t0=$(date +%s)
        "$top/tools/setup.sh" "$dir" "$@" || { echo "build failed: $dir"; status=1; failed=$((failed + 1)); return; }
        before=$failed
        if ! make -C "$dir" -j"$(nproc)" check >"$dir/check.out" 2>&1; then
                status=1
                make_failed=1
                grep -E '^(FAIL|ERROR|XPASS)' "$dir/check.out" || tail -n 40 "$dir/check.out"
                for log in "$dir"/tests/*.log "$dir"/tests/integration/*.log; do
                        grep -qE '^\[  FAILED  \]|ERROR|Sanitizer|runtime error' "$log" 2>/dev/null || continue
                        echo "--- $log"
                        # The failing assertions first: the tail alone can miss them.
                        grep -E -B3 '^\[ +(ERROR|LINE) +\]|Sanitizer|runtime error' "$log" | head -n 60
                        echo "--- tail of $log"
                        tail -n 60 "$log"
                done
        fi
        grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$dir/check.out" | sed "s|^|$dir: |"
        count_results "$dir"
        # make check failed without a failing test to show for it: count that too.
        if [ "${make_failed:-0}" = 1 ] && [ $failed -eq "$before" ]; then
                tail -n 20 "$dir/check.out"
                failed=$((failed + 1))
        fi
        make_failed=0
        echo "$dir: $(( $(date +%s) - run_t0 ))s; slowest tests (ms):"
        slowest "$dir"
}

# The ten test programs of a build that ran longest (tools/run-test.sh ends each log with it).
slowest() {
        for log in "$1"/tests/*.log "$1"/tests/*/*.log "$1"/fuzz/*.log; do
                [ -f "$log" ] || continue
                ms=$(sed -n 's/^# test time: \([0-9]*\) ms$/\1/p' "$log" | tail -n 1)
                [ -n "$ms" ] && echo "$ms ${log#"$1"/}"
        done | sort -rn | head -n 10 | sed 's/^/  /'
}

# A whole check that is not a cmocka program counts as one test.
step() {
        name=$1; shift
        echo "== $name"
        t0=$(date +%s)
        if "$@" >"$top/build/$name.out" 2>&1; then
                passed=$((passed + 1))
                echo "$name: ok ($(( $(date +%s) - t0 ))s)"
        else
                failed=$((failed + 1))
                status=1
                echo "$name: FAILED ($(( $(date +%s) - t0 ))s)"; tail -n 40 "$top/build/$name.out"
        fi
}

run "$top/build"
run "$top/build-asan" --enable-sanitizers

# The timing-sensitive programs again, beside two CPU-bound processes (the machine CI and
# developers share is rarely idle): a test that passes only on an idle machine fails here. The
# load is the fuzzing step itself (its clang build, then two targets at a time), run meanwhile:
# CPU-bound work CI has to do anyway, instead of spinning loops. distcheck and the packages run
# beside it too; its end is awaited last.
load_tests="tests/integration/test-service tests/integration/test-systemd tests/integration/test-robustness tests/test-engine tests/test-access"
echo "== fuzz, in the background: the load beside the rerun"
fuzz_t0=$(date +%s)
"$top/tools/fuzz-ci.sh" >"$top/build/fuzz.out" 2>&1 &
fuzz_pid=$!
trap 'kill $fuzz_pid 2>/dev/null' EXIT
echo "== under load: $load_tests"
t0=$(date +%s)
load_ok=1
make -C "$top/build" check TESTS="$load_tests" >"$top/build/check-load.out" 2>&1 || load_ok=0
kill -0 $fuzz_pid 2>/dev/null || echo "note: the fuzzing ended before the rerun did: its end ran unloaded"
echo "under load: $(( $(date +%s) - t0 ))s"
before=$failed
for t in $load_tests; do
        if [ -f "$top/build/$t.trs" ]; then
                count_results "$top/build/$t.trs"
        else
                echo "FAILED: $t did not run under load"; failed=$((failed + 1))
        fi
done
if [ $load_ok = 0 ]; then
        status=1
        grep -E -B3 '^\[ +(ERROR|LINE) +\]' "$top"/build/tests/*.log "$top"/build/tests/integration/*.log | head -n 60
        [ $failed -eq "$before" ] && { tail -n 20 "$top/build/check-load.out"; failed=$((failed + 1)); }
fi

# distcheck proves that the tarball builds (every test program included), installs, uninstalls
# and that tests run from it. The whole suite ran twice above: here only the programs that read
# what the tarball must carry besides the sources (tools/count-results.sh, the systemd units,
# every fuzz corpus) and a few fast ones on a live daemon and fixture. Built in parallel, like
# the steps above; CI throws the tarballs away, so xz at its fastest (automake's default, -e,
# costs seconds of CPU for each of distcheck's two archives).
distcheck_tests="tests/test-count-results.sh tests/integration/test-systemd tests/integration/test-fdpass tests/test-varlink-frame \
        tests/test-maps-parse tests/test-elf-reader fuzz/replay-varlink fuzz/replay-maps fuzz/replay-elf \
        fuzz/replay-json-writer fuzz/replay-libmemctl fuzz/replay-methods fuzz/replay-symtab"
step distcheck env XZ_OPT=-1 make -C "$top/build" -j"$(nproc)" distcheck TESTS="$distcheck_tests"
step packages "$top/tools/package-ci.sh"

# The fuzzing runs for a fixed time whatever else runs: distcheck and the packages above ran
# beside it (it is CPU-bound work the suite needs anyway, and they need not wait for it).
echo "== fuzz"
if wait $fuzz_pid; then
        passed=$((passed + 1))
        echo "fuzz: ok ($(( $(date +%s) - fuzz_t0 ))s)"
else
        failed=$((failed + 1))
        status=1
        echo "fuzz: FAILED ($(( $(date +%s) - fuzz_t0 ))s)"; tail -n 40 "$top/build/fuzz.out"
fi
trap - EXIT

[ $failed -gt 0 ] && status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
