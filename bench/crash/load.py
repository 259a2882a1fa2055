"""The crash campaign's load and ledger: rounds of mixed load against a real WrenMQ, each
ended by kill -9 at a random moment, then a final round that drains every queue.

Every send, receipt, delivery, acknowledgement and crash goes into a ledger (JSON lines, in
the order they happened, one process so one clock); bench/crash/check.py judges it. This
file decides nothing about correctness: it only records.

Streams (each message carries x-crash-id; a stream is where a copy of it must be consumed):
  any     /queue/crash.any, two consumers, ACKs with receipts, some inside transactions
  tx      /queue/crash.tx, SENDs in transactions of 1-5, committed or aborted
  dur1/2  /topic/crash.topic, two durable subscriptions (client-individual and cumulative acks)
  sched   /queue/crash.sched, AMQ_SCHEDULED_DELAY 200-3000 ms
  dla     /queue/crash.dlq is NACKed until its messages are dead-lettered to crash.DLA
  paged   /queue/crash.paged.q, a 64 KiB address the producer outruns, so it pages to disk
"""

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from stomp_client import Client, Closed  # noqa: E402


class Ledger:
    """Append-only record of what happened, flushed at each crash."""

    def __init__(self, path):
        self.file = open(path, "w")
        self.lifetime = 0

    def write(self, *event):
        self.file.write(json.dumps([time.time(), self.lifetime, *event]) + "\n")

    def flush(self):
        self.file.flush()
        os.fsync(self.file.fileno())


class Run:
    """What every worker shares: the port, the ledger, and the flag that stops producers."""

    def __init__(self, port, ledger, rng):
        self.port, self.ledger, self.rng = port, ledger, rng
        self.produce = True
        self.seq = 0
        self.admin_port = None

    def next_id(self, stream):
        self.seq += 1
        return f"{stream}-{self.ledger.lifetime}-{self.seq}"


async def paced(rate, run, body):
    """Calls `body()` about `rate` times a second until producing stops or the broker dies."""
    interval = 1.0 / rate
    next_at = time.monotonic()
    while run.produce:
        await body()
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_at = time.monotonic()


async def receipted(run, future, *event):
    """Records `event` once the receipt arrives; a lost connection just ends the wait."""
    try:
        await future
    except Closed:
        return
    run.ledger.write(*event)


def spawn(coro, pending):
    task = asyncio.ensure_future(coro)
    pending.add(task)
    task.add_done_callback(pending.discard)


async def producer(run, stream, dest, rate, size, window=64, extra=None):
    """Persistent SENDs with a receipt each, at most `window` unanswered."""
    client = await Client.connect(run.port)
    pending = set()
    body = os.urandom(size // 2).hex().encode()

    async def one():
        while len(pending) >= window:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        mid = run.next_id(stream)
        headers = {"destination": dest, "persistent": "true", "x-crash-id": mid}
        more = extra(run.rng) if extra else {}
        headers.update(more)
        run.ledger.write("sent", stream, mid, more)
        spawn(receipted(run, client.request("SEND", headers, body), "receipted", mid), pending)
        await client.drain()

    try:
        await paced(rate, run, one)
        if pending:
            await asyncio.wait(pending, timeout=10)
    finally:
        client.close()


async def tx_producer(run, rate):
    """Transactions of 1-5 SENDs; one in five is aborted, the rest committed with a receipt."""
    client = await Client.connect(run.port)
    pending = set()
    counter = [0]

    async def one():
        counter[0] += 1
        tx = f"tx-{run.ledger.lifetime}-{counter[0]}"
        client.send("BEGIN", {"transaction": tx})
        mids = []
        for _ in range(run.rng.randint(1, 5)):
            mid = run.next_id("tx")
            mids.append(mid)
            client.send(
                "SEND",
                {"destination": "/queue/crash.tx", "persistent": "true", "transaction": tx, "x-crash-id": mid},
                b"tx-body",
            )
        if run.rng.random() < 0.2:
            run.ledger.write("tx_abort", tx, mids)
            client.send("ABORT", {"transaction": tx})
        else:
            run.ledger.write("tx_commit_sent", tx, mids)
            spawn(receipted(run, client.request("COMMIT", {"transaction": tx}), "tx_committed", tx), pending)
        await client.drain()

    try:
        await paced(rate, run, one)
        if pending:
            await asyncio.wait(pending, timeout=10)
    finally:
        client.close()


async def consumer(run, stream, dest, ack="client-individual", connect=None, subscribe=None,
                   tx_every=0, nack=False, rate=None, stop_when_quiet=None):
    """Subscribes and acknowledges (or NACKs) what arrives, each with a receipt.

    ack "client" acknowledges cumulatively: one ACK covers every message delivered before it
    on the subscription that is not yet acknowledged. `tx_every` > 0 puts every so many ACKs
    in a transaction of their own. `stop_when_quiet` (seconds) ends the consumer once nothing
    arrives for that long (the final drain)."""
    client = await Client.connect(run.port, connect)
    headers = {"destination": dest, "id": "s", "ack": ack}
    headers.update(subscribe or {})
    client.send("SUBSCRIBE", headers)
    pending = set()
    unacked = []  # delivered on this connection, not yet covered by an ACK (cumulative mode)
    counter = 0
    try:
        while True:
            frame = await client.next_message(stop_when_quiet or 0.5)
            if frame is None:
                if stop_when_quiet:
                    break
                continue
            mid = frame.headers.get("x-crash-id", "?")
            run.ledger.write("delivered", stream, mid, frame.headers.get("redelivered", "false"))
            ack_id = frame.headers.get("ack", "")
            if nack:
                run.ledger.write("nack_sent", stream, mid)
                client.send("NACK", {"id": ack_id})
                continue
            counter += 1
            if ack == "client":
                unacked.append(mid)
                if counter % 3:
                    continue  # acknowledge every third message, covering the two before
                covered, unacked = unacked, []
            else:
                covered = [mid]
            if tx_every and counter % tx_every == 0:
                tx = f"atx-{stream}-{run.ledger.lifetime}-{counter}"
                client.send("BEGIN", {"transaction": tx})
                client.send("ACK", {"id": ack_id, "transaction": tx})
                run.ledger.write("ack_sent", stream, covered)
                future = client.request("COMMIT", {"transaction": tx})
            else:
                run.ledger.write("ack_sent", stream, covered)
                future = client.request("ACK", {"id": ack_id})
            spawn(receipted(run, future, "acked", stream, covered), pending)
            if rate:
                await asyncio.sleep(1.0 / rate)
    except Closed:
        pass
    finally:
        if ack == "client" and unacked and stop_when_quiet and not client.closed.is_set():
            # the final drain: the last few of a cumulative subscription
            run.ledger.write("ack_sent", stream, unacked)
            last = client.request("ACK", {"id": ack_id})
            spawn(receipted(run, last, "acked", stream, unacked), pending)
        if pending:
            await asyncio.wait(pending, timeout=10)
        client.close()


def durable(n):
    return {"client-id": f"crash-dur{n}"}, {"durable-subscription-name": f"dur{n}"}


def consumers(run, quiet=None):
    c1, s1 = durable(1)
    c2, s2 = durable(2)
    return [
        consumer(run, "any", "/queue/crash.any", tx_every=5, stop_when_quiet=quiet),
        consumer(run, "any", "/queue/crash.any", stop_when_quiet=quiet),
        consumer(run, "tx", "/queue/crash.tx", tx_every=4, stop_when_quiet=quiet),
        consumer(run, "dur1", "/topic/crash.topic", connect=c1, subscribe=s1, stop_when_quiet=quiet),
        consumer(run, "dur2", "/topic/crash.topic", ack="client", connect=c2, subscribe=s2, stop_when_quiet=quiet),
        consumer(run, "sched", "/queue/crash.sched", stop_when_quiet=quiet),
        consumer(run, "dlq", "/queue/crash.dlq", nack=True, stop_when_quiet=quiet),
        consumer(run, "dla", "/queue/crash.DLA", stop_when_quiet=quiet),
        # slower than its producer, so its address fills and pages (none in the final drain)
        consumer(run, "paged", "/queue/crash.paged.q", rate=None if quiet else 60,
                 subscribe={"activemq.prefetchSize": "10"}, stop_when_quiet=quiet),
    ]


def producers(run):
    def sched(rng):
        return {"AMQ_SCHEDULED_DELAY": str(rng.randint(200, 3000))}

    return [
        producer(run, "any", "/queue/crash.any", rate=800, size=256),
        tx_producer(run, rate=60),
        producer(run, "topic", "/topic/crash.topic", rate=200, size=512),
        producer(run, "sched", "/queue/crash.sched", rate=80, size=128, extra=sched),
        producer(run, "dlq", "/queue/crash.dlq", rate=60, size=128),
        producer(run, "paged", "/queue/crash.paged.q", rate=200, size=2048),
    ]


class Broker:
    """The broker process, started on a fixed config and data directory, killed with -9."""

    def __init__(self, binary, config, log_path, port):
        self.binary, self.config, self.log_path, self.port = binary, config, log_path, port
        self.proc = None

    def start(self, wait=60.0):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [self.binary, "--config", self.config], stdout=log, stderr=log,
            env=dict(os.environ, RUST_LOG="warn"),
        )
        started = time.monotonic()
        deadline = started + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"broker did not listen within {wait}s; see {self.log_path}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=60)


async def crash_round(run, broker, rng, min_s, max_s):
    """Load until a kill -9 at a random moment; returns the seconds the load ran."""
    run.produce = True
    tasks = [asyncio.ensure_future(c) for c in consumers(run)]
    await asyncio.sleep(0.2)  # durable subscriptions exist before the first topic SEND
    tasks += [asyncio.ensure_future(p) for p in producers(run)]
    uptime = rng.uniform(min_s, max_s)
    await asyncio.sleep(uptime * 0.8)
    if run.admin_port:  # is the paged address really paging? (the checker reports the largest)
        try:
            paged = await asyncio.get_running_loop().run_in_executor(None, queue_field, run.admin_port,
                                                                     "messages_paged")
            run.ledger.write("paged_sample", paged.get("crash.paged.q", 0))
        except OSError:
            pass
    await asyncio.sleep(uptime * 0.2)
    run.ledger.write("crash")
    broker.kill9()
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        if not task.done():
            task.cancel()
        elif task.exception() and not isinstance(task.exception(), Closed):
            run.ledger.write("worker_error", repr(task.exception()))
    run.produce = False
    return uptime


def queue_field(admin_port, field):
    """`field` of each crash.* queue, from the admin API."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/api/v1/queues?limit=500", timeout=10) as r:
        queues = json.load(r)
    return {q["name"]: q[field] for q in queues["items"] if q["name"].startswith("crash.")}


def queue_totals(admin_port):
    """Messages each crash.* queue still holds (ready, paged, in flight, scheduled)."""
    return queue_field(admin_port, "messages")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-uptime", type=float, default=1.0)
    parser.add_argument("--max-uptime", type=float, default=4.0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    ledger = Ledger(args.ledger)
    run = Run(args.port, ledger, rng)
    run.admin_port = args.admin_port
    broker = Broker(args.binary, args.config, args.log, args.port)
    starts = []
    for n in range(args.rounds):
        ledger.lifetime = n
        starts.append(broker.start())
        uptime = await crash_round(run, broker, rng, args.min_uptime, args.max_uptime)
        ledger.flush()
        print(f"round {n + 1}/{args.rounds}: killed after {uptime:.1f}s "
              f"(start took {starts[-1]:.2f}s)", flush=True)

    # The final lifetime: no producers, no kill; every consumer drains until quiet (longer
    # than the longest schedule delay), then the admin API must show every crash.* queue empty.
    ledger.lifetime = args.rounds
    starts.append(broker.start())
    run.produce = False
    await asyncio.gather(*consumers(run, quiet=6.0), return_exceptions=True)
    totals = queue_totals(args.admin_port)
    ledger.write("final_queues", totals)
    code = broker.stop()
    ledger.write("final_stop", code)
    ledger.flush()
    print(json.dumps({"rounds": args.rounds, "start_s_max": round(max(starts), 2),
                      "start_s_mean": round(sum(starts) / len(starts), 3), "final_queues": totals}))


if __name__ == "__main__":
    asyncio.run(main())
