#!/usr/bin/env bash
# bench/cluster/failover.sh: the cluster failover campaign (issue 16), not part of CI (CI runs
# ten rounds of kill -9 in tests/cluster.rs). Needs root: three network namespaces wmq-n1..3
# (10.77.0.1-3) on a bridge wmbr0 (10.77.0.254) in the root namespace, where the load and a
# user-space proxy for the raft traffic run (the kernel here has no tc netem, so delay and
# connection resets come from the proxy). bench/cluster/failover.py runs the nodes, the
# faults and the ledger; see it for what is judged.
#
#   bash bench/cluster/failover.sh                     100 rounds, seed 1
#   ROUNDS=20 SEED=3 DELAY_MS=5 RESET_PER_S=0.05 bash bench/cluster/failover.sh
#
# Writes bench/results/cluster/<date>-failover-rounds<N>.json; keeps the node logs in $WORK
# (printed) when the check fails or KEEP_WORK=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
ROUNDS=${ROUNDS:-100}
SEED=${SEED:-1}
DELAY_MS=${DELAY_MS:-2}
RESET_PER_S=${RESET_PER_S:-0.01}
BIN=$(realpath "${BIN:-target/release/wrenmq}")
OUT=bench/results/cluster
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --bin wrenmq
WORK=$(mktemp -d -t wrenmq-failover.XXXXXX)

teardown() {
    for i in 1 2 3; do
        ip netns pids "wmq-n$i" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "wmq-n$i" 2>/dev/null || true
        ip link del "wv$i" 2>/dev/null || true
    done
    ip link del wmbr0 2>/dev/null || true
}
teardown
trap teardown EXIT

ip link add wmbr0 type bridge
ip addr add 10.77.0.254/24 dev wmbr0
ip link set wmbr0 up
for i in 1 2 3; do
    ip netns add "wmq-n$i"
    ip link add "wv$i" type veth peer name eth0 netns "wmq-n$i"
    ip link set "wv$i" master wmbr0 up
    ip -n "wmq-n$i" addr add "10.77.0.$i/24" dev eth0
    ip -n "wmq-n$i" link set eth0 up
    ip -n "wmq-n$i" link set lo up
done

result="$OUT/$(date +%F)-failover-rounds$ROUNDS.json"
rc=0
python3 bench/cluster/failover.py --rounds "$ROUNDS" --seed "$SEED" --work "$WORK" \
    --binary "$BIN" --delay-ms "$DELAY_MS" --reset-per-s "$RESET_PER_S" --out "$result" || rc=$?
if [ "$rc" != 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    log "node logs kept in $WORK"
else
    rm -rf "$WORK"
fi
log "result: $result"
exit "$rc"
