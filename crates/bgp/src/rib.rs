//! Routing information bases (RFC 4271 §3.2) and the decision process (§9.1).
//!
//! ```text
//!   UPDATE ─► import policy ─► Adj-RIB-In (per peer) ─┐
//!                                                     ├─► Loc-RIB: candidates per prefix,
//!   Speaker::originate ───────────────────────────────┘   best first (best_path, §9.1.2)
//!                                                             │
//!                     ┌─── export rules + policy, per peer ◄──┘──► to_rib_route ─► rib::Table
//!                     ▼
//!               Adj-RIB-Out (per peer): sent + pending ─► UPDATEs packed by attributes
//! ```
//!
//! The Adj-RIB-In holds routes after import policy (filters, max-prefix): a changed import
//! policy takes full effect after a route refresh. Routes share their attributes through an
//! [`Arc`], so 100 000 prefixes from one UPDATE stream cost one copy of the attributes.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, HashMap},
    fmt,
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::packet::{
    attribute::{NextHop, PathAttrs},
    error::EncodeError,
    iana::Family,
    message::{encode_announce, encode_end_of_rib, encode_withdraw},
    EncodeCxt, HEADER_LEN,
};

/// The LOCAL_PREF of a route that has none (RFC 4271 leaves it to the implementation; 100 is
/// what every common implementation uses).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// A map keyed by prefix, with keyed hashing that is fast and still resists crafted keys.
pub(crate) type PrefixMap<V> = HashMap<IpNet, V, ahash::RandomState>;

/// A peer's index in its [`Speaker`](crate::Speaker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub usize);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// A route's attributes and next hop. Attributes are shared between routes and hold no
/// NEXT_HOP (it lives here, per family).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    /// Path attributes (`next_hop` cleared).
    pub attrs: Arc<PathAttrs>,
    /// Next hop. Unspecified (`0.0.0.0` / `::`) for locally originated routes: "this
    /// speaker".
    pub next_hop: NextHop,
}

/// Where a Loc-RIB candidate came from, with what the decision process needs to know about
/// the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathSource {
    /// Originated by this speaker ([`Speaker::originate`](crate::Speaker::originate)).
    Local,
    /// Learned from a peer.
    Peer {
        /// The peer.
        id: PeerId,
        /// Over an external (eBGP) session.
        external: bool,
        /// The peer's BGP Identifier.
        router_id: Ipv4Addr,
        /// The peer's address.
        address: IpAddr,
    },
}

impl PathSource {
    /// The peer, if learned from one.
    pub const fn peer(&self) -> Option<PeerId> {
        match self {
            Self::Local => None,
            Self::Peer { id, .. } => Some(*id),
        }
    }
}

/// One candidate route of a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Origin of the route.
    pub source: PathSource,
    /// Attributes and next hop.
    pub path: Path,
}

impl Candidate {
    fn local_pref(&self) -> u32 {
        self.path.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }

    /// Missing MED is the lowest value (RFC 4271 §9.1.2.2 c).
    fn med(&self) -> u32 {
        self.path.attrs.med.unwrap_or(0)
    }

    fn external(&self) -> bool {
        matches!(self.source, PathSource::Peer { external: true, .. })
    }

    fn router_id(&self) -> Ipv4Addr {
        match self.source {
            PathSource::Local => Ipv4Addr::UNSPECIFIED,
            PathSource::Peer { router_id, .. } => router_id,
        }
    }

    fn address(&self) -> Option<IpAddr> {
        match self.source {
            PathSource::Local => None,
            PathSource::Peer { address, .. } => Some(address),
        }
    }
}

/// The decision process: the index of the best candidate (RFC 4271 §9.1.2.2), or `None`
/// when there is none.
///
/// Candidates are eliminated in rounds, in this order:
/// 0. a route originated by this speaker beats any learned one (an operator's publication is
///    authoritative, as a "weight" is on common routers);
/// 1. highest LOCAL_PREF (default [`DEFAULT_LOCAL_PREF`]) (§9.1.1, §9.1.2.2 preamble);
/// 2. shortest AS_PATH (an AS_SET counts one, confederation segments zero) (a);
/// 3. lowest ORIGIN (b);
/// 4. lowest MULTI_EXIT_DISC among routes from the same neighbouring AS, a missing MED
///    counting as 0 (c) — applied as the RFC does, per neighbour AS, so it is not a total
///    order;
/// 5. routes from external peers over routes from internal ones (d);
/// 6. (lowest interior cost to the next hop: not applicable, no IGP) (e);
/// 7. lowest BGP Identifier of the advertising peer (f);
/// 8. lowest peer address (g).
pub fn best_path(cands: &[Candidate]) -> Option<usize> {
    match cands.len() {
        0 => return None,
        1 => return Some(0),
        _ => {}
    }
    let mut set: Vec<usize> = (0..cands.len()).collect();
    let c = |i: &usize| cands.get(*i);
    // 0. Local routes.
    if set
        .iter()
        .any(|i| c(i).is_some_and(|x| x.source == PathSource::Local))
    {
        set.retain(|i| c(i).is_some_and(|x| x.source == PathSource::Local));
    }
    keep_best(&mut set, cands, |x| std::cmp::Reverse(x.local_pref()));
    keep_best(&mut set, cands, |x| x.path.attrs.as_path.path_len());
    keep_best(&mut set, cands, |x| x.path.attrs.origin);
    // 4. MED, per neighbouring AS.
    let survivors: Vec<usize> = set
        .iter()
        .copied()
        .filter(|&i| {
            let Some(x) = cands.get(i) else { return false };
            let nas = x.path.attrs.as_path.first_as();
            !set.iter().any(|&j| {
                cands
                    .get(j)
                    .is_some_and(|y| y.path.attrs.as_path.first_as() == nas && y.med() < x.med())
            })
        })
        .collect();
    set = survivors;
    keep_best(&mut set, cands, |x| !x.external());
    keep_best(&mut set, cands, Candidate::router_id);
    keep_best(&mut set, cands, Candidate::address);
    set.first().copied()
}

/// Keeps the indices whose key is minimal.
fn keep_best<K: Ord>(set: &mut Vec<usize>, cands: &[Candidate], key: impl Fn(&Candidate) -> K) {
    if set.len() < 2 {
        return;
    }
    let Some(min) = set.iter().filter_map(|i| cands.get(*i)).map(&key).min() else {
        return;
    };
    set.retain(|i| {
        cands
            .get(*i)
            .is_some_and(|x| key(x).cmp(&min) == Ordering::Equal)
    });
}

/// A route in an Adj-RIB-In.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRoute {
    /// Attributes and next hop.
    pub path: Path,
    /// Kept for a restarting peer (RFC 4724 §4.2) until it re-sends the route, sends
    /// End-of-RIB, or the restart timer fires.
    pub stale: bool,
}

/// The routes one peer advertised that import policy accepted.
#[derive(Clone, Debug, Default)]
pub struct AdjRibIn {
    routes: PrefixMap<InRoute>,
}

impl AdjRibIn {
    /// The route for a prefix.
    pub fn get(&self, prefix: &IpNet) -> Option<&InRoute> {
        self.routes.get(prefix)
    }

    /// Every route (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &InRoute)> + '_ {
        self.routes.iter()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Number of stale routes.
    pub fn stale_count(&self) -> usize {
        self.routes.values().filter(|r| r.stale).count()
    }

    pub(crate) fn contains(&self, prefix: &IpNet) -> bool {
        self.routes.contains_key(prefix)
    }

    pub(crate) fn insert(&mut self, prefix: IpNet, path: Path) {
        self.routes.insert(prefix, InRoute { path, stale: false });
    }

    pub(crate) fn remove(&mut self, prefix: &IpNet) -> Option<InRoute> {
        self.routes.remove(prefix)
    }

    /// Marks the routes of `families` stale; returns the prefixes of the other families
    /// (to be flushed).
    pub(crate) fn mark_stale(&mut self, families: &[Family]) -> Vec<IpNet> {
        let mut other = Vec::new();
        for (p, r) in &mut self.routes {
            if families.contains(&Family::of(p)) {
                r.stale = true;
            } else {
                other.push(*p);
            }
        }
        other
    }

    /// Prefixes of stale routes of `family` (all families when `None`).
    pub(crate) fn stale(&self, family: Option<Family>) -> Vec<IpNet> {
        self.routes
            .iter()
            .filter(|(p, r)| r.stale && family.is_none_or(|f| Family::of(p) == f))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Every prefix.
    pub(crate) fn prefixes(&self) -> Vec<IpNet> {
        self.routes.keys().copied().collect()
    }
}

/// The Loc-RIB: every candidate per prefix, the best first.
#[derive(Clone, Debug, Default)]
pub struct LocRib {
    dests: PrefixMap<Vec<Candidate>>,
}

impl LocRib {
    /// The selected route of a prefix.
    pub fn best(&self, prefix: &IpNet) -> Option<&Candidate> {
        self.dests.get(prefix).and_then(|v| v.first())
    }

    /// All candidates of a prefix, best first.
    pub fn candidates(&self, prefix: &IpNet) -> &[Candidate] {
        self.dests.get(prefix).map_or(&[], Vec::as_slice)
    }

    /// Every prefix with its selected route (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Candidate)> + '_ {
        self.dests.iter().filter_map(|(p, v)| Some((p, v.first()?)))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.dests.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    /// Sets (`Some`) or removes (`None`) the candidate from `source` and reruns the decision
    /// process for the prefix. Returns whether the selected route changed.
    // The speaker uses `replace`; this narrower form serves the decision-process tests.
    #[cfg(test)]
    pub(crate) fn update(
        &mut self,
        prefix: IpNet,
        source: Option<PeerId>,
        cand: Option<Candidate>,
    ) -> bool {
        let (old, new) = self.replace(prefix, source, cand);
        old != new
    }

    /// [`LocRib::update`], returning the route selected before and the one selected now:
    /// the speaker's bookkeeping of a call then needs no other lookup of the prefix in this
    /// (large, cache-unfriendly) table.
    pub(crate) fn replace(
        &mut self,
        prefix: IpNet,
        source: Option<PeerId>,
        cand: Option<Candidate>,
    ) -> (Option<Candidate>, Option<Candidate>) {
        let v = self.dests.entry(prefix).or_default();
        let old = v.first().cloned();
        let at = v.iter().position(|c| c.source.peer() == source);
        match (at, cand) {
            (Some(i), Some(c)) => {
                if let Some(slot) = v.get_mut(i) {
                    *slot = c;
                }
            }
            (Some(i), None) => {
                v.remove(i);
            }
            (None, Some(c)) => {
                // Most prefixes have one candidate: a plain push would reserve room for four
                // (Vec's first growth), which was a third of the 100 000-prefix relay's peak
                // memory.
                v.reserve_exact(1);
                v.push(c);
            }
            (None, None) => {}
        }
        if v.is_empty() {
            self.dests.remove(&prefix);
            return (old, None);
        }
        if let Some(b) = best_path(v) {
            v.swap(0, b);
        }
        (old, v.first().cloned())
    }
}

/// What was sent to one peer, and what is waiting to be.
#[derive(Clone, Debug, Default)]
pub struct AdjRibOut {
    sent: PrefixMap<Path>,
    /// Changes not sent yet: a path to announce, or `None` to withdraw. Ordered, so UPDATEs
    /// go out in prefix order.
    pending: BTreeMap<IpNet, Option<Path>>,
}

impl AdjRibOut {
    /// The route last sent for a prefix.
    pub fn get(&self, prefix: &IpNet) -> Option<&Path> {
        self.sent.get(prefix)
    }

    /// Every route sent (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Path)> + '_ {
        self.sent.iter()
    }

    /// Number of prefixes sent.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether nothing was sent.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Changes waiting to be sent.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Records what should be advertised for `prefix` (`None`: nothing); a no-op change is
    /// dropped.
    pub(crate) fn stage(&mut self, prefix: IpNet, path: Option<Path>) {
        let same = match (self.sent.get(&prefix), &path) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if same {
            self.pending.remove(&prefix);
        } else {
            self.pending.insert(prefix, path);
        }
    }

    /// Queues every route of `family` again (route refresh, RFC 2918 §4).
    pub(crate) fn resend(&mut self, family: Family) {
        for (p, path) in &self.sent {
            if Family::of(p) == family {
                self.pending.entry(*p).or_insert_with(|| Some(path.clone()));
            }
        }
    }

    /// Forgets everything (session down).
    pub(crate) fn clear(&mut self) {
        self.sent.clear();
        self.pending.clear();
    }

    /// Encodes the pending changes as UPDATEs into `out` (withdrawals first, then
    /// announcements grouped by attributes and next hop) and marks them sent. Returns the
    /// number of messages.
    pub(crate) fn flush(&mut self, cxt: &EncodeCxt, out: &mut Vec<u8>) -> Result<u64, EncodeError> {
        let start = out.len();
        let pending = std::mem::take(&mut self.pending);
        let mut withdraw: [Vec<IpNet>; 2] = [Vec::new(), Vec::new()];
        let mut groups: Vec<(Family, Path, Vec<IpNet>)> = Vec::new();
        let mut index: HashMap<(Family, usize, NextHop), usize, ahash::RandomState> =
            HashMap::default();
        let mut last: Option<((Family, usize, NextHop), usize)> = None;
        for (p, path) in pending {
            let family = Family::of(&p);
            match path {
                None => {
                    if self.sent.remove(&p).is_some() {
                        if let Some(w) = withdraw.get_mut(family.index()) {
                            w.push(p);
                        }
                    }
                }
                Some(path) => {
                    let key = (family, Arc::as_ptr(&path.attrs) as usize, path.next_hop);
                    // Runs of prefixes share a group (one UPDATE's worth, one peer's
                    // routes): check the last group before hashing.
                    let g = match &last {
                        Some((k, g)) if *k == key => *g,
                        _ => {
                            let g = *index.entry(key).or_insert_with(|| {
                                groups.push((family, path.clone(), Vec::new()));
                                groups.len() - 1
                            });
                            last = Some((key, g));
                            g
                        }
                    };
                    if let Some((_, _, v)) = groups.get_mut(g) {
                        v.push(p);
                    }
                    self.sent.insert(p, path);
                }
            }
        }
        for f in Family::ALL {
            if let Some(w) = withdraw.get(f.index()) {
                encode_withdraw(f, w, out)?;
            }
        }
        for (family, path, prefixes) in &groups {
            encode_announce(*family, &path.attrs, &path.next_hop, prefixes, cxt, out)?;
        }
        Ok(count_messages(out.get(start..).unwrap_or_default()))
    }
}

/// Appends End-of-RIB markers for `families`; returns the number of messages.
pub(crate) fn end_of_rib(families: &[Family], out: &mut Vec<u8>) -> u64 {
    for f in families {
        encode_end_of_rib(*f, out);
    }
    families.len() as u64
}

/// Number of messages in a buffer of whole encoded messages.
fn count_messages(mut buf: &[u8]) -> u64 {
    let mut n = 0;
    while let Some(&[hi, lo]) = buf.get(16..18) {
        let len = usize::from(u16::from_be_bytes([hi, lo])).max(HEADER_LEN);
        buf = buf.get(len..).unwrap_or_default();
        n += 1;
    }
    n
}

/// The `rib::Route` for a Loc-RIB selection: learned routes only (a route
/// this speaker originates came from the local table in the first place). `interface` is
/// the device of the peer the route came from, if configured.
pub fn to_rib_route(
    prefix: IpNet,
    cand: &Candidate,
    interface: Option<&str>,
) -> Option<::rib::Route> {
    match cand.source {
        PathSource::Local => None,
        PathSource::Peer { .. } => Some(::rib::Route::new(
            prefix,
            ::rib::NextHop::Address {
                via: cand.path.next_hop.addr,
                dev: interface.map(str::to_owned),
            },
            ::rib::Source::Bgp,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{attribute::AsPath, iana::Origin};

    fn cand(peer: usize, external: bool, attrs: PathAttrs) -> Candidate {
        Candidate {
            source: PathSource::Peer {
                id: PeerId(peer),
                external,
                router_id: Ipv4Addr::new(10, 0, 0, peer as u8),
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, peer as u8)),
            },
            path: Path {
                attrs: Arc::new(attrs),
                next_hop: NextHop::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, peer as u8))),
            },
        }
    }

    fn attrs(path: &[u32]) -> PathAttrs {
        PathAttrs {
            as_path: AsPath::sequence(path.iter().copied()),
            ..PathAttrs::default()
        }
    }

    #[test]
    fn loc_rib_update_reports_best_changes() {
        let mut rib = LocRib::default();
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        assert!(rib.update(p, Some(PeerId(1)), Some(cand(1, true, attrs(&[1, 2])))));
        // A worse candidate does not change the best.
        assert!(!rib.update(p, Some(PeerId(2)), Some(cand(2, true, attrs(&[3, 4, 5])))));
        assert_eq!(rib.best(&p).unwrap().source.peer(), Some(PeerId(1)));
        // Withdrawing the best promotes the other.
        assert!(rib.update(p, Some(PeerId(1)), None));
        assert_eq!(rib.best(&p).unwrap().source.peer(), Some(PeerId(2)));
        assert!(rib.update(p, Some(PeerId(2)), None));
        assert!(rib.is_empty());
        assert!(!rib.update(p, Some(PeerId(2)), None));
    }

    #[test]
    fn adj_rib_out_stage_drops_no_ops() {
        let mut out = AdjRibOut::default();
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        out.stage(p, None);
        assert_eq!(out.pending(), 0);
        let path = cand(1, true, attrs(&[1])).path;
        out.stage(p, Some(path.clone()));
        assert_eq!(out.pending(), 1);
        let mut buf = Vec::new();
        assert_eq!(out.flush(&EncodeCxt::default(), &mut buf).unwrap(), 1);
        out.stage(p, Some(path));
        assert_eq!(out.pending(), 0);
        out.stage(p, None);
        let mut buf = Vec::new();
        assert_eq!(out.flush(&EncodeCxt::default(), &mut buf).unwrap(), 1);
        assert!(out.is_empty());
    }

    #[test]
    fn origin_orders_igp_first() {
        assert!(Origin::Igp < Origin::Egp && Origin::Egp < Origin::Incomplete);
    }
}
