//! The seed's network as data: the cloud's routers (VBR, CEN transit router, VPC) and the
//! hosts and gateways around them, every node's route table, and how routes propagate.
//!
//! This crate owns the model: the configuration ([`FabricConfig`], one TOML file whose
//! defaults are the lab of MISSION.md, see [`DEFAULT_TOML`]), its checks, the tables
//! ([`Fabric::table`], [`Fabric::kernel_routes`]), the VPN gateway's publications
//! ([`Fabric::publish`], [`Fabric::withdraw`]), the packet walk ([`Fabric::walk`]) and why a
//! route wins ([`Fabric::explain`]). It never touches a kernel, a namespace, a socket or a
//! clock: the lab realizes each node as a network namespace and programs what this crate
//! computes; the daemon tells it what the gateway publishes and what BGP learned.
//!
//! # Propagation
//!
//! ```text
//!                  connected (not the CEN link),
//!                  static, BGP                                 vpc.cidrs
//!   onprem-gw ══ vbr ─────────────────────► cen ◄───────────────────────── vpc ◄── published by a
//!                 ▲  Propagated{from: vbr}   │   Propagated{from: vpc}      ▲     gateway (pref 50),
//!                 │                          │                              │     never exported
//!                 └── Propagated{from: cen} ─┴── Propagated{from: cen} ─────┘
//!                     what the CEN learned from the *other* attachments (pref 200)
//! ```
//!
//! Tables are rebuilt whole on every change, in this order; no step reads its own output,
//! so there is no iteration and no loop:
//!
//! 1. **Own routes.** Every node has a connected route per interface (`dev IFACE`,
//!    [`Source::Connected`](rib::Source::Connected)), its static routes (`via V dev D`, `D` the
//!    interface whose subnet holds `V`, [`Source::Static`](rib::Source::Static)) and the routes
//!    given to [`Fabric::learn_bgp`] ([`Source::Bgp`](rib::Source::Bgp)). When
//!    `routing.vbr = "bgp"` (method 3), a VBR's static routes toward a `data_center` prefix are
//!    not installed (they show in [`Fabric::explain`] as inactive): the VBR learns the data
//!    center from BGP, and a static route would hide a BGP withdrawal.
//! 2. **Attachments to the CEN.** A link between a `cen` and a `vbr` or `vpc` is an
//!    attachment. A VPC announces its `cidrs`; a VBR announces its selected connected routes
//!    (except those of links to a CEN), static and BGP routes. The CEN installs them via the
//!    attached node's address on the attachment, as `Propagated { from: <attached node> }`.
//! 3. **CEN to its attachments.** The CEN hands every attachment the prefixes whose selected
//!    route it learned from *another* attachment (never reflected back), via the CEN's
//!    address on that attachment, as `Propagated { from: <cen> }` (preference 200). The VPC so
//!    reaches the data center over the line, and the VBR the VPC.
//! 4. **Publications.** [`Fabric::publish`] puts a gateway's prefix into the table of every
//!    VPC it is linked to, via the gateway's vSwitch address, as `Published { by: <gateway> }`
//!    (preference 50). A prefix inside the VPC's own cidrs is refused. Publications are never
//!    exported to the CEN: the VBR must keep sending the data center's traffic down the line,
//!    where the encrypted packets travel too; encryption is decided at the two gateways, not
//!    by the transit routers.
//!
//! **The rule that decides encryption** ([`PUBLISHED_BEATS_PROPAGATED`]): for the same
//! prefix the published route (50) beats the CEN-propagated one (200), so the VPC sends
//! data-center traffic to the VPN gateway while the gateway publishes it, and over the line,
//! unencrypted, once it is withdrawn. Longest prefix still comes first: a more specific
//! propagated route beats a less specific publication.
//!
//! # Methods
//!
//! `[routing]` selects the seed's method ([`Method`]); BGP on the VBR with static routing on
//! the VPN gateway is rejected with an error naming both settings. The method decides whether
//! a VBR accepts [`Fabric::learn_bgp`] and whether its static routes toward the data center
//! are installed; what the gateway publishes, and when it withdraws, is the daemon's to say.
#![warn(missing_docs)]

mod config;
mod error;
mod explain;
mod fabric;
mod parse;
mod walk;

pub use config::{
    DataCenterConfig, EndConfig, FabricConfig, ForbiddenCombination, LinkConfig, Method,
    NodeConfig, NodeKind, Origin, RouteConfig, RouteTarget, Routing, DEFAULT_FILE,
};
pub use error::{ConfigError, ConfigErrors, FabricError};
pub use explain::{Candidate, Explanation, Verdict, PUBLISHED_BEATS_PROPAGATED};
pub use fabric::{
    Endpoint, Fabric, GatewayTunnel, Interface, KernelNextHop, KernelRoute, Link, Node,
    TUNNEL_ROUTE_PREFERENCE,
};
pub use walk::{Hop, Outcome, TunnelLeg, Walk, MAX_HOPS};

/// The seed's lab as a configuration file, with comments documenting the format.
/// [`FabricConfig::default`] is this file.
pub const DEFAULT_TOML: &str = include_str!("default.toml");
