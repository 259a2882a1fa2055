#!/usr/bin/env bash
# bench/websocket.sh: STOMP over WebSocket for two builds, interleaved: 1->1 throughput and
# broker CPU per message (µs, utime+stime from /proc), and connection set-up (WebSocket
# handshake + STOMP CONNECT/CONNECTED + close) per second and broker CPU per connection.
# Each round starts each broker afresh (journal off, one WebSocket acceptor), warms it with
# 20k messages, then measures N 256 B messages (one STOMP frame per WebSocket message, as
# stompjs sends them) and C connections, 20 at a time. The client is bench/ws_load.mjs (node
# and the `ws` package that conformance/node pins). Not part of CI.
#
#   bash bench/websocket.sh NEW_BIN OLD_BIN [ROUNDS=5] [N=200000] [C=2000]
#
# RAW=FILE appends each run's JSON lines (client CPU per message, frames per WebSocket
# message) to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW=$1
OLD=$2
ROUNDS=${3:-5}
N=${4:-200000}
C=${5:-2000}
TICK=$(getconf CLK_TCK)
[ -d conformance/node/node_modules/ws ] ||
    (cd conformance/node && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)

one() {
    local bin=$1 label=$2 dir port pid a b c flow conn
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '[[acceptors]]\nname = "ws"\nprotocol = "websocket"\nbind = "127.0.0.1:%s"\n[journal]\nenabled = false\n' \
        "$port" >"$dir/broker.toml"
    "$bin" --config "$dir/broker.toml" >"$dir/broker.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.05
    done
    cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    local url="ws://127.0.0.1:$port/stomp"
    node bench/ws_load.mjs flow --url "$url" -n 20000 >/dev/null
    a=$(cpu)
    flow=$(node bench/ws_load.mjs flow --url "$url" -n "$N")
    b=$(cpu)
    conn=$(node bench/ws_load.mjs connect --url "$url" -n "$C" -c 20)
    c=$(cpu)
    if [ -n "${RAW:-}" ]; then printf '%s %s\n%s %s\n' "$label" "$flow" "$label" "$conn" >>"$RAW"; fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    local rate per_s
    rate=$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["msgs_per_s"])' "$flow")
    per_s=$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["per_s"])' "$conn")
    awk -v l="$label" -v a="$a" -v b="$b" -v c="$c" -v t="$TICK" -v n="$N" -v m="$C" -v r="$rate" -v p="$per_s" \
        'BEGIN { printf "%s flow %s msg/s %.2f us/msg  connect %s conn/s %.0f us/conn\n", l, r, (b-a)*1e6/t/n, p, (c-b)*1e6/t/m }'
}

OUT=$(mktemp)
for _ in $(seq "$ROUNDS"); do
    one "$NEW" new
    one "$OLD" old
done | tee "$OUT"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for k in new old; do
    r=$(awk -v k="$k" '$1 == k { print $3 }' "$OUT" | median)
    u=$(awk -v k="$k" '$1 == k { print $5 }' "$OUT" | median)
    p=$(awk -v k="$k" '$1 == k { print $8 }' "$OUT" | median)
    q=$(awk -v k="$k" '$1 == k { print $10 }' "$OUT" | median)
    echo "$k: median flow $r msg/s, $u us/msg; connect $p conn/s, $q us/conn ($ROUNDS rounds)"
done
rm -f "$OUT"
