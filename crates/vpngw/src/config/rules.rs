//! Rules between sections: unique connections, routes that name a connection and make sense
//! for it. Each runs on whatever read cleanly, so that one pass reports every error it can;
//! a field that was already wrong is not blamed again.

use std::collections::BTreeMap;

use confread::Reader;
use ipnet::IpNet;

use super::{
    read::{list, ConnEntry, RouteEntry},
    Mode,
};

/// `fabric_given`: whether `[fabric]` is present; `None` when it did not read.
pub(super) fn check(
    r: &mut Reader<'_>,
    conns: &[ConnEntry],
    routes: &[RouteEntry],
    fabric_given: Option<bool>,
) {
    connections(r, conns);
    let by_name: BTreeMap<&str, &ConnEntry> = conns
        .iter()
        .filter_map(|c| Some((c.name.as_deref()?, c)))
        .rev() // so that the first of duplicate names wins
        .collect();
    let mut seen: BTreeMap<(IpNet, &str), &str> = BTreeMap::new();
    for entry in routes {
        let field = |key: &str| format!("{}.{key}", entry.path);
        if entry.publish == Some(true) && fabric_given == Some(false) {
            r.err_at(
                &field("publish"),
                "publish = true needs a [fabric] section: routes are published into the fabric \
                 controller named there",
            );
        }
        if entry.withdraw_when_down == Some(true) && entry.publish == Some(false) {
            r.err_at(
                &field("withdraw_when_down"),
                "withdraw_when_down = true needs publish = true: only a published route can be \
                 withdrawn",
            );
        }
        let Some(name) = &entry.connection else {
            continue;
        };
        let Some(conn) = by_name.get(name.as_str()) else {
            let names: Vec<&str> = conns.iter().filter_map(|c| c.name.as_deref()).collect();
            let names = if names.is_empty() {
                "(none)".to_owned()
            } else {
                names.join(", ")
            };
            r.err_at(
                &field("connection"),
                format!("unknown connection {name:?}; connections are: {names}"),
            );
            continue;
        };
        let Some(prefix) = entry.prefix else {
            continue;
        };
        if let Some(first) = seen.insert((prefix, name.as_str()), &entry.path) {
            let line = r.origin().line(first);
            r.err_at(
                &field("prefix"),
                format!(
                    "duplicate of {first} (line {line}): the route {prefix} into connection \
                     {name:?} is given once"
                ),
            );
        }
        // A wider prefix may contain the peer (the seed routes the whole VPC, the VPN
        // gateway's address included, into the tunnel): the daemon then pins a host route to
        // the peer over the way it was reached before. A route to the peer alone is a mistake.
        if let Some(peer) = conn
            .peer_address
            .filter(|p| prefix.contains(p) && prefix.prefix_len() == prefix.max_prefix_len())
        {
            r.err_at(
                &field("prefix"),
                format!(
                    "{prefix} is the peer_address {peer} of connection {name:?} itself: the \
                     tunnel's own packets cannot be routed into the tunnel"
                ),
            );
        }
        if let Some(Mode::Policy { remote_subnets, .. }) = &conn.mode {
            if !remote_subnets.iter().any(|n| n.contains(&prefix)) {
                r.err_at(
                    &field("prefix"),
                    format!(
                        "{prefix} is not inside the remote_subnets of policy-based connection \
                         {name:?} ({}): the tunnel carries only traffic to them",
                        list(remote_subnets)
                    ),
                );
            }
        }
    }
    health_destinations(r, conns, routes);
}

/// Names unique, one connection per pair of addresses, one tunnel per inside /30.
fn connections(r: &mut Reader<'_>, conns: &[ConnEntry]) {
    for (j, c) in conns.iter().enumerate() {
        let earlier = &conns[..j];
        // `o.path` "name" (line of its `key`)
        let described = |r: &Reader<'_>, o: &ConnEntry, key: &str| {
            let line = r.origin().line(&format!("{}.{key}", o.path));
            match &o.name {
                Some(n) => format!("{} {n:?} (line {line})", o.path),
                None => format!("{} (line {line})", o.path),
            }
        };
        if let Some(name) = &c.name {
            if let Some(o) = earlier.iter().find(|o| o.name.as_ref() == Some(name)) {
                let line = r.origin().line(&format!("{}.name", o.path));
                r.err_at(
                    &format!("{}.name", c.path),
                    format!(
                        "duplicate connection name {name:?} (first defined as {}, line {line}): \
                         connection names are unique",
                        o.path
                    ),
                );
            }
        }
        if let (Some(l), Some(p)) = (c.local_address, c.peer_address) {
            let same = |o: &&ConnEntry| o.local_address == Some(l) && o.peer_address == Some(p);
            if let Some(o) = earlier.iter().find(same) {
                let first = described(r, o, "peer_address");
                r.err_at(
                    &format!("{}.peer_address", c.path),
                    format!(
                        "local_address {l} with peer_address {p} is already {first}: two \
                         gateways have one connection between them"
                    ),
                );
            }
        }
        if let Some(cidr) = c.tunnel_cidr {
            if let Some(o) = earlier.iter().find(|o| o.tunnel_cidr == Some(cidr)) {
                let first = described(r, o, "tunnel_cidr");
                r.err_at(
                    &format!("{}.tunnel_cidr", c.path),
                    format!(
                        "{cidr} is already the tunnel_cidr of {first}: each tunnel has its own \
                         inside /30"
                    ),
                );
            }
        }
    }
}

/// A route-based connection's probe goes through its tunnel only if its destination is the
/// peer's inside address or inside one of the connection's routes.
fn health_destinations(r: &mut Reader<'_>, conns: &[ConnEntry], routes: &[RouteEntry]) {
    for c in conns {
        let (Some(name), Some(Mode::Route { peer_inside, .. }), Some(d)) =
            (&c.name, &c.mode, c.health_destination)
        else {
            continue;
        };
        let routed = routes.iter().any(|e| {
            e.connection.as_ref() == Some(name) && e.prefix.is_some_and(|p| p.contains(&d))
        });
        if d != std::net::IpAddr::V4(*peer_inside) && !routed {
            r.err_at(
                &format!("{}.health_check.destination", c.path),
                format!(
                    "destination {d} is not reached through connection {name:?}: probe the \
                     peer's inside address {peer_inside}, or an address inside one of the \
                     connection's [[route]] prefixes"
                ),
            );
        }
    }
}
