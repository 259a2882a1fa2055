#!/usr/bin/env bash
# fuzz/run.sh: the reliability campaign's fuzzing (issue 15), not part of CI. Runs each target
# (decode, selector, config, session) for FUZZ_SECONDS (default 3600) with cargo-fuzz on the
# nightly toolchain, FUZZ_JOBS at a time, growing the committed corpora in fuzz/corpus/<target>/
# (seeded from fuzz/seeds/<target>/ on first use), then minimises each corpus (cargo fuzz cmin)
# so what is committed stays small. Appends one line per target to fuzz/results.csv:
# date, target, seconds, executions, exec/s, corpus files, crashes. A crash stops that target
# and leaves its input in fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh                              every target for an hour, one at a time
#   FUZZ_SECONDS=600 FUZZ_JOBS=2 bash fuzz/run.sh  ten minutes each, two at a time
#   TARGETS="session" bash fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-3600}
JOBS=${FUZZ_JOBS:-1}
TARGETS=${TARGETS:-decode selector config session}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O
[ -f fuzz/results.csv ] || echo "date,target,seconds,executions,exec_per_s,corpus_files,crashes" >fuzz/results.csv

run_one() {
    local target=$1 log=fuzz/artifacts/$1.log
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    if [ -z "$(ls -A "fuzz/corpus/$target")" ] && [ -d "fuzz/seeds/$target" ]; then
        cp fuzz/seeds/"$target"/* "fuzz/corpus/$target/"
    fi
    local rc=0
    cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=4096 -timeout=30 >"$log" 2>&1 || rc=$?
    local execs rate secs crashes=0
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    # a finding stops the run early: record the time it ran, not the time it was given
    secs=$SECS
    [ "${rate:-0}" -gt 0 ] && secs=$(( ${execs:-0} / rate ))
    [ "$secs" -le "$SECS" ] || secs=$SECS
    [ "$rc" = 0 ] || crashes=$(find "fuzz/artifacts/$target" -type f | wc -l)
    cargo +nightly fuzz cmin -O "$target" "fuzz/corpus/$target" >>"$log" 2>&1 || true
    # config inputs over 4 KiB are mutants of the shipped files (kept in fuzz/seeds/config):
    # left out so the committed corpus stays small
    [ "$target" != config ] || find fuzz/corpus/config -type f -size +4k -delete
    local files
    files=$(find "fuzz/corpus/$target" -type f | wc -l)
    echo "$(date +%F),$target,$secs,${execs:-0},${rate:-0},$files,$crashes" | tee -a fuzz/results.csv
    [ "$rc" = 0 ] || echo "$target: stopped with a finding (exit $rc); see $log and fuzz/artifacts/$target/" >&2
}

running=0
for target in $TARGETS; do
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
