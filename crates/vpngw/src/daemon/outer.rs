//! The outer UDP sockets: for each distinct `local_address` of the configuration, one on port
//! 500 (IKE, RFC 7296 §2) and one on port 4500 (IKE after NAT detection and ESP in UDP,
//! RFC 3948 §2). Bound to the address itself, not the wildcard, so replies leave from the
//! address the peer knows.
//!
//! The tunnel engine (`super::tunnel`) reads and writes them, each registered with its
//! runtime for readability only ([`Socket`]) and given [`SOCKET_BUFFER`]-byte kernel
//! buffers: a bulk TCP stream through the tunnel arrives as bursts of dozens of datagrams,
//! and the default ~208 KB receive buffer overflows (`Udp: RcvbufErrors`) whenever the engine
//! is descheduled for a millisecond, which TCP then sees as loss.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::{IpAddr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    sync::Arc,
};

use anyhow::{Context, Result};
use tokio::io::{unix::AsyncFd, Interest};

use crate::config::Config;

/// IKE's port (RFC 7296 §2).
pub(crate) const IKE_PORT: u16 = 500;
/// IKE after NAT detection and ESP in UDP (RFC 3948 §2, RFC 7296 §2.23).
pub(crate) const NAT_T_PORT: u16 = 4500;

/// One outer socket, registered with the runtime for readability only. tokio's `UdpSocket`
/// registers for writability too, and then every datagram the kernel finishes sending is an
/// epoll event: an idle ping's round trip woke each gateway once more for nothing, on a core
/// the other gateway was waiting for. Sends go straight to the socket ([`send`]); only a full
/// send buffer makes one wait for room.
pub(crate) type Socket = AsyncFd<UdpSocket>;

/// Runs the non-blocking send `op` on `sock`; when the socket's buffer is full, waits for room
/// rather than drop the datagram.
pub(crate) async fn send<R>(
    sock: &Socket,
    mut op: impl FnMut(&UdpSocket) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        match op(sock.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A registration for writability of its own, on a duplicate of the descriptor,
                // for as long as the wait lasts.
                let dup = register(sock.get_ref().try_clone()?, Interest::WRITABLE)?;
                let _ready = dup.writable().await?;
            }
            r => return r,
        }
    }
}

/// Registers `inner` with the runtime for `interest` alone (an outer socket, the TUN device).
/// tokio deprecated the safe constructor for types whose descriptor may close or change under
/// the registration; its replacement is `unsafe`, which this workspace forbids. Both types
/// passed here own their descriptor for as long as the `AsyncFd` owns them, the condition that
/// replacement asks the caller to promise.
#[allow(deprecated)]
pub(crate) fn register<T: AsRawFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(inner, interest)
}

/// The sockets of one local address.
#[derive(Debug)]
pub(crate) struct AddressSockets {
    /// Port 500.
    pub(crate) ike: Arc<Socket>,
    /// Port 4500.
    pub(crate) nat_t: Arc<Socket>,
}

/// Every outer socket, by local address.
#[derive(Debug, Default)]
pub(crate) struct OuterSockets {
    pub(crate) by_address: BTreeMap<IpAddr, AddressSockets>,
}

impl OuterSockets {
    /// Binds ports 500 and 4500 on every distinct `local_address` of `cfg`, registered with the
    /// current runtime (the engine's).
    pub(crate) fn bind(cfg: &Config) -> Result<Self> {
        let addresses: BTreeSet<IpAddr> = cfg.connections.iter().map(|c| c.local_address).collect();
        let mut by_address = BTreeMap::new();
        for ip in addresses {
            by_address.insert(
                ip,
                AddressSockets {
                    ike: Arc::new(bind(SocketAddr::new(ip, IKE_PORT))?),
                    nat_t: Arc::new(bind(SocketAddr::new(ip, NAT_T_PORT))?),
                },
            );
        }
        Ok(Self { by_address })
    }

    /// Every socket with its local address.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &Arc<Socket>)> {
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

/// Binds `addr`, non-blocking, with [`SOCKET_BUFFER`]s; must run inside the runtime.
fn bind(addr: SocketAddr) -> Result<Socket> {
    let sock = UdpSocket::bind(addr).with_context(|| {
        format!(
            "binding UDP {addr} (is {} configured on this host, and is no other IKE daemon \
             using the port?)",
            addr.ip()
        )
    })?;
    sock.set_nonblocking(true)
        .with_context(|| format!("UDP {addr}: non-blocking mode"))?;
    set_buffers(&sock);
    let sock = register(sock, Interest::READABLE)
        .with_context(|| format!("UDP {addr}: registering with the runtime"))?;
    tracing::info!(%addr, "outer UDP socket bound");
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
