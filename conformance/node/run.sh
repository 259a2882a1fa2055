#!/usr/bin/env bash
# Node/browser conformance checks for WrenMQ: builds and starts a broker on free loopback ports,
# runs run.mjs (stompjs over WebSocket, TLS WebSocket (wss) and TCP, handshake refusals, the web
# console in Chromium with stomp.py on the other end, the operator console in Chromium; one
# console check starts a second broker of its own with admin tokens), stops the broker and prints
# "N passed, M failed". For wss it makes a throwaway CA and a server certificate for
# 127.0.0.1/localhost with openssl in the temp dir; nothing is installed into any trust store.
#
# Self-contained and idempotent: installs the pinned npm packages from package-lock.json
# (npm ci), Debian's chromium if /usr/bin/chromium is missing and openssl if that is missing
# (both need root), and stomp.py into a venv if none is available. Environment:
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

if ! command -v openssl >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]]; then
    echo "conformance/node: installing Debian's openssl" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >/dev/null \
      || echo "conformance/node: openssl install failed; the wss checks will fail" >&2
  else
    echo "conformance/node: openssl missing and not root; the wss checks will fail" >&2
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
# Absolute: run.mjs starts a second broker of its own from it (the console actions check).
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

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

# Four distinct free ephemeral ports (STOMP, WebSocket, TLS WebSocket, admin) (never the well-known 61613/61614 a real broker may hold).
read -r tcp_port ws_port wss_port admin_port < <(node -e '
  const net = require("net");
  const grab = () => new Promise((res) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); }); });
  (async () => {
    let ps;
    do { ps = [await grab(), await grab(), await grab(), await grab()]; } while (new Set(ps).size !== 4 || ps.some((p) => p === 61613 || p === 61614));
    console.log(ps.join(" "));
  })();
') || fail_setup "no free ports"
[[ -n "$admin_port" ]] || fail_setup "no free ports"

# Throwaway PKI for wss: a CA (trusted only by the wss check's client) and a server certificate
# for 127.0.0.1/localhost it signs, valid for a day. On failure the wss acceptor is left out and
# run.mjs fails the wss checks (it gets no --wss).
make_pki() {
  local d="$work/tls"
  mkdir -p "$d" || return 1
  printf '%s\n' \
    'basicConstraints = critical, CA:FALSE' \
    'keyUsage = critical, digitalSignature' \
    'extendedKeyUsage = serverAuth' \
    'subjectAltName = IP:127.0.0.1, DNS:localhost' >"$d/server.ext"
  timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
      -subj "/CN=WrenMQ conformance throwaway CA" \
      -addext "basicConstraints = critical, CA:TRUE" -addext "keyUsage = critical, keyCertSign, cRLSign" \
      -keyout "$d/ca.key" -out "$d/ca.pem" 2>"$d/openssl.log" \
    && timeout 30 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>>"$d/openssl.log" \
    && timeout 30 openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 1 \
      -extfile "$d/server.ext" -out "$d/server.pem" 2>>"$d/openssl.log"
}
wss_args=()
wss_toml=""
if command -v openssl >/dev/null 2>&1 && make_pki; then
  wss_args=(--wss "127.0.0.1:$wss_port" --ca "$work/tls/ca.pem")
  wss_toml="
[[acceptors]]
name = \"websocket-tls\"
protocol = \"websocket\"
bind = \"127.0.0.1:$wss_port\"
[acceptors.tls]
cert = \"$work/tls/server.pem\"
key = \"$work/tls/server.key\"
"
else
  echo "conformance/node: could not make the test certificates; the wss checks will fail" >&2
  [[ -f "$work/tls/openssl.log" ]] && tail -n 5 "$work/tls/openssl.log" >&2
fi

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
$wss_toml
TOML

"$bin" --config "$work/broker.toml" --bind "127.0.0.1:$tcp_port" --ws-bind "127.0.0.1:$ws_port" --admin-bind "127.0.0.1:$admin_port" \
  --data-dir "$work/data" >"$work/broker.log" 2>&1 &
broker_pid=$!

ready=0
for _ in $(seq 1 100); do
  if ! kill -0 "$broker_pid" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$ws_port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null \
    && (exec 3<>"/dev/tcp/127.0.0.1/$admin_port") 2>/dev/null \
    && { [[ -z "$wss_toml" ]] || (exec 3<>"/dev/tcp/127.0.0.1/$wss_port") 2>/dev/null; }; then
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
WRENMQ_PYTHON="$python" WRENMQ_BIN="$bin" timeout 600 node "$here/run.mjs" --tcp "127.0.0.1:$tcp_port" --ws "127.0.0.1:$ws_port" \
  --admin "127.0.0.1:$admin_port" \
  "${wss_args[@]}"
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
