#!/usr/bin/env python3
"""Sends or receives one STOMP message over TCP with stomp.py, for the browser check in run.mjs.

The browser check proves that a message crosses transports and client libraries: a stomp.py
producer on TCP reaches the web console over WebSocket, and the console's reply reaches a
stomp.py subscriber on TCP.

  send_recv.py send --host H --port P --destination D --body B [--header k:v ...]
  send_recv.py recv --host H --port P --destination D [--timeout S]

`recv` prints READY once its subscription is confirmed by a RECEIPT (so the caller knows when
to send), then the message as one JSON line {"headers": {...}, "body": "..."}; it exits 1 if
nothing arrives within --timeout seconds. Every wait is bounded.
"""

import argparse
import json
import sys
import threading

import stomp


class Collector(stomp.ConnectionListener):
    """Remembers the first MESSAGE and the receipts seen, signalling the waiting thread."""

    def __init__(self):
        self.message = None
        self.got_message = threading.Event()
        self.receipts = set()
        self.got_receipt = threading.Event()
        self.error = None

    def on_message(self, frame):
        if self.message is None:
            self.message = frame
            self.got_message.set()

    def on_receipt(self, frame):
        self.receipts.add(frame.headers.get("receipt-id"))
        self.got_receipt.set()

    def on_error(self, frame):
        self.error = frame.headers.get("message", frame.body)
        self.got_receipt.set()
        self.got_message.set()


def connect(args, listener):
    conn = stomp.Connection12([(args.host, args.port)], heartbeats=(0, 0), timeout=args.timeout)
    conn.set_listener("collector", listener)
    conn.connect(wait=True, headers={"host": "localhost"})
    return conn


def parse_headers(pairs):
    headers = {}
    for pair in pairs or []:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise SystemExit(f"bad --header {pair!r}: expected key:value")
        headers[key] = value
    return headers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["send", "recv"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append")
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args()

    listener = Collector()
    conn = connect(args, listener)
    try:
        if args.mode == "send":
            headers = parse_headers(args.header)
            headers["receipt"] = "sent"
            conn.send(destination=args.destination, body=args.body, headers=headers)
            if not listener.got_receipt.wait(args.timeout) or listener.error:
                print(f"no receipt for the SEND: {listener.error or 'timed out'}", file=sys.stderr)
                return 1
            print("SENT", flush=True)
            return 0
        conn.subscribe(destination=args.destination, id="1", ack="auto", headers={"receipt": "subscribed"})
        if not listener.got_receipt.wait(args.timeout) or listener.error:
            print(f"subscription not confirmed: {listener.error or 'timed out'}", file=sys.stderr)
            return 1
        print("READY", flush=True)
        if not listener.got_message.wait(args.timeout) or listener.error:
            print(f"no message: {listener.error or 'timed out'}", file=sys.stderr)
            return 1
        frame = listener.message
        body = frame.body.decode("utf-8", "replace") if isinstance(frame.body, bytes) else frame.body
        print(json.dumps({"headers": dict(frame.headers), "body": body}), flush=True)
        return 0
    finally:
        try:
            conn.disconnect()
        except Exception:  # noqa: BLE001 - the result is already decided; closing is best effort
            pass


if __name__ == "__main__":
    sys.exit(main())
