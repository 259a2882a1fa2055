#!/usr/bin/env bash
# bench/crash/run.sh: the long crash runs of the reliability campaign (issue 15), not part of CI.
# ROUNDS rounds of mixed load against a release WrenMQ (anycast queues with plain and
# transactional ACKs, transactions committed and aborted, two durable topic subscriptions,
# scheduled messages, messages NACKed into a dead-letter address, an address that pages), each
# ended by kill -9 at a random moment 1-4 s in; the same data directory throughout. Then a
# final start drains every queue, and bench/crash/check.py judges the ledger of what was
# receipted, acknowledged and delivered: nothing receipted lost, nothing acknowledged back, no
# duplicate within a lifetime, no torn transaction, nothing scheduled early, every queue empty.
#
#   bash bench/crash/run.sh                 100 rounds (about 10 minutes)
#   ROUNDS=10 SEED=7 bash bench/crash/run.sh
#   KEEP_WORK=1 ...                        keep the ledger and broker log even when all passes
#
# Writes bench/results/crash/<date>-rounds<N>.json (the checker's summary) and keeps the
# ledger and broker log in $WORK (printed) when the check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

ROUNDS=${ROUNDS:-100}
SEED=${SEED:-1}
BIN=${BIN:-target/release/wrenmq}
OUT=bench/results/crash
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --bin wrenmq
WORK=$(mktemp -d -t wrenmq-crash.XXXXXX)
PORT=$(free_port)
ADMIN_PORT=$(free_port)
mkdir -p "$WORK/data"
cat >"$WORK/broker.toml" <<TOML
[broker]
name = "crash"

[[acceptors]]
name = "stomp"
bind = "127.0.0.1:$PORT"

[admin]
bind = "127.0.0.1:$ADMIN_PORT"

[journal]
enabled = true
data-dir = "$WORK/data"
sync = true

[[address-settings]]
match = "#"
dead-letter-address = "DLQ"
expiry-address = "ExpiryQueue"

[[address-settings]]
match = "crash.dlq"
max-delivery-attempts = 2
dead-letter-address = "crash.DLA"

[[address-settings]]
match = "crash.paged.#"
max-size-bytes = 65536
address-full-policy = "page"
TOML

log "crash runs: $ROUNDS rounds, seed $SEED, work in $WORK"
python3 bench/crash/load.py --binary "$BIN" --config "$WORK/broker.toml" --port "$PORT" \
    --admin-port "$ADMIN_PORT" --ledger "$WORK/ledger.jsonl" --log "$WORK/broker.log" \
    --rounds "$ROUNDS" --seed "$SEED" | tee "$WORK/load.out"
du -sk "$WORK/data" | awk '{printf "data directory at the end: %.1f MiB\n", $1/1024}'
result="$OUT/$(date +%Y-%m-%d)-rounds$ROUNDS-seed$SEED.json"
if python3 bench/crash/check.py "$WORK/ledger.jsonl" >"$WORK/check.json"; then
    { tail -n1 "$WORK/load.out"; cat "$WORK/check.json"; } | python3 -c '
import json, sys
load, check = (json.loads(l) for l in sys.stdin.read().splitlines())
print(json.dumps({"load": load, "check": check}, indent=1))' >"$result"
    cat "$result"
    log "all checks passed; summary in $result"
    [ "${KEEP_WORK:-0}" = 1 ] && log "kept $WORK" || rm -rf "$WORK"
else
    cat "$WORK/check.json"
    die "the checker found problems (above); ledger and broker log kept in $WORK"
fi
