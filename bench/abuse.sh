#!/usr/bin/env bash
# bench/abuse.sh: the reliability campaign's abuse runs (issue 15), not part of CI. Starts a
# release WrenMQ on its shipped limits (one STOMP acceptor, journal on) and runs
# bench/abuse.py against it: slow-loris CONNECTs, header bombs, 10,000 SUBSCRIBEs on one
# connection, a connection flood, while a well-behaved client times its round trips.
# Writes bench/results/abuse/abuse.json (the summary) and abuse.csv (RSS and fds per second).
#
#   bash bench/abuse.sh                          each phase 30 s
#   ABUSE_SECONDS=10 PHASES="headers subs" bash bench/abuse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BIN=${BIN:-target/release/wrenmq}
OUT=bench/results/abuse
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --bin wrenmq
raise_nofile
WORK=$(mktemp -d -t wrenmq-abuse.XXXXXX)
BROKER_PID=""
cleanup() {
    [ -z "$BROKER_PID" ] || kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(free_port)
mkdir -p "$WORK/data"
cat >"$WORK/broker.toml" <<TOML
# The shipped limits; only the port, the journal's directory and no admin listener differ.
[[acceptors]]
name = "stomp"
bind = "127.0.0.1:$PORT"

[admin]
enabled = false

[journal]
enabled = true
data-dir = "$WORK/data"
TOML
RUST_LOG=warn "$BIN" --config "$WORK/broker.toml" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
wait_port "$PORT" || { cat "$WORK/broker.log" >&2; die "broker did not start"; }
log "abuse: broker pid $BROKER_PID, phases ${PHASES:-slowloris headers subs flood}, ${ABUSE_SECONDS:-30}s each"
rc=0
python3 bench/abuse.py --port "$PORT" --pid "$BROKER_PID" --seconds "${ABUSE_SECONDS:-30}" \
    --phases "${PHASES:-slowloris headers subs flood}" --csv "$OUT/abuse.csv" >"$OUT/abuse.json" || rc=$?
cat "$OUT/abuse.json"
kill -0 "$BROKER_PID" 2>/dev/null || { rc=1; log "the broker died"; }
log "broker log lines with ERROR or panic: $(grep -c -i -E ' error |panic' "$WORK/broker.log" || true)"
exit "$rc"
