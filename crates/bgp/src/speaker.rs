//! The speaker: sessions, RIBs and policy put together.
//!
//! A [`Speaker`] owns one [`Session`] per peer, the Loc-RIB (which holds the peers'
//! Adj-RIBs-In and the locally originated routes, see [`crate::rib`]) and each peer's
//! UPDATEs in the making. Its contract with the driver is the session's
//! ([`crate::neighbor`]), per peer: every input names the peer ([`Speaker::process`]), every
//! output too ([`Output`]). Per call, outputs come in this order: what the peer's session
//! produced (connect/close/send/timers, interleaved with [`Event::Established`] and
//! [`Event::Down`]), then at most one [`Event::RoutesChanged`] with every Loc-RIB change
//! the call caused, then the UPDATEs each affected peer must be sent.
//!
//! [`Event::RoutesChanged`] carries [`rib::Route`](::rib::Route)s ready for a
//! [`rib::Table`](::rib::Table): remove `old`, insert `new`.

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    error::{ConfigError, PeerMisbehaved, SessionError},
    neighbor::{self, DownReason, Input, Negotiated, PeerConfig, Session, State},
    packet::{
        attribute::{flags, Community, NextHop, PathAttrs},
        iana::{Family, Origin},
        message::Update,
    },
    policy::{ExportPolicy, ImportPolicy, MaxPrefixAction},
    rib::{self, AdjRibOut, Entry, InRoute, LocRib, Path, PathSource, PeerId},
    timer::Timer,
};

/// The BGP port (RFC 4271 §8.2.1.2).
pub const BGP_PORT: u16 = 179;

/// This speaker's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerConfig {
    /// Local AS (4-octet).
    pub asn: u32,
    /// BGP Identifier.
    pub router_id: Ipv4Addr,
}

/// What the driver must do, or what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to `remote` for `peer`.
    Connect {
        /// The peer.
        peer: PeerId,
        /// Its address and port 179.
        remote: SocketAddr,
    },
    /// Close `peer`'s connection after writing what is queued (or abandon an attempt).
    Close {
        /// The peer.
        peer: PeerId,
    },
    /// Write bytes to `peer`'s connection.
    Send {
        /// The peer.
        peer: PeerId,
        /// One or more whole BGP messages.
        bytes: Vec<u8>,
    },
    /// Arm `peer`'s `timer` to fire after `after`.
    SetTimer {
        /// The peer.
        peer: PeerId,
        /// Which timer.
        timer: Timer,
        /// Delay.
        after: Duration,
    },
    /// Disarm `peer`'s `timer`.
    ClearTimer {
        /// The peer.
        peer: PeerId,
        /// Which timer.
        timer: Timer,
    },
    /// Write bytes to `peer`'s collision connection (RFC 4271 §6.8; see
    /// [`neighbor`](crate::neighbor) for the driver's part).
    CollisionSend {
        /// The peer.
        peer: PeerId,
        /// An OPEN or a NOTIFICATION.
        bytes: Vec<u8>,
    },
    /// Close `peer`'s collision connection after writing what is queued on it.
    CollisionClose {
        /// The peer.
        peer: PeerId,
    },
    /// `peer`'s collision connection replaces its connection (closed by the
    /// [`Output::Close`] just before).
    CollisionWon {
        /// The peer.
        peer: PeerId,
    },
    /// Something happened.
    Event(Event),
}

/// Things that happened, for the daemon (logs, metrics, the rib).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A session reached Established.
    Established {
        /// The peer.
        peer: PeerId,
    },
    /// An Established session ended. Its routes are already withdrawn (see the
    /// [`Event::RoutesChanged`] of the same call), unless kept stale for a graceful restart.
    Down {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DownReason,
    },
    /// The selected route of some prefixes changed, in the order they changed.
    RoutesChanged(Vec<RouteChange>),
    /// A peer's prefix count crossed its max-prefix warning threshold.
    MaxPrefixWarning {
        /// The peer.
        peer: PeerId,
        /// Prefixes accepted.
        count: usize,
        /// The limit.
        limit: u32,
    },
    /// Prefixes were dropped because the peer is at its max-prefix limit
    /// ([`MaxPrefixAction::DropExcess`]).
    MaxPrefixDropped {
        /// The peer.
        peer: PeerId,
        /// Prefixes dropped in this UPDATE.
        dropped: usize,
        /// The limit.
        limit: u32,
    },
}

/// A change to the routes this speaker wants forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteChange {
    /// The prefix.
    pub prefix: IpNet,
    /// The route to remove from the table, if any.
    pub old: Option<::rib::Route>,
    /// The route to insert, if any.
    pub new: Option<::rib::Route>,
    /// The peer whose route is selected now (`None`: withdrawn, or a local route), so that
    /// a driver need not look the prefix up again.
    pub peer: Option<PeerId>,
}

/// A route this speaker originates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalRoute {
    /// ORIGIN (IGP by default).
    pub origin: Origin,
    /// MULTI_EXIT_DISC sent with the route.
    pub med: Option<u32>,
    /// LOCAL_PREF (internal peers only).
    pub local_pref: Option<u32>,
    /// Communities.
    pub communities: Vec<Community>,
}

/// An Established session's parameters.
#[derive(Debug)]
struct Up {
    negotiated: Negotiated,
}

#[derive(Debug)]
struct Peer {
    session: Session,
    /// Routes accepted from the peer (its Adj-RIB-In, which the Loc-RIB holds).
    received: usize,
    adj_out: AdjRibOut,
    up: Option<Up>,
    /// Families whose End-of-RIB is due after the next flush.
    eor_pending: Vec<Family>,
    prefix_warned: bool,
}

/// A BGP speaker: sessions, RIBs, policy.
#[derive(Debug)]
pub struct Speaker {
    config: SpeakerConfig,
    peers: Vec<Option<Peer>>,
    loc_rib: LocRib,
    /// Distinct attributes of originated routes, shared so that routes originated alike go
    /// out in one UPDATE.
    local_attrs: Vec<Arc<PathAttrs>>,
}

/// The per-call export cache: source attributes (by identity: their address) to the
/// attributes sent. Each entry holds its source `Arc`, so the address cannot be reused by
/// another allocation while cached; a hit costs one hash of a `usize` and no refcount.
#[derive(Default)]
struct ExportCache(HashMap<usize, (Arc<PathAttrs>, Arc<PathAttrs>), ahash::RandomState>);

impl Speaker {
    /// A speaker with no peers.
    pub fn new(config: SpeakerConfig) -> Result<Self, ConfigError> {
        if config.asn == 0 {
            return Err(ConfigError::ZeroAsn);
        }
        if config.router_id.is_unspecified() {
            return Err(ConfigError::ZeroRouterId);
        }
        Ok(Self {
            config,
            peers: Vec::new(),
            loc_rib: LocRib::default(),
            local_attrs: Vec::new(),
        })
    }

    /// This speaker's identity.
    pub const fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// Adds a peer (in Idle; send it [`Input::ManualStart`]).
    pub fn add_peer(&mut self, config: PeerConfig) -> Result<PeerId, ConfigError> {
        config.validate()?;
        if self.peer_by_address(config.address).is_some() {
            return Err(ConfigError::DuplicatePeer(config.address));
        }
        let id = PeerId(self.peers.len());
        self.peers.push(Some(Peer {
            session: Session::new(self.config.asn, self.config.router_id, config),
            received: 0,
            adj_out: AdjRibOut::default(),
            up: None,
            eor_pending: Vec::new(),
            prefix_warned: false,
        }));
        Ok(id)
    }

    /// Stops and removes a peer; its routes are withdrawn.
    pub fn remove_peer(&mut self, id: PeerId) -> Vec<Output> {
        let mut out = self.process(id, Input::ManualStop);
        if self.peer(id).is_some() {
            for p in self.loc_rib.prefixes_of(id) {
                self.loc_rib.set(p, Some(id), None);
            }
            out.push(Output::ClearTimer {
                peer: id,
                timer: Timer::GracefulRestart,
            });
        }
        if let Some(slot) = self.peers.get_mut(id.0) {
            *slot = None;
        }
        self.finish(&mut out);
        out
    }

    /// The peer configured with this address (to hand it an incoming connection).
    pub fn peer_by_address(&self, addr: IpAddr) -> Option<PeerId> {
        self.peers.iter().enumerate().find_map(|(i, p)| {
            p.as_ref()
                .filter(|p| p.session.config().address == addr)
                .map(|_| PeerId(i))
        })
    }

    /// Every peer.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| PeerId(i))
    }

    fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id.0).and_then(Option::as_ref)
    }

    /// A peer's session (state, negotiated parameters, counters).
    pub fn session(&self, id: PeerId) -> Option<&Session> {
        self.peer(id).map(|p| &p.session)
    }

    /// The routes `id` advertised that import policy accepted (its Adj-RIB-In), in prefix
    /// order.
    pub fn received(&self, id: PeerId) -> Option<Vec<(IpNet, InRoute)>> {
        self.peer(id)?;
        let mut v: Vec<(IpNet, InRoute)> = self
            .loc_rib
            .routes_of(Some(id))
            .map(|(p, e)| {
                let r = InRoute {
                    path: e.path.clone(),
                    stale: e.stale,
                };
                (p, r)
            })
            .collect();
        v.sort_unstable_by_key(|r| r.0);
        Some(v)
    }

    /// How many routes `id`'s Adj-RIB-In holds.
    pub fn received_count(&self, id: PeerId) -> Option<usize> {
        self.peer(id).map(|p| p.received)
    }

    /// How many of them are stale (kept for a restarting peer, RFC 4724).
    pub fn stale_count(&self, id: PeerId) -> Option<usize> {
        self.peer(id)?;
        Some(self.loc_rib.stale_of(id, None).len())
    }

    /// What is advertised to `id` (its Adj-RIB-Out), in prefix order: computed from the
    /// Loc-RIB and `id`'s export policy, which is how it was sent.
    pub fn advertised(&self, id: PeerId) -> Option<Vec<(IpNet, Path)>> {
        let peer = self.peer(id)?;
        let Some(up) = &peer.up else {
            return Some(Vec::new());
        };
        let export = Export {
            local_as: self.config.asn,
            to: id,
            cfg: peer.session.config(),
            n: &up.negotiated,
            loc_rib: &self.loc_rib,
        };
        let mut cache = ExportCache::default();
        let mut v: Vec<(IpNet, Path)> = self
            .loc_rib
            .selected()
            .filter_map(|(p, e)| Some((p, export.path(&p, Some(e), &mut cache)?)))
            .collect();
        v.sort_unstable_by_key(|r| r.0);
        Some(v)
    }

    /// How many prefixes are advertised to `id`.
    pub fn advertised_count(&self, id: PeerId) -> Option<usize> {
        self.peer(id).map(|p| p.adj_out.advertised())
    }

    /// The Loc-RIB.
    pub const fn loc_rib(&self) -> &LocRib {
        &self.loc_rib
    }

    /// Whether `id` takes an incoming connection now.
    pub fn accepts_connection(&self, id: PeerId) -> bool {
        self.peer(id)
            .is_some_and(|p| p.session.accepts_connection())
    }

    /// Whether `id` takes a second connection now, as the collision connection of RFC 4271
    /// §6.8 ([`Session::accepts_collision`]).
    pub fn accepts_collision(&self, id: PeerId) -> bool {
        self.peer(id).is_some_and(|p| p.session.accepts_collision())
    }

    /// Feeds one input for one peer.
    pub fn process(&mut self, id: PeerId, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return out;
        };
        match input {
            Input::TimerExpired(Timer::GracefulRestart) => {
                self.flush_stale(id, None, &mut out);
            }
            Input::TransportDown => {
                let so = peer.session.process(Input::TransportDown);
                self.handle_session(id, so, &mut out);
                // The tunnel is gone: routes kept for a graceful restart go too.
                self.flush_stale(id, None, &mut out);
            }
            Input::Received(bytes) => {
                let so = peer.session.handle_bytes(&bytes);
                self.handle_session(id, so, &mut out);
            }
            input => {
                let so = peer.session.process(input);
                self.handle_session(id, so, &mut out);
            }
        }
        self.finish(&mut out);
        out
    }

    /// Bytes read from `id`'s connection (same as [`Input::Received`], without the copy).
    pub fn handle_bytes(&mut self, id: PeerId, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return out;
        };
        let so = peer.session.handle_bytes(bytes);
        self.handle_session(id, so, &mut out);
        self.finish(&mut out);
        out
    }

    /// Originates (or changes) a route for `prefix`.
    pub fn originate(&mut self, prefix: IpNet, route: LocalRoute) -> Vec<Output> {
        let prefix = prefix.trunc();
        let attrs = PathAttrs {
            origin: route.origin,
            med: route.med,
            local_pref: route.local_pref,
            communities: route.communities,
            ..PathAttrs::default()
        };
        self.local_attrs.retain(|a| Arc::strong_count(a) > 1);
        let attrs = match self.local_attrs.iter().find(|a| ***a == attrs) {
            Some(a) => a.clone(),
            None => {
                let a = Arc::new(attrs);
                self.local_attrs.push(a.clone());
                a
            }
        };
        let unspecified = match prefix {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let path = Path {
            attrs,
            next_hop: NextHop::new(unspecified),
        };
        self.loc_rib.set(prefix, None, Some(path));
        let mut out = Vec::new();
        self.finish(&mut out);
        out
    }

    /// Stops originating `prefix`.
    pub fn withdraw_local(&mut self, prefix: IpNet) -> Vec<Output> {
        self.loc_rib.set(prefix.trunc(), None, None);
        let mut out = Vec::new();
        self.finish(&mut out);
        out
    }

    /// Asks `id` to send its routes of `family` again (RFC 2918), if it supports that.
    pub fn request_refresh(&mut self, id: PeerId, family: Family) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) {
            let so = peer.session.request_refresh(family);
            self.handle_session(id, so, &mut out);
        }
        out
    }

    /// Replaces `id`'s import policy: routes it now denies are removed at once; a route
    /// refresh is requested for the ones it may now accept.
    pub fn set_import_policy(
        &mut self,
        id: PeerId,
        policy: ImportPolicy,
    ) -> Result<Vec<Output>, ConfigError> {
        if let Some(f) = &policy.filter {
            f.validate()?;
        }
        let peer = self
            .peers
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or(ConfigError::UnknownPeer(id.0))?;
        let external = peer.up.as_ref().is_some_and(|u| u.negotiated.external)
            || peer.session.config().remote_as != self.config.asn;
        for p in self.loc_rib.prefixes_of(id) {
            if !policy.permits(&p, external) && self.loc_rib.set(p, Some(id), None) {
                peer.received -= 1;
            }
        }
        peer.session.set_policies(Some(policy), None);
        let mut out = Vec::new();
        for f in Family::ALL {
            let so = peer.session.request_refresh(f);
            out.extend(so.into_iter().filter_map(|o| map_transport(id, o)));
        }
        self.finish(&mut out);
        Ok(out)
    }

    /// Replaces `id`'s export policy and re-evaluates every route sent to it.
    pub fn set_export_policy(
        &mut self,
        id: PeerId,
        policy: ExportPolicy,
    ) -> Result<Vec<Output>, ConfigError> {
        if let Some(f) = &policy.filter {
            f.validate()?;
        }
        let asn = self.config.asn;
        let peer = self
            .peers
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or(ConfigError::UnknownPeer(id.0))?;
        let old = peer.session.config().clone();
        peer.session.set_policies(None, Some(policy));
        if let Some(up) = &peer.up {
            let before = Export {
                local_as: asn,
                to: id,
                cfg: &old,
                n: &up.negotiated,
                loc_rib: &self.loc_rib,
            };
            let after = Export {
                cfg: peer.session.config(),
                ..before
            };
            let (mut was_cache, mut now_cache) = (ExportCache::default(), ExportCache::default());
            for (p, e) in self.loc_rib.selected() {
                let was = before.path(&p, Some(e), &mut was_cache);
                let now = after.path(&p, Some(e), &mut now_cache);
                if was != now {
                    peer.adj_out.stage(p, was.is_some(), now);
                }
            }
        }
        let mut out = Vec::new();
        self.finish(&mut out);
        Ok(out)
    }

    /// The route to forward for `prefix`, if a peer's route is selected.
    pub fn rib_route(&self, prefix: &IpNet) -> Option<::rib::Route> {
        let best = self.loc_rib.best_entry(prefix)?;
        self.to_rib(*prefix, best)
    }

    /// Every selected learned route as a [`rib::Route`](::rib::Route) (source
    /// [`rib::Source::Bgp`](::rib::Source::Bgp)), in prefix order: what the daemon installs.
    pub fn rib_routes(&self) -> Vec<::rib::Route> {
        let mut v: Vec<(IpNet, ::rib::Route)> = self
            .loc_rib
            .selected()
            .filter_map(|(p, e)| Some((p, self.to_rib(p, e)?)))
            .collect();
        v.sort_unstable_by_key(|a| a.0);
        v.into_iter().map(|(_, r)| r).collect()
    }

    fn to_rib(&self, prefix: IpNet, e: &Entry) -> Option<::rib::Route> {
        let interface = e
            .peer()
            .and_then(|id| self.peer(id))
            .and_then(|p| p.session.config().interface.as_deref());
        rib::to_rib_route(prefix, e, interface)
    }

    // -- session outputs -----------------------------------------------------------------

    fn handle_session(&mut self, id: PeerId, so: Vec<neighbor::Output>, out: &mut Vec<Output>) {
        let mut queue: VecDeque<neighbor::Output> = so.into();
        while let Some(o) = queue.pop_front() {
            match o {
                neighbor::Output::Established => self.on_established(id, out),
                neighbor::Output::Down(reason) => {
                    self.on_down(id, &reason, out);
                    out.push(Output::Event(Event::Down { peer: id, reason }));
                }
                neighbor::Output::Update(u) => {
                    if let Some((error, restart)) = self.import(id, u, out) {
                        if let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) {
                            queue.extend(peer.session.reset(error, restart));
                        }
                    }
                }
                neighbor::Output::RouteRefresh(f) => {
                    if let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) {
                        if peer.session.state() == State::Established {
                            peer.adj_out.resend(f);
                        }
                    }
                }
                neighbor::Output::Connect => {
                    if let Some(peer) = self.peer(id) {
                        out.push(Output::Connect {
                            peer: id,
                            remote: SocketAddr::new(peer.session.config().address, BGP_PORT),
                        });
                    }
                }
                o => out.extend(map_transport(id, o)),
            }
        }
    }

    fn on_established(&mut self, id: PeerId, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        let Some(n) = peer.session.negotiated().cloned() else {
            return;
        };
        tracing::info!(peer = %peer.session.config().name, peer_as = n.peer_as, "BGP session established");
        let source = PathSource::Peer {
            id,
            external: n.external,
            router_id: n.peer_id,
            address: n.remote_addr,
        };
        self.loc_rib.set_source(id, source);
        if peer.received > 0 {
            // RFC 4724 §4.2: stale routes of families the restarted peer no longer
            // preserves (absent from its new capability, or without the F bit) go now.
            let keep: Vec<Family> = n
                .peer_graceful_restart
                .iter()
                .flat_map(|gr| gr.families.iter())
                .filter(|f| f.forwarding)
                .filter_map(|f| Family::from_afi_safi(f.afi, f.safi))
                .collect();
            for p in self.loc_rib.stale_of(id, None) {
                if !keep.contains(&Family::of(&p)) && self.loc_rib.set(p, Some(id), None) {
                    peer.received -= 1;
                }
            }
            // Stale routes still present compete with the new session's identity (its router
            // ID may have changed).
            for p in self.loc_rib.prefixes_of(id) {
                self.loc_rib.reselect(&p);
            }
        }
        // Initial table dump at the next flush, then End-of-RIB per family.
        peer.adj_out.start(&n.families);
        peer.eor_pending = n.families.clone();
        peer.up = Some(Up { negotiated: n });
        out.push(Output::Event(Event::Established { peer: id }));
    }

    fn on_down(&mut self, id: PeerId, reason: &DownReason, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        tracing::info!(peer = %peer.session.config().name, %reason, "BGP session down");
        let up = peer.up.take();
        peer.adj_out.clear();
        peer.eor_pending.clear();
        peer.prefix_warned = false;
        // RFC 4724 §4.2: a lost connection (no NOTIFICATION) with a peer that announced
        // graceful restart for some families keeps those routes, stale, for its restart time.
        let gr = up
            .as_ref()
            .and_then(|u| u.negotiated.peer_graceful_restart.as_ref())
            .filter(|gr| gr.restart_time > 0 && matches!(reason, DownReason::ConnectionLost));
        let families: Vec<Family> = gr
            .iter()
            .flat_map(|gr| gr.families.iter())
            .filter_map(|f| Family::from_afi_safi(f.afi, f.safi))
            .collect();
        let flush = if families.is_empty() {
            self.loc_rib.prefixes_of(id)
        } else {
            self.loc_rib.mark_stale(id, &families)
        };
        for p in flush {
            if self.loc_rib.set(p, Some(id), None) {
                peer.received -= 1;
            }
        }
        match gr {
            Some(gr) if !families.is_empty() && peer.received > 0 => {
                out.push(Output::SetTimer {
                    peer: id,
                    timer: Timer::GracefulRestart,
                    after: Duration::from_secs(u64::from(gr.restart_time)),
                });
            }
            _ => {}
        }
    }

    /// Removes stale routes of `family` (all when `None`); disarms the restart timer when
    /// none are left.
    fn flush_stale(&mut self, id: PeerId, family: Option<Family>, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        let stale = self.loc_rib.stale_of(id, family);
        if stale.is_empty() && family.is_some() {
            return;
        }
        for p in stale {
            if self.loc_rib.set(p, Some(id), None) {
                peer.received -= 1;
            }
        }
        if self.loc_rib.stale_of(id, None).is_empty() {
            out.push(Output::ClearTimer {
                peer: id,
                timer: Timer::GracefulRestart,
            });
        }
    }

    /// Applies one UPDATE to the peer's Adj-RIB-In and the Loc-RIB. Returns the error to
    /// reset the session with when the max-prefix action says so.
    fn import(
        &mut self,
        id: PeerId,
        mut u: Update,
        out: &mut Vec<Output>,
    ) -> Option<(SessionError, Option<Duration>)> {
        let local_as = self.config.asn;
        let peer = self.peers.get_mut(id.0).and_then(Option::as_mut)?;
        if peer.session.state() != State::Established {
            return None;
        }
        let up = peer.up.as_ref()?;
        let external = up.negotiated.external;
        let families = up.negotiated.families.clone();
        if let Some(f) = u.end_of_rib() {
            // RFC 4724 §4.2: End-of-RIB ends the stale period of its family.
            self.flush_stale(id, Some(f), out);
            return None;
        }
        let loc_rib = &mut self.loc_rib;
        let withdraw = |peer: &mut Peer, loc_rib: &mut LocRib, p: IpNet| {
            if families.contains(&Family::of(&p)) && loc_rib.set(p, Some(id), None) {
                peer.received -= 1;
            }
        };
        for p in u.withdrawn_prefixes() {
            withdraw(peer, loc_rib, p);
        }
        let announced: Vec<(IpNet, NextHop)> = u.announced().collect();
        let attrs = u.attrs.take();
        let usable = attrs.filter(|a| {
            // RFC 4271 §9.1.2: a path containing our AS is unfeasible (loop).
            !u.treat_as_withdraw() && !a.as_path.contains(local_as)
        });
        let Some(mut attrs) = usable else {
            for p in u.announced_prefixes() {
                withdraw(peer, loc_rib, p);
            }
            return None;
        };
        let import = peer.session.config().import.clone();
        attrs.next_hop = None;
        if external {
            // RFC 4271 §5.1.5: an external peer's LOCAL_PREF is never used.
            attrs.local_pref = Some(import.local_pref.unwrap_or(rib::DEFAULT_LOCAL_PREF));
        } else if let Some(lp) = import.local_pref {
            attrs.local_pref = Some(lp);
        }
        let attrs = Arc::new(attrs);
        let mut dropped = 0usize;
        for (p, next_hop) in announced {
            let family = Family::of(&p);
            if !families.contains(&family) {
                continue;
            }
            if !import.permits(&p, external) {
                withdraw(peer, loc_rib, p);
                continue;
            }
            // The limit is checked for new prefixes only, and looked up only with a limit.
            if let Some(mp) = import.max_prefix {
                if peer.received >= usize::try_from(mp.limit).unwrap_or(usize::MAX)
                    && loc_rib.route_of(&p, Some(id)).is_none()
                {
                    match mp.action {
                        MaxPrefixAction::DropExcess => {
                            dropped += 1;
                            continue;
                        }
                        MaxPrefixAction::Reset { restart_after } => {
                            let e = PeerMisbehaved::MaxPrefixExceeded {
                                family,
                                limit: mp.limit,
                            };
                            return Some((
                                e.into(),
                                restart_after.map(|s| Duration::from_secs(u64::from(s))),
                            ));
                        }
                    }
                }
            }
            let path = Path {
                attrs: attrs.clone(),
                next_hop,
            };
            if !loc_rib.set(p, Some(id), Some(path)) {
                peer.received += 1;
            }
        }
        if let Some(mp) = import.max_prefix {
            let count = peer.received;
            let at = usize::try_from(mp.warning_at()).unwrap_or(usize::MAX);
            if count >= at && !peer.prefix_warned {
                peer.prefix_warned = true;
                tracing::warn!(peer = %peer.session.config().name, count, limit = mp.limit, "max-prefix warning threshold reached");
                out.push(Output::Event(Event::MaxPrefixWarning {
                    peer: id,
                    count,
                    limit: mp.limit,
                }));
            } else if count < at {
                peer.prefix_warned = false;
            }
            if dropped > 0 {
                tracing::warn!(peer = %peer.session.config().name, dropped, limit = mp.limit, "max-prefix limit: prefixes dropped");
                out.push(Output::Event(Event::MaxPrefixDropped {
                    peer: id,
                    dropped,
                    limit: mp.limit,
                }));
            }
        }
        None
    }

    /// Ends a call: turns the prefixes it changed into a [`Event::RoutesChanged`] and
    /// UPDATEs, then sends every peer what was staged for it.
    fn finish(&mut self, out: &mut Vec<Output>) {
        let asn = self.config.asn;
        let touched = self.loc_rib.take_touched();
        if !touched.is_empty() {
            let mut changes = Vec::new();
            let mut caches: Vec<ExportCache> =
                self.peers.iter().map(|_| ExportCache::default()).collect();
            for t in &touched {
                let now = self.loc_rib.selected_at(t);
                let before = t.before.as_ref();
                if before == now {
                    continue;
                }
                let old = before.and_then(|e| self.to_rib(t.prefix, e));
                let new = now.and_then(|e| self.to_rib(t.prefix, e));
                if old != new {
                    changes.push(RouteChange {
                        prefix: t.prefix,
                        old,
                        new,
                        peer: now.and_then(Entry::peer),
                    });
                }
                for ((i, slot), cache) in self.peers.iter_mut().enumerate().zip(&mut caches) {
                    let Some(peer) = slot.as_mut() else { continue };
                    let Some(up) = &peer.up else { continue };
                    let export = Export {
                        local_as: asn,
                        to: PeerId(i),
                        cfg: peer.session.config(),
                        n: &up.negotiated,
                        loc_rib: &self.loc_rib,
                    };
                    let was = export.path(&t.prefix, before, cache);
                    let now = export.path(&t.prefix, now, cache);
                    if was != now {
                        peer.adj_out.stage(t.prefix, was.is_some(), now);
                    }
                }
            }
            if !changes.is_empty() {
                out.push(Output::Event(Event::RoutesChanged(changes)));
            }
        }
        self.loc_rib.settle(touched);
        for (i, slot) in self.peers.iter_mut().enumerate() {
            let Some(peer) = slot.as_mut() else { continue };
            let Some(up) = &peer.up else { continue };
            let id = PeerId(i);
            let dumping: Vec<Family> = peer.adj_out.dumping().collect();
            if !dumping.is_empty() {
                let export = Export {
                    local_as: asn,
                    to: id,
                    cfg: peer.session.config(),
                    n: &up.negotiated,
                    loc_rib: &self.loc_rib,
                };
                let mut cache = ExportCache::default();
                let mut count = [0usize; 2];
                for (p, e) in self.loc_rib.selected() {
                    let family = Family::of(&p);
                    if !dumping.contains(&family) {
                        continue;
                    }
                    let Some(path) = export.path(&p, Some(e), &mut cache) else {
                        continue;
                    };
                    if let Some(c) = count.get_mut(family.index()) {
                        *c += 1;
                    }
                    peer.adj_out.dump_one(p, path);
                }
                for f in dumping {
                    peer.adj_out
                        .dumped(f, count.get(f.index()).copied().unwrap_or(0));
                }
            }
            if !peer.adj_out.has_pending() && peer.eor_pending.is_empty() {
                continue;
            }
            let mut bytes = Vec::new();
            let mut messages = match peer.adj_out.flush(peer.session.encode_cxt(), &mut bytes) {
                Ok(n) => n,
                Err(e) => {
                    // Only a path too long for one message gets here; it is not sent.
                    tracing::error!(peer = %peer.session.config().name, error = %e, "cannot encode UPDATE");
                    0
                }
            };
            messages += rib::end_of_rib(&peer.eor_pending, &mut bytes);
            peer.eor_pending.clear();
            let so = peer.session.send_updates(bytes, messages);
            out.extend(so.into_iter().filter_map(|o| map_transport(id, o)));
        }
    }
}

/// The transport-level session outputs, tagged with the peer.
fn map_transport(peer: PeerId, o: neighbor::Output) -> Option<Output> {
    Some(match o {
        neighbor::Output::Connect => return None,
        neighbor::Output::Close => Output::Close { peer },
        neighbor::Output::Send(bytes) => Output::Send { peer, bytes },
        neighbor::Output::SetTimer(timer, after) => Output::SetTimer { peer, timer, after },
        neighbor::Output::ClearTimer(timer) => Output::ClearTimer { peer, timer },
        neighbor::Output::CollisionSend(bytes) => Output::CollisionSend { peer, bytes },
        neighbor::Output::CollisionClose => Output::CollisionClose { peer },
        neighbor::Output::CollisionWon => Output::CollisionWon { peer },
        _ => return None,
    })
}

/// Export toward one peer: what it should be sent for a Loc-RIB selection.
#[derive(Clone, Copy)]
struct Export<'a> {
    local_as: u32,
    to: PeerId,
    cfg: &'a PeerConfig,
    n: &'a Negotiated,
    loc_rib: &'a LocRib,
}

impl Export<'_> {
    /// What `to` should be sent for `prefix` given the Loc-RIB's selection (RFC 4271
    /// §9.1.3, §5.1): `None` means nothing (withdraw if it was sent).
    fn path(&self, prefix: &IpNet, best: Option<&Entry>, cache: &mut ExportCache) -> Option<Path> {
        let Self {
            local_as,
            to,
            cfg,
            n,
            loc_rib,
        } = *self;
        let best = best?;
        let family = Family::of(prefix);
        if !n.families.contains(&family) {
            return None;
        }
        let external = n.external;
        let attrs = &best.path.attrs;
        // Well-known communities (RFC 1997).
        if attrs.has_community(Community::NO_ADVERTISE)
            || external
                && (attrs.has_community(Community::NO_EXPORT)
                    || attrs.has_community(Community::NO_EXPORT_SUBCONFED))
        {
            return None;
        }
        if !cfg.export.permits(prefix, external) {
            return None;
        }
        // Sender-side loop prevention: the peer would drop a path with its own AS.
        if external && attrs.as_path.contains(n.peer_as) {
            return None;
        }
        let self_nh = || -> Option<NextHop> {
            match (family, n.local_addr) {
                (Family::Ipv4Unicast, IpAddr::V4(a)) => Some(NextHop::new(IpAddr::V4(a))),
                (Family::Ipv4Unicast, IpAddr::V6(_)) => {
                    cfg.next_hop_v4.map(|a| NextHop::new(a.into()))
                }
                (Family::Ipv6Unicast, local) => {
                    let addr = match local {
                        IpAddr::V6(a) => Some(a),
                        IpAddr::V4(_) => cfg.next_hop_v6,
                    };
                    addr.map(|a| NextHop {
                        addr: IpAddr::V6(a),
                        link_local: cfg.next_hop_v6_link_local,
                    })
                }
            }
        };
        let source = loc_rib.source(best);
        let next_hop = match source {
            PathSource::Local => self_nh()?,
            PathSource::Peer {
                id,
                external: from_external,
                ..
            } => {
                if id == to {
                    // Not back to the peer it came from.
                    return None;
                }
                if !from_external && !external {
                    // RFC 4271 §9.2: internal routes are not sent to internal peers (no route
                    // reflection).
                    return None;
                }
                if external || cfg.export.next_hop_self {
                    self_nh()?
                } else {
                    best.path.next_hop
                }
            }
        };
        let key = Arc::as_ptr(attrs) as usize;
        let out_attrs = match cache.0.get(&key) {
            Some((_, out)) => out.clone(),
            None => {
                let mut a = PathAttrs::clone(attrs);
                a.next_hop = None;
                if external {
                    a.as_path = a
                        .as_path
                        .prepended(local_as, 1 + usize::from(cfg.export.prepend));
                    // RFC 4271 §5.1.5: no LOCAL_PREF to external peers.
                    a.local_pref = None;
                    // RFC 4271 §5.1.4: a MED received from a neighbouring AS is not passed to
                    // another one; a locally originated route keeps its own.
                    if source != PathSource::Local {
                        a.med = None;
                    }
                } else {
                    a.local_pref = Some(a.local_pref.unwrap_or(rib::DEFAULT_LOCAL_PREF));
                }
                if let Some(med) = cfg.export.med {
                    a.med = Some(med);
                }
                // RFC 4271 §5: unrecognized optional transitive attributes are passed on with the
                // Partial bit set; unrecognized non-transitive ones are dropped.
                a.unknown.retain(|u| u.is_transitive());
                for u in &mut a.unknown {
                    if !crate::packet::attribute::is_recognized(u.type_code) {
                        u.flags |= flags::PARTIAL;
                    }
                }
                let a = Arc::new(a);
                cache.0.insert(key, (attrs.clone(), a.clone()));
                a
            }
        };
        Some(Path {
            attrs: out_attrs,
            next_hop,
        })
    }
}
