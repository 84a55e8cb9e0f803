//! The VBR's BGP speaker (Method 3): the fabric controller runs it, on the `bgpd` driver the
//! gateway daemon uses, with its listener bound inside the VBR's namespace. The on-premises
//! gateway connects to it over the line; what the VBR learns becomes BGP routes of the fabric
//! (`Fabric::learn_bgp`), which propagate to the CEN and the VPC like static ones, and a
//! session that ends takes them all back (`Fabric::forget_all_bgp`).

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use bgp::{
    policy::{Action, ImportPolicy, PrefixFilter, PrefixRule},
    PeerConfig, SpeakerConfig,
};
use fabric::{Fabric, NodeKind, Routing};
use tokio::sync::watch;

use super::{
    controller::{set_dc_asn, write_fabric, DcAsnSession, Shared},
    gateways::{Plan, CLOUD_AS, DC_AS},
    Lab,
};
use crate::{
    bgpd::{self, Driver, DriverConfig, Notice},
    netns,
};

/// The VBR's end of the line and the on-premises gateway's, when the fabric's VBR runs BGP.
struct Session {
    vbr: String,
    local: Ipv4Addr,
    peer: IpAddr,
}

fn session(fabric: &Fabric) -> Option<Session> {
    if fabric.method().vbr() != Routing::Bgp {
        return None;
    }
    let plan = Plan::of(fabric).ok()?;
    fabric.links().iter().find_map(|l| {
        let (v, g) = if l.b.node == plan.onprem.0 {
            (&l.a, &l.b)
        } else if l.a.node == plan.onprem.0 {
            (&l.b, &l.a)
        } else {
            return None;
        };
        let IpAddr::V4(local) = v.addr.addr() else {
            return None;
        };
        (fabric.node(&v.node)?.kind == NodeKind::Vbr).then(|| Session {
            vbr: v.node.clone(),
            local,
            peer: g.addr.addr(),
        })
    })
}

/// Starts the VBR's speaker when the method asks for one; it runs until `shutdown`.
pub(crate) fn start(
    lab: &Lab,
    shared: Shared,
    fabric: &Fabric,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let Some(s) = session(fabric) else {
        return Ok(());
    };
    let mut pc = PeerConfig::new("onprem".to_owned(), s.peer, DC_AS);
    // The data center connects; the VBR, like the cloud's, waits for it.
    pc.passive = true;
    pc.import = ImportPolicy {
        // The cloud's VBR takes the data center's prefixes, nothing else.
        filter: Some(PrefixFilter {
            rules: fabric
                .data_center_cidrs()
                .iter()
                .map(|p| PrefixRule::or_longer(*p, Action::Permit))
                .collect(),
            default: Action::Deny,
        }),
        ..ImportPolicy::default()
    };
    let (mut driver, _handle, mut notices) = Driver::new(DriverConfig {
        speaker: SpeakerConfig {
            asn: CLOUD_AS,
            router_id: s.local,
        },
        neighbors: vec![bgpd::Neighbor {
            config: pc,
            local: Some(IpAddr::V4(s.local)),
            transport: None,
        }],
        originate: Vec::new(),
    })?;
    let addr = (s.local, bgp::speaker::BGP_PORT);
    let listener = netns::run_in(&lab.ns(&s.vbr), move || {
        std::net::TcpListener::bind(addr).context("binding BGP on the VBR")
    })?;
    driver.add_listener(listener)?;
    tokio::spawn(driver.run(shutdown));
    let (vbr, via) = (s.vbr, s.peer);
    tokio::spawn(async move {
        while let Some(n) = notices.recv().await {
            let result = match n {
                Notice::Selected(changes) => write_fabric(&shared, |f| {
                    let mut changed = false;
                    for (prefix, owner) in &changes {
                        changed |= match owner {
                            Some(_) => f.learn_bgp(&vbr, *prefix, via)?,
                            None => f.forget_bgp(&vbr, *prefix, via)?,
                        };
                    }
                    Ok(changed)
                }),
                Notice::Down { reason, .. } => {
                    tracing::info!(%reason, "VBR: BGP session with the data center down");
                    set_dc_asn(&shared, DcAsnSession::Vbr, None);
                    write_fabric(&shared, |f| Ok(f.forget_all_bgp(&vbr)? > 0))
                }
                Notice::Established { .. } => {
                    tracing::info!("VBR: BGP session with the data center established");
                    // Established means the data center's OPEN carried the AS configured.
                    set_dc_asn(&shared, DcAsnSession::Vbr, Some(DC_AS));
                    continue;
                }
            };
            if let Err(e) = result {
                tracing::warn!("VBR: applying BGP routes to the fabric: {e}");
            }
        }
    });
    Ok(())
}
