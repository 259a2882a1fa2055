#!/usr/bin/env bash
# Node/browser conformance checks for WrenMQ: builds and starts a broker on free loopback ports,
# runs run.mjs (stompjs over WebSocket and TCP, handshake refusals, the web console in Chromium
# with stomp.py on the other end), stops the broker and prints "N passed, M failed".
#
# Self-contained and idempotent: installs the pinned npm packages from package-lock.json
# (npm ci), Debian's chromium if /usr/bin/chromium is missing (needs root), and stomp.py into a
# venv if none is available. Environment:
#   WRENMQ_BIN      broker binary to use instead of building target/debug/wrenmq
#   WRENMQ_PYTHON   python with stomp.py (default: CONFORMANCE_PYTHON, then conformance/.venv,
#                   else a venv made in conformance/node/.venv from requirements.txt)
#   CONFORMANCE_COUNTS  if set, "PASSED FAILED SKIPPED" is written there (see ../README.md)
#   WRENMQ_SKIP_BROWSER=1  skip the Chromium check
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# A setup failure counts as one failed check, for ../run.sh (CONFORMANCE_COUNTS) and people.
fail_setup() {
  echo "conformance/node: setup failed: $*" >&2
  if [[ -n "${CONFORMANCE_COUNTS:-}" ]]; then echo "0 1 0" >"$CONFORMANCE_COUNTS"; fi
  echo "0 passed, 1 failed"
  exit 1
}

# --- dependencies -------------------------------------------------------------------------
cd "$here" || fail_setup "cannot cd to $here"
if ! npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null; then
  fail_setup "npm ci"
fi

if [[ "${WRENMQ_SKIP_BROWSER:-0}" != 1 && -z "${WRENMQ_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  if [[ "$(id -u)" == 0 ]]; then
    echo "conformance/node: installing Debian's chromium" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
      || echo "conformance/node: chromium install failed; the browser check will fail" >&2
  else
    echo "conformance/node: /usr/bin/chromium missing and not root; the browser check will fail" >&2
  fi
fi

has_stomp() { [[ -x "$1" ]] && "$1" -c 'import stomp' >/dev/null 2>&1; }
python="${WRENMQ_PYTHON:-${CONFORMANCE_PYTHON:-}}"
if [[ -z "$python" ]]; then
  if has_stomp "$root/conformance/.venv/bin/python"; then
    python="$root/conformance/.venv/bin/python"
  else
    python="$here/.venv/bin/python"
    if ! has_stomp "$python"; then
      python3 -m venv "$here/.venv" >/dev/null || fail_setup "python3 -m venv"
      "$here/.venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" \
        || fail_setup "pip install stomp-py"
    fi
  fi
fi
has_stomp "$python" || fail_setup "$python cannot import stomp"

bin="${WRENMQ_BIN:-}"
if [[ -z "$bin" ]]; then
  (cd "$root" && cargo build --quiet --bin wrenmq) || fail_setup "cargo build"
  bin="$root/target/debug/wrenmq"
fi
[[ -x "$bin" ]] || fail_setup "no broker binary at $bin"

# --- broker -------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/wrenmq-node-conf.XXXXXX")"
broker_pid=""
# TERM/INT (e.g. from ../run.sh's timeout) exit through the EXIT trap, which stops the broker.
trap 'exit 143' TERM INT
cleanup() {
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$broker_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Two distinct free ephemeral ports (never the well-known 61613/61614 a real broker may hold).
read -r tcp_port ws_port < <(node -e '
  const net = require("net");
  const grab = () => new Promise((res) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); }); });
  (async () => { let a, b; do { a = await grab(); b = await grab(); } while (a === b || [a, b].some((p) => p === 61613 || p === 61614)); console.log(a, b); })();
') || fail_setup "no free ports"

# Short heart-beats so the heart-beat check sees several within 1.5 s; the rest are defaults.
cat >"$work/broker.toml" <<TOML
[[acceptors]]
name = "stomp"
bind = "127.0.0.1:$tcp_port"
[acceptors.heartbeat]
send-ms = 100
receive-ms = 100

[[acceptors]]
name = "websocket"
protocol = "websocket"
bind = "127.0.0.1:$ws_port"
[acceptors.heartbeat]
send-ms = 100
receive-ms = 100
TOML

"$bin" --config "$work/broker.toml" --bind "127.0.0.1:$tcp_port" --ws-bind "127.0.0.1:$ws_port" \
  --data-dir "$work/data" >"$work/broker.log" 2>&1 &
broker_pid=$!

ready=0
for _ in $(seq 1 100); do
  if ! kill -0 "$broker_pid" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$ws_port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ "$ready" != 1 ]]; then
  tail -n 20 "$work/broker.log" >&2
  fail_setup "broker did not start listening within 10 s"
fi

# --- checks -------------------------------------------------------------------------------
WRENMQ_PYTHON="$python" timeout 600 node "$here/run.mjs" --tcp "127.0.0.1:$tcp_port" --ws "127.0.0.1:$ws_port"
status=$?
if [[ "$status" != 0 ]]; then
  echo "--- broker log (last 30 lines) ---" >&2
  tail -n 30 "$work/broker.log" >&2
  if [[ "$status" == 124 ]]; then
    echo "conformance/node: run.mjs timed out" >&2
    if [[ -n "${CONFORMANCE_COUNTS:-}" ]]; then echo "0 1 0" >"$CONFORMANCE_COUNTS"; fi
    echo "0 passed, 1 failed"
  fi
fi
exit "$status"
