#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016 # "A && echo || true" on purpose; bash -c '...$1...' too
# bench/peers.sh: the peer brokers for side-by-side benchmarks (RabbitMQ 3.10 and ActiveMQ
# Classic 5.17, both from Debian), each on loopback ports of its own, run straight from a work
# dir (bench/work/<peer>) without systemd or init scripts. Settings and why: bench/PEERS.md.
#
#   bench/peers.sh install                       apt-get the packages (once; idempotent)
#   bench/peers.sh start  rabbitmq|activemq|all  start and wait until STOMP answers CONNECTED
#   bench/peers.sh stop   rabbitmq|activemq|all  stop what this script started (pid files)
#   bench/peers.sh restart rabbitmq|activemq|all  stop, then start (after changing a knob)
#   bench/peers.sh status                        running?, pid, STOMP answers?, RSS
#   bench/peers.sh ports                         env-style lines, e.g. RABBITMQ_STOMP_PORT=61713
#   bench/peers.sh pid    rabbitmq|activemq      pid of the broker process (beam.smp / java)
#   bench/peers.sh verify rabbitmq|activemq|all  100 messages through /queue/x and /topic/y
#   bench/peers.sh ctl ARGS...                   rabbitmqctl against our node (e.g. ctl status)
#
# Env: BENCH_WORK (default bench/work), the *_PORT variables of bench/lib.sh,
#      ACTIVEMQ_HEAP (default "-Xms64M -Xmx1G", ActiveMQ's upstream default),
#      ACTIVEMQ_STOMP_SCHEME (default stomp; stomp+nio for many-connection runs),
#      RABBITMQ_VM_MEMORY_HIGH_WATERMARK (e.g. 1GB; default: RabbitMQ's 0.4 of RAM),
#      RABBITMQ_WEB_STOMP (default 1: enable rabbitmq_web_stomp; 0 to leave it off),
#      PEERS_START_TIMEOUT (default 120 s).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

START_TIMEOUT="${PEERS_START_TIMEOUT:-120}"
RMQ_W="$BENCH_WORK/rabbitmq"
AMQ_W="$BENCH_WORK/activemq"
RMQ_NODENAME="wrenbench@localhost"
RMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
RMQ_CTL=/usr/lib/rabbitmq/bin/rabbitmqctl
AMQ_HOME=/usr/share/activemq
: "${ACTIVEMQ_HEAP:=-Xms64M -Xmx1G}"
: "${ACTIVEMQ_STOMP_SCHEME:=stomp}"
: "${RABBITMQ_WEB_STOMP:=1}"

usage() { sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# ---- install -------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

cmd_install() {
    if installed rabbitmq-server && installed activemq; then
        log "rabbitmq-server and activemq already installed"
    else
        [ "$(id -u)" = 0 ] || die "install needs root (apt-get)"
        # The packages' postinst would start a default broker through invoke-rc.d (RabbitMQ on
        # 5672 with an epmd on 4369): deny that unless a policy already does, so that nothing
        # runs that this script did not start and does not track.
        local policy=/usr/sbin/policy-rc.d made_policy=""
        if [ ! -e "$policy" ]; then
            # removed again below, and on any exit (error, Ctrl-C) in between
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
            printf '#!/bin/sh\n# bench/peers.sh install: no service starts\nexit 101\n' >"$policy"
            chmod 755 "$policy"
            made_policy=1
        fi
        local rc=0
        {
            # wait for the dpkg lock rather than fail if another apt-get is running
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update &&
                DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
                    rabbitmq-server activemq
        } || rc=$?
        if [ -n "$made_policy" ]; then
            rm -f "$policy"
            trap - EXIT
        fi
        [ "$rc" = 0 ] || die "apt-get failed ($rc)"
    fi
    installed rabbitmq-server && installed activemq || die "packages missing after install"
    for p in rabbitmq-server activemq erlang-base; do
        printf '%s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
    done
}

need_installed() {
    installed "$1" || die "$1 is not installed: run bench/peers.sh install"
}

# ---- RabbitMQ ------------------------------------------------------------------------------
# Everything the node and rabbitmqctl need, exported, so that both see the same node.
rabbit_env() {
    export HOME="$RMQ_W/home"                      # .erlang.cookie lives here
    export RABBITMQ_CONF_ENV_FILE="$RMQ_W/rabbitmq-env.conf" # not /etc/rabbitmq/rabbitmq-env.conf
    export RABBITMQ_CONFIG_FILE="$RMQ_W/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_W/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_W/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$RMQ_W/mnesia"
    export RABBITMQ_LOG_BASE="$RMQ_W/log"
    export RABBITMQ_PID_FILE="$RMQ_W/run/beam.pid" # written by the node: the beam.smp pid
    export RABBITMQ_NODENAME="$RMQ_NODENAME"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$RABBITMQ_AMQP_PORT"
    export RABBITMQ_DIST_PORT
    export RABBITMQ_CTL_DIST_PORT_MIN RABBITMQ_CTL_DIST_PORT_MAX
    export ERL_EPMD_PORT="$RABBITMQ_EPMD_PORT"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_CRASH_DUMP="$RMQ_W/log/erl_crash.dump"
}

rabbit_write_config() {
    mkdir -p "$RMQ_W"/{home,mnesia,log,run}
    chmod 700 "$RMQ_W/home"
    : >"$RMQ_W/rabbitmq-env.conf"
    local plugins="rabbitmq_stomp"
    [ "$RABBITMQ_WEB_STOMP" = 1 ] && plugins="rabbitmq_stomp,rabbitmq_web_stomp"
    printf '[%s].\n' "$plugins" >"$RMQ_W/enabled_plugins"
    printf '[].\n' >"$RMQ_W/advanced.config"
    cat >"$RMQ_W/rabbitmq.conf" <<CONF
# generated by bench/peers.sh; see bench/PEERS.md
# AMQP 0-9-1 on loopback only (RABBITMQ_NODE_PORT says the same)
listeners.tcp.default = 127.0.0.1:$RABBITMQ_AMQP_PORT
# Erlang distribution on loopback only
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = $RABBITMQ_DIST_PORT
distribution.listener.port_range.max = $RABBITMQ_DIST_PORT
# guest may only log in from loopback (the default; all our clients are on loopback)
loopback_users.guest = true
# STOMP
stomp.listeners.tcp.1 = 127.0.0.1:$RABBITMQ_STOMP_PORT
# the plugin's defaults already, written out: a CONNECT without login/passcode is guest
stomp.default_user = guest
stomp.default_pass = guest
# accept backlog 4096 (plugin default 128) like ActiveMQ's listener here (capped at somaxconn
# 4096), so a burst of connects in the connections scenario is not dropped at the SYN queue;
# nodelay written again because setting one listen option replaces the default list
stomp.tcp_listen_options.backlog = 4096
stomp.tcp_listen_options.nodelay = true
# Web-STOMP (ws://127.0.0.1:$RABBITMQ_WEB_STOMP_PORT/ws)
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RABBITMQ_WEB_STOMP_PORT
# memory alarm: the default (0.4 of RAM) unless RABBITMQ_VM_MEMORY_HIGH_WATERMARK is set
${RABBITMQ_VM_MEMORY_HIGH_WATERMARK:+vm_memory_high_watermark.absolute = $RABBITMQ_VM_MEMORY_HIGH_WATERMARK}
# logs to file only, info level (the default level)
log.console = false
log.file.level = info
CONF
}

rabbit_wrapper_pid() {
    local p
    p="$(read_pid "$RMQ_W/run/server.pid")"
    # started in $RMQ_W: tells our wrapper from another checkout's
    pid_alive "$p" rabbitmq-server "$RMQ_W" && echo "$p" || true
}
rabbit_beam_pid() {
    local p
    p="$(read_pid "$RMQ_W/run/beam.pid")"
    # the node name is not on beam's command line (set at boot); its home dir is
    pid_alive "$p" "-home $RMQ_W/home" && echo "$p" || true
}
rabbit_epmd_pid() {
    local p
    p="$(read_pid "$RMQ_W/run/epmd.pid")"
    pid_alive "$p" "epmd -port $RABBITMQ_EPMD_PORT" && echo "$p" || true
}

start_rabbitmq() {
    need_installed rabbitmq-server
    if [ -n "$(rabbit_beam_pid)" ] && stomp_ping "$RABBITMQ_STOMP_PORT"; then
        log "rabbitmq already running (pid $(rabbit_beam_pid))"
        return 0
    fi
    [ -z "$(rabbit_wrapper_pid)$(rabbit_beam_pid)" ] || stop_rabbitmq
    for port in "$RABBITMQ_STOMP_PORT" "$RABBITMQ_AMQP_PORT" "$RABBITMQ_DIST_PORT"; do
        ! port_open "$port" || die "127.0.0.1:$port is taken by another process"
    done
    rabbit_write_config
    rabbit_env
    rm -f "$RMQ_W/run/beam.pid"

    # Our own epmd on its own port, so that starting and stopping it touches no other Erlang
    # node on this machine (the shared one is on 4369).
    if [ -z "$(rabbit_epmd_pid)" ]; then
        ! port_open "$RABBITMQ_EPMD_PORT" || die "127.0.0.1:$RABBITMQ_EPMD_PORT (epmd) is taken"
        setsid bash -c 'echo $$ >"$1"; cd /; exec epmd -port "$2"' _ \
            "$RMQ_W/run/epmd.pid" "$RABBITMQ_EPMD_PORT" \
            </dev/null >>"$RMQ_W/log/epmd.out" 2>&1 &
        wait_until 10 "epmd on $RABBITMQ_EPMD_PORT" port_open "$RABBITMQ_EPMD_PORT"
    fi

    raise_nofile
    log "starting rabbitmq ($RMQ_NODENAME, STOMP 127.0.0.1:$RABBITMQ_STOMP_PORT)"
    # rabbitmq-server in the foreground (no -detached) under setsid: it is a small sh that
    # runs erl (beam.smp) as its child and turns SIGTERM into a clean node stop.
    setsid bash -c 'echo $$ >"$1"; cd "$2"; exec "$3"' _ \
        "$RMQ_W/run/server.pid" "$RMQ_W" "$RMQ_SERVER" \
        </dev/null >>"$RMQ_W/log/server.out" 2>&1 &
    if ! wait_until "$START_TIMEOUT" "rabbitmq STOMP on $RABBITMQ_STOMP_PORT" \
        rabbit_ready; then
        tail -n 30 "$RMQ_W/log/server.out" >&2 || true
        stop_rabbitmq
        die "rabbitmq did not start (logs: $RMQ_W/log)"
    fi
    if [ "$RABBITMQ_WEB_STOMP" = 1 ]; then
        wait_until 20 "rabbitmq Web-STOMP on $RABBITMQ_WEB_STOMP_PORT" \
            port_open "$RABBITMQ_WEB_STOMP_PORT" || die "Web-STOMP did not open"
    fi
    log "rabbitmq up: beam.smp pid $(rabbit_beam_pid), RSS $(rss_kib "$(rabbit_beam_pid)") KiB"
}

rabbit_ready() {
    if [ -z "$(rabbit_wrapper_pid)" ]; then
        # the pid file appears a moment after the fork
        sleep 0.5
        [ -n "$(rabbit_wrapper_pid)" ] || { log "rabbitmq-server exited"; return 2; }
    fi
    stomp_ping "$RABBITMQ_STOMP_PORT"
}

stop_rabbitmq() {
    local wrapper beam epmd
    wrapper="$(rabbit_wrapper_pid)"
    beam="$(rabbit_beam_pid)"
    epmd="$(rabbit_epmd_pid)"
    # SIGTERM to the wrapper: it sends SIGTERM to beam.smp, which stops the node cleanly.
    [ -z "$wrapper" ] || stop_pid "$wrapper" rabbitmq-server "rabbitmq-server" 60
    [ -z "$beam" ] || stop_pid "$beam" "-home $RMQ_W/home" "rabbitmq beam.smp" 30
    [ -z "$epmd" ] || stop_pid "$epmd" "epmd -port $RABBITMQ_EPMD_PORT" "epmd" 10
    rm -f "$RMQ_W/run/server.pid" "$RMQ_W/run/beam.pid" "$RMQ_W/run/epmd.pid"
}

# ---- ActiveMQ ------------------------------------------------------------------------------
amq_java() {
    local j
    for j in /usr/lib/jvm/default-java/bin/java "$(readlink -f "$(command -v java)" 2>/dev/null)"; do
        [ -x "$j" ] && { echo "$j"; return; }
    done
    die "no java found"
}

amq_write_config() {
    mkdir -p "$AMQ_W"/{conf,data,tmp,run}
    cat >"$AMQ_W/conf/activemq.xml" <<XML
<!-- generated by bench/peers.sh; see bench/PEERS.md -->
<beans
  xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">

    <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>

    <broker xmlns="http://activemq.apache.org/schema/core"
            brokerName="wrenbench"
            useJmx="false"
            persistent="true"
            dataDirectory="\${activemq.data}">

        <!-- KahaDB with its defaults (journal fsync on every write batch, 32 MB journal files) -->
        <persistenceAdapter>
            <kahaDB directory="\${activemq.data}/kahadb"/>
        </persistenceAdapter>

        <!-- the upstream distribution's limits: 70% of the heap for messages in memory -->
        <systemUsage>
            <systemUsage>
                <memoryUsage><memoryUsage percentOfJvmHeap="70"/></memoryUsage>
                <storeUsage><storeUsage limit="20 gb"/></storeUsage>
                <tempUsage><tempUsage limit="10 gb"/></tempUsage>
            </systemUsage>
        </systemUsage>

        <!-- only these two connectors, on loopback; no web console (Debian ships none) -->
        <transportConnectors>
            <transportConnector name="openwire" uri="tcp://127.0.0.1:$ACTIVEMQ_OPENWIRE_PORT"/>
            <transportConnector name="stomp" uri="$ACTIVEMQ_STOMP_SCHEME://127.0.0.1:$ACTIVEMQ_STOMP_PORT?transport.tcpNoDelay=true"/>
        </transportConnectors>

        <shutdownHooks>
            <bean xmlns="http://www.springframework.org/schema/beans" class="org.apache.activemq.hooks.SpringContextHook"/>
        </shutdownHooks>
    </broker>
</beans>
XML
    cat >"$AMQ_W/conf/log4j.properties" <<'PROPS'
# generated by bench/peers.sh: INFO to data/activemq.log (Debian's ActiveMQ logs through log4j 1.2)
log4j.rootLogger=INFO, logfile
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.logfile=org.apache.log4j.RollingFileAppender
log4j.appender.logfile.file=${activemq.data}/activemq.log
log4j.appender.logfile.maxFileSize=4MB
log4j.appender.logfile.maxBackupIndex=2
log4j.appender.logfile.append=true
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
PROPS
}

amq_pid() {
    local p
    p="$(read_pid "$AMQ_W/run/java.pid")"
    pid_alive "$p" "-Dactivemq.base=$AMQ_W" && echo "$p" || true
}

start_activemq() {
    need_installed activemq
    if [ -n "$(amq_pid)" ] && stomp_ping "$ACTIVEMQ_STOMP_PORT"; then
        log "activemq already running (pid $(amq_pid))"
        return 0
    fi
    [ -z "$(amq_pid)" ] || stop_activemq
    for port in "$ACTIVEMQ_STOMP_PORT" "$ACTIVEMQ_OPENWIRE_PORT"; do
        ! port_open "$port" || die "127.0.0.1:$port is taken by another process"
    done
    amq_write_config
    local java
    java="$(amq_java)"
    raise_nofile
    log "starting activemq (STOMP 127.0.0.1:$ACTIVEMQ_STOMP_PORT, $ACTIVEMQ_HEAP, $java)"
    # What /usr/bin/activemq would run, minus its pid/user handling: java in the foreground
    # under setsid, pid recorded by the shell that execs it.
    # shellcheck disable=SC2086 # ACTIVEMQ_HEAP is a list of JVM options
    (
        cd "$AMQ_W"
        exec setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ \
            "$AMQ_W/run/java.pid" \
            "$java" $ACTIVEMQ_HEAP \
            -Djava.io.tmpdir="$AMQ_W/tmp" \
            -Dlog4j.configuration="file:$AMQ_W/conf/log4j.properties" \
            -Dactivemq.classpath="$AMQ_W/conf" \
            -Dactivemq.home="$AMQ_HOME" \
            -Dactivemq.base="$AMQ_W" \
            -Dactivemq.conf="$AMQ_W/conf" \
            -Dactivemq.data="$AMQ_W/data" \
            -jar "$AMQ_HOME/bin/activemq.jar" start "xbean:file:$AMQ_W/conf/activemq.xml"
    ) </dev/null >>"$AMQ_W/run/console.out" 2>&1 &
    if ! wait_until "$START_TIMEOUT" "activemq STOMP on $ACTIVEMQ_STOMP_PORT" amq_ready; then
        tail -n 30 "$AMQ_W/run/console.out" >&2 || true
        stop_activemq
        die "activemq did not start (logs: $AMQ_W/run/console.out, $AMQ_W/data/activemq.log)"
    fi
    log "activemq up: java pid $(amq_pid), RSS $(rss_kib "$(amq_pid)") KiB"
}

amq_ready() {
    if [ -z "$(amq_pid)" ]; then
        # the pid file appears a moment after the fork
        sleep 0.5
        [ -n "$(amq_pid)" ] || { log "activemq java exited"; return 2; }
    fi
    stomp_ping "$ACTIVEMQ_STOMP_PORT"
}

stop_activemq() {
    local p
    p="$(amq_pid)"
    [ -z "$p" ] || stop_pid "$p" "-Dactivemq.base=$AMQ_W" "activemq java" 60
    rm -f "$AMQ_W/run/java.pid"
}

# ---- commands ------------------------------------------------------------------------------
peers_of() {
    case "${1:-}" in
        rabbitmq | activemq) echo "$1" ;;
        all) echo "rabbitmq activemq" ;;
        *) usage ;;
    esac
}

cmd_ports() {
    local v
    for v in RABBITMQ_STOMP_PORT RABBITMQ_WEB_STOMP_PORT RABBITMQ_AMQP_PORT RABBITMQ_DIST_PORT \
        RABBITMQ_EPMD_PORT ACTIVEMQ_STOMP_PORT ACTIVEMQ_OPENWIRE_PORT; do
        printf '%s=%s\n' "$v" "${!v}"
    done
    printf 'RABBITMQ_STOMP_URL=tcp://127.0.0.1:%s\n' "$RABBITMQ_STOMP_PORT"
    printf 'RABBITMQ_WEB_STOMP_URL=ws://127.0.0.1:%s/ws\n' "$RABBITMQ_WEB_STOMP_PORT"
    printf 'ACTIVEMQ_STOMP_URL=tcp://127.0.0.1:%s\n' "$ACTIVEMQ_STOMP_PORT"
}

cmd_pid() {
    local p
    case "${1:-}" in
        rabbitmq) p="$(rabbit_beam_pid)" ;;
        activemq) p="$(amq_pid)" ;;
        *) usage ;;
    esac
    [ -n "$p" ] || die "$1 is not running"
    echo "$p"
}

cmd_status() {
    local rc=0 p port state
    for peer in rabbitmq activemq; do
        if [ "$peer" = rabbitmq ]; then p="$(rabbit_beam_pid)"; port="$RABBITMQ_STOMP_PORT"
        else p="$(amq_pid)"; port="$ACTIVEMQ_STOMP_PORT"; fi
        if [ -z "$p" ]; then
            state=stopped
        elif stomp_ping "$port"; then
            state="running pid=$p stomp=127.0.0.1:$port rss_kib=$(rss_kib "$p") nofile=$(awk '/^Max open files/ {print $4}' "/proc/$p/limits")"
        else
            state="running pid=$p stomp=127.0.0.1:$port (not answering CONNECT)"
            rc=1
        fi
        printf '%-9s %s\n' "$peer" "$state"
    done
    if [ -n "$(rabbit_epmd_pid)" ]; then
        printf '%-9s running pid=%s port=%s\n' epmd "$(rabbit_epmd_pid)" "$RABBITMQ_EPMD_PORT"
    fi
    return "$rc"
}

venv_python() {
    local py
    for py in "$BENCH_DIR/../conformance/.venv/bin/python" "$BENCH_WORK/venv/bin/python"; do
        if [ -x "$py" ] && "$py" -c 'import stomp' 2>/dev/null; then echo "$py"; return; fi
    done
    log "making $BENCH_WORK/venv with stomp-py==9.0.0"
    python3 -m venv "$BENCH_WORK/venv" >&2
    "$BENCH_WORK/venv/bin/pip" install -q stomp-py==9.0.0 >&2
    echo "$BENCH_WORK/venv/bin/python"
}

cmd_verify() {
    local py peer port rc=0
    py="$(venv_python)"
    for peer in $(peers_of "${1:-all}"); do
        local extra=()
        if [ "$peer" = rabbitmq ]; then
            port="$RABBITMQ_STOMP_PORT"
            # Web-STOMP too when it is listening (RABBITMQ_WEB_STOMP=1, the default)
            ! port_open "$RABBITMQ_WEB_STOMP_PORT" || extra=(--ws-port "$RABBITMQ_WEB_STOMP_PORT")
        else
            port="$ACTIVEMQ_STOMP_PORT"
        fi
        timeout 120 "$py" "$BENCH_DIR/verify_peer.py" --name "$peer" --port "$port" "${extra[@]}" ||
            rc=1
    done
    return "$rc"
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        install) cmd_install ;;
        start) for p in $(peers_of "${1:-}"); do "start_$p"; done ;;
        stop) for p in $(peers_of "${1:-}"); do "stop_$p"; done ;;
        restart) for p in $(peers_of "${1:-}"); do "stop_$p"; "start_$p"; done ;;
        status) cmd_status ;;
        ports) cmd_ports ;;
        pid) cmd_pid "${1:-}" ;;
        verify) cmd_verify "${1:-all}" ;;
        ctl) need_installed rabbitmq-server; rabbit_env; exec "$RMQ_CTL" -n "$RMQ_NODENAME" "$@" ;;
        *) usage ;;
    esac
}

main "$@"
