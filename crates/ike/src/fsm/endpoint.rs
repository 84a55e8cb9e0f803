//! The [`Endpoint`]: every IKE SA of the gateway, demultiplexed by our SPI, and the
//! stateless side of IKE_SA_INIT (cookies, half-open limits, RFC 7296 §2.6).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{ConnectionConfig, EndpointConfig};
use super::ctx::Ctx;
use super::event::{ChildSaSignal, ConnId, DownReason, Event, SaInfo, SaState, Stats, Transmit};
use super::ike_sa::{select_for_ke, Action, IkeSa, NATT_PORT};
use super::table::SaTable;
use crate::crypto::auth::cookie;
use crate::crypto::{ct_eq, IkeSuite};
use crate::error::{Error, Unsupported};
use crate::packet::iana::{ExchangeType, NotifyType, PayloadType};
use crate::packet::message::find_payload;
use crate::packet::{
    find_notify, Flags, Header, IkeSpi, Message, MessageBuilder, NotifyPayload, Payload, RawHeader,
};
use crate::proposal::SelectOptions;
use crate::rng::Rng;
use crate::secret::Secret;

#[derive(Debug)]
struct Conn {
    cfg: Arc<ConnectionConfig>,
}

#[derive(Debug)]
struct CookieSecrets {
    current: Secret,
    previous: Option<Secret>,
    version: u32,
    rotated_at: Option<Instant>,
}

/// All IKE SAs of this gateway.
///
/// Sans-IO, as `quinn_proto::Endpoint`: it never reads a clock or touches a socket. After
/// every input (`add_connection`, `initiate`, `terminate`, `remove_connection`,
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout),
/// [`handle_child_event`](Self::handle_child_event)) the caller must, in this order:
///
/// 1. send every datagram from [`poll_transmit`](Self::poll_transmit) until `None`;
/// 2. act on every [`Event`] from [`poll_event`](Self::poll_event) until `None` (install
///    Child SAs before removing the ones they replace);
/// 3. re-arm its timer to [`poll_timeout`](Self::poll_timeout) and call
///    [`handle_timeout`](Self::handle_timeout) when it fires (a time in the past means
///    "now").
#[derive(Debug)]
pub struct Endpoint {
    ctx: Ctx,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u32,
    /// By our SPI.
    sas: SaTable,
    /// Responder SAs by the IKE_SA_INIT request that created them.
    by_init: HashMap<(SocketAddr, IkeSpi), IkeSpi>,
    /// `by_init`'s key of each responder SA, so that removing an SA is O(1), not a scan.
    init_of: HashMap<IkeSpi, (SocketAddr, IkeSpi)>,
    cookie: CookieSecrets,
    /// When we last sent an unprotected error notify of a type to a peer address, for the
    /// rate limit of RFC 7296 §2.21.4.
    unprotected_sent: HashMap<(IpAddr, NotifyType), Instant>,
}

/// At most one unprotected error notify of each type per peer address in this interval
/// (RFC 7296 §2.21.4: "A node needs to limit the rate at which it will send messages in
/// response to unprotected messages"; strongSwan does the same).
const UNPROTECTED_NOTIFY_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on the rate limiter's memory; when full of fresh entries, nothing more is sent.
const UNPROTECTED_NOTIFY_PEERS: usize = 4096;

impl Endpoint {
    /// An endpoint without connections. `rng` supplies SPIs, nonces, key-exchange
    /// private values, IVs, jitter and the cookie secret: use [`crate::SystemRng`].
    pub fn new(config: EndpointConfig, mut rng: Box<dyn Rng + Send>) -> Self {
        let mut secret = vec![0u8; 32];
        // A failed RNG leaves a zero secret: cookies then only stop blind floods.
        let _ = rng.fill(&mut secret);
        Self {
            ctx: Ctx {
                cfg: config,
                rng,
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                stats: Stats::default(),
                child_spis: Default::default(),
                ike_spis: Default::default(),
            },
            conns: BTreeMap::new(),
            next_conn: 0,
            sas: SaTable::default(),
            by_init: HashMap::new(),
            init_of: HashMap::new(),
            unprotected_sent: HashMap::new(),
            cookie: CookieSecrets {
                current: Secret::new(secret),
                previous: None,
                version: 0,
                rotated_at: None,
            },
        }
    }

    /// Adds a connection; initiates at once when `conn.initiate`.
    pub fn add_connection(&mut self, now: Instant, conn: ConnectionConfig) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        let initiate = conn.initiate;
        self.conns.insert(
            id,
            Conn {
                cfg: Arc::new(conn),
            },
        );
        if initiate {
            self.initiate(now, id);
        }
        id
    }

    /// Deletes the connection's SAs (DELETE to the peer, Down events now) and forgets it.
    pub fn remove_connection(&mut self, now: Instant, id: ConnId) {
        self.terminate(now, id);
        self.conns.remove(&id);
    }

    /// Starts IKE_SA_INIT for the connection unless an IKE SA is up or being set up.
    pub fn initiate(&mut self, now: Instant, id: ConnId) {
        let busy = self.sas.values().any(|sa| {
            sa.conn == id
                && matches!(
                    sa.state,
                    SaState::ExpectSaInitResponse
                        | SaState::ExpectAuthResponse
                        | SaState::Established
                )
        });
        if !busy {
            self.start(now, id);
        }
        self.sas.settle();
    }

    fn start(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        match IkeSa::initiate(&mut self.ctx, now, id, conn.cfg.clone()) {
            Ok(sa) => {
                self.sas.insert(sa.local_spi(), sa);
            }
            Err(e) => self.ctx.event(Event::IkeDown {
                conn: id,
                reason: DownReason::Protocol(e.to_string()),
            }),
        }
    }

    /// Deletes the connection's IKE SA(s) and Child SAs: Down events now, DELETE sent.
    pub fn terminate(&mut self, now: Instant, id: ConnId) {
        let spis: Vec<IkeSpi> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == id)
            .map(|(k, _)| *k)
            .collect();
        for spi in spis {
            if let Some(sa) = self.sas.get_mut(&spi) {
                let actions = sa.terminate(&mut self.ctx, now);
                self.apply(now, spi, actions);
            }
        }
        self.sas.settle();
    }

    /// Rekeys the connection's established IKE SA now (RFC 7296 §2.18), as its soft
    /// lifetime would. Extension (for `vpngw sa rekey` and tests).
    pub fn rekey_ike(&mut self, now: Instant, id: ConnId) {
        let spis: Vec<IkeSpi> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == id && sa.state == SaState::Established)
            .map(|(k, _)| *k)
            .collect();
        for spi in spis {
            if let Some(sa) = self.sas.get_mut(&spi) {
                let actions = sa.start_rekey_ike(&mut self.ctx, now);
                self.apply(now, spi, actions);
            }
        }
        self.sas.settle();
    }

    /// A datagram received on UDP 500 or 4500 (for 4500 the caller has already stripped
    /// the 4-byte non-ESP marker; the esp crate's classifier does that).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) {
        self.datagram(now, local, remote, data);
        self.sas.settle();
    }

    fn datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, data: &[u8]) {
        self.ctx.stats.received += 1;
        self.rotate_cookie_secret(now);
        if data == [0xff] {
            return; // NAT-T keepalive
        }
        let Ok(raw) = Header::peek(data) else {
            self.ctx.stats.dropped_malformed += 1;
            return;
        };
        if raw.major_version != Header::MAJOR_VERSION {
            self.ctx.stats.dropped_malformed += 1;
            // RFC 7296 §2.5, §1.5: a request of a higher major version is answered,
            // unprotected, with INVALID_MAJOR_VERSION and our version in the header;
            // responses never (and IKEv1 is not ours to answer).
            if raw.major_version > Header::MAJOR_VERSION && !raw.header.flags.is_response() {
                self.respond_unprotected(
                    now,
                    local,
                    remote,
                    &raw.header,
                    NotifyType::INVALID_MAJOR_VERSION,
                );
            }
            return;
        }
        let hdr = raw.header;
        if hdr.exchange == ExchangeType::IKE_SA_INIT
            && !hdr.flags.is_response()
            && hdr.flags.is_initiator()
            && hdr.spi_r.is_zero()
        {
            self.on_init_request(now, local, remote, data, &raw);
            return;
        }
        let ours = if hdr.flags.is_initiator() {
            hdr.spi_r
        } else {
            hdr.spi_i
        };
        let Some(sa) = self.sas.get_mut(&ours) else {
            self.ctx.stats.dropped_unknown_spi += 1;
            // RFC 7296 §1.5, §2.21.4: an encrypted request (not one starting an IKE SA) for
            // an IKE SA we do not know may get an unprotected INVALID_IKE_SPI, typically
            // because we restarted; responses never.
            let encrypted = matches!(raw.next_payload, PayloadType::SK | PayloadType::SKF);
            if !hdr.flags.is_response() && hdr.exchange != ExchangeType::IKE_SA_INIT && encrypted {
                self.respond_unprotected(now, local, remote, &hdr, NotifyType::INVALID_IKE_SPI);
            }
            return;
        };
        let actions = sa.handle_datagram(&mut self.ctx, now, local, remote, data, &hdr);
        self.apply(now, ours, actions);
    }

    /// Timers: retransmissions, DPD, keepalives, lifetimes, half-open expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sas.settle();
        for spi in self.sas.due(now) {
            if let Some(sa) = self.sas.get_mut(&spi) {
                let actions = sa.handle_timeout(&mut self.ctx, now);
                self.apply(now, spi, actions);
            }
        }
        self.sas.settle();
    }

    /// The data plane reports a child SA's soft/hard byte or packet limit
    /// (`esp::SaEvent`), or that traffic arrived on an inbound SPI (for DPD: recent
    /// inbound ESP counts as liveness, as strongSwan does).
    pub fn handle_child_event(&mut self, now: Instant, spi_in: u32, ev: ChildSaSignal) {
        self.sas.settle();
        let hard = match ev {
            ChildSaSignal::InboundTraffic => {
                self.sas.heard(spi_in, now);
                return;
            }
            ChildSaSignal::SoftLimit => false,
            ChildSaSignal::HardLimit => true,
        };
        let Some(spi) = self.sas.owner_of_child(spi_in) else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.child_limit(&mut self.ctx, now, spi_in, hard);
        self.sas.settle();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ctx.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas.next_timeout()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// Every IKE SA with its Child SAs (for `vpngw sa list`), except closed ones that
    /// only linger to answer retransmissions.
    pub fn sas(&self) -> impl Iterator<Item = SaInfo> + '_ {
        self.sas
            .values()
            .filter(|sa| sa.state != SaState::Closed)
            .map(IkeSa::info)
    }

    /// [`sas`](Self::sas) of one connection: the others' are skipped without building their
    /// [`SaInfo`] (each clones names and child lists; a gateway with 1,000 connections asks
    /// this on every child SA it installs).
    pub fn sas_of(&self, conn: ConnId) -> impl Iterator<Item = SaInfo> + '_ {
        self.sas
            .values()
            .filter(move |sa| sa.conn == conn && sa.state != SaState::Closed)
            .map(IkeSa::info)
    }

    /// See [`crate::fuzzing::forge`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn forge(
        &mut self,
        conn: ConnId,
        exchange: ExchangeType,
        response: bool,
        id: Option<u32>,
        first_inner: PayloadType,
        plain: &[u8],
    ) -> Option<Vec<u8>> {
        let spi = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == conn)
            .max_by_key(|(_, sa)| sa.state == SaState::Established)
            .map(|(k, _)| *k)?;
        let sa = self.sas.get_mut(&spi)?;
        let forged = sa.forge(&mut self.ctx, exchange, response, id, first_inner, plain);
        self.sas.settle();
        forged
    }

    /// See [`crate::fuzzing::open`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn open_for_test(
        &self,
        conn: ConnId,
        datagram: &[u8],
    ) -> Option<Result<crate::crypto::Decrypted, Error>> {
        self.sas
            .values()
            .find(|sa| sa.conn == conn && sa.state == SaState::Established)
            .and_then(|sa| sa.open_for_test(datagram))
    }

    // ---------------------------------------------------------------- internals

    /// Drops the IKE_SA_INIT retransmission entry of a removed SA.
    fn forget_init(&mut self, spi: IkeSpi) {
        if let Some(key) = self.init_of.remove(&spi) {
            self.by_init.remove(&key);
        }
    }

    fn apply(&mut self, now: Instant, spi: IkeSpi, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Remove => {
                    if let Some(mut sa) = self.sas.remove(&spi) {
                        sa.release(&mut self.ctx);
                    }
                    self.forget_init(spi);
                }
                Action::Spawn(new) => {
                    self.sas.insert(new.local_spi(), *new);
                }
                Action::GiveChildren(children, to) => match self.sas.get_mut(&to) {
                    Some(t) => t.adopt_children(children),
                    None => {
                        // The peer's new IKE SA is already gone: the children die here.
                        if let Some(sa) = self.sas.get_mut(&spi) {
                            sa.adopt_children(children);
                            sa.drop_with(&mut self.ctx, DownReason::Timeout);
                        }
                    }
                },
                Action::Restart(conn) => self.start(now, conn),
                Action::InitialContact { mark } => {
                    let Some(conn) = self.sas.get(&spi).map(|s| s.conn) else {
                        continue;
                    };
                    let others: Vec<IkeSpi> = self
                        .sas
                        .iter()
                        .filter(|(k, sa)| **k != spi && sa.conn == conn)
                        .map(|(k, _)| *k)
                        .collect();
                    if others.is_empty() {
                        continue;
                    }
                    let mark = mark.min(self.ctx.events.len());
                    let tail = self.ctx.events.split_off(mark);
                    for o in others {
                        if let Some(mut sa) = self.sas.remove(&o) {
                            sa.drop_with(&mut self.ctx, DownReason::DeletedByPeer);
                            sa.release(&mut self.ctx);
                        }
                        self.forget_init(o);
                    }
                    self.ctx.events.extend(tail);
                }
            }
        }
    }

    fn rotate_cookie_secret(&mut self, now: Instant) {
        match self.cookie.rotated_at {
            None => self.cookie.rotated_at = Some(now),
            Some(t) if now.saturating_duration_since(t) >= self.ctx.cfg.cookie_rotation => {
                let mut fresh = vec![0u8; 32];
                let _ = self.ctx.rng.fill(&mut fresh);
                let old = std::mem::replace(&mut self.cookie.current, Secret::new(fresh));
                self.cookie.previous = Some(old);
                self.cookie.version = self.cookie.version.wrapping_add(1);
                self.cookie.rotated_at = Some(now);
            }
            Some(_) => {}
        }
    }

    fn respond_stateless(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        spi_i: IkeSpi,
        notify: NotifyPayload,
    ) {
        let Ok(bytes) = MessageBuilder::new(
            spi_i,
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            Flags::RESPONSE,
            0,
        )
        .payload(notify)
        .encode() else {
            return;
        };
        self.ctx.transmit(Transmit {
            local,
            remote,
            non_esp_marker: local.port() == NATT_PORT,
            payload: bytes,
        });
    }

    /// Answers a request outside any IKE SA with an unprotected notify (RFC 7296 §1.5):
    /// a response to the source address and port, with the request's SPIs, exchange type
    /// and message ID, the R flag, the I flag as the responder of the request's sender
    /// would set it, major version 2 and no notification data. Rate-limited per peer
    /// address and notify type (§2.21.4); counted.
    fn respond_unprotected(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        request: &Header,
        notify_type: NotifyType,
    ) {
        if !self.unprotected_allowed(now, remote.ip(), notify_type) {
            self.ctx.stats.rate_limited_notifies += 1;
            return;
        }
        let mut flags = Flags::RESPONSE;
        if !request.flags.is_initiator() {
            flags = flags.with(Flags::INITIATOR);
        }
        let Ok(bytes) = MessageBuilder::new(
            request.spi_i,
            request.spi_r,
            request.exchange,
            flags,
            request.message_id,
        )
        .payload(NotifyPayload::new(notify_type, Vec::new()))
        .encode() else {
            return;
        };
        self.ctx.count_error_notify(notify_type);
        self.ctx.transmit(Transmit {
            local,
            remote,
            non_esp_marker: local.port() == NATT_PORT,
            payload: bytes,
        });
    }

    /// The rate limit of [`Self::respond_unprotected`]; records the send when it allows one.
    fn unprotected_allowed(&mut self, now: Instant, ip: IpAddr, t: NotifyType) -> bool {
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < UNPROTECTED_NOTIFY_INTERVAL;
        if self.unprotected_sent.get(&(ip, t)).is_some_and(fresh) {
            return false;
        }
        if self.unprotected_sent.len() >= UNPROTECTED_NOTIFY_PEERS {
            self.unprotected_sent.retain(|_, at| fresh(at));
            if self.unprotected_sent.len() >= UNPROTECTED_NOTIFY_PEERS {
                return false;
            }
        }
        self.unprotected_sent.insert((ip, t), now);
        true
    }

    fn half_open(&self) -> impl Iterator<Item = &IkeSa> {
        self.sas
            .values()
            .filter(|sa| sa.state == SaState::ExpectAuthRequest)
    }

    fn cookie_valid(&self, msg: &Message, ni: &[u8], remote: SocketAddr) -> bool {
        // RFC 7296 §2.6: the COOKIE notify must be the first payload.
        let Some(Payload::Notify(n)) = msg.payloads.first() else {
            return false;
        };
        if n.notify_type != NotifyType::COOKIE {
            return false;
        }
        let Some(version) = n
            .data
            .get(..4)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes)
        else {
            return false;
        };
        let secret = if version == self.cookie.version {
            Some(&self.cookie.current)
        } else if version == self.cookie.version.wrapping_sub(1) {
            self.cookie.previous.as_ref()
        } else {
            None
        };
        secret.is_some_and(|s| {
            let expected = cookie(version, s, ni, remote.ip(), msg.header.spi_i);
            ct_eq(&expected, &n.data)
        })
    }

    fn on_init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
        raw: &RawHeader,
    ) {
        let hdr = raw.header;
        if hdr.message_id != 0 {
            self.ctx.stats.dropped_message_id += 1;
            return;
        }
        // A retransmission of a request we answered: the SA answers from its cache.
        if let Some(&spi) = self.by_init.get(&(remote, hdr.spi_i)) {
            if let Some(sa) = self.sas.get_mut(&spi) {
                let actions = sa.handle_datagram(&mut self.ctx, now, local, remote, data, &hdr);
                self.apply(now, spi, actions);
                return;
            }
        }
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(Error::Unsupported(Unsupported::CriticalPayload { payload_type, .. })) => {
                // RFC 7296 §2.5: the response to a request with an unrecognized critical
                // payload carries UNSUPPORTED_CRITICAL_PAYLOAD with the payload type.
                // Unprotected and stateless, so rate-limited like §2.21.4's answers.
                self.ctx.stats.dropped_malformed += 1;
                let t = NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD;
                if self.unprotected_allowed(now, remote.ip(), t) {
                    self.ctx.count_error_notify(t);
                    self.respond_stateless(
                        local,
                        remote,
                        hdr.spi_i,
                        NotifyPayload::new(t, vec![payload_type.0]),
                    );
                } else {
                    self.ctx.stats.rate_limited_notifies += 1;
                }
                return;
            }
            Err(_) => {
                self.ctx.stats.dropped_malformed += 1;
                return;
            }
        };
        let per_peer = self
            .half_open()
            .filter(|sa| sa.remote.ip() == remote.ip())
            .count();
        if per_peer >= self.ctx.cfg.half_open_per_peer {
            self.ctx.stats.dropped_half_open += 1;
            return;
        }
        let ni = find_payload!(msg.payloads, Payload::Nonce).cloned();
        let Some(ni) = ni else {
            self.ctx.count_error_notify(NotifyType::INVALID_SYNTAX);
            self.respond_stateless(
                local,
                remote,
                hdr.spi_i,
                NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()),
            );
            return;
        };
        if self.half_open().count() >= self.ctx.cfg.cookie_threshold
            && !self.cookie_valid(&msg, ni.as_bytes(), remote)
        {
            if find_notify(&msg.payloads, NotifyType::COOKIE).is_some() {
                self.ctx.stats.dropped_bad_cookie += 1;
            }
            let c = cookie(
                self.cookie.version,
                &self.cookie.current,
                ni.as_bytes(),
                remote.ip(),
                hdr.spi_i,
            );
            self.ctx.stats.cookies_sent += 1;
            self.respond_stateless(local, remote, hdr.spi_i, NotifyPayload::cookie(c));
            return;
        }
        let candidates: Vec<(ConnId, Arc<ConnectionConfig>)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                (c.cfg.remote.ip() == remote.ip() || c.cfg.remote.ip().is_unspecified())
                    && (c.cfg.local.ip() == local.ip() || c.cfg.local.ip().is_unspecified())
            })
            .map(|(id, c)| (*id, c.cfg.clone()))
            .collect();
        let sa_payload = find_payload!(msg.payloads, Payload::Sa);
        let ke = find_payload!(msg.payloads, Payload::Ke);
        let (Some(sa_payload), Some(ke)) = (sa_payload, ke) else {
            self.ctx.count_error_notify(NotifyType::INVALID_SYNTAX);
            self.respond_stateless(
                local,
                remote,
                hdr.spi_i,
                NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()),
            );
            return;
        };
        let mut chosen = None;
        let mut first_failure = None;
        for (i, (_, cfg)) in candidates.iter().enumerate() {
            match select_for_ke(
                sa_payload,
                &cfg.ike_proposals,
                Some(ke.method),
                SelectOptions::default(),
            ) {
                Ok(s) => {
                    chosen = Some((i, s));
                    break;
                }
                Err(npc) => {
                    first_failure.get_or_insert(npc);
                }
            }
        }
        let Some((index, chosen)) = chosen else {
            self.ctx.count_error_notify(NotifyType::NO_PROPOSAL_CHOSEN);
            self.respond_stateless(
                local,
                remote,
                hdr.spi_i,
                NotifyPayload::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
            );
            if let (Some((conn, _)), Some(npc)) = (candidates.first(), first_failure) {
                self.ctx.event(Event::IkeDown {
                    conn: *conn,
                    reason: DownReason::NoProposalChosen {
                        offered: npc.offered,
                        configured: npc.configured,
                    },
                });
            }
            return;
        };
        let Ok(suite) = IkeSuite::from_proposal(&chosen.proposal) else {
            self.respond_stateless(
                local,
                remote,
                hdr.spi_i,
                NotifyPayload::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
            );
            return;
        };
        if suite.ke != ke.method {
            // RFC 7296 §1.2: name the group we want; keep no state.
            self.ctx.count_error_notify(NotifyType::INVALID_KE_PAYLOAD);
            self.respond_stateless(
                local,
                remote,
                hdr.spi_i,
                NotifyPayload::invalid_ke_payload(suite.ke),
            );
            return;
        }
        // The accepting connection first; the others may still match IDi in IKE_AUTH.
        let mut ordered = candidates;
        if index < ordered.len() {
            let c = ordered.remove(index);
            ordered.insert(0, c);
        }
        match IkeSa::respond_init(
            &mut self.ctx,
            now,
            ordered,
            local,
            remote,
            &msg,
            data,
            &chosen,
            ke,
            &ni,
        ) {
            Ok(sa) => {
                let spi = sa.local_spi();
                self.by_init.insert((remote, hdr.spi_i), spi);
                self.init_of.insert(spi, (remote, hdr.spi_i));
                self.sas.insert(spi, sa);
            }
            Err(e) => {
                if let Some(n) = e.notify() {
                    self.ctx.count_error_notify(n.notify_type);
                    self.respond_stateless(local, remote, hdr.spi_i, n.into());
                } else {
                    self.ctx.stats.dropped_malformed += 1;
                }
            }
        }
    }
}
