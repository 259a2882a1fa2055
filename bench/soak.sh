#!/usr/bin/env bash
# bench/soak.sh: memory under sustained overload (issue "Bounded memory"), not part of CI.
# A producer SPEEDUP times faster than its consumer for SECONDS, against a release WrenMQ
# whose soak.* addresses hold at most 32 MiB (address-full-policy block), sampling the
# broker's RSS every second (bench/soak.py); then the same with IDLE extra connections each
# holding a subscription. Every run must lose nothing and keep order; RSS should stay flat
# after warm-up. Writes bench/results/soak/<run>.csv, soak.json and soak.png (the RSS plot,
# drawn with matplotlib from a venv in bench/.venv, made on first use).
#
#   bash bench/soak.sh                       two 10-minute runs (block; block + 2000 idle)
#   SECONDS_PER_RUN=60 bash bench/soak.sh    a quick look
#
# Knobs: SECONDS_PER_RUN=600 SIZE=1024 CONSUME_RATE=2000 SPEEDUP=10 IDLE=2000 NO_BUILD=1
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

LIMITS=$(printf '\n[[address-settings]]\nmatch = "soak.#"\nmax-size-bytes = 33554432\naddress-full-policy = "block"\n')
: >"$OUT/soak.json"
for run in block block-idle; do
    idle=0
    [ "$run" = block-idle ] && idle=$IDLE
    start_wrenmq_broker "$BIN" "$WORK/$run" "soak-$run" "$LIMITS"
    log "$run: ${RUN_SECS}s, consumer ${CONSUME_RATE}/s, producer ${SPEEDUP}x, $SIZE B, $idle idle subscriptions"
    python3 bench/soak.py --port "$PORT" --pid "$BROKER_PID" --seconds "$RUN_SECS" --size "$SIZE" \
        --consume-rate "$CONSUME_RATE" --speedup "$SPEEDUP" --idle "$idle" \
        --csv "$OUT/$run.csv" --label "$run" | tee -a "$OUT/soak.json"
    kill "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
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
for run in ["block", "block-idle"]:
    rows = list(csv.DictReader(open(f"{out}/{run}.csv")))
    ax.plot([float(r["secs"]) for r in rows], [int(r["rss_kb"]) / 1024 for r in rows], label=run)
ax.set_xlabel("seconds")
ax.set_ylabel("broker RSS (MiB)")
ax.set_ylim(bottom=0)
ax.set_title("WrenMQ RSS, producer 10x faster than its consumer (soak.* max-size-bytes 32 MiB, block)")
ax.legend()
fig.tight_layout()
fig.savefig(f"{out}/soak.png", dpi=100)
PY
log "wrote $OUT/soak.png and $OUT/soak.json"
