//! The packet walk: a packet's path hop by hop, decided by the tables alone.

use std::{fmt, net::IpAddr};

use ipnet::IpNet;
use rib::{NextHop, Route};
use serde::Serialize;

use crate::{Fabric, GatewayTunnel, NodeKind};

/// More forwarding decisions than this is a loop. The seed's longest path has six nodes.
pub const MAX_HOPS: usize = 32;

/// Tunnels inside tunnels deeper than this are a loop (the seed has one level).
const MAX_TUNNEL_DEPTH: usize = 2;

/// A packet's path from `from` toward `dst`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Walk {
    /// The node the packet starts at.
    pub from: String,
    /// The destination address.
    pub dst: IpAddr,
    /// Every node the packet is at, in order, starting with `from`.
    pub hops: Vec<Hop>,
    /// How the walk ended.
    pub outcome: Outcome,
}

/// The packet at one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The node.
    pub node: String,
    /// The interface the packet arrived on; `None` at the source.
    pub in_iface: Option<String>,
    /// This node's address on `in_iface`: the source of an ICMP time-exceeded from this node
    /// when `icmp_errors_use_inbound_ifaddr=1` (as the lab sets it), so what traceroute shows.
    pub in_addr: Option<IpAddr>,
    /// The route used (the first of its equal-cost set); `None` when delivered here or when
    /// no route matched.
    pub matched: Option<Route>,
    /// The interface the packet leaves by.
    pub out_iface: Option<String>,
    /// The node it goes to.
    pub next_node: Option<String>,
    /// When the node routes the packet into an IPsec connection: the encapsulation and the
    /// outer packet's own walk to the far gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Box<TunnelLeg>>,
}

/// A packet encrypted and encapsulated at one gateway, carried as ESP in UDP 4500 to the
/// other, and decrypted there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TunnelLeg {
    /// The connection at the encrypting gateway.
    pub connection: String,
    /// The outer packet's source: the encrypting gateway's address.
    pub outer_src: IpAddr,
    /// The outer packet's destination: the peer gateway's address.
    pub outer_dst: IpAddr,
    /// The outer packet's path; delivered at the decrypting gateway when the tunnel works.
    pub outer: Walk,
}

/// How a walk ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The last hop owns the destination.
    Delivered,
    /// `node` has no route for the destination.
    NoRoute {
        /// Where.
        node: String,
    },
    /// `node` drops the packet on a blackhole route.
    Blackhole {
        /// Where.
        node: String,
    },
    /// `node` hands the packet to an IPsec connection: the fabric's part ends there.
    Tunnel {
        /// Where.
        node: String,
        /// The connection's name.
        connection: String,
    },
    /// `node` routes the packet into `connection`, but the tunnel cannot carry it; `why`.
    /// Nothing leaves unencrypted: the packet is dropped.
    TunnelDown {
        /// Where.
        node: String,
        /// The connection (of the gateway named by `node`).
        connection: String,
        /// What is missing.
        why: String,
    },
    /// More than [`MAX_HOPS`] forwarding decisions.
    Loop,
    /// `node`'s next hop is not owned by anyone on that link.
    Unreachable {
        /// Where.
        node: String,
    },
    /// A packet not addressed to `node` reached it, and it is a host: hosts do not forward.
    NotForwarded {
        /// Where.
        node: String,
    },
    /// The walk started at a node that does not exist.
    UnknownNode {
        /// The name given.
        node: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delivered => f.write_str("delivered"),
            Self::NoRoute { node } => write!(f, "{node} has no route to the destination"),
            Self::Blackhole { node } => write!(f, "dropped by a blackhole route at {node}"),
            Self::Tunnel { node, connection } => {
                write!(f, "enters tunnel {connection} at {node}")
            }
            Self::TunnelDown {
                node,
                connection,
                why,
            } => write!(f, "tunnel {connection} at {node} is down ({why}): dropped"),
            Self::Loop => write!(f, "forwarding loop (more than {MAX_HOPS} hops)"),
            Self::Unreachable { node } => write!(
                f,
                "{node}'s next hop is not on the link: no node owns that address"
            ),
            Self::NotForwarded { node } => write!(f, "{node} is a host and does not forward"),
            Self::UnknownNode { node } => write!(f, "no node named {node}"),
        }
    }
}

impl fmt::Display for Walk {
    /// `client → onprem-gw (192.168.10.1) → vbr (10.0.0.2) → …: delivered`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, hop) in self.hops.iter().enumerate() {
            if let Some(leg) = i.checked_sub(1).and_then(|k| self.hops[k].tunnel.as_ref()) {
                write!(f, " ═[{}]═▶ ", leg.connection)?;
            } else if i > 0 {
                f.write_str(" → ")?;
            }
            f.write_str(&hop.node)?;
            if let Some(addr) = hop.in_addr {
                write!(f, " ({addr})")?;
            }
        }
        write!(f, ": {}", self.outcome)
    }
}

impl Walk {
    /// The nodes visited, in order.
    pub fn path(&self) -> Vec<&str> {
        self.hops.iter().map(|h| h.node.as_str()).collect()
    }
}

impl Fabric {
    /// The path of a packet from `from` to `dst`, hop by hop, from the tables: at each node,
    /// delivered if the node owns `dst`; otherwise the longest-prefix match, first route of
    /// the selected set. An interface route goes to whoever owns `dst` on that link, an
    /// address route to whoever owns the next hop on the outgoing interface's link.
    ///
    /// A route into an IPsec connection of a gateway ([`Fabric::set_tunnel`]) encapsulates:
    /// the outer packet walks from that gateway to the peer's address (never into its own
    /// tunnel: the daemon pins a host route to its peer), and the inner packet goes on from
    /// the gateway that owns that address, arriving on its tunnel device.
    pub fn walk(&self, from: &str, dst: IpAddr) -> Walk {
        self.walk_depth(from, dst, 0)
    }

    fn walk_depth(&self, from: &str, dst: IpAddr, depth: usize) -> Walk {
        let mut walk = Walk {
            from: from.to_owned(),
            dst,
            hops: Vec::new(),
            outcome: Outcome::Loop,
        };
        let Ok(mut at) = self.node_index(from) else {
            walk.outcome = Outcome::UnknownNode {
                node: from.to_owned(),
            };
            return walk;
        };
        let mut arrived: Option<(String, Option<IpAddr>)> = None;
        for _ in 0..MAX_HOPS {
            let node = self.node_at(at);
            let mut hop = Hop {
                node: node.name.clone(),
                in_iface: arrived.as_ref().map(|(i, _)| i.clone()),
                in_addr: arrived.as_ref().and_then(|(_, a)| *a),
                matched: None,
                out_iface: None,
                next_node: None,
                tunnel: None,
            };
            let step = self.step(at, dst, arrived.is_some(), &mut hop, depth);
            walk.hops.push(hop);
            match step {
                Step::End(outcome) => {
                    walk.outcome = outcome;
                    return walk;
                }
                Step::Next { node, iface, addr } => {
                    at = node;
                    arrived = Some((iface, addr));
                }
            }
        }
        walk.outcome = Outcome::Loop;
        walk
    }

    /// One forwarding decision at node `at`: either how the walk ends, or the next node with
    /// the interface (and its address) the packet arrives on.
    fn step(&self, at: usize, dst: IpAddr, transit: bool, hop: &mut Hop, depth: usize) -> Step {
        let node = self.node_at(at);
        let name = || node.name.clone();
        if node.owns(dst) {
            return Step::End(Outcome::Delivered);
        }
        if transit && node.kind == NodeKind::Host {
            return Step::End(Outcome::NotForwarded { node: name() });
        }
        let Some(route) = self.lookup(at, dst) else {
            return Step::End(Outcome::NoRoute { node: name() });
        };
        hop.matched = Some(route.clone());
        let (out_iface, target) = match &route.next_hop {
            NextHop::Interface(iface) => (Some(iface.clone()), dst),
            NextHop::Address { via, dev } => (
                dev.clone()
                    .or_else(|| node.interface_toward(*via).map(|i| i.name.clone())),
                *via,
            ),
            NextHop::Connection(connection) => {
                return self.encapsulate(at, connection, hop, depth);
            }
            NextHop::Blackhole => return Step::End(Outcome::Blackhole { node: name() }),
        };
        hop.out_iface.clone_from(&out_iface);
        let unreachable = Step::End(Outcome::Unreachable { node: name() });
        let Some(iface) = out_iface.and_then(|o| node.interface(&o)) else {
            return unreachable;
        };
        let Some((_, peer)) = self.links()[iface.link].ends_from(&node.name) else {
            return unreachable;
        };
        if peer.addr.addr() != target {
            return unreachable;
        }
        let Ok(next) = self.node_index(&peer.node) else {
            return unreachable;
        };
        hop.next_node = Some(peer.node.clone());
        Step::Next {
            node: next,
            iface: peer.iface.clone(),
            addr: Some(peer.addr.addr()),
        }
    }

    /// The selected route at node `at` for `dst`, except that a tunnel's own outer packets
    /// never enter it: for the peer's address, the best route that is not that tunnel, at the
    /// longest prefix that has one (what the daemon's pinned host route to its peer copies).
    fn lookup(&self, at: usize, dst: IpAddr) -> Option<Route> {
        let table = self.tables_at(at);
        let into_own_tunnel = |r: &Route| {
            matches!(&r.next_hop, NextHop::Connection(c)
                if self.tunnel_at(at, c).is_some_and(|t| t.peer == dst))
        };
        let primary = table.lookup(dst)?.primary();
        if !into_own_tunnel(primary) {
            return Some(primary.clone());
        }
        let max = if dst.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let prefix = IpNet::new(dst, len).ok()?.trunc();
            table
                .candidates(prefix)
                .iter()
                .find(|r| !into_own_tunnel(r))
                .cloned()
        })
    }

    fn tunnel_at(&self, at: usize, connection: &str) -> Option<&GatewayTunnel> {
        self.tunnels(&self.node_at(at).name)
            .iter()
            .find(|t| t.connection == connection)
    }

    /// Node `at` routes the packet into `connection`: the outer packet's walk, then the far
    /// gateway, where the packet comes out of its tunnel device.
    fn encapsulate(&self, at: usize, connection: &str, hop: &mut Hop, depth: usize) -> Step {
        let node = &self.node_at(at).name;
        let Some(t) = self.tunnel_at(at, connection) else {
            // A connection the fabric was not told about: its part ends here.
            return Step::End(Outcome::Tunnel {
                node: node.clone(),
                connection: connection.to_owned(),
            });
        };
        hop.out_iface = Some(t.iface.clone());
        let down = |node: &str, connection: &str, why: String| {
            Step::End(Outcome::TunnelDown {
                node: node.to_owned(),
                connection: connection.to_owned(),
                why,
            })
        };
        if !t.up {
            return down(node, connection, "no child SA".into());
        }
        if depth >= MAX_TUNNEL_DEPTH {
            return Step::End(Outcome::Loop);
        }
        let outer = self.walk_depth(node, t.peer, depth + 1);
        let step = match (&outer.outcome, outer.hops.last()) {
            (Outcome::Delivered, Some(last)) => {
                let far = self.node_index(&last.node).ok().and_then(|i| {
                    let ft = self
                        .tunnels(&last.node)
                        .iter()
                        .find(|f| f.local == t.peer && f.peer == t.local)?;
                    Some((i, ft))
                });
                match far {
                    Some((i, ft)) if ft.up => {
                        hop.next_node = Some(last.node.clone());
                        Step::Next {
                            node: i,
                            iface: ft.iface.clone(),
                            addr: ft.inside,
                        }
                    }
                    Some((_, ft)) => down(&last.node, &ft.connection, "no child SA".into()),
                    None => down(
                        &last.node,
                        connection,
                        format!("{} has no connection from {}", last.node, t.local),
                    ),
                }
            }
            (other, _) => down(node, connection, format!("outer packet: {other}")),
        };
        hop.tunnel = Some(Box::new(TunnelLeg {
            connection: connection.to_owned(),
            outer_src: t.local,
            outer_dst: t.peer,
            outer,
        }));
        step
    }
}

/// The result of one forwarding decision.
enum Step {
    /// The walk ends here.
    End(Outcome),
    /// The packet goes on to `node`, arriving on its `iface`, whose address is `addr`.
    Next {
        node: usize,
        iface: String,
        addr: Option<IpAddr>,
    },
}
