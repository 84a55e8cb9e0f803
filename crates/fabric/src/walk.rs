//! The packet walk: a packet's path hop by hop, decided by the tables alone.

use std::{fmt, net::IpAddr};

use rib::{NextHop, Route};
use serde::Serialize;

use crate::{Fabric, NodeKind};

/// More forwarding decisions than this is a loop. The seed's longest path has six nodes.
pub const MAX_HOPS: usize = 32;

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
            if i > 0 {
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
    pub fn walk(&self, from: &str, dst: IpAddr) -> Walk {
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
        let mut arrived: Option<(String, IpAddr)> = None;
        for _ in 0..MAX_HOPS {
            let node = self.node_at(at);
            let mut hop = Hop {
                node: node.name.clone(),
                in_iface: arrived.as_ref().map(|(i, _)| i.clone()),
                in_addr: arrived.as_ref().map(|(_, a)| *a),
                matched: None,
                out_iface: None,
                next_node: None,
            };
            let step = self.step(at, dst, arrived.is_some(), &mut hop);
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
    fn step(&self, at: usize, dst: IpAddr, transit: bool, hop: &mut Hop) -> Step {
        let node = self.node_at(at);
        let name = || node.name.clone();
        if node.owns(dst) {
            return Step::End(Outcome::Delivered);
        }
        if transit && node.kind == NodeKind::Host {
            return Step::End(Outcome::NotForwarded { node: name() });
        }
        let Some(sel) = self.tables_at(at).lookup(dst) else {
            return Step::End(Outcome::NoRoute { node: name() });
        };
        let route = sel.primary().clone();
        hop.matched = Some(route.clone());
        let (out_iface, target) = match &route.next_hop {
            NextHop::Interface(iface) => (Some(iface.clone()), dst),
            NextHop::Address { via, dev } => (
                dev.clone()
                    .or_else(|| node.interface_toward(*via).map(|i| i.name.clone())),
                *via,
            ),
            NextHop::Connection(connection) => {
                return Step::End(Outcome::Tunnel {
                    node: name(),
                    connection: connection.clone(),
                })
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
            addr: peer.addr.addr(),
        }
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
        addr: IpAddr,
    },
}
