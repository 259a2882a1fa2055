#!/usr/bin/env bash
# bench/ab_cpu.sh "BIN1 BIN2 ..." [ROUNDS=3] [SCENARIOS="q1 fanout q4 q1p"]: interleaved A/B of broker
# builds: for each round, scenario and binary, a fresh broker (journal on, fsync), a 100k warm-up,
# then one run; prints msgs/s and broker CPU µs per delivered message (utime+stime from /proc).
# The load tool is TOOL (default target/release/wrenmq) for every build; JOURNAL_EXTRA adds lines
# to the [journal] table (e.g. JOURNAL_EXTRA='buffer-timeout-us = 0'). Not part of CI.
set -uo pipefail
BINS=$1; ROUNDS=${2:-3}; SCENS=${3:-"q1 fanout q4 q1p"}
TOOL=${TOOL:-$(cd "$(dirname "$0")/.." && pwd)/target/release/wrenmq}
TICK=$(getconf CLK_TCK)
run() { # bin scen
  local bin=$1 scen=$2 dir port pid a b out n deliv
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf '[[acceptors]]\nname = "stomp"\nbind = "127.0.0.1:%s"\n[limits]\nmax-connections-per-ip = 10000\n[admin]\nbind = "127.0.0.1:0"\n[journal]\nenabled = true\ndata-dir = "%s/data"\nsync = true\n%s\n' "$port" "$dir" "${JOURNAL_EXTRA:-}" >"$dir/broker.toml"
  "$bin" --config "$dir/broker.toml" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
  "$TOOL" perf queue --port "$port" --destination /queue/warm -P 1 -C 1 -n 100000 -s 256 --persistent false --json >/dev/null 2>&1
  a=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  case $scen in
    q1) n=1000000; deliv=$n; out=$("$TOOL" perf queue --port "$port" --destination /queue/np -P 1 -C 1 -n $n -s 256 --persistent false --ack auto --json 2>/dev/null | tail -1);;
    q4) n=1000000; deliv=$n; out=$("$TOOL" perf queue --port "$port" --destination /queue/q4 -P 4 -C 4 -n $n -s 1024 --persistent false --ack auto --json 2>/dev/null | tail -1);;
    fanout) n=300000; deliv=$((n*10)); out=$("$TOOL" perf fanout --port "$port" --destination /topic/f -C 10 -n $n -s 100 --persistent false --json 2>/dev/null | tail -1);;
    q1p) n=200000; deliv=$n; out=$("$TOOL" perf queue --port "$port" --destination /queue/p -P 1 -C 1 -n $n -s 256 --persistent true --receipt-every 100 --ack client-individual --json 2>/dev/null | tail -1);;
    lat) n=50000; deliv=$n; out=$("$TOOL" perf latency --port "$port" --destination /queue/lat -r 5000 -t 10 -s 256 --persistent false --json 2>/dev/null | tail -1);;
  esac
  b=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill $pid; wait $pid 2>/dev/null; rm -rf "$dir"
  python3 -c "
import json,sys
r=json.loads(sys.argv[1]) if sys.argv[1] else {}
us=(int(sys.argv[3])-int(sys.argv[2]))*1e6/int(sys.argv[4])/int(sys.argv[5])
print(f\"{sys.argv[6]:28s} {sys.argv[7]:7s} {r.get('msgs_per_sec',0):>10,.0f} msgs/s  {us:6.2f} us/msg  p99 {r.get('p99_us')} ok={r.get('ok')}\")
" "$out" "$a" "$b" "$TICK" "$deliv" "$(basename $(dirname $bin))/$(basename $bin)" "$scen"
}
for r in $(seq $ROUNDS); do for s in $SCENS; do for b in $BINS; do run $b $s; done; done; done
