# shellcheck shell=sh
# Counts test results in automake build directories, for tools/test.sh and its self-test
# (tests/test-count-results.sh): sourced, it defines count_results, which adds to the shell
# variables passed, failed and skipped. Each program's result comes from its .trs file
# (automake's verdict from the exit status, so a crash, a sanitizer report at exit or a
# timeout cannot pass); its cmocka log, when it has one, splits that into tests.
#
#   count_results BUILDDIR|TRS-FILE...
#
# A cmocka test counts once, by its worst line ([  FAILED  ] or [  ERROR   ] over
# [  SKIPPED ] over [       OK ]: the summary lists failed and skipped tests again); a test
# that started ([ RUN      ]) without a result line died and fails; each failed group fixture
# ([  FAILED  ] GROUP SETUP / GROUP TEARDOWN, where test-service checks the daemon's exit
# status) is one more failure. A program that automake failed with no failure in its log is
# one failure; a program without cmocka lines is one test.

# awk over a log: prints "PASSED FAILED SKIPPED", and the names of what failed to stderr.
count_cmocka_log() {
        awk '
        function result(name, rank) {
                if (!(name in seen)) { seen[name] = 1; order[n++] = name }
                if (rank > worst[name]) worst[name] = rank
        }
        # Summary headers ("[  FAILED  ] 2 test(s), listed below:"), not tests.
        / test\(s\)/ { next }
        /^\[ RUN      \] / { name = substr($0, 14); if (!(name in seen)) { seen[name] = 1; order[n++] = name; worst[name] = 0 }; next }
        # Tests print why they skip with the same prefix: only a test that ran has a result.
        /^\[       OK \] / { name = substr($0, 14); if (name in seen) result(name, 1); next }
        /^\[  SKIPPED \] / { name = substr($0, 14); if (name in seen) result(name, 2); next }
        /^\[  FAILED  \] GROUP (SETUP|TEARDOWN)/ { groups++; print "  group fixture failed: " substr($0, 14) > "/dev/stderr"; next }
        /^\[  FAILED  \] / { result(substr($0, 14), 3); next }
        /^\[  ERROR   \] --- / { next }
        /^\[  ERROR   \] / { name = substr($0, 14); if (name in seen) result(name, 3); next }
        END {
                p = f = s = 0
                for (i = 0; i < n; i++) {
                        w = worst[order[i]]
                        if (w == 1) p++
                        else if (w == 2) s++
                        else {
                                f++
                                print "  " (w == 0 ? "died in: " : "failed: ") order[i] > "/dev/stderr"
                        }
                }
                print p, f + groups, s, n + 0
        }' "$1"
}

count_results() {
        for dir in "$@"; do
                case $dir in
                *.trs) files=$dir ;;
                *) files=$(ls "$dir"/*/*.trs "$dir"/*/*/*.trs 2>/dev/null) ;;
                esac
                for trs in $files; do
                        [ -f "$trs" ] || continue
                        log=${trs%.trs}.log
                        verdict=$(sed -n 's/^:test-result: //p' "$trs" | sort -u | tr '\n' ' ' | sed 's/ $//')
                        case $verdict in
                        PASS) ok=1 ;;
                        SKIP) ok=2 ;;
                        *) ok=0 ;;
                        esac
                        set -- 0 0 0 0
                        if [ -f "$log" ]; then
                                # shellcheck disable=SC2046
                                set -- $(count_cmocka_log "$log" 2>"$log.why")
                        fi
                        if [ "$4" -eq 0 ]; then
                                # Not a cmocka program (a fuzz corpus replay, a script): one test.
                                case $ok in
                                1) set -- 1 0 0 ;;
                                2) set -- 0 0 1 ;;
                                *) set -- 0 1 0 ;;
                                esac
                        elif [ "$ok" = 0 ] && [ "$2" -eq 0 ]; then
                                # Failed with every test passed: a crash or leak at exit, a timeout.
                                set -- "$1" 1 "$3"
                        fi
                        if [ "$2" -gt 0 ]; then
                                echo "FAILED: ${trs%.trs} ($verdict; $2 failed)"
                                [ -s "$log.why" ] && cat "$log.why"
                        fi
                        rm -f "$log.why"
                        passed=$((passed + $1))
                        failed=$((failed + $2))
                        skipped=$((skipped + $3))
                done
        done
}
