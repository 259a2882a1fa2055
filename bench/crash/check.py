"""Judges a crash campaign's ledger (bench/crash/load.py) against what a durable broker owes.

  lost         a message whose SEND (or transaction's COMMIT) was receipted but was never
               consumed on one of the streams it had to reach: no acknowledgement of it there
               was confirmed or even attempted by the end of the final drain
  resurrected  a message delivered again on a stream after an acknowledgement of it there
               was confirmed by a RECEIPT
  duplicated   a message delivered twice on a stream within one broker lifetime without a
               NACK between (redelivery after a restart is allowed: at-least-once)
  phantom      a delivery of something never sent, or of an aborted transaction's message
  torn tx      a transaction whose COMMIT went unanswered at a crash, of which some messages
               were delivered and others never were (all or nothing)
  early        a scheduled message delivered more than 100 ms before its delay had passed
               since it was sent
  not empty    a crash.* queue still holding messages after the final drain
  error        an ERROR frame, a worker failure, or a broker that did not stop cleanly

Exit status 0 only when every count is zero.
"""

import json
import sys
from collections import defaultdict

# where each producer's messages must be consumed
STREAMS = {"any": ["any"], "tx": ["tx"], "topic": ["dur1", "dur2"], "sched": ["sched"],
           "dlq": ["dla"], "paged": ["paged"]}
EARLY_SLACK_S = 0.1


def check(path):
    sent = {}  # mid -> (producer stream, wall time, extra headers)
    receipted = set()
    aborted = set()
    commit_pending = {}  # tx -> mids whose COMMIT was sent
    committed = set()
    tx_of = {}
    acked = defaultdict(set)  # stream -> mids confirmed
    attempted = defaultdict(set)  # stream -> mids an ACK covered (confirmed or not)
    delivered = defaultdict(set)  # stream -> mids ever delivered
    seen_in_life = defaultdict(set)  # (stream, lifetime) -> mids delivered and not NACKed since
    first_delivery = {}
    lives_of = defaultdict(set)  # (stream, mid) -> lifetimes it was delivered in
    problems = defaultdict(list)
    counts = defaultdict(int)
    lifetimes = set()
    final = None

    for line in open(path):
        when, life, kind, *rest = json.loads(line)
        lifetimes.add(life)
        counts[kind] += 1
        if kind == "sent":
            stream, mid, extra = rest
            sent[mid] = (stream, when, extra)
        elif kind == "receipted":
            receipted.add(rest[0])
        elif kind == "tx_abort":
            tx, mids = rest
            aborted.update(mids)
            for mid in mids:
                sent[mid] = ("tx", when, {})
        elif kind == "tx_commit_sent":
            tx, mids = rest
            commit_pending[tx] = mids
            for mid in mids:
                sent[mid] = ("tx", when, {})
                tx_of[mid] = tx
        elif kind == "tx_committed":
            committed.add(rest[0])
        elif kind == "delivered":
            stream, mid, _redelivered = rest
            if mid not in sent or sent[mid][0] not in STREAMS or not _reaches(sent[mid][0], stream):
                problems["phantom"].append(f"{stream}: {mid} was never sent there")
            elif mid in aborted:
                problems["phantom"].append(f"{stream}: {mid} belongs to an aborted transaction")
            if mid in acked[stream]:
                problems["resurrected"].append(f"{stream}: {mid} delivered in lifetime {life} after its ACK was receipted")
            key = (stream, life)
            if mid in seen_in_life[key]:
                problems["duplicated"].append(f"{stream}: {mid} delivered twice in lifetime {life}")
            seen_in_life[key].add(mid)
            delivered[stream].add(mid)
            first_delivery.setdefault((stream, mid), when)
            lives_of[(stream, mid)].add(life)
        elif kind == "nack_sent":
            stream, mid = rest
            seen_in_life[(stream, life)].discard(mid)
        elif kind == "ack_sent":
            stream, mids = rest
            attempted[stream].update(mids)
        elif kind == "acked":
            stream, mids = rest
            acked[stream].update(mids)
        elif kind == "paged_sample":
            counts["paged_max"] = max(counts["paged_max"], rest[0])
        elif kind == "final_queues":
            final = rest[0]
        elif kind == "final_stop":
            if rest[0] != 0:
                problems["error"].append(f"the broker's graceful stop exited with {rest[0]}")
        elif kind == "worker_error":
            problems["error"].append(rest[0])

    # a committed transaction's messages are as good as receipted
    for tx in committed:
        receipted.update(commit_pending.get(tx, []))

    must_arrive = 0
    for mid in receipted:
        stream = sent.get(mid, (None,))[0]
        for target in STREAMS.get(stream, []):
            must_arrive += 1
            if mid not in attempted[target]:
                problems["lost"].append(f"{target}: receipted {mid} was never consumed")

    for tx, mids in commit_pending.items():
        if tx in committed:
            continue
        got = [m for m in mids if m in delivered["tx"]]
        if got and len(got) != len(mids):
            problems["torn tx"].append(f"{tx}: {len(got)} of {len(mids)} messages delivered")

    for (stream, mid), when in first_delivery.items():
        if stream != "sched" or mid not in sent:
            continue
        _, sent_at, extra = sent[mid]
        due = sent_at + int(extra.get("AMQ_SCHEDULED_DELAY", "0")) / 1000.0
        if when < due - EARLY_SLACK_S:
            problems["early"].append(f"{mid} delivered {due - when:.3f}s early")

    if final is None:
        problems["error"].append("the final drain never finished")
    else:
        for name, left in final.items():
            if left:
                problems["not empty"].append(f"{name} holds {left} after the final drain")

    summary = {
        "lifetimes": len(lifetimes),
        "crashes": counts["crash"],
        "sent": len(sent),
        "receipted_or_committed": len(receipted),
        "copies_owed": must_arrive,
        "deliveries": counts["delivered"],
        "redelivered_after_crash": sum(1 for lives in lives_of.values() if len(lives) > 1),
        "acks_confirmed": sum(len(v) for v in acked.values()),
        "transactions_aborted": counts["tx_abort"],
        "transactions_committed": len(committed),
        "nacks": counts["nack_sent"],
        "dead_lettered_consumed": len(attempted["dla"]),
        "scheduled_consumed": len(attempted["sched"]),
        "paged_consumed": len(attempted["paged"]),
        "paged_most_seen": counts["paged_max"],
    }
    for name in ["lost", "resurrected", "duplicated", "phantom", "torn tx", "early", "not empty", "error"]:
        summary[name] = len(problems[name])
    return summary, problems


def _reaches(producer_stream, stream):
    if producer_stream == "dlq":
        return stream in ("dlq", "dla")
    return stream in STREAMS[producer_stream]


def main():
    summary, problems = check(sys.argv[1])
    print(json.dumps(summary))
    bad = False
    for name, items in problems.items():
        if items:
            bad = True
            print(f"{name}: {len(items)}", file=sys.stderr)
            for item in items[:10]:
                print(f"  {item}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
