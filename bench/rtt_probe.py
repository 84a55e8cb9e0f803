#!/usr/bin/env python3
"""Idle RTT of several tunnels side by side, one probe in flight at a time.

    rtt_probe.py COUNT PERIOD_MS OUT SRC:DST [SRC:DST ...]

Every PERIOD_MS each tunnel (a source address in front of it, a destination behind it) gets
one ICMP echo request, the tunnels spread evenly over the period and their order rotated from
round to round; a probe's reply is awaited (at most the tunnels' share of the period) before
the next probe leaves. Writes "seq rtt_ms" lines to OUT.<i> for tunnel i.

Why not one `ping` per tunnel: each `ping -i` schedules its next request from when it woke,
so the pings drift against each other by their wake-up lateness, and over a few thousand
rounds their requests meet now and then: two tunnels' packets then queue behind each other in
the gateways and on the machine's 2 cores, and which tunnel pays depends on the drift. Here the
schedule is absolute and the probes never overlap.

The RTT is taken from the kernel's software timestamps on the client's socket: the request
when it leaves the client's interface (SOF_TIMESTAMPING_TX_SOFTWARE), the reply when the
interface receives it. Neither includes this script's own latency, and both are taken the
same way for every tunnel. Run inside the client's namespace, as root (raw socket).
"""
import os
import socket
import struct
import sys
import time

SO_TIMESTAMPING = 37  # also the control message's type, SCM_TIMESTAMPING
TX_SOFTWARE, RX_SOFTWARE, SOFTWARE, OPT_TSONLY = 1 << 1, 1 << 3, 1 << 4, 1 << 11
MSG_ERRQUEUE = 0x2000
SOL_RAW, ICMP_FILTER = 255, 1  # raw ICMP sockets' mask of the types to drop


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def stamp(ancdata):
    """The software timestamp of a SCM_TIMESTAMPING control message, in seconds."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return None


def transmitted(sock):
    """The transmit timestamp waiting on the socket's error queue, if any."""
    tx = None
    while True:
        try:
            _, anc, _, _ = sock.recvmsg(64, 1024, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return tx
        tx = stamp(anc) or tx


def probe(tx_sock, rx_sock, dst, ident, seq, wait):
    """Sends one echo request; the RTT in seconds, or None without a reply within `wait`."""
    body = struct.pack("!d", time.time()) + bytes(48)
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + body), ident, seq) + body
    deadline = time.monotonic() + wait
    tx_sock.sendto(pkt, (dst, 0))
    rx = None
    while rx is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        rx_sock.settimeout(left)
        try:
            data, anc, _, (src, _) = rx_sock.recvmsg(2048, 1024)
        except TimeoutError:
            return None
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:ihl + 8]
        if src == dst and len(icmp) == 8:
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp)
            if kind == 0 and rid == ident and rseq == seq:
                rx = stamp(anc)
    # Taken when the request left, long before its reply came.
    tx = transmitted(tx_sock)
    if rx is None or tx is None:
        return None
    return rx - tx


def main():
    count, period, out = int(sys.argv[1]), float(sys.argv[2]) / 1000, sys.argv[3]
    tunnels = [a.split(":") for a in sys.argv[4:]]
    k = len(tunnels)
    socks = []
    for src, _ in tunnels:
        # A socket to send from and one to wait on: the prober blocks on the reply right after
        # sending, rather than wake for the request's transmit timestamp first and still be
        # running when the first gateway wants the CPU.
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        tx.bind((src, 0))
        tx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_SOFTWARE | SOFTWARE | OPT_TSONLY)
        # Every ICMP type filtered out: the replies go to the other socket only.
        tx.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
        rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        rx.bind((src, 0))
        rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, RX_SOFTWARE | SOFTWARE)
        socks.append((tx, rx))
    files = [open(f"{out}.{i}", "w") for i in range(k)]
    ident = os.getpid() & 0xFFFF
    start = time.monotonic() + 0.1
    for n in range(count):
        for j in range(k):
            i = (n + j) % k
            at = start + n * period + j * period / k
            time.sleep(max(0.0, at - time.monotonic()))
            rtt = probe(*socks[i], tunnels[i][1], (ident + i) & 0xFFFF, (n + 1) & 0xFFFF,
                        0.8 * period / k)
            if rtt is not None:
                files[i].write(f"{n + 1} {rtt * 1000:.4f}\n")
    for f in files:
        f.close()


if __name__ == "__main__":
    main()
