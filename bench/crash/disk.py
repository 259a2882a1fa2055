"""The crash campaign's disk phases (bench/crash/disk.sh sets up the disk and calls this).

One run: persistent SENDs (receipt each) to /queue/disk.q succeed; then the disk is taken
away mid-run (`--squeeze`: the tmpfs fills up, or the FUSE data directory turns read-only);
producers must get an ERROR naming the reason, while a non-persistent round trip on another
connection keeps working; then the disk comes back (`--release`) and persistent SENDs must
succeed again, without a restart; then kill -9, a restart on the same data directory, and a
drain: every receipted message there once, none that was answered by an ERROR.
Prints one JSON line; exit 1 if a check failed.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import Broker  # noqa: E402
from stomp_client import Client, Closed  # noqa: E402

QUEUE = "/queue/disk.q"


async def send_batch(port, ids, size, outcome, stop_on_error=True):
    """SENDs `ids` persistently, 16 unanswered at most; records "receipted", "error" or
    "unknown" per id; returns the ERROR frames seen."""
    client = await Client.connect(port)
    body = os.urandom(size // 2).hex().encode()
    inflight = []
    try:
        for mid in ids:
            if client.closed.is_set():
                break
            outcome[mid] = "unknown"
            future = client.request("SEND", {"destination": QUEUE, "persistent": "true", "x-id": mid}, body,
                                    receipt=mid)
            inflight.append((mid, future))
            await client.drain()
            if len(inflight) >= 16:
                await _settle(inflight.pop(0), outcome, client)
        while inflight:
            await _settle(inflight.pop(0), outcome, client)
    except Closed:
        pass
    for mid, future in inflight:
        outcome[mid] = "unknown"
    errors = list(client.errors)
    for frame in errors:
        # the SEND the ERROR answers (its receipt-id); the others in flight stay "unknown"
        if frame.headers.get("receipt-id") in outcome:
            outcome[frame.headers["receipt-id"]] = "error"
    client.close()
    return errors


async def _settle(entry, outcome, client):
    mid, future = entry
    try:
        await asyncio.wait_for(future, 30)
        outcome[mid] = "receipted"
    except Closed:
        outcome[mid] = "unknown"
    except asyncio.TimeoutError:
        outcome[mid] = "unknown"


async def round_trip(port, n):
    """A non-persistent SEND and its delivery on a fresh connection; True if it came back."""
    client = await Client.connect(port)
    try:
        dest = f"/queue/disk.np.{n}"
        client.send("SUBSCRIBE", {"destination": dest, "id": "np"})
        await asyncio.wait_for(client.request("SEND", {"destination": dest, "persistent": "false"}, b"np"), 10)
        frame = await client.next_message(10)
        return frame is not None and frame.body == b"np"
    except (Closed, asyncio.TimeoutError):
        return False
    finally:
        client.close()


async def drain(port):
    client = await Client.connect(port)
    client.send("SUBSCRIBE", {"destination": QUEUE, "id": "d", "ack": "client-individual"})
    got = []
    while True:
        frame = await client.next_message(3.0)
        if frame is None:
            break
        got.append(frame.headers.get("x-id"))
        client.send("ACK", {"id": frame.headers["ack"]})
    await asyncio.wait_for(client.request("DISCONNECT", {}), 10)
    client.close()
    return got


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--squeeze", required=True, help="shell command that takes the disk away")
    p.add_argument("--release", required=True, help="shell command that gives it back")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--max-squeeze", type=int, default=20000, help="SENDs tried while waiting for an ERROR")
    args = p.parse_args()
    broker = Broker(args.binary, args.config, args.log, args.port)
    outcome = {}
    result = {"problems": []}
    broker.start()

    await send_batch(args.port, [f"before-{i}" for i in range(200)], args.size, outcome)
    result["before_receipted"] = sum(1 for k, v in outcome.items() if k.startswith("before") and v == "receipted")

    subprocess.run(args.squeeze, shell=True, check=True)
    errors, tried, batch = [], 0, 0
    squeeze_started = time.monotonic()
    while not errors and tried < args.max_squeeze and time.monotonic() - squeeze_started < 120:
        ids = [f"squeeze-{batch}-{i}" for i in range(200)]
        batch += 1
        tried += len(ids)
        errors = await send_batch(args.port, ids, args.size, outcome)
    result["squeeze_sends_until_error"] = tried
    result["error_messages"] = sorted({e.headers.get("message", "") for e in errors})
    if not errors:
        result["problems"].append("no ERROR while the disk was gone")
    # a second producer while the disk is still gone: answered by an ERROR again, not a hang
    again = await send_batch(args.port, ["squeeze-again"], args.size, outcome)
    result["second_producer_error"] = bool(again)
    if not again:
        result["problems"].append("a second producer got no ERROR while the disk was gone")
    result["non_persistent_round_trip_while_gone"] = await round_trip(args.port, 1)
    if not result["non_persistent_round_trip_while_gone"]:
        result["problems"].append("a non-persistent round trip failed while the disk was gone")

    subprocess.run(args.release, shell=True, check=True)
    released = time.monotonic()
    ok = False
    attempt = 0
    while time.monotonic() - released < 60:
        attempt += 1
        probe = {}
        await send_batch(args.port, [f"probe-{attempt}"], args.size, probe)
        outcome.update(probe)
        if probe.get(f"probe-{attempt}") == "receipted":
            ok = True
            break
        await asyncio.sleep(0.5)
    result["writes_again_after_s"] = round(time.monotonic() - released, 2) if ok else None
    if not ok:
        result["problems"].append("persistent SENDs still failed 60 s after the disk came back")
    await send_batch(args.port, [f"after-{i}" for i in range(200)], args.size, outcome)
    result["after_receipted"] = sum(1 for k, v in outcome.items() if k.startswith("after") and v == "receipted")
    if result["after_receipted"] != 200:
        result["problems"].append(f"only {result['after_receipted']} of 200 SENDs receipted after the disk came back")

    broker.kill9()
    result["restart_s"] = round(broker.start(), 2)
    got = await drain(args.port)
    broker.stop()
    counts = {}
    for mid in got:
        counts[mid] = counts.get(mid, 0) + 1
    receipted = [k for k, v in outcome.items() if v == "receipted"]
    errored = [k for k, v in outcome.items() if v == "error"]
    result["receipted"] = len(receipted)
    result["answered_by_error"] = len(errored)
    result["recovered"] = len(counts)
    result["lost"] = sum(1 for k in receipted if k not in counts)
    result["duplicated"] = sum(1 for v in counts.values() if v > 1)
    result["errored_but_stored"] = sum(1 for k in errored if k in counts)
    result["never_sent"] = sum(1 for k in counts if k not in outcome)
    for name in ("lost", "duplicated", "never_sent"):
        if result[name]:
            result["problems"].append(f"{result[name]} {name}")
    print(json.dumps(result))
    sys.exit(1 if result["problems"] else 0)


if __name__ == "__main__":
    asyncio.run(main())
