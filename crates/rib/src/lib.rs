//! Route tables: the routing information base of every router vpngw models or runs.
//!
//! This crate owns one thing: given a set of candidate routes, which ones forward a packet.
//! A [`Table`] holds IPv4 and IPv6 candidates in prefix tries (the `prefix-trie` crate), answers
//! longest-prefix-match lookups, and orders the candidates of each prefix with a single rule,
//! [`select`]. It never touches a kernel, a socket or a clock; the daemon and the lab turn its
//! answers into kernel routes, and the fabric composes several tables into the cloud's routers.
//!
//! ```text
//!   insert(Route) ──► per-prefix candidates ──► select() orders them ──► lookup(addr)
//!   remove(..)                                  (preference, weight,      └► ECMP set of the
//!                                                next hop)                    longest prefix
//! ```
#![warn(missing_docs)]

mod route;
mod table;

pub use route::{NextHop, Route, Source};
pub use table::{select, Selected, Table};

pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};
