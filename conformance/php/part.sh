#!/usr/bin/env bash
# Conformance part "php": PHP's PECL stomp extension (Debian's php-stomp) against the broker.
#
# Starts two brokers on free loopback ports: one with the default acceptor (frames end with
# NUL + newline) and one with `frame-eol = false` (frames end at the NUL). Runs every check of
# checks.php against the first; each is one counted case. Then runs them all once more against
# the second as a demonstration: the extension reads one byte past each NUL, so there it loses
# frames (or hangs in a blocking recv()). That run counts as ONE case, "frame-eol-false-breaks-
# php-stomp", which passes when at least one check fails there while that broker stays up: it
# proves the default matters. Its individual failures are expected and not counted.
#
# Contract with ../run.sh: WRENMQ_BIN and CONFORMANCE_COUNTS come from the environment; this
# writes "PASSED FAILED SKIPPED" to CONFORMANCE_COUNTS and exits 0 only if nothing failed. The
# pytest-style arguments run.sh passes to every part do not apply here and are ignored.
# Installs php-cli and php-stomp with apt-get when the extension is missing (needs root).
# Env: PHP_PART_TIMEOUT  seconds for the whole part (default 300)
#      PHP_CHECK_TIMEOUT seconds per check (default 20)
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
artifacts="$root/conformance/artifacts"
part_timeout="${PHP_PART_TIMEOUT:-300}"
check_timeout="${PHP_CHECK_TIMEOUT:-20}"
start=$SECONDS

passed=0
failed=0

report() {
  if [[ -n "${CONFORMANCE_COUNTS:-}" ]]; then echo "$passed $failed 0" >"$CONFORMANCE_COUNTS"; fi
  echo "$passed passed, $failed failed"
}

# A setup failure counts as one failed check, for ../run.sh (CONFORMANCE_COUNTS) and people.
fail_setup() {
  echo "conformance/php: setup failed: $*" >&2
  failed=$((failed + 1))
  report
  exit 1
}

# --- dependencies -------------------------------------------------------------------------
has_stomp() { command -v php >/dev/null 2>&1 && php -r 'exit(extension_loaded("stomp") ? 0 : 1);' 2>/dev/null; }
if ! has_stomp; then
  [[ "$(id -u)" == 0 ]] || fail_setup "php with the stomp extension is missing and not root (apt-get install php-cli php-stomp)"
  echo "conformance/php: installing Debian's php-cli and php-stomp" >&2
  install() { DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq php-cli php-stomp >/dev/null 2>&1; }
  install || { timeout 300 apt-get update -qq >/dev/null 2>&1 && install; } || fail_setup "apt-get install php-cli php-stomp"
  has_stomp || fail_setup "php-stomp installed but the stomp extension does not load"
fi
echo "conformance/php: PHP $(php -r 'echo PHP_VERSION;'), stomp extension $(php -r 'echo phpversion("stomp");')"

bin="${WRENMQ_BIN:-}"
if [[ -z "$bin" ]]; then
  (cd "$root" && cargo build --quiet --bin wrenmq) || fail_setup "cargo build"
  bin="$root/target/debug/wrenmq"
fi
[[ -x "$bin" ]] || fail_setup "no broker binary at $bin"

# --- brokers ------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/wrenmq-php-conf.XXXXXX")" || fail_setup "mktemp"
mkdir -p "$artifacts"
broker_pids=()
# TERM/INT (e.g. from ../run.sh's timeout) exit through the EXIT trap, which stops the brokers.
trap 'exit 143' TERM INT
cleanup() {
  local pid
  for pid in "${broker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${broker_pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# A loopback port nobody listens on now (the kernel's pick), never 61613/61614.
free_port() {
  php -r 'for ($i = 0; $i < 50; $i++) { $s = stream_socket_server("tcp://127.0.0.1:0");
    $p = (int) substr(strrchr(stream_socket_get_name($s, false), ":"), 1); fclose($s);
    if ($p !== 61613 && $p !== 61614) { echo $p; exit(0); } } exit(1);'
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_broker NAME FRAME_EOL: starts a broker whose single STOMP acceptor has that frame-eol
# and sets $port to its port. Retries on another port if the first was taken meanwhile.
start_broker() {
  local name="$1" eol="$2" log="$artifacts/broker-$1.log" pid ready
  : >"$log"
  for _attempt in 1 2 3 4 5; do
    port="$(free_port)" || fail_setup "no free loopback port"
    printf '%s\n' '[[acceptors]]' 'name = "stomp"' "bind = \"127.0.0.1:$port\"" "frame-eol = $eol" \
      >"$work/$name.toml"
    echo "=== $bin --config $work/$name.toml --data-dir $work/$name-data --admin-bind 127.0.0.1:0" >>"$log"
    "$bin" --config "$work/$name.toml" --data-dir "$work/$name-data" --admin-bind 127.0.0.1:0 >>"$log" 2>&1 &
    pid=$!
    broker_pids+=("$pid")
    ready=0
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      if listening "$port"; then ready=1; break; fi
      sleep 0.1
    done
    [[ "$ready" == 1 ]] && return 0
    kill -TERM "$pid" 2>/dev/null
    grep -qi "in use" "$log" || break
  done
  tail -n 20 "$log" >&2
  fail_setup "broker $name did not start listening within 10 s (log: $log)"
}

start_broker php true
eol_port=$port
start_broker php-no-eol false
no_eol_port=$port
echo "conformance/php: broker with frame-eol = true on 127.0.0.1:$eol_port, frame-eol = false on 127.0.0.1:$no_eol_port"

# --- checks -------------------------------------------------------------------------------
mapfile -t checks < <(php "$here/checks.php" --list) || fail_setup "php checks.php --list"
[[ "${#checks[@]}" -gt 0 ]] || fail_setup "checks.php lists no checks"

# run_check PORT NAME: prints the check's one result line and returns 0 on PASS. A check
# that overruns its time (or what is left of the part's) is killed and fails.
run_check() {
  local left=$((part_timeout - (SECONDS - start))) limit="$check_timeout" out status
  if [[ "$left" -le 0 ]]; then
    echo "$2 FAIL part timeout (${part_timeout}s) reached before it ran"
    return 1
  fi
  [[ "$left" -lt "$limit" ]] && limit="$left"
  out="$(timeout --foreground --kill-after=5 "$limit" php "$here/checks.php" --port "$1" --check "$2" 2>&1)"
  status=$?
  if [[ "$status" == 124 || "$status" == 137 ]]; then
    echo "$2 FAIL timed out after ${limit}s${out:+ ($(tr '\n' ' ' <<<"$out"))}"
    return 1
  fi
  if [[ "$status" == 0 && "$(tail -n 1 <<<"$out")" == "$2 PASS" ]]; then
    echo "$out"
    return 0
  fi
  if [[ "$(tail -n 1 <<<"$out")" == "$2 FAIL"* ]]; then
    echo "$out"
  else
    echo "$2 FAIL exit $status: $(tr '\n' ' ' <<<"$out")"
  fi
  return 1
}

echo "--- against the default broker (frame-eol = true)"
for name in "${checks[@]}"; do
  if run_check "$eol_port" "$name"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

echo "--- demonstration against frame-eol = false (failures here are expected and not counted)"
demo_failed=0
for name in "${checks[@]}"; do
  if run_check "$no_eol_port" "$name" | sed 's/^/    (expected) /'; then :; else demo_failed=$((demo_failed + 1)); fi
done
if ! listening "$no_eol_port"; then
  echo "frame-eol-false-breaks-php-stomp FAIL the frame-eol = false broker stopped listening"
  failed=$((failed + 1))
elif [[ "$demo_failed" -gt 0 ]]; then
  echo "frame-eol-false-breaks-php-stomp PASS ($demo_failed of ${#checks[@]} checks fail without the newline)"
  passed=$((passed + 1))
else
  echo "frame-eol-false-breaks-php-stomp FAIL every check passed without the newline after NUL"
  failed=$((failed + 1))
fi

if [[ "$failed" -gt 0 ]]; then
  echo "--- broker logs: $artifacts/broker-php.log, $artifacts/broker-php-no-eol.log" >&2
fi
report
[[ "$failed" == 0 ]]
