//! The speaker: sessions, RIBs and policy put together.
//!
//! A [`Speaker`] owns one [`Session`] per peer, each peer's Adj-RIB-In and Adj-RIB-Out, the
//! Loc-RIB and the locally originated routes. Its contract with the driver is the session's
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
    rib::{self, AdjRibIn, AdjRibOut, Candidate, LocRib, Path, PathSource, PeerId, PrefixMap},
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
    /// The selected route of some prefixes changed, in prefix order.
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

/// What an Established peer's routes look like to the decision process.
#[derive(Debug)]
struct Up {
    negotiated: Negotiated,
    source: PathSource,
}

#[derive(Debug)]
struct Peer {
    session: Session,
    adj_in: AdjRibIn,
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
    /// Prefixes touched during the current call, with the selected route before it.
    /// Prefixes touched during the current call: (selected before the call, selected now).
    dirty: PrefixMap<(Option<Candidate>, Option<Candidate>)>,
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
            dirty: PrefixMap::default(),
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
            adj_in: AdjRibIn::default(),
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
        if let Some(peer) = self.peers.get_mut(id.0).and_then(Option::as_mut) {
            for p in peer.adj_in.prefixes() {
                peer.adj_in.remove(&p);
                set_route(&mut self.loc_rib, &mut self.dirty, p, Some(id), None);
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

    /// A peer's Adj-RIB-In.
    pub fn adj_rib_in(&self, id: PeerId) -> Option<&AdjRibIn> {
        self.peer(id).map(|p| &p.adj_in)
    }

    /// A peer's Adj-RIB-Out.
    pub fn adj_rib_out(&self, id: PeerId) -> Option<&AdjRibOut> {
        self.peer(id).map(|p| &p.adj_out)
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
        let cand = Candidate {
            source: PathSource::Local,
            path: Path {
                attrs,
                next_hop: NextHop::new(unspecified),
            },
        };
        set_route(&mut self.loc_rib, &mut self.dirty, prefix, None, Some(cand));
        let mut out = Vec::new();
        self.finish(&mut out);
        out
    }

    /// Stops originating `prefix`.
    pub fn withdraw_local(&mut self, prefix: IpNet) -> Vec<Output> {
        set_route(
            &mut self.loc_rib,
            &mut self.dirty,
            prefix.trunc(),
            None,
            None,
        );
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
        for p in peer.adj_in.prefixes() {
            if !policy.permits(&p, external) {
                peer.adj_in.remove(&p);
                set_route(&mut self.loc_rib, &mut self.dirty, p, Some(id), None);
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
        peer.session.set_policies(None, Some(policy));
        if let Some(up) = &peer.up {
            let mut cache = ExportCache::default();
            let mut prefixes: Vec<IpNet> = peer.adj_out.iter().map(|(p, _)| *p).collect();
            prefixes.extend(self.loc_rib.iter().map(|(p, _)| *p));
            for p in prefixes {
                let path = export(
                    asn,
                    id,
                    peer.session.config(),
                    &up.negotiated,
                    &p,
                    self.loc_rib.best(&p),
                    &mut cache,
                );
                peer.adj_out.stage(p, path);
            }
        }
        let mut out = Vec::new();
        self.finish(&mut out);
        Ok(out)
    }

    /// The route to forward for `prefix`, if a peer's route is selected.
    pub fn rib_route(&self, prefix: &IpNet) -> Option<::rib::Route> {
        let best = self.loc_rib.best(prefix)?;
        self.to_rib(*prefix, best)
    }

    /// Every selected learned route as a [`rib::Route`](::rib::Route) (source
    /// [`rib::Source::Bgp`](::rib::Source::Bgp)), in prefix order: what the daemon installs.
    pub fn rib_routes(&self) -> Vec<::rib::Route> {
        let mut v: Vec<(IpNet, ::rib::Route)> = self
            .loc_rib
            .iter()
            .filter_map(|(p, c)| Some((*p, self.to_rib(*p, c)?)))
            .collect();
        v.sort_by_key(|a| a.0);
        v.into_iter().map(|(_, r)| r).collect()
    }

    fn to_rib(&self, prefix: IpNet, cand: &Candidate) -> Option<::rib::Route> {
        let interface = cand
            .source
            .peer()
            .and_then(|id| self.peer(id))
            .and_then(|p| p.session.config().interface.as_deref());
        rib::to_rib_route(prefix, cand, interface)
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
        let asn = self.config.asn;
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
        // RFC 4724 §4.2: stale routes of families the restarted peer no longer preserves
        // (absent from its new capability, or without the F bit) go now.
        let keep: Vec<Family> = n
            .peer_graceful_restart
            .iter()
            .flat_map(|gr| gr.families.iter())
            .filter(|f| f.forwarding)
            .filter_map(|f| Family::from_afi_safi(f.afi, f.safi))
            .collect();
        let mut stale_gone = Vec::new();
        for f in Family::ALL {
            if !keep.contains(&f) {
                stale_gone.extend(peer.adj_in.stale(Some(f)));
            }
        }
        for p in stale_gone {
            peer.adj_in.remove(&p);
            set_route(&mut self.loc_rib, &mut self.dirty, p, Some(id), None);
        }
        // Stale routes still present take the new session's identity (router ID may change).
        for (p, r) in peer.adj_in.iter() {
            let cand = Candidate {
                source,
                path: r.path.clone(),
            };
            set_route(&mut self.loc_rib, &mut self.dirty, *p, Some(id), Some(cand));
        }
        // Initial table dump, then End-of-RIB per family.
        let mut cache = ExportCache::default();
        for (p, best) in self.loc_rib.iter() {
            let path = export(
                asn,
                id,
                peer.session.config(),
                &n,
                p,
                Some(best),
                &mut cache,
            );
            peer.adj_out.stage(*p, path);
        }
        peer.eor_pending = n.families.clone();
        peer.up = Some(Up {
            negotiated: n,
            source,
        });
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
            peer.adj_in.prefixes()
        } else {
            peer.adj_in.mark_stale(&families)
        };
        for p in flush {
            peer.adj_in.remove(&p);
            set_route(&mut self.loc_rib, &mut self.dirty, p, Some(id), None);
        }
        match gr {
            Some(gr) if !families.is_empty() && !peer.adj_in.is_empty() => {
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
        let stale = peer.adj_in.stale(family);
        if stale.is_empty() && family.is_some() {
            return;
        }
        for p in stale {
            peer.adj_in.remove(&p);
            set_route(&mut self.loc_rib, &mut self.dirty, p, Some(id), None);
        }
        if peer.adj_in.stale(None).is_empty() {
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
        let source = up.source;
        let external = up.negotiated.external;
        let families = up.negotiated.families.clone();
        if let Some(f) = u.end_of_rib() {
            // RFC 4724 §4.2: End-of-RIB ends the stale period of its family.
            self.flush_stale(id, Some(f), out);
            return None;
        }
        let loc_rib = &mut self.loc_rib;
        let dirty = &mut self.dirty;
        let withdraw = |peer: &mut Peer, loc_rib: &mut LocRib, dirty: &mut _, p: IpNet| {
            if families.contains(&Family::of(&p)) && peer.adj_in.remove(&p).is_some() {
                set_route(loc_rib, dirty, p, Some(id), None);
            }
        };
        for p in u.withdrawn_prefixes() {
            withdraw(peer, loc_rib, dirty, p);
        }
        let announced: Vec<(IpNet, NextHop)> = u.announced().collect();
        let attrs = u.attrs.take();
        let usable = attrs.filter(|a| {
            // RFC 4271 §9.1.2: a path containing our AS is unfeasible (loop).
            !u.treat_as_withdraw() && !a.as_path.contains(local_as)
        });
        let Some(mut attrs) = usable else {
            for p in u.announced_prefixes() {
                withdraw(peer, loc_rib, dirty, p);
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
                withdraw(peer, loc_rib, dirty, p);
                continue;
            }
            // The limit is checked for new prefixes only, and looked up only with a limit.
            if let Some(mp) = import.max_prefix {
                if !peer.adj_in.contains(&p)
                    && peer.adj_in.len() >= usize::try_from(mp.limit).unwrap_or(usize::MAX)
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
            peer.adj_in.insert(p, path.clone());
            set_route(
                loc_rib,
                dirty,
                p,
                Some(id),
                Some(Candidate { source, path }),
            );
        }
        if let Some(mp) = import.max_prefix {
            let count = peer.adj_in.len();
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

    /// Ends a call: turns touched prefixes into a [`Event::RoutesChanged`] and Adj-RIB-Out
    /// changes, then sends every peer its pending UPDATEs.
    fn finish(&mut self, out: &mut Vec<Output>) {
        let asn = self.config.asn;
        if !self.dirty.is_empty() {
            // (prefix, selected before, selected now), kept up to date by `set_route`.
            let touched: Vec<(IpNet, Option<Candidate>, Option<Candidate>)> = self
                .dirty
                .drain()
                .filter(|(_, (old, new))| old != new)
                .map(|(p, (old, new))| (p, old, new))
                .collect();
            // Changes go out in prefix order; sorting indices moves 8 bytes per entry where
            // sorting the entries moved ~200 (a tenth of the relay's time in memmove and
            // sort). Staging for export needs no order (the Adj-RIB-Out queue is sorted).
            let mut order: Vec<usize> = (0..touched.len()).collect();
            order.sort_unstable_by_key(|&i| touched.get(i).map(|t| t.0));
            let mut changes = Vec::new();
            for (p, old, new) in order.iter().filter_map(|&i| touched.get(i)) {
                let peer = new.as_ref().and_then(|c| c.source.peer());
                let old = old.as_ref().and_then(|c| self.to_rib(*p, c));
                let new = new.as_ref().and_then(|c| self.to_rib(*p, c));
                if old != new {
                    changes.push(RouteChange {
                        prefix: *p,
                        old,
                        new,
                        peer,
                    });
                }
            }
            if !changes.is_empty() {
                out.push(Output::Event(Event::RoutesChanged(changes)));
            }
            for (i, slot) in self.peers.iter_mut().enumerate() {
                let Some(peer) = slot.as_mut() else { continue };
                let Some(up) = &peer.up else { continue };
                let mut cache = ExportCache::default();
                for (p, _, best) in &touched {
                    let path = export(
                        asn,
                        PeerId(i),
                        peer.session.config(),
                        &up.negotiated,
                        p,
                        best.as_ref(),
                        &mut cache,
                    );
                    peer.adj_out.stage(*p, path);
                }
            }
        }
        for (i, slot) in self.peers.iter_mut().enumerate() {
            let Some(peer) = slot.as_mut() else { continue };
            if peer.up.is_none() || (peer.adj_out.pending() == 0 && peer.eor_pending.is_empty()) {
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
            let id = PeerId(i);
            let so = peer.session.send_updates(bytes, messages);
            out.extend(so.into_iter().filter_map(|o| map_transport(id, o)));
        }
    }
}

/// Sets or removes `source`'s candidate for `prefix`, remembering the selected route the
/// call started with.
fn set_route(
    loc_rib: &mut LocRib,
    dirty: &mut PrefixMap<(Option<Candidate>, Option<Candidate>)>,
    prefix: IpNet,
    source: Option<PeerId>,
    cand: Option<Candidate>,
) {
    let (old, new) = loc_rib.replace(prefix, source, cand);
    // The first change of a call records what was selected before it; every change, what is
    // selected now.
    match dirty.entry(prefix) {
        std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().1 = new,
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert((old, new));
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

/// What `to` should be sent for `prefix` given the Loc-RIB's selection (RFC 4271 §9.1.3,
/// §5.1): `None` means nothing (withdraw if it was sent).
fn export(
    local_as: u32,
    to: PeerId,
    cfg: &PeerConfig,
    n: &Negotiated,
    prefix: &IpNet,
    best: Option<&Candidate>,
    cache: &mut ExportCache,
) -> Option<Path> {
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
            (Family::Ipv4Unicast, IpAddr::V6(_)) => cfg.next_hop_v4.map(|a| NextHop::new(a.into())),
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
    let next_hop = match best.source {
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
                if best.source != PathSource::Local {
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
