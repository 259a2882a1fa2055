#!/usr/bin/env bash
# bench/cpu_per_message.sh: broker CPU per message (µs, utime+stime from /proc) for two builds,
# interleaved, so a change's cost shows through a noisy shared machine better than msgs/s.
# Each round starts each broker afresh (journal on, defaults), warms it with 200k messages,
# then measures 1M 256 B non-persistent 1->1 messages and 200k persistent ones with a receipt
# every 100 and client-individual acks. Not part of CI.
#
#   bash bench/cpu_per_message.sh NEW_BIN OLD_BIN [ROUNDS=7]
#
# The load tool is target/release/wrenmq (`wrenmq perf`) for both.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW=$1
OLD=$2
ROUNDS=${3:-7}
TOOL=target/release/wrenmq
TICK=$(getconf CLK_TCK)

one() {
    local bin=$1 label=$2 dir port pid a b c
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '[[acceptors]]\nname = "stomp"\nbind = "127.0.0.1:%s"\n[journal]\nenabled = true\ndata-dir = "%s/data"\n' \
        "$port" "$dir" >"$dir/broker.toml"
    "$bin" --config "$dir/broker.toml" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.05
    done
    cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    "$TOOL" perf queue --port "$port" --destination /queue/warm -P 1 -C 1 -n 200000 -s 256 --persistent false >/dev/null 2>&1
    a=$(cpu)
    "$TOOL" perf queue --port "$port" --destination /queue/np -P 1 -C 1 -n 1000000 -s 256 --persistent false >/dev/null 2>&1
    b=$(cpu)
    "$TOOL" perf queue --port "$port" --destination /queue/p -P 1 -C 1 -n 200000 -s 256 --persistent true \
        --receipt-every 100 --ack client-individual >/dev/null 2>&1
    c=$(cpu)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    awk -v l="$label" -v a="$a" -v b="$b" -v c="$c" -v t="$TICK" \
        'BEGIN { printf "%s non-persistent %.2f us/msg  persistent %.2f us/msg\n", l, (b-a)*1e6/t/1e6, (c-b)*1e6/t/2e5 }'
}

OUT=$(mktemp)
for _ in $(seq "$ROUNDS"); do
    one "$NEW" new
    one "$OLD" old
done | tee "$OUT"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for k in new old; do
    np=$(awk -v k="$k" '$1 == k { print $3 }' "$OUT" | median)
    p=$(awk -v k="$k" '$1 == k { print $6 }' "$OUT" | median)
    echo "$k: median non-persistent $np us/msg, persistent $p us/msg ($ROUNDS rounds)"
done
rm -f "$OUT"
