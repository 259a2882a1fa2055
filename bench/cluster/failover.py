"""The cluster failover campaign (issue 16): three WrenMQ nodes, each in its own network
namespace, raft traffic through a user-space proxy that adds delay and resets connections,
and ROUNDS rounds of faults under a producer and a consumer that keep a ledger.

Run by bench/cluster/failover.sh, which makes the namespaces and the bridge; this file
starts the nodes, the proxy and the load, injects the faults, and judges the ledger:

- lost: receipted, never acked with a receipt, and not there at the end;
- resurrected: acked with a receipt and there at the end;
- duplicated: delivered again at the end after its ack there was receipted;
- minority receipts: a RECEIPT that arrives while the node serving it is cut off from both
  peers, for a SEND written after the cut began (it cannot have been committed);
- failover time: from a fault on the leader to the first RECEIPT from a new connection.

Faults, one per round, chosen with the seed: kill -9 of the leader (restarted after 0.5 s),
kill -9 of a follower, the leader's raft traffic cut for 3 s (clients still reach it), a
follower's link down for 3 s, a follower killed with its data directory wiped.
"""

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from stomp_client import Client, Closed  # noqa: E402

BRIDGE_IP = "10.77.0.254"
RAFT_PORT = 7000
STOMP_PORT = 61613


def node_ip(i):
    return f"10.77.0.{i}"


class Proxy:
    """Raft traffic between nodes: node i reaches node j at BRIDGE_IP:7000+j, and this
    forwards to node j, holding every chunk for a random delay and resetting a connection at
    random (`reset_per_s` per connection per second). `cut` holds the nodes whose raft traffic
    is dropped both ways (a partition of raft, clients untouched)."""

    def __init__(self, delay_ms, reset_per_s, rng):
        self.delay_ms, self.reset_per_s, self.rng = delay_ms, reset_per_s, rng
        self.cut = set()
        self.conns = set()

    async def start(self):
        self.servers = [
            await asyncio.start_server(
                lambda r, w, j=j: self.handle(r, w, j), BRIDGE_IP, RAFT_PORT + j
            )
            for j in (1, 2, 3)
        ]

    def source_node(self, writer):
        ip = writer.get_extra_info("peername")[0]
        return int(ip.rsplit(".", 1)[1])

    def cut_now(self, node):
        self.cut.add(node)
        for c in list(self.conns):
            if node in c[0]:
                c[1].transport.abort()
                c[2].transport.abort()

    async def handle(self, reader, writer, dst):
        src = self.source_node(writer)
        if src in self.cut or dst in self.cut:
            writer.transport.abort()
            return
        try:
            ur, uw = await asyncio.wait_for(
                asyncio.open_connection(node_ip(dst), RAFT_PORT), 2
            )
        except (OSError, asyncio.TimeoutError):
            writer.transport.abort()
            return
        entry = ((src, dst), writer, uw)
        self.conns.add(entry)
        try:
            await asyncio.gather(self.pump(reader, uw, entry), self.pump(ur, writer, entry))
        finally:
            self.conns.discard(entry)
            writer.transport.abort()
            uw.transport.abort()

    async def pump(self, r, w, entry):
        last = time.monotonic()
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if self.delay_ms:
                    await asyncio.sleep(self.rng.uniform(0, self.delay_ms) / 1000)
                now = time.monotonic()
                if self.reset_per_s and self.rng.random() < self.reset_per_s * (now - last):
                    break
                last = now
                w.write(data)
                await w.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            entry[1].transport.abort()
            entry[2].transport.abort()


class Nodes:
    def __init__(self, work, binary):
        self.work, self.binary = work, binary
        self.procs = {}

    def config(self, i):
        peers = ", ".join(
            f'{{ id = {j}, address = "{BRIDGE_IP}:{RAFT_PORT + j}" }}' for j in (1, 2, 3)
        )
        path = os.path.join(self.work, f"node-{i}.toml")
        with open(path, "w") as f:
            f.write(
                f"""[broker]
name = "node-{i}"

[[acceptors]]
name = "stomp"
bind = "{node_ip(i)}:{STOMP_PORT}"

[security]
allow-anonymous = true

[journal]
data-dir = "{self.work}/data-{i}"

[admin]
enabled = false

[cluster]
node-id = {i}
listen = "{node_ip(i)}:{RAFT_PORT}"
peers = [{peers}]
"""
            )
        return path

    def start(self, i):
        log = open(os.path.join(self.work, f"node-{i}.log"), "a")
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", f"wmq-n{i}", self.binary, "--config", self.config(i)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=dict(os.environ, RUST_LOG="info"),
        )

    def kill(self, i):
        p = self.procs.get(i)
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def wipe(self, i):
        shutil.rmtree(os.path.join(self.work, f"data-{i}"), ignore_errors=True)

    def stop_all(self):
        for i in list(self.procs):
            self.kill(i)


async def find_leader(timeout=30.0):
    """A connection to the leader, and the leader's id: any node answers CONNECT (a follower
    relays to the leader), and the leader names itself in CONNECTED's server header."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in (1, 2, 3):
            try:
                c = await Client.connect(STOMP_PORT, host=node_ip(i), timeout=0.5)
                m = re.search(r"\(node-(\d+)\)", c.connected.headers.get("server", ""))
                return (int(m.group(1)) if m else i), c
            except (OSError, Closed, asyncio.TimeoutError):
                pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no leader within {timeout} s")


class Ledger:
    def __init__(self):
        self.sent = set()
        self.receipted = set()
        self.acked = set()
        self.ack_sent = set()  # acks written, receipted or not: may have been applied
        self.delivered = 0
        self.minority_receipts = []
        self.cuts = []  # (node, start, end)
        self.first_receipt_after = []  # fault times waiting for the next new-connection receipt
        self.failovers = []


async def producer(ledger, stop, name):
    n = 0
    while not stop.is_set():
        try:
            node, c = await find_leader()
        except RuntimeError:
            continue
        fresh = True
        try:
            while not stop.is_set():
                body = f"{name}-{n}"
                n += 1
                ledger.sent.add(body)
                written = time.monotonic()
                fut = c.request("SEND", {"destination": "/queue/ledger"}, body.encode())
                await asyncio.wait_for(fut, 15)
                now = time.monotonic()
                ledger.receipted.add(body)
                # A RECEIPT that arrives while the serving node is cut off, for a SEND
                # written after the cut began: nothing can have committed it. (One that
                # arrives after the cut healed may be legitimate: the entry was held and
                # committed by a majority once the links came back.)
                for cut_node, start, end in ledger.cuts:
                    if cut_node == node and written > start + 0.05 and (end is None or now < end):
                        ledger.minority_receipts.append(body)
                if fresh and ledger.first_receipt_after:
                    for t in ledger.first_receipt_after:
                        ledger.failovers.append(now - t)
                    ledger.first_receipt_after.clear()
                fresh = False
        except (Closed, asyncio.TimeoutError, OSError):
            pass
        finally:
            c.abort()


async def consumer(ledger, stop, rng):
    while not stop.is_set():
        try:
            _, c = await find_leader()
        except RuntimeError:
            continue
        try:
            c.send("SUBSCRIBE", {"destination": "/queue/ledger", "id": "s", "ack": "client-individual",
                                 "activemq.prefetchSize": "50"})
            pending = []
            while not stop.is_set():
                m = await c.next_message(1.0)
                if m is None:
                    continue
                ledger.delivered += 1
                if rng.random() < 0.9:
                    body = m.body.decode()
                    ledger.ack_sent.add(body)
                    fut = c.request("ACK", {"id": m.headers["ack"]})
                    fut.add_done_callback(
                        lambda f, b=body: (not f.cancelled() and f.exception() is None) and ledger.acked.add(b)
                    )
                    pending.append(fut)
                    pending = [f for f in pending if not f.done()]
        except (Closed, asyncio.TimeoutError, OSError):
            pass
        finally:
            # Also when cancelled at the end: the broker must see the consumer go, or the
            # messages it holds unacked would not reach the final drain.
            c.abort()


def link(i, up):
    subprocess.run(["ip", "link", "set", f"wv{i}", "up" if up else "down"], check=True)


async def leader_now():
    i, c = await find_leader()
    c.abort()
    return i


async def campaign(args):
    rng = random.Random(args.seed)
    work = args.work
    nodes = Nodes(work, args.binary)
    proxy = Proxy(args.delay_ms, args.reset_per_s, rng)
    await proxy.start()
    for i in (1, 2, 3):
        nodes.start(i)
    ledger = Ledger()
    stop = asyncio.Event()
    await leader_now()
    # The proxy's pumps are cut mid-read at the end; their cancellations are not findings.
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: None)
    load = [asyncio.ensure_future(producer(ledger, stop, f"p{k}")) for k in range(args.producers)]
    load.append(asyncio.ensure_future(consumer(ledger, stop, rng)))
    faults = {}
    started = time.monotonic()
    try:
        for r in range(args.rounds):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            leader = await leader_now()
            followers = [i for i in (1, 2, 3) if i != leader]
            kind = rng.choice(["kill-leader", "kill-leader", "cut-leader", "kill-follower", "isolate-follower", "wipe-follower"])
            faults[kind] = faults.get(kind, 0) + 1
            t = time.monotonic()
            if kind == "kill-leader":
                nodes.kill(leader)
                ledger.first_receipt_after.append(t)
                await asyncio.sleep(0.5)
                nodes.start(leader)
            elif kind == "cut-leader":
                cut = [leader, t, None]
                ledger.cuts.append(cut)
                proxy.cut_now(leader)
                ledger.first_receipt_after.append(t)
                await asyncio.sleep(3)
                proxy.cut.discard(leader)
                ledger.cuts[-1] = (leader, t, time.monotonic())
            elif kind == "kill-follower":
                f = rng.choice(followers)
                nodes.kill(f)
                await asyncio.sleep(0.5)
                nodes.start(f)
            elif kind == "isolate-follower":
                f = rng.choice(followers)
                link(f, False)
                await asyncio.sleep(3)
                link(f, True)
            elif kind == "wipe-follower":
                f = rng.choice(followers)
                nodes.kill(f)
                nodes.wipe(f)
                nodes.start(f)
            print(f"round {r + 1}/{args.rounds}: {kind} (leader {leader}); receipted {len(ledger.receipted)}",
                  file=sys.stderr, flush=True)
        await asyncio.sleep(2)
    finally:
        stop.set()
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
        await asyncio.sleep(1)

    # The end: drain what is left through the leader, acking each message with a receipt. A
    # leader change may cut the drain short: then reconnect and go on. A message seen again
    # after its ack was receipted is a duplicate; one seen again after an unconfirmed ack is
    # an ordinary redelivery.
    seen, confirmed = set(), set()
    duplicated = 0
    drained = False
    drain_deadline = time.monotonic() + 300
    while not drained and time.monotonic() < drain_deadline:
        try:
            _, c = await find_leader()
        except RuntimeError:
            continue
        try:
            c.send("SUBSCRIBE", {"destination": "/queue/ledger", "id": "end", "ack": "client-individual",
                                 "activemq.prefetchSize": "200"})
            pending = []
            while True:
                m = await c.next_message(2.0)
                if m is None:
                    break
                body = m.body.decode()
                if body in confirmed:
                    duplicated += 1
                seen.add(body)
                fut = c.request("ACK", {"id": m.headers["ack"]})
                fut.add_done_callback(
                    lambda f, b=body: (not f.cancelled() and f.exception() is None) and confirmed.add(b)
                )
                pending.append(fut)
            await asyncio.wait_for(asyncio.gather(*pending), 15)
            drained = True
        except (Closed, asyncio.TimeoutError, OSError):
            pass
        finally:
            c.abort()
    final = sorted(seen)
    nodes.stop_all()

    final_set = set(final)
    # An ack whose receipt never came may have been applied: its message may be gone.
    owed = ledger.receipted - ledger.ack_sent
    fo = sorted(ledger.failovers)
    result = {
        "rounds": args.rounds,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
        "delay_ms": args.delay_ms,
        "reset_per_s": args.reset_per_s,
        "faults": faults,
        "producers": args.producers,
        "sent": len(ledger.sent),
        "receipted": len(ledger.receipted),
        "acked": len(ledger.acked),
        "acks_unconfirmed": len(ledger.ack_sent - ledger.acked),
        "delivered": ledger.delivered,
        "left_at_end": len(final),
        "lost": len(owed - final_set),
        "resurrected": len(final_set & ledger.acked),
        "duplicated": duplicated,
        "drained": drained,
        "phantom": len(final_set - ledger.sent),
        "minority_receipts": len(ledger.minority_receipts),
        "failover_s": {
            "count": len(fo),
            "median": round(fo[len(fo) // 2], 2) if fo else None,
            "max": round(fo[-1], 2) if fo else None,
        },
    }
    ok = drained and all(result[k] == 0 for k in ("lost", "resurrected", "duplicated", "phantom", "minority_receipts"))
    result["ok"] = ok
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--delay-ms", type=float, default=2.0)
    ap.add_argument("--reset-per-s", type=float, default=0.01)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    result = asyncio.run(campaign(args))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
