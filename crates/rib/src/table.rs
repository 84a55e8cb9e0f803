//! The table: candidates per prefix in two prefix tries, ordered by [`select`].

use std::{cmp::Ordering, net::IpAddr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use crate::Route;

/// The best-route rule, in one place. Orders `a` before `b` when `a` is preferred.
///
/// For candidates of the same prefix (longest-prefix match has already chosen the prefix):
/// 1. the lower `preference` wins (connected < static < published < BGP < propagated by
///    default, see [`Source::default_preference`](crate::Source::default_preference));
/// 2. then the higher `weight` wins: an active route (100) hides a standby one (0);
/// 3. routes equal on both form an equal-cost set and all forward traffic (ECMP). They are
///    listed in a fixed order (source, then next hop) so output and kernel programming are
///    deterministic, but that order carries no preference.
pub fn select(a: &Route, b: &Route) -> Ordering {
    a.preference
        .cmp(&b.preference)
        .then_with(|| b.weight.cmp(&a.weight))
        .then_with(|| a.source.cmp(&b.source))
        .then_with(|| a.next_hop.cmp(&b.next_hop))
}

/// Whether two routes of one prefix tie under [`select`]'s first two rules (same ECMP set).
fn equal_cost(a: &Route, b: &Route) -> bool {
    a.preference == b.preference && a.weight == b.weight
}

/// The routes chosen for one prefix: the equal-cost set at the head of its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected<'a> {
    /// The matched prefix.
    pub prefix: IpNet,
    /// The equal-cost set, never empty; one route unless ECMP applies.
    pub routes: &'a [Route],
}

impl<'a> Selected<'a> {
    /// The first route of the set: the one to show when a single answer is needed.
    pub fn primary(&self) -> &'a Route {
        // A `Selected` is only built from a non-empty candidate list.
        &self.routes[0]
    }
}

/// Candidates for one prefix, kept sorted by [`select`] so the best set is a leading slice
/// and a lookup allocates nothing.
#[derive(Clone, Debug, Default)]
struct Candidates(Vec<Route>);

impl Candidates {
    fn best(&self) -> &[Route] {
        let Some(first) = self.0.first() else {
            return &[];
        };
        let n = self.0.iter().take_while(|r| equal_cost(first, r)).count();
        &self.0[..n]
    }

    /// Inserts or replaces; returns whether the best set changed.
    fn upsert(&mut self, route: Route) -> bool {
        let before = self.best().to_vec();
        self.0.retain(|r| !r.same_identity(&route));
        let at = self
            .0
            .partition_point(|r| select(r, &route) == Ordering::Less);
        self.0.insert(at, route);
        before != self.best()
    }

    /// Removes matching routes; returns (removed routes, whether the best set changed).
    fn remove_where(&mut self, mut pred: impl FnMut(&Route) -> bool) -> (Vec<Route>, bool) {
        let before = self.best().to_vec();
        let mut removed = Vec::new();
        self.0.retain(|r| {
            let hit = pred(r);
            if hit {
                removed.push(r.clone());
            }
            !hit
        });
        let changed = !removed.is_empty() && before != self.best();
        (removed, changed)
    }
}

/// A route table for IPv4 and IPv6.
#[derive(Clone, Debug, Default)]
pub struct Table {
    v4: PrefixMap<Ipv4Net, Candidates>,
    v6: PrefixMap<Ipv6Net, Candidates>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a candidate, replacing one with the same prefix, source and next hop. Host bits
    /// of the prefix are cleared. Returns whether the best set of that prefix changed.
    pub fn insert(&mut self, mut route: Route) -> bool {
        route.prefix = route.prefix.trunc();
        match route.prefix {
            IpNet::V4(p) => self.v4.entry(p).or_default().upsert(route),
            IpNet::V6(p) => self.v6.entry(p).or_default().upsert(route),
        }
    }

    /// Removes the candidate with this identity (prefix, source, next hop), if present.
    pub fn remove(&mut self, route: &Route) -> Option<Route> {
        let prefix = route.prefix.trunc();
        self.remove_in(prefix, |r| r.same_identity(route))
            .0
            .into_iter()
            .next()
    }

    /// Removes every candidate of `prefix` that `pred` selects. Returns the removed routes.
    pub fn remove_prefix_where(
        &mut self,
        prefix: IpNet,
        pred: impl FnMut(&Route) -> bool,
    ) -> Vec<Route> {
        self.remove_in(prefix.trunc(), pred).0
    }

    /// Removes every candidate, of any prefix, that `pred` selects (for example all routes
    /// of one source when a session drops). Returns the removed routes.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Route) -> bool) -> Vec<Route> {
        let mut removed = Vec::new();
        for (_, c) in self.v4.iter_mut() {
            removed.extend(c.remove_where(&mut pred).0);
        }
        for (_, c) in self.v6.iter_mut() {
            removed.extend(c.remove_where(&mut pred).0);
        }
        self.v4.retain(|_, c| !c.0.is_empty());
        self.v6.retain(|_, c| !c.0.is_empty());
        removed
    }

    fn remove_in(&mut self, prefix: IpNet, pred: impl FnMut(&Route) -> bool) -> (Vec<Route>, bool) {
        let out = match prefix {
            IpNet::V4(p) => {
                let out = self.v4.get_mut(&p).map(|c| c.remove_where(pred));
                if self.v4.get(&p).is_some_and(|c| c.0.is_empty()) {
                    self.v4.remove(&p);
                }
                out
            }
            IpNet::V6(p) => {
                let out = self.v6.get_mut(&p).map(|c| c.remove_where(pred));
                if self.v6.get(&p).is_some_and(|c| c.0.is_empty()) {
                    self.v6.remove(&p);
                }
                out
            }
        };
        out.unwrap_or_default()
    }

    /// Longest-prefix match: the selected routes of the most specific prefix containing
    /// `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<Selected<'_>> {
        match addr {
            IpAddr::V4(a) => {
                let (p, c) = self.v4.get_lpm(&Ipv4Net::from(a))?;
                Some(Selected {
                    prefix: p.into(),
                    routes: c.best(),
                })
            }
            IpAddr::V6(a) => {
                let (p, c) = self.v6.get_lpm(&Ipv6Net::from(a))?;
                Some(Selected {
                    prefix: p.into(),
                    routes: c.best(),
                })
            }
        }
    }

    /// The selected routes of exactly `prefix`, if it has candidates.
    pub fn best(&self, prefix: IpNet) -> Option<Selected<'_>> {
        let prefix = prefix.trunc();
        let c = match prefix {
            IpNet::V4(p) => self.v4.get(&p)?,
            IpNet::V6(p) => self.v6.get(&p)?,
        };
        Some(Selected {
            prefix,
            routes: c.best(),
        })
    }

    /// All candidates of exactly `prefix`, best first.
    pub fn candidates(&self, prefix: IpNet) -> &[Route] {
        let prefix = prefix.trunc();
        let c = match prefix {
            IpNet::V4(p) => self.v4.get(&p),
            IpNet::V6(p) => self.v6.get(&p),
        };
        c.map_or(&[], |c| &c.0)
    }

    /// Every candidate: IPv4 then IPv6, prefixes in trie order, each prefix's best first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> + '_ {
        self.v4
            .values()
            .chain(self.v6.values())
            .flat_map(|c| c.0.iter())
    }

    /// The selected set of every prefix, in the order of [`Table::iter`].
    pub fn iter_selected(&self) -> impl Iterator<Item = Selected<'_>> + '_ {
        self.v4
            .iter()
            .map(|(p, c)| Selected {
                prefix: p.into(),
                routes: c.best(),
            })
            .chain(self.v6.iter().map(|(p, c)| Selected {
                prefix: p.into(),
                routes: c.best(),
            }))
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the table has no route at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

#[cfg(test)]
mod tests;
