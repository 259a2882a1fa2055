#!/usr/bin/env python3
"""Smoke test of one peer broker with a real STOMP client (stomp-py 9.0.0, STOMP 1.2).

Sends N messages to /queue/x and receives them (client-individual acks), then subscribes to
/topic/y, sends N and receives them; prints "<name> OK ..." or fails with a non-zero exit.
Used by `bench/peers.sh verify`.
"""
import argparse
import base64
import os
import socket
import struct
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


def ws_connect_check(name, port, path="/ws"):
    """STOMP over WebSocket without extra packages: upgrade, one masked text frame holding
    CONNECT, expect a frame starting with CONNECTED."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit(f"{name}: Web-STOMP closed during the handshake")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"{name}: Web-STOMP handshake refused: {head[:80]!r}")
        payload = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        s.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
        while len(buf) < 2:
            buf += s.recv(4096)
        length = buf[1] & 0x7F
        start = 2
        if length == 126:
            while len(buf) < 4:
                buf += s.recv(4096)
            length, start = struct.unpack("!H", buf[2:4])[0], 4
        while len(buf) < start + length:
            buf += s.recv(4096)
        frame = buf[start : start + length]
        if not frame.startswith(b"CONNECTED"):
            raise SystemExit(f"{name}: Web-STOMP answered {frame[:60]!r}")
    print(f"{name} Web-STOMP OK (CONNECT -> CONNECTED, ws://127.0.0.1:{port}{path})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--ws-port", type=int, help="also check STOMP over WebSocket on this port")
    args = ap.parse_args()
    run(args.name, args.port, args.n, args.timeout)
    if args.ws_port:
        ws_connect_check(args.name, args.ws_port)


if __name__ == "__main__":
    sys.exit(main())
