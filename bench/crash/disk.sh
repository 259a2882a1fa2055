#!/usr/bin/env bash
# bench/crash/disk.sh: the crash campaign's disk phases (issue 15), not part of CI; needs root.
#   full      the data directory is a 16 MiB tmpfs and max-disk-usage is off, so a commit
#             meets ENOSPC; then the tmpfs is grown to 512 MiB (space returns)
#   readonly  the data directory is served through bench/crash/rofs.py, which starts failing
#             every write with EROFS mid-run, then stops
# In each, bench/crash/disk.py checks: ERRORs naming the reason while the disk is gone,
# non-persistent traffic still flowing, persistent SENDs accepted again once the disk is back
# (no restart), and after kill -9 and a restart every receipted message there exactly once.
#
#   bash bench/crash/disk.sh              both phases
#   PHASES=full bash bench/crash/disk.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ "$(id -u)" = 0 ] || die "needs root (mounts a tmpfs and a FUSE filesystem)"
BIN=${BIN:-target/release/wrenmq}
OUT=bench/results/crash
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --bin wrenmq
if [ ! -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfuse2 >/dev/null
fi
[ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
bench/.venv/bin/python -c 'import fuse' 2>/dev/null || bench/.venv/bin/pip install --quiet fusepy

WORK=$(mktemp -d -t wrenmq-disk.XXXXXX)
FUSE_PID=""
cleanup() {
    umount -l "$WORK/mnt" 2>/dev/null || true
    [ -z "$FUSE_PID" ] || kill "$FUSE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

config() { # config DATA_DIR MAX_DISK_USAGE
    cat >"$WORK/broker.toml" <<TOML
[broker]
name = "disk"
max-disk-usage = $2
disk-scan-period = 200

[[acceptors]]
name = "stomp"
bind = "127.0.0.1:$PORT"

[journal]
enabled = true
data-dir = "$1"
sync = true
TOML
}

status=0
for phase in ${PHASES:-full readonly}; do
    PORT=$(free_port)
    mkdir -p "$WORK/mnt"
    case $phase in
    full)
        mount -t tmpfs -o size=16m tmpfs "$WORK/mnt"
        config "$WORK/mnt/data" -1
        squeeze=true
        release="mount -o remount,size=512m $WORK/mnt"
        ;;
    readonly)
        mkdir -p "$WORK/src"
        bench/.venv/bin/python bench/crash/rofs.py "$WORK/src" "$WORK/mnt" "$WORK/ro.flag" &
        FUSE_PID=$!
        wait_until 10 "the FUSE mount" mountpoint -q "$WORK/mnt"
        config "$WORK/mnt/data" 90
        squeeze="touch $WORK/ro.flag"
        release="rm -f $WORK/ro.flag"
        ;;
    *) die "unknown phase $phase" ;;
    esac
    log "disk phase $phase"
    rc=0
    python3 bench/crash/disk.py --binary "$BIN" --config "$WORK/broker.toml" --port "$PORT" \
        --log "$WORK/$phase.log" --squeeze "$squeeze" --release "$release" \
        >"$OUT/disk-$phase.json" || rc=$?
    cat "$OUT/disk-$phase.json"
    if [ "$rc" != 0 ]; then
        status=1
        log "$phase: problems (above); broker log:"
        tail -20 "$WORK/$phase.log" >&2
    fi
    umount "$WORK/mnt" 2>/dev/null || umount -l "$WORK/mnt"
    if [ -n "$FUSE_PID" ]; then wait "$FUSE_PID" 2>/dev/null || true; FUSE_PID=""; fi
    rm -rf "$WORK/src" "$WORK/mnt" "$WORK/ro.flag"
done
exit "$status"
