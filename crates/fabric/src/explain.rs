//! Why a node forwards a prefix the way it does: every candidate, and why it won or lost.

use std::fmt;

use ipnet::IpNet;
use rib::{Route, Source};
use serde::Serialize;

use crate::{Fabric, FabricError};

/// The preference rule between a VPN gateway's route and the CEN's, in words, for operators.
///
/// In every real cloud this is where traffic silently goes unencrypted, so it is spelled out
/// wherever a route table is shown.
pub const PUBLISHED_BEATS_PROPAGATED: &str = "a route published by a VPN gateway (preference \
    50) beats the route propagated by the CEN (preference 200) for the same prefix: while the \
    gateway publishes it, traffic takes the tunnel, encrypted; once it is withdrawn, traffic \
    takes the leased line, unencrypted";

/// What became of a candidate route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It forwards traffic (alone, or as one of an equal-cost set).
    Selected,
    /// It is in the table but another route wins.
    Lost,
    /// It is configured but not in the table.
    Inactive,
}

/// One candidate route and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The route.
    pub route: Route,
    /// Won, lost, or not installed.
    pub verdict: Verdict,
    /// Why, in words.
    pub reason: String,
}

/// The candidates of one prefix at one node, best first, then the inactive ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The node.
    pub node: String,
    /// The prefix asked about.
    pub asked: IpNet,
    /// The prefix explained: `asked` when the table has it, otherwise the most specific prefix
    /// of the table that covers it (what a packet to `asked` would match).
    pub prefix: IpNet,
    /// Every candidate.
    pub candidates: Vec<Candidate>,
}

impl Explanation {
    /// The routes that forward traffic.
    pub fn selected(&self) -> impl Iterator<Item = &Route> {
        self.candidates
            .iter()
            .filter(|c| c.verdict == Verdict::Selected)
            .map(|c| &c.route)
    }
}

impl fmt::Display for Explanation {
    /// One line per candidate, `*` marking the selected ones.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.node, self.prefix)?;
        if self.prefix != self.asked {
            write!(f, " (covers {})", self.asked)?;
        }
        f.write_str(":")?;
        for c in &self.candidates {
            let mark = match c.verdict {
                Verdict::Selected => '*',
                Verdict::Lost => ' ',
                Verdict::Inactive => '-',
            };
            write!(f, "\n  {mark} {}\n      {}", c.route, c.reason)?;
        }
        Ok(())
    }
}

impl Fabric {
    /// Every candidate route `node` has for `prefix` (or, when it has none for exactly that
    /// prefix, for the most specific prefix covering it), each with the reason it won or lost,
    /// plus configured static routes that are not installed. This is where the rule
    /// [`PUBLISHED_BEATS_PROPAGATED`] shows.
    pub fn explain(&self, node: &str, prefix: IpNet) -> Result<Explanation, FabricError> {
        let i = self.node_index(node)?;
        let asked = prefix.trunc();
        let table = self.tables_at(i);
        let inactive_for = |p: IpNet| {
            self.inactive_at(i)
                .iter()
                .filter(move |x| x.route.prefix == p)
        };
        let matched = if !table.candidates(asked).is_empty() || inactive_for(asked).next().is_some()
        {
            Some(asked)
        } else {
            table
                .iter_selected()
                .map(|s| s.prefix)
                .filter(|p| p.contains(&asked))
                .max_by_key(IpNet::prefix_len)
        };
        let Some(matched) = matched else {
            return Err(FabricError::NotFound {
                node: self.node_at(i).name.clone(),
                prefix: asked,
            });
        };

        let routes = table.candidates(matched);
        let selected = table.best(matched).map_or(0, |s| s.routes.len());
        let mut candidates: Vec<Candidate> = routes
            .iter()
            .enumerate()
            .map(|(k, r)| Candidate {
                route: r.clone(),
                verdict: if k < selected {
                    Verdict::Selected
                } else {
                    Verdict::Lost
                },
                reason: reason(routes, selected, k),
            })
            .collect();
        candidates.extend(inactive_for(matched).map(|x| Candidate {
            route: x.route.clone(),
            verdict: Verdict::Inactive,
            reason: x.reason.clone(),
        }));
        Ok(Explanation {
            node: self.node_at(i).name.clone(),
            asked,
            prefix: matched,
            candidates,
        })
    }
}

/// Why candidate `k` of `routes` (sorted best first, the first `selected` forming the
/// equal-cost set) won or lost.
fn reason(routes: &[Route], selected: usize, k: usize) -> String {
    let r = &routes[k];
    let best = &routes[0];
    let published_over_propagated = |winner: &Route, loser: &Route| {
        matches!(winner.source, Source::Published { .. })
            && matches!(loser.source, Source::Propagated { .. })
    };
    if routes.len() == 1 {
        return format!("selected: the only candidate ({})", r.source);
    }
    if k == 0 {
        let mut s = if selected > 1 {
            format!(
                "selected: preference {} and weight {} are the best, shared with {} other \
                 route(s) (ECMP)",
                r.preference,
                r.weight,
                selected - 1
            )
        } else if routes[1].preference > r.preference {
            format!(
                "selected: preference {} ({}) is the lowest",
                r.preference, r.source
            )
        } else {
            format!(
                "selected: same preference {} as the next, higher weight {} (active)",
                r.preference, r.weight
            )
        };
        if routes[selected..]
            .iter()
            .any(|l| published_over_propagated(r, l))
        {
            s.push_str("; ");
            s.push_str(PUBLISHED_BEATS_PROPAGATED);
        }
        return s;
    }
    if k < selected {
        return format!(
            "selected: equal cost with {} (preference {}, weight {}): shares traffic (ECMP)",
            best.next_hop, r.preference, r.weight
        );
    }
    let mut s = if r.preference > best.preference {
        format!(
            "lost: preference {} ({}) is higher than {} ({})",
            r.preference, r.source, best.preference, best.source
        )
    } else {
        format!(
            "lost: standby, weight {} is lower than {} at the same preference {}",
            r.weight, best.weight, r.preference
        )
    };
    if published_over_propagated(best, r) {
        s.push_str(
            "; it takes over, unencrypted over the leased line, when the VPN gateway withdraws \
             its route",
        );
    }
    s
}
