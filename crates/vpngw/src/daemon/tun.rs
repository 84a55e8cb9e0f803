//! The TUN device that carries route-based tunnels' inside traffic.
//!
//! tun-rs opens it (`/dev/net/tun`, `IFF_TUN | IFF_NO_PI`, not persistent) and sets its MTU;
//! its addresses — each route-based connection's inside address, as a /30 — and its link state
//! are set with iproute2 (`ip addr replace`, `ip link set up`), as the lab programs its
//! namespaces, rather than with tun-rs's `address-management` feature (netconfig-rs and
//! getifaddrs, for a few calls at start). The device is not persistent: when the daemon closes it, on exit or
//! crash, the kernel removes it and its addresses and routes.
//!
//! Offloads (`IFF_VNET_HDR`, TSO/USO): the kernel hands the daemon whole TCP (and UDP) GSO
//! super-packets of up to 64 KB with one `read`, and takes GRO-coalesced ones with one `write`,
//! so a bulk TCP stream costs one TUN syscall per ~45 packets instead of one per packet. The
//! tunnel engine splits them (`recv_multiple`) and coalesces (`send_multiple`); packets it
//! reads are always plain MTU-sized IP packets by then. A kernel that refuses the offload
//! flags gets a plain device; the same calls then move one packet each.

use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use tun_rs::{DeviceBuilder, SyncDevice};

use super::model::TunInfo;
use crate::{config::Config, netns};

/// The open device.
pub(crate) struct Tun {
    /// Read inside packets from it, write decrypted ones to it: the tunnel engine, which owns
    /// it, from its epoll loop (non-blocking). A write never waits: the device's send buffer
    /// is unlimited (`INT_MAX`).
    pub(crate) device: SyncDevice,
    /// What the API shows.
    pub(crate) info: TunInfo,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The inside addresses the configuration puts on the TUN device: each route-based
/// connection's `local_inside`, with its /30.
pub(crate) fn inside_addresses(cfg: &Config) -> Vec<Ipv4Net> {
    cfg.connections
        .iter()
        .filter_map(|c| match &c.mode {
            crate::config::Mode::Route {
                tunnel_cidr,
                local_inside,
                ..
            } => Ipv4Net::new(*local_inside, tunnel_cidr.prefix_len()).ok(),
            crate::config::Mode::Policy { .. } => None,
        })
        .collect()
}

impl Tun {
    /// Creates the device of `[gateway] tun` with its MTU and inside addresses, up.
    pub(crate) fn create(cfg: &Config) -> Result<Self> {
        let name = &cfg.gateway.tun;
        let mtu = cfg.gateway.mtu;
        let build = |offload: bool| {
            DeviceBuilder::new()
                .name(name)
                .mtu(mtu)
                .offload(offload)
                // Down until its addresses are set (tun-rs brings devices up by default).
                .enable(false)
                .build_sync()
        };
        let device = match build(true) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(tun = %name, "TUN offloads unavailable ({e}); one packet per read");
                build(false).with_context(|| {
                    format!("creating the TUN device {name} (needs CAP_NET_ADMIN and /dev/net/tun)")
                })?
            }
        };
        // From here on, an error drops the device and the kernel removes it.
        device
            .set_nonblocking(true)
            .with_context(|| format!("{name}: non-blocking mode"))?;
        // No IPv6 link-local address: the kernel would send router solicitations and MLD
        // reports into the tunnel, counted as drops. IPv6 routes through the device need none.
        // Not fatal: a kernel without IPv6 refuses the setting and has nothing to send.
        if let Err(e) = netns::ip(&["link", "set", "dev", name, "addrgenmode", "none"]) {
            tracing::debug!("{e:#}");
        }
        let addresses = inside_addresses(cfg);
        // One process for all of them: a gateway with a thousand tunnels has a thousand.
        let lines: Vec<String> = addresses
            .iter()
            .map(|a| format!("addr replace {a} dev {name}"))
            .collect();
        netns::ip_batch(None, &lines)
            .with_context(|| format!("setting the inside addresses on {name}"))?;
        netns::ip(&["link", "set", "dev", name, "up"])
            .with_context(|| format!("bringing {name} up"))?;
        tracing::info!(tun = %name, mtu, addresses = ?addresses, "TUN device up");
        Ok(Self {
            device,
            info: TunInfo {
                name: name.clone(),
                mtu,
                addresses,
            },
        })
    }
}
