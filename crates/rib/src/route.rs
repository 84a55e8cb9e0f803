//! A route: destination, next hop, where it came from, and how much it is preferred.

use std::{fmt, net::IpAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Where a packet matching a route goes next.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHop {
    /// A neighbour's address, optionally pinned to an interface.
    Address {
        /// The neighbour's address.
        via: IpAddr,
        /// The outgoing interface, when the address alone does not say.
        dev: Option<String>,
    },
    /// Directly out of an interface: the destination is on-link.
    Interface(String),
    /// Into an IPsec connection (a tunnel), by connection name.
    Connection(String),
    /// Dropped silently. Used to stop traffic rather than let it leak elsewhere.
    Blackhole,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address {
                via,
                dev: Some(dev),
            } => write!(f, "via {via} dev {dev}"),
            Self::Address { via, dev: None } => write!(f, "via {via}"),
            Self::Interface(dev) => write!(f, "dev {dev}"),
            Self::Connection(conn) => write!(f, "tunnel {conn}"),
            Self::Blackhole => f.write_str("blackhole"),
        }
    }
}

/// How a route entered the table. Each source has a default preference
/// ([`Source::default_preference`]); callers may override it per route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The prefix of an interface's own address.
    Connected,
    /// Configured by an operator.
    Static,
    /// Learned from a BGP neighbour.
    Bgp,
    /// Propagated from another router over an attachment (for example CEN → VPC).
    Propagated {
        /// The router the route was learned from.
        from: String,
    },
    /// Published into this table by a VPN gateway (the seed's "routes advertised on the VPN
    /// gateway").
    Published {
        /// The gateway that published it.
        by: String,
    },
}

impl Source {
    /// The preference a route from this source gets unless told otherwise; lower wins.
    ///
    /// The order is the one every router uses (connected before static before dynamic), with
    /// one decision of ours made explicit: a route a VPN gateway publishes (50) beats a route
    /// propagated over an attachment (200). A data center reachable both through the tunnel and
    /// over the plain line is therefore reached through the tunnel while the tunnel's routes
    /// exist, and over the line, unencrypted, only once they are withdrawn.
    pub const fn default_preference(&self) -> u32 {
        match self {
            Self::Connected => 0,
            Self::Static => 10,
            Self::Published { .. } => 50,
            Self::Bgp => 100,
            Self::Propagated { .. } => 200,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected => f.write_str("connected"),
            Self::Static => f.write_str("static"),
            Self::Bgp => f.write_str("bgp"),
            Self::Propagated { from } => write!(f, "propagated from {from}"),
            Self::Published { by } => write!(f, "published by {by}"),
        }
    }
}

/// One candidate route.
///
/// Within a [`Table`](crate::Table) a route is identified by its prefix, source and next hop;
/// inserting a route with the same identity replaces the old one's preference and weight.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The destination. Host bits are cleared on insertion.
    pub prefix: IpNet,
    /// Where matching packets go.
    pub next_hop: NextHop,
    /// How the route was learned.
    pub source: Source,
    /// Lower is preferred. See [`Source::default_preference`].
    pub preference: u32,
    /// Among equally preferred routes, higher is used: 100 is active, 0 is standby. Routes
    /// that tie on preference and weight share traffic (ECMP).
    pub weight: u32,
}

impl Route {
    /// The weight of an active route.
    pub const ACTIVE: u32 = 100;
    /// The weight of a standby route, used only while no active route exists.
    pub const STANDBY: u32 = 0;

    /// A route with the source's default preference and the active weight.
    pub fn new(prefix: IpNet, next_hop: NextHop, source: Source) -> Self {
        let preference = source.default_preference();
        Self {
            prefix: prefix.trunc(),
            next_hop,
            source,
            preference,
            weight: Self::ACTIVE,
        }
    }

    /// Sets the preference (lower wins).
    #[must_use]
    pub fn with_preference(mut self, preference: u32) -> Self {
        self.preference = preference;
        self
    }

    /// Sets the weight (100 active, 0 standby).
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Whether `other` is the same route (same prefix, source and next hop), whatever its
    /// preference and weight.
    pub fn same_identity(&self, other: &Self) -> bool {
        self.prefix == other.prefix
            && self.source == other.source
            && self.next_hop == other.next_hop
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}, pref {}, weight {})",
            self.prefix, self.next_hop, self.source, self.preference, self.weight
        )
    }
}
