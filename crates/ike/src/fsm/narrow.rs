//! Traffic selector narrowing (RFC 7296 §2.9).

use std::net::IpAddr;

use crate::packet::{AddrRange, TrafficSelector, TrafficSelectors};

fn addr_key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (4, u128::from(u32::from(v))),
        IpAddr::V6(v) => (6, u128::from(v)),
    }
}

/// The intersection of two address ranges (addresses, ports and protocol), if not empty.
pub(crate) fn intersect(a: &AddrRange, b: &AddrRange) -> Option<AddrRange> {
    let (fa, sa) = addr_key(a.start);
    let (fa2, ea) = addr_key(a.end);
    let (fb, sb) = addr_key(b.start);
    let (fb2, eb) = addr_key(b.end);
    if fa != fa2 || fb != fb2 || fa != fb {
        return None;
    }
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    if start_port > end_port || sa.max(sb) > ea.min(eb) {
        return None;
    }
    Some(AddrRange {
        ip_protocol,
        start_port,
        end_port,
        start: if sa >= sb { a.start } else { b.start },
        end: if ea <= eb { a.end } else { b.end },
    })
}

/// Whether `inner` lies entirely within `outer`.
pub(crate) fn contains(outer: &AddrRange, inner: &AddrRange) -> bool {
    intersect(outer, inner).is_some_and(|i| i == *inner)
}

/// Narrows `offered` to what `configured` allows: every non-empty pairwise intersection,
/// without ranges covered by another one in the result.
pub(crate) fn narrow(offered: &[AddrRange], configured: &[AddrRange]) -> Vec<AddrRange> {
    let mut out: Vec<AddrRange> = Vec::new();
    for o in offered {
        for c in configured {
            if let Some(i) = intersect(o, c) {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
    }
    let all = out.clone();
    out.retain(|r| {
        !all.iter()
            .any(|other| other != r && contains(other, r) && !contains(r, other))
    });
    out
}

/// The address ranges of a TS payload (other TS types are ignored).
pub(crate) fn ranges(ts: &TrafficSelectors) -> Vec<AddrRange> {
    ts.0.iter()
        .filter_map(|t| match t {
            TrafficSelector::Range(r) => Some(*r),
            TrafficSelector::Other { .. } => None,
        })
        .collect()
}

/// A TS payload from address ranges.
pub(crate) fn payload(r: &[AddrRange]) -> TrafficSelectors {
    TrafficSelectors(r.iter().map(|a| TrafficSelector::Range(*a)).collect())
}

/// `a, b, c` for logs.
pub(crate) fn render(r: &[AddrRange]) -> String {
    r.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
