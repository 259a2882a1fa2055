#!/usr/bin/env python3
"""bench/proc_cpu.py PID [--tree]: CPU time of a broker and every process below it, from /proc.

Prints the total of utime + stime + cutime + cstime, in seconds, over PID and all its live
descendants. /proc/PID/stat of a process already sums all its threads, so a multi-threaded
broker (WrenMQ's runtime and journal threads, a JVM, Erlang's schedulers) is counted whole;
the descendants cover helpers a broker forks (beam.smp's erl_child_setup and inet_gethost),
and cutime/cstime keep the time of those that exited and were reaped meanwhile (a reaped
child's time moves into its parent's cutime, so nothing is counted twice). bench/run.sh
reads this right before and right after each run: the difference is the broker's CPU for it.

With --tree it prints the processes counted instead ("comm(pid) comm(pid) ..."), so that a
results file can show which processes a peer's figure covers. Prints nothing (exit 1) when
PID is gone.
"""

import os
import sys


def stat_of(pid):
    """(ppid, comm, ticks) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # comm is in parentheses and may hold spaces or ')': the fields follow the last ')'
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17
    ppid = int(rest[1])
    ticks = sum(int(x) for x in rest[11:15])
    return ppid, comm, ticks


def tree(root):
    """[(pid, comm, ticks)] of root and its live descendants (root first)."""
    children = {}
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = stat_of(int(d))
        if st is None:
            continue
        stats[int(d)] = st
        children.setdefault(st[0], []).append(int(d))
    if root not in stats:
        st = stat_of(root)
        if st is None:
            return []
        stats[root] = st
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out.append((pid, stats[pid][1], stats[pid][2]))
        todo.extend(children.get(pid, []))
    return out


def main():
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        sys.exit("usage: proc_cpu.py PID [--tree]")
    procs = tree(int(sys.argv[1]))
    if not procs:
        sys.exit(1)
    if "--tree" in sys.argv[2:]:
        print(" ".join(f"{comm}({pid})" for pid, comm, _ in procs))
    else:
        print(f"{sum(t for _, _, t in procs) / os.sysconf('SC_CLK_TCK'):.2f}")


main()
