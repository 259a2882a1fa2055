#!/usr/bin/env bash
# bench/soak.sh: memory under sustained overload (issue "Bounded memory"), not part of CI.
# A producer SPEEDUP times faster than its consumer for SECONDS, against a release WrenMQ
# whose soak.* addresses hold at most 32 MiB in memory, sampling the broker's RSS every
# second (bench/soak.py): under address-full-policy page (the default: the surplus waits on
# disk and the consumer catches up after the producer stops) and under block (the producer
# is held to the consumer's pace), each also with IDLE extra connections each holding a
# subscription. Every run must lose nothing and keep order; RSS should stay flat after
# warm-up. Writes bench/results/soak/<run>.csv, soak.json and soak.png (the RSS plot,
# drawn with matplotlib from a venv in bench/.venv, made on first use).
#
#   bash bench/soak.sh                       four 10-minute runs (page, page-idle, block, block-idle)
#   RUNS="page page-idle" bash bench/soak.sh only some of them (the plot shows every csv present)
#   SECONDS_PER_RUN=60 bash bench/soak.sh    a quick look
#
# Knobs: RUNS SECONDS_PER_RUN=600 SIZE=1024 CONSUME_RATE=2000 SPEEDUP=10 IDLE=2000 NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

RUN_SECS=${SECONDS_PER_RUN:-600}
SIZE=${SIZE:-1024}
CONSUME_RATE=${CONSUME_RATE:-2000}
SPEEDUP=${SPEEDUP:-10}
IDLE=${IDLE:-2000}
OUT=bench/results/soak
BIN=target/release/wrenmq
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release
raise_nofile

WORK=$(mktemp -d -t wrenmq-soak.XXXXXX)
BROKER_PID=""
cleanup() {
    [ -z "$BROKER_PID" ] || kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

RUNS=${RUNS:-page page-idle block block-idle}
for run in $RUNS; do
    policy=${run%-idle}
    idle=0
    [ "$run" != "$policy" ] && idle=$IDLE
    LIMITS=$(printf '\n[[address-settings]]\nmatch = "soak.#"\nmax-size-bytes = 33554432\naddress-full-policy = "%s"\n' "$policy")
    # One summary line per run, replacing that run's line of an earlier soak.
    touch "$OUT/soak.json"
    grep -v "\"label\": \"$run\"" "$OUT/soak.json" >"$OUT/soak.json.tmp" || true
    mv "$OUT/soak.json.tmp" "$OUT/soak.json"
    start_wrenmq_broker "$BIN" "$WORK/$run" "soak-$run" "$LIMITS"
    log "$run: ${RUN_SECS}s, consumer ${CONSUME_RATE}/s, producer ${SPEEDUP}x, $SIZE B, $idle idle subscriptions, $policy"
    python3 bench/soak.py --port "$PORT" --pid "$BROKER_PID" --seconds "$RUN_SECS" --size "$SIZE" \
        --consume-rate "$CONSUME_RATE" --speedup "$SPEEDUP" --idle "$idle" \
        --csv "$OUT/$run.csv" --label "$run" | tee -a "$OUT/soak.json"
    du -sk "$WORK/$run" | awk -v r="$run" '{printf "%s: data directory at the end: %.1f MiB\n", r, $1/1024}'
    kill "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    rm -rf "$WORK/$run"
done

if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet matplotlib
fi
bench/.venv/bin/python - "$OUT" <<'PY'
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = sys.argv[1]
fig, ax = plt.subplots(figsize=(9, 4.5))
import os
for run in ["page", "page-idle", "block", "block-idle"]:
    if not os.path.exists(f"{out}/{run}.csv"):
        continue
    rows = list(csv.DictReader(open(f"{out}/{run}.csv")))
    ax.plot([float(r["secs"]) for r in rows], [int(r["rss_kb"]) / 1024 for r in rows], label=run)
ax.set_xlabel("seconds")
ax.set_ylabel("broker RSS (MiB)")
ax.set_ylim(bottom=0)
ax.set_title("WrenMQ RSS, producer 10x faster than its consumer (soak.* max-size-bytes 32 MiB)")
ax.legend()
fig.tight_layout()
fig.savefig(f"{out}/soak.png", dpi=100)
PY
log "wrote $OUT/soak.png and $OUT/soak.json"
