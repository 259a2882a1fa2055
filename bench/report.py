#!/usr/bin/env python3
"""bench/report.py [--baseline FILE] [--write-baseline FILE] RESULTS_DIR

RESULTS.md from RESULTS_DIR/raw/{runs.jsonl,meta.txt} (bench/run.sh): the targets of issue 14
first, then one table per scenario with every broker's msgs/s, broker CPU per message and
broker cores, and WrenMQ as a share of the echo server's ceiling.

--baseline FILE: WrenMQ's CPU per message per scenario before issue 14 (a file written by
--write-baseline); the CPU targets are "at most half of it". Without it (or for a scenario it
lacks) the issue's own figures are used for q1 and q1p, and the table says so.
--write-baseline FILE: instead of RESULTS.md, write FILE from this run's WrenMQ medians (run it
on the pre-issue-14 build, e.g. BROKER_BIN=... bash bench/run.sh).
"""

import argparse
import json
import statistics
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("results", nargs="?", default="bench/results")
ap.add_argument("--baseline")
ap.add_argument("--write-baseline")
ap.add_argument("--note", help="with --write-baseline: a sentence on how it was measured (load, machine)")
ARGS = ap.parse_args()
RES = ARGS.results
RAW = f"{RES}/raw"

meta = {}
for line in open(f"{RAW}/meta.txt"):
    k, _, v = line.rstrip("\n").partition("=")
    meta[k] = v
runs = [json.loads(l) for l in open(f"{RAW}/runs.jsonl") if l.strip()]

by = defaultdict(list)  # (scenario, broker) -> runs
for r in runs:
    by[(r["scenario"], r["broker"])].append(r)

BROKERS = ["wrenmq", "baseline", "rabbitmq", "activemq", "echo"]
PEERS = ["rabbitmq", "activemq"]
NAMES = {"wrenmq": "WrenMQ", "baseline": "WrenMQ before issue 14 (BASELINE_BIN)", "rabbitmq": "RabbitMQ 3.10.8", "activemq": "ActiveMQ 5.17.2",
         "echo": "echo server (ceiling)"}
TITLES = {
    "q1": "1. 1→1 queue, 256 B, non-persistent, auto ack",
    "q1p": "2. 1→1 queue, 256 B, persistent, receipt every 100, client-individual ack",
    "q4": "3. 4→4 queue, 1 KiB, non-persistent, auto ack",
    "fanout": "4. 1→10 topic fan-out, 100 B, non-persistent",
    "latency": "5. Latency at 5,000 msgs/s (256 B, non-persistent, 1→1 queue)",
    "latency-50k": "6. Latency at 50,000 msgs/s (256 B, non-persistent, 1→1 queue)",
    "pairs": "7. Scaling: P independent queue pairs, 256 B, non-persistent, auto ack",
    "conns": "8. 2,000 idle connections (one subscription each)",
    "fanout-sel": "9. 1→10 topic fan-out, each subscriber selecting half, 100 B, non-persistent",
    "q1-prio": "10. 1→1 queue, priorities 0–9 in turn, 256 B, non-persistent, auto ack",
    "sched": "11. Scheduled messages (AMQ_SCHEDULED_DELAY 1 h), 16 B, non-persistent",
    "q1-excl": "12. 1→1 exclusive queue, 256 B, non-persistent, auto ack",
    "q1-lvq": "13. 1→1 last-value queue (a new key per message), 256 B, non-persistent, auto ack",
    "q1-stream": "14. 1→1 non-destructive (retained stream) queue, 256 B, non-persistent, auto ack",
    "replay": "15. Replay of a retained stream from x-stream-offset:first, 256 B, persistent",
}
# issue-10/11 scenario -> the plain scenario it is compared with
PLAIN = {"fanout-sel": "fanout", "q1-prio": "q1", "q1-excl": "q1", "q1-lvq": "q1", "q1-stream": "q1"}
# Issue 14's own figures for the pre-issue build (µs of broker CPU per message), used when no
# measured baseline covers a scenario.
ISSUE_BASELINE = {"q1": 2.8, "q1p": 19.0}
PAIR_PS = sorted({int(s.removeprefix("pairs-")) for s, _ in by if s.startswith("pairs-")})


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def good(rs):
    """Runs that finished (no error); lost/duplicated are reported, not filtered."""
    return [r for r in rs if not r["result"].get("error")]


def summary(scen, broker):
    rs = by.get((scen, broker), [])
    if not rs:
        return None
    g = good(rs)
    res = [r["result"] for r in g]
    s = {
        "runs": len(rs), "ok_runs": len(g), "n": sorted({r["n"] for r in rs}),
        "msgs": med([x.get("msgs_per_sec") for x in res]),
        "mb": med([x.get("mb_per_sec") for x in res]),
        "p50": med([x.get("p50_us") for x in res]),
        "p99": med([x.get("p99_us") for x in res]),
        "p999": med([x.get("p999_us") for x in res]),
        "max": med([x.get("max_us") for x in res]),
        "rss": med([r["peak_rss_kb"] for r in g]),
        "cpu_us": med([r.get("cpu_us_per_msg") for r in g]),
        "cores": med([r.get("broker_cores") for r in g]),
        "cpu_secs": med([r.get("broker_cpu_secs") for r in g]),
        "lost": sum((r["result"].get("lost") or 0) for r in rs),
        "dup": sum((r["result"].get("duplicated") or 0) for r in rs),
        "errors": [r["result"].get("error") for r in rs if r["result"].get("error")],
        # The first run only: it is the one on a fresh process (run.sh restarts the broker
        # before the conns scenario); later runs reuse the heap the first one grew and freed,
        # and showed 0-1 KiB per connection, which no idle connection really costs.
        "per_conn": (min(g, key=lambda r: r["run"])["result"].get("rss_per_connection_kb")
                     if g else None),
        "rss_before": med([x.get("rss_before_kb") for x in res]),
        "rss_after": med([x.get("rss_after_kb") for x in res]),
        "elapsed": med([x.get("elapsed_secs") for x in res]),
        "all_msgs": [x.get("msgs_per_sec") for x in res],
        "excluded": sum((r["result"].get("excluded") or 0) for r in rs),
        "sent_rate": med([x["sent"] / x["elapsed_secs"] for x in res
                          if x.get("sent") and x.get("elapsed_secs")]),
        "bpm": med([x.get("bytes_per_message") for x in res]),
        "early": sum((r["result"].get("early_deliveries") or 0) for r in rs),
        "early_checked": sum(1 for x in res if x.get("early_deliveries") is not None),
    }
    if not g:
        s["msgs"] = None
    return s


def rows_of(scen, brokers=BROKERS):
    rows = {b: summary(scen, b) for b in brokers}
    return {b: s for b, s in rows.items() if s}


def f0(x):
    return "—" if x is None else f"{x:,.0f}"


def f1(x):
    return "—" if x is None else f"{x:,.1f}"


def f2(x):
    return "—" if x is None else f"{x:,.2f}"


def ms(x):
    return "—" if x is None else f"{x / 1000:,.1f}"


def mb(kib):
    return f1(kib / 1024 if kib else None)


def ns(s):
    return ",".join(f"{n:,}" for n in s["n"])


def ratio(a, b, invert=False):
    if a is None or b is None or a == 0 or b == 0:
        return None
    return b / a if invert else a / b


def fr(x):
    return "—" if x is None else f"{x:.2f}×"


def pct(x):
    return "—" if x is None else f"{x * 100:.0f}%"


def delivery(s):
    txt = f"{s['lost']} / {s['dup']}"
    if s["lost"] or s["dup"]:
        txt = f"**{txt} (not exactly once)**"
    return txt


def status(s):
    if s["ok_runs"] == s["runs"]:
        return f"{s['runs']}"
    return f"**{s['ok_runs']}/{s['runs']} (failed: {'; '.join(sorted(set(s['errors'])))[:200]})**"


def ceiling_share(rows, key="msgs"):
    """WrenMQ's figure as a share of the echo server's, or None when either is missing."""
    return ratio((rows.get("wrenmq") or {}).get(key), (rows.get("echo") or {}).get(key))


def echo_note(rows):
    """Why a table has no ceiling share, when the echo row is there but failed."""
    e = rows.get("echo")
    if e and e["msgs"] is None:
        return " The echo server failed every run of this scenario (see its row), so there is no ceiling here."
    return ""


# ---- baseline ------------------------------------------------------------------------------
BASE_SCENARIOS = ["q1", "q1p", "q4", "fanout", "latency", "latency-50k", "fanout-sel",
                  "q1-prio", "q1-excl", "q1-lvq", "q1-stream", "replay", "sched"] + [f"pairs-{p}" for p in PAIR_PS]

if ARGS.write_baseline:
    base = {"what": "WrenMQ broker CPU per delivered message (µs) and msgs/s, medians of one"
                    " bench/run.sh run of the pre-issue-14 build; bench/report.py reads it for"
                    " the 'at most half the CPU per message' targets",
            "date_utc": meta.get("date_utc"), "commit": meta.get("commit"),
            "broker_bin": meta.get("broker_bin"), "broker_version": meta.get("broker_version"),
            "runs": meta.get("runs"), "quick": meta.get("quick"), "note": ARGS.note, "loadavg": {k: v for k, v in meta.items() if k.startswith("loadavg_")},
            "scenarios": {}}
    for scen in BASE_SCENARIOS:
        s = summary(scen, "wrenmq")
        if s and s["cpu_us"] is not None:
            base["scenarios"][scen] = {
                "cpu_us_per_msg": s["cpu_us"], "broker_cores": s["cores"], "msgs_per_sec": s["msgs"],
                "ok_runs": s["ok_runs"], "runs": s["runs"],
                "per_run_cpu_us_per_msg": [r.get("cpu_us_per_msg") for r in by[(scen, "wrenmq")]]}
    c = summary("conns", "wrenmq")
    if c and c["per_conn"] is not None:
        base["conns_kib_per_connection"] = c["per_conn"]
    with open(ARGS.write_baseline, "w") as f:
        json.dump(base, f, indent=2, sort_keys=True)
        f.write("\n")
    raise SystemExit(0)

baseline = None
if ARGS.baseline:
    try:
        baseline = json.load(open(ARGS.baseline))
    except FileNotFoundError:
        baseline = None


def baseline_of(scen):
    """(µs per message, where it comes from) of the pre-issue-14 build, or (None, None): from
    this run's `baseline` target if it ran, else the baseline file, else the issue."""
    s = summary(scen, "baseline")
    if s and s["cpu_us"] is not None:
        return s["cpu_us"], "this run"
    b = ((baseline or {}).get("scenarios") or {}).get(scen)
    if b and b.get("cpu_us_per_msg"):
        return b["cpu_us_per_msg"], "baseline file"
    if scen in ISSUE_BASELINE:
        return ISSUE_BASELINE[scen], "issue 14"
    return None, None


# ---- document ------------------------------------------------------------------------------
out = []
w = out.append
results_summary = {}


def cpu_cells(s):
    return f" {f2(s['cpu_us'])} | {f2(s['cores'])} |"


def throughput_table(scen):
    rows = rows_of(scen)
    if not rows:
        return
    w(f"## {TITLES[scen]}")
    w("")
    w("| broker | n | runs ok | msgs/s | MB/s | p50 ms | p99 ms | p99.9 ms | broker CPU µs/msg | broker cores | peak RSS MB | lost / dup | WrenMQ ÷ this |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    wm = rows.get("wrenmq", {}).get("msgs") if "wrenmq" in rows else None
    for b, s in rows.items():
        w(f"| {NAMES[b]} | {ns(s)} | {status(s)} | {f0(s['msgs'])} | {f1(s['mb'])} |"
          f" {ms(s['p50'])} | {ms(s['p99'])} | {ms(s['p999'])} |{cpu_cells(s)} {mb(s['rss'])} |"
          f" {delivery(s)} | {'' if b == 'wrenmq' else fr(ratio(wm, s['msgs']))} |")
    peers = [rows[p]["msgs"] for p in PEERS if p in rows and rows[p]["msgs"]]
    best = max(peers) if peers else None
    results_summary[scen] = {"wren": wm, "best_peer": best, "rows": rows}
    w("")
    line = f"WrenMQ ÷ the faster peer: **{fr(ratio(wm, best))}**."
    share = ceiling_share(rows)
    if share is not None:
        line += f" WrenMQ = **{pct(share)} of the echo ceiling**"
        cpu = ratio(rows["wrenmq"]["cpu_us"], rows["echo"]["cpu_us"])
        line += f" (at {fr(cpu)} its CPU per message)." if cpu else "."
    w(line + echo_note(rows))
    spread = "; ".join(f"{NAMES[b]}: " + (", ".join(f0(x) for x in s["all_msgs"]) or "every run failed")
                       for b, s in rows.items())
    w(f"Per-run msgs/s — {spread}.")
    w("")


def latency_table(scen, rate):
    rows = rows_of(scen)
    if not rows:
        return
    w(f"## {TITLES[scen]}")
    w("")
    w(f"`latency -r {rate} -t {meta.get('latency_secs')}`: latency from each message's scheduled send time"
      " to its arrival (HDR histogram, µs), so a broker that falls behind the rate shows it. The"
      " echo server row is the floor (tool + loopback + scheduler).")
    w("")
    w("| broker | messages | runs ok | achieved msgs/s | p50 µs | p99 µs | p99.9 µs | max µs | broker CPU µs/msg | broker cores | peak RSS MB | lost / dup |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b, s in rows.items():
        w(f"| {NAMES[b]} | {ns(s)} | {status(s)} | {f0(s['msgs'])} | {f0(s['p50'])} |"
          f" {f0(s['p99'])} | {f0(s['p999'])} | {f0(s['max'])} |{cpu_cells(s)} {mb(s['rss'])} | {delivery(s)} |")
    results_summary[scen] = rows
    w("")
    r = ratio((rows.get("wrenmq") or {}).get("p99"), (rows.get("echo") or {}).get("p99"))
    if r is not None:
        w(f"WrenMQ p99 = **{fr(r)} the echo server's**.")
    elif echo_note(rows):
        w(echo_note(rows).strip())
    w("")


def pairs_table():
    if not PAIR_PS:
        return
    w(f"## {TITLES['pairs']}")
    w("")
    w("`queue -P P -C P --queues P -n N -s 256`: P producers each sending to its own queue"
      " (DEST.0 .. DEST.P-1), P consumers each on its own queue, every queue tracked exactly-once"
      " on its own; N messages in total over the P queues. msgs/s is the total over all queues."
      " broker cores = broker CPU seconds ÷ wall seconds of the run; the load tool shares the"
      " same 2 cores, so the broker alone cannot reach 2.0.")
    w("")
    w("| broker | P | n | runs ok | msgs/s | ÷ P=1 | broker cores | broker CPU µs/msg | p99 ms | peak RSS MB | lost / dup | WrenMQ % of echo |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    results_summary["pairs"] = {}
    for b in BROKERS:
        one = summary("pairs-1", b)
        for p in PAIR_PS:
            s = summary(f"pairs-{p}", b)
            if not s:
                continue
            results_summary["pairs"].setdefault(b, {})[p] = s
            share = ""
            if b == "wrenmq":
                share = pct(ratio(s["msgs"], (summary(f"pairs-{p}", "echo") or {}).get("msgs")))
            w(f"| {NAMES[b]} | {p} | {ns(s)} | {status(s)} | {f0(s['msgs'])} |"
              f" {fr(ratio(s['msgs'], one['msgs'] if one else None))} | {f2(s['cores'])} | {f2(s['cpu_us'])} |"
              f" {ms(s['p99'])} | {mb(s['rss'])} | {delivery(s)} | {share} |")
    w("")


def conns_table():
    rows = rows_of("conns", ["wrenmq", "rabbitmq", "activemq"])
    if not rows:
        return
    w(f"## {TITLES['conns']}")
    w("")
    w("`connections -k 2000 --broker-pid PID`: VmRSS of the broker before opening and with all 2,000"
      " connections open (each CONNECTed and SUBSCRIBEd to one queue). Each broker is restarted just"
      " before (a fresh process: memory its heap grew to and freed in earlier scenarios would hide"
      " the growth); its runs then follow each other on that process (3 s apart), so only the first"
      " run measures what connections cost a fresh broker: later ones reuse heap the first grew and"
      " freed. The figure compared is the first run's (per run: first, second, ...)."
      " broker CPU s = CPU to accept, CONNECT and SUBSCRIBE the 2,000.")
    w("")
    w("| broker | runs ok | RSS before MB | RSS after MB | KiB per connection (first run) | per run | time to open s | broker CPU s | WrenMQ ÷ this |")
    w("|---|---|---|---|---|---|---|---|---|")
    wm = rows.get("wrenmq", {}).get("per_conn") if "wrenmq" in rows else None
    for b, s in rows.items():
        per_run = ", ".join(f1(r["result"].get("rss_per_connection_kb")) for r in sorted(by[("conns", b)], key=lambda r: r["run"]))
        w(f"| {NAMES[b]} | {status(s)} | {mb(s['rss_before'])} | {mb(s['rss_after'])} | {f1(s['per_conn'])} | {per_run} |"
          f" {f1(s['elapsed'])} | {f2(s['cpu_secs'])} | {'' if b == 'wrenmq' else fr(ratio(wm, s['per_conn']))} |")
    results_summary["conns"] = rows
    w("")


def feature_tables():
    """The issue-10/11 scenarios (WrenMQ only), each next to the plain scenario it extends."""
    rows = [(scen, summary(scen, "wrenmq"))
            for scen in ["fanout-sel", "q1-prio", "q1-excl", "q1-lvq", "q1-stream"]]
    rows = [(scen, s) for scen, s in rows if s]
    sched = summary("sched", "wrenmq")
    replay = summary("replay", "wrenmq")
    if not rows and not sched and not replay:
        return
    w("## Delivery features and queue kinds (issues 10, 11): selectors, priorities, exclusive and"
      " last-value queues, scheduled messages — WrenMQ only")
    w("")
    w("The peers are not configured for these (bench/run.sh header). Each feature run is shown"
      " with the plain WrenMQ run it extends, from the same broker process. sent/s = messages"
      " the producer got through per second (the same stream in both rows of a pair; for the"
      " fan-out, every selected delivery counts in msgs/s, half as many as plain fan-out's)."
      " outside = deliveries a subscriber's selector excludes (must be 0).")
    w("")
    if rows:
        w("| scenario | n | runs ok | msgs/s | sent/s | p50 ms | p99 ms | p99.9 ms | broker CPU µs/msg | broker cores | peak RSS MB | lost / dup / outside | sent/s ÷ plain |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for scen, s in rows:
            plain = summary(PLAIN[scen], "wrenmq")
            for label, r, base in [(TITLES[scen].split(". ", 1)[1], s, plain),
                                   (f"plain: {TITLES[PLAIN[scen]].split('. ', 1)[1]}", plain, None)]:
                if not r:
                    continue
                d = f"{r['lost']} / {r['dup']} / {r['excluded']}"
                if r["lost"] or r["dup"] or r["excluded"]:
                    d = f"**{d} (not as selected)**"
                rel = "" if r is plain else fr(ratio(r["sent_rate"], base["sent_rate"]) if base else None)
                w(f"| {label} | {ns(r)} | {status(r)} | {f0(r['msgs'])} |"
                  f" {f0(r['sent_rate'])} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(r['p999'])} |"
                  f"{cpu_cells(r)} {mb(r['rss'])} | {d} | {rel} |")
        w("")
    if sched:
        w(f"### {TITLES['sched'].split('. ', 1)[1]}")
        w("")
        w("`scheduled -n N -s 16 --delay-ms 3600000 --receipt-every 1000 --broker-pid PID`: VmRSS of the"
          " broker before the first SEND and after the last RECEIPT (+0.5 s), over N; then a 1 s"
          " subscription that must receive none of them (early deliveries). CPU per scheduled message sent.")
        w("")
        w("| n | runs ok | RSS before MB | RSS after MB | bytes per scheduled message | sent/s | broker CPU µs/msg | early deliveries |")
        w("|---|---|---|---|---|---|---|---|")
        early = "not checked" if not sched["early_checked"] else (
            f"**{sched['early']:,} (delivered before their time)**" if sched["early"] else "0")
        w(f"| {ns(sched)} | {status(sched)} | {mb(sched['rss_before'])} | {mb(sched['rss_after'])} |"
          f" {f0(sched['bpm'])} | {f0(sched['sent_rate'])} | {f2(sched['cpu_us'])} | {early} |")
        w("")
    if replay:
        rs = [r["result"] for r in good(by.get(("replay", "wrenmq"), []))]
        w(f"### {TITLES['replay'].split('. ', 1)[1]}")
        w("")
        w("`replay -n N -s 256 --persistent true --receipt-every 1000 --broker-pid PID`: preload N"
          " messages into a non-destructive queue, then one consumer reads them all from"
          " `x-stream-offset:first`; the broker's VmRSS is sampled every 100 ms while it replays."
          " CPU per replayed message covers the preload too.")
        w("")
        w("| n | runs ok | replay msgs/s | preload s | RSS before replay MB | RSS peak while replaying MB | broker CPU µs/msg | lost / dup |")
        w("|---|---|---|---|---|---|---|---|")
        peak = med([x.get("rss_peak_kb") for x in rs])
        pre = med([x.get("preload_secs") for x in rs])
        w(f"| {ns(replay)} | {status(replay)} | {f0(replay['msgs'])} |"
          f" {f1(pre)} | {mb(replay['rss_before'])} | {mb(peak)} | {f2(replay['cpu_us'])} |"
          f" {replay['lost']} / {replay['dup']} |")
        w("")


for scen in ["q1", "q1p", "q4", "fanout"]:
    throughput_table(scen)
latency_table("latency", 5000)
latency_table("latency-50k", 50000)
pairs_table()
conns_table()
feature_tables()
body = out
out = []
w = out.append


# ---- targets (issue 14) ---------------------------------------------------------------------
def verdict(ok):
    return "not measured" if ok is None else ("**met**" if ok else "**not met**")


def wren(scen, key="msgs"):
    s = summary(scen, "wrenmq")
    return s[key] if s else None


w("## Targets (issue 14)")
w("")
w("Each from this run's medians; \"not measured\" when the scenario did not run or every run of it failed.")
w("")
w("| target | measured | met? |")
w("|---|---|---|")
q1 = rows_of("q1")
share = ceiling_share(q1)
w(f"| 1→1 non-persistent ≥ 50% of the echo ceiling | {f0(wren('q1'))} vs {f0((q1.get('echo') or {}).get('msgs'))} msgs/s"
  f" = {pct(share)} | {verdict(None if share is None else share >= 0.5)} |")
x = wren("q4")
w(f"| 4→4 1 KiB ≥ 500k msgs/s | {f0(x)} msgs/s | {verdict(None if x is None else x >= 500_000)} |")
x = wren("fanout")
w(f"| fan-out 1→10 ≥ 2M deliveries/s | {f0(x)} deliveries/s | {verdict(None if x is None else x >= 2_000_000)} |")
x = wren("q1p")
w(f"| persistent, receipt every 100 ≥ 85k msgs/s | {f0(x)} msgs/s | {verdict(None if x is None else x >= 85_000)} |")
# "CPU per message at most half of today's in each": each of the four throughput targets (at a
# fixed rate, latency runs' CPU per message is mostly the broker's idle wake-ups).
for scen in ["q1", "q1p", "q4", "fanout"]:
    base, src = baseline_of(scen)
    if base is None:
        continue
    now = wren(scen, "cpu_us")
    label = TITLES[scen].split(". ", 1)[-1]
    r = ratio(now, base)
    w(f"| CPU per message ≤ half the pre-issue-14 build's: {label} | {f2(now)} µs vs {f2(base)} µs ({src})"
      f" = {fr(r)} | {verdict(None if r is None else r <= 0.5)} |")
lat = rows_of("latency")
r = ratio((lat.get("wrenmq") or {}).get("p99"), (lat.get("echo") or {}).get("p99"))
w(f"| p99 at 5k/s within 1.2× of the echo's | {f0((lat.get('wrenmq') or {}).get('p99'))} µs vs"
  f" {f0((lat.get('echo') or {}).get('p99'))} µs = {fr(r)} | {verdict(None if r is None else r <= 1.2)} |")
lat50 = rows_of("latency-50k")
wl, el = lat50.get("wrenmq"), lat50.get("echo")
present = wl is not None and wl["ok_runs"] > 0
w(f"| a 50k/s latency point | WrenMQ p99 {f0(wl['p99'] if wl else None)} µs, echo p99 {f0(el['p99'] if el else None)} µs"
  f" ({fr(ratio(wl['p99'] if wl else None, el['p99'] if el else None))}) | {verdict(present if wl else None)} |")
c = (rows_of("conns").get("wrenmq") or {}).get("per_conn")
w(f"| idle connection with one subscription ≤ 8 KiB RSS | {f1(c)} KiB | {verdict(None if c is None else c <= 8)} |")
pw = {p: summary(f"pairs-{p}", "wrenmq") for p in PAIR_PS}
pw = {p: s for p, s in pw.items() if s}
multi = [s["cores"] for p, s in pw.items() if p >= 2]
cores_txt = ", ".join(f"P={p}: {f2(s['cores'])} cores, {f0(s['msgs'])} msgs/s" for p, s in pw.items()) or "—"
w(f"| scaling: more than one core once P ≥ 2 (the tool shares the 2 cores, so not 2.0) | {cores_txt} |"
  f" {verdict(None if not multi or None in multi else min(multi) > 1.0)} |")
w("")
if any(b == "baseline" for _, b in by):
    w(f"CPU baseline: the pre-issue-14 build `{meta.get('baseline_bin')}` measured in this run (the"
      " `WrenMQ before issue 14` rows); for scenarios it did not run, "
      + (f"`{ARGS.baseline}`, else " if baseline else "")
      + "the issue's figures (2.8 µs non-persistent 1→1, 19 µs persistent).")
elif baseline:
    w(f"CPU baseline: `{ARGS.baseline}`, `{baseline.get('broker_bin')}` measured {baseline.get('date_utc')}"
      f" ({baseline.get('runs')} runs{', QUICK' if baseline.get('quick') == '1' else ''}). {baseline.get('note') or ''}"
      " Scenarios it lacks use the issue's figures (2.8 µs non-persistent 1→1, 19 µs persistent).")
else:
    w("CPU baseline: no measured baseline file, so the issue's figures (≈2.8 µs per non-persistent 1→1"
      " message, ≈19 µs per persistent one) are the baseline, for q1 and q1p only.")
w("")
targets = out
out = []
w = out.append

w("# WrenMQ vs RabbitMQ vs ActiveMQ: STOMP side by side")
w("")
w(f"Generated by `bash bench/run.sh` on {meta.get('date_utc')} at commit {meta.get('commit')}"
  f" ({meta.get('runs')} runs per scenario and broker, medians{', QUICK mode' if meta.get('quick') == '1' else ''})."
  + (f" Broker measured: `{meta.get('broker_bin')}` ({meta.get('broker_version')})." if meta.get("broker_bin") else ""))
w("")
out.extend(targets)
w("## Machine")
w("")
w(f"- CPU: {meta.get('cpu')}, nproc {meta.get('nproc')}; memory {meta.get('mem')}; kernel {meta.get('kernel')}")
w(f"- {meta.get('rustc')}; RabbitMQ {meta.get('pkg_rabbitmq-server')} (Erlang {meta.get('pkg_erlang-base')}),"
  f" ActiveMQ {meta.get('pkg_activemq')} (OpenJDK {meta.get('pkg_openjdk-17-jre-headless')})")
loads = ", ".join(f"{k.removeprefix('loadavg_')}: {v}" for k, v in meta.items() if k.startswith("loadavg_"))
w(f"- Load average (1/5/15 min) at each phase: {loads}. The load tool and the broker share the"
  " 2 cores; anything else running on the machine shows up here and in the run-to-run spread.")
w("")
w("## Setup")
w("")
w("- One broker at a time: start, all scenarios, stop; then the next. Order: "
  + ", ".join(NAMES.get(b, b) for b in meta.get("brokers", "").split()) + ".")
if meta.get("warmup", "0") == "1":
    w("- Each broker first gets one unrecorded warm-up run (1→1 queue, n/5), so JIT-compiled peers are"
      " not measured cold.")
w("- Load tool: `target/release/wrenmq perf` (same binary for every broker); each run has its own"
  " destination name; every run is under `timeout " + meta.get("run_timeout", "300") + "`.")
w("- The echo server (`wrenmq perf echo-server`) is the ceiling: a forwarder that only parses SENDs and"
  " writes MESSAGEs (round-robin on /queue/, fan-out on /topic/), answers receipts and ignores ACKs."
  " It runs every scenario it can serve; each table gives WrenMQ as a share of it.")
w(f"- Prefetch / consumer window {meta.get('window')} messages for everyone: RabbitMQ `prefetch-count:{meta.get('window')}`,"
  f" ActiveMQ `activemq.prefetchSize:{meta.get('window')}`, WrenMQ its default window ({meta.get('window')},"
  " `default-consumer-window`). RabbitMQ gets `login:guest passcode:guest` and every broker `host:/`.")
w("- Non-persistent runs send `persistent:false` to WrenMQ (whose default is persistent) and ActiveMQ,"
  " and no `persistent` header to RabbitMQ: its STOMP adapter reads `persistent` on a SEND to `/queue/`"
  " as a queue-declare argument (a non-durable queue) and then refuses the consumer (RESOURCE_LOCKED);"
  " without it RabbitMQ's SENDs are transient.")
w("- Persistent run: `persistent:true`, RECEIPT every 100 SENDs waited for before going on. RabbitMQ answers"
  " after its publisher confirm (fsync), ActiveMQ after the KahaDB store (journalDiskSyncStrategy=always),"
  " WrenMQ after the journal's group commit with `[journal] sync = true` (fsync).")
w("- n differs per broker so that the slow ones finish in bounded time (msgs/s is comparable; n is"
  " in each table). msgs/s = MESSAGE frames received per second, first send to last needed arrival"
  " (fan-out: every subscriber's copy counts); MB/s = body bytes. Latency of throughput runs is"
  " send→receive under full load (queueing included). Peak RSS = largest VmRSS of the broker"
  " process sampled every 0.2 s during the runs. lost / dup summed over all runs.")
trees = "; ".join(f"{NAMES.get(k.removeprefix('cpu_tree_'), k)}: {v}" for k, v in meta.items() if k.startswith("cpu_tree_"))
w("- Broker CPU: utime + stime from `/proc/PID/stat` (all threads; plus every live child process and"
  " the reaped ones' cutime + cstime, `bench/proc_cpu.py`), read right before and right after each run."
  " broker CPU µs/msg = that CPU ÷ MESSAGE frames delivered (fan-out: per subscriber copy); broker"
  " cores = that CPU ÷ the run's wall time (which includes connecting and subscribing). The load"
  " tool's own CPU is not in it. Processes counted: " + (trees or "not recorded") + ".")
w("")
out.extend(body)

# ---- earlier targets -----------------------------------------------------------------------
w("## Earlier targets (the first benchmark issue)")
w("")
w("| target | measured | met? |")
w("|---|---|---|")


def yes(ok):
    return "—" if ok is None else ("**yes**" if ok else "**no**")


for scen in ["q1", "q1p", "q4", "fanout"]:
    s = results_summary.get(scen)
    if not s:
        continue
    r = ratio(s["wren"], s["best_peer"])
    w(f"| {TITLES[scen].split('. ', 1)[1]}: WrenMQ ≥ 3× the faster peer | {fr(r)} | {yes(None if r is None else r >= 3)} |")
lat = results_summary.get("latency")
if lat and "wrenmq" in lat:
    peers = [lat[p]["p99"] for p in PEERS if p in lat and lat[p]["p99"]]
    best = min(peers) if peers else None
    wp = lat["wrenmq"]["p99"]
    r = ratio(wp, best)
    w(f"| latency at 5k/s: WrenMQ p99 ≤ 1/3 of the better peer's p99 | {f0(wp)} µs vs {f0(best)} µs = {fr(r)} | {yes(None if r is None else r <= 1 / 3)} |")
c = results_summary.get("conns")
if c and "wrenmq" in c:
    peers = [c[p]["per_conn"] for p in PEERS if p in c and c[p]["per_conn"]]
    best = min(peers) if peers else None
    r = ratio(c["wrenmq"]["per_conn"], best)
    w(f"| idle connections: WrenMQ RSS per connection ≤ 1/4 of the better peer's | {f1(c['wrenmq']['per_conn'])} KiB vs {f1(best)} KiB = {fr(r)} | {yes(None if r is None else r <= 0.25)} |")
w("")

# ---- commands ------------------------------------------------------------------------------
w("## Exact commands")
w("")
w("First run of each scenario and broker (later runs differ only in the destination name; ports:"
  " WrenMQ and the echo server on a free loopback port, RabbitMQ 61713, ActiveMQ 61723; broker"
  " settings in bench/PEERS.md; WrenMQ's config is written by bench/run.sh: one STOMP acceptor and"
  " `[journal] enabled = true, sync = true` in a temp data dir).")
w("")
w("```")
seen = set()
for r in runs:
    k = (r["scenario"], r["broker"])
    if k in seen:
        continue
    seen.add(k)
    w(f"# {r['broker']} {r['scenario']}")
    w(r["cmd"])
w("```")
w("")
w("Raw JSON lines: `raw/<scenario>.<broker>.jsonl` (the tool's line, one per run), `raw/runs.jsonl`"
  " (the same with broker, run, n, exit status, peak RSS, broker CPU seconds, wall seconds, broker"
  " cores, CPU µs per message and command), `raw/meta.txt` (with the processes each broker's CPU"
  " covers), stderr of every run in `raw/logs/`.")

open(f"{RES}/RESULTS.md", "w").write("\n".join(out) + "\n")
