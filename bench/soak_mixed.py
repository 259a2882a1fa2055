#!/usr/bin/env python3
"""bench/soak_mixed.py: the reliability campaign's long soak (issue 15), started by
bench/soak_mixed.sh against a release WrenMQ with STOMP, TLS and WebSocket acceptors.

For --seconds (an hour by default), all at once:
- fast: persistent SENDs to /queue/soak.fast with a receipt each; one consumer takes them at
  once (client-individual ACKs) and times each first delivery (send to arrival: the p99
  column); every few seconds a vanishing consumer (over TCP, TLS or WebSocket) joins, takes a
  few, acknowledges some and drops its connection without a word, so the rest is redelivered;
- slow: /queue/soak.slow (a 256 KiB address that pages) fed a little faster than its one
  consumer takes it, through a window of 5;
- topic: /topic/soak.news sent over TLS, received by two WebSocket, one TLS and one TCP
  subscriber, each with heart-beats, each checking the sequence has no gap;
- churn (a second process, --role churn): CHURN connection slots, each connecting (TCP, some
  WebSocket, some TLS; half with heart-beats), subscribing, staying 10-50 s, then leaving by
  DISCONNECT or by vanishing.
- probe (a third process, --role probe): 50 persistent SENDs/s with a receipt each on
  /queue/soak.probe and their consumer, timed in a process that does nothing else, beside a
  thread that times a 4 KiB write + fdatasync every 50 ms on the journal's filesystem (the
  disk's own pace): the stability figure, apart from the main role's busy event loop.
Every second: the broker's RSS and open fds, the second's fast-path and probe latency, the
disk probe's slowest fdatasync, steal and iowait, the CPU of the broker and of each load
process, the broker's disk writes and the journal's group commits (from /metrics); a CSV.
At the end producers stop, queues drain, and the run checks: every receipted fast message was
acknowledged by someone; the slow queue arrived whole and in order; no subscriber saw a gap;
no unexpected ERROR. Prints one JSON summary line; exit 1 if a check failed.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import ssl as ssl_module
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stomp_client import Client, Closed  # noqa: E402

HEARTBEAT_MS = 10000


def tls_context():
    context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl_module.CERT_NONE  # the soak's self-signed certificate
    return context


class Ports:
    def __init__(self, args):
        self.tcp, self.tls, self.ws = args.port, args.tls_port, args.ws_port
        self.context = tls_context()

    async def connect(self, kind, headers=None, heartbeat=False):
        headers = dict(headers or {})
        if heartbeat:
            headers["heart-beat"] = f"{HEARTBEAT_MS},{HEARTBEAT_MS}"
        if kind == "tls":
            client = await Client.connect(self.tls, headers, ssl=self.context)
        elif kind == "ws":
            client = await Client.connect(self.ws, headers, ws_path="/stomp")
        else:
            client = await Client.connect(self.tcp, headers)
        if heartbeat:
            client.beat_task = asyncio.ensure_future(beat(client))
        return client


async def beat(client):
    """Sends the heart-beats promised at CONNECT (an EOL each period, well within it)."""
    try:
        while not client.closed.is_set():
            await asyncio.sleep(HEARTBEAT_MS / 1000 / 2)
            client.send_raw(b"\n")
    except (Closed, ConnectionError, OSError):
        pass


class State:
    """Everything the main role counts; `second` holds the counters of the current second."""

    def __init__(self):
        self.producing = True
        self.fast_receipted = set()
        self.fast_acked = set()
        self.fast_sent = 0
        self.slow_sent = 0
        self.slow_received = []
        self.topic_sent = 0
        self.topic_received = {}
        self.topic_gaps = {}
        self.vanished = 0
        self.errors = []
        self.latencies = []
        self.probe_delivery = []  # µs, this second's, from the probe process
        self.probe_receipt = []
        self.disk_fsync = []  # µs, this second's fdatasyncs of the disk probe
        self.all_latencies = []  # per second: the fast path's latencies (s)
        self.all_probe = []  # per second: the probe's delivery latencies (µs)
        self.all_fsync = []  # per second: the disk probe's fdatasync times (µs)
        self.churn = {}

    def error(self, where, frame_or_text):
        self.errors.append(f"{where}: {frame_or_text}")


async def paced(rate, state, body):
    interval = 1.0 / rate
    next_at = time.monotonic()
    while state.producing:
        await body()
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_at = time.monotonic()


async def fast_producer(ports, state, rate, size):
    client = await ports.connect("tcp")
    body = b"f" * size
    pending = set()
    seq = [0]

    async def confirm(future, n):
        try:
            await future
            state.fast_receipted.add(n)
        except Closed:
            state.error("fast producer", "connection lost")

    async def one():
        while len(pending) >= 64:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        seq[0] += 1
        n = seq[0]
        future = client.request("SEND", {"destination": "/queue/soak.fast", "persistent": "true",
                                         "x-seq": n, "x-sent": repr(time.time())}, body)
        task = asyncio.ensure_future(confirm(future, n))
        pending.add(task)
        task.add_done_callback(pending.discard)
        state.fast_sent += 1
        await client.drain()

    await paced(rate, state, one)
    if pending:
        await asyncio.wait(pending, timeout=30)
    client.close()


async def fast_consumer(ports, state):
    client = await ports.connect("tcp", heartbeat=True)
    client.send("SUBSCRIBE", {"destination": "/queue/soak.fast", "id": "f", "ack": "client-individual"})
    while True:
        frame = await client.next_message(1.0)
        if frame is None:
            if not state.producing and _fast_done(state):
                break
            continue
        n = int(frame.headers["x-seq"])
        if frame.headers.get("redelivered") != "true":
            state.latencies.append(time.time() - float(frame.headers["x-sent"]))
        client.send("ACK", {"id": frame.headers["ack"]})
        state.fast_acked.add(n)
    for e in client.errors:
        state.error("fast consumer", e)
    client.close()


def _fast_done(state):
    return state.fast_receipted <= state.fast_acked


async def vanishing_consumers(ports, state, rng):
    """Every 2-5 s one consumer joins /queue/soak.fast, acknowledges some of what it gets and
    drops its connection; what it held unacknowledged goes to the others."""
    kinds = ["tcp", "tls", "ws"]
    while state.producing:
        await asyncio.sleep(rng.uniform(2, 5))
        try:
            client = await ports.connect(rng.choice(kinds))
            client.send("SUBSCRIBE", {"destination": "/queue/soak.fast", "id": "v",
                                      "ack": "client-individual", "activemq.prefetchSize": "20"})
            for _ in range(rng.randint(5, 30)):
                frame = await client.next_message(1.0)
                if frame is None:
                    break
                if rng.random() < 0.5:
                    client.send("ACK", {"id": frame.headers["ack"]})
                    await client.drain()
                    state.fast_acked.add(int(frame.headers["x-seq"]))
            client.abort()
            state.vanished += 1
        except (Closed, OSError, asyncio.TimeoutError) as e:
            state.error("vanishing consumer", repr(e))


async def slow_producer(ports, state, rate, size):
    client = await ports.connect("tcp")
    body = b"s" * size

    async def one():
        state.slow_sent += 1
        client.send("SEND", {"destination": "/queue/soak.slow", "persistent": "true",
                             "x-seq": state.slow_sent}, body)
        await client.drain()

    await paced(rate, state, one)
    await asyncio.wait_for(client.request("DISCONNECT", {}), 30)
    client.close()


async def slow_consumer(ports, state, per_message_s):
    client = await ports.connect("tcp", heartbeat=True)
    client.send("SUBSCRIBE", {"destination": "/queue/soak.slow", "id": "s",
                              "ack": "client-individual", "activemq.prefetchSize": "5"})
    while True:
        frame = await client.next_message(3.0)
        if frame is None:
            if not state.producing and len(state.slow_received) >= state.slow_sent:
                break
            continue
        state.slow_received.append(int(frame.headers["x-seq"]))
        client.send("ACK", {"id": frame.headers["ack"]})
        if state.producing:
            await asyncio.sleep(per_message_s)
    client.close()


async def topic_producer(ports, state, rate):
    client = await ports.connect("tls")

    async def one():
        state.topic_sent += 1
        client.send("SEND", {"destination": "/topic/soak.news", "x-seq": state.topic_sent}, b"news")
        await client.drain()

    await paced(rate, state, one)
    await asyncio.wait_for(client.request("DISCONNECT", {}), 30)
    client.close()


async def topic_subscriber(ports, state, name, kind, ready):
    client = await ports.connect(kind, heartbeat=True)
    await asyncio.wait_for(client.request("SUBSCRIBE", {"destination": "/topic/soak.news", "id": name}), 10)
    ready.set()
    state.topic_received[name] = 0
    state.topic_gaps[name] = 0
    last = None
    while True:
        frame = await client.next_message(3.0)
        if frame is None:
            if not state.producing:
                break
            continue
        n = int(frame.headers["x-seq"])
        if last is not None and n != last + 1:
            state.topic_gaps[name] += 1
        last = n
        state.topic_received[name] += 1
    for e in client.errors:
        state.error(f"topic subscriber {name}", e)
    client.close()


# ---- churn role ---------------------------------------------------------------------------


async def churn_slot(ports, counters, rng, slot, stop_at):
    await asyncio.sleep(rng.uniform(0, 30))  # spread the first connects over 30 s
    while time.monotonic() < stop_at:
        r = rng.random()
        kind = "tls" if r < 0.05 else "ws" if r < 0.15 else "tcp"
        try:
            client = await ports.connect(kind, heartbeat=rng.random() < 0.5)
        except (Closed, OSError, asyncio.TimeoutError, Exception) as e:
            counters["connect_failures"] += 1
            counters["last_failure"] = repr(e)[:200]
            await asyncio.sleep(1)
            continue
        counters["connects"] += 1
        counters["open"] += 1
        try:
            client.send("SUBSCRIBE", {"destination": f"/topic/soak.churn.{slot % 20}", "id": "c"})
            # under 60 s: a client without heart-beats that says nothing for connection-ttl-ms
            # (60 s) is reaped, as in Artemis
            stay = min(rng.uniform(10, 50), max(0.0, stop_at - time.monotonic()))
            deadline = time.monotonic() + stay
            while time.monotonic() < deadline:
                frame = await client.next_message(deadline - time.monotonic())
                if frame is not None:
                    counters["received"] += 1
            if client.errors:
                counters["errors"] += 1
                counters["last_failure"] = repr(client.errors[0])[:200]
                reason = client.errors[0].headers.get("message", "")[:80]
                counters["error_messages"][reason] = counters["error_messages"].get(reason, 0) + 1
            if rng.random() < 0.3:
                client.abort()
                counters["vanished"] += 1
            else:
                await asyncio.wait_for(client.request("DISCONNECT", {}), 10)
                client.close()
                counters["disconnected"] += 1
        except (Closed, OSError, asyncio.TimeoutError) as e:
            counters["dropped"] += 1
            counters["last_failure"] = repr(e)[:200]
            reason = client.errors[0].headers.get("message", "")[:80] if client.errors else repr(e)[:80]
            counters["error_messages"][reason] = counters["error_messages"].get(reason, 0) + 1
            client.close()
        finally:
            counters["open"] -= 1


async def churn_producer(ports, stop_at):
    client = await ports.connect("tcp")
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        client.send("SEND", {"destination": f"/topic/soak.churn.{n % 20}"}, b"churn")
        await client.drain()
        await asyncio.sleep(0.05)
    client.close()


async def churn_main(args):
    ports = Ports(args)
    rng = random.Random(args.seed + 1)
    counters = {k: 0 for k in ["open", "connects", "connect_failures", "disconnected", "vanished",
                               "dropped", "errors", "received"]}
    counters["last_failure"] = ""
    counters["error_messages"] = {}  # why churn connections ended early, by ERROR message
    stop_at = time.monotonic() + args.seconds
    tasks = [asyncio.ensure_future(churn_slot(ports, counters, rng, i, stop_at)) for i in range(args.churn)]
    tasks.append(asyncio.ensure_future(churn_producer(ports, stop_at)))
    while not all(t.done() for t in tasks):
        print(json.dumps(counters), flush=True)
        await asyncio.sleep(1)
    print(json.dumps(counters), flush=True)


# ---- probe role ---------------------------------------------------------------------------


def disk_probe(directory, stop_at, out):
    """The disk's own pace, beside the broker's: a 4 KiB write and fdatasync every 50 ms to a
    file on the journal's filesystem. A latency spike that shows here too is the machine's
    disk (a shared virtual disk stalls now and then), not the broker."""
    path = os.path.join(directory, "disk-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = b"d" * 4096
    try:
        while time.monotonic() < stop_at:
            t = time.monotonic()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            out.append(time.monotonic() - t)
            time.sleep(0.05)
    finally:
        os.close(fd)
        os.unlink(path)


async def probe_main(args):
    """A light process of its own that times persistent messages at a low, steady rate (one
    producer, one consumer, /queue/soak.probe): the latency a well-behaved client sees, apart
    from the main role's event loop, which also serves the TLS and WebSocket traffic. Prints
    each second's latencies (first delivery, and the RECEIPT) as one JSON line."""
    ports = Ports(args)
    consumer = await ports.connect("tcp", heartbeat=True)
    consumer.send("SUBSCRIBE", {"destination": "/queue/soak.probe", "id": "p", "ack": "client-individual"})
    producer = await ports.connect("tcp", heartbeat=True)
    stop_at = time.monotonic() + args.seconds
    second = {"delivery": [], "receipt": []}

    async def receive():
        while True:
            frame = await consumer.next_message(1.0)
            if frame is None:
                if time.monotonic() > stop_at + 30:
                    return
                continue
            second["delivery"].append(time.time() - float(frame.headers["x-sent"]))
            consumer.send("ACK", {"id": frame.headers["ack"]})

    async def timed_send():
        sent = time.time()
        await producer.request("SEND", {"destination": "/queue/soak.probe", "persistent": "true",
                                        "x-sent": repr(sent)}, b"p" * 256)
        second["receipt"].append(time.time() - sent)

    fsyncs = []
    if args.disk_probe_dir:
        threading.Thread(target=disk_probe, args=(args.disk_probe_dir, stop_at, fsyncs), daemon=True).start()

    async def report():
        while time.monotonic() < stop_at + 5:
            await asyncio.sleep(1)
            now = {k: [round(v * 1e6) for v in vs] for k, vs in second.items()}
            second["delivery"], second["receipt"] = [], []
            taken, fsyncs[:] = fsyncs[:], []
            now["fsync"] = [round(v * 1e6) for v in taken]
            print(json.dumps(now), flush=True)

    receiver = asyncio.ensure_future(receive())
    reporter = asyncio.ensure_future(report())
    pending = set()
    interval = 1.0 / args.probe_rate
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        task = asyncio.ensure_future(timed_send())
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if pending:
        await asyncio.wait(pending, timeout=30)
    await reporter
    receiver.cancel()
    producer.close()
    consumer.close()


# ---- main role ----------------------------------------------------------------------------


class Machine:
    """Per-second figures of the machine and the processes sharing it, so a latency swing can
    be told apart from a busy load tool or a hypervisor taking the CPU (steal): /proc/stat's
    steal and iowait, the CPU of the broker and of each load process, and the journal's group
    commits (count, mean and slowest-bucket time) from the broker's /metrics."""

    def __init__(self, args, pids):
        self.admin_port = args.admin_port
        self.pids = pids  # name -> pid
        self.last = None

    @staticmethod
    def _stat():
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        return sum(cpu), cpu[4], cpu[7]  # total, iowait, steal

    @staticmethod
    def _ticks(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
            rest = s[s.rindex(")") + 2:].split()
            return int(rest[11]) + int(rest[12])
        except (OSError, ValueError):
            return 0

    async def _metrics(self):
        if not self.admin_port:
            return {}
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.admin_port), 2)
            writer.write(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            text = (await asyncio.wait_for(reader.read(), 2)).decode(errors="replace")
            writer.close()
        except (OSError, asyncio.TimeoutError):
            return {}
        out, buckets = {}, []
        for line in text.splitlines():
            if line.startswith("wrenmq_journal_commit_seconds_sum"):
                out["sum"] = float(line.split()[-1])
            elif line.startswith("wrenmq_journal_commit_seconds_count"):
                out["count"] = float(line.split()[-1])
            elif line.startswith("wrenmq_journal_commit_seconds_bucket"):
                le = line.split('le="')[1].split('"')[0]
                buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
        out["buckets"] = buckets
        return out

    def _written(self):
        try:
            with open(f"/proc/{self.pids['broker']}/io") as f:
                for line in f:
                    if line.startswith("write_bytes:"):
                        return int(line.split()[1])
        except (OSError, KeyError):
            pass
        return 0

    async def sample(self):
        """The figures since the previous call (None on the first)."""
        written = self._written()
        total, iowait, steal = self._stat()
        ticks = {name: self._ticks(pid) for name, pid in self.pids.items()}
        metrics = await self._metrics()
        now = (time.monotonic(), total, iowait, steal, ticks, metrics, written)
        last, self.last = self.last, now
        if last is None:
            return None
        wall = now[0] - last[0]
        hz = os.sysconf("SC_CLK_TCK")
        d_total = max(1, total - last[1])
        row = {
            "steal_pct": round(100 * (steal - last[3]) / d_total, 1),
            "iowait_pct": round(100 * (iowait - last[2]) / d_total, 1),
            "broker_written_kib": round((written - last[6]) / 1024 / wall),
        }
        for name in self.pids:
            row[f"{name}_cores"] = round((ticks[name] - last[4].get(name, 0)) / hz / wall, 2)
        m0, m1 = last[5], metrics
        commits = m1.get("count", 0) - m0.get("count", 0)
        row["commits"] = int(commits)
        row["commit_mean_us"] = round(1e6 * (m1.get("sum", 0) - m0.get("sum", 0)) / commits) if commits > 0 else 0
        # the smallest bucket bound holding every commit of this second: the slowest commit's bound
        slowest = 0
        before = dict(m0.get("buckets", []))
        for le, n in sorted(m1.get("buckets", [])):
            if n - before.get(le, 0) >= commits:
                slowest = le
                break
        row["commit_slowest_le_us"] = round(slowest * 1e6) if slowest != float("inf") else -1
        return row


async def json_lines(proc):
    """Each JSON line a child role prints on its stdout, until it exits; other lines skipped."""
    while True:
        line = await proc.stdout.readline()
        if not line:
            return
        try:
            yield json.loads(line)
        except ValueError:
            continue


async def read_probe(proc, state):
    async for second in json_lines(proc):
        state.probe_delivery.extend(second.get("delivery", []))
        state.probe_receipt.extend(second.get("receipt", []))
        state.disk_fsync.extend(second.get("fsync", []))


def broker_sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pct(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def read_churn(proc, state):
    async for summary in json_lines(proc):
        state.churn = summary


async def sampler(args, state, csv, started, machine):
    columns = ["secs", "rss_kb", "fds", "fast_sent", "fast_acked", "lat_p50_us", "lat_p99_us",
               "lat_max_us", "slow_backlog", "topic_sent", "vanished", "churn_open", "churn_connects",
               "churn_failures", "errors",
               "probe_n", "probe_p50_us", "probe_max_us", "probe_receipt_max_us", "disk_fsync_max_us",
               "steal_pct", "iowait_pct", "broker_written_kib", "broker_cores", "main_cores", "churn_cores", "probe_cores",
               "commits", "commit_mean_us", "commit_slowest_le_us"]
    csv.write(",".join(columns) + "\n")
    rows = []
    await machine.sample()
    while state.producing:
        await asyncio.sleep(1)
        lat, state.latencies = state.latencies, []
        probe, state.probe_delivery = state.probe_delivery, []
        probe_receipt, state.probe_receipt = state.probe_receipt, []
        fsync, state.disk_fsync = state.disk_fsync, []
        rss, fds = broker_sample(args.pid)
        m = await machine.sample() or {}
        row = [round(time.monotonic() - started, 1), rss, fds, state.fast_sent, len(state.fast_acked),
               round(pct(lat, 0.5) * 1e6), round(pct(lat, 0.99) * 1e6), round(max(lat, default=0) * 1e6),
               state.slow_sent - len(state.slow_received), state.topic_sent, state.vanished,
               state.churn.get("open", 0), state.churn.get("connects", 0),
               state.churn.get("connect_failures", 0) + state.churn.get("dropped", 0) + state.churn.get("errors", 0),
               len(state.errors),
               len(probe), round(pct(probe, 0.5)), max(probe, default=0), max(probe_receipt, default=0),
               max(fsync, default=0)]
        row += [m.get(c, 0) for c in columns[len(row):]]
        csv.write(",".join(str(v) for v in row) + "\n")
        csv.flush()
        rows.append(dict(zip(columns, row)))
        state.all_latencies.append(lat)
        state.all_probe.append(probe)
        state.all_fsync.append(fsync)
    return rows


def p99_by_window(per_second, window_s):
    """p99 (µs) over all samples of each window_s-second window, from per-second sample lists."""
    out = []
    for i in range(0, len(per_second), window_s):
        values = [v for second in per_second[i:i + window_s] for v in second]
        if values:
            out.append(round(pct(values, 0.99)))
    return out


def window(rows, lo, hi, key):
    values = [r[key] for r in rows if lo <= r["secs"] < hi]
    return values


async def main_role(args):
    ports = Ports(args)
    rng = random.Random(args.seed)
    state = State()
    started = time.monotonic()
    churn = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--role", "churn", "--port", str(args.port),
        "--tls-port", str(args.tls_port), "--ws-port", str(args.ws_port), "--seconds", str(args.seconds),
        "--churn", str(args.churn), "--seed", str(args.seed), "--pid", str(args.pid),
        stdout=asyncio.subprocess.PIPE,
    )
    churn_reader = asyncio.ensure_future(read_churn(churn, state))
    probe = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--role", "probe", "--port", str(args.port),
        "--tls-port", str(args.tls_port), "--ws-port", str(args.ws_port), "--seconds", str(args.seconds),
        "--probe-rate", str(args.probe_rate), "--pid", str(args.pid), "--disk-probe-dir", args.disk_probe_dir,
        stdout=asyncio.subprocess.PIPE,
    )
    probe_reader = asyncio.ensure_future(read_probe(probe, state))
    machine = Machine(args, {"broker": args.pid, "main": os.getpid(), "churn": churn.pid, "probe": probe.pid})
    ready = [asyncio.Event() for _ in range(4)]
    consumers = [
        asyncio.ensure_future(fast_consumer(ports, state)),
        asyncio.ensure_future(slow_consumer(ports, state, 1.0 / args.slow_consume_rate)),
    ] + [
        asyncio.ensure_future(topic_subscriber(ports, state, name, kind, ev))
        for (name, kind), ev in zip([("ws1", "ws"), ("ws2", "ws"), ("tls1", "tls"), ("tcp1", "tcp")], ready)
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 30)
    producers = [
        asyncio.ensure_future(fast_producer(ports, state, args.fast_rate, args.size)),
        asyncio.ensure_future(slow_producer(ports, state, args.slow_consume_rate * 1.25, args.size)),
        asyncio.ensure_future(topic_producer(ports, state, args.topic_rate)),
        asyncio.ensure_future(vanishing_consumers(ports, state, rng)),
    ]
    with open(args.csv, "w") as csv:
        sample_task = asyncio.ensure_future(sampler(args, state, csv, started, machine))
        await asyncio.sleep(args.seconds)
        state.producing = False
        rows = await sample_task
    for task in producers:
        try:
            await asyncio.wait_for(task, 60)
        except Exception as e:  # a producer that failed is a finding, not a crash of the soak
            state.error("producer", repr(e))
    drain_started = time.monotonic()
    done, pending = await asyncio.wait(consumers, timeout=600)
    for task in pending:
        task.cancel()
        state.error("drain", "a consumer did not finish draining within 600 s")
    for task in done:
        if task.exception():
            state.error("consumer", repr(task.exception()))
    drain_s = time.monotonic() - drain_started
    await churn.wait()
    await churn_reader
    await probe.wait()
    await probe_reader

    lost = sorted(state.fast_receipted - state.fast_acked)
    slow_ok = state.slow_received == list(range(1, state.slow_sent + 1))
    secs = args.seconds
    early, late = (60, min(600, secs / 2)), (secs - min(600, secs / 2), secs)
    summary = {
        "seconds": secs,
        "fast_sent": state.fast_sent, "fast_receipted": len(state.fast_receipted),
        "fast_lost": len(lost), "vanished_consumers": state.vanished,
        "slow_sent": state.slow_sent, "slow_received": len(state.slow_received), "slow_in_order_whole": slow_ok,
        "topic_sent": state.topic_sent, "topic_received": state.topic_received, "topic_gaps": state.topic_gaps,
        "churn": state.churn, "errors": len(state.errors), "first_errors": state.errors[:5],
        "drain_s": round(drain_s, 1),
        "rss_mib_early_median": round(pct(window(rows, *early, "rss_kb"), 0.5) / 1024, 1),
        "rss_mib_late_median": round(pct(window(rows, *late, "rss_kb"), 0.5) / 1024, 1),
        "rss_mib_max": round(max((r["rss_kb"] for r in rows), default=0) / 1024, 1),
        "fds_early_median": pct(window(rows, *early, "fds"), 0.5),
        "fds_late_median": pct(window(rows, *late, "fds"), 0.5),
        "fds_max": max((r["fds"] for r in rows), default=0),
        "p99_us_early_median": pct(window(rows, *early, "lat_p99_us"), 0.5),
        "p99_us_late_median": pct(window(rows, *late, "lat_p99_us"), 0.5),
        "p99_us_worst_second": max((r["lat_p99_us"] for r in rows), default=0),
        # p99 over every sample of each 10-minute window (6 for an hour): the stability figure
        "fast_p99_us_by_10min": p99_by_window([[v * 1e6 for v in s] for s in state.all_latencies], 600),
        "probe_p99_us_by_10min": p99_by_window(state.all_probe, 600),
        "probe_p99_us_by_minute": p99_by_window(state.all_probe, 60),
        "disk_fsync_p99_us_by_10min": p99_by_window(state.all_fsync, 600),
        # the probe's p99 over the seconds in which no fdatasync of the disk probe took 20 ms or
        # more: the broker's own latency with the disk's stalls left out
        "probe_p99_us_by_10min_calm_disk": p99_by_window(
            [p if max(f, default=0) < 20000 else [] for p, f in zip(state.all_probe, state.all_fsync)], 600),
        "calm_disk_seconds_by_10min": [sum(1 for f in state.all_fsync[i:i + 600] if max(f, default=0) < 20000)
                                       for i in range(0, len(state.all_fsync), 600)],
        "steal_pct_median": pct(window(rows, 0, secs, "steal_pct"), 0.5),
        "broker_cores_median": pct(window(rows, 0, secs, "broker_cores"), 0.5),
        "load_tool_cores_median": pct([r["main_cores"] + r["churn_cores"] + r["probe_cores"] for r in rows], 0.5),
    }
    print(json.dumps(summary), flush=True)
    failed = (lost or not slow_ok or state.errors or any(state.topic_gaps.values())
              or state.churn.get("errors", 0) or state.churn.get("connect_failures", 0))
    sys.exit(1 if failed else 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", default="main", choices=["main", "churn", "probe"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, required=True)
    parser.add_argument("--ws-port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--churn", type=int, default=5000)
    parser.add_argument("--fast-rate", type=float, default=500)
    parser.add_argument("--slow-consume-rate", type=float, default=40)
    parser.add_argument("--topic-rate", type=float, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument("--probe-rate", type=float, default=50)
    parser.add_argument("--disk-probe-dir", default="")
    parser.add_argument("--csv", default="soak_mixed.csv")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    role = {"churn": churn_main, "probe": probe_main, "main": main_role}[args.role]
    asyncio.run(role(args))


if __name__ == "__main__":
    main()
