#!/bin/sh
# Self-test of tools/count-results.sh, the count CI prints: synthetic automake results (.trs)
# and cmocka logs, each form a real run produces, must give exactly the expected totals.
set -eu
top=${srcdir:-$(dirname "$0")/..}
. "$top/tools/count-results.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tests" "$work/tests/integration" "$work/fuzz"

# prog NAME RESULT: a .trs with that verdict and a log read from stdin.
prog() {
        printf ':test-result: %s\n:global-test-result: %s\n' "$2" "$2" >"$work/$1.trs"
        cat >"$work/$1.log"
}

# All passed: 3.
prog tests/test-a PASS <<'LOG'
[==========] Running 3 test(s).
[ RUN      ] test_one
[       OK ] test_one
[ RUN      ] test_two
[       OK ] test_two
[ RUN      ] test_three
# a line a test printed
[       OK ] test_three
[==========] 3 test(s) run.
[  PASSED  ] 3 test(s).
LOG
# One failed (listed again in the summary), one skipped (listed again), one passed, and the
# group teardown failed (stderr lines mixed in before stdout's, as in a log): 1 passed,
# 2 failed, 1 skipped.
prog tests/test-b FAIL <<'LOG'
[  ERROR   ] --- 0x1 != 0x2
[   LINE   ] --- test-b.c:8: error: Failure!
[  FAILED  ] GROUP TEARDOWN
[  ERROR   ] service
[  PASSED  ] 1 test(s).
[  SKIPPED ] 1 test(s), listed below:
[  SKIPPED ] test_sk

 1 SKIPPED TEST(S)
[  FAILED  ] 1 test(s), listed below:
[  FAILED  ] test_bad

 1 FAILED TEST(S)
[==========] Running 3 test(s).
[ RUN      ] test_ok
[       OK ] test_ok
[ RUN      ] test_bad
[  FAILED  ] test_bad
[ RUN      ] test_sk
[  SKIPPED ] test_sk
[==========] 3 test(s) run.
LOG
# Only the group teardown failed, every test passed: 2 passed, 1 failed.
prog tests/test-c FAIL <<'LOG'
[==========] Running 2 test(s).
[ RUN      ] test_x
[       OK ] test_x
[ RUN      ] test_y
[       OK ] test_y
[==========] 2 test(s) run.
[  FAILED  ] GROUP TEARDOWN
[  ERROR   ] service
[  PASSED  ] 2 test(s).
LOG
# A test's own teardown failed after it passed: 0 passed, 1 failed.
prog tests/test-d FAIL <<'LOG'
[==========] Running 1 test(s).
[ RUN      ] test_t
[       OK ] test_t
Could not run test: Test teardown failed
[  ERROR   ] test_t
[==========] 1 test(s) run.
LOG
# Killed by the timeout inside its second test: 1 passed, 1 failed.
prog tests/test-e FAIL <<'LOG'
[==========] Running 3 test(s).
[ RUN      ] test_p
[       OK ] test_p
[ RUN      ] test_hang
LOG
# Every test passed but LeakSanitizer failed the exit status: 1 passed, 1 failed.
prog tests/test-f FAIL <<'LOG'
[==========] Running 1 test(s).
[ RUN      ] test_l
[       OK ] test_l
[==========] 1 test(s) run.
[  PASSED  ] 1 test(s).
==123==ERROR: LeakSanitizer: detected memory leaks
LOG
# A whole program skipped: 1 skipped. A failing fuzz replay: 1 failed, once. A passing one.
prog tests/test-g SKIP </dev/null
prog fuzz/replay-maps FAIL <<'LOG'
replay-maps: 12 inputs
==1==ERROR: AddressSanitizer: heap-buffer-overflow
LOG
prog fuzz/replay-elf PASS <<'LOG'
replay-elf: 40 inputs
LOG
# A test skipped, its reason printed with the same prefix: 1 skipped, not 2.
prog tests/test-h PASS <<'LOG'
[==========] Running 1 test(s).
[ RUN      ] test_s
[  SKIPPED ] this kernel has no PROCMAP_QUERY ioctl (Linux 6.11+)
[  SKIPPED ] test_s
[==========] 1 test(s) run.
[  PASSED  ] 0 test(s).
[  SKIPPED ] 1 test(s), listed below:
[  SKIPPED ] test_s
LOG

# A program one folder deeper (tests/integration/) counts too: 2 passed, 1 failed.
prog tests/integration/test-i FAIL <<'LOG'
[==========] Running 3 test(s).
[ RUN      ] test_x
[       OK ] test_x
[ RUN      ] test_y
[       OK ] test_y
[ RUN      ] test_z
[  FAILED  ] test_z
[==========] 3 test(s) run.
[  PASSED  ] 2 test(s).
[  FAILED  ] 1 test(s), listed below:
[  FAILED  ] test_z
LOG

passed=0 failed=0 skipped=0
count_results "$work" >"$work/out"
cat "$work/out"
echo "$passed passed, $failed failed, $skipped skipped"
want="11 passed, 8 failed, 3 skipped"
[ "$passed passed, $failed failed, $skipped skipped" = "$want" ] || { echo "want: $want"; exit 1; }
# Every failed program is named.
for p in test-b test-c test-d test-e test-f replay-maps test-i; do
        grep -q "FAILED: .*/$p " "$work/out" || { echo "$p not reported"; exit 1; }
done
grep -q "group fixture failed: GROUP TEARDOWN" "$work/out"
grep -q "died in: test_hang" "$work/out"
echo "count ok"
