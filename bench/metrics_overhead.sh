#!/usr/bin/env bash
# bench/metrics_overhead.sh: what a Prometheus scraper costs the message path. bench/run.sh's
# 1->1 (q1: 256 B, non-persistent, ack auto) and fan-out (10 subscribers, 100 B) scenarios,
# each run with /metrics scraped every second alongside (plus /metrics/per-object and
# /api/v1/queues, as a console would poll) and without, interleaved round by round on a fresh
# broker each time, reporting msgs/s and the broker's CPU per delivered message. Not part of CI.
#
#   bash bench/metrics_overhead.sh [ROUNDS=5]        (QUICK=1: message counts / 10)
#
# Results: bench/results/metrics_overhead.md (medians) and the raw lines beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ROUNDS=${1:-5}
QUICK=${QUICK:-0}
BIN=${BIN:-target/release/wrenmq} # BIN=path NO_BUILD=1: measure another build
TICK=$(getconf CLK_TCK)
OUT_DIR=bench/results
RAW="$OUT_DIR/metrics_overhead.raw"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet
N_Q1=1000000
N_FAN=300000
[ "$QUICK" = 1 ] && N_Q1=$((N_Q1 / 10)) && N_FAN=$((N_FAN / 10))
WORK=$(mktemp -d -t wrenmq-metrics.XXXXXX)
BROKER_PID=""
SCRAPER_PID=""
cleanup() {
    [ -z "$SCRAPER_PID" ] || kill "$SCRAPER_PID" 2>/dev/null || true
    [ -z "$BROKER_PID" ] || { kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT

scrape_every_second() {
    local port=$1
    while true; do
        curl -sf "http://127.0.0.1:$port/metrics" >/dev/null || true
        curl -sf "http://127.0.0.1:$port/metrics/per-object" >/dev/null || true
        curl -sf "http://127.0.0.1:$port/api/v1/queues" >/dev/null || true
        sleep 1
    done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one SCENARIO MODE ROUND: a fresh broker, the scenario, one raw line.
one() {
    local scen=$1 mode=$2 round=$3 dir out a b n deliveries
    dir="$WORK/$scen-$mode-$round"
    start_wrenmq_broker "$BIN" "$dir" "metrics-$mode"
    if [ "$mode" = scraped ]; then
        scrape_every_second "$ADMIN_PORT" &
        SCRAPER_PID=$!
    fi
    a=$(cpu_ticks "$BROKER_PID")
    case "$scen" in
        q1) n=$N_Q1; deliveries=$n
            out=$("$BIN" perf queue --port "$PORT" --destination "/queue/m-$round" -P 1 -C 1 -n "$n" -s 256 \
                --persistent false --ack auto --json) ;;
        fanout) n=$N_FAN; deliveries=$((n * 10))
            out=$("$BIN" perf fanout --port "$PORT" --destination "/topic/m-$round" -C 10 -n "$n" -s 100 \
                --persistent false --json) ;;
    esac
    b=$(cpu_ticks "$BROKER_PID")
    if [ -n "$SCRAPER_PID" ]; then kill "$SCRAPER_PID" 2>/dev/null || true; wait "$SCRAPER_PID" 2>/dev/null || true; SCRAPER_PID=""; fi
    kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
    python3 - "$scen" "$mode" "$round" "$a" "$b" "$TICK" "$deliveries" "$out" >>"$RAW" <<'PY'
import json, sys
scen, mode, rnd, a, b, tick, deliveries, out = sys.argv[1:]
r = json.loads(out.strip().splitlines()[-1])
cpu_us = (float(b) - float(a)) / float(tick) * 1e6 / int(deliveries)
print(json.dumps({"scenario": scen, "mode": mode, "round": int(rnd), "ok": r.get("ok"),
                  "msgs_per_sec": r.get("msgs_per_sec"), "broker_cpu_us_per_delivery": round(cpu_us, 3)}))
PY
    tail -n 1 "$RAW"
}

: >"$RAW"
for round in $(seq "$ROUNDS"); do
    for scen in q1 fanout; do
        if [ $((round % 2)) = 1 ]; then order="plain scraped"; else order="scraped plain"; fi
        for mode in $order; do one "$scen" "$mode" "$round"; done
    done
done
python3 - "$RAW" "$ROUNDS" >"$OUT_DIR/metrics_overhead.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("# /metrics scraped every second vs not (bench/metrics_overhead.sh)\n")
print(f"Medians of {sys.argv[2]} interleaved rounds, a fresh broker per run; msgs/s as `wrenmq perf` reports it")
print("(fan-out: messages published per second, each delivered to 10 subscribers); broker CPU per delivery")
print("from /proc (utime+stime).\n")
print("| scenario | mode | msgs/s | broker CPU µs / delivery | all ok |")
print("|---|---|---|---|---|")
for scen in ("q1", "fanout"):
    for mode in ("plain", "scraped"):
        rs = [r for r in rows if r["scenario"] == scen and r["mode"] == mode]
        if not rs:
            continue
        print(f"| {scen} | {mode} | {statistics.median(r['msgs_per_sec'] for r in rs):,.0f} | "
              f"{statistics.median(r['broker_cpu_us_per_delivery'] for r in rs):.3f} | {all(r['ok'] for r in rs)} |")
PY
cat "$OUT_DIR/metrics_overhead.md"
