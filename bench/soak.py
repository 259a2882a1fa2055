#!/usr/bin/env python3
"""bench/soak.py: a producer N times faster than its consumer for a long run, sampling the
broker's RSS every second (bench/soak.sh starts the broker and calls this).

Raw STOMP 1.2 over sockets (the standard library only), so the load tool itself is small:
- the producer sends numbered non-persistent messages of SIZE bytes at PRODUCE_RATE msgs/s
  (its socket blocks when the broker holds it back: TCP back-pressure);
- the consumer takes CONSUME_RATE msgs/s (ack:auto, a 1000-message window);
- IDLE connections each hold one subscription to a topic nobody sends to;
- every second: the broker's VmRSS, messages produced and consumed so far.
At the end the producer stops, the consumer drains what is left at full speed (still
sampled: under PAGE that is the backlog read back from disk), and the run
checks that every message arrived exactly once and in order. Writes a CSV of the samples and
prints one JSON summary line.
"""

import argparse
import json
import socket
import sys
import threading
import time


# Every connection promises a heart-beat each HEARTBEAT_SECS, so the broker's reaper
# (heart-beat deadline, or connection-ttl-ms for clients without heart-beats) keeps a
# consumer that only reads, and an idle subscriber, alive.
HEARTBEAT_SECS = 5


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:{HEARTBEAT_SECS * 1000},0\n\n\0".encode())
    buf = b""
    while b"\0" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("broker closed the connection during CONNECT")
        buf += chunk
    if not buf.startswith(b"CONNECTED"):
        raise SystemExit(f"CONNECT refused: {buf[:200]!r}")
    return s


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Counters:
    def __init__(self):
        self.produced = 0
        self.consumed = 0
        self.out_of_order = 0
        self.next_expected = 0
        self.stop_producing = threading.Event()
        self.lock = threading.Lock()


def produce(port, dest, size, rate, c):
    s = connect(port)
    body = b"x" * size
    interval = 1.0 / rate
    start = time.monotonic()
    seq = 0
    while not c.stop_producing.is_set():
        frame = (f"SEND\ndestination:{dest}\npersistent:false\nseq:{seq}\n"
                 f"content-length:{size}\n\n").encode() + body + b"\0"
        s.sendall(frame)  # blocks while the broker stops reading (BLOCK)
        seq += 1
        with c.lock:
            c.produced = seq
        ahead = start + seq * interval - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    # A receipt proves the broker has every message sent before it.
    s.sendall(f"SEND\ndestination:{dest}.done\nreceipt:last\n\n\0".encode())
    buf = b""
    while b"RECEIPT" not in buf:
        buf += s.recv(4096)
    s.close()


def beat(sockets, lock, stop):
    """Sends a heart-beat (an EOL) on each socket every HEARTBEAT_SECS."""
    while not stop.wait(HEARTBEAT_SECS):
        with lock:
            live = list(sockets)
        for s in live:
            try:
                s.sendall(b"\n")
            except OSError:
                pass


def consume(port, dest, rate, c, total_known, done, beating):
    s = connect(port)
    with beating[1]:
        beating[0].append(s)
    s.sendall(f"SUBSCRIBE\ndestination:{dest}\nid:1\nack:auto\n"
              f"activemq.prefetchSize:1000\n\n\0".encode())
    buf = b""
    start = time.monotonic()
    got = 0
    s.settimeout(1.0)
    while True:
        if total_known.is_set() and got >= c.produced:
            break
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if total_known.is_set() and got >= c.produced:
                break
            continue
        if not chunk:
            print("the broker closed the consumer's connection", file=sys.stderr)
            c.stop_producing.set()
            break
        buf += chunk
        while True:
            nul = buf.find(b"\0")
            if nul < 0:
                break
            frame, buf = buf[:nul], buf[nul + 1:]
            frame = frame.lstrip(b"\r\n")
            if not frame.startswith(b"MESSAGE"):
                continue
            head = frame.split(b"\n\n", 1)[0]
            seq = None
            for line in head.split(b"\n"):
                if line.startswith(b"seq:"):
                    seq = int(line[4:])
                    break
            with c.lock:
                if seq != c.next_expected:
                    c.out_of_order += 1
                c.next_expected = (seq or 0) + 1
                got += 1
                c.consumed = got
            if not total_known.is_set():
                ahead = start + got / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    s.close()
    done.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--consume-rate", type=float, default=2000)
    ap.add_argument("--speedup", type=float, default=10)
    ap.add_argument("--idle", type=int, default=0)
    ap.add_argument("--dest", default="/queue/soak.q")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--drain-limit", type=int, default=1800,
                    help="most seconds the consumer may take to drain after the producer stops")
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    idle = []
    for i in range(a.idle):
        s = connect(a.port)
        s.sendall(f"SUBSCRIBE\ndestination:/topic/soak.idle.{i}\nid:1\n\n\0".encode())
        idle.append(s)
    beating = (list(idle), threading.Lock())
    stop_beating = threading.Event()
    threading.Thread(target=beat, args=(beating[0], beating[1], stop_beating), daemon=True).start()

    c = Counters()
    total_known, done = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=produce, args=(a.port, a.dest, a.size, a.consume_rate * a.speedup, c)),
        threading.Thread(target=consume, args=(a.port, a.dest, a.consume_rate, c, total_known, done, beating)),
    ]
    for t in threads:
        t.daemon = True
        t.start()
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.seconds:
        time.sleep(1.0)
        with c.lock:
            samples.append((round(time.monotonic() - t0, 1), rss_kb(a.pid), c.produced, c.consumed))
    c.stop_producing.set()
    threads[0].join(timeout=120)
    total_known.set()
    # The consumer now drains what is left (under PAGE, what waits on disk) at full speed;
    # RSS is sampled meanwhile too.
    run_samples = len(samples)
    while not done.wait(timeout=1.0) and time.monotonic() - t0 < a.seconds + a.drain_limit:
        with c.lock:
            samples.append((round(time.monotonic() - t0, 1), rss_kb(a.pid), c.produced, c.consumed))
    with open(a.csv, "w") as f:
        f.write("secs,rss_kb,produced,consumed\n")
        for row in samples:
            f.write(",".join(str(x) for x in row) + "\n")
    warm = [r[1] for r in samples[:run_samples] if r[0] >= 60] or [r[1] for r in samples]
    drain = [r[1] for r in samples[run_samples:]] or [0]
    result = {
        "label": a.label,
        "seconds": a.seconds,
        "idle_subscriptions": a.idle,
        "produced": c.produced,
        "consumed": c.consumed,
        "lost": c.produced - c.consumed,
        "out_of_order": c.out_of_order,
        "rss_kb_after_60s_min": min(warm),
        "rss_kb_after_60s_max": max(warm),
        "rss_kb_last": samples[-1][1] if samples else 0,
        "drain_seconds": round(samples[-1][0] - a.seconds, 1) if len(samples) > run_samples else 0,
        "rss_kb_drain_max": max(drain),
        "produce_rate_asked": a.consume_rate * a.speedup,
        "consume_rate": a.consume_rate,
    }
    print(json.dumps(result))
    stop_beating.set()
    for s in idle:
        s.close()
    return 0 if result["lost"] == 0 and c.out_of_order == 0 and done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
