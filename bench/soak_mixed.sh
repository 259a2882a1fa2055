#!/usr/bin/env bash
# bench/soak_mixed.sh: the reliability campaign's hour-long soak (issue 15), not part of CI.
# Starts a release WrenMQ with a STOMP, a STOMP-over-TLS and a WebSocket acceptor (a
# self-signed certificate made here) and runs bench/soak_mixed.py against it: a persistent
# fast path with vanishing consumers, a slow consumer behind a paging address, a topic over
# TLS and WebSocket, and CHURN connections coming and going. Samples the broker every second
# into bench/results/soak/mixed.csv, writes mixed.json (the summary) and mixed.png (RSS, fds,
# p99 latency, the probe's latency, CPU and steal, and open churn connections against time).
#
#   bash bench/soak_mixed.sh                        one hour, 5,000 churning connections
#   SOAK_SECONDS=120 CHURN=500 bash bench/soak_mixed.sh   a quick look
#   CACHE_BYTES=8388608 NAME=mixed-cache8m bash bench/soak_mixed.sh
#       the journal's page cache at 8 MiB (default 64 MiB), so RSS reaches its plateau within
#       the hour; results in bench/results/soak/$NAME.{csv,json,png}
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SOAK_SECONDS=${SOAK_SECONDS:-3600}
CHURN=${CHURN:-5000}
CACHE_BYTES=${CACHE_BYTES:-67108864}
NAME=${NAME:-mixed}
BIN=${BIN:-target/release/wrenmq}
OUT=bench/results/soak
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --bin wrenmq
raise_nofile
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c 'import matplotlib, websockets' 2>/dev/null; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet matplotlib websockets
fi

WORK=$(mktemp -d -t wrenmq-soak-mixed.XXXXXX)
BROKER_PID=""
cleanup() {
    [ -z "$BROKER_PID" ] || kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$WORK/server.key" -out "$WORK/server.pem" 2>/dev/null
PORT=$(free_port)
TLS_PORT=$(free_port)
WS_PORT=$(free_port)
ADMIN_PORT=$(free_port)
mkdir -p "$WORK/data"
cat >"$WORK/broker.toml" <<TOML
[broker]
name = "soak-mixed"

[[acceptors]]
name = "stomp"
bind = "127.0.0.1:$PORT"

[[acceptors]]
name = "stomp-tls"
bind = "127.0.0.1:$TLS_PORT"
[acceptors.tls]
cert = "$WORK/server.pem"
key = "$WORK/server.key"

[[acceptors]]
name = "websocket"
protocol = "websocket"
bind = "127.0.0.1:$WS_PORT"

[limits]
max-connections = 20000
max-connections-per-ip = 20000

[admin]
bind = "127.0.0.1:$ADMIN_PORT"

[journal]
enabled = true
data-dir = "$WORK/data"
sync = true
cache-size = $CACHE_BYTES

[[address-settings]]
match = "#"
dead-letter-address = "DLQ"
expiry-address = "ExpiryQueue"

[[address-settings]]
match = "soak.slow"
max-size-bytes = 262144
address-full-policy = "page"
TOML
RUST_LOG=warn "$BIN" --config "$WORK/broker.toml" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
wait_port "$PORT" || { cat "$WORK/broker.log" >&2; die "broker did not start"; }
log "soak: ${SOAK_SECONDS}s, $CHURN churning connections, broker pid $BROKER_PID"
rc=0
bench/.venv/bin/python bench/soak_mixed.py --port "$PORT" --tls-port "$TLS_PORT" --ws-port "$WS_PORT" \
    --pid "$BROKER_PID" --admin-port "$ADMIN_PORT" --disk-probe-dir "$WORK" --seconds "$SOAK_SECONDS" --churn "$CHURN" --csv "$OUT/$NAME.csv" \
    | tee "$OUT/$NAME.json" || rc=$?
log "broker log lines with ERROR or panic: $(grep -c -i -E ' error |panic' "$WORK/broker.log" || true)"
grep -i -E ' error |panic' "$WORK/broker.log" | head -5 || true
bench/.venv/bin/python bench/soak_mixed_plot.py "$OUT" "$NAME"
log "wrote $OUT/$NAME.csv, $NAME.json, $NAME.png"
exit "$rc"
