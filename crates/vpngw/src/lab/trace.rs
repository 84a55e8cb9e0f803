//! `vpngw lab trace`: the path the fabric's tables predict, hop by hop, checked against the
//! path real packets take.
//!
//! The model is [`Fabric::walk`]. The packets are TTL-limited ICMP echoes sent from inside
//! the source node: the probe with TTL `k` is answered by the `k`-th node on the real path,
//! from the address of the interface it arrived on. Each hop of the model must be the node
//! that answered; any difference is printed as a disagreement and fails the command.

use std::net::IpAddr;

use anyhow::Result;
use fabric::{Fabric, Hop, Outcome, Walk};
use serde::Serialize;

use super::{
    probe::{v4, Answer, Prober},
    Lab,
};
use crate::output;

/// One direction of a trace: the model's walk and what the packets said at each hop.
#[derive(Debug, Serialize)]
pub(crate) struct Direction {
    /// The destination as named: a node, or an address no node owns.
    pub(crate) to: String,
    /// The probes' source address.
    pub(crate) src: IpAddr,
    pub(crate) walk: Walk,
    /// One per hop after the source (TTL = index + 1).
    pub(crate) checks: Vec<Check>,
    pub(crate) agrees: bool,
}

/// What a hop's probe was expected to bring back, and what it did.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub(crate) ttl: u8,
    pub(crate) expected: String,
    pub(crate) observed: String,
    pub(crate) agrees: bool,
}

/// Traces `from` → `to` and, when `to` is a lab node, the way back.
pub(crate) fn run(lab: &Lab, fabric: &Fabric, from: &str, to: &str) -> Result<Vec<Direction>> {
    let (dst, dst_node) = Lab::resolve(fabric, to)?;
    let (src_addr, _) = Lab::resolve(fabric, from)?;
    if fabric.node(from).is_none() {
        anyhow::bail!("{}", super::unknown_node(fabric, from));
    }
    let mut out = vec![direction(
        lab,
        fabric,
        (from, src_addr),
        dst,
        dst_node.as_deref().unwrap_or(to),
    )?];
    if let Some(back) = dst_node {
        out.push(direction(lab, fabric, (&back, dst), src_addr, from)?);
    }
    Ok(out)
}

fn direction(
    lab: &Lab,
    fabric: &Fabric,
    (from, src): (&str, IpAddr),
    dst: IpAddr,
    to: &str,
) -> Result<Direction> {
    let walk = fabric.walk(from, dst);
    let prober = Prober::open(&lab.ns(from))?;
    let forwarded = walk.hops.len().saturating_sub(1);
    // Probe a little past the model's end so a longer real path shows up too.
    let max_ttl = u8::try_from(forwarded + 2).unwrap_or(u8::MAX).min(34);
    let answers = prober.hops(v4(dst)?, max_ttl)?;
    let delivered = matches!(walk.outcome, Outcome::Delivered);

    let mut checks = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let ttl = (i + 1) as u8;
        let hop = walk.hops.get(i + 1);
        let last = i + 1 == forwarded;
        // An answer must find its own way back; where the model says it cannot (Method 1
        // after a tunnel failure: the VPC still points into the dead tunnel), silence agrees.
        // Past the model's path, the destination would answer: its way back counts.
        let answerer = if delivered {
            hop.or(walk.hops.last())
        } else {
            hop
        };
        let lost = answerer.and_then(|h| {
            let back = fabric.walk(&h.node, src);
            (back.outcome != Outcome::Delivered).then(|| format!("{}", back.outcome))
        });
        let (expected, agrees) = match (hop, lost) {
            (_, Some(why)) => (
                format!("no answer: the way back ends: {why}"),
                answer.is_none(),
            ),
            (Some(_), None) if last && delivered => (
                format!("echo reply from {dst}"),
                matches!(answer, Some(Answer::Echo { from }) if IpAddr::V4(*from) == dst),
            ),
            (Some(h), None) => {
                let want = h.in_addr;
                let ok = matches!(answer, Some(Answer::TimeExceeded { from }) if Some(IpAddr::V4(*from)) == want);
                let at = want.map_or_else(|| "?".to_owned(), |a| a.to_string());
                (format!("time exceeded from {} ({at})", h.node), ok)
            }
            // Past the model's last hop: a delivered walk's destination keeps answering;
            // an undelivered one must not be answered by the destination at all.
            (None, _) if delivered => (
                format!("echo reply from {dst}"),
                matches!(answer, Some(Answer::Echo { from }) if IpAddr::V4(*from) == dst),
            ),
            (None, _) => (
                "no echo reply".to_owned(),
                !matches!(answer, Some(Answer::Echo { .. })),
            ),
        };
        checks.push(Check {
            ttl,
            expected,
            observed: describe(*answer),
            agrees,
        });
    }
    let agrees = checks.iter().all(|c| c.agrees);
    Ok(Direction {
        to: to.to_owned(),
        src,
        walk,
        checks,
        agrees,
    })
}

fn describe(a: Option<Answer>) -> String {
    match a {
        None => "no answer".to_owned(),
        Some(Answer::Echo { from }) => format!("echo reply from {from}"),
        Some(Answer::TimeExceeded { from }) => format!("time exceeded from {from}"),
        Some(Answer::Unreachable { from, code }) => {
            format!("unreachable (code {code}) from {from}")
        }
    }
}

/// The human form: one table per direction, a row per step as the seed's table has them —
/// every route lookup, where the packet is encrypted and encapsulated, the outer packet's own
/// hops across the line, and where it is decrypted.
pub(crate) fn render(dirs: &[Direction]) -> String {
    let mut s = String::new();
    for d in dirs {
        let w = &d.walk;
        let verdict = if d.agrees {
            "packets agree"
        } else {
            "PACKETS DISAGREE"
        };
        let path = if w.hops.iter().any(|h| h.tunnel.is_some()) {
            "through the tunnel"
        } else {
            "over the line"
        };
        s.push_str(&format!(
            "{} → {} ({}), {}, {path}: {} — {verdict}\n",
            w.from,
            d.to,
            w.dst,
            hops_word(w),
            w.outcome
        ));
        let inner = format!("{} → {}", d.src, w.dst);
        let mut rows = Vec::new();
        let mut step = 0;
        let mut row = |node: &str, does: String, h: &Hop, packet: &str, check: String| {
            step += 1;
            rows.push(vec![
                step.to_string(),
                node.to_owned(),
                does,
                matched(h),
                packet.to_owned(),
                h.out_iface.clone().unwrap_or_else(|| "-".to_owned()),
                check,
            ]);
        };
        // A loop repeats itself: its first turns are enough to read it.
        let shown = if matches!(w.outcome, Outcome::Loop) {
            LOOP_ROWS
        } else {
            usize::MAX
        };
        for (i, h) in w.hops.iter().enumerate().take(shown) {
            let check = match i.checked_sub(1).and_then(|k| d.checks.get(k)) {
                None => "-".to_owned(),
                // Silence is only worth a row when the model explains it.
                Some(c) if c.agrees && c.expected.starts_with("no answer") => {
                    format!("ok: {} (ttl {})", c.expected, c.ttl)
                }
                Some(c) if c.agrees => format!("ok: {} (ttl {})", c.observed, c.ttl),
                Some(c) => format!(
                    "DISAGREE: expected {}, got {} (ttl {})",
                    c.expected, c.observed, c.ttl
                ),
            };
            let decrypted = i
                .checked_sub(1)
                .and_then(|k| w.hops[k].tunnel.as_ref())
                .map(|leg| format!("decrypt ({} from {}), ", leg.outer_dst, leg.outer_src));
            let lookup = if h.matched.is_some() {
                "route lookup"
            } else {
                "deliver"
            };
            let mut does = format!("{}{lookup}", decrypted.unwrap_or_default());
            if let Some(leg) = &h.tunnel {
                does.push_str(&format!(", encrypt + encapsulate ({})", leg.connection));
            }
            row(&h.node, does, h, &inner, check);
            if let Some(leg) = &h.tunnel {
                let outer = format!("ESP-in-UDP {} → {}", leg.outer_src, leg.outer_dst);
                // The outer walk's last hop is the decrypting gateway: the next inner row.
                let n = leg.outer.hops.len().saturating_sub(1);
                for oh in leg.outer.hops.iter().take(n) {
                    row(
                        &oh.node,
                        "route lookup (outer)".into(),
                        oh,
                        &outer,
                        "-".into(),
                    );
                }
            }
        }
        if w.hops.len() > shown {
            rows.push(vec![
                "…".into(),
                "…".into(),
                format!("the same {} more times", w.hops.len() - shown),
                "-".into(),
                "-".into(),
                "-".into(),
                if d.checks.iter().all(|c| c.agrees) {
                    "ok".into()
                } else {
                    "DISAGREE (see --json)".into()
                },
            ]);
        }
        for c in d
            .checks
            .iter()
            .skip(w.hops.len().saturating_sub(1))
            .filter(|c| !c.agrees)
        {
            rows.push(vec![
                format!("ttl {}", c.ttl),
                "?".into(),
                "-".into(),
                "(beyond the model's path)".into(),
                "-".into(),
                "-".into(),
                format!("DISAGREE: expected {}, got {}", c.expected, c.observed),
            ]);
        }
        s.push_str(&output::table(
            &[
                "step",
                "node",
                "does",
                "route matched",
                "packet",
                "out",
                "packets",
            ],
            &rows,
        ));
        s.push('\n');
    }
    s
}

/// Rows of a looping walk shown before the rest is summed up.
const LOOP_ROWS: usize = 6;

fn matched(h: &Hop) -> String {
    h.matched.as_ref().map_or_else(
        || "-".to_owned(),
        |r| format!("{} {} [{}]", r.prefix, r.next_hop, r.source),
    )
}

fn hops_word(w: &Walk) -> String {
    match w.hops.len().saturating_sub(1) {
        1 => "1 hop".to_owned(),
        n => format!("{n} hops"),
    }
}
