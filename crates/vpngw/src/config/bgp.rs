//! `[bgp]` and its `[[bgp.neighbor]]`s: read where they stand, then checked against the
//! connections a neighbour rides on.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use confread::{
    kind::{self, format_duration, Kind},
    Reader, Reported, Table,
};
use ipnet::IpNet;
use serde::Serialize;

use super::{read::ConnEntry, Mode};

/// RFC 4271 §4.2 / §10: hold time and keepalive, as the bgp crate defaults them.
const HOLD_TIME: Duration = Duration::from_secs(30);
const KEEPALIVE: Duration = Duration::from_secs(10);

const BGP_KEYS: [&str; 6] = [
    "local_as",
    "router_id",
    "hold_time",
    "keepalive",
    "announce",
    "neighbor",
];
const NEIGHBOR_KEYS: [&str; 10] = [
    "name",
    "address",
    "remote_as",
    "connection",
    "local_address",
    "import",
    "max_prefix",
    "max_prefix_action",
    "prepend",
    "publish",
];

/// `[bgp]`: this gateway's BGP speaker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Bgp {
    pub(crate) local_as: u32,
    pub(crate) router_id: Ipv4Addr,
    /// Proposed in OPEN; zero: no keepalives and no hold timer.
    #[serde(serialize_with = "super::secs")]
    pub(crate) hold_time: Duration,
    #[serde(serialize_with = "super::secs")]
    pub(crate) keepalive: Duration,
    /// Prefixes this gateway originates (and the only ones it advertises).
    pub(crate) announce: Vec<IpNet>,
    pub(crate) neighbors: Vec<BgpNeighbor>,
}

/// One `[[bgp.neighbor]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct BgpNeighbor {
    /// For logs, metrics and the API: `name`, else the connection's name, else the address.
    pub(crate) name: String,
    pub(crate) address: IpAddr,
    pub(crate) remote_as: u32,
    /// The route-based connection the session rides on: it runs only while that tunnel has
    /// a child SA, and what it learns is routed into the tunnel.
    pub(crate) connection: Option<String>,
    /// Source of the session; the connection's `local_inside` for a tunnel neighbour.
    pub(crate) local_address: Option<IpAddr>,
    /// Prefixes accepted, each with its more-specifics; `None`: everything.
    pub(crate) import: Option<Vec<IpNet>>,
    pub(crate) max_prefix: Option<MaxPrefix>,
    /// Extra copies of the local AS on routes sent to this neighbour.
    pub(crate) prepend: u8,
    /// Publish what is learned into the fabric (the VPC's route table).
    pub(crate) publish: bool,
}

/// A cap on the prefixes accepted from one neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct MaxPrefix {
    pub(crate) limit: u32,
    pub(crate) action: MaxPrefixAction,
}

/// Past the cap: drop the excess (as a cloud route table's quota does) or reset the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MaxPrefixAction {
    Drop,
    Reset,
}

fn asn() -> Kind<u32> {
    kind::integer(1u32..=u32::MAX).expecting("an AS number, 1 to 4294967295")
}

fn hold_time() -> Kind<Duration> {
    kind::duration().and_then(|d| {
        if d.is_zero() || (Duration::from_secs(3)..=Duration::from_secs(65535)).contains(&d) {
            Ok(d)
        } else {
            Err(format!(
                "{} is not a hold time: 0 (no hold timer) or 3s to 65535s (RFC 4271 §4.2)",
                format_duration(d)
            ))
        }
    })
}

fn name_kind() -> Kind<String> {
    kind::string().and_then(|s| {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if ok {
            Ok(s)
        } else {
            Err(format!(
                "{s:?} is not a valid name: use 1 to 32 letters, digits, '-', '_' or '.'"
            ))
        }
    })
}

fn unicast() -> Kind<IpAddr> {
    kind::ip().and_then(|a| {
        if a.is_unspecified() || a.is_multicast() || a == IpAddr::V4(Ipv4Addr::BROADCAST) {
            Err(format!("{a} is not a unicast address"))
        } else {
            Ok(a)
        }
    })
}

/// Reads `[bgp]` if present; `Err` when it was present and wrong (reported).
pub(super) fn read(
    r: &mut Reader<'_>,
    root: &Table<'_>,
    conns: &[ConnEntry],
    fabric_given: Option<bool>,
) -> Result<Option<Bgp>, Reported> {
    let Some(t) = r.sub_table(root, "bgp")? else {
        return Ok(None);
    };
    r.unknown_keys(&t, &BGP_KEYS);
    let local_as = r.req(&t, "local_as", &asn());
    let router_id = r.req(
        &t,
        "router_id",
        &kind::ip()
            .expecting("an IPv4 address (the BGP Identifier)")
            .and_then(|a| match a {
                IpAddr::V4(v4) if !v4.is_unspecified() => Ok(v4),
                _ => Err(format!(
                    "{a} is not a BGP Identifier: a non-zero IPv4 address (RFC 4271 §4.2)"
                )),
            }),
    );
    let hold = r.or(&t, "hold_time", &hold_time(), HOLD_TIME);
    let keepalive = r.or(&t, "keepalive", &kind::duration(), KEEPALIVE);
    if let (Some(h), Some(k)) = (hold, keepalive) {
        let bad = if h.is_zero() {
            None
        } else if k.is_zero() || k > h / 3 {
            Some(format!(
                "keepalive {} must be at least 1s and at most a third of hold_time {} \
                 (RFC 4271 §10)",
                format_duration(k),
                format_duration(h)
            ))
        } else {
            None
        };
        if let Some(m) = bad {
            r.err_at(&t.field("keepalive"), m);
        }
    }
    let announce = match r.array(&t, "announce", &kind::prefix()) {
        Ok(v) => Some(v.unwrap_or_default()),
        Err(Reported) => None,
    };
    let by_name: BTreeMap<&str, &ConnEntry> = conns
        .iter()
        .filter_map(|c| Some((c.name.as_deref()?, c)))
        .rev()
        .collect();
    let entries = r.list(&t, "neighbor", |r, n| Some(neighbor(r, n, &by_name)));
    let mut neighbors = Some(Vec::new());
    let mut seen_addr: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut seen_name: BTreeMap<String, String> = BTreeMap::new();
    for (path, n) in entries {
        let Some(n) = n else {
            neighbors = None;
            continue;
        };
        if n.publish && fabric_given == Some(false) {
            r.err_at(
                &format!("{path}.publish"),
                "publish = true needs a [fabric] section: learned routes are published into the \
                 fabric controller named there",
            );
            neighbors = None;
        }
        if let Some(first) = seen_addr.insert(n.address, path.clone()) {
            let line = r.origin().line(&first);
            r.err_at(
                &format!("{path}.address"),
                format!(
                    "{} is the address of {first} (line {line}) too: one session per neighbour",
                    n.address
                ),
            );
            neighbors = None;
        } else if let Some(first) = seen_name.insert(n.name.clone(), path.clone()) {
            let line = r.origin().line(&first);
            r.err_at(
                &format!("{path}.name"),
                format!(
                    "{:?} names {first} (line {line}) too: give each neighbour its own name",
                    n.name
                ),
            );
            neighbors = None;
        }
        if let Some(v) = neighbors.as_mut() {
            v.push(n);
        }
    }
    Ok(Some(Bgp {
        local_as: local_as.ok_or(Reported)?,
        router_id: router_id.ok_or(Reported)?,
        hold_time: hold.ok_or(Reported)?,
        keepalive: keepalive.ok_or(Reported)?,
        announce: announce.ok_or(Reported)?,
        neighbors: neighbors.ok_or(Reported)?,
    }))
}

/// One neighbour: `(path, Some(neighbour))` when every field read and agrees with its
/// connection.
fn neighbor(
    r: &mut Reader<'_>,
    t: &Table<'_>,
    conns: &BTreeMap<&str, &ConnEntry>,
) -> (String, Option<BgpNeighbor>) {
    r.unknown_keys(t, &NEIGHBOR_KEYS);
    let path = t.path().to_owned();
    let name = r.opt(t, "name", &name_kind());
    let address = r.req(t, "address", &unicast());
    let remote_as = r.req(t, "remote_as", &asn());
    let connection = r.opt(
        t,
        "connection",
        &kind::string().expecting("a connection name"),
    );
    let local = r.opt(t, "local_address", &unicast());
    let import = r.array(t, "import", &kind::prefix());
    let max_prefix = r.opt(t, "max_prefix", &kind::integer(1u32..=u32::MAX));
    let action = r.opt(
        t,
        "max_prefix_action",
        &kind::one_of(&[
            ("drop", MaxPrefixAction::Drop),
            ("reset", MaxPrefixAction::Reset),
        ]),
    );
    let prepend = r.or(t, "prepend", &kind::integer(0u8..=10), 0);
    let publish = r.or(t, "publish", &kind::boolean(), false);

    let max_prefix = match (max_prefix, action) {
        (Ok(Some(limit)), Ok(action)) => Ok(Some(MaxPrefix {
            limit,
            action: action.unwrap_or(MaxPrefixAction::Drop),
        })),
        (Ok(None), Ok(Some(_))) => {
            r.err_at(
                &t.field("max_prefix_action"),
                "max_prefix_action without max_prefix: set the limit it acts on",
            );
            Err(Reported)
        }
        (Ok(None), Ok(None)) => Ok(None),
        _ => Err(Reported),
    };

    // A tunnel neighbour peers on the tunnel's inside /30: its address is the far end's,
    // and the session leaves from ours.
    let mut local_address = local.ok().flatten();
    let mut tied = Ok(());
    if let Ok(Some(c)) = &connection {
        tied = Err(Reported);
        match conns.get(c.as_str()) {
            None => {
                let names: Vec<&str> = conns.keys().copied().collect();
                r.err_at(
                    &t.field("connection"),
                    format!(
                        "unknown connection {c:?}; connections are: {}",
                        if names.is_empty() {
                            "(none)".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                );
            }
            Some(entry) => match &entry.mode {
                Some(Mode::Route {
                    local_inside,
                    peer_inside,
                    tunnel_cidr,
                }) => {
                    let (li, pi) = (IpAddr::V4(*local_inside), IpAddr::V4(*peer_inside));
                    let mut ok = true;
                    if let Some(a) = address.filter(|a| *a != pi) {
                        ok = false;
                        r.err_at(
                            &t.field("address"),
                            format!(
                                "{a} is not the peer_inside of connection {c:?}: a neighbour \
                                 over a tunnel peers on its inside /30 {tunnel_cidr}; use {pi}"
                            ),
                        );
                    }
                    match local_address {
                        Some(l) if l != li => {
                            ok = false;
                            r.err_at(
                                &t.field("local_address"),
                                format!(
                                    "{l} is not the local_inside of connection {c:?}: the \
                                     session leaves from {li} (or leave local_address out)"
                                ),
                            );
                        }
                        _ => local_address = Some(li),
                    }
                    if ok {
                        tied = Ok(());
                    }
                }
                Some(Mode::Policy { .. }) => r.err_at(
                    &t.field("connection"),
                    format!(
                        "connection {c:?} is policy-based: BGP runs over a route-based \
                         tunnel's inside addresses (mode = \"route\")"
                    ),
                ),
                // The connection's own mode error was reported there.
                None => {}
            },
        }
    }

    let n = (|| {
        let address = address?;
        let connection = connection.ok()?;
        tied.ok()?;
        local.ok()?;
        Some(BgpNeighbor {
            name: name
                .ok()?
                .or_else(|| connection.clone())
                .unwrap_or_else(|| address.to_string()),
            address,
            remote_as: remote_as?,
            connection,
            local_address,
            import: import.ok()?,
            max_prefix: max_prefix.ok()?,
            prepend: prepend?,
            publish: publish?,
        })
    })();
    (path, n)
}
