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
                        grep -qE '^\[  FAILED  \]|ERROR|Sanitizer|runtime error' "$log" 2>/dev/null && { echo "--- $log"; tail -n 60 "$log"; }
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

run "$top/build"
run "$top/build-asan" --enable-sanitizers

[ $failed -gt 0 ] && status=1
echo "$passed passed, $failed failed"
exit $status
