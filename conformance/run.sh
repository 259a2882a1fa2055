#!/usr/bin/env bash
# WrenMQ conformance suite: third-party STOMP clients against the built broker binary.
#
#   conformance/run.sh [ARGS...]     ARGS go to every part (e.g. -k queue for pytest)
#
# 1. builds the broker (cargo build --bin wrenmq, debug profile, as `cargo test` does);
# 2. makes conformance/.venv and installs conformance/requirements.txt (only when changed);
# 3. runs every part, conformance/*/part.sh, each of which starts its own brokers on free
#    loopback ports and writes "PASSED FAILED SKIPPED" to $CONFORMANCE_COUNTS;
# 4. prints "N passed, M failed, K skipped" last and exits non-zero if anything failed.
#
# Env: CONFORMANCE_TIMEOUT  seconds for all parts together (default 900)
#      PYTHON               interpreter for the venv (default python3, >= 3.9)
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ARTIFACTS="$HERE/artifacts"
SUITE_TIMEOUT="${CONFORMANCE_TIMEOUT:-900}"
START=$SECONDS

passed=0
failed=0
skipped=0
child=""

finish() {
    echo
    echo "$passed passed, $failed failed, $skipped skipped"
    if [ "$failed" -gt 0 ]; then exit 1; fi
    exit 0
}

abort() { # a setup step failed: count it as one failure
    echo "conformance: $*" >&2
    failed=$((failed + 1))
    finish
}

on_signal() {
    echo "conformance: interrupted, stopping the running part" >&2
    if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi
    interrupted=1
}
interrupted=0
trap on_signal INT TERM

# ---- 1. build ------------------------------------------------------------------------------
cd "$ROOT" || abort "cannot cd to $ROOT"
echo "== building the broker (cargo build --bin wrenmq)"
cargo build --bin wrenmq || abort "cargo build failed"
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')" ||
    abort "cargo metadata failed"
export WRENMQ_BIN="$target_dir/debug/wrenmq"
[ -x "$WRENMQ_BIN" ] || abort "no broker binary at $WRENMQ_BIN"

# ---- 2. python venv ------------------------------------------------------------------------
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"
if ! "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; then
    echo "== creating $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || abort "cannot create a venv with $PY"
fi
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
stamp="$VENV/.requirements.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== installing conformance/requirements.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        -r "$HERE/requirements.txt" || abort "pip install failed"
    echo "$want" >"$stamp"
fi
export CONFORMANCE_PYTHON="$VENV/bin/python"

# ---- 3. parts ------------------------------------------------------------------------------
mkdir -p "$ARTIFACTS"
for part in "$HERE"/*/part.sh; do
    [ -e "$part" ] || continue
    name="$(basename "$(dirname "$part")")"
    left=$((SUITE_TIMEOUT - (SECONDS - START)))
    if [ "$left" -le 0 ]; then
        echo "conformance: suite timeout (${SUITE_TIMEOUT}s) reached before part $name" >&2
        failed=$((failed + 1))
        continue
    fi
    counts="$ARTIFACTS/$name.counts"
    rm -f "$counts"
    echo "== part $name (at most ${left}s)"
    # timeout runs the part in its own process group and forwards TERM to it; the parts
    # stop their brokers on TERM.
    CONFORMANCE_COUNTS="$counts" timeout --kill-after=30 "$left" bash "$part" "$@" &
    child=$!
    wait "$child"
    status=$?
    while kill -0 "$child" 2>/dev/null; do # a signal interrupted wait: let the part clean up
        wait "$child"
        status=$?
    done
    child=""
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "conformance: part $name timed out" >&2
    fi
    if read -r p f s <"$counts" 2>/dev/null && [[ "$p$f$s" =~ ^[0-9]+$ ]]; then
        passed=$((passed + p))
        failed=$((failed + f))
        skipped=$((skipped + s))
        if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "conformance: part $name exited $status with no failed test" >&2
            failed=$((failed + 1))
        fi
        if [ "$status" -eq 0 ] && [ "$p" -eq 0 ]; then
            echo "conformance: part $name ran no test" >&2
            failed=$((failed + 1))
        fi
    else
        echo "conformance: part $name exited $status without reporting counts" >&2
        failed=$((failed + 1))
    fi
    [ "$interrupted" -eq 1 ] && break
done

finish
