//! The ESP data path's buffers and batched I/O: everything the engine needs to move many
//! packets per wake-up with few syscalls, allocated once when the engine starts.
//!
//! ```text
//!  TUN read (1 syscall: a TSO super-packet of up to 64 KB, split into MTU-sized segments;
//!            a plain packet stays where it was read)
//!    ─► seal each in place ─► copied back to back into one GSO buffer per destination
//!    ─► 1 sendmsg with UDP_SEGMENT (the kernel cuts it into ESP-in-UDP datagrams)
//!  recvmmsg (1 syscall: up to RX_BUFS buffers, each up to 64 UDP-GRO-coalesced datagrams)
//!    ─► open each in place ─► copied to a TUN slot ─► GRO-coalesced TUN write(s)
//! ```
//!
//! Per packet: one copy in each direction (sealed packet → GSO buffer, plaintext → TUN
//! slot), no allocation, no lock. The copies are ~1.4 KB memcpys, far cheaper than the
//! syscalls they batch away. A packet that comes alone (all of an idle link's traffic: a
//! ping, a keystroke, a lone ACK) takes neither: it is sent from where it was sealed, or
//! written to the device from where it was opened, and skips tun-rs's GRO pass, which
//! copies every TCP packet it looks at into a fresh allocation. A socket that was quiet is
//! read with one `recvmsg` into one buffer, not a `recvmmsg` set up for a batch.

use std::{
    io::{self, IoSliceMut},
    net::{SocketAddr, UdpSocket},
    ops::Range,
    os::fd::AsRawFd,
};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tun_rs::{gso_split, GROTable, SyncDevice, VirtioNetHdr, VIRTIO_NET_HDR_LEN};

use super::super::{metrics::Counter, outer};

/// Room in front of an inner packet for the ESP header and IV (the outer IP and UDP headers
/// are the socket's).
pub(super) const HEADROOM: usize = 64;
/// Room behind an inner packet for ESP padding, trailer and ICV (at most 33 bytes).
const TAILROOM: usize = 64;
/// Segments one TUN read can yield: a 64 KB super-packet cut at the smallest MSS (MTU 1280).
const TUN_SEGMENTS: usize = 128;
/// A UDP GSO send carries at most this many payload bytes (an IPv4 datagram's limit, less
/// headers).
const GSO_BYTES: usize = 65_000;
/// Receive buffers per recvmmsg; each holds up to 64 GRO-coalesced datagrams.
const RX_BUFS: usize = 8;
/// Size of one receive buffer: a whole GRO batch.
const RX_BUF: usize = 65_536;
/// Decrypted packets gathered before one (GRO-coalescing) TUN write.
const TUN_OUT_SLOTS: usize = 64;
/// Capacity of one of them: a virtio header and a 64 KB super-packet.
const SLOT_BYTES: usize = VIRTIO_NET_HDR_LEN + 65_536;
/// TUN reads, or recvmmsg calls, per wake-up before the loop looks at its other inputs:
/// enough to amortise the wake-up, few enough that the other direction (TCP's ACKs), IKE
/// and timers are never starved.
pub(super) const READS_PER_WAKE: usize = 16;

/// One outer UDP socket with quinn-udp's per-socket state (GRO and GSO support found out at
/// start).
pub(super) struct Socket {
    pub(super) local: SocketAddr,
    pub(super) sock: UdpSocket,
    state: UdpSocketState,
    /// The peer it is connected to ([`outer::connect`]); `None` for the address's shared
    /// socket.
    pub(super) peer: Option<SocketAddr>,
    /// Datagrams received on it (`/metrics`).
    pub(super) received: Option<Counter>,
}

/// The engine's sockets by index: the shared ones first, then the connected ones, each `None`
/// once closed until its slot is reused.
pub(super) type Sockets = [Option<std::sync::Arc<Socket>>];

/// Socket `i` of `sockets`, unless that slot is closed.
pub(super) fn socket(sockets: &Sockets, i: usize) -> Option<&Socket> {
    sockets.get(i).and_then(Option::as_deref)
}

impl Socket {
    /// Sets `sock` up as quinn-udp does (UDP GRO, `IP_PMTUDISC_PROBE`), without the
    /// per-datagram control messages vpngw does not read ([`quiet_receives`]).
    pub(super) fn new(
        local: SocketAddr,
        sock: UdpSocket,
        peer: Option<SocketAddr>,
        received: Option<Counter>,
    ) -> io::Result<Self> {
        let state = UdpSocketState::new((&sock).into())?;
        quiet_receives(&sock, local);
        Ok(Self {
            local,
            sock,
            state,
            peer,
            received,
        })
    }

    /// Sends one datagram to `remote`: without an address, on the route the kernel keeps for
    /// the connection, when the socket is connected to `remote` (after the peer moved, until
    /// the engine connects a socket to where it went, it is not).
    pub(super) fn send(&self, pkt: &[u8], remote: SocketAddr) -> io::Result<usize> {
        if self.peer == Some(remote) {
            outer::send(&self.sock, |s| s.send(pkt))
        } else {
            outer::send(&self.sock, |s| s.send_to(pkt, remote))
        }
    }
}

/// Completes the checksum of a packet the kernel left partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`:
/// locally sent TCP or UDP): the one's complement sum from `start` on, seeded with the
/// pseudo-header sum the kernel left at `start + offset`.
fn complete_checksum(pkt: &mut [u8], start: u16, offset: u16) -> io::Result<()> {
    let (start, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    let bad = || io::Error::other("TUN packet's checksum offsets outside the packet");
    let seed = pkt.get(at..at + 2).ok_or_else(bad)?;
    let seed = u16::from_be_bytes([seed[0], seed[1]]);
    pkt[at..at + 2].fill(0);
    let mut sum = !tun_rs::checksum(pkt.get(start..).ok_or_else(bad)?, u64::from(seed));
    // UDP's offset: a computed 0 is sent as 0xffff, 0 meaning "no checksum" (RFC 768).
    if offset == 6 && sum == 0 {
        sum = 0xffff;
    }
    pkt[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// The virtio header of a GSO super-packet with its header length taken from the packet
/// rather than the kernel, which may give the whole first segment's length for a forwarded
/// packet (as wireguard-go's and tun-rs's readers do before splitting).
fn gso_header(mut hdr: VirtioNetHdr, pkt: &[u8]) -> io::Result<VirtioNetHdr> {
    let l4 = usize::from(hdr.csum_start);
    let l4_len: u16 = match hdr.gso_type & !GSO_ECN {
        tun_rs::VIRTIO_NET_HDR_GSO_UDP_L4 => 8,
        tun_rs::VIRTIO_NET_HDR_GSO_TCPV4 | tun_rs::VIRTIO_NET_HDR_GSO_TCPV6 => {
            let off = pkt
                .get(l4 + 12)
                .ok_or_else(|| io::Error::other("GSO packet shorter than its TCP header"))?;
            let len = u16::from(off >> 4) * 4;
            if !(20..=60).contains(&len) {
                return Err(io::Error::other(format!(
                    "GSO packet's TCP header of {len} bytes"
                )));
            }
            len
        }
        t => return Err(io::Error::other(format!("GSO type {t}"))),
    };
    hdr.hdr_len = hdr
        .csum_start
        .checked_add(l4_len)
        .filter(|&h| usize::from(h) <= pkt.len())
        .ok_or_else(|| io::Error::other("GSO packet shorter than its headers"))?;
    Ok(hdr)
}

/// Turns off what quinn-udp asks the kernel to attach to every datagram received beyond UDP
/// GRO's segment size: its destination address (the socket is bound to one) and TOS (ECN is
/// not used). Two control messages fewer to build and parse per receive, on the idle path as
/// much as on the busy one. Not fatal: they would only cost time.
fn quiet_receives(sock: &UdpSocket, local: SocketAddr) {
    use nix::sys::socket::{setsockopt, sockopt};
    let off = |r: nix::Result<()>| {
        if let Err(e) = r {
            tracing::debug!(%local, "turning off a receive control message: {e}");
        }
    };
    if local.is_ipv4() {
        off(setsockopt(sock, sockopt::Ipv4PacketInfo, &false));
        off(setsockopt(sock, sockopt::IpRecvTos, &false));
    } else {
        off(setsockopt(sock, sockopt::Ipv6RecvPacketInfo, &false));
        off(setsockopt(sock, sockopt::Ipv6RecvTClass, &false));
    }
}

/// Buffers for TUN → UDP.
pub(super) struct Outbound {
    /// One TUN read, its virtio header (if the device takes offloads) just before
    /// `[HEADROOM..]`: a lone packet lies where it can be sealed in place, with tailroom behind;
    /// only a GSO super-packet is copied out, cut into `segments`.
    raw: Vec<u8>,
    /// The device takes offloads: every read starts with a virtio header.
    vnet: bool,
    /// The last read was one packet, in `raw`.
    lone: bool,
    /// The segments, each at `[HEADROOM..HEADROOM + len]` with tailroom behind.
    segments: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    /// Sealed packets of one destination, back to back, all `seg` bytes but the last.
    gso: Vec<u8>,
    seg: usize,
    count: usize,
    /// The last packet was shorter than `seg`: nothing more may follow it in this send.
    closed: bool,
    /// The index of the socket they leave from.
    socket: usize,
    remote: SocketAddr,
}

/// The largest packet one TUN read yields: a 64 KB super-packet.
const TUN_READ: usize = 65_535;
/// From `<linux/virtio_net.h>`: `gso_type` of a plain packet, its ECN bit, and the flag that
/// asks for the packet's checksum to be completed.
const GSO_NONE: u8 = 0;
const GSO_ECN: u8 = 0x80;
const NEEDS_CSUM: u8 = 1;

impl Outbound {
    /// Buffers for a TUN device of `mtu` (no segment it yields is longer), with or without
    /// offloads (`vnet`).
    pub(super) fn new(mtu: u16, vnet: bool) -> Self {
        Self {
            raw: vec![0; HEADROOM + TUN_READ + TAILROOM],
            vnet,
            lone: true,
            segments: (0..TUN_SEGMENTS)
                .map(|_| vec![0; HEADROOM + usize::from(mtu) + TAILROOM])
                .collect(),
            sizes: vec![0; TUN_SEGMENTS],
            gso: Vec::with_capacity(GSO_BYTES),
            seg: 0,
            count: 0,
            closed: false,
            socket: 0,
            remote: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// One TUN read: the number of packets (a super-packet is cut into `segments`), or
    /// `WouldBlock`. A plain packet — all of an idle link's traffic, a bulk flow's ACKs — is
    /// neither copied nor split (tun-rs's `recv_multiple` does both for every read).
    pub(super) fn read(&mut self, tun: &SyncDevice) -> io::Result<usize> {
        let start = if self.vnet {
            HEADROOM - VIRTIO_NET_HDR_LEN
        } else {
            HEADROOM
        };
        let n = tun.recv(&mut self.raw[start..HEADROOM + TUN_READ])?;
        self.lone = true;
        if !self.vnet {
            self.sizes[0] = n;
            return Ok(1);
        }
        let len = n
            .checked_sub(VIRTIO_NET_HDR_LEN)
            .filter(|&l| l > 0)
            .ok_or_else(|| io::Error::other(format!("TUN read of {n} bytes: no packet")))?;
        let hdr = VirtioNetHdr::decode(&self.raw[start..HEADROOM])?;
        let pkt = &mut self.raw[HEADROOM..HEADROOM + len];
        if hdr.gso_type == GSO_NONE {
            if hdr.flags & NEEDS_CSUM != 0 {
                complete_checksum(pkt, hdr.csum_start, hdr.csum_offset)?;
            }
            self.sizes[0] = len;
            return Ok(1);
        }
        self.lone = false;
        let is_v6 = match pkt.first().map(|b| b >> 4) {
            Some(4) => false,
            Some(6) => true,
            v => return Err(io::Error::other(format!("GSO packet of IP version {v:?}"))),
        };
        let hdr = gso_header(hdr, pkt)?;
        gso_split(
            pkt,
            hdr,
            &mut self.segments,
            &mut self.sizes,
            HEADROOM,
            is_v6,
        )
    }

    /// Packet `i` of the last read, at `[HEADROOM..HEADROOM + len]` of the buffer, with
    /// tailroom behind; and `len`.
    pub(super) fn packet(&mut self, i: usize) -> Option<(&mut [u8], usize)> {
        let len = *self.sizes.get(i)?;
        let buf = if self.lone {
            (i == 0).then_some(&mut self.raw)?
        } else {
            self.segments.get_mut(i)?
        };
        Some((buf, len))
    }

    /// Whether a sealed packet of `len` bytes for `remote` can join the pending send.
    fn fits(&self, socket: usize, remote: SocketAddr, len: usize, max_segments: usize) -> bool {
        self.count == 0
            || (self.socket == socket
                && self.remote == remote
                && !self.closed
                && len <= self.seg
                && self.count < max_segments
                && self.gso.len() + len <= GSO_BYTES)
    }

    /// Queues the sealed packet at `range` of packet `i`'s buffer for `remote`, from
    /// `sockets[socket]`, sending what is pending first if it cannot join it.
    pub(super) fn push(
        &mut self,
        sockets: &Sockets,
        socket: usize,
        i: usize,
        range: Range<usize>,
        remote: SocketAddr,
    ) {
        if self.lone {
            // The read's only packet: nothing can join it, so it leaves from where it was
            // sealed, without the copy into the GSO buffer or quinn-udp's control messages.
            let pkt = (i == 0).then(|| self.raw.get(range)).flatten();
            if let (Some(pkt), Some(s)) = (pkt, self::socket(sockets, socket)) {
                if let Err(e) = s.send(pkt, remote) {
                    tracing::debug!(%remote, "sending ESP: {e}");
                }
            }
            return;
        }
        let len = range.len();
        let max = self::socket(sockets, socket).map_or(1, |s| s.state.max_gso_segments());
        if !self.fits(socket, remote, len, max) {
            self.send(sockets);
        }
        let Some(pkt) = self.segments.get(i).and_then(|b| b.get(range)) else {
            return;
        };
        if self.count == 0 {
            self.seg = len;
            self.socket = socket;
            self.remote = remote;
            self.closed = false;
        }
        self.closed |= len < self.seg;
        self.gso.extend_from_slice(pkt);
        self.count += 1;
    }

    /// Sends the pending packets with one `sendmsg` (UDP_SEGMENT when more than one).
    pub(super) fn send(&mut self, sockets: &Sockets) {
        if self.count == 0 {
            return;
        }
        let Some(s) = socket(sockets, self.socket) else {
            self.clear();
            return;
        };
        let t = Transmit {
            destination: self.remote,
            ecn: None,
            contents: &self.gso,
            segment_size: (self.count > 1).then_some(self.seg),
            src_ip: None,
        };
        if let Err(e) = outer::send(&s.sock, |sock| s.state.try_send(sock.into(), &t)) {
            tracing::debug!(remote = %self.remote, "sending ESP: {e}");
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.gso.clear();
        self.count = 0;
        self.closed = false;
    }
}

/// Buffers for UDP → TUN.
pub(super) struct Inbound {
    rx: [Vec<u8>; RX_BUFS],
    meta: [RecvMeta; RX_BUFS],
    /// Decrypted packets at `[VIRTIO_NET_HDR_LEN..]`, with room to grow to 64 KB when GRO
    /// coalesces later packets into them. Each is allocated when a batch first reaches it:
    /// a gateway whose tunnels carry pings never holds the 4 MB a bulk stream needs.
    slots: Vec<Vec<u8>>,
    filled: usize,
    gro: GROTable,
    /// The device takes offloads: what is written to it starts with a virtio header.
    vnet: bool,
    /// The last receive brought a single datagram.
    lone: bool,
    /// The last receive filled every buffer it offered.
    full: bool,
    /// Room for the one control message a single receive asks for: UDP GRO's segment size.
    cmsg: Vec<u8>,
}

impl Inbound {
    /// Buffers for a TUN device with or without offloads (`vnet`).
    pub(super) fn new(vnet: bool) -> Self {
        Self {
            rx: std::array::from_fn(|_| vec![0; RX_BUF]),
            meta: [RecvMeta::default(); RX_BUFS],
            slots: (0..TUN_OUT_SLOTS).map(|_| Vec::new()).collect(),
            filled: 0,
            gro: GROTable::default(),
            vnet,
            lone: false,
            full: false,
            cmsg: nix::cmsg_space!(i32),
        }
    }

    /// One receive on `s`: a recvmmsg into every buffer if `batch`, else a recvmsg into the
    /// first. The number of buffers filled, or `WouldBlock`.
    pub(super) fn recv(&mut self, s: &Socket, batch: bool) -> io::Result<usize> {
        let (n, offered) = if batch {
            let mut bufs = self.rx.each_mut().map(|b| IoSliceMut::new(b));
            let n = s.state.recv((&s.sock).into(), &mut bufs, &mut self.meta)?;
            (n, RX_BUFS)
        } else {
            (self.recv_one(s)?, 1)
        };
        self.lone = n == 1 && self.meta[0].len <= self.meta[0].stride;
        self.full = n == offered;
        Ok(n)
    }

    /// Whether the socket may hold more than the last receive took: it filled every buffer it
    /// offered, and with more than one datagram. A receive that filled fewer found the socket
    /// empty, and a lone datagram is an idle socket's.
    pub(super) fn more(&self) -> bool {
        self.full && !self.lone
    }

    /// A recvmsg into the first buffer: what quinn-udp's recvmmsg does for one buffer, without
    /// setting up (and zeroing) its batch of 32 message headers on every call.
    fn recv_one(&mut self, s: &Socket) -> io::Result<usize> {
        use nix::sys::socket::{SockaddrIn, SockaddrIn6};
        // The source is read as the socket's own family: nix's `SockaddrStorage` would take
        // every receive through its conversions for every address family there is, code
        // that a cold path pays for page by page (~2 % of an idle round trip, measured).
        if s.local.is_ipv4() {
            self.recv_one_from(s, |a: SockaddrIn| std::net::SocketAddrV4::from(a).into())
        } else {
            self.recv_one_from(s, |a: SockaddrIn6| std::net::SocketAddrV6::from(a).into())
        }
    }

    fn recv_one_from<A: nix::sys::socket::SockaddrLike>(
        &mut self,
        s: &Socket,
        source: impl FnOnce(A) -> SocketAddr,
    ) -> io::Result<usize> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut iov = [IoSliceMut::new(&mut self.rx[0])];
        let msg = recvmsg::<A>(
            s.sock.as_raw_fd(),
            &mut iov,
            Some(&mut self.cmsg),
            MsgFlags::empty(),
        )?;
        // A 64 KB buffer holds any UDP datagram and any GRO batch; a kernel that truncated
        // one anyway gets it dropped rather than opened short.
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(io::Error::other("datagram truncated"));
        }
        let len = msg.bytes;
        let stride = msg
            .cmsgs()?
            .find_map(|c| match c {
                ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
                _ => None,
            })
            .unwrap_or(len);
        let addr = msg
            .address
            .map(source)
            .ok_or_else(|| io::Error::other("datagram without a source address"))?;
        let m = &mut self.meta[0];
        m.addr = addr;
        m.len = len;
        m.stride = stride;
        Ok(1)
    }

    /// Buffer `j` of the last receive — its source, the datagram size (`stride`; the last may
    /// be shorter) and its bytes — and the TUN queue, borrowed apart.
    pub(super) fn split(&mut self, j: usize) -> Option<(SocketAddr, usize, &mut [u8], Tx<'_>)> {
        let m = self.meta.get(j)?;
        let (addr, len, stride) = (m.addr, m.len, m.stride.max(1));
        let buf = self.rx.get_mut(j)?.get_mut(..len)?;
        Some((
            addr,
            stride,
            buf,
            Tx {
                slots: &mut self.slots,
                filled: &mut self.filled,
                gro: &mut self.gro,
                direct: self.lone.then_some(self.vnet),
            },
        ))
    }

    /// Writes what is still queued for the TUN device.
    pub(super) fn write(&mut self, tun: &SyncDevice) {
        Tx {
            slots: &mut self.slots,
            filled: &mut self.filled,
            gro: &mut self.gro,
            direct: None,
        }
        .write(tun);
    }
}

/// Where decrypted packets wait for the TUN device.
pub(super) struct Tx<'a> {
    slots: &'a mut [Vec<u8>],
    filled: &'a mut usize,
    gro: &'a mut GROTable,
    /// The receive brought a single datagram, so there is nothing to coalesce its packet
    /// with: `Some(vnet)`, whether the device wants a virtio header in front.
    direct: Option<bool>,
}

impl Tx<'_> {
    /// Delivers the decrypted inner packet at `data[range]`: written to the device at once,
    /// from where it was opened, when it came alone; else queued ([`Tx::push`]).
    pub(super) fn deliver(&mut self, tun: &SyncDevice, data: &mut [u8], range: Range<usize>) {
        if let Some(vnet) = self.direct {
            let hdr = if vnet { VIRTIO_NET_HDR_LEN } else { 0 };
            // The ESP header and IV in front of the packet leave room for the virtio header.
            if let Some(frame) = range
                .start
                .checked_sub(hdr)
                .and_then(|start| data.get_mut(start..range.end))
            {
                // All zero: no offload asked, the packet's checksums are complete.
                frame[..hdr].fill(0);
                if let Err(e) = tun.send(frame) {
                    tracing::debug!("writing to the TUN device: {e}");
                }
                return;
            }
        }
        if let Some(pkt) = data.get(range) {
            self.push(pkt);
        }
    }

    /// Queues a decrypted inner packet; the caller writes first when [`Tx::full`].
    pub(super) fn push(&mut self, pkt: &[u8]) {
        if let Some(b) = self.slots.get_mut(*self.filled) {
            // Once per slot in the daemon's life; `clear` keeps the capacity. GRO coalesces
            // only into a slot with room for the whole super-packet.
            b.clear();
            b.reserve_exact(SLOT_BYTES);
            b.resize(VIRTIO_NET_HDR_LEN, 0);
            b.extend_from_slice(pkt);
            *self.filled += 1;
        }
    }

    pub(super) fn full(&self) -> bool {
        *self.filled == self.slots.len()
    }

    /// Writes the queued packets to the TUN device, GRO-coalescing TCP (and UDP) flows into
    /// super-packets where the device takes offloads (one write per flow and batch).
    pub(super) fn write(&mut self, tun: &SyncDevice) {
        let n = *self.filled;
        if n == 0 {
            return;
        }
        *self.filled = 0;
        if let Err(e) = tun.send_multiple(self.gro, &mut self.slots[..n], VIRTIO_NET_HDR_LEN) {
            tracing::debug!("writing to the TUN device: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one's complement sum of `parts`, folded and inverted: the Internet checksum
    /// (RFC 1071), written out here independently of tun-rs's.
    fn internet_checksum(parts: &[&[u8]]) -> u16 {
        let mut sum: u32 = 0;
        for p in parts {
            for w in p.chunks(2) {
                sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An IPv4 UDP packet 10.0.0.1:1000 → 10.0.0.2:2000 with `payload`, its checksum left as
    /// the kernel leaves a CHECKSUM_PARTIAL one: the pseudo-header's sum, not inverted.
    fn partial_udp(payload: &[u8]) -> (Vec<u8>, u16) {
        let udp_len = 8 + payload.len() as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
        p.extend_from_slice(&1000u16.to_be_bytes());
        p.extend_from_slice(&2000u16.to_be_bytes());
        p.extend_from_slice(&udp_len.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        let pseudo = [&p[12..20], &[0, 17], &udp_len.to_be_bytes()[..]].concat();
        let full = internet_checksum(&[&pseudo, &p[20..]]);
        p[26..28].copy_from_slice(&(!internet_checksum(&[&pseudo])).to_be_bytes());
        (p, full)
    }

    #[test]
    fn a_partial_checksum_is_completed_as_the_rfc_computes_it() {
        for payload in [&b"ping"[..], b"odd", b"", &[0xff; 1000]] {
            let (mut p, want) = partial_udp(payload);
            complete_checksum(&mut p, 20, 6).unwrap();
            assert_eq!(u16::from_be_bytes([p[26], p[27]]), want, "{payload:?}");
        }
    }

    #[test]
    fn checksum_offsets_outside_the_packet_are_an_error_not_a_panic() {
        let (mut p, _) = partial_udp(b"x");
        assert!(complete_checksum(&mut p, 20, 100).is_err());
        assert!(complete_checksum(&mut p, u16::MAX, u16::MAX).is_err());
    }

    fn gso(gso_type: u8, csum_start: u16) -> VirtioNetHdr {
        VirtioNetHdr {
            gso_type,
            csum_start,
            hdr_len: 9999,
            ..VirtioNetHdr::default()
        }
    }

    #[test]
    fn a_super_packets_header_length_comes_from_the_packet() {
        // IPv4 header, then a TCP header of 32 bytes (data offset 8: with timestamps).
        let mut p = vec![0u8; 20 + 32 + 100];
        p[20 + 12] = 8 << 4;
        let h = gso_header(gso(tun_rs::VIRTIO_NET_HDR_GSO_TCPV4, 20), &p).unwrap();
        assert_eq!(h.hdr_len, 52);
        let h = gso_header(gso(tun_rs::VIRTIO_NET_HDR_GSO_TCPV4 | GSO_ECN, 20), &p).unwrap();
        assert_eq!(h.hdr_len, 52);
        let h = gso_header(gso(tun_rs::VIRTIO_NET_HDR_GSO_UDP_L4, 20), &p).unwrap();
        assert_eq!(h.hdr_len, 28);
    }

    #[test]
    fn a_malformed_super_packet_is_an_error_not_a_panic() {
        let mut p = vec![0u8; 20 + 20];
        // A TCP data offset below the minimum header.
        p[20 + 12] = 4 << 4;
        assert!(gso_header(gso(tun_rs::VIRTIO_NET_HDR_GSO_TCPV4, 20), &p).is_err());
        // The TCP header's offset past the end of the packet.
        assert!(gso_header(gso(tun_rs::VIRTIO_NET_HDR_GSO_TCPV4, 60), &p).is_err());
        // Headers longer than the packet.
        p[20 + 12] = 15 << 4;
        assert!(gso_header(gso(tun_rs::VIRTIO_NET_HDR_GSO_TCPV4, 20), &p).is_err());
        // Not a GSO type at all.
        assert!(gso_header(gso(42, 20), &p).is_err());
    }
}
