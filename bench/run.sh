#!/usr/bin/env bash
# bench/run.sh: the side-by-side benchmark (issues "Performance"). WrenMQ (release build) against
# RabbitMQ 3.10 (rabbitmq_stomp) and ActiveMQ Classic 5.17 (bench/peers.sh, bench/PEERS.md), and
# `wrenmq perf echo-server` as the ceiling: a do-nothing forwarder that runs every scenario it
# can serve (q1, q1p, q4, fanout, latency, latency-50k, pairs), so each table shows WrenMQ as a
# share of it.
#
# One broker at a time (the machine has 2 cores): start it, run every scenario RUNS times,
# stop it, next. Medians go to bench/results/RESULTS.md (bench/report.py), every run's JSON line
# to bench/results/raw/. Stops what it started (WrenMQ, echo server, the peers), also on failure.
#
#   bash bench/run.sh                      full run (~20 min with all five targets; WrenMQ ~5,
#                                          baseline ~3, echo ~2, RabbitMQ ~5, ActiveMQ ~5)
#   RUNS=1 QUICK=1 bash bench/run.sh       smoke run: 1 run each, n / 10, latency 3 s (~6 min)
#
# Broker CPU (every run, every broker): bench/proc_cpu.py sums utime+stime (+ the reaped
# children's cutime+cstime) from /proc/PID/stat over the broker process (all its threads) and
# every live process below it, right before and right after the run. For the peers PID is the
# process bench/peers.sh reports (RabbitMQ's beam.smp, whose children erl_child_setup /
# inet_gethost are included; ActiveMQ's java); raw/meta.txt lists the processes counted
# (cpu_tree_BROKER). broker_cpu_secs / wall seconds of the run = broker cores used; / MESSAGE
# frames received = µs of broker CPU per delivered message (fan-out: every subscriber's copy
# counts; sched: per scheduled message sent; replay: preload and replay per replayed message).
# The run's wall time includes connecting and subscribing, so cores are slightly understated
# for short runs. The load tool's own CPU is not counted: it shares the same 2 cores.
#
# Knobs (environment):
#   RUNS=3          runs per scenario and broker (medians over them)
#   QUICK=0|1       1: message counts / 10, latency for 3 s instead of 10
#   BROKERS="wrenmq echo rabbitmq activemq"   which targets, in this order
#   SCENARIOS="q1 q1p q4 fanout latency latency-50k pairs conns fanout-sel q1-prio q1-excl q1-lvq q1-stream replay sched"
#                   which scenarios (echo skips conns and the WrenMQ-only ones; the
#                   issue-10/11 ones only WrenMQ)
#   PAIRS="1 2 4 8" the P values of the pairs scenario
#   RUN_TIMEOUT=300 seconds before one run is killed (timeout(1))
#   NO_BUILD=1      skip `cargo build --release`
#   NO_INSTALL=1    skip `bench/peers.sh install`
#   RESULTS_DIR=bench/results
#   WARMUP=1        one unrecorded q1 run (n/5) after each broker starts (JIT / allocator warm-up)
#   BROKER_BIN=target/release/wrenmq   the WrenMQ broker to measure (the load tool stays
#                   target/release/wrenmq): compare two builds with the same load tool
#   BASELINE=bench/results/baseline.json   WrenMQ's pre-issue-14 CPU per message per scenario,
#                   for the targets table (bench/report.py --write-baseline makes one from a run).
#                   None there by default, so the issue's figures (2.8 / 19 µs) are used;
#                   bench/results/baseline-8ad2fc8.json is one measured on a loaded machine
#   BASELINE_BIN=PATH  the pre-issue-14 wrenmq; with `baseline` in BROKERS (e.g. BROKERS="wrenmq
#                   baseline echo rabbitmq activemq") it runs the scenarios WrenMQ and the peers
#                   share, as WrenMQ is configured, and the CPU targets compare against it from
#                   the same run (better than the file: same load on the shared machine)
#
# Scenarios (wrenmq perf ...):
#   q1      queue -P 1 -C 1 -s 256, non-persistent, --ack auto, one receipt at the end
#   q1p     queue -P 1 -C 1 -s 256 --persistent true --receipt-every 100 --ack client-individual
#           (the echo server answers the receipts and ignores the acks)
#   q4      queue -P 4 -C 4 -s 1024, non-persistent, --ack auto
#   fanout  fanout -C 10 -s 100 on a topic, non-persistent
#   latency latency -r 5000 -t 10, non-persistent (also against the echo server: the floor)
#   latency-50k  latency -r 50000 -t 10, the same at ten times the rate
#   pairs   for P in $PAIRS: queue -P P -C P --queues P -s 256, non-persistent, --ack auto: P
#           independent queues, each with its own producer and consumer (DEST.0 .. DEST.P-1,
#           each tracked exactly-once on its own); recorded as scenarios pairs-1, pairs-2, ...
#           The scaling scenario: total msgs/s and broker cores per P.
#   conns   connections -k 2000 --broker-pid PID (RSS per idle connection). Always run last, on
#           a fresh broker process (restarted: a heap grown by the earlier scenarios hides the
#           growth); its RUNS runs then follow each other on that process. Every other
#           scenario of a broker runs on one process, in SCENARIOS order.
#   q1 against the echo server is the tool's ceiling.
#
# Issue-10 scenarios (selectors, priority, scheduled delivery): WrenMQ only. The peers as set up
# in bench/PEERS.md are not configured for them (RabbitMQ's STOMP has no selectors, ActiveMQ's
# scheduler and prioritised queues are off), so a side-by-side number would compare nothing.
#   fanout-sel  fanout -C 10 -s 100 on a topic, non-persistent, --property-cycle color=red,blue,
#               subscribers alternate `color = 'red'` / `color = 'blue'`: each must get exactly
#               half (anything outside its selector fails the run)
#   q1-prio     q1 with --priority-cycle 0-9 (priority 0..9 in turn); throughput only
#   sched       scheduled -n 1000000 -s 16 --delay-ms 3600000, non-persistent, receipt every
#               1000, --broker-pid PID: broker RSS per scheduled message, and a 1 s probe
#               subscription that fails the run if any arrives early. Its messages stay in the
#               broker until it is stopped, so keep it last in SCENARIOS.
#
# Issue-11 scenarios (queue kinds), WrenMQ only, each q1's load on a queue of that kind (the
# kinds come from address settings in bench/lib.sh), to be read next to q1:
#   q1-excl     q1 on an exclusive queue
#   q1-lvq      q1 on a last-value queue keyed on the tool's per-message stamp (no message
#               is replaced, so all n arrive: this measures the last-value bookkeeping)
#   q1-stream   q1 on a non-destructive queue (a retained stream; consuming removes nothing)
#   replay      replay -n 1000000 -s 256 --persistent true --receipt-every 1000 --broker-pid
#               PID: preload a retained stream, then time one consumer from
#               x-stream-offset:first and sample the broker's RSS while it replays
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

RUNS=${RUNS:-3}
QUICK=${QUICK:-0}
BROKERS=${BROKERS:-"wrenmq echo rabbitmq activemq"}
SCENARIOS=${SCENARIOS:-"q1 q1p q4 fanout latency latency-50k pairs conns fanout-sel q1-prio q1-excl q1-lvq q1-stream replay sched"}
WRENMQ_ONLY=" fanout-sel q1-prio sched q1-excl q1-lvq q1-stream replay " # the issue-10 and -11 scenarios (see the header)
ECHO_SCENARIOS=" q1 q1p q4 fanout latency latency-50k pairs " # what a forwarder can serve
PAIRS=${PAIRS:-"1 2 4 8"}
BASELINE=${BASELINE:-bench/results/baseline.json}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
RAW="$RESULTS_DIR/raw"
BIN=target/release/wrenmq
BROKER_BIN=${BROKER_BIN:-$BIN}
WINDOW=1000 # prefetch / consumer window, in messages, for every broker
LAT_TIME=10
[ "$QUICK" = 1 ] && LAT_TIME=3

# Messages per run, per scenario and broker: about 3-6 s per run on each broker (msgs/s stays
# comparable; the table shows each n). Calibrated on the 2-core machine of bench/PEERS.md:
# WrenMQ ~280k msgs/s 1->1, ~30k persistent, ~700k fan-out deliveries/s; RabbitMQ ~26k, ~20k,
# ~40k; ActiveMQ ~30k, ~11k, ~100k. The echo server gets WrenMQ's n (it is faster). pairs: n in
# total over the P queues, the same for every P.
n_for() {
    local scen=$1 broker=$2 n
    # the pre-issue-14 build gets WrenMQ's n
    [ "$broker" != baseline ] || broker=wrenmq
    case "$scen/$broker" in
        q1/wrenmq | q1/echo) n=1000000 ;;
        q1p/echo) n=200000 ;;
        q4/echo) n=1000000 ;;
        fanout/echo) n=300000 ;;
        pairs/wrenmq | pairs/echo) n=1000000 ;;
        pairs/rabbitmq) n=150000 ;;
        pairs/activemq) n=200000 ;;
        q1/rabbitmq) n=150000 ;;
        q1/activemq) n=200000 ;;
        q1p/wrenmq) n=200000 ;;
        q1p/rabbitmq) n=60000 ;;
        q1p/activemq) n=40000 ;;
        q4/wrenmq) n=1000000 ;;
        q4/rabbitmq) n=150000 ;;
        q4/activemq) n=200000 ;;
        fanout/wrenmq) n=300000 ;;
        fanout/rabbitmq) n=20000 ;;
        fanout/activemq) n=60000 ;;
        # 10 subscribers each selecting half: 5 deliveries per message (2M at n=400k)
        fanout-sel/wrenmq) n=400000 ;;
        q1-prio/wrenmq | q1-excl/wrenmq | q1-lvq/wrenmq | q1-stream/wrenmq) n=1000000 ;;
        replay/wrenmq) n=1000000 ;; # the issue's figure: replay 1,000,000 retained messages
        sched/wrenmq) n=1000000 ;; # the issue's figure: 1,000,000 scheduled messages
        *) n=0 ;;
    esac
    [ "$QUICK" = 1 ] && n=$((n / 10))
    echo "$n"
}

mkdir -p "$RAW"
WORK=$(mktemp -d -t wrenmq-run.XXXXXX)
BROKER_PID=""
SAMPLER_PID=""
RUN_PID=""
STARTED_PEERS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
    [ -z "$RUN_PID" ] || kill "$RUN_PID" 2>/dev/null || true # timeout(1) passes it on to perf
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    local p
    for p in "${STARTED_PEERS[@]}"; do
        bench/peers.sh stop "$p" || true
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- targets -------------------------------------------------------------------------------
# Each sets PORT, PID (the broker process whose RSS is read) and CONN_ARGS (per-broker args).
start_wrenmq() {
    # journal as the peers are configured: on disk, fsync before a persistent SEND's RECEIPT
    start_wrenmq_broker "$BROKER_BIN" "$WORK/wrenmq" bench
    PID=$BROKER_PID
    # WrenMQ's default consumer window is $WINDOW messages (default-consumer-window)
    CONN_ARGS=(--port "$PORT")
    log "wrenmq up on 127.0.0.1:$PORT (pid $PID)"
}
stop_wrenmq() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}

# The pre-issue-14 WrenMQ build (BASELINE_BIN) as a target of its own, configured as WrenMQ:
# the CPU targets compare against it measured in the same run, under the same load.
start_baseline() {
    if [ -z "${BASELINE_BIN:-}" ] || [ ! -x "$BASELINE_BIN" ]; then
        die "BROKERS has baseline: set BASELINE_BIN to the pre-issue-14 wrenmq"
    fi
    start_wrenmq_broker "$BASELINE_BIN" "$WORK/baseline" bench
    PID=$BROKER_PID
    CONN_ARGS=(--port "$PORT")
    log "baseline wrenmq ($BASELINE_BIN) up on 127.0.0.1:$PORT (pid $PID)"
}
stop_baseline() { stop_wrenmq; }

start_echo() {
    PORT=$(free_port)
    "$BIN" perf echo-server --port "$PORT" >"$WORK/echo.log" 2>&1 &
    BROKER_PID=$!
    wait_port "$PORT" || die "echo server did not start"
    PID=$BROKER_PID
    CONN_ARGS=(--port "$PORT")
}
stop_echo() { stop_wrenmq; }

start_peer() {
    local peer=$1
    STARTED_PEERS+=("$peer")
    bench/peers.sh start "$peer"
    PID=$(bench/peers.sh pid "$peer")
    if [ "$peer" = rabbitmq ]; then
        PORT=$RABBITMQ_STOMP_PORT
        CONN_ARGS=(--port "$PORT" --login guest --passcode guest --sub-header "prefetch-count:$WINDOW")
    else
        PORT=$ACTIVEMQ_STOMP_PORT
        CONN_ARGS=(--port "$PORT" --sub-header "activemq.prefetchSize:$WINDOW")
    fi
}
stop_peer() {
    bench/peers.sh stop "$1"
    local keep=() p
    for p in "${STARTED_PEERS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    STARTED_PEERS=("${keep[@]}")
}
start_rabbitmq() { start_peer rabbitmq; }
stop_rabbitmq() { stop_peer rabbitmq; }
start_activemq() { start_peer activemq; }
stop_activemq() { stop_peer activemq; }

# "Non-persistent": an explicit persistent:false, except to RabbitMQ, whose STOMP adapter reads
# `persistent` on a SEND to /queue/ as a queue-declare argument (durable=false) and then refuses
# the consumer's durable queue (RESOURCE_LOCKED); without the header RabbitMQ's SEND is transient.
# WrenMQ needs the header (its default-persistent is true); ActiveMQ's default is non-persistent.
nonpersistent_args() {
    [ "$1" = rabbitmq ] || echo "--persistent false"
}

# ---- one run -------------------------------------------------------------------------------
# peak VmRSS of PID while the run goes, sampled every 0.2 s into FILE
rss_sampler() {
    local pid=$1 file=$2 max=0 v
    while true; do
        v=$(rss_kib "$pid")
        [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v && echo "$max" >"$file"
        sleep 0.2
    done
}

# run_one BROKER SCEN RUN N ARGS...: runs `wrenmq perf ARGS... --json`, records the JSON line.
run_one() {
    local broker=$1 scen=$2 run=$3 n=$4
    shift 4
    local cmd=(timeout "$RUN_TIMEOUT" "$BIN" perf "$@" --json)
    local out="$WORK/out.json" err="$RAW/logs/$scen.$broker.$run.log" rc=0 cmdline
    # quoted as a shell would need it (a selector has spaces); plain words print as before
    cmdline=$(printf '%q ' "${cmd[@]}")
    cmdline=${cmdline% }
    mkdir -p "$RAW/logs"
    echo 0 >"$WORK/rss"
    rss_sampler "$PID" "$WORK/rss" &
    SAMPLER_PID=$!
    log "$broker $scen run $run/$RUNS: $cmdline"
    local cpu0 cpu1 t0 t1
    cpu0=$(python3 bench/proc_cpu.py "$PID" || true)
    t0=$EPOCHREALTIME
    # in the background and waited for, so that a signal reaches the trap at once
    "${cmd[@]}" >"$out" 2>"$err" &
    RUN_PID=$!
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    t1=$EPOCHREALTIME
    cpu1=$(python3 bench/proc_cpu.py "$PID" || true)
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    python3 - "$broker" "$scen" "$run" "$n" "$rc" "$(cat "$WORK/rss")" "$out" "$RAW" "$cmdline" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$cpu0" "$cpu1" "$t0" "$t1" <<'PY'
import json, sys
broker, scen, run, n, rc, rss, out, raw, cmd, load, cpu0, cpu1, t0, t1 = sys.argv[1:15]
text = open(out).read().strip().splitlines()
try:
    result = json.loads(text[-1])
except Exception:
    result = {"ok": False, "error": f"no JSON line (exit status {rc}{', timed out' if rc == '124' else ''})",
              "msgs_per_sec": 0, "lost": None, "duplicated": None}
if rc == "124":
    result["error"] = (result.get("error") or "") + " [killed by timeout]"
with open(f"{raw}/{scen}.{broker}.jsonl", "a") as f:
    f.write(json.dumps(result, sort_keys=True) + "\n")
rec = {"broker": broker, "scenario": scen, "run": int(run), "n": int(n), "exit": int(rc),
       "peak_rss_kb": int(rss or 0), "loadavg": load, "cmd": cmd, "result": result}
# Broker CPU over the run (bench/proc_cpu.py before and after; none if the broker died).
wall = float(t1) - float(t0)
if cpu0 and cpu1 and wall > 0:
    cpu = max(0.0, float(cpu1) - float(cpu0))
    # per delivered MESSAGE frame; the scheduled scenario delivers none: per message sent
    count = result.get("received") or (result.get("sent") if "bytes_per_message" in result else 0)
    rec.update({"broker_cpu_secs": round(cpu, 3), "wall_secs": round(wall, 3),
                "broker_cores": round(cpu / wall, 3),
                "cpu_us_per_msg": round(cpu * 1e6 / count, 3) if count else None})
with open(f"{raw}/runs.jsonl", "a") as f:
    f.write(json.dumps(rec, sort_keys=True) + "\n")
cpu_txt = (f", broker {rec['broker_cores']} cores, {rec['cpu_us_per_msg']} us CPU/msg"
           if "broker_cores" in rec else ", broker CPU not read")
if "bytes_per_message" in result:  # the scheduled scenario receives nothing: its figure is memory
    print(f"  -> {result.get('bytes_per_message')} bytes per scheduled message, "
          f"{result.get('sent_per_sec')} sent/s{cpu_txt}, {result.get('verdict', result.get('error'))}", file=sys.stderr)
else:
    print(f"  -> {result.get('msgs_per_sec')} msgs/s, p50 {result.get('p50_us')} us, "
          f"p99 {result.get('p99_us')} us{cpu_txt}, {result.get('verdict', result.get('error'))}", file=sys.stderr)
PY
}

# run_pairs BROKER N: the scaling scenario, P independent queue pairs for each P of $PAIRS
# (n messages in total over the P queues), RUNS runs of each, recorded as scenario pairs-P.
run_pairs() {
    local broker=$1 n=$2 np p run dest
    np=$(nonpersistent_args "$broker")
    for p in $PAIRS; do
        for run in $(seq 1 "$RUNS"); do
            dest="bench-pairs$p-$run-$(date +%s)"
            # shellcheck disable=SC2086 # $np is zero or two words
            run_one "$broker" "pairs-$p" "$run" "$n" queue "${CONN_ARGS[@]}" \
                --destination "/queue/$dest" -P "$p" -C "$p" --queues "$p" -n "$n" -s 256 $np --ack auto
        done
    done
}

# fresh_broker BROKER: stops BROKER and starts a new process of it (WrenMQ with an empty data
# dir), for the conns scenario. It measures RSS growth per connection, which memory a broker's
# heap grew to and freed in the scenarios before (the warm-up's included) would hide: on a warm
# WrenMQ 2,000 connections fit in already-mapped memory and show ~0.3 KiB each, on a fresh one
# ~24 KiB in the first run and ~12 KiB in the next.
fresh_broker() {
    local broker=$1
    log "$broker: a fresh process for the conns scenario"
    "stop_$broker"
    case "$broker" in wrenmq | baseline) rm -rf "${WORK:?}/$broker" ;; esac
    "start_$broker"
    echo "rss_${broker}_fresh_kb=$(rss_kib "$PID")" >>"$RAW/meta.txt"
}

run_scenarios() {
    local broker=$1 scen n np
    np=$(nonpersistent_args "$broker")
    if [ "${WARMUP:-1}" = 1 ]; then
        n=$(($(n_for q1 "$broker") / 5))
        log "$broker warm-up: q1 with n=$n, not recorded"
        # shellcheck disable=SC2086 # $np is zero or two words
        timeout "$RUN_TIMEOUT" "$BIN" perf queue "${CONN_ARGS[@]}" --destination "/queue/bench-warmup-$(date +%s)" \
            -n "$n" -s 256 $np --json >"$RAW/logs/warmup.$broker.json" 2>"$RAW/logs/warmup.$broker.log" ||
            log "$broker warm-up failed (see $RAW/logs/warmup.$broker.log)"
    fi
    echo "cpu_tree_$broker=$(python3 bench/proc_cpu.py "$PID" --tree || echo gone)" >>"$RAW/meta.txt"
    local conns=0
    for scen in $SCENARIOS; do
        if [ "$broker" = echo ] && [[ "$ECHO_SCENARIOS" != *" $scen "* ]]; then continue; fi
        if [ "$broker" != wrenmq ] && [[ "$WRENMQ_ONLY" == *" $scen "* ]]; then continue; fi
        # conns runs last, on a fresh process (fresh_broker), so the others share one process
        if [ "$scen" = conns ]; then conns=1; else run_scenario "$broker" "$scen"; fi
    done
    if [ "$conns" = 1 ]; then
        fresh_broker "$broker"
        run_scenario "$broker" conns
    fi
}

# run_scenario BROKER SCEN: RUNS runs of one scenario against the running broker.
run_scenario() {
    local broker=$1 scen=$2 run n np dest
    np=$(nonpersistent_args "$broker")
    n=$(n_for "$scen" "$broker")
    if [ "$scen" = pairs ]; then
        run_pairs "$broker" "$n"
        return
    fi
    for run in $(seq 1 "$RUNS"); do
        dest="bench-$scen-$run-$(date +%s)"
        # shellcheck disable=SC2086 # $np is zero or two words
        case "$scen" in
            q1) run_one "$broker" "$scen" "$run" "$n" queue "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -P 1 -C 1 -n "$n" -s 256 $np --ack auto ;;
            q1p) run_one "$broker" "$scen" "$run" "$n" queue "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -P 1 -C 1 -n "$n" -s 256 --persistent true \
                    --receipt-every 100 --ack client-individual ;;
            q4) run_one "$broker" "$scen" "$run" "$n" queue "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -P 4 -C 4 -n "$n" -s 1024 $np --ack auto ;;
            fanout) run_one "$broker" "$scen" "$run" "$n" fanout "${CONN_ARGS[@]}" \
                    --destination "/topic/$dest" -C 10 -n "$n" -s 100 $np ;;
            latency) run_one "$broker" "$scen" "$run" $((5000 * LAT_TIME)) latency "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -r 5000 -t "$LAT_TIME" -s 256 $np ;;
            latency-50k) run_one "$broker" "$scen" "$run" $((50000 * LAT_TIME)) latency "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -r 50000 -t "$LAT_TIME" -s 256 $np ;;
            conns) run_one "$broker" "$scen" "$run" 2000 connections "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -k 2000 --broker-pid "$PID"
                sleep 3 ;; # let the broker close the 2000 connections before the next run
            fanout-sel) run_one "$broker" "$scen" "$run" "$n" fanout "${CONN_ARGS[@]}" \
                    --destination "/topic/$dest" -C 10 -n "$n" -s 100 $np \
                    --property-cycle color=red,blue --selector "color = 'red'" --selector "color = 'blue'" ;;
            q1-prio) run_one "$broker" "$scen" "$run" "$n" queue "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -P 1 -C 1 -n "$n" -s 256 $np --ack auto \
                    --priority-cycle 0-9 ;;
            q1-excl | q1-lvq | q1-stream) run_one "$broker" "$scen" "$run" "$n" queue "${CONN_ARGS[@]}" \
                    --destination "/queue/kind-${scen#q1-}.$dest" -P 1 -C 1 -n "$n" -s 256 $np --ack auto ;;
            replay) run_one "$broker" "$scen" "$run" "$n" replay "${CONN_ARGS[@]}" \
                    --destination "/queue/kind-stream.$dest" -n "$n" -s 256 --persistent true \
                    --receipt-every 1000 --broker-pid "$PID" ;;
            sched) run_one "$broker" "$scen" "$run" "$n" scheduled "${CONN_ARGS[@]}" \
                    --destination "/queue/$dest" -n "$n" -s 16 --delay-ms 3600000 $np \
                    --receipt-every 1000 --broker-pid "$PID" ;;
            *) die "unknown scenario $scen" ;;
        esac
    done
}

# ---- main ----------------------------------------------------------------------------------
raise_nofile # the connections scenario needs > 2000 descriptors on both ends
for peer in rabbitmq activemq; do
    if bench/peers.sh status 2>/dev/null | grep -q "^$peer *running"; then
        die "$peer is already running (not started by this script): stop it first, one broker at a time"
    fi
done

if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    cargo build --release
fi
case " $BROKERS " in
    *" rabbitmq "* | *" activemq "*) [ "${NO_INSTALL:-0}" = 1 ] || bench/peers.sh install ;;
esac

# fresh raw results for this run
rm -rf "$RAW"
mkdir -p "$RAW/logs"
{
    echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '-dirty')"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -srm)"
    echo "rustc=$(rustc --version 2>/dev/null || echo unknown)"
    for p in rabbitmq-server erlang-base activemq openjdk-17-jre-headless; do
        echo "pkg_$p=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo none)"
    done
    echo "runs=$RUNS"
    echo "quick=$QUICK"
    echo "warmup=${WARMUP:-1}"
    echo "window=$WINDOW"
    echo "latency_secs=$LAT_TIME"
    echo "run_timeout=$RUN_TIMEOUT"
    echo "brokers=$BROKERS"
    echo "scenarios=$SCENARIOS"
    echo "pairs=$PAIRS"
    echo "broker_bin=$BROKER_BIN"
    echo "broker_version=$("$BROKER_BIN" --version 2>/dev/null | head -1)"
    echo "baseline_bin=${BASELINE_BIN:-}"
    echo "baseline=$BASELINE"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/meta.txt"

for broker in $BROKERS; do
    log "=== $broker ==="
    echo "loadavg_${broker}_start=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.txt"
    "start_$broker"
    echo "rss_${broker}_idle_kb=$(rss_kib "$PID")" >>"$RAW/meta.txt"
    run_scenarios "$broker"
    "stop_$broker"
    echo "loadavg_${broker}_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.txt"
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.txt"

python3 bench/report.py --baseline "$BASELINE" "$RESULTS_DIR"
log "wrote $RESULTS_DIR/RESULTS.md"
