//! The outer UDP sockets: for each distinct `local_address` of the configuration, one on port
//! 500 (IKE, RFC 7296 §2) and one on port 4500 (IKE after NAT detection and ESP in UDP,
//! RFC 3948 §2). Bound to the address itself, not the wildcard, so replies leave from the
//! address the peer knows.
//!
//! Port 4500 is bound with `SO_REUSEADDR` so that the engine can open, beside it, a socket
//! connected to each peer ([`connect`]) on the same address and port. Port 500 is not: a
//! second IKE daemon on the address still fails to start there, loudly.
//!
//! The tunnel engine (`super::tunnel`) reads and writes them from its own epoll loop, and
//! they get [`SOCKET_BUFFER`]-byte kernel buffers: a bulk TCP stream through the tunnel
//! arrives as bursts of dozens of datagrams, and the default ~208 KB receive buffer overflows
//! (`Udp: RcvbufErrors`) whenever the engine is descheduled for a millisecond, which TCP then
//! sees as loss.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::{IpAddr, SocketAddr, UdpSocket},
    os::fd::AsFd,
};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::config::Config;

/// IKE's port (RFC 7296 §2).
pub(crate) const IKE_PORT: u16 = 500;
/// IKE after NAT detection and ESP in UDP (RFC 3948 §2, RFC 7296 §2.23).
pub(crate) const NAT_T_PORT: u16 = 4500;

/// How long a send waits for room in a full socket buffer before its datagram is dropped.
/// The buffer holds ~4 ms of traffic at full speed: a send that finds no room for this long
/// means the interface is not sending at all, and the engine must not stall behind it.
const SEND_WAIT: u16 = 100;

/// Runs the non-blocking send `op` on `sock`; when the socket's buffer is full, waits (up to
/// [`SEND_WAIT`] ms) for room rather than drop the datagram at once: the sender's backpressure,
/// as a blocking socket would give it. The wait is on this socket alone, with `poll`: the
/// engine's epoll set watches readability only, so that the kernel finishing a send never
/// wakes it.
pub(crate) fn send<R>(
    sock: &UdpSocket,
    mut op: impl FnMut(&UdpSocket) -> io::Result<R>,
) -> io::Result<R> {
    let mut waited = false;
    loop {
        match op(sock) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !waited => {
                waited = true;
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
                match nix::poll::poll(&mut fds, PollTimeout::from(SEND_WAIT)) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            r => return r,
        }
    }
}

/// The sockets of one local address.
#[derive(Debug)]
pub(crate) struct AddressSockets {
    /// Port 500.
    pub(crate) ike: UdpSocket,
    /// Port 4500.
    pub(crate) nat_t: UdpSocket,
}

/// Every outer socket, by local address.
#[derive(Debug, Default)]
pub(crate) struct OuterSockets {
    pub(crate) by_address: BTreeMap<IpAddr, AddressSockets>,
}

impl OuterSockets {
    /// Binds ports 500 and 4500 on every distinct `local_address` of `cfg`, non-blocking.
    pub(crate) fn bind(cfg: &Config) -> Result<Self> {
        let addresses: BTreeSet<IpAddr> = cfg.connections.iter().map(|c| c.local_address).collect();
        let mut by_address = BTreeMap::new();
        for ip in addresses {
            by_address.insert(
                ip,
                AddressSockets {
                    ike: bind(SocketAddr::new(ip, IKE_PORT), false)?,
                    nat_t: bind(SocketAddr::new(ip, NAT_T_PORT), true)?,
                },
            );
        }
        Ok(Self { by_address })
    }

    /// Every socket with its local address.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &UdpSocket)> {
        self.by_address.iter().flat_map(|(ip, s)| {
            [
                (SocketAddr::new(*ip, IKE_PORT), &s.ike),
                (SocketAddr::new(*ip, NAT_T_PORT), &s.nat_t),
            ]
        })
    }
}

/// Kernel send and receive buffer of each outer socket: ~4 ms of traffic at 8 Gbit/s.
const SOCKET_BUFFER: usize = 4 << 20;

/// Binds `addr`, non-blocking, with [`SOCKET_BUFFER`]s; `shared`: with `SO_REUSEADDR`, for
/// the connected sockets [`connect`] opens beside it.
fn bind(addr: SocketAddr, shared: bool) -> Result<UdpSocket> {
    let sock = socket(addr, shared).with_context(|| {
        format!(
            "binding UDP {addr} (is {} configured on this host, and is no other IKE daemon \
             using the port?)",
            addr.ip()
        )
    })?;
    tracing::info!(%addr, "outer UDP socket bound");
    Ok(sock)
}

/// A socket on `local` (bound by [`OuterSockets::bind`] already, with `SO_REUSEADDR`)
/// connected to `remote`, non-blocking, with [`SOCKET_BUFFER`]s. The kernel hands it the
/// datagrams from `remote` ahead of the shared socket, demultiplexed before the routing
/// lookup an unconnected socket's datagrams need, and a send without an address takes the
/// route it keeps: two lookups less per packet, on the path an idle tunnel's packets find
/// cold.
pub(crate) fn connect(local: SocketAddr, remote: SocketAddr) -> io::Result<UdpSocket> {
    let sock = socket(local, true)?;
    sock.connect(remote)?;
    Ok(sock)
}

fn socket(addr: SocketAddr, shared: bool) -> io::Result<UdpSocket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    sock.set_reuse_address(shared)?;
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    let sock = UdpSocket::from(sock);
    set_buffers(&sock);
    Ok(sock)
}

/// Raises the socket's buffers to [`SOCKET_BUFFER`]. `SO_RCVBUFFORCE` (CAP_NET_ADMIN, which
/// the daemon has for its TUN device) passes `net.core.rmem_max`, a global sysctl a gateway
/// in a namespace cannot raise; without the capability the plain option gets what the limit
/// allows. Never fatal: small buffers cost throughput, not correctness.
fn set_buffers(sock: &UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(sock, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = socket2::SockRef::from(sock).set_recv_buffer_size(SOCKET_BUFFER);
    }
    if setsockopt(sock, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = socket2::SockRef::from(sock).set_send_buffer_size(SOCKET_BUFFER);
    }
}
