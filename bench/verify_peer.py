#!/usr/bin/env python3
"""Smoke test of one peer broker with a real STOMP client (stomp-py 9.0.0, STOMP 1.2).

Sends N messages to /queue/x and receives them (client-individual acks), then subscribes to
/topic/y, sends N and receives them; prints "<name> OK ..." or fails with a non-zero exit.
Used by `bench/peers.sh verify`.
"""
import argparse
import sys
import threading
import time
import uuid

import stomp


class Collector(stomp.ConnectionListener):
    """Acks everything; keeps the bodies that start with this run's prefix (a message an
    earlier, failed run left on /queue/x is acked away and not counted)."""

    def __init__(self, conn, prefix, want):
        self.conn = conn
        self.prefix = prefix
        self.want = want
        self.bodies = []
        self.errors = []
        self.done = threading.Event()

    def on_message(self, frame):
        if frame.body.startswith(self.prefix):
            self.bodies.append(frame.body)
        ack_id = frame.headers.get("ack")
        if ack_id is not None:
            self.conn.ack(ack_id)
        if len(self.bodies) >= self.want:
            self.done.set()

    def on_error(self, frame):
        self.errors.append(frame.headers.get("message", frame.body))
        self.done.set()


def run(name, port, n, timeout):
    run_id = uuid.uuid4().hex[:8]
    # vhost "/": stomp-py sends the host name as the CONNECT host header by default, and
    # RabbitMQ takes that header as the virtual host (ActiveMQ ignores it)
    conn = stomp.Connection12([("127.0.0.1", port)], heartbeats=(0, 0), vhost="/")
    conn.connect("guest", "guest", wait=True)
    results = []
    try:
        for dest, ack in (("/queue/x", "client-individual"), ("/topic/y", "auto")):
            coll = Collector(conn, run_id, n)
            conn.set_listener("c", coll)
            sub_id = f"{dest}-{run_id}"
            conn.subscribe(dest, id=sub_id, ack=ack)
            if dest.startswith("/topic/"):
                time.sleep(0.5)  # the subscription must exist before the sends
            expected = [f"{run_id} {dest} {i}" for i in range(n)]
            for body in expected:
                conn.send(dest, body, headers={"content-type": "text/plain"})
            coll.done.wait(timeout)
            conn.unsubscribe(sub_id)
            if coll.errors:
                raise SystemExit(f"{name}: ERROR frame on {dest}: {coll.errors}")
            ours = list(coll.bodies)
            if ours != expected:
                raise SystemExit(
                    f"{name}: {dest}: got {len(ours)}/{n} of this run's messages"
                    + ("" if len(ours) != n else " (out of order)")
                )
            results.append(f"{dest} {n}/{n}")
    finally:
        conn.disconnect()
    print(f"{name} OK ({', '.join(results)}, 127.0.0.1:{port})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    run(args.name, args.port, args.n, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
