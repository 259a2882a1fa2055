"""stomp.py helpers: a recording listener and bounded-time wrappers.

stomp.py's own blocking calls (`connect(wait=True)`, `disconnect(receipt=...)`) can wait
forever if the broker never answers, so everything here waits on our own listener with a
timeout instead.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Callable

import stomp
import stomp.protocol

WAIT = 10.0  # upper bound for anything that should happen "now"
QUIET = 0.5  # how long we watch for frames that must NOT arrive

CONNECTION_CLASSES = {
    "1.0": stomp.Connection10,
    "1.1": stomp.Connection11,
    "1.2": stomp.Connection12,
}

PROTOCOL_CLASSES = {
    "1.0": stomp.protocol.Protocol10,
    "1.1": stomp.protocol.Protocol11,
    "1.2": stomp.protocol.Protocol12,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Recorder(stomp.ConnectionListener):
    """Records every frame and event a connection sees."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.connected_frame = None
        self.messages: list = []
        self.receipts: list[str] = []
        self.errors: list = []
        self.heartbeats = 0
        self.heartbeat_timeouts = 0
        self.disconnected = False

    def _record(self, fn: Callable[[], None]) -> None:
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._record(lambda: setattr(self, "connected_frame", frame))

    def on_message(self, frame):
        self._record(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._record(lambda: self.receipts.append(frame.headers.get("receipt-id")))

    def on_error(self, frame):
        self._record(lambda: self.errors.append(frame))

    def on_heartbeat(self):
        def bump():
            self.heartbeats += 1
        self._record(bump)

    def on_heartbeat_timeout(self):
        def bump():
            self.heartbeat_timeouts += 1
        self._record(bump)

    def on_disconnected(self):
        self._record(lambda: setattr(self, "disconnected", True))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def bodies(self) -> list:
        with self.cond:
            return [m.body for m in self.messages]

    def wait_bodies(self, expected, timeout: float = WAIT) -> list:
        """Waits until every body in `expected` (a multiset) has arrived, then returns all
        bodies received so far; the caller asserts exactness."""
        want = list(expected)

        def done():
            have = [m.body for m in self.messages]
            for b in want:
                if b in have:
                    have.remove(b)
                else:
                    return False
            return True

        self.wait_for(done, timeout)
        return self.bodies()

    def wait_receipt(self, receipt_id: str, timeout: float = WAIT) -> bool:
        return self.wait_for(lambda: receipt_id in self.receipts, timeout)


class Client:
    """One stomp.py connection with its recorder."""

    def __init__(self, address, version: str = "1.2", heartbeats=(0, 0), auto_decode=True):
        self.version = version
        cls = CONNECTION_CLASSES[version]
        kwargs = dict(
            host_and_ports=[address],
            auto_decode=auto_decode,
            reconnect_attempts_max=1,
            timeout=WAIT,
        )
        if version != "1.0":
            kwargs["heartbeats"] = heartbeats
        self.conn = cls(**kwargs)
        self.rec = Recorder()
        self.conn.set_listener("recorder", self.rec)

    # -- connection ---------------------------------------------------------------------

    def connect(self, headers=None) -> "Client":
        self.conn.connect(wait=False, headers=headers or {})
        ok = self.rec.wait_for(
            lambda: self.rec.connected_frame is not None or self.rec.errors or self.rec.disconnected
        )
        assert ok and self.rec.connected_frame is not None, (
            f"STOMP {self.version} CONNECT got no CONNECTED within {WAIT}s "
            f"(errors={[ (e.headers, e.body) for e in self.rec.errors ]}, "
            f"disconnected={self.rec.disconnected})"
        )
        return self

    def disconnect(self, receipt: str | None = None) -> bool:
        """DISCONNECT with a receipt, waits (bounded) for it, then closes the socket.
        Returns whether the receipt arrived."""
        rid = receipt or unique("disconnect")
        got = False
        if self.conn.transport.is_connected():
            # Protocol-level disconnect: sends the frame without stomp.py's unbounded wait.
            PROTOCOL_CLASSES[self.version].disconnect(self.conn, receipt=rid)
            got = self.rec.wait_receipt(rid)
        self.close()
        return got

    def close(self) -> None:
        try:
            self.conn.transport.disconnect_socket()
        except Exception:
            pass
        self.rec.wait_for(lambda: self.rec.disconnected, 2.0)

    # -- frames -------------------------------------------------------------------------

    def subscribe(self, destination: str, sub_id: str | None = None, ack: str = "auto",
                  headers=None) -> str:
        """SUBSCRIBE and wait for its RECEIPT, so the subscription is live before we send."""
        sub_id = sub_id or unique("sub")
        rid = unique("subscribed")
        self.conn.subscribe(destination, id=sub_id, ack=ack,
                            headers=dict(headers or {}, receipt=rid))
        assert self.rec.wait_receipt(rid), (
            f"no RECEIPT for SUBSCRIBE {destination} within {WAIT}s "
            f"(errors={[(e.headers, e.body) for e in self.rec.errors]})"
        )
        return sub_id

    def send(self, destination: str, body, headers=None, transaction=None) -> None:
        h = dict(headers or {})
        if transaction is not None:
            h["transaction"] = transaction
        self.conn.send(destination, body, headers=h)

    def sync(self) -> None:
        """Round trip: every frame sent before has been processed by the broker. Uses a
        RECEIPT on a harmless frame (BEGIN+ABORT of a throw-away transaction)."""
        tx = unique("sync")
        self.conn.begin(transaction=tx)
        rid = unique("sync-receipt")
        self.conn.abort(transaction=tx, headers={"receipt": rid})
        assert self.rec.wait_receipt(rid), f"no RECEIPT for sync ABORT within {WAIT}s"

    def send_all(self, destination: str, bodies, headers=None) -> None:
        """SENDs each body; the last SEND carries a receipt, waited for, so all were routed."""
        bodies = list(bodies)
        for b in bodies[:-1]:
            self.send(destination, b, headers=headers)
        rid = unique("sent")
        self.send(destination, bodies[-1], headers=dict(headers or {}, receipt=rid))
        assert self.rec.wait_receipt(rid), (
            f"no RECEIPT for SEND to {destination} within {WAIT}s "
            f"(errors={[(e.headers, e.body) for e in self.rec.errors]})"
        )

    def ack(self, frame, transaction=None, receipt=None) -> None:
        h = frame.headers
        if self.version == "1.2":
            self.conn.ack(h["ack"], transaction=transaction, receipt=receipt)
        elif self.version == "1.1":
            self.conn.ack(h["message-id"], h["subscription"], transaction=transaction,
                          receipt=receipt)
        else:
            self.conn.ack(h["message-id"], transaction=transaction, receipt=receipt)

    def nack(self, frame, transaction=None, receipt=None) -> None:
        h = frame.headers
        if self.version == "1.2":
            self.conn.nack(h["ack"], transaction=transaction, receipt=receipt)
        else:
            self.conn.nack(h["message-id"], h["subscription"], transaction=transaction,
                           receipt=receipt)

    def message(self, body):
        """The first received MESSAGE frame with this body."""
        with self.rec.cond:
            for m in self.rec.messages:
                if m.body == body:
                    return m
        raise AssertionError(f"no MESSAGE with body {body!r} received")
