#!/bin/sh
# Runs one test program for make check: SIGTERM after LIMIT seconds (SIGKILL 30 s later), so that
# a hung test fails instead of hanging CI, and the log ends with how long it ran (tools/test.sh
# lists the slowest: the suite must stay well under 15 minutes).
#   run-test.sh LIMIT PROGRAM [ARGS...]
limit=$1
shift
t0=$(date +%s%N)
timeout --kill-after=30 "$limit" "$@"
rc=$?
t1=$(date +%s%N)
echo "# test time: $(( (t1 - t0) / 1000000 )) ms"
exit $rc
