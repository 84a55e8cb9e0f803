//! The daemon's kernel routes: prefixes through the TUN device, and host routes that keep each
//! peer's own address out of the tunnels.
//!
//! A prefix routed into a tunnel may contain a peer's outer address (the seed's on-premises
//! gateway routes the whole VPC, the VPN gateway's private address included, into the
//! tunnel). Before such a prefix goes in, the peer's address is pinned with a host route over
//! the way the kernel reaches it at that moment, as strongSwan's kernel-libipsec does, so the
//! tunnel's own ESP and IKE packets never loop into it. Every route carries `proto 87` and the
//! configured metric, below the routes that should take over when the daemon removes its own.

use std::{collections::BTreeMap, net::IpAddr};

use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use serde::Deserialize;

use crate::netns;

/// Marks the daemon's kernel routes (the lab uses 86).
pub(crate) const PROTO: &str = "87";

/// The routes this daemon has in the kernel.
#[derive(Debug)]
pub(crate) struct KernelRoutes {
    tun: String,
    metric: String,
    /// Every peer's outer address.
    peers: Vec<IpAddr>,
    /// Prefixes through the TUN device, with how many connections route them (a standby and
    /// an active route share one kernel route).
    prefixes: BTreeMap<IpNet, usize>,
    /// Pinned peers, with the `via`/`dev` arguments of their host route.
    pins: BTreeMap<IpAddr, Vec<String>>,
}

impl KernelRoutes {
    pub(crate) fn new(tun: &str, metric: u32, peers: Vec<IpAddr>) -> Self {
        Self {
            tun: tun.to_owned(),
            metric: metric.to_string(),
            peers,
            prefixes: BTreeMap::new(),
            pins: BTreeMap::new(),
        }
    }

    /// The peers' addresses after a reload; pins already made stay until unneeded.
    pub(crate) fn set_peers(&mut self, peers: Vec<IpAddr>) {
        self.peers = peers;
    }

    /// Routes `prefixes` through the TUN device, pinning any peer they contain first.
    /// Failures are logged: a route the kernel refuses must not stop the tunnel.
    pub(crate) fn add(&mut self, prefixes: &[IpNet]) {
        for p in prefixes {
            let count = self.prefixes.entry(*p).or_insert(0);
            *count += 1;
            if *count > 1 {
                continue;
            }
            for peer in self.peers.clone() {
                if p.contains(&peer) && !self.pins.contains_key(&peer) {
                    match self.pin(peer) {
                        Ok(args) => {
                            self.pins.insert(peer, args);
                        }
                        Err(e) => tracing::warn!(%peer, "pinning the peer's host route: {e:#}"),
                    }
                }
            }
            let p = p.to_string();
            let dev = self.tun.clone();
            if let Err(e) = self.route("replace", &p, &["dev", &dev]) {
                tracing::warn!("kernel route {p}: {e:#}");
            }
        }
    }

    /// Takes `prefixes` out of the kernel (once no connection routes them), then the pins no
    /// remaining prefix needs.
    pub(crate) fn remove(&mut self, prefixes: &[IpNet]) {
        for p in prefixes {
            let Some(count) = self.prefixes.get_mut(p) else {
                continue;
            };
            *count -= 1;
            if *count > 0 {
                continue;
            }
            self.prefixes.remove(p);
            let p = p.to_string();
            let dev = self.tun.clone();
            if let Err(e) = self.route("del", &p, &["dev", &dev]) {
                tracing::warn!("kernel route {p}: {e:#}");
            }
        }
        let unneeded: Vec<IpAddr> = self
            .pins
            .keys()
            .filter(|peer| !self.prefixes.keys().any(|p| p.contains(*peer)))
            .copied()
            .collect();
        for peer in unneeded {
            if let Some(args) = self.pins.remove(&peer) {
                let host = IpNet::from(peer).to_string();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                if let Err(e) = self.route("del", &host, &args) {
                    tracing::warn!("kernel route {host}: {e:#}");
                }
            }
        }
    }

    /// Pins a host route to `peer` over the route the kernel uses for it now.
    fn pin(&self, peer: IpAddr) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Got {
            gateway: Option<IpAddr>,
            dev: String,
        }
        let peer_s = peer.to_string();
        let out = netns::ip_output(&["-j", "route", "get", &peer_s])?;
        let got: Vec<Got> = serde_json::from_str(&out).context("reading `ip -j route get`")?;
        let Some(got) = got.into_iter().next() else {
            bail!("no route to {peer}");
        };
        if got.dev == self.tun {
            bail!(
                "{peer} is already routed into {}; nothing to pin it to",
                self.tun
            );
        }
        let mut args = Vec::new();
        if let Some(gw) = got.gateway {
            args.extend(["via".to_owned(), gw.to_string()]);
        }
        args.extend(["dev".to_owned(), got.dev]);
        let host = IpNet::from(peer).to_string();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.route("replace", &host, &refs)?;
        tracing::info!(%peer, route = %args.join(" "), "peer pinned outside its tunnel");
        Ok(args)
    }

    fn route(&self, verb: &str, prefix: &str, target: &[&str]) -> Result<()> {
        let mut args = vec!["route", verb, prefix];
        args.extend_from_slice(target);
        args.extend(["proto", PROTO, "metric", &self.metric]);
        netns::ip(&args)
    }
}
