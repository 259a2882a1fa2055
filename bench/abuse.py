#!/usr/bin/env python3
"""bench/abuse.py: the reliability campaign's abuse runs (issue 15), started by bench/abuse.sh
against a release WrenMQ on its shipped limits.

Phases, one after the other, each --seconds long; throughout all of them a well-behaved
client, connected before the first, does a SEND (with receipt) and its delivery on its own
queue every 10 ms and times each round trip:
  slowloris   2,000 connections that send a CONNECT one byte every 2 s and never finish it:
              the broker must drop each at handshake-timeout-ms (10 s by default)
  headers     new connections, one after another, each sending one of: a frame with 100,000
              headers, a 10 MiB header value, a 10 MiB line with no newline, header lines
              without end: each must get an ERROR naming the limit, then be closed
  subs        one connection SUBSCRIBEs 10,000 times (distinct ids), with the default window and
              then with a window of 10: the broker must refuse the one past its limit
              (max-unacked-per-connection, then max-subscriptions-per-connection) with an
              ERROR and close
  flood       as many connections as the client's file limit allows, opened as fast as
              possible and held; beyond max-connections the broker must refuse (close) them,
              while connections it admitted, and the well-behaved one, keep working
Every second: broker RSS and open fds, and the good client's round trips. Prints a JSON
summary; exit 1 if a limit did not hold or the good client failed.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stomp_client import Client, Closed  # noqa: E402


def sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Good:
    """The well-behaved client: a round trip every 10 ms, RTTs kept per phase."""

    def __init__(self):
        self.phase = "warmup"
        self.rtts = {}
        self.failures = {}
        self.stop = False

    async def run(self, port):
        client = await Client.connect(port)
        client.send("SUBSCRIBE", {"destination": "/queue/abuse.good", "id": "g"})
        n = 0
        while not self.stop:
            n += 1
            started = time.perf_counter()
            try:
                await asyncio.wait_for(client.request("SEND", {"destination": "/queue/abuse.good", "n": n}, b"ping"), 5)
                frame = await client.next_message(5)
                if frame is None or frame.headers.get("n") != str(n):
                    raise Closed(f"round trip {n} answered by {frame!r}")
                self.rtts.setdefault(self.phase, []).append(time.perf_counter() - started)
            except (Closed, asyncio.TimeoutError) as e:
                self.failures.setdefault(self.phase, []).append(repr(e)[:200])
                client.close()
                client = await Client.connect(port)
                client.send("SUBSCRIBE", {"destination": "/queue/abuse.good", "id": "g"})
            await asyncio.sleep(0.01)
        client.close()


async def read_until_closed(reader, limit_s):
    """Bytes the broker sent until it closed the connection, or None if it did not within
    limit_s."""
    data = b""
    deadline = time.monotonic() + limit_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except asyncio.TimeoutError:
            return None
        except (ConnectionError, OSError):
            return data
        if not chunk:
            return data
        data += chunk


def error_message(data):
    """The message header of the first ERROR in `data`, if any."""
    if data is None:
        return None
    data = data.lstrip(b"\r\n")  # the EOL after CONNECTED's NUL (frame-eol)
    if not data.startswith(b"ERROR"):
        return None
    for line in data.split(b"\n")[1:]:
        if line.startswith(b"message:"):
            return line[8:].decode(errors="replace").replace("\\c", ":").replace("\\\\", "\\")
    return ""


async def slowloris(port, seconds, count=2000):
    connect = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0"
    started = time.monotonic()
    closed_after = []

    async def one():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return "refused"
        opened = time.monotonic()
        i = 0
        try:
            while i < len(connect) - 1:  # never the final NUL
                writer.write(connect[i:i + 1])
                i += 1
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 2.0)
                    if not chunk:
                        closed_after.append(time.monotonic() - opened)
                        return "closed"
                except asyncio.TimeoutError:
                    pass
                except (ConnectionError, OSError):
                    closed_after.append(time.monotonic() - opened)
                    return "closed"
                if time.monotonic() - started > seconds + 30:
                    return "still open"
        finally:
            writer.close()
        return "finished"  # sent all but the NUL and was never dropped

    results = await asyncio.gather(*(one() for _ in range(count)))
    return {
        "connections": count,
        "closed_by_broker": results.count("closed"),
        "still_open_at_end": results.count("still open") + results.count("finished"),
        "refused": results.count("refused"),
        "closed_after_s_min": round(min(closed_after), 1) if closed_after else None,
        "closed_after_s_max": round(max(closed_after), 1) if closed_after else None,
    }


def bomb(port, payload, stream_lines):
    """One header bomb over a blocking socket (asyncio's transport gives up reading once a
    write fails, and the broker closing mid-write is the point); returns what the broker sent
    before closing, or None if it did not close within 10 s."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        s.settimeout(10)
        got = b""
        while b"\0" not in got:
            chunk = s.recv(4096)
            if not chunk:
                return b""
            got += chunk
        try:
            if stream_lines:
                s.sendall(b"SEND\ndestination:/queue/abuse.bomb\n")
                for _ in range(20_000):  # 20,000 lines, well past max-headers
                    s.sendall(b"h:v\n")
            else:
                s.sendall(payload)
        except OSError:
            pass  # the broker closed while we wrote: expected
        data = got.split(b"\0", 1)[1]
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except socket.timeout:
            return None
        except OSError:
            return data


async def header_bombs(port, seconds):
    bombs = {
        "100k headers": b"SEND\ndestination:/queue/abuse.bomb\n" + b"h:v\n" * 100_000 + b"\n\0",
        "10 MiB header value": b"SEND\ndestination:/queue/abuse.bomb\nh:" + b"v" * (10 << 20) + b"\n\n\0",
        "10 MiB line, no newline": b"SEND" + b"x" * (10 << 20),
        "header lines without end": None,  # streamed line by line
    }
    results = {name: {"tried": 0, "error_then_close": 0, "messages": set(), "other": 0} for name in bombs}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, payload in bombs.items():
            r = results[name]
            r["tried"] += 1
            data = await asyncio.to_thread(bomb, port, payload, payload is None)
            message = error_message(data)
            if message is not None:
                r["error_then_close"] += 1
                r["messages"].add(message[:120])
            else:
                r["other"] += 1
    for r in results.values():
        r["messages"] = sorted(r["messages"])
    return results


def subscribe_many(port, count, window):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        s.settimeout(30)
        got = b""
        while b"\0" not in got:
            got += s.recv(4096)
        sent = 0
        try:
            for i in range(count):
                extra = f"activemq.prefetchSize:{window}\n" if window else ""
                s.sendall(f"SUBSCRIBE\ndestination:/topic/abuse.subs.{i}\nid:{i}\n{extra}\n\0".encode())
                sent += 1
        except OSError:
            pass
        data = got.split(b"\0", 1)[1]
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return sent, None
        except OSError:
            pass
        return sent, data


async def subscriptions(port, count=10_000):
    """Twice: SUBSCRIBEs with the default window (1,000 messages each, so the connection's
    max-unacked-per-connection of 100,000 runs out first), then with a window of 10 each (so
    max-subscriptions-per-connection, 1,000, does)."""
    out = {}
    for label, window in (("default window", None), ("window 10", 10)):
        sent, data = await asyncio.to_thread(subscribe_many, port, count, window)
        out[label] = {"subscribes_sent": sent, "error": error_message(data), "closed": data is not None}
    return out


async def flood(port, seconds, want):
    """Opens up to `want` connections as fast as possible, CONNECTs each, holds them."""
    opened, admitted, refused, failed = [], 0, 0, 0
    answers = set()
    started = time.monotonic()

    async def one():
        nonlocal admitted, refused, failed
        try:
            client = await Client.connect(port, timeout=20)
            opened.append(client)
            admitted += 1
        except Closed as e:
            refused += 1
            answers.add(str(e)[:300])
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            failed += 1

    batch = 500
    for i in range(0, want, batch):
        await asyncio.gather(*(one() for _ in range(min(batch, want - i))))
    open_s = time.monotonic() - started
    # the admitted ones still work: a receipted SEND on a sample of them
    alive = 0
    sample = opened[:: max(1, len(opened) // 200)]
    for client in sample:
        try:
            await asyncio.wait_for(client.request("SEND", {"destination": "/queue/abuse.flood"}, b"x"), 10)
            alive += 1
        except (Closed, asyncio.TimeoutError):
            pass
    await asyncio.sleep(max(0, seconds - (time.monotonic() - started)))
    for client in opened:
        client.close()
    return {"tried": want, "admitted": admitted, "refused_or_closed": refused, "connect_failed": failed,
            "refusals": sorted(answers)[:3], "seconds_to_open": round(open_s, 1), "admitted_sampled": len(sample), "sampled_alive": alive}


async def sampler(pid, good, rows, stop):
    while not stop.is_set():
        rss, fds = sample(pid)
        rows.append({"t": time.monotonic(), "phase": good.phase, "rss_kb": rss, "fds": fds})
        await asyncio.sleep(1)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--phases", default="slowloris headers subs flood")
    p.add_argument("--csv", required=True)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    good = Good()
    good_task = asyncio.ensure_future(good.run(args.port))
    rows, stop = [], asyncio.Event()
    sampler_task = asyncio.ensure_future(sampler(args.pid, good, rows, stop))
    await asyncio.sleep(3)
    results = {}
    for phase in args.phases.split():
        good.phase = phase
        if phase == "slowloris":
            results[phase] = await slowloris(args.port, args.seconds)
        elif phase == "headers":
            results[phase] = await header_bombs(args.port, args.seconds)
        elif phase == "subs":
            results[phase] = await subscriptions(args.port)
        elif phase == "flood":
            results[phase] = await flood(args.port, args.seconds, want=min(hard - 2000, 15000))
        good.phase = f"after {phase}"
        await asyncio.sleep(3)
    good.stop = True
    await good_task
    stop.set()
    await sampler_task

    with open(args.csv, "w") as f:
        f.write("secs,phase,rss_kb,fds\n")
        t0 = rows[0]["t"] if rows else 0
        for r in rows:
            f.write(f"{r['t'] - t0:.1f},{r['phase']},{r['rss_kb']},{r['fds']}\n")
    by_phase = {}
    for phase, rtts in good.rtts.items():
        by_phase[phase] = {"round_trips": len(rtts), "p50_ms": round(pct(rtts, 0.5) * 1e3, 2),
                           "p99_ms": round(pct(rtts, 0.99) * 1e3, 2), "max_ms": round(max(rtts) * 1e3, 2),
                           "failures": len(good.failures.get(phase, []))}
    for phase, fails in good.failures.items():
        by_phase.setdefault(phase, {"round_trips": 0})["failures"] = len(fails)
        by_phase[phase]["first_failure"] = fails[0]
    for phase in args.phases.split():
        phase_rows = [r for r in rows if r["phase"] == phase]
        if phase_rows:
            results[phase]["broker_rss_mib_max"] = round(max(r["rss_kb"] for r in phase_rows) / 1024, 1)
            results[phase]["broker_fds_max"] = max(r["fds"] for r in phase_rows)
    rss_end = round(rows[-1]["rss_kb"] / 1024, 1) if rows else None
    problems = []
    if any(v.get("failures") for v in by_phase.values()):
        problems.append("the well-behaved client failed")
    s = results.get("slowloris")
    if s and s["still_open_at_end"]:
        problems.append(f"{s['still_open_at_end']} slow-loris connections were never dropped")
    for name, r in results.get("headers", {}).items():
        if isinstance(r, dict) and r["other"]:
            problems.append(f"header bomb '{name}': {r['other']} of {r['tried']} without ERROR and close")
    for label, sub in results.get("subs", {}).items():
        if isinstance(sub, dict) and not (sub["error"] and sub["closed"]):
            problems.append(f"10,000 SUBSCRIBEs ({label}) were not refused with an ERROR and a close")
    fl = results.get("flood")
    if fl and fl["sampled_alive"] != fl["admitted_sampled"]:
        problems.append("admitted flood connections stopped working")
    print(json.dumps({"phases": results, "good_client": by_phase, "broker_rss_mib_end": rss_end,
                      "problems": problems}, indent=1))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    asyncio.run(main())
