#!/usr/bin/env python3
"""bench/soak_mixed_plot.py OUT NAME: plots OUT/NAME.csv (written by bench/soak_mixed.py) into
OUT/NAME.png: RSS, open fds, the fast path's p99, the probe's slowest round trip beside the
disk probe's slowest fdatasync, CPU and steal, and open churn connections, per second.
Separate from bench/soak_mixed.sh so a finished run's CSV can be plotted again."""
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out, name = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{out}/{name}.csv")))
t = [float(r["secs"]) / 60 for r in rows]
fig, axes = plt.subplots(6, 1, figsize=(10, 14), sharex=True)
axes[0].plot(t, [int(r["rss_kb"]) / 1024 for r in rows])
axes[0].set_ylabel("broker RSS (MiB)")
axes[1].plot(t, [int(r["fds"]) for r in rows])
axes[1].set_ylabel("broker open fds")
axes[2].plot(t, [int(r["lat_p99_us"]) / 1000 for r in rows], linewidth=0.5)
axes[2].set_ylabel("fast path p99 (ms), per s")
axes[2].set_yscale("log")
# Seconds in which the probe had no round trip (its start) are left out, not drawn as 0.
probed = [(x, r) for x, r in zip(t, rows) if int(r["probe_n"]) > 0]
axes[3].plot([x for x, _ in probed], [int(r["probe_max_us"]) / 1000 for _, r in probed],
             linewidth=0.5, label="probe SEND to MESSAGE, slowest")
axes[3].plot([x for x, _ in probed], [max(1, int(r["disk_fsync_max_us"])) / 1000 for _, r in probed],
             linewidth=0.5, label="disk probe 4 KiB fdatasync, slowest")
axes[3].legend(loc="upper right", fontsize=7)
axes[3].set_ylabel("probe and disk (ms), max per s")
axes[3].set_yscale("log")
axes[4].plot(t, [float(r["steal_pct"]) for r in rows], linewidth=0.5, label="steal %")
axes[4].plot(t, [100 * float(r["broker_cores"]) for r in rows], linewidth=0.5, label="broker % of a core")
axes[4].plot(t, [100 * (float(r["main_cores"]) + float(r["churn_cores"]) + float(r["probe_cores"])) for r in rows],
             linewidth=0.5, label="load tool % of a core")
axes[4].legend(loc="upper right", fontsize=7)
axes[4].set_ylabel("CPU")
axes[5].plot(t, [int(r["churn_open"]) for r in rows])
axes[5].set_ylabel("churn connections open")
axes[5].set_xlabel("minutes")
for ax in axes:
    ax.set_ylim(bottom=0 if ax not in (axes[2], axes[3]) else None)
    ax.grid(alpha=0.3)
fig.suptitle("WrenMQ mixed soak: persistent fast path + vanishing consumers, paging slow queue, TLS/WS topic, churn")
fig.tight_layout()
fig.savefig(f"{out}/{name}.png", dpi=90)
