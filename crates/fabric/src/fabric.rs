//! The fabric: nodes, links and route tables built from a [`FabricConfig`], with the
//! propagation rules of the crate documentation.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use rib::{NextHop, Route, Source, Table};
use serde::{Deserialize, Serialize};

use crate::{
    config::RouteTarget, ConfigError, ConfigErrors, FabricConfig, FabricError, Method, NodeKind,
    Routing,
};

/// A node: a network namespace in the lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Its unique name.
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its interfaces, in link order.
    pub interfaces: Vec<Interface>,
}

impl Node {
    /// The interface named `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The interface whose subnet contains `addr` (the one a neighbour at `addr` is reached
    /// through).
    pub fn interface_toward(&self, addr: IpAddr) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.addr.contains(&addr))
    }

    /// Whether one of its interfaces has `addr`.
    pub fn owns(&self, addr: IpAddr) -> bool {
        self.interfaces.iter().any(|i| i.addr.addr() == addr)
    }
}

/// One end of a link, seen from its node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Its name (at most 15 characters).
    pub name: String,
    /// The host address with the link's prefix length, e.g. `10.0.0.1/30`.
    pub addr: IpNet,
    /// Index of its link in [`Fabric::links`].
    pub link: usize,
    /// The node at the other end.
    pub peer_node: String,
    /// The interface at the other end.
    pub peer_iface: String,
}

/// A point-to-point link (a veth pair in the lab).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Link {
    /// One end.
    pub a: Endpoint,
    /// The other end.
    pub b: Endpoint,
}

impl Link {
    /// The end on `node`, then the other end.
    pub fn ends_from(&self, node: &str) -> Option<(&Endpoint, &Endpoint)> {
        if self.a.node == node {
            Some((&self.a, &self.b))
        } else if self.b.node == node {
            Some((&self.b, &self.a))
        } else {
            None
        }
    }
}

/// One end of a link, with its interface name resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// The node.
    pub node: String,
    /// The interface name.
    pub iface: String,
    /// The host address with the link's prefix length.
    pub addr: IpNet,
}

/// A route as the kernel takes it: `ip route replace PREFIX nexthop via V dev D [nexthop ..]`,
/// or `ip route replace blackhole PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRoute {
    /// The destination.
    pub prefix: IpNet,
    /// The next hops; more than one is ECMP. Empty for a blackhole.
    pub nexthops: Vec<KernelNextHop>,
    /// Whether matching packets are dropped.
    pub blackhole: bool,
}

/// One next hop of a [`KernelRoute`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelNextHop {
    /// The neighbour's address.
    pub via: IpAddr,
    /// The interface toward it.
    pub dev: String,
}

/// A static route of the configuration that is not installed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Inactive {
    pub(crate) route: Route,
    pub(crate) reason: String,
}

/// The fabric: every node's effective route table, kept up to date as routes are published,
/// withdrawn, learned and forgotten.
///
/// Tables are recomputed whole on every change: a handful of nodes and routes, and one code
/// path that is obviously the rules of the crate documentation.
#[derive(Clone, Debug)]
pub struct Fabric {
    config: FabricConfig,
    nodes: Vec<Node>,
    links: Vec<Link>,
    index: BTreeMap<String, usize>,
    /// Installed static routes, per node.
    statics: Vec<Vec<Route>>,
    /// Configured static routes that are not installed, per node.
    inactive: Vec<Vec<Inactive>>,
    /// BGP-learned routes: (node, prefix, next hop).
    bgp: BTreeSet<(usize, IpNet, IpAddr)>,
    /// Publications: (gateway, prefix).
    published: BTreeSet<(String, IpNet)>,
    /// IPsec connections of gateway nodes, per node, as their daemons report them.
    tunnels: Vec<Vec<GatewayTunnel>>,
    tables: Vec<Table>,
}

/// An IPsec connection of a `gateway` node as its daemon reports it, so that a walk follows a
/// packet into the tunnel, along the line as ESP, and out at the far end.
///
/// The fabric never programs these routes (the gateway's daemon does, through its TUN device);
/// it only models them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayTunnel {
    /// The connection's name on this gateway.
    pub connection: String,
    /// This gateway's outer address.
    pub local: IpAddr,
    /// The peer's outer address.
    pub peer: IpAddr,
    /// The device decrypted packets come out of (the daemon's TUN device).
    pub iface: String,
    /// This end's inside address on `iface`, the source of its ICMP errors for tunnelled
    /// packets; `None` for a policy-based connection.
    pub inside: Option<IpAddr>,
    /// Whether a child SA carries traffic now.
    pub up: bool,
    /// The prefixes the gateway routes into the connection now (its kernel routes).
    pub routes: Vec<IpNet>,
}

/// The preference of a gateway's routes into its tunnels: they beat the node's static routes
/// for the same prefix, as the daemon's kernel routes (a lower metric) beat the lab's.
pub const TUNNEL_ROUTE_PREFERENCE: u32 = 5;

/// Longest a node or interface name may be. Interface names are bounded by Linux (IFNAMSIZ
/// is 16 with the terminating NUL).
const IFNAME_MAX: usize = 15;
const NODE_NAME_MAX: usize = 32;

impl Fabric {
    /// Builds the fabric, checking every rule of the configuration; all broken rules are
    /// reported at once, each located in the configuration's file when it came from one.
    ///
    /// The rules: node names unique, letters, digits, `-` and `_`; a `vpc` has `cidrs`, no
    /// other kind does; prefixes have no host bits; VPC cidrs overlap neither each other nor
    /// the data center's. A link joins two known, different nodes with two different host
    /// addresses (not the network or broadcast address) of one subnet, overlapping no other
    /// link's; interface names (default: the peer's node name) are valid Linux names, unique
    /// per node. A `cen` links only to `vbr` and `vpc` nodes; a `vpc`'s link to a host or
    /// gateway (a vSwitch) lies inside its cidrs. A static route names a known node, and its
    /// `via` is the address of the node at the other end of one of its links; no route is
    /// given twice.
    pub fn new(config: FabricConfig) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let index = check_nodes(&config, &mut errors);
        let (nodes, links, broken) = build_links(&config, &index, &mut errors);
        let (statics, inactive) =
            build_routes(&config, &index, &nodes, &links, &broken, &mut errors);
        if !errors.is_empty() {
            // File order: the user's file first, by line; then anything located elsewhere.
            let file = config.origin.file().to_owned();
            errors.sort_by_key(|e| (e.file != file, e.line));
            return Err(ConfigErrors(errors));
        }
        let mut fabric = Self {
            tables: Vec::new(),
            config,
            nodes,
            links,
            index,
            statics,
            inactive,
            bgp: BTreeSet::new(),
            published: BTreeSet::new(),
            tunnels: Vec::new(),
        };
        fabric.tunnels = vec![Vec::new(); fabric.nodes.len()];
        fabric.recompute();
        Ok(fabric)
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &FabricConfig {
        &self.config
    }

    /// The seed's method in force.
    pub fn method(&self) -> Method {
        self.config.method
    }

    /// Every node, in configuration order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// Every link, in configuration order.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The data center's prefixes (`[data_center] cidrs`).
    pub fn data_center_cidrs(&self) -> &[IpNet] {
        &self.config.data_center.cidrs
    }

    /// A VPC node's address space; empty for other nodes.
    pub fn vpc_cidrs(&self, vpc: &str) -> &[IpNet] {
        self.config
            .nodes
            .iter()
            .find(|n| n.name == vpc)
            .map_or(&[], |n| &n.cidrs)
    }

    /// The effective table of `node`, after propagation and publications.
    pub fn table(&self, node: &str) -> Option<&Table> {
        self.index.get(node).map(|&i| &self.tables[i])
    }

    /// What to program into `node`'s kernel: the selected route of every prefix except
    /// connected ones (the kernel derives those from the interface addresses), ordered by
    /// prefix. Next hops that are not addresses (tunnels, bare interfaces) are not the
    /// fabric's to program and are left out.
    pub fn kernel_routes(&self, node: &str) -> Vec<KernelRoute> {
        let Some(&i) = self.index.get(node) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for sel in self.tables[i].iter_selected() {
            let primary = sel.primary();
            if primary.source == Source::Connected {
                continue;
            }
            if primary.next_hop == NextHop::Blackhole {
                out.push(KernelRoute {
                    prefix: sel.prefix,
                    nexthops: Vec::new(),
                    blackhole: true,
                });
                continue;
            }
            let nexthops: Vec<KernelNextHop> = sel
                .routes
                .iter()
                .filter_map(|r| match &r.next_hop {
                    NextHop::Address { via, dev } => {
                        let dev = dev.clone().or_else(|| {
                            self.nodes[i]
                                .interface_toward(*via)
                                .map(|iface| iface.name.clone())
                        })?;
                        Some(KernelNextHop { via: *via, dev })
                    }
                    _ => None,
                })
                .collect();
            if !nexthops.is_empty() {
                out.push(KernelRoute {
                    prefix: sel.prefix,
                    nexthops,
                    blackhole: false,
                });
            }
        }
        out.sort_by_key(|r| r.prefix);
        out
    }

    /// `gateway` publishes `prefix` into the table of every VPC it is linked to (the seed's
    /// "routes advertised on the VPN gateway"). Returns whether anything changed (false when
    /// already published).
    ///
    /// The published route beats the CEN-propagated route for the same prefix (see
    /// [`PUBLISHED_BEATS_PROPAGATED`](crate::PUBLISHED_BEATS_PROPAGATED)); it is never
    /// propagated out of the VPC.
    pub fn publish(&mut self, gateway: &str, prefix: IpNet) -> Result<bool, FabricError> {
        let prefix = prefix.trunc();
        let vpcs = self.gateway_vpcs(gateway)?;
        for (vpc, _, _) in &vpcs {
            if let Some(cidr) = self
                .vpc_cidrs(&self.nodes[*vpc].name)
                .iter()
                .find(|c| c.contains(&prefix))
            {
                return Err(FabricError::InsideVpcCidr {
                    prefix,
                    cidr: *cidr,
                });
            }
        }
        let changed = self.published.insert((gateway.to_owned(), prefix));
        if changed {
            self.recompute();
        }
        Ok(changed)
    }

    /// `gateway` withdraws `prefix`. Returns whether it was published.
    pub fn withdraw(&mut self, gateway: &str, prefix: IpNet) -> Result<bool, FabricError> {
        self.gateway_vpcs(gateway)?;
        let changed = self.published.remove(&(gateway.to_owned(), prefix.trunc()));
        if changed {
            self.recompute();
        }
        Ok(changed)
    }

    /// `gateway` withdraws everything it published (its tunnel or BGP session went down).
    /// Returns the withdrawn prefixes.
    pub fn withdraw_all(&mut self, gateway: &str) -> Result<Vec<IpNet>, FabricError> {
        self.gateway_vpcs(gateway)?;
        let gone: Vec<IpNet> = self
            .published
            .iter()
            .filter(|(g, _)| g == gateway)
            .map(|(_, p)| *p)
            .collect();
        if !gone.is_empty() {
            self.published.retain(|(g, _)| g != gateway);
            self.recompute();
        }
        Ok(gone)
    }

    /// Records a gateway's connection (replacing the one of the same name), with the routes
    /// into it. A packet that a walk routes into an `up` connection crosses the fabric as the
    /// outer packet and comes out at the node owning `peer`.
    pub fn set_tunnel(&mut self, gateway: &str, tunnel: GatewayTunnel) -> Result<(), FabricError> {
        let i = self.node_index(gateway)?;
        if self.nodes[i].kind != NodeKind::Gateway {
            return Err(FabricError::NotAGateway(gateway.to_owned()));
        }
        let list = &mut self.tunnels[i];
        match list.iter_mut().find(|t| t.connection == tunnel.connection) {
            Some(t) => *t = tunnel,
            None => list.push(tunnel),
        }
        self.recompute();
        Ok(())
    }

    /// The connections of `node` recorded with [`Fabric::set_tunnel`].
    pub fn tunnels(&self, node: &str) -> &[GatewayTunnel] {
        self.index.get(node).map_or(&[], |&i| &self.tunnels[i])
    }

    /// Every publication, as (gateway, prefix), ordered.
    pub fn published(&self) -> Vec<(String, IpNet)> {
        self.published.iter().cloned().collect()
    }

    /// A route `node` learned from a BGP neighbour at `via` (a neighbour's address on one of
    /// its links). On a VBR, it propagates to the CEN and on to the VPCs like a static route.
    /// Refused on a VBR whose routing is static. Returns whether it is new.
    pub fn learn_bgp(
        &mut self,
        node: &str,
        prefix: IpNet,
        via: IpAddr,
    ) -> Result<bool, FabricError> {
        let i = self.bgp_node(node)?;
        if prefix.addr().is_ipv4() != via.is_ipv4() {
            return Err(FabricError::FamilyMismatch { prefix, via });
        }
        let n = &self.nodes[i];
        if n.owns(via) || n.interface_toward(via).is_none() {
            return Err(FabricError::ViaOffLink {
                node: node.to_owned(),
                via,
            });
        }
        let changed = self.bgp.insert((i, prefix.trunc(), via));
        if changed {
            self.recompute();
        }
        Ok(changed)
    }

    /// Forgets a BGP-learned route. Returns whether it was known.
    pub fn forget_bgp(
        &mut self,
        node: &str,
        prefix: IpNet,
        via: IpAddr,
    ) -> Result<bool, FabricError> {
        let i = self.bgp_node(node)?;
        let changed = self.bgp.remove(&(i, prefix.trunc(), via));
        if changed {
            self.recompute();
        }
        Ok(changed)
    }

    /// Forgets every route `node` learned from BGP (its session went down). Returns how many.
    pub fn forget_all_bgp(&mut self, node: &str) -> Result<usize, FabricError> {
        let i = self.bgp_node(node)?;
        let before = self.bgp.len();
        self.bgp.retain(|(n, _, _)| *n != i);
        let gone = before - self.bgp.len();
        if gone > 0 {
            self.recompute();
        }
        Ok(gone)
    }

    /// Every BGP-learned route, as (node, prefix, next hop), ordered.
    pub fn bgp_routes(&self) -> Vec<(String, IpNet, IpAddr)> {
        self.bgp
            .iter()
            .map(|(i, p, v)| (self.nodes[*i].name.clone(), *p, *v))
            .collect()
    }

    /// The node and interface that have `addr`.
    pub fn owner_of(&self, addr: IpAddr) -> Option<(&Node, &Interface)> {
        self.nodes.iter().find_map(|n| {
            n.interfaces
                .iter()
                .find(|i| i.addr.addr() == addr)
                .map(|i| (n, i))
        })
    }

    /// The index of `node`, or `UnknownNode`.
    pub(crate) fn node_index(&self, node: &str) -> Result<usize, FabricError> {
        self.index
            .get(node)
            .copied()
            .ok_or_else(|| FabricError::UnknownNode(node.to_owned()))
    }

    pub(crate) fn tables_at(&self, i: usize) -> &Table {
        &self.tables[i]
    }

    pub(crate) fn node_at(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub(crate) fn inactive_at(&self, i: usize) -> &[Inactive] {
        &self.inactive[i]
    }

    fn bgp_node(&self, node: &str) -> Result<usize, FabricError> {
        let i = self.node_index(node)?;
        if self.nodes[i].kind == NodeKind::Vbr && self.config.method.vbr() == Routing::Static {
            return Err(FabricError::BgpDisabled {
                node: node.to_owned(),
            });
        }
        Ok(i)
    }

    /// The VPCs a gateway is linked to: (vpc index, gateway's address, VPC's interface).
    fn gateway_vpcs(&self, gateway: &str) -> Result<Vec<(usize, IpAddr, String)>, FabricError> {
        let g = self.node_index(gateway)?;
        let node = &self.nodes[g];
        if node.kind != NodeKind::Gateway {
            return Err(FabricError::NotAGateway(gateway.to_owned()));
        }
        let vpcs: Vec<_> = node
            .interfaces
            .iter()
            .filter_map(|iface| {
                let peer = *self.index.get(&iface.peer_node)?;
                (self.nodes[peer].kind == NodeKind::Vpc)
                    .then(|| (peer, iface.addr.addr(), iface.peer_iface.clone()))
            })
            .collect();
        if vpcs.is_empty() {
            return Err(FabricError::NoVpcAttachment(gateway.to_owned()));
        }
        Ok(vpcs)
    }

    /// Rebuilds every table from the configuration and the dynamic state (BGP-learned routes,
    /// publications), in the fixed order of the crate documentation.
    fn recompute(&mut self) {
        let mut tables: Vec<Table> = self.nodes.iter().map(|_| Table::new()).collect();

        // 1. Each node's own routes: connected, static, BGP-learned.
        for (i, node) in self.nodes.iter().enumerate() {
            for iface in &node.interfaces {
                tables[i].insert(Route::new(
                    iface.addr.trunc(),
                    NextHop::Interface(iface.name.clone()),
                    Source::Connected,
                ));
            }
            for r in &self.statics[i] {
                tables[i].insert(r.clone());
            }
        }
        for (i, tunnels) in self.tunnels.iter().enumerate() {
            for t in tunnels {
                for prefix in &t.routes {
                    tables[i].insert(
                        Route::new(
                            prefix.trunc(),
                            NextHop::Connection(t.connection.clone()),
                            Source::Static,
                        )
                        .with_preference(TUNNEL_ROUTE_PREFERENCE),
                    );
                }
            }
        }
        for &(i, prefix, via) in &self.bgp {
            let dev = self.nodes[i].interface_toward(via).map(|f| f.name.clone());
            tables[i].insert(Route::new(
                prefix,
                NextHop::Address { via, dev },
                Source::Bgp,
            ));
        }

        // 2. CEN attachments. What each CEN learns is computed from the tables of step 1 only,
        //    and what it hands out only from what it learned: one pass, no iteration, no loop.
        let own = tables.clone();
        let mut handed_out: Vec<(usize, Route)> = Vec::new();
        for (c, cen) in self.nodes.iter().enumerate() {
            if cen.kind != NodeKind::Cen {
                continue;
            }
            let attachments = self.attachments(c);
            for (iface, peer, peer_iface) in &attachments {
                for route in self.exported(&own[*peer], *peer, peer_iface, iface) {
                    tables[c].insert(route);
                }
            }
            for (iface, peer, peer_iface) in &attachments {
                for sel in tables[c].iter_selected() {
                    let learned = sel
                        .routes
                        .iter()
                        .all(|r| matches!(r.source, Source::Propagated { .. }));
                    // Never reflect a route back to the attachment it came from.
                    let from_here = sel.routes.iter().any(|r| {
                        matches!(&r.next_hop, NextHop::Address { dev: Some(d), .. } if *d == iface.name)
                    });
                    if learned && !from_here {
                        handed_out.push((
                            *peer,
                            Route::new(
                                sel.prefix,
                                NextHop::Address {
                                    via: iface.addr.addr(),
                                    dev: Some(peer_iface.name.clone()),
                                },
                                Source::Propagated {
                                    from: cen.name.clone(),
                                },
                            ),
                        ));
                    }
                }
            }
        }
        for (peer, route) in handed_out {
            tables[peer].insert(route);
        }

        // 3. Publications into the VPCs. Never exported: see the crate documentation.
        for (gateway, prefix) in &self.published {
            // A publication is only accepted for a gateway with VPC links, and links do not
            // change, so this lookup succeeds; an empty list would simply publish nothing.
            for (vpc, via, vpc_iface) in self.gateway_vpcs(gateway).unwrap_or_default() {
                tables[vpc].insert(Route::new(
                    *prefix,
                    NextHop::Address {
                        via,
                        dev: Some(vpc_iface),
                    },
                    Source::Published {
                        by: gateway.clone(),
                    },
                ));
            }
        }
        self.tables = tables;
    }

    /// A CEN's attachments: (CEN's interface, attached node, its interface), in link order.
    fn attachments(&self, cen: usize) -> Vec<(&Interface, usize, &Interface)> {
        self.nodes[cen]
            .interfaces
            .iter()
            .filter_map(|iface| {
                let peer = *self.index.get(&iface.peer_node)?;
                let pn = &self.nodes[peer];
                if !matches!(pn.kind, NodeKind::Vbr | NodeKind::Vpc) {
                    return None;
                }
                Some((iface, peer, pn.interface(&iface.peer_iface)?))
            })
            .collect()
    }

    /// What an attached node announces to the CEN over the attachment (`peer_iface` on the
    /// attached node, `cen_iface` on the CEN).
    fn exported(
        &self,
        own: &Table,
        peer: usize,
        peer_iface: &Interface,
        cen_iface: &Interface,
    ) -> Vec<Route> {
        let node = &self.nodes[peer];
        let via = peer_iface.addr.addr();
        let learned = |prefix: IpNet| {
            Route::new(
                prefix,
                NextHop::Address {
                    via,
                    dev: Some(cen_iface.name.clone()),
                },
                Source::Propagated {
                    from: node.name.clone(),
                },
            )
        };
        match node.kind {
            NodeKind::Vpc => self
                .vpc_cidrs(&node.name)
                .iter()
                .map(|c| learned(*c))
                .collect(),
            NodeKind::Vbr => own
                .iter_selected()
                .filter(|sel| match &sel.primary().source {
                    // Its links, except those to a CEN: the transit subnets stay local.
                    Source::Connected => match &sel.primary().next_hop {
                        NextHop::Interface(dev) => node
                            .interface(dev)
                            .and_then(|i| self.node(&i.peer_node))
                            .is_some_and(|p| p.kind != NodeKind::Cen),
                        _ => false,
                    },
                    Source::Static | Source::Bgp => true,
                    Source::Propagated { .. } | Source::Published { .. } => false,
                })
                .map(|sel| learned(sel.prefix))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Node names: unique, well-formed; VPC CIDRs where they belong; data-center CIDRs apart from
/// them. Returns the name → index map of the first occurrence of each name.
fn check_nodes(config: &FabricConfig, errors: &mut Vec<ConfigError>) -> BTreeMap<String, usize> {
    let mut index = BTreeMap::new();
    for (i, n) in config.nodes.iter().enumerate() {
        let path = format!("node[{i}]");
        if let Some(problem) = node_name_problem(&n.name) {
            errors.push(config.error(&format!("{path}.name"), format!("{:?} {problem}", n.name)));
        }
        if let Some(&first) = index.get(&n.name) {
            let (_, line) = config.origin.locate(&format!("node[{first}].name"));
            errors.push(config.error(
                &format!("{path}.name"),
                format!(
                    "duplicate node name {:?} (first defined as node[{first}], line {line}): \
                     node names are unique",
                    n.name
                ),
            ));
        } else {
            index.insert(n.name.clone(), i);
        }
        match (n.kind, n.cidrs.is_empty()) {
            (NodeKind::Vpc, true) => errors.push(config.error(
                &format!("{path}.kind"),
                format!(
                    "vpc {:?} needs its address space: cidrs = [\"172.16.0.0/16\"]",
                    n.name
                ),
            )),
            (NodeKind::Vpc, false) | (_, true) => {}
            (kind, false) => errors.push(config.error(
                &format!("{path}.cidrs"),
                format!("only a vpc node has cidrs; {:?} is a {kind}", n.name),
            )),
        }
        for (j, c) in n.cidrs.iter().enumerate() {
            if let Some(e) = host_bits(config, &format!("{path}.cidrs[{j}]"), c) {
                errors.push(e);
            }
        }
    }
    // VPC address spaces must be distinct from each other and from the data center, or
    // LPM would send one side's traffic to the other.
    let vpc_cidrs: Vec<(usize, usize, IpNet)> = config
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind == NodeKind::Vpc)
        .flat_map(|(i, n)| n.cidrs.iter().enumerate().map(move |(j, c)| (i, j, *c)))
        .collect();
    for (k, &(i, j, c)) in vpc_cidrs.iter().enumerate() {
        for &(i2, j2, c2) in &vpc_cidrs[..k] {
            if overlaps(&c, &c2) {
                errors.push(config.error(
                    &format!("node[{i}].cidrs[{j}]"),
                    format!(
                        "{c} overlaps {c2} (node[{i2}].cidrs[{j2}]): VPC address spaces \
                         attached to one fabric must not overlap"
                    ),
                ));
            }
        }
    }
    for (k, dc) in config.data_center.cidrs.iter().enumerate() {
        let path = format!("data_center.cidrs[{k}]");
        if let Some(e) = host_bits(config, &path, dc) {
            errors.push(e);
        }
        if let Some(&(i, _, c)) = vpc_cidrs.iter().find(|(_, _, c)| overlaps(dc, c)) {
            errors.push(config.error(
                &path,
                format!(
                    "{dc} overlaps the address space {c} of vpc {:?}: the data center and the \
                     VPC must not share addresses",
                    config.nodes[i].name
                ),
            ));
        }
    }
    index
}

/// Links: known nodes, one subnet per link with room for both ends, unique addresses and
/// interface names, CEN attachments to VBRs and VPCs only, vSwitches inside their VPC.
///
/// Also returns, for links too broken to build, the (node, subnet) pairs they would have
/// given, so that a route through such a link is not reported a second time.
fn build_links(
    config: &FabricConfig,
    index: &BTreeMap<String, usize>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<Node>, Vec<Link>, Vec<(usize, IpNet)>) {
    let mut nodes: Vec<Node> = config
        .nodes
        .iter()
        .map(|n| Node {
            name: n.name.clone(),
            kind: n.kind,
            interfaces: Vec::new(),
        })
        .collect();
    let mut links = Vec::new();
    let mut broken = Vec::new();
    // Where each address and subnet was first seen, to report duplicates against it.
    let mut addrs: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut subnets: Vec<(IpNet, usize)> = Vec::new();

    for (l, link) in config.links.iter().enumerate() {
        let path = format!("link[{l}]");
        // Whether the link can still be built (known nodes, one subnet), so that the routes
        // using it are checked too; other errors are reported without blocking it.
        let mut ok = true;
        for (side, end) in [("a", &link.a), ("b", &link.b)] {
            if !index.contains_key(&end.node) {
                ok = false;
                errors.push(config.error(
                    &format!("{path}.{side}.node"),
                    format!("unknown node {:?}; nodes are: {}", end.node, names(config)),
                ));
            }
        }
        if ok && link.a.node == link.b.node {
            ok = false;
            errors.push(config.error(
                &format!("{path}.b.node"),
                format!(
                    "a link joins two different nodes; both ends are {:?}",
                    link.a.node
                ),
            ));
        }

        // Addresses: one subnet, room for two hosts, two different host addresses.
        let (a, b) = (link.a.addr, link.b.addr);
        let single = match a {
            IpNet::V4(n) => n.prefix_len() == 32,
            IpNet::V6(n) => n.prefix_len() == 128,
        };
        if a.addr().is_ipv4() != b.addr().is_ipv4() {
            ok = false;
            errors.push(config.error(
                &format!("{path}.b.addr"),
                format!("{b} and link[{l}].a.addr {a} are of different address families"),
            ));
        } else if a.prefix_len() != b.prefix_len() || a.trunc() != b.trunc() {
            ok = false;
            errors.push(config.error(
                &format!("{path}.b.addr"),
                format!(
                    "{b} is not in the subnet of link[{l}].a.addr {a}: both ends of a link \
                     share one subnet"
                ),
            ));
        } else if single {
            errors.push(config.error(
                &format!("{path}.a.addr"),
                format!("{a} leaves no room for the other end: a link needs a shorter prefix"),
            ));
        } else if a.addr() == b.addr() {
            errors.push(config.error(
                &format!("{path}.b.addr"),
                format!("both ends have the address {}", b.addr()),
            ));
        } else {
            for (side, net) in [("a", a), ("b", b)] {
                if let IpNet::V4(n) = net {
                    if n.prefix_len() <= 30
                        && (n.addr() == n.network() || n.addr() == n.broadcast())
                    {
                        errors.push(config.error(
                            &format!("{path}.{side}.addr"),
                            format!(
                                "{net} is the subnet's {} address, not a host address",
                                if n.addr() == n.network() {
                                    "network"
                                } else {
                                    "broadcast"
                                }
                            ),
                        ));
                    }
                }
            }
        }
        if a.addr().is_ipv4() == b.addr().is_ipv4() {
            let subnet = a.trunc();
            if let Some(&(other, l2)) = subnets.iter().find(|(s, _)| overlaps(s, &subnet)) {
                errors.push(config.error(
                    &format!("{path}.a.addr"),
                    format!(
                        "subnet {subnet} overlaps {other} of link[{l2}]: every link has a \
                         subnet of its own"
                    ),
                ));
            } else {
                subnets.push((subnet, l));
            }
        }
        for (side, end) in [("a", &link.a), ("b", &link.b)] {
            let ip = end.addr.addr();
            if let Some(first) = addrs.get(&ip) {
                errors.push(config.error(
                    &format!("{path}.{side}.addr"),
                    format!("address {ip} is already used by {first}"),
                ));
            } else {
                addrs.insert(ip, format!("link[{l}].{side}"));
            }
        }

        // Interface names: given, or the peer's node name.
        let mut ifaces = [String::new(), String::new()];
        for ((side, end, peer), slot) in [("a", &link.a, &link.b), ("b", &link.b, &link.a)]
            .into_iter()
            .zip(ifaces.iter_mut())
        {
            let (name, defaulted) = match &end.iface {
                Some(n) => (n.clone(), false),
                None => (peer.node.clone(), true),
            };
            let field = format!("{path}.{side}.iface");
            if let Some(problem) = iface_name_problem(&name) {
                let hint = if defaulted {
                    format!(" (it defaults to the peer's node name; set {field} to a shorter name)")
                } else {
                    String::new()
                };
                errors
                    .push(config.error(&field, format!("interface name {name:?} {problem}{hint}")));
            } else if let Some(&n) = index.get(&end.node) {
                if nodes[n].interfaces.iter().any(|i| i.name == name) {
                    let hint = if defaulted {
                        " (it defaults to the peer's node name: two links between the same \
                         nodes need explicit iface names)"
                    } else {
                        ""
                    };
                    errors.push(config.error(
                        &field,
                        format!(
                            "{:?} already has an interface named {name:?}{hint}",
                            end.node
                        ),
                    ));
                }
            }
            *slot = name;
        }

        // Kinds: a CEN's links are its attachments; a VPC's links to hosts and gateways are
        // vSwitches inside its address space.
        if let (Some(&ia), Some(&ib)) = (index.get(&link.a.node), index.get(&link.b.node)) {
            for (side, me, other, end) in [("a", ia, ib, &link.a), ("b", ib, ia, &link.b)] {
                let (mk, ok_kind) = (config.nodes[me].kind, config.nodes[other].kind);
                if mk == NodeKind::Cen && !matches!(ok_kind, NodeKind::Vbr | NodeKind::Vpc) {
                    errors.push(config.error(
                        &format!("{path}.{side}.node"),
                        format!(
                            "a cen links only to vbr and vpc nodes (its attachments); {:?} is a \
                             {ok_kind}",
                            config.nodes[other].name
                        ),
                    ));
                }
                if mk == NodeKind::Vpc
                    && matches!(ok_kind, NodeKind::Host | NodeKind::Gateway)
                    && !config.nodes[me]
                        .cidrs
                        .iter()
                        .any(|c| c.contains(&end.addr.trunc()))
                {
                    errors.push(config.error(
                        &format!("{path}.{side}.addr"),
                        format!(
                            "vSwitch subnet {} is outside the address space of vpc {:?} ({})",
                            end.addr.trunc(),
                            end.node,
                            list(&config.nodes[me].cidrs)
                        ),
                    ));
                }
            }
        }

        if !ok {
            for end in [&link.a, &link.b] {
                if let Some(&n) = index.get(&end.node) {
                    broken.extend([(n, link.a.addr), (n, link.b.addr)]);
                }
            }
        } else {
            let [ia_name, ib_name] = ifaces;
            let (ia, ib) = (index[&link.a.node], index[&link.b.node]);
            nodes[ia].interfaces.push(Interface {
                name: ia_name.clone(),
                addr: link.a.addr,
                link: links.len(),
                peer_node: link.b.node.clone(),
                peer_iface: ib_name.clone(),
            });
            nodes[ib].interfaces.push(Interface {
                name: ib_name.clone(),
                addr: link.b.addr,
                link: links.len(),
                peer_node: link.a.node.clone(),
                peer_iface: ia_name.clone(),
            });
            links.push(Link {
                a: Endpoint {
                    node: link.a.node.clone(),
                    iface: ia_name,
                    addr: link.a.addr,
                },
                b: Endpoint {
                    node: link.b.node.clone(),
                    iface: ib_name,
                    addr: link.b.addr,
                },
            });
        }
    }
    (nodes, links, broken)
}

/// Static routes: known node, no host bits, a next hop that is a neighbour on one of the
/// node's links. Returns the installed routes and the inactive ones, per node.
fn build_routes(
    config: &FabricConfig,
    index: &BTreeMap<String, usize>,
    nodes: &[Node],
    links: &[Link],
    broken: &[(usize, IpNet)],
    errors: &mut Vec<ConfigError>,
) -> (Vec<Vec<Route>>, Vec<Vec<Inactive>>) {
    let mut statics = vec![Vec::new(); nodes.len()];
    let mut inactive = vec![Vec::new(); nodes.len()];
    let mut seen: BTreeMap<(usize, IpNet, NextHop), usize> = BTreeMap::new();
    for (r, route) in config.routes.iter().enumerate() {
        let path = format!("route[{r}]");
        let Some(&n) = index.get(&route.node) else {
            errors.push(config.error(
                &format!("{path}.node"),
                format!(
                    "unknown node {:?}; nodes are: {}",
                    route.node,
                    names(config)
                ),
            ));
            continue;
        };
        if let Some(e) = host_bits(config, &format!("{path}.prefix"), &route.prefix) {
            errors.push(e);
            continue;
        }
        let node = &nodes[n];
        let next_hop = match route.target {
            RouteTarget::Blackhole => NextHop::Blackhole,
            RouteTarget::Via(via) => {
                let field = format!("{path}.via");
                if via.is_ipv4() != route.prefix.addr().is_ipv4() {
                    errors.push(config.error(
                        &field,
                        format!(
                            "next hop {via} and prefix {} are of different address families",
                            route.prefix
                        ),
                    ));
                    continue;
                }
                if node.owns(via) {
                    errors.push(config.error(
                        &field,
                        format!(
                            "{via} is {:?}'s own address; a next hop is a neighbour",
                            node.name
                        ),
                    ));
                    continue;
                }
                let Some(iface) = node.interface_toward(via) else {
                    if broken.iter().any(|(b, net)| *b == n && net.contains(&via)) {
                        // Its link is broken, and already reported.
                        continue;
                    }
                    let subnets: Vec<IpNet> =
                        node.interfaces.iter().map(|i| i.addr.trunc()).collect();
                    errors.push(config.error(
                        &field,
                        format!(
                            "route to {} on {:?}: next hop {via} is not on any of its links ({}); \
                             a static route's next hop is a neighbour on a connected subnet",
                            route.prefix,
                            node.name,
                            if subnets.is_empty() {
                                "it has none".to_owned()
                            } else {
                                list(&subnets)
                            }
                        ),
                    ));
                    continue;
                };
                let peer = links[iface.link].ends_from(&node.name).map(|(_, p)| p);
                if let Some(peer) = peer.filter(|p| p.addr.addr() != via) {
                    errors.push(config.error(
                        &field,
                        format!(
                            "route to {} on {:?}: no node has {via} on link {} (the other end, \
                             {:?}, is {})",
                            route.prefix,
                            node.name,
                            iface.name,
                            peer.node,
                            peer.addr.addr()
                        ),
                    ));
                    continue;
                }
                NextHop::Address {
                    via,
                    dev: Some(iface.name.clone()),
                }
            }
        };
        if let Some(first) = seen.insert((n, route.prefix, next_hop.clone()), r) {
            errors.push(config.error(
                &format!("{path}.prefix"),
                format!(
                    "duplicate of route[{first}] ({} {next_hop} on {:?})",
                    route.prefix, node.name
                ),
            ));
            continue;
        }
        let installed = Route::new(route.prefix, next_hop, Source::Static);
        // Under routing.vbr = "bgp" the VBR learns the data center from its BGP neighbour;
        // its static routes toward the data center would hide a BGP withdrawal, so they are
        // kept (the same file serves all three methods) but not installed.
        if node.kind == NodeKind::Vbr
            && config.method.vbr() == Routing::Bgp
            && config
                .data_center
                .cidrs
                .iter()
                .any(|dc| overlaps(dc, &route.prefix))
        {
            inactive[n].push(Inactive {
                route: installed,
                reason: format!(
                    "not installed: routing.vbr = \"bgp\" (method {}), so the VBR learns the \
                     data center's prefixes from BGP and ignores its static routes toward them",
                    config.method
                ),
            });
        } else {
            statics[n].push(installed);
        }
    }
    (statics, inactive)
}

fn host_bits(config: &FabricConfig, field: &str, net: &IpNet) -> Option<ConfigError> {
    (net.trunc() != *net).then(|| {
        config.error(
            field,
            format!(
                "{net} has host bits set; a prefix is written {}",
                net.trunc()
            ),
        )
    })
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn names(config: &FabricConfig) -> String {
    let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

fn list(nets: &[IpNet]) -> String {
    let v: Vec<String> = nets.iter().map(ToString::to_string).collect();
    v.join(", ")
}

fn node_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("is empty".to_owned()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            Some("must start with a letter or digit".to_owned())
        }
        _ if name.len() > NODE_NAME_MAX => {
            Some(format!("is longer than {NODE_NAME_MAX} characters"))
        }
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            Some("may contain only letters, digits, '-' and '_'".to_owned())
        }
        _ => None,
    }
}

/// What Linux would refuse in an interface name (`dev_valid_name`), plus `lo`.
fn iface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > IFNAME_MAX {
        Some(format!(
            "is longer than {IFNAME_MAX} characters, the Linux limit"
        ))
    } else if name == "." || name == ".." {
        Some("is not a valid interface name".to_owned())
    } else if !name
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
    {
        Some("may contain only printable ASCII without spaces, '/' or ':'".to_owned())
    } else if name == "lo" {
        Some("is the loopback interface's name".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_linux() {
        assert!(iface_name_problem("onprem-gw").is_none());
        assert!(iface_name_problem("exactly15chars_").is_none());
        assert!(iface_name_problem("sixteen-chars-xx").is_some());
        assert!(iface_name_problem("a/b").is_some());
        assert!(iface_name_problem("a b").is_some());
        assert!(iface_name_problem("eth0:1").is_some());
        assert!(iface_name_problem("..").is_some());
        assert!(iface_name_problem("lo").is_some());
        assert!(iface_name_problem("").is_some());
    }

    #[test]
    fn node_names_are_plain() {
        assert!(node_name_problem("onprem-gw").is_none());
        assert!(node_name_problem("vpc_2").is_none());
        assert!(node_name_problem("-x").is_some());
        assert!(node_name_problem("a.b").is_some());
        assert!(node_name_problem("").is_some());
        assert!(node_name_problem(&"x".repeat(33)).is_some());
    }

    #[test]
    fn overlap_is_symmetric_and_family_aware() {
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "10.1.0.0/16".parse().unwrap();
        let c: IpNet = "11.0.0.0/8".parse().unwrap();
        let d: IpNet = "::/0".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert!(!overlaps(&a, &d));
    }
}
