//! Routing information bases (RFC 4271 §3.2) and the decision process (§9.1).
//!
//! ```text
//!   UPDATE ─► import policy ─┐
//!                            ├─► Loc-RIB: per prefix, every peer's route (the Adj-RIBs-In)
//!   Speaker::originate ──────┘   and local ones, best first (best_path, §9.1.2)
//!                                    │ changes of the call (slots, selection before)
//!            ┌── export, per peer ◄──┴──► to_rib_route ─► rib::Table
//!            │   (before vs now)
//!            ▼
//!   Adj-RIB-Out (per peer): UPDATEs packed by attributes as changes are staged
//! ```
//!
//! One table holds what RFC 4271 describes as three (BIRD does the same): a peer's
//! Adj-RIB-In is its routes in the Loc-RIB, after import policy (filters, max-prefix; a
//! changed import policy takes full effect after a route refresh), and its Adj-RIB-Out is
//! what export gives for the Loc-RIB's selection, which is a pure function of the selection
//! and the peer's policy, so it is computed, not stored. Routes share their attributes
//! through an [`Arc`], so 100 000 prefixes from one UPDATE stream cost one copy of the
//! attributes; a prefix with one route (the common case) needs no allocation of its own.

use std::{
    cmp::Ordering,
    collections::{hash_map::Entry as MapEntry, HashMap},
    fmt,
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

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

/// A route a peer advertised and import policy accepted (a peer's Adj-RIB-In, as
/// [`Speaker::received`](crate::Speaker::received) lists it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRoute {
    /// Attributes and next hop.
    pub path: Path,
    /// Kept for a restarting peer (RFC 4724 §4.2) until it re-sends the route, sends
    /// End-of-RIB, or the restart timer fires.
    pub stale: bool,
}

/// A route as the Loc-RIB stores it: the source by index only, its identity being kept
/// once per peer in the [`LocRib`]'s source table. 56 bytes where a [`Candidate`] takes 88:
/// at 100 000 prefixes the table is the speaker's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The peer's index, or [`Entry::LOCAL`]. A speaker has far fewer than 2³² peers.
    from: u32,
    pub(crate) stale: bool,
    pub(crate) path: Path,
}

impl Entry {
    const LOCAL: u32 = u32::MAX;

    fn new(peer: Option<PeerId>, path: Path) -> Self {
        Self {
            from: key(peer),
            stale: false,
            path,
        }
    }

    /// The peer it came from; `None` for a route this speaker originates.
    pub(crate) fn peer(&self) -> Option<PeerId> {
        (self.from != Self::LOCAL).then_some(PeerId(self.from as usize))
    }
}

fn key(peer: Option<PeerId>) -> u32 {
    peer.map_or(Entry::LOCAL, |p| p.0 as u32)
}

/// One prefix: every route for it, the selected one first.
#[derive(Clone, Debug)]
struct Dest {
    prefix: IpNet,
    /// Already in [`LocRib::touched`] this call.
    touched: bool,
    routes: SmallVec<[Entry; 1]>,
}

/// A prefix whose routes changed during the current call, with the route it had selected
/// before the call.
#[derive(Clone, Debug)]
pub(crate) struct Touched {
    pub(crate) prefix: IpNet,
    slot: u32,
    pub(crate) before: Option<Entry>,
}

/// The Loc-RIB, holding every peer's routes too: each prefix's candidates are the routes
/// the peers' Adj-RIBs-In hold for it (after import policy), so one table serves both, as
/// in BIRD, and a received route costs one table entry instead of one per RIB.
///
/// Prefixes live in a slab (`dests`) behind a prefix index: the changes of a call are
/// recorded as slab slots, so ending a call needs no second hash lookup per prefix.
#[derive(Clone, Debug, Default)]
pub struct LocRib {
    index: PrefixMap<u32>,
    dests: Vec<Dest>,
    /// Slots of `dests` free for reuse.
    free: Vec<u32>,
    /// Each peer's identity for the decision process, by peer index.
    sources: Vec<PathSource>,
    /// Prefixes changed this call, in the order first changed.
    touched: Vec<Touched>,
}

impl LocRib {
    /// The selected route of a prefix.
    pub fn best(&self, prefix: &IpNet) -> Option<Candidate> {
        self.dest(prefix)?.routes.first().map(|e| self.candidate(e))
    }

    /// All candidates of a prefix, best first.
    pub fn candidates(&self, prefix: &IpNet) -> Vec<Candidate> {
        self.dest(prefix)
            .map(|d| d.routes.iter().map(|e| self.candidate(e)).collect())
            .unwrap_or_default()
    }

    /// Every prefix with its selected route (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, Candidate)> + '_ {
        self.selected().map(|(p, e)| (p, self.candidate(e)))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.dests.len() - self.free.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn dest(&self, prefix: &IpNet) -> Option<&Dest> {
        let slot = *self.index.get(prefix)?;
        self.dests.get(slot as usize)
    }

    fn candidate(&self, e: &Entry) -> Candidate {
        Candidate {
            source: source(&self.sources, e),
            path: e.path.clone(),
        }
    }

    /// Every prefix with its selected route, as stored (unordered).
    pub(crate) fn selected(&self) -> impl Iterator<Item = (IpNet, &Entry)> + '_ {
        self.dests
            .iter()
            .filter_map(|d| Some((d.prefix, d.routes.first()?)))
    }

    /// Every route from `peer` (`None`: originated here), unordered.
    pub(crate) fn routes_of(
        &self,
        peer: Option<PeerId>,
    ) -> impl Iterator<Item = (IpNet, &Entry)> + '_ {
        let k = key(peer);
        self.dests.iter().filter_map(move |d| {
            let e = d.routes.iter().find(|e| e.from == k)?;
            Some((d.prefix, e))
        })
    }

    /// The selected route of a prefix, as stored.
    pub(crate) fn best_entry(&self, prefix: &IpNet) -> Option<&Entry> {
        self.dest(prefix)?.routes.first()
    }

    /// Where a route came from, with its peer's identity.
    pub(crate) fn source(&self, e: &Entry) -> PathSource {
        source(&self.sources, e)
    }

    /// The route `peer` has for `prefix`.
    pub(crate) fn route_of(&self, prefix: &IpNet, peer: Option<PeerId>) -> Option<&Entry> {
        let k = key(peer);
        self.dest(prefix)?.routes.iter().find(|e| e.from == k)
    }

    /// Sets the identity of `peer`'s routes; the caller re-runs the decision process of its
    /// prefixes ([`LocRib::reselect`]) if it had any.
    pub(crate) fn set_source(&mut self, peer: PeerId, source: PathSource) {
        if self.sources.len() <= peer.0 {
            self.sources.resize(peer.0 + 1, PathSource::Local);
        }
        if let Some(s) = self.sources.get_mut(peer.0) {
            *s = source;
        }
    }

    /// Sets (`Some`) or removes (`None`) the route from `peer` for `prefix` and re-runs the
    /// decision process for the prefix. Returns whether `peer` had a route for it before.
    pub(crate) fn set(&mut self, prefix: IpNet, peer: Option<PeerId>, path: Option<Path>) -> bool {
        let k = key(peer);
        // One hash of the prefix, found or inserted.
        let slot = match self.index.entry(prefix) {
            MapEntry::Occupied(o) => *o.get(),
            MapEntry::Vacant(_) if path.is_none() => return false,
            MapEntry::Vacant(v) => *v.insert(alloc(&mut self.dests, &mut self.free, prefix)),
        };
        let Some(d) = self.dests.get_mut(slot as usize) else {
            return false;
        };
        if !d.touched {
            d.touched = true;
            self.touched.push(Touched {
                prefix,
                slot,
                before: d.routes.first().cloned(),
            });
        }
        let at = d.routes.iter().position(|e| e.from == k);
        let had = at.is_some();
        match (at, path) {
            (Some(i), Some(path)) => {
                if let Some(e) = d.routes.get_mut(i) {
                    e.path = path;
                    e.stale = false;
                }
            }
            (Some(i), None) => {
                d.routes.remove(i);
            }
            (None, Some(path)) => d.routes.push(Entry::new(peer, path)),
            (None, None) => {}
        }
        select(&self.sources, &mut d.routes);
        had
    }

    /// Re-runs the decision process for `prefix` (its sources' identities changed).
    pub(crate) fn reselect(&mut self, prefix: &IpNet) {
        let Some(&slot) = self.index.get(prefix) else {
            return;
        };
        let Some(d) = self.dests.get_mut(slot as usize) else {
            return;
        };
        if !d.touched {
            d.touched = true;
            self.touched.push(Touched {
                prefix: *prefix,
                slot,
                before: d.routes.first().cloned(),
            });
        }
        select(&self.sources, &mut d.routes);
    }

    /// Marks `peer`'s routes of `families` stale; returns the prefixes of its other routes
    /// (to be flushed).
    pub(crate) fn mark_stale(&mut self, peer: PeerId, families: &[Family]) -> Vec<IpNet> {
        let k = key(Some(peer));
        let mut other = Vec::new();
        for d in &mut self.dests {
            if let Some(e) = d.routes.iter_mut().find(|e| e.from == k) {
                if families.contains(&Family::of(&d.prefix)) {
                    e.stale = true;
                } else {
                    other.push(d.prefix);
                }
            }
        }
        other
    }

    /// Prefixes of `peer`'s stale routes of `family` (all families when `None`).
    pub(crate) fn stale_of(&self, peer: PeerId, family: Option<Family>) -> Vec<IpNet> {
        self.routes_of(Some(peer))
            .filter(|(p, e)| e.stale && family.is_none_or(|f| Family::of(p) == f))
            .map(|(p, _)| p)
            .collect()
    }

    /// Every prefix `peer` has a route for.
    pub(crate) fn prefixes_of(&self, peer: PeerId) -> Vec<IpNet> {
        self.routes_of(Some(peer)).map(|(p, _)| p).collect()
    }

    /// Takes the prefixes changed since the last call to [`LocRib::settle`], in the order
    /// first changed (sorting them was a tenth of a 100 000-prefix relay: BIRD sends its
    /// table in hash order). Their selection now is [`LocRib::selected_at`]; hand them back
    /// to [`LocRib::settle`] when done.
    pub(crate) fn take_touched(&mut self) -> Vec<Touched> {
        std::mem::take(&mut self.touched)
    }

    /// The route selected now for a prefix [`LocRib::take_touched`] returned.
    pub(crate) fn selected_at(&self, t: &Touched) -> Option<&Entry> {
        self.dests.get(t.slot as usize)?.routes.first()
    }

    /// Ends a call: frees the prefixes left without routes.
    pub(crate) fn settle(&mut self, mut touched: Vec<Touched>) {
        for t in touched.drain(..) {
            let Some(d) = self.dests.get_mut(t.slot as usize) else {
                continue;
            };
            d.touched = false;
            if d.routes.is_empty() {
                // Give back the memory of a prefix that had several routes.
                d.routes = SmallVec::new();
                self.index.remove(&t.prefix);
                self.free.push(t.slot);
            }
        }
        // The next call reuses the allocation: a table dump touches thousands of prefixes
        // per call, and a fresh vector each time was a page-fault storm.
        self.touched = touched;
    }
}

/// A slot of `dests` for a new prefix.
fn alloc(dests: &mut Vec<Dest>, free: &mut Vec<u32>, prefix: IpNet) -> u32 {
    let dest = Dest {
        prefix,
        touched: false,
        routes: SmallVec::new(),
    };
    if let Some(s) = free.pop() {
        if let Some(d) = dests.get_mut(s as usize) {
            *d = dest;
            return s;
        }
    }
    dests.push(dest);
    (dests.len() - 1) as u32
}

fn source(sources: &[PathSource], e: &Entry) -> PathSource {
    match e.peer() {
        None => PathSource::Local,
        Some(p) => sources.get(p.0).copied().unwrap_or(PathSource::Local),
    }
}

/// Puts the best of `routes` first.
fn select(sources: &[PathSource], routes: &mut [Entry]) {
    if routes.len() < 2 {
        return;
    }
    let cands: Vec<Candidate> = routes
        .iter()
        .map(|e| Candidate {
            source: source(sources, e),
            path: e.path.clone(),
        })
        .collect();
    if let Some(b) = best_path(&cands) {
        routes.swap(0, b);
    }
}

/// UPDATEs being built for one peer: routes are packed by attributes as they are staged,
/// so nothing per prefix is kept between calls. What was sent is not stored either: it is
/// what export gives for the Loc-RIB's selection (a pure function of the selection and the
/// peer's policy), so a change is exported before and after and staged if they differ.
#[derive(Debug, Default)]
pub(crate) struct AdjRibOut {
    /// Prefixes advertised, per family.
    advertised: [usize; 2],
    /// Families to advertise in full at the next flush (session up, route refresh).
    dump: [bool; 2],
    /// Nothing sent yet in this session: the dump covers everything.
    initial: bool,
    withdraw: [Vec<IpNet>; 2],
    groups: Vec<Group>,
    index: HashMap<GroupKey, usize, ahash::RandomState>,
    last: Option<(GroupKey, usize)>,
}

/// Prefixes going out with one set of attributes and next hop.
#[derive(Debug)]
struct Group {
    family: Family,
    path: Path,
    prefixes: Vec<IpNet>,
}

type GroupKey = (Family, usize, NextHop);

impl AdjRibOut {
    /// Number of prefixes advertised.
    pub(crate) fn advertised(&self) -> usize {
        self.advertised.iter().sum()
    }

    /// Starts a session: every family negotiated is sent in full at the next flush.
    pub(crate) fn start(&mut self, families: &[Family]) {
        self.clear();
        self.initial = true;
        for f in families {
            if let Some(d) = self.dump.get_mut(f.index()) {
                *d = true;
            }
        }
    }

    /// Queues every route of `family` again (route refresh, RFC 2918 §4).
    pub(crate) fn resend(&mut self, family: Family) {
        if let Some(d) = self.dump.get_mut(family.index()) {
            *d = true;
        }
    }

    /// Families to dump at the next flush ([`AdjRibOut::dumped`] for each).
    pub(crate) fn dumping(&self) -> impl Iterator<Item = Family> + '_ {
        Family::ALL
            .into_iter()
            .filter(|f| self.dump.get(f.index()).copied().unwrap_or(false))
    }

    /// Records a change of what export gives for `prefix`: `was` whether something was
    /// advertised, `now` what is to be (`None`: nothing). The caller stages only real
    /// changes.
    pub(crate) fn stage(&mut self, prefix: IpNet, was: bool, now: Option<Path>) {
        let family = Family::of(&prefix);
        let i = family.index();
        let dumping = self.dump.get(i).copied().unwrap_or(false);
        if self.initial && dumping {
            return;
        }
        match now {
            Some(path) => {
                // The dump announces it anyway.
                if dumping {
                    return;
                }
                if !was {
                    if let Some(n) = self.advertised.get_mut(i) {
                        *n += 1;
                    }
                }
                self.announce(prefix, path);
            }
            None if was => {
                if let Some(n) = self.advertised.get_mut(i) {
                    *n = n.saturating_sub(1);
                }
                if let Some(w) = self.withdraw.get_mut(i) {
                    w.push(prefix);
                }
            }
            None => {}
        }
    }

    /// Ends a dump of `family`: `advertised` prefixes were staged with [`AdjRibOut::dump_one`].
    pub(crate) fn dumped(&mut self, family: Family, advertised: usize) {
        let i = family.index();
        if let Some(n) = self.advertised.get_mut(i) {
            *n = advertised;
        }
        if let Some(d) = self.dump.get_mut(i) {
            *d = false;
        }
    }

    /// Stages one route of a dump.
    pub(crate) fn dump_one(&mut self, prefix: IpNet, path: Path) {
        self.announce(prefix, path);
    }

    fn announce(&mut self, prefix: IpNet, path: Path) {
        let family = Family::of(&prefix);
        let key = (family, Arc::as_ptr(&path.attrs) as usize, path.next_hop);
        // Runs of prefixes share a group (one UPDATE's worth, one peer's routes): check the
        // last group before hashing.
        let g = match &self.last {
            Some((k, g)) if *k == key => *g,
            _ => {
                let groups = &mut self.groups;
                let g = *self.index.entry(key).or_insert_with(|| {
                    groups.push(Group {
                        family,
                        path,
                        prefixes: Vec::new(),
                    });
                    groups.len() - 1
                });
                self.last = Some((key, g));
                g
            }
        };
        if let Some(group) = self.groups.get_mut(g) {
            group.prefixes.push(prefix);
        }
    }

    /// Forgets everything (session down).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether a flush would send anything.
    pub(crate) fn has_pending(&self) -> bool {
        !self.groups.is_empty() || self.withdraw.iter().any(|w| !w.is_empty())
    }

    /// Encodes what was staged as UPDATEs into `out` (withdrawals first, then announcements
    /// grouped by attributes and next hop, each in the order staged). Returns the number of
    /// messages.
    pub(crate) fn flush(&mut self, cxt: &EncodeCxt, out: &mut Vec<u8>) -> Result<u64, EncodeError> {
        let start = out.len();
        self.initial = false;
        self.index.clear();
        self.last = None;
        let withdraw = std::mem::take(&mut self.withdraw);
        let groups = std::mem::take(&mut self.groups);
        // `withdraw` is indexed by `Family::index`, which follows `Family::ALL`.
        for (f, w) in Family::ALL.into_iter().zip(withdraw) {
            encode_withdraw(f, &w, out)?;
        }
        for g in groups {
            encode_announce(
                g.family,
                &g.path.attrs,
                &g.path.next_hop,
                &g.prefixes,
                cxt,
                out,
            )?;
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

/// The `rib::Route` for a Loc-RIB selection: learned routes only (a route this speaker
/// originates came from the local table in the first place). `interface` is the device of
/// the peer the route came from, if configured.
pub(crate) fn to_rib_route(
    prefix: IpNet,
    e: &Entry,
    interface: Option<&str>,
) -> Option<::rib::Route> {
    e.peer()?;
    Some(::rib::Route::new(
        prefix,
        ::rib::NextHop::Address {
            via: e.path.next_hop.addr,
            dev: interface.map(str::to_owned),
        },
        ::rib::Source::Bgp,
    ))
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

    /// Sets `peer`'s route and ends the call, as the speaker does; returns whether the
    /// selection changed.
    fn update(rib: &mut LocRib, p: IpNet, peer: usize, c: Option<Candidate>) -> bool {
        if let Some(c) = &c {
            rib.set_source(PeerId(peer), c.source);
        }
        rib.set(p, Some(PeerId(peer)), c.map(|c| c.path));
        let touched = rib.take_touched();
        let changed = touched
            .iter()
            .any(|t| t.before.as_ref() != rib.selected_at(t));
        rib.settle(touched);
        changed
    }

    #[test]
    fn loc_rib_update_reports_best_changes() {
        let mut rib = LocRib::default();
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        assert!(update(&mut rib, p, 1, Some(cand(1, true, attrs(&[1, 2])))));
        // A worse candidate does not change the best.
        assert!(!update(
            &mut rib,
            p,
            2,
            Some(cand(2, true, attrs(&[3, 4, 5])))
        ));
        assert_eq!(rib.best(&p).unwrap().source.peer(), Some(PeerId(1)));
        assert_eq!(rib.candidates(&p).len(), 2);
        // Withdrawing the best promotes the other.
        assert!(update(&mut rib, p, 1, None));
        assert_eq!(rib.best(&p).unwrap().source.peer(), Some(PeerId(2)));
        assert!(update(&mut rib, p, 2, None));
        assert!(rib.is_empty());
        assert!(!update(&mut rib, p, 2, None));
        // The freed slot serves the next prefix.
        let q: IpNet = "10.0.1.0/24".parse().unwrap();
        assert!(update(&mut rib, q, 1, Some(cand(1, true, attrs(&[1])))));
        assert_eq!(rib.len(), 1);
        assert_eq!(rib.dests.len(), 1);
    }

    #[test]
    fn adj_rib_out_stages_changes_and_dumps() {
        let mut out = AdjRibOut::default();
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        let path = cand(1, true, attrs(&[1])).path;
        out.stage(p, false, None);
        assert!(!out.has_pending());
        out.stage(p, false, Some(path.clone()));
        assert_eq!(out.advertised(), 1);
        let mut buf = Vec::new();
        assert_eq!(out.flush(&EncodeCxt::default(), &mut buf).unwrap(), 1);
        assert!(!out.has_pending());
        out.stage(p, true, None);
        assert_eq!(out.advertised(), 0);
        let mut buf = Vec::new();
        assert_eq!(out.flush(&EncodeCxt::default(), &mut buf).unwrap(), 1);
        // A session's first flush is its dump: changes staged before it are in it.
        out.start(&[Family::Ipv4Unicast]);
        out.stage(p, false, Some(path.clone()));
        assert!(!out.has_pending());
        assert_eq!(out.dumping().collect::<Vec<_>>(), [Family::Ipv4Unicast]);
        out.dump_one(p, path);
        out.dumped(Family::Ipv4Unicast, 1);
        assert_eq!(out.advertised(), 1);
        let mut buf = Vec::new();
        assert_eq!(out.flush(&EncodeCxt::default(), &mut buf).unwrap(), 1);
        assert_eq!(out.dumping().count(), 0);
    }

    #[test]
    fn origin_orders_igp_first() {
        assert!(Origin::Igp < Origin::Egp && Origin::Egp < Origin::Incomplete);
    }
}
