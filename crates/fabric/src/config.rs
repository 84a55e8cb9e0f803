//! The configuration: what an operator writes (see [`DEFAULT_TOML`](crate::DEFAULT_TOML)), as
//! plain data, plus where each field came from so that errors can point at it.

use std::{
    fmt::{self, Write as _},
    net::IpAddr,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{ConfigError, ConfigErrors};

/// How a router learns routes toward the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// Routes written by an operator.
    Static,
    /// Routes learned from a BGP neighbour.
    Bgp,
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Static => "static",
            Self::Bgp => "bgp",
        })
    }
}

/// The seed's configuration methods: how the VBR and the VPN gateway route.
///
/// | method | VBR | VPN gateway | when the tunnel breaks |
/// |---|---|---|---|
/// | 1 | static | static | traffic stops until the gateway's routes are withdrawn by hand |
/// | 2 | static | BGP | the gateway's BGP routes are withdrawn; traffic takes the line |
/// | 3 | BGP | BGP | same as 2 |
///
/// The fourth combination, BGP on the VBR with static routing on the VPN gateway, is not a
/// method: [`Method::from_routing`] rejects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Method {
    /// Static routing on the VBR and on the VPN gateway.
    One,
    /// Static routing on the VBR, BGP on the VPN gateway.
    Two,
    /// BGP on the VBR and on the VPN gateway.
    Three,
}

impl Method {
    /// All methods, in order.
    pub const ALL: [Self; 3] = [Self::One, Self::Two, Self::Three];

    /// The method's number, 1 to 3.
    pub const fn number(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Three => 3,
        }
    }

    /// The method with this number.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(Self::One),
            2 => Some(Self::Two),
            3 => Some(Self::Three),
            _ => None,
        }
    }

    /// How the VBR routes under this method.
    pub const fn vbr(self) -> Routing {
        match self {
            Self::One | Self::Two => Routing::Static,
            Self::Three => Routing::Bgp,
        }
    }

    /// How the VPN gateway routes under this method.
    pub const fn vpn_gateway(self) -> Routing {
        match self {
            Self::One => Routing::Static,
            Self::Two | Self::Three => Routing::Bgp,
        }
    }

    /// The method of a pair of settings. BGP on the VBR with static routing on the VPN gateway
    /// is refused, as the seed says: "You cannot configure BGP dynamic routing for the VBR if
    /// static routing is configured for the VPN gateway".
    pub fn from_routing(vbr: Routing, vpn_gateway: Routing) -> Result<Self, ForbiddenCombination> {
        match (vbr, vpn_gateway) {
            (Routing::Static, Routing::Static) => Ok(Self::One),
            (Routing::Static, Routing::Bgp) => Ok(Self::Two),
            (Routing::Bgp, Routing::Bgp) => Ok(Self::Three),
            (Routing::Bgp, Routing::Static) => Err(ForbiddenCombination),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl From<Method> for u8 {
    fn from(m: Method) -> Self {
        m.number()
    }
}

impl TryFrom<u8> for Method {
    type Error = String;

    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Self::from_number(n).ok_or_else(|| format!("method {n} does not exist: use 1, 2 or 3"))
    }
}

/// BGP on the VBR with static routing on the VPN gateway: the combination the seed forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "routing.vbr = \"bgp\" with routing.vpn_gateway = \"static\" is not allowed: you cannot \
     configure BGP dynamic routing for the VBR if static routing is configured for the VPN \
     gateway (use vpn_gateway = \"bgp\" for method 3, or vbr = \"static\" for method 1 or 2)"
)]
pub struct ForbiddenCombination;

/// What a node is, which decides how routes reach its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// An end system (client, ECS instance). Does not forward.
    Host,
    /// An IPsec gateway: the on-premises device or the private VPN gateway. Forwards.
    Gateway,
    /// Virtual border router: the cloud end of the leased line.
    Vbr,
    /// CEN transit router: joins its attachments (VBRs and VPCs).
    Cen,
    /// A VPC's router.
    Vpc,
}

impl NodeKind {
    /// Whether the node forwards IP packets not addressed to it: every kind but `host`.
    pub fn forwards(&self) -> bool {
        !matches!(self, Self::Host)
    }

    /// The kind named `s` as in the configuration file.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "host" => Self::Host,
            "gateway" => Self::Gateway,
            "vbr" => Self::Vbr,
            "cen" => Self::Cen,
            "vpc" => Self::Vpc,
            _ => return None,
        })
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Host => "host",
            Self::Gateway => "gateway",
            Self::Vbr => "vbr",
            Self::Cen => "cen",
            Self::Vpc => "vpc",
        })
    }
}

/// The data center behind the on-premises gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCenterConfig {
    /// Its prefixes: what the VPN gateway publishes into the VPC, and what a BGP-routed VBR
    /// learns instead of its static routes.
    pub cidrs: Vec<IpNet>,
}

/// A node as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Unique name: letters, digits, `-`, `_`; at most 32 characters.
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
    /// A VPC's address space (required for `vpc`, refused for other kinds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<IpNet>,
}

/// One end of a link as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndConfig {
    /// The node.
    pub node: String,
    /// Interface name; `None` means the peer node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The end's host address with the link's prefix length, e.g. `10.0.0.1/30`.
    pub addr: IpNet,
}

/// A point-to-point link as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkConfig {
    /// One end.
    pub a: EndConfig,
    /// The other end.
    pub b: EndConfig,
}

/// Where a static route sends traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    /// To a neighbour's address on one of the node's links.
    Via(IpAddr),
    /// Nowhere: dropped.
    Blackhole,
}

/// A static route as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    /// The node whose table holds it.
    pub node: String,
    /// The destination, without host bits.
    pub prefix: IpNet,
    /// The next hop.
    pub target: RouteTarget,
}

/// Where a configuration came from, to locate errors: `confread`'s field path → line map. Not
/// serialized: a configuration read back from JSON, or built in code, has no lines, and its
/// errors say line 0.
pub use confread::Origin;

/// The whole fabric as configured: routing method, data center, nodes, links, static routes.
///
/// Read it with [`FabricConfig::from_toml`] (the format is [`DEFAULT_TOML`](crate::DEFAULT_TOML)),
/// or build it in code and hand it to [`Fabric::new`](crate::Fabric::new), which checks every
/// rule. The default is the seed's lab.
///
/// Two configurations are equal when they describe the same fabric, wherever they came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FabricConfig {
    /// The seed's method (`[routing]`). The forbidden combination is not representable.
    pub method: Method,
    /// `[data_center]`.
    pub data_center: DataCenterConfig,
    /// `[[node]]`, in file order.
    pub nodes: Vec<NodeConfig>,
    /// `[[link]]`, in file order.
    pub links: Vec<LinkConfig>,
    /// `[[route]]`, in file order.
    pub routes: Vec<RouteConfig>,
    /// Where each field came from; see [`Origin`].
    #[serde(skip)]
    pub origin: Origin,
}

impl PartialEq for FabricConfig {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.data_center == other.data_center
            && self.nodes == other.nodes
            && self.links == other.links
            && self.routes == other.routes
    }
}

impl Eq for FabricConfig {}

/// The display name of the built-in default file in error messages.
pub const DEFAULT_FILE: &str = "<built-in default.toml>";

impl Default for FabricConfig {
    /// The seed's lab: [`DEFAULT_TOML`](crate::DEFAULT_TOML).
    fn default() -> Self {
        // The built-in file is a constant checked by the tests (`default_parses`), so a failure
        // here is a bug in this crate, not an input error.
        crate::parse::parse(DEFAULT_FILE, crate::DEFAULT_TOML, false)
            .expect("the built-in default.toml is valid")
    }
}

impl FabricConfig {
    /// An empty fabric (method 1, no node), to build in code.
    pub fn empty() -> Self {
        Self {
            method: Method::One,
            data_center: DataCenterConfig::default(),
            nodes: Vec::new(),
            links: Vec::new(),
            routes: Vec::new(),
            origin: Origin::default(),
        }
    }

    /// Reads a configuration and checks every rule, reporting all the errors it can at once,
    /// each with `file` (the name to show), line and field. Errors in the file's syntax or
    /// values are reported first; the rules between fields (unknown nodes, addresses, routes)
    /// are checked only once every value reads.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigErrors> {
        let config = crate::parse::parse(file, text, true)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule between fields; the same checks [`Fabric::new`](crate::Fabric::new)
    /// makes.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        crate::Fabric::new(self.clone()).map(drop)
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The same fabric under another method (`vpngw lab up --method N`).
    #[must_use]
    pub fn with_method(mut self, m: Method) -> Self {
        self.method = m;
        self
    }

    /// How the VBR routes.
    pub fn vbr_routing(&self) -> Routing {
        self.method.vbr()
    }

    /// How the VPN gateway routes.
    pub fn vpn_gateway_routing(&self) -> Routing {
        self.method.vpn_gateway()
    }

    /// The configuration as a TOML file that [`FabricConfig::from_toml`] reads back to an equal
    /// configuration (locations aside). Writes both forms of `[routing]`, which agree.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let m = self.method;
        let _ = writeln!(out, "[routing]");
        let _ = writeln!(out, "method = {m}");
        let _ = writeln!(out, "vbr = {}", quote(&m.vbr().to_string()));
        let _ = writeln!(out, "vpn_gateway = {}", quote(&m.vpn_gateway().to_string()));
        let _ = writeln!(out, "\n[data_center]");
        let _ = writeln!(out, "cidrs = {}", net_list(&self.data_center.cidrs));
        for n in &self.nodes {
            let _ = writeln!(out, "\n[[node]]");
            let _ = writeln!(out, "name = {}", quote(&n.name));
            let _ = writeln!(out, "kind = {}", quote(&n.kind.to_string()));
            if !n.cidrs.is_empty() {
                let _ = writeln!(out, "cidrs = {}", net_list(&n.cidrs));
            }
        }
        for l in &self.links {
            let _ = writeln!(out, "\n[[link]]");
            let _ = writeln!(out, "a = {}", end(&l.a));
            let _ = writeln!(out, "b = {}", end(&l.b));
        }
        for r in &self.routes {
            let _ = writeln!(out, "\n[[route]]");
            let _ = writeln!(out, "node = {}", quote(&r.node));
            let _ = writeln!(out, "prefix = {}", quote(&r.prefix.to_string()));
            match r.target {
                RouteTarget::Via(via) => {
                    let _ = writeln!(out, "via = {}", quote(&via.to_string()));
                }
                RouteTarget::Blackhole => {
                    let _ = writeln!(out, "blackhole = true");
                }
            }
        }
        // `[data_center]` is always written, so the file describes its own topology and an
        // empty one stays empty rather than becoming the default lab.
        out
    }

    /// An error located at `field` of this configuration.
    pub(crate) fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        self.origin.error(field, message)
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn net_list(nets: &[IpNet]) -> String {
    let items: Vec<String> = nets.iter().map(|n| quote(&n.to_string())).collect();
    format!("[{}]", items.join(", "))
}

fn end(e: &EndConfig) -> String {
    let mut s = format!("{{ node = {}", quote(&e.node));
    if let Some(iface) = &e.iface {
        let _ = write!(s, ", iface = {}", quote(iface));
    }
    let _ = write!(s, ", addr = {} }}", quote(&e.addr.to_string()));
    s
}
