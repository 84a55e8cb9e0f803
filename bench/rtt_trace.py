#!/usr/bin/env python3
"""Where an idle round trip spends its time in each gateway, from a scheduler and syscall trace.

    perf script --ns -F comm,pid,tid,cpu,time,event,trace -i TRACE | rtt_trace.py NAME=PID ...

TRACE is `perf record -a` of raw_syscalls:sys_enter/sys_exit, sched:sched_waking,
sched:sched_switch and net:netif_receive_skb while the side-by-side pings run; each NAME=PID
names one gateway process, NAME being "<tunnel> gw1" or "<tunnel> gw2" (gw1 is the client's
side). For every tunnel it prints the medians of the four hops of a round trip through the
gateways, each split into what the gateway's own thread did:

  gw1 cold send     the request, from the TUN device to the peer: asleep for ~20 ms before
  gw2 cold receive  the request, from the peer to the TUN device: asleep before too
  gw2 warm send     the reply, which the server gives back while gw2 is still writing
  gw1 warm receive  the reply, tens of microseconds after gw1 last ran

  woken to running   from the wake-up (the packet arriving) to the thread running: the
                     scheduler's, and mostly the same for every tunnel
  to the read/recv   from running (or epoll_wait's return) to the read or receive
  read / recv        the syscall
  user: ...          from that syscall's return to the next one: lookup and seal, or open
  send until the peer is woken / write until in the stack
                     the send or write up to the next gateway being woken, or the packet
                     entering the stack behind the TUN device
  = in the gateway   the sum, from running to the packet being on its way

The gateways' own time is what an implementation decides; the wake-ups are the machine's.
"""
import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*(\S+)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$")
SYSCALLS = {0: "read", 1: "write", 44: "send", 46: "send", 45: "recv", 47: "recv", 299: "recv",
            232: "epoll", 281: "epoll"}
HOPS = {("gw1", "send"): "gw1 cold send", ("gw2", "recv"): "gw2 cold receive",
        ("gw2", "send"): "gw2 warm send", ("gw1", "recv"): "gw1 warm receive"}
SEGMENTS = {
    "send": ("to the read", "read", "user: look up, seal", "send until the peer is woken"),
    "recv": ("to the recv", "recv", "user: open", "write until in the stack"),
}


def episodes(lines, pids):
    """Each run of a gateway thread, switch-in to switch-out: (name, events, wake-up time)."""
    tid_pid, running, waking, out = {}, {}, {}, []
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        _, pid, tid, _, t, ev, rest = m.groups()
        tid, t = int(tid), float(t) * 1e6
        tid_pid[tid] = pid
        if ev == "sched:sched_waking":
            woken = int(re.search(r" pid=(\d+)", rest).group(1))
            waking[woken] = t
            if tid in running:
                running[tid][1].append((t, "woke"))
        elif ev == "sched:sched_switch":
            prev = int(re.search(r"prev_pid=(\d+)", rest).group(1))
            nxt = int(re.search(r"next_pid=(\d+)", rest).group(1))
            if prev in running:
                out.append(running.pop(prev))
            name = pids.get(tid_pid.get(nxt))
            if name:
                running[nxt] = (name, [(t, "in")], waking.pop(nxt, None))
        elif tid in running:
            if ev.startswith("raw_syscalls:"):
                nr = int(re.search(r"NR (\d+)", rest).group(1))
                kind = "enter" if ev.endswith("sys_enter") else "exit"
                running[tid][1].append((t, f"{kind} {SYSCALLS.get(nr, nr)}"))
            elif ev == "net:netif_receive_skb" and not re.search(r"dev=(wan|lan|c0|s0)", rest):
                # A packet written to the TUN device entering the stack (the other devices are
                # bench/throughput.sh's veth pairs).
                running[tid][1].append((t, "tun"))
    return out


def hops(eps):
    """(tunnel, hop, segment) -> durations, microseconds."""
    res = defaultdict(list)
    for name, evs, woken in eps:
        tunnel, gw = name.rsplit(" ", 1)
        start, first, i = evs[0][0], True, 1
        while i < len(evs):
            t, what = evs[i]
            if what == "exit epoll" and not first:
                start = t
            if what not in ("enter read", "enter recv"):
                i += 1
                continue
            kind = "send" if what == "enter read" else "recv"
            j = i
            while j < len(evs) and evs[j][1] != "enter epoll":
                j += 1
            span = evs[i:j]
            at = {w: x for x, w in reversed(span)}
            done = ("enter send", "woke") if kind == "send" else ("enter write", "tun")
            mid = "exit read" if kind == "send" else "exit recv"
            if all(k in at for k in (mid,) + done) and at[done[1]] >= at[done[0]]:
                hop = HOPS[(gw, kind)]
                if first and woken is not None:
                    res[(tunnel, hop, "woken to running")].append(evs[0][0] - woken)
                for seg, v in zip(SEGMENTS[kind], (t - start, at[mid] - t, at[done[0]] - at[mid],
                                                   at[done[1]] - at[done[0]])):
                    res[(tunnel, hop, seg)].append(v)
                res[(tunnel, hop, "= in the gateway")].append(at[done[1]] - start)
            first = False
            i = j
    return res


def main():
    pids = {}
    for a in sys.argv[1:]:
        name, pid = a.rsplit("=", 1)
        pids[pid] = name
    res = hops(episodes(sys.stdin, pids))
    tunnels = list(dict.fromkeys(n.rsplit(" ", 1)[0] for n in pids.values()))
    print(f"{'':<48}" + "".join(f"{t:>14}" for t in tunnels))
    totals = defaultdict(float)
    for hop in HOPS.values():
        kind = "send" if "send" in hop else "recv"
        for seg in ("woken to running",) + SEGMENTS[kind] + ("= in the gateway",):
            if not any(res.get((t, hop, seg)) for t in tunnels):
                # gw2's warm send follows its receive without a sleep: no wake-up of its own.
                continue
            row = f"{hop + ', ' + seg:<48}"
            for t in tunnels:
                v = res.get((t, hop, seg))
                if not v:
                    row += f"{'-':>14}"
                    continue
                m = statistics.median(v)
                if seg.startswith("="):
                    totals[t] += m
                row += f"{m:>9.1f} ({len(v):>3})"[-14:].rjust(14)
            print(row)
    print(f"{'in the gateways, the four hops':<48}" + "".join(f"{totals[t]:>14.1f}" for t in tunnels))


if __name__ == "__main__":
    main()
