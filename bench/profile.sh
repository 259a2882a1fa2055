#!/usr/bin/env bash
# bench/profile.sh: where WrenMQ spends its CPU in the bench/run.sh scenarios. Builds WrenMQ
# release with line tables and frame pointers into target/prof, starts it (journal on, sync) on a
# free loopback port, and for each scenario runs `perf record -g` on the broker process while
# `wrenmq perf` drives it; writes text summaries to bench/results/profiles/<scenario>.txt
# (flat profile by symbol, by thread and by shared object, plus the top call chains). perf.data
# stays in a temp dir and is deleted.
#
# Needs `perf` (apt-get install -y linux-perf). Hardware counters are often unavailable in VMs:
# the software clock (cpu-clock) is sampled instead.
#
# Knobs: SCENARIOS="q1 q1p q4 fanout latency" FREQ=999 NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SCENARIOS=${SCENARIOS:-"q1 q1p q4 fanout latency"}
FREQ=${FREQ:-999}
OUT=bench/results/profiles
PROF=target/prof/release/wrenmq
LOADGEN=target/release/wrenmq # the load tool: the normal release build
command -v perf >/dev/null || die "perf not installed (apt-get install -y linux-perf)"

if [ "${NO_BUILD:-0}" != 1 ]; then
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only RUSTFLAGS="-C force-frame-pointers=yes" \
        cargo build --release --target-dir target/prof
    cargo build --release
fi
mkdir -p "$OUT"
WORK=$(mktemp -d -t wrenmq-prof.XXXXXX)
BROKER_PID=""
cleanup() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start_wrenmq_broker "$PROF" "$WORK" prof

load_cmd() {
    local d
    d="bench-prof-$1-$(date +%s)"
    case "$1" in
        q1) echo "queue --destination /queue/$d -P 1 -C 1 -n 1500000 -s 256 --persistent false --ack auto" ;;
        q1p) echo "queue --destination /queue/$d -P 1 -C 1 -n 200000 -s 256 --persistent true --receipt-every 100 --ack client-individual" ;;
        q4) echo "queue --destination /queue/$d -P 4 -C 4 -n 1000000 -s 1024 --persistent false --ack auto" ;;
        fanout) echo "fanout --destination /topic/$d -C 10 -n 400000 -s 100 --persistent false" ;;
        latency) echo "latency --destination /queue/$d -r 5000 -t 10 -s 256 --persistent false" ;;
    esac
}

for scen in $SCENARIOS; do
    args=$(load_cmd "$scen")
    log "profiling $scen: wrenmq perf $args"
    # shellcheck disable=SC2086
    perf record -F "$FREQ" -e cpu-clock -g -p "$BROKER_PID" -o "$WORK/perf.data" -- \
        timeout 300 "$LOADGEN" perf $args --port "$PORT" --json >"$WORK/line.json" 2>"$WORK/perf.err" || true
    # head closes the pipes early: no pipefail for the summaries
    set +o pipefail
    {
        echo "# WrenMQ CPU profile: $scen"
        echo "# load: wrenmq perf $args --port PORT"
        echo "# result: $(cat "$WORK/line.json")"
        echo "# perf record -F $FREQ -e cpu-clock -g -p BROKER (release + line tables + frame pointers); $(date -u '+%Y-%m-%d %H:%M UTC'); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
        echo "## Threads (comm)"
        perf report -i "$WORK/perf.data" --stdio --no-children --sort comm -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
        echo
        echo "## Shared objects"
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
        echo
        echo "## Self time by symbol (top 60)"
        perf report -i "$WORK/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 0.3 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -60
        echo
        echo "## Inclusive time by symbol (children, top 60)"
        perf report -i "$WORK/perf.data" --stdio --children --sort symbol -g none --percent-limit 2 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -60
    } | sed 's/ *-      - *$//; s/[ ]*$//' >"$OUT/$scen.txt"
    set -o pipefail
    log "wrote $OUT/$scen.txt ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["msgs_per_sec"], "msgs/s", d["verdict"])' "$WORK/line.json" 2>/dev/null || echo no result))"
    rm -f "$WORK/perf.data"
done
