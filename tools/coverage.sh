#!/bin/sh
# Line coverage of the test suite (issue 18 item 7): zeroes the gcov counters of a build
# configured with --enable-coverage, runs make check there, and prints line coverage per file of
# daemon/, proto/ and client/ (lcov), with an HTML report in BUILDDIR/coverage-html/.
# Usage: tools/coverage.sh BUILDDIR [SRCDIR]   (`make coverage` runs it; as root when lcov is
# missing, for apt-get). A failing make check is reported, and coverage is still printed.
set -eu
builddir=$(cd "$1" && pwd)
top=${2:-$(cd "$(dirname "$0")/.." && pwd)}

if ! command -v lcov >/dev/null 2>&1 || ! command -v genhtml >/dev/null 2>&1; then
        echo "Installing: lcov"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends lcov >/dev/null
fi

cd "$builddir"
lcov --quiet --zerocounters --directory .
# Daemons run by the tests as other users (the packaged service's uid, per-user daemons) add
# their counters too: the .gcda files they merge into, and the folders where they create them,
# must be writable by them (gcov drops a process's counters silently otherwise).
find . -name '*.gcno' -exec dirname {} + | sort -u | xargs chmod a+rwx
umask 000
check=0
make check || check=$?

info=$builddir/coverage.info
lcov --quiet --capture --directory . --base-directory "$top" --output-file "$info.all" --no-external \
        --rc lcov_branch_coverage=0
lcov --quiet --extract "$info.all" "$top/basic/*" "$top/daemon/*" "$top/proto/*" "$top/client/*" --output-file "$info"
rm -f "$info.all"
# Generated in the build dir (the BPF skeleton): not our source, and genhtml cannot find it.
lcov --quiet --remove "$info" '*.skel.h' --output-file "$info.src"
mv "$info.src" "$info"
rm -rf coverage-html
genhtml --quiet --output-directory coverage-html "$info" >/dev/null
echo "== line coverage per file (HTML: $builddir/coverage-html/index.html)"
lcov --list "$info" --list-full-path | sed "s|$top/||"
if [ "$check" -ne 0 ]; then
        echo "make check failed (exit $check): the numbers above cover what ran" >&2
        exit "$check"
fi
