# bench/lib.sh: helpers shared by the bench scripts. Source it; it sets nothing global but
# BENCH_DIR, BENCH_WORK and the port variables below (each overridable from the environment).
# shellcheck shell=bash disable=SC2015 # "A && echo || true" on purpose: echo cannot fail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# canonical (symlinks resolved): pid checks compare it with /proc/PID/cwd
BENCH_WORK="$(realpath -m "${BENCH_WORK:-$BENCH_DIR/work}")"

# ---- loopback ports of the peers (never 61613/61614: those are WrenMQ's) -------------------
# All are above the kernel's ephemeral range (32768-60999) except Web-STOMP, so a client's
# outgoing ports cannot take them.
: "${RABBITMQ_STOMP_PORT:=61713}"      # STOMP (rabbitmq_stomp)
: "${RABBITMQ_WEB_STOMP_PORT:=15774}"  # STOMP over WebSocket (rabbitmq_web_stomp), path /ws
: "${RABBITMQ_AMQP_PORT:=61715}"       # AMQP 0-9-1 (RABBITMQ_NODE_PORT)
: "${RABBITMQ_DIST_PORT:=61717}"       # Erlang distribution of the node
: "${RABBITMQ_EPMD_PORT:=61719}"       # our own epmd (ERL_EPMD_PORT), not the shared 4369
: "${RABBITMQ_CTL_DIST_PORT_MIN:=61730}" # rabbitmqctl's own distribution ports (bench/peers.sh ctl)
: "${RABBITMQ_CTL_DIST_PORT_MAX:=61739}"
: "${ACTIVEMQ_STOMP_PORT:=61723}"      # STOMP
: "${ACTIVEMQ_OPENWIRE_PORT:=61726}"   # OpenWire (needed by nothing here; kept on loopback)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid_alive PID PATTERN [CWD]: PID is running, its command line contains PATTERN and (if
# given) its working directory is CWD. Guards against a stale pid file whose pid now belongs
# to another process (a zombie has an empty command line, so it does not count).
pid_alive() {
    local pid="$1" pattern="$2" cwd="${3:-}" cmd
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmd" == *"$pattern"* ]] || return 1
    [ -z "$cwd" ] || [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$cwd" ]
}

# read_pid FILE: the pid in FILE, or nothing.
read_pid() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# stomp_ping PORT: a STOMP 1.2 CONNECT (guest/guest, host "/") on 127.0.0.1:PORT is answered
# by CONNECTED within 3 s.
stomp_ping() {
    # shellcheck disable=SC2016 # $1 and $line belong to the inner shell
    timeout 4 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\0" >&3
        IFS= read -r -t 3 line <&3 || exit 1
        [ "${line%$'"'"'\r'"'"'}" = CONNECTED ] || exit 1
        printf "DISCONNECT\n\n\0" >&3
    ' _ "$1" 2>/dev/null
}

# wait_until SECONDS DESCRIPTION CMD...: run CMD every 0.5 s until it succeeds; fail after
# SECONDS, or at once when CMD returns 2 (it has seen that waiting is pointless).
wait_until() {
    local secs="$1" what="$2" deadline rc
    shift 2
    deadline=$((SECONDS + secs))
    while true; do
        rc=0
        "$@" || rc=$?
        [ "$rc" != 0 ] || return 0
        [ "$rc" != 2 ] || return 1
        [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
        sleep 0.5
    done
}

# stop_pid PID PATTERN NAME [GRACE]: SIGTERM, wait up to GRACE s (default 30), then SIGKILL.
# Only touches PID if its command line still contains PATTERN.
stop_pid() {
    local pid="$1" pattern="$2" name="$3" grace="${4:-30}" deadline
    pid_alive "$pid" "$pattern" || return 0
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while pid_alive "$pid" "$pattern"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name (pid $pid) still running after ${grace}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
}

# raise_nofile: open-file limit 65536 for this shell and so for the brokers it starts, for
# the many-connection scenario. Where the hard limit is lower and cannot be raised (a
# container without CAP_SYS_RESOURCE, even as root) take the hard limit and say so.
raise_nofile() {
    local want=65536 hard
    if ulimit -n "$want" 2>/dev/null; then return 0; fi
    hard="$(ulimit -Hn)"
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
        ulimit -n "$hard"
        log "warning: open-file limit is $hard (hard limit; could not raise it to $want)"
    fi
}

# rss_kib PID: VmRSS of PID in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# A free loopback port, never WrenMQ's defaults (61613/61614) nor a peer's (61700-61739).
free_port() {
    python3 - <<'PY'
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    if p not in (61613, 61614) and not 61700 <= p < 61740:
        print(p)
        break
PY
}

# Waits up to 10 s for a loopback port to accept connections.
wait_port() {
    local port=$1
    for _ in $(seq 1 100); do
        port_open "$port" && return 0
        sleep 0.1
    done
    return 1
}

# start_wrenmq_broker BIN DIR NAME [JOURNAL_LINES]: writes DIR/broker.toml (one STOMP acceptor
# on a free port, the admin listener on another, journal on disk with fsync plus JOURNAL_LINES,
# no per-IP cap below 10000 since every benchmark client is on 127.0.0.1), starts BIN with it,
# waits until it listens. Sets PORT, ADMIN_PORT and BROKER_PID. The one place the benchmarks
# configure a WrenMQ broker.
start_wrenmq_broker() {
    local bin=$1 dir=$2 name=$3 journal=${4:-}
    PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    mkdir -p "$dir/data"
    cat >"$dir/broker.toml" <<TOML
[broker]
name = "$name"

[[acceptors]]
name = "stomp"
bind = "127.0.0.1:$PORT"

[limits]
max-connections-per-ip = 10000

[admin]
bind = "127.0.0.1:$ADMIN_PORT"

[journal]
enabled = true
data-dir = "$dir/data"
sync = true
$journal

# The built-in "#" entry (listing any entry replaces it), then the queue kinds the issue-11
# scenarios run on: queues auto-created under kind-excl.* are exclusive, under kind-lvq.*
# last-value keyed on the load tool's per-message stamp (so nothing is replaced and every
# message arrives: the figure is the bookkeeping's cost), under kind-stream.* non-destructive
# (each keeping at most 1 GiB, so runs on many streams stay within the machine's memory).
[[address-settings]]
match = "#"
dead-letter-address = "DLQ"
expiry-address = "ExpiryQueue"

[[address-settings]]
match = "kind-excl.#"
default-exclusive-queue = true

[[address-settings]]
match = "kind-lvq.#"
default-last-value-queue = true
default-last-value-key = "wrenmq-perf"

[[address-settings]]
match = "kind-stream.#"
default-non-destructive = true
default-retention-bytes = 1073741824
TOML
    RUST_LOG=warn "$bin" --config "$dir/broker.toml" >"$dir/broker.log" 2>&1 &
    # shellcheck disable=SC2034 # read by the scripts that source this file
    BROKER_PID=$!
    wait_port "$PORT" || { cat "$dir/broker.log" >&2; die "$name did not start"; }
}
