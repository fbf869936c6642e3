#!/bin/sh
# Installs what is missing, then builds and runs the whole test suite twice: a plain
# -Werror build and an ASan+UBSan build. Ends with one line: "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
status=0
passed=0
failed=0

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)..." per program; a
# program that died before its summary counts as one failure.
count() {
        for log in "$1"/tests/test-*.log; do
                [ -f "$log" ] || continue
                p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
                f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
                if [ -z "$p" ] && [ -z "$f" ]; then
                        echo "no cmocka summary in $log:"; tail -n 20 "$log"
                        f=1
                fi
                passed=$((passed + ${p:-0}))
                failed=$((failed + ${f:-0}))
        done
}

run() {
        dir=$1; shift
        echo "== build $dir ($*)"
        "$top/tools/setup.sh" "$dir" "$@" || { echo "build failed: $dir"; status=1; failed=$((failed + 1)); return; }
        before=$failed
        if ! make -C "$dir" -j"$(nproc)" check >"$dir/check.out" 2>&1; then
                status=1
                make_failed=1
                grep -E '^(FAIL|ERROR|XPASS)' "$dir/check.out" || tail -n 40 "$dir/check.out"
                for log in "$dir"/tests/*.log; do
                        grep -qE '^\[  FAILED  \]|ERROR|Sanitizer|runtime error' "$log" 2>/dev/null || continue
                        echo "--- $log"
                        # The failing assertions first: the tail alone can miss them.
                        grep -E -B3 '^\[ +(ERROR|LINE) +\]|Sanitizer|runtime error' "$log" | head -n 60
                        echo "--- tail of $log"
                        tail -n 60 "$log"
                done
        fi
        grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$dir/check.out" | sed "s|^|$dir: |"
        count "$dir"
        # make check failed without a failing test to show for it: count that too.
        if [ "${make_failed:-0}" = 1 ] && [ $failed -eq "$before" ]; then
                tail -n 20 "$dir/check.out"
                failed=$((failed + 1))
        fi
        make_failed=0
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

# Programs that are not cmocka (the fuzz corpus replays) report through automake's .trs.
for trs in "$top"/build/fuzz/*.trs "$top"/build-asan/fuzz/*.trs; do
        [ -f "$trs" ] || continue
        case $(sed -n 's/^:test-result: //p' "$trs") in
        PASS) passed=$((passed + 1)) ;;
        SKIP) ;;
        *) failed=$((failed + 1)); status=1; echo "failed: $trs" ;;
        esac
done

step fuzz "$top/tools/fuzz-ci.sh"
step distcheck make -C "$top/build" distcheck
step packages "$top/tools/package-ci.sh"

[ $failed -gt 0 ] && status=1
echo "$passed passed, $failed failed"
exit $status
