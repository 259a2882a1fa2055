#!/usr/bin/env bash
# bench/ab_conns.sh "BIN1 BIN2 ..." [ROUNDS=3]: interleaved A/B of the memory an idle connection
# costs: for each round and binary, a fresh broker (bench/lib.sh's configuration, empty data
# dir), then 2,000 connections each holding one subscription (`wrenmq perf connections -k 2000
# --broker-pid`), which reports the broker's RSS growth per connection. A fresh process each
# time: a warm one reuses freed heap and hides the cost (docs/performance.md). The load tool
# is TOOL (default target/release/wrenmq) for every build. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BINS=${1:?usage: bench/ab_conns.sh \"BIN1 BIN2 ...\" [ROUNDS]}
ROUNDS=${2:-3}
TOOL=${TOOL:-target/release/wrenmq}
raise_nofile
for round in $(seq 1 "$ROUNDS"); do
    for bin in $BINS; do
        dir=$(mktemp -d -t wrenmq-ab-conns.XXXXXX)
        start_wrenmq_broker "$bin" "$dir" ab-conns >/dev/null 2>&1
        wait_port "$PORT" || die "$bin did not start"
        per=$("$TOOL" perf connections --port "$PORT" --destination /queue/ab.idle -k 2000 \
            --broker-pid "$BROKER_PID" --json 2>/dev/null |
            python3 -c 'import json, sys; print(json.loads(sys.stdin.readlines()[-1])["rss_per_connection_kb"])')
        printf '%-40s round %d  %5.2f KiB per idle subscribed connection\n' "$bin" "$round" "$per"
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        rm -rf "$dir"
    done
done
