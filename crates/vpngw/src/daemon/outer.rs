//! The outer UDP sockets: for each distinct `local_address` of the configuration, one on port
//! 500 (IKE, RFC 7296 §2) and one on port 4500 (IKE after NAT detection and ESP in UDP,
//! RFC 3948 §2). Bound to the address itself, not the wildcard, so replies leave from the
//! address the peer knows.
//!
//! The tunnel engine (`super::tunnel`) reads and writes them. Each gets
//! [`SOCKET_BUFFER`]-byte kernel buffers: a bulk TCP stream through the tunnel arrives as
//! bursts of dozens of datagrams, and the default ~208 KB receive buffer overflows
//! (`Udp: RcvbufErrors`) whenever the engine is descheduled for a millisecond, which TCP then
//! sees as loss.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use anyhow::{Context, Result};
use tokio::net::UdpSocket;

use crate::config::Config;

/// IKE's port (RFC 7296 §2).
pub(crate) const IKE_PORT: u16 = 500;
/// IKE after NAT detection and ESP in UDP (RFC 3948 §2, RFC 7296 §2.23).
pub(crate) const NAT_T_PORT: u16 = 4500;

/// The sockets of one local address.
#[derive(Debug)]
pub(crate) struct AddressSockets {
    /// Port 500.
    pub(crate) ike: Arc<UdpSocket>,
    /// Port 4500.
    pub(crate) nat_t: Arc<UdpSocket>,
}

/// Every outer socket, by local address.
#[derive(Debug, Default)]
pub(crate) struct OuterSockets {
    pub(crate) by_address: BTreeMap<IpAddr, AddressSockets>,
}

impl OuterSockets {
    /// Binds ports 500 and 4500 on every distinct `local_address` of `cfg`.
    pub(crate) async fn bind(cfg: &Config) -> Result<Self> {
        let addresses: BTreeSet<IpAddr> = cfg.connections.iter().map(|c| c.local_address).collect();
        let mut by_address = BTreeMap::new();
        for ip in addresses {
            by_address.insert(
                ip,
                AddressSockets {
                    ike: Arc::new(bind(SocketAddr::new(ip, IKE_PORT)).await?),
                    nat_t: Arc::new(bind(SocketAddr::new(ip, NAT_T_PORT)).await?),
                },
            );
        }
        Ok(Self { by_address })
    }

    /// Every socket with its local address.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &Arc<UdpSocket>)> {
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

async fn bind(addr: SocketAddr) -> Result<UdpSocket> {
    let sock = UdpSocket::bind(addr).await.with_context(|| {
        format!(
            "binding UDP {addr} (is {} configured on this host, and is no other IKE daemon \
             using the port?)",
            addr.ip()
        )
    })?;
    set_buffers(&sock);
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
