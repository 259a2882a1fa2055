"""A small STOMP 1.2 client over asyncio (TCP, TLS or WebSocket), for the reliability campaign's
crash runs (bench/crash/) and mixed soak (bench/soak_mixed.py).

It shares no code with WrenMQ on purpose: the campaign's checker must not trust the broker's
own codec to tell it what was sent and received. It speaks only what the load needs: frames
with escaped headers and content-length bodies, receipts as futures, MESSAGEs on a queue.
"""

import asyncio

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "c": ":"}


def _escape(value):
    return "".join(_ESCAPES.get(c, c) for c in str(value))


def _unescape(value):
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(_UNESCAPES.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def encode(command, headers, body=b""):
    """One frame's bytes; a body always carries content-length."""
    lines = [command]
    for name, value in headers.items():
        lines.append(f"{_escape(name)}:{_escape(value)}")
    if body:
        lines.append(f"content-length:{len(body)}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


class Closed(Exception):
    """The connection ended (EOF, reset, or an ERROR frame, which the spec says closes it)."""


class Frame:
    """A received frame: command, headers (first occurrence wins, as STOMP 1.2 says), body."""

    __slots__ = ("command", "headers", "body")

    def __init__(self, command, headers, body):
        self.command, self.headers, self.body = command, headers, body

    def __repr__(self):
        return f"Frame({self.command}, {self.headers}, {self.body[:40]!r})"


class Client:
    """One STOMP connection: a reader task resolves receipts and queues MESSAGEs."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.messages = asyncio.Queue()
        self.receipts = {}
        self.errors = []
        self.closed = asyncio.Event()
        self._next_receipt = 0
        self._task = None

    @classmethod
    async def connect(cls, port, headers=None, timeout=5.0, ssl=None, ws_path=None, host="127.0.0.1"):
        """CONNECTs over TCP, over TLS when `ssl` is an SSLContext, or over WebSocket (ws://,
        or wss:// with `ssl`) when `ws_path` is given; to `host` (loopback unless told)."""
        if ws_path is not None:
            reader, writer = await asyncio.wait_for(_WsStream.open(port, ws_path, ssl), timeout)
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 22, ssl=ssl), timeout
            )
        client = cls(reader, writer)
        connect = {"accept-version": "1.2", "host": "/", "heart-beat": "0,0"}
        connect.update(headers or {})
        writer.write(encode("CONNECT", connect))
        frame = await asyncio.wait_for(client._read_frame(), timeout)
        if frame is None or frame.command != "CONNECTED":
            writer.close()
            raise Closed(f"CONNECT answered by {frame!r}")
        client.connected = frame
        client._task = asyncio.ensure_future(client._read_loop())
        return client

    def send(self, command, headers, body=b""):
        if self.closed.is_set():
            raise Closed("connection closed")
        self.writer.write(encode(command, headers, body))

    def send_raw(self, data):
        """Writes bytes as they are (a heart-beat EOL)."""
        if self.closed.is_set():
            raise Closed("connection closed")
        self.writer.write(data)

    def request(self, command, headers, body=b"", receipt=None):
        """Sends a frame with a receipt header (`receipt`, or one made up); returns the future
        its RECEIPT resolves."""
        self._next_receipt += 1
        rid = receipt or f"r{self._next_receipt}"
        future = asyncio.get_running_loop().create_future()
        # a receipt nobody waits for any more (its connection died) is not worth a warning
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.receipts[rid] = future
        headers = dict(headers)
        headers["receipt"] = rid
        self.send(command, headers, body)
        return future

    async def drain(self):
        """Waits until the kernel took what was written, so a slow broker slows the writer."""
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            raise Closed(str(e)) from e

    async def next_message(self, timeout):
        """The next MESSAGE, or None after `timeout` s without one; Closed once the connection
        has ended and nothing is left."""
        if self.messages.empty() and self.closed.is_set():
            raise Closed("connection closed")
        getter = asyncio.ensure_future(self.messages.get())
        closer = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({getter, closer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            closer.cancel()
            return getter.result()
        getter.cancel()
        closer.cancel()
        if not self.messages.empty():
            return self.messages.get_nowait()
        if closer in done:
            raise Closed("connection closed")
        return None

    def abort(self):
        """Drops the connection at once, no DISCONNECT, no close handshake: a client that vanishes."""
        try:
            if isinstance(self.writer, _WsStream):
                self.writer.transport_abort()
            else:
                self.writer.transport.abort()
        except Exception:
            pass
        self.close()

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass
        if self._task:
            self._task.cancel()
        self._fail_receipts()

    def _fail_receipts(self):
        self.closed.set()
        for future in self.receipts.values():
            if not future.done():
                future.set_exception(Closed("connection closed before the receipt"))
        self.receipts.clear()

    async def _read_loop(self):
        try:
            while True:
                frame = await self._read_frame()
                if frame is None:
                    break
                if frame.command == "MESSAGE":
                    self.messages.put_nowait(frame)
                elif frame.command == "RECEIPT":
                    future = self.receipts.pop(frame.headers.get("receipt-id", ""), None)
                    if future is not None and not future.done():
                        future.set_result(True)
                elif frame.command == "ERROR":
                    self.errors.append(frame)
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._fail_receipts()

    async def _read_frame(self):
        while True:
            line = await self.reader.readline()
            if not line:
                return None
            line = line.rstrip(b"\r\n")
            if line.strip(b"\0"):
                break  # not a heart-beat or a frame's trailing EOL
        command = line.lstrip(b"\0").decode()
        headers = {}
        while True:
            line = await self.reader.readline()
            if not line:
                return None
            line = line.rstrip(b"\r\n")
            if not line:
                break
            name, _, value = line.decode().partition(":")
            name, value = _unescape(name), _unescape(value)
            headers.setdefault(name, value)
        length = headers.get("content-length")
        if length is not None:
            body = await self.reader.readexactly(int(length))
            await self.reader.readexactly(1)
        else:
            body = (await self.reader.readuntil(b"\0"))[:-1]
        return Frame(command, headers, body)


class _WsStream:
    """A WebSocket dressed as asyncio's (reader, writer) pair, so Client runs unchanged over it:
    each written frame goes as one binary message (as @stomp/stompjs sends them), and whatever
    arrives is fed to a StreamReader. Needs the `websockets` package (bench/.venv)."""

    def __init__(self, ws):
        self.ws = ws
        self.reader = asyncio.StreamReader(limit=1 << 22)
        self.outbox = asyncio.Queue()
        self.failed = None
        self.pump = asyncio.ensure_future(self._pump())
        self.sender = asyncio.ensure_future(self._send())

    @classmethod
    async def open(cls, port, path, ssl):
        import websockets

        scheme = "wss" if ssl else "ws"
        ws = await websockets.connect(
            f"{scheme}://127.0.0.1:{port}{path}", ssl=ssl, subprotocols=["v12.stomp"],
            max_size=None, compression=None,
        )
        stream = cls(ws)
        return stream.reader, stream

    async def _pump(self):
        try:
            async for message in self.ws:
                self.reader.feed_data(message if isinstance(message, bytes) else message.encode())
        except Exception:
            pass
        finally:
            self.reader.feed_eof()

    async def _send(self):
        try:
            while True:
                data = await self.outbox.get()
                await self.ws.send(data)
                self.outbox.task_done()
        except Exception as e:
            self.failed = e
            while not self.outbox.empty():
                self.outbox.get_nowait()
                self.outbox.task_done()

    def write(self, data):
        if self.failed is not None:
            raise ConnectionError(str(self.failed))
        self.outbox.put_nowait(data)

    async def drain(self):
        await self.outbox.join()
        if self.failed is not None:
            raise ConnectionError(str(self.failed))

    def close(self):
        self.sender.cancel()
        self.pump.cancel()
        asyncio.ensure_future(self.ws.close())

    def transport_abort(self):
        """Drops the TCP connection without a close handshake (a vanishing client)."""
        self.ws.transport.abort()
