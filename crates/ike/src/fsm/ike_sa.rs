//! One IKE SA and its Child SAs: the RFC 7296 exchanges, message IDs, retransmission,
//! DPD, rekeying with collision handling, and deletion.
//!
//! States (RFC 7296 §1.2, named as the message awaited):
//!
//! ```text
//! initiator: ExpectSaInitResponse ──> ExpectAuthResponse ──> Established
//! responder: (IKE_SA_INIT answered) ExpectAuthRequest ──> Established
//! Established ──rekeyed (§2.18)──> Rekeyed ──DELETE──> Closed
//! Established ──terminate / hard lifetime──> Deleting ──response──> gone
//! Established ──DELETE from peer──> Closed (answers retransmissions, then gone)
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::config::{ConnectionConfig, DpdAction};
use super::ctx::Ctx;
use super::event::{ChildInfo, ChildSa, ConnId, DownReason, Event, SaInfo, SaState, Transmit};
use super::narrow;
use super::timer::{Timer, TimerTable};
use crate::crypto::auth::{nat_detection_hash, psk_auth, signed_octets, verify_psk_auth};
use crate::crypto::sk::{Opener, Sealer};
use crate::crypto::{ChildSuite, IkeKeys, IkeSuite, KeyExchange, Role, SharedSecret};
use crate::error::{Error, PeerMisbehaved};
use crate::packet::iana::{
    AuthMethod, ExchangeType, KeMethod, NotifyType, ProtocolId, TransformType,
};
use crate::packet::message::find_payload;
use crate::packet::{
    find_notify, AddrRange, AuthPayload, DeletePayload, Flags, Header, IkeSpi, KePayload, Message,
    MessageBuilder, Nonce, NotifyPayload, Payload, SaPayload,
};
use crate::proposal::{select, verify_choice, NoProposalChosen, Proposal, SelectOptions, Selected};

/// The NAT-T port (RFC 3948).
pub(crate) const NATT_PORT: u16 = 4500;
const NONCE_LEN: usize = 32;

/// What the endpoint must do after an IKE SA handled an input.
#[derive(Debug)]
pub(crate) enum Action {
    /// Forget this SA (its events, if any, were emitted).
    Remove,
    /// A new IKE SA from a rekey.
    Spawn(Box<IkeSa>),
    /// Hand these Child SAs to the IKE SA with our SPI `to` (rekey collision).
    GiveChildren(Vec<Child>, IkeSpi),
    /// Initiate the connection again (dpd_action restart).
    Restart(ConnId),
    /// INITIAL_CONTACT: remove the connection's other IKE SAs; their events go before
    /// the event at index `mark`.
    InitialContact { mark: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildState {
    Installed,
    /// A rekey is queued or outstanding.
    Rekeying,
    /// Replaced; the peer (or we) will delete it.
    Rekeyed,
    /// Our DELETE is queued or outstanding.
    Deleting,
}

#[derive(Debug)]
pub(crate) struct Child {
    spi_in: u32,
    spi_out: u32,
    proposal: String,
    ts_local: Vec<AddrRange>,
    ts_remote: Vec<AddrRange>,
    established_at: Instant,
    soft_at: Option<Instant>,
    hard_at: Option<Instant>,
    state: ChildState,
    /// The lowest nonce of the peer's rekey of this child that we answered while our own
    /// rekey of it was outstanding (RFC 7296 §2.8.1 collision).
    peer_rekey: Option<Vec<u8>>,
    /// Reported in ChildDown once our DELETE completes.
    down_reason: DownReason,
}

/// What we do next when the window is free.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Task {
    RekeyChild(u32),
    RekeyIke,
    Dpd,
    DeleteChildren(Vec<u32>),
    DeleteIke,
}

#[derive(Debug)]
struct ChildRequest {
    /// The inbound SPI of the child this rekeys.
    rekey: Option<u32>,
    spi_in: u32,
    nonce: Nonce,
    kx: Option<KeyExchange>,
    proposals: Vec<Proposal>,
    ts_local: Vec<AddrRange>,
    ts_remote: Vec<AddrRange>,
}

#[derive(Debug)]
struct IkeRekeyRequest {
    new_spi: IkeSpi,
    nonce: Nonce,
    kx: KeyExchange,
}

#[derive(Debug)]
enum Request {
    Init,
    Auth {
        spi_in: u32,
        proposals: Vec<Proposal>,
        ts_local: Vec<AddrRange>,
        ts_remote: Vec<AddrRange>,
    },
    CreateChild(Box<ChildRequest>),
    RekeyIke(Box<IkeRekeyRequest>),
    Dpd,
    DeleteChildren,
    DeleteIke,
}

#[derive(Debug)]
struct Outstanding {
    id: u32,
    exchange: ExchangeType,
    bytes: Vec<u8>,
    /// Transmissions so far.
    sent: u32,
    request: Request,
}

/// IKE_SA_INIT material kept for IKE_AUTH (RFC 7296 §2.15 signs both messages).
#[derive(Debug, Default)]
struct InitData {
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// The IKE_SA_INIT message we sent, as sent.
    own: Vec<u8>,
    /// The peer's IKE_SA_INIT message, as received.
    peer: Vec<u8>,
    kx: Option<KeyExchange>,
    cookie: Option<Vec<u8>>,
    /// The group our KE payload uses (changes on INVALID_KE_PAYLOAD).
    group: Option<KeMethod>,
}

/// One IKE SA.
pub(crate) struct IkeSa {
    pub(crate) conn: ConnId,
    pub(crate) cfg: Arc<ConnectionConfig>,
    /// Connections a responder may still switch to when IDi arrives.
    candidates: Vec<(ConnId, Arc<ConnectionConfig>)>,
    pub(crate) role: Role,
    pub(crate) spi_i: IkeSpi,
    pub(crate) spi_r: IkeSpi,
    pub(crate) state: SaState,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// We are behind a NAT (send keepalives).
    nat_local: bool,
    /// The peer is behind a NAT (or fakes it): follow its address.
    nat_remote: bool,
    init: InitData,
    keys: Option<IkeKeys>,
    sealer: Option<Sealer>,
    opener: Option<Opener>,
    proposal: String,
    next_id: u32,
    outstanding: Option<Outstanding>,
    queue: VecDeque<Task>,
    peer_next_id: u32,
    last_response: Option<(u32, Vec<u8>)>,
    pub(crate) children: Vec<Child>,
    timers: TimerTable,
    established_at: Option<Instant>,
    last_heard: Instant,
    /// The peer's colliding IKE rekey: (our SPI of the SA it created, its lowest nonce).
    ike_peer_rekey: Option<(IkeSpi, Vec<u8>)>,
    /// This SA is the connection's current one: its end is reported with IkeDown. False
    /// before establishment, for the redundant SA of a rekey collision, and for an SA
    /// that handed its children to its rekeyed successor.
    live: bool,
    /// The PFS group the peer asked for with INVALID_KE_PAYLOAD (next child rekey).
    pfs_override: Option<KeMethod>,
    /// The group the peer asked for with INVALID_KE_PAYLOAD (next IKE rekey).
    ike_group_override: Option<KeMethod>,
}

impl std::fmt::Debug for IkeSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeSa")
            .field("conn", &self.conn)
            .field("role", &self.role)
            .field("spi_i", &self.spi_i)
            .field("spi_r", &self.spi_r)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

// ---- payload accessors ----

fn first_error(p: &[Payload]) -> Option<&NotifyPayload> {
    p.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type.is_error() => Some(n),
        _ => None,
    })
}
fn spi_u32(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}
fn spi_ike(v: &[u8]) -> Option<IkeSpi> {
    <[u8; 8]>::try_from(v).ok().map(IkeSpi)
}
fn notify_name(n: &NotifyPayload) -> String {
    n.notify_type.to_string()
}
fn lowest(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.min(b).to_vec()
}

/// Responder selection, preferring a choice whose key-exchange method is the one the
/// initiator already sent a KE payload for (saves the INVALID_KE_PAYLOAD round trip).
pub(crate) fn select_for_ke(
    offered: &SaPayload,
    configured: &[Proposal],
    ke: Option<KeMethod>,
    opts: SelectOptions,
) -> Result<Selected, NoProposalChosen> {
    if let Some(m) = ke {
        let mut filtered = offered.clone();
        for p in &mut filtered.proposals {
            p.transforms
                .retain(|t| t.transform_type != TransformType::KE || t.id == m.0);
        }
        if let Ok(s) = select(&filtered, configured, opts) {
            if s.proposal.ke.contains(&m) {
                return Ok(s);
            }
        }
    }
    select(offered, configured, opts)
}

fn group_offered(proposals: &[Proposal], g: KeMethod) -> bool {
    proposals.iter().any(|p| p.ke.contains(&g))
}

fn log_strings(p: &[Proposal]) -> Vec<String> {
    p.iter().map(Proposal::to_log_string).collect()
}

impl IkeSa {
    #[allow(clippy::too_many_arguments)]
    fn blank(
        ctx: &mut Ctx,
        now: Instant,
        conn: ConnId,
        cfg: Arc<ConnectionConfig>,
        role: Role,
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Self {
        let _ = ctx;
        Self {
            conn,
            cfg,
            candidates: Vec::new(),
            role,
            spi_i,
            spi_r,
            state: SaState::ExpectSaInitResponse,
            local,
            remote,
            nat_local: false,
            nat_remote: false,
            init: InitData::default(),
            keys: None,
            sealer: None,
            opener: None,
            proposal: String::new(),
            next_id: 0,
            outstanding: None,
            queue: VecDeque::new(),
            peer_next_id: 0,
            last_response: None,
            children: Vec::new(),
            timers: TimerTable::default(),
            established_at: None,
            last_heard: now,
            ike_peer_rekey: None,
            live: false,
            pfs_override: None,
            ike_group_override: None,
        }
    }

    /// Our SPI: the key the endpoint demultiplexes on.
    pub(crate) fn local_spi(&self) -> IkeSpi {
        match self.role {
            Role::Initiator => self.spi_i,
            Role::Responder => self.spi_r,
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let children = self
            .children
            .iter()
            .flat_map(|c| [c.soft_at, c.hard_at])
            .flatten();
        self.timers.next_timeout().into_iter().chain(children).min()
    }

    /// The inbound SPIs of the installed Child SAs.
    pub(crate) fn child_spis_in(&self) -> impl Iterator<Item = u32> + '_ {
        self.children.iter().map(|c| c.spi_in)
    }

    pub(crate) fn info(&self) -> SaInfo {
        SaInfo {
            conn: self.conn,
            name: self.cfg.name.clone(),
            role: self.role,
            state: self.state,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            local: self.local,
            remote: self.remote,
            proposal: self.proposal.clone(),
            established_at: self.established_at,
            children: self
                .children
                .iter()
                .map(|c| ChildInfo {
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    proposal: c.proposal.clone(),
                    ts_local: c.ts_local.clone(),
                    ts_remote: c.ts_remote.clone(),
                    established_at: c.established_at,
                })
                .collect(),
        }
    }

    // ---------------------------------------------------------------- initiator start

    /// Starts IKE_SA_INIT as the initiator.
    pub(crate) fn initiate(
        ctx: &mut Ctx,
        now: Instant,
        conn: ConnId,
        cfg: Arc<ConnectionConfig>,
    ) -> Result<Self, Error> {
        let spi_i = ctx.new_ike_spi()?;
        let (local, remote) = (cfg.local, cfg.remote);
        let group = cfg
            .ike_proposals
            .first()
            .and_then(|p| p.ke.first())
            .copied()
            .ok_or(crate::ApiMisuse::Other("connection without IKE proposal"))?;
        let mut sa = Self::blank(
            ctx,
            now,
            conn,
            cfg,
            Role::Initiator,
            spi_i,
            IkeSpi::ZERO,
            local,
            remote,
        );
        sa.init.ni = Nonce::random(ctx.rng(), NONCE_LEN)?.as_bytes().to_vec();
        sa.init.group = Some(group);
        if let Err(e) = sa.send_init(ctx, now) {
            ctx.ike_spis.remove(&spi_i);
            return Err(e);
        }
        Ok(sa)
    }

    fn send_init(&mut self, ctx: &mut Ctx, now: Instant) -> Result<(), Error> {
        let group = self.init.group.unwrap_or(KeMethod::CURVE25519);
        let kx = KeyExchange::generate(group, ctx.rng())?;
        let mut b = MessageBuilder::new(
            self.spi_i,
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            Flags::INITIATOR,
            0,
        );
        if let Some(c) = &self.init.cookie {
            // RFC 7296 §2.6: the COOKIE notify is the first payload.
            b.push(NotifyPayload::cookie(c.clone()));
        }
        b.push(Proposal::sa_payload(&self.cfg.ike_proposals, &[]));
        b.push(kx.ke_payload());
        b.push(Nonce::new(self.init.ni.clone())?);
        b.push(NotifyPayload::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            nat_detection_hash(self.spi_i, IkeSpi::ZERO, self.local.ip(), self.local.port())
                .to_vec(),
        ));
        b.push(NotifyPayload::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            nat_detection_hash(
                self.spi_i,
                IkeSpi::ZERO,
                self.remote.ip(),
                self.remote.port(),
            )
            .to_vec(),
        ));
        let bytes = b.encode()?;
        self.init.kx = Some(kx);
        self.init.own = bytes.clone();
        self.state = SaState::ExpectSaInitResponse;
        self.start_request(ctx, now, ExchangeType::IKE_SA_INIT, 0, bytes, Request::Init);
        Ok(())
    }

    // ---------------------------------------------------------------- responder start

    /// Creates the half-open responder SA for an acceptable IKE_SA_INIT request and
    /// sends the response. The endpoint has checked cookie, limits and KE group.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn respond_init(
        ctx: &mut Ctx,
        now: Instant,
        candidates: Vec<(ConnId, Arc<ConnectionConfig>)>,
        local: SocketAddr,
        remote: SocketAddr,
        request: &Message,
        raw: &[u8],
        chosen: &Selected,
        peer_ke: &KePayload,
        ni: &Nonce,
    ) -> Result<Self, Error> {
        let (conn, cfg) = candidates
            .first()
            .cloned()
            .ok_or(crate::ApiMisuse::Other("no candidate connection"))?;
        let suite = IkeSuite::from_proposal(&chosen.proposal)?;
        let spi_i = request.header.spi_i;
        let spi_r = ctx.new_ike_spi()?;
        let mut sa = Self::blank(
            ctx,
            now,
            conn,
            cfg,
            Role::Responder,
            spi_i,
            spi_r,
            local,
            remote,
        );
        sa.candidates = candidates;
        let result = (|| {
            let kx = KeyExchange::generate(suite.ke, ctx.rng())?;
            let ke_payload = kx.ke_payload();
            let shared = kx.agree(peer_ke)?;
            let nr = Nonce::random(ctx.rng(), NONCE_LEN)?;
            sa.detect_nat(&request.payloads, IkeSpi::ZERO);
            let response =
                MessageBuilder::new(spi_i, spi_r, ExchangeType::IKE_SA_INIT, Flags::RESPONSE, 0)
                    .payload(chosen.response(Vec::new()))
                    .payload(ke_payload)
                    .payload(nr.clone())
                    .payload(NotifyPayload::new(
                        NotifyType::NAT_DETECTION_SOURCE_IP,
                        nat_detection_hash(spi_i, spi_r, local.ip(), local.port()).to_vec(),
                    ))
                    .payload(NotifyPayload::new(
                        NotifyType::NAT_DETECTION_DESTINATION_IP,
                        nat_detection_hash(spi_i, spi_r, remote.ip(), remote.port()).to_vec(),
                    ))
                    .encode()?;
            let keys = IkeKeys::derive(suite, &shared, ni.as_bytes(), nr.as_bytes(), spi_i, spi_r)?;
            let (sealer, opener) = keys.sk_crypto(Role::Responder)?;
            sa.init.ni = ni.as_bytes().to_vec();
            sa.init.nr = nr.as_bytes().to_vec();
            sa.init.peer = raw.to_vec();
            sa.init.own = response.clone();
            sa.keys = Some(keys);
            sa.sealer = Some(sealer);
            sa.opener = Some(opener);
            sa.proposal = chosen.proposal.to_log_string();
            Ok::<_, Error>(response)
        })();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                ctx.ike_spis.remove(&spi_r);
                return Err(e);
            }
        };
        sa.state = SaState::ExpectAuthRequest;
        sa.peer_next_id = 1;
        sa.last_response = Some((0, response.clone()));
        sa.timers
            .set(Timer::Linger, now + ctx.cfg.half_open_timeout);
        ctx.transmit(Transmit {
            local,
            remote,
            non_esp_marker: local.port() == NATT_PORT,
            payload: response,
        });
        Ok(sa)
    }

    /// Compares the NAT_DETECTION_* notifies of an IKE_SA_INIT message with what we see
    /// (RFC 7296 §2.23). `spi_r` as in the message (zero in the request).
    fn detect_nat(&mut self, payloads: &[Payload], spi_r: IkeSpi) {
        let src = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Notify(n) if n.notify_type == NotifyType::NAT_DETECTION_SOURCE_IP => {
                    Some(n.data.as_slice())
                }
                _ => None,
            })
            .collect::<Vec<_>>();
        let dst = find_notify(payloads, NotifyType::NAT_DETECTION_DESTINATION_IP);
        if src.is_empty() && dst.is_none() {
            return; // the peer does not support NAT-T
        }
        let expect_src =
            nat_detection_hash(self.spi_i, spi_r, self.remote.ip(), self.remote.port());
        let expect_dst = nat_detection_hash(self.spi_i, spi_r, self.local.ip(), self.local.port());
        self.nat_remote = !src.contains(&expect_src.as_slice());
        self.nat_local = dst.is_some_and(|d| d.data != expect_dst.as_slice());
    }

    fn nat(&self) -> bool {
        self.nat_local || self.nat_remote
    }

    // ---------------------------------------------------------------- sending

    fn flags(&self, response: bool) -> Flags {
        let mut f = if self.role == Role::Initiator {
            Flags::INITIATOR
        } else {
            Flags::default()
        };
        if response {
            f = f.with(Flags::RESPONSE);
        }
        f
    }

    fn seal(
        &mut self,
        ctx: &mut Ctx,
        exchange: ExchangeType,
        id: u32,
        response: bool,
        payloads: Vec<Payload>,
    ) -> Result<Vec<u8>, Error> {
        let flags = self.flags(response);
        let mut b = MessageBuilder::new(self.spi_i, self.spi_r, exchange, flags, id);
        for p in payloads {
            b.push(p);
        }
        let sealer = self
            .sealer
            .as_mut()
            .ok_or(crate::ApiMisuse::Other("no keys yet"))?;
        b.seal(sealer, ctx.rng())
    }

    fn start_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        exchange: ExchangeType,
        id: u32,
        bytes: Vec<u8>,
        request: Request,
    ) {
        ctx.transmit(Transmit {
            local: self.local,
            remote: self.remote,
            non_esp_marker: self.local.port() == NATT_PORT,
            payload: bytes.clone(),
        });
        self.timers
            .set(Timer::Retransmit, now + ctx.cfg.retransmit.delay(0));
        self.outstanding = Some(Outstanding {
            id,
            exchange,
            bytes,
            sent: 1,
            request,
        });
    }

    /// Seals and sends a new request with the next message ID.
    fn send_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        exchange: ExchangeType,
        payloads: Vec<Payload>,
        request: Request,
    ) -> Result<(), Error> {
        let id = self.next_id;
        let bytes = self.seal(ctx, exchange, id, false, payloads)?;
        self.next_id = self.next_id.wrapping_add(1);
        self.start_request(ctx, now, exchange, id, bytes, request);
        Ok(())
    }

    /// Seals, caches and sends the response to request `id`.
    fn respond(
        &mut self,
        ctx: &mut Ctx,
        exchange: ExchangeType,
        id: u32,
        payloads: Vec<Payload>,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        match self.seal(ctx, exchange, id, true, payloads) {
            Ok(bytes) => {
                ctx.transmit(Transmit {
                    local,
                    remote,
                    non_esp_marker: local.port() == NATT_PORT,
                    payload: bytes.clone(),
                });
                self.last_response = Some((id, bytes));
            }
            Err(_) => {
                // Only a crypto-library failure gets here; the request still counts as
                // processed so the window moves on.
                self.last_response = None;
            }
        }
        self.peer_next_id = id.wrapping_add(1);
    }

    fn respond_error(
        &mut self,
        ctx: &mut Ctx,
        exchange: ExchangeType,
        id: u32,
        n: NotifyPayload,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        ctx.count_error_notify(n.notify_type);
        self.respond(ctx, exchange, id, vec![Payload::Notify(n)], local, remote);
    }

    /// See [`crate::fuzzing::forge`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn forge(
        &mut self,
        ctx: &mut Ctx,
        exchange: ExchangeType,
        response: bool,
        id: Option<u32>,
        first_inner: crate::packet::iana::PayloadType,
        plain: &[u8],
    ) -> Option<Vec<u8>> {
        use crate::crypto::sk::IvChoice;
        let id = match id {
            Some(id) => id,
            None if response => return None,
            None => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                id
            }
        };
        let header = Header::new(self.spi_i, self.spi_r, exchange, self.flags(response), id);
        let sealer = self.sealer.as_mut()?;
        sealer
            .seal_plaintext(
                &header,
                &[],
                first_inner,
                plain,
                IvChoice::Default(ctx.rng()),
            )
            .ok()
    }

    /// See [`crate::fuzzing::open`].
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn open_for_test(
        &self,
        datagram: &[u8],
    ) -> Option<Result<crate::crypto::Decrypted, Error>> {
        self.opener.as_ref().map(|o| o.open(datagram))
    }

    // ---------------------------------------------------------------- inputs

    /// A datagram for this SA (demultiplexed by our SPI).
    pub(crate) fn handle_datagram(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
        hdr: &Header,
    ) -> Vec<Action> {
        let peer_is_initiator = self.role == Role::Responder;
        if hdr.flags.is_initiator() != peer_is_initiator {
            ctx.stats.dropped_unexpected += 1;
            return Vec::new();
        }
        if hdr.exchange == ExchangeType::IKE_SA_INIT {
            return self.handle_init_message(ctx, now, local, remote, data, hdr);
        }
        let Some(opener) = &self.opener else {
            ctx.stats.dropped_unexpected += 1;
            return Vec::new();
        };
        let decrypted = match opener.open_authenticated(data) {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return self.handle_malformed(ctx, now, local, remote, hdr, &e),
            Err(Error::PeerMisbehaved(PeerMisbehaved::IntegrityCheckFailed)) => {
                ctx.stats.dropped_integrity += 1;
                return Vec::new();
            }
            Err(_) => {
                ctx.stats.dropped_malformed += 1;
                return Vec::new();
            }
        };
        let payloads = decrypted.payloads;
        if hdr.flags.is_response() {
            let matches = self
                .outstanding
                .as_ref()
                .is_some_and(|o| o.id == hdr.message_id && o.exchange == hdr.exchange);
            if !matches {
                ctx.stats.dropped_message_id += 1;
                return Vec::new();
            }
            let Some(o) = self.outstanding.take() else {
                return Vec::new();
            };
            self.timers.stop(Timer::Retransmit);
            self.heard(ctx, now, local, remote);
            let mut actions = self.handle_response(ctx, now, o, &payloads);
            if !actions.iter().any(|a| matches!(a, Action::Remove)) {
                actions.extend(self.pump(ctx, now));
            }
            actions
        } else {
            if let Some((id, bytes)) = &self.last_response {
                if *id == hdr.message_id {
                    ctx.stats.cached_responses += 1;
                    let payload = bytes.clone();
                    ctx.transmit(Transmit {
                        local,
                        remote,
                        non_esp_marker: local.port() == NATT_PORT,
                        payload,
                    });
                    return Vec::new();
                }
            }
            if hdr.message_id != self.peer_next_id {
                ctx.stats.dropped_message_id += 1;
                return Vec::new();
            }
            self.heard(ctx, now, local, remote);
            let mut actions = self.handle_request(ctx, now, local, remote, hdr, &payloads);
            if !actions.iter().any(|a| matches!(a, Action::Remove)) {
                actions.extend(self.pump(ctx, now));
            }
            actions
        }
    }

    /// An ICV-valid message whose payloads did not parse: the peer holding the keys sent
    /// it, so it is not silently dropped as a forgery would be (RFC 7296 §2.21).
    ///
    /// - A request is rejected in its entirety and answered with only
    ///   UNSUPPORTED_CRITICAL_PAYLOAD (§2.5) or INVALID_SYNTAX (§2.21.2, and §3.10.1: the
    ///   answer to any error without a status type of its own), in a protected response
    ///   that consumes the message ID and is cached like any other (§2.1). In IKE_AUTH the
    ///   authentication payloads are not looked at (§2.21.2) and the half-open SA is closed;
    ///   an established SA stays up: §2.21.3 only requires the answer.
    /// - A response is never answered (§2.21: only a new request could carry an error);
    ///   the exchange fails ([`Self::on_malformed_response`]).
    fn handle_malformed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        hdr: &Header,
        e: &Error,
    ) -> Vec<Action> {
        if hdr.flags.is_response() {
            let matches = self
                .outstanding
                .as_ref()
                .is_some_and(|o| o.id == hdr.message_id && o.exchange == hdr.exchange);
            let Some(o) = self.outstanding.take_if(|_| matches) else {
                ctx.stats.dropped_message_id += 1;
                return Vec::new();
            };
            ctx.stats.malformed_responses += 1;
            self.timers.stop(Timer::Retransmit);
            self.heard(ctx, now, local, remote);
            let mut actions = self.on_malformed_response(ctx, now, o);
            if !actions.iter().any(|a| matches!(a, Action::Remove)) {
                actions.extend(self.pump(ctx, now));
            }
            return actions;
        }
        if let Some((id, bytes)) = &self.last_response {
            if *id == hdr.message_id {
                // A retransmission of the bad request: the same answer (§2.1).
                ctx.stats.cached_responses += 1;
                let payload = bytes.clone();
                ctx.transmit(Transmit {
                    local,
                    remote,
                    non_esp_marker: local.port() == NATT_PORT,
                    payload,
                });
                return Vec::new();
            }
        }
        if hdr.message_id != self.peer_next_id {
            ctx.stats.dropped_message_id += 1;
            return Vec::new();
        }
        if self.state == SaState::ExpectAuthResponse {
            // We are the initiator of a half-open SA: the peer has no request to make yet
            // (strongSwan ignores these too).
            ctx.stats.dropped_unexpected += 1;
            return Vec::new();
        }
        self.heard(ctx, now, local, remote);
        let n = match e.notify() {
            Some(n) if n.notify_type == NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => n.into(),
            _ => NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()),
        };
        let name = notify_name(&n);
        self.respond_error(ctx, hdr.exchange, hdr.message_id, n, local, remote);
        if self.state == SaState::ExpectAuthRequest {
            // §2.21.2: IKE_AUTH failed; the IKE SA never comes up.
            return self.close(ctx, now, Some(DownReason::Protocol(name)));
        }
        self.pump(ctx, now)
    }

    /// Our request got an authenticated response whose payloads did not parse. It is not
    /// answered (RFC 7296 §2.21). What the peer did is unknown, so:
    ///
    /// - IKE_AUTH: establishment fails; the DELETE that follows is the separate
    ///   INFORMATIONAL exchange §2.21.2 allows an initiator after an error in a response;
    /// - CREATE_CHILD_SA: the peer may have installed a Child SA or a new IKE SA we cannot
    ///   name, i.e. the peers no longer share state, and §2.21.3 advises deleting the IKE SA
    ///   to clean up and start over;
    /// - DPD: the peer is alive (the message authenticated); nothing else changes;
    /// - DELETE: done as if the response had been empty (the peer deleted its side).
    fn on_malformed_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        o: Outstanding,
    ) -> Vec<Action> {
        let exchange = o.exchange;
        match o.request {
            Request::Dpd | Request::Init => Vec::new(),
            Request::DeleteChildren | Request::DeleteIke => self.handle_response(ctx, now, o, &[]),
            Request::Auth { spi_in, .. } => {
                ctx.child_spis.remove(&spi_in);
                ctx.event(Event::IkeDown {
                    conn: self.conn,
                    reason: DownReason::Protocol(format!("malformed {exchange} response")),
                });
                self.delete_quietly(ctx, now)
            }
            Request::CreateChild(r) => {
                ctx.child_spis.remove(&r.spi_in);
                self.drop_diverged(ctx, now, exchange)
            }
            Request::RekeyIke(r) => {
                ctx.ike_spis.remove(&r.new_spi);
                self.drop_diverged(ctx, now, exchange)
            }
        }
    }

    /// Reports the SA down and deletes it (RFC 7296 §2.21.3: state no longer shared).
    fn drop_diverged(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        exchange: ExchangeType,
    ) -> Vec<Action> {
        if self.state != SaState::Established {
            // Rekeyed or Deleting: it is going away already.
            return Vec::new();
        }
        self.report_down(
            ctx,
            DownReason::Protocol(format!("malformed {exchange} response")),
        );
        self.delete_quietly(ctx, now)
    }

    /// An authenticated message arrived: liveness, and NAT-T address updates (§2.23).
    fn heard(&mut self, ctx: &mut Ctx, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.last_heard = now;
        if self.state == SaState::ExpectAuthRequest {
            // The initiator floats to 4500 with IKE_AUTH.
            self.local = local;
            self.remote = remote;
            return;
        }
        if self.state == SaState::Established && remote != self.remote && self.nat() {
            self.remote = remote;
            self.local = local;
            ctx.event(Event::PeerMoved {
                conn: self.conn,
                remote,
            });
        }
    }

    /// Data-plane liveness (ESP arrived on one of our children).
    pub(crate) fn inbound_traffic(&mut self, now: Instant) {
        self.last_heard = now;
    }

    // ---------------------------------------------------------------- IKE_SA_INIT

    fn handle_init_message(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
        hdr: &Header,
    ) -> Vec<Action> {
        if !hdr.flags.is_response() {
            // A retransmitted IKE_SA_INIT request: answer from the cache.
            if let (0, Some((0, bytes))) = (hdr.message_id, &self.last_response) {
                ctx.stats.cached_responses += 1;
                let payload = bytes.clone();
                ctx.transmit(Transmit {
                    local,
                    remote,
                    non_esp_marker: local.port() == NATT_PORT,
                    payload,
                });
            } else {
                ctx.stats.dropped_unexpected += 1;
            }
            return Vec::new();
        }
        if self.state != SaState::ExpectSaInitResponse || hdr.message_id != 0 {
            ctx.stats.dropped_message_id += 1;
            return Vec::new();
        }
        let Ok(msg) = Message::decode(data) else {
            ctx.stats.dropped_malformed += 1;
            return Vec::new();
        };
        // Error and COOKIE responses are unauthenticated: act on them, as RFC 7296 §2.6
        // and §1.2 say, but an attacker could forge them (strongSwan behaves the same).
        if let Some(c) = msg.notify(NotifyType::COOKIE) {
            if c.data.is_empty() || c.data.len() > 64 || self.init.cookie.as_ref() == Some(&c.data)
            {
                ctx.stats.dropped_unexpected += 1;
                return Vec::new();
            }
            self.init.cookie = Some(c.data.clone());
            self.timers.stop(Timer::Retransmit);
            self.outstanding = None;
            return self.retry_init(ctx, now);
        }
        if let Some(n) = msg.notify(NotifyType::INVALID_KE_PAYLOAD) {
            match n.accepted_ke_method() {
                Some(g)
                    if group_offered(&self.cfg.ike_proposals, g) && Some(g) != self.init.group =>
                {
                    self.init.group = Some(g);
                    self.init.cookie = None;
                    self.timers.stop(Timer::Retransmit);
                    self.outstanding = None;
                    return self.retry_init(ctx, now);
                }
                _ => {
                    return self.fail_establishment(
                        ctx,
                        DownReason::Protocol("INVALID_KE_PAYLOAD".into()),
                    );
                }
            }
        }
        if msg.notify(NotifyType::NO_PROPOSAL_CHOSEN).is_some() {
            let offered = log_strings(&self.cfg.ike_proposals);
            return self.fail_establishment(
                ctx,
                DownReason::NoProposalChosen {
                    offered,
                    configured: Vec::new(),
                },
            );
        }
        if let Some(n) = first_error(&msg.payloads) {
            let reason = DownReason::Protocol(notify_name(n));
            return self.fail_establishment(ctx, reason);
        }
        match self.complete_init(ctx, now, &msg, data) {
            Ok(()) => Vec::new(),
            Err(_) => {
                // A broken response: keep waiting; a genuine one may still come, and
                // the retransmission schedule bounds the wait.
                ctx.stats.dropped_malformed += 1;
                Vec::new()
            }
        }
    }

    fn retry_init(&mut self, ctx: &mut Ctx, now: Instant) -> Vec<Action> {
        match self.send_init(ctx, now) {
            Ok(()) => Vec::new(),
            Err(_) => self.fail_establishment(ctx, DownReason::Protocol("internal".into())),
        }
    }

    fn complete_init(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        raw: &[u8],
    ) -> Result<(), Error> {
        let bad = |w| Error::from(PeerMisbehaved::BadProposal(w));
        let spi_r = msg.header.spi_r;
        if spi_r.is_zero() {
            return Err(bad("zero responder SPI"));
        }
        let sa = find_payload!(&msg.payloads, Payload::Sa).ok_or(bad("no SA"))?;
        let chosen = verify_choice(&self.cfg.ike_proposals, sa, SelectOptions::default())?;
        let suite = IkeSuite::from_proposal(&chosen.proposal)?;
        let ke = find_payload!(&msg.payloads, Payload::Ke).ok_or(bad("no KE"))?;
        let nr = find_payload!(&msg.payloads, Payload::Nonce).ok_or(bad("no nonce"))?;
        if Some(suite.ke) != self.init.group || ke.method != suite.ke {
            return Err(bad("KE group differs"));
        }
        let kx = self.init.kx.take().ok_or(bad("no key exchange"))?;
        // `agree` consumes the private value; keep a copy of the public one on failure.
        let shared = match kx.agree(ke) {
            Ok(s) => s,
            Err(e) => {
                return Err(e);
            }
        };
        let keys = IkeKeys::derive(
            suite,
            &shared,
            &self.init.ni,
            nr.as_bytes(),
            self.spi_i,
            spi_r,
        )?;
        let (sealer, opener) = keys.sk_crypto(Role::Initiator)?;
        self.spi_r = spi_r;
        self.init.nr = nr.as_bytes().to_vec();
        self.init.peer = raw.to_vec();
        self.keys = Some(keys);
        self.sealer = Some(sealer);
        self.opener = Some(opener);
        self.proposal = chosen.proposal.to_log_string();
        self.detect_nat(&msg.payloads, spi_r);
        if self.nat() && self.local.port() != NATT_PORT {
            // RFC 7296 §2.23: move to port 4500 from IKE_AUTH on.
            self.local.set_port(NATT_PORT);
            self.remote.set_port(NATT_PORT);
        }
        self.timers.stop(Timer::Retransmit);
        self.outstanding = None;
        self.send_auth(ctx, now)
    }

    fn fail_establishment(&mut self, ctx: &mut Ctx, reason: DownReason) -> Vec<Action> {
        let restart = reason == DownReason::Timeout && self.cfg.dpd_action == DpdAction::Restart;
        ctx.event(Event::IkeDown {
            conn: self.conn,
            reason,
        });
        self.timers.stop_all();
        let mut a = vec![Action::Remove];
        if restart {
            a.push(Action::Restart(self.conn));
        }
        a
    }

    // ---------------------------------------------------------------- IKE_AUTH

    fn send_auth(&mut self, ctx: &mut Ctx, now: Instant) -> Result<(), Error> {
        let keys = self
            .keys
            .as_ref()
            .ok_or(crate::ApiMisuse::Other("no keys"))?;
        let prf = keys.suite().prf;
        let octets = signed_octets(
            prf,
            &self.init.own,
            &self.init.nr,
            keys.sk_p(Role::Initiator),
            &self.cfg.local_id,
        );
        let auth = psk_auth(prf, &self.cfg.psk, &octets);
        let spi_in = ctx.new_child_spi()?;
        let (ts_local, ts_remote) = self.cfg.ts.ranges();
        // The Child SA of IKE_AUTH has no KE of its own (RFC 7296 §1.2): strip PFS
        // groups, as strongSwan does.
        let proposals: Vec<Proposal> = self
            .cfg
            .esp_proposals
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p.ke.clear();
                p
            })
            .collect();
        let payloads = vec![
            Payload::IdI(self.cfg.local_id.clone()),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: auth.expose().to_vec(),
            }),
            Payload::Notify(NotifyPayload::new(NotifyType::INITIAL_CONTACT, Vec::new())),
            Payload::Sa(Proposal::sa_payload(&proposals, &spi_in.to_be_bytes())),
            Payload::TsI(narrow::payload(&ts_local)),
            Payload::TsR(narrow::payload(&ts_remote)),
        ];
        self.state = SaState::ExpectAuthResponse;
        self.next_id = 1;
        let r = self.send_request(
            ctx,
            now,
            ExchangeType::IKE_AUTH,
            payloads,
            Request::Auth {
                spi_in,
                proposals,
                ts_local,
                ts_remote,
            },
        );
        if r.is_err() {
            ctx.child_spis.remove(&spi_in);
        }
        r
    }

    fn handle_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        hdr: &Header,
        payloads: &[Payload],
    ) -> Vec<Action> {
        let id = hdr.message_id;
        match (self.state, hdr.exchange) {
            (SaState::ExpectAuthRequest, ExchangeType::IKE_AUTH) => {
                self.on_auth_request(ctx, now, local, remote, id, payloads)
            }
            (SaState::Closed, ExchangeType::INFORMATIONAL) => {
                // Acknowledge (typically the peer's DELETE) without further action.
                self.respond(ctx, hdr.exchange, id, Vec::new(), local, remote);
                Vec::new()
            }
            (
                SaState::Established | SaState::Rekeyed | SaState::Deleting,
                ExchangeType::INFORMATIONAL,
            ) => self.on_informational(ctx, now, local, remote, id, payloads),
            (SaState::Established, ExchangeType::CREATE_CHILD_SA) => {
                self.on_create_child(ctx, now, local, remote, id, payloads)
            }
            (SaState::Rekeyed | SaState::Deleting, ExchangeType::CREATE_CHILD_SA) => {
                self.respond_error(
                    ctx,
                    hdr.exchange,
                    id,
                    NotifyPayload::new(NotifyType::TEMPORARY_FAILURE, Vec::new()),
                    local,
                    remote,
                );
                Vec::new()
            }
            (SaState::Established | SaState::Rekeyed | SaState::Deleting, _) => {
                // RFC 7296 §2.21.3: after authentication every request with an error gets
                // an answer; an exchange not valid here (IKE_AUTH again, an unknown type)
                // is such an error, and INVALID_SYNTAX is the catch-all (§3.10.1).
                self.respond_error(
                    ctx,
                    hdr.exchange,
                    id,
                    NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()),
                    local,
                    remote,
                );
                Vec::new()
            }
            _ => {
                ctx.stats.dropped_unexpected += 1;
                Vec::new()
            }
        }
    }

    fn on_auth_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        id: u32,
        payloads: &[Payload],
    ) -> Vec<Action> {
        let exch = ExchangeType::IKE_AUTH;
        let idi = find_payload!(payloads, Payload::IdI);
        let idr = find_payload!(payloads, Payload::IdR);
        let (Some(idi), Some(auth)) = (idi, find_payload!(payloads, Payload::Auth)) else {
            self.respond_error(
                ctx,
                exch,
                id,
                NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()),
                local,
                remote,
            );
            return self.close(
                ctx,
                now,
                Some(DownReason::Protocol("INVALID_SYNTAX".into())),
            );
        };
        // Pick the connection by the proven identity (among those matching the address).
        if let Some((conn, cfg)) = self
            .candidates
            .iter()
            .find(|(_, c)| c.remote_id == *idi && idr.is_none_or(|r| *r == c.local_id))
            .cloned()
        {
            self.conn = conn;
            self.cfg = cfg;
        }
        let Some(keys) = self.keys.as_ref() else {
            return Vec::new();
        };
        let prf = keys.suite().prf;
        let id_ok = self.cfg.remote_id == *idi && idr.is_none_or(|r| *r == self.cfg.local_id);
        let octets = signed_octets(
            prf,
            &self.init.peer,
            &self.init.nr,
            keys.sk_p(Role::Initiator),
            idi,
        );
        let auth_ok = auth.method == AuthMethod::SHARED_KEY_MIC
            && verify_psk_auth(prf, &self.cfg.psk, &octets, &auth.data).is_ok();
        if !(id_ok && auth_ok) {
            self.respond_error(
                ctx,
                exch,
                id,
                NotifyPayload::new(NotifyType::AUTHENTICATION_FAILED, Vec::new()),
                local,
                remote,
            );
            return self.close(ctx, now, Some(DownReason::AuthFailed));
        }
        let own_octets = signed_octets(
            prf,
            &self.init.own,
            &self.init.ni,
            keys.sk_p(Role::Responder),
            &self.cfg.local_id,
        );
        let own_auth = psk_auth(prf, &self.cfg.psk, &own_octets);
        let mut out = vec![
            Payload::IdR(self.cfg.local_id.clone()),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: own_auth.expose().to_vec(),
            }),
        ];
        let mut actions = Vec::new();
        if find_notify(payloads, NotifyType::INITIAL_CONTACT).is_some() {
            actions.push(Action::InitialContact {
                mark: ctx.events.len(),
            });
        }
        let (ni, nr) = (self.init.ni.clone(), self.init.nr.clone());
        match self.accept_child(ctx, now, payloads, &ni, &nr, None, true) {
            Ok((child_payloads, child)) => {
                out.extend(child_payloads);
                self.respond(ctx, exch, id, out, local, remote);
                self.establish(ctx, now);
                self.install(ctx, child, None);
                actions
            }
            Err((notify, reason)) => {
                ctx.count_error_notify(notify.notify_type);
                out.push(Payload::Notify(notify));
                self.respond(ctx, exch, id, out, local, remote);
                // The IKE SA is useless without its Child SA: report and let it go (the
                // initiator deletes it; we still acknowledge that DELETE).
                actions.extend(self.close(ctx, now, Some(reason)));
                actions
            }
        }
    }

    /// Enters Established: timers for DPD, keepalives and the IKE lifetime.
    fn establish(&mut self, ctx: &mut Ctx, now: Instant) {
        self.state = SaState::Established;
        self.live = true;
        self.established_at = Some(now);
        self.last_heard = now;
        self.timers.stop(Timer::Linger);
        self.start_lifetime_timers(ctx, now);
        ctx.event(Event::IkeUp {
            conn: self.conn,
            name: self.cfg.name.clone(),
            local: self.local,
            remote: self.remote,
            proposal: self.proposal.clone(),
        });
    }

    fn start_lifetime_timers(&mut self, ctx: &mut Ctx, now: Instant) {
        if let Some(i) = self.cfg.dpd_interval {
            self.timers.set(Timer::Dpd, now + i);
        }
        if self.nat_local {
            self.timers
                .set(Timer::Keepalive, now + ctx.cfg.keepalive_interval);
        }
        let life = self.cfg.ike_lifetime;
        if !life.is_zero() {
            self.timers.set(Timer::Expire, now + life);
            let jitter = ctx.jitter(self.cfg.rand_jitter);
            if let Some(soft) = life
                .checked_sub(self.cfg.rekey_margin + jitter)
                .filter(|d| !d.is_zero())
            {
                self.timers.set(Timer::Rekey, now + soft);
            }
        }
    }

    /// Responder side of a Child SA negotiation (IKE_AUTH or CREATE_CHILD_SA): selects a
    /// proposal, narrows the selectors, derives keys. Returns the response payloads (SA,
    /// [Nr, KEr,] TSi, TSr) and the child, or the error notify with the reason to log.
    #[allow(
        clippy::too_many_arguments,
        clippy::type_complexity,
        clippy::result_large_err
    )]
    fn accept_child(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        payloads: &[Payload],
        ni: &[u8],
        nr_in: &[u8],
        pfs_ke: Option<(&Option<KePayload>, &mut Option<KePayload>)>,
        in_auth: bool,
    ) -> Result<(Vec<Payload>, NewChild), (NotifyPayload, DownReason)> {
        let simple = |t| NotifyPayload::new(t, Vec::new());
        let syntax = || {
            (
                simple(NotifyType::INVALID_SYNTAX),
                DownReason::Protocol("INVALID_SYNTAX".into()),
            )
        };
        let (Some(sa), Some(tsi), Some(tsr)) = (
            find_payload!(payloads, Payload::Sa),
            find_payload!(payloads, Payload::TsI),
            find_payload!(payloads, Payload::TsR),
        ) else {
            return Err(syntax());
        };
        let peer_ke_method = pfs_ke
            .as_ref()
            .and_then(|(k, _)| k.as_ref().map(|k| k.method));
        let chosen = match select_for_ke(
            sa,
            &self.cfg.esp_proposals,
            peer_ke_method,
            SelectOptions { skip_ke: in_auth },
        ) {
            Ok(c) => c,
            Err(npc) => {
                return Err((
                    simple(NotifyType::NO_PROPOSAL_CHOSEN),
                    DownReason::NoProposalChosen {
                        offered: npc.offered,
                        configured: npc.configured,
                    },
                ))
            }
        };
        let Ok(suite) = ChildSuite::from_proposal(&chosen.proposal) else {
            return Err((
                simple(NotifyType::NO_PROPOSAL_CHOSEN),
                DownReason::Protocol("unsupported ESP transform".into()),
            ));
        };
        let Some(spi_out) = spi_u32(&chosen.spi) else {
            return Err(syntax());
        };
        let (cfg_local, cfg_remote) = self.cfg.ts.ranges();
        let (offered_i, offered_r) = (narrow::ranges(tsi), narrow::ranges(tsr));
        let ts_remote = narrow::narrow(&offered_i, &cfg_remote);
        let ts_local = narrow::narrow(&offered_r, &cfg_local);
        if ts_remote.is_empty() || ts_local.is_empty() {
            return Err((
                simple(NotifyType::TS_UNACCEPTABLE),
                DownReason::TsUnacceptable {
                    offered: (narrow::render(&offered_i), narrow::render(&offered_r)),
                    configured: (narrow::render(&cfg_remote), narrow::render(&cfg_local)),
                },
            ));
        }
        // PFS (CREATE_CHILD_SA only).
        let mut shared: Option<SharedSecret> = None;
        if let (Some(g), Some((peer_ke, our_ke))) = (suite.ke.filter(|_| !in_auth), pfs_ke) {
            let Some(peer_ke) = peer_ke.as_ref().filter(|k| k.method == g) else {
                return Err((
                    NotifyPayload::invalid_ke_payload(g),
                    DownReason::Protocol("INVALID_KE_PAYLOAD".into()),
                ));
            };
            let kx = KeyExchange::generate(g, ctx.rng()).map_err(|_| syntax())?;
            *our_ke = Some(kx.ke_payload());
            shared = Some(kx.agree(peer_ke).map_err(|e| {
                let n = e
                    .notify()
                    .map_or_else(|| simple(NotifyType::INVALID_SYNTAX), NotifyPayload::from);
                (n, DownReason::Protocol("bad KE".into()))
            })?);
        }
        let Some(keys) = self.keys.as_ref() else {
            return Err(syntax());
        };
        let Ok(km) = keys.child_keys(&suite, shared.as_ref(), ni, nr_in) else {
            return Err(syntax());
        };
        let Ok(spi_in) = ctx.new_child_spi() else {
            return Err((
                simple(NotifyType::NO_ADDITIONAL_SAS),
                DownReason::Protocol("no SPI".into()),
            ));
        };
        let resp = vec![
            Payload::Sa(chosen.response(spi_in.to_be_bytes().to_vec())),
            Payload::TsI(narrow::payload(&ts_remote)),
            Payload::TsR(narrow::payload(&ts_local)),
        ];
        let _ = now;
        Ok((
            resp,
            NewChild {
                spi_in,
                spi_out,
                suite,
                proposal: chosen.proposal.to_log_string(),
                keys_in: km.i_to_r,
                keys_out: km.r_to_i,
                ts_local,
                ts_remote,
                delay_outbound: false,
            },
        ))
    }

    /// Installs a negotiated child: event and lifetime timers.
    fn install(&mut self, ctx: &mut Ctx, c: NewChild, replaces: Option<(u32, u32)>) {
        let now_child = self.last_heard;
        let jitter = ctx.jitter(self.cfg.rand_jitter);
        let life = self.cfg.child_lifetime;
        let (soft_at, hard_at) = if life.is_zero() {
            (None, None)
        } else {
            (
                life.checked_sub(self.cfg.rekey_margin + jitter)
                    .filter(|d| !d.is_zero())
                    .map(|d| now_child + d),
                Some(now_child + life),
            )
        };
        ctx.event(Event::ChildUp {
            conn: self.conn,
            child: ChildSa {
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                suite: c.suite,
                keys_in: c.keys_in,
                keys_out: c.keys_out,
                esn: c.suite.esn,
                ts_local: c.ts_local.clone(),
                ts_remote: c.ts_remote.clone(),
                encap: self.nat(),
                lifetime: life,
                lifetime_bytes: self.cfg.child_lifetime_bytes,
                proposal: c.proposal.clone(),
                delay_outbound: c.delay_outbound,
            },
            replaces,
        });
        self.children.push(Child {
            spi_in: c.spi_in,
            spi_out: c.spi_out,
            proposal: c.proposal,
            ts_local: c.ts_local,
            ts_remote: c.ts_remote,
            established_at: now_child,
            soft_at,
            hard_at,
            state: ChildState::Installed,
            peer_rekey: None,
            down_reason: DownReason::DeletedLocally,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_auth_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        spi_in: u32,
        proposals: &[Proposal],
        ts_local: Vec<AddrRange>,
        ts_remote: Vec<AddrRange>,
        payloads: &[Payload],
    ) -> Vec<Action> {
        if find_notify(payloads, NotifyType::AUTHENTICATION_FAILED).is_some() {
            ctx.child_spis.remove(&spi_in);
            return self.fail_establishment(ctx, DownReason::AuthFailed);
        }
        let idr = find_payload!(payloads, Payload::IdR);
        let (Some(idr), Some(auth), Some(keys)) = (
            idr,
            find_payload!(payloads, Payload::Auth),
            self.keys.as_ref(),
        ) else {
            ctx.child_spis.remove(&spi_in);
            let reason =
                first_error(payloads).map_or_else(|| "INVALID_SYNTAX".to_owned(), notify_name);
            return self.fail_establishment(ctx, DownReason::Protocol(reason));
        };
        let prf = keys.suite().prf;
        let octets = signed_octets(
            prf,
            &self.init.peer,
            &self.init.ni,
            keys.sk_p(Role::Responder),
            idr,
        );
        let ok = *idr == self.cfg.remote_id
            && auth.method == AuthMethod::SHARED_KEY_MIC
            && verify_psk_auth(prf, &self.cfg.psk, &octets, &auth.data).is_ok();
        if !ok {
            ctx.child_spis.remove(&spi_in);
            ctx.event(Event::IkeDown {
                conn: self.conn,
                reason: DownReason::AuthFailed,
            });
            return self.delete_quietly(ctx, now);
        }
        // The IKE SA is authenticated; now the Child SA.
        let child_error = |this: &Self, n: &NotifyPayload| match n.notify_type {
            NotifyType::NO_PROPOSAL_CHOSEN => DownReason::NoProposalChosen {
                offered: log_strings(proposals),
                configured: Vec::new(),
            },
            NotifyType::TS_UNACCEPTABLE => DownReason::TsUnacceptable {
                offered: (narrow::render(&ts_local), narrow::render(&ts_remote)),
                configured: (String::new(), String::new()),
            },
            _ => {
                let _ = this;
                DownReason::Protocol(notify_name(n))
            }
        };
        if let Some(n) = first_error(payloads) {
            ctx.child_spis.remove(&spi_in);
            let reason = child_error(self, n);
            ctx.event(Event::IkeDown {
                conn: self.conn,
                reason,
            });
            return self.delete_quietly(ctx, now);
        }
        match self.complete_child(proposals, &ts_local, &ts_remote, payloads, None, true) {
            Ok((suite, chosen, spi_out, tl, tr)) => {
                let (ni, nr) = (self.init.ni.clone(), self.init.nr.clone());
                let Ok(km) = keys.child_keys(&suite, None, &ni, &nr) else {
                    ctx.child_spis.remove(&spi_in);
                    return self.delete_quietly(ctx, now);
                };
                self.establish(ctx, now);
                self.install(
                    ctx,
                    NewChild {
                        spi_in,
                        spi_out,
                        suite,
                        proposal: chosen,
                        keys_in: km.r_to_i,
                        keys_out: km.i_to_r,
                        ts_local: tl,
                        ts_remote: tr,
                        delay_outbound: false,
                    },
                    None,
                );
                Vec::new()
            }
            Err(reason) => {
                ctx.child_spis.remove(&spi_in);
                ctx.event(Event::IkeDown {
                    conn: self.conn,
                    reason,
                });
                self.delete_quietly(ctx, now)
            }
        }
    }

    /// Initiator side: checks the responder's SA and TS payloads against our request.
    #[allow(clippy::type_complexity)]
    fn complete_child(
        &self,
        proposals: &[Proposal],
        ts_local: &[AddrRange],
        ts_remote: &[AddrRange],
        payloads: &[Payload],
        _unused: Option<()>,
        in_auth: bool,
    ) -> Result<(ChildSuite, String, u32, Vec<AddrRange>, Vec<AddrRange>), DownReason> {
        let proto = |s: &str| DownReason::Protocol(s.to_owned());
        let (Some(sa), Some(tsi), Some(tsr)) = (
            find_payload!(payloads, Payload::Sa),
            find_payload!(payloads, Payload::TsI),
            find_payload!(payloads, Payload::TsR),
        ) else {
            return Err(proto("response lacks SA/TSi/TSr"));
        };
        let chosen = verify_choice(proposals, sa, SelectOptions { skip_ke: in_auth })
            .map_err(|_| proto("bad ESP proposal choice"))?;
        let suite =
            ChildSuite::from_proposal(&chosen.proposal).map_err(|_| proto("bad ESP suite"))?;
        let spi_out = spi_u32(&chosen.spi).ok_or_else(|| proto("bad ESP SPI"))?;
        let (tl, tr) = (narrow::ranges(tsi), narrow::ranges(tsr));
        let inside = |got: &[AddrRange], sent: &[AddrRange]| {
            !got.is_empty()
                && got
                    .iter()
                    .all(|g| sent.iter().any(|s| narrow::contains(s, g)))
        };
        if !inside(&tl, ts_local) || !inside(&tr, ts_remote) {
            return Err(DownReason::TsUnacceptable {
                offered: (narrow::render(ts_local), narrow::render(ts_remote)),
                configured: (narrow::render(&tl), narrow::render(&tr)),
            });
        }
        Ok((suite, chosen.proposal.to_log_string(), spi_out, tl, tr))
    }

    // ---------------------------------------------------------------- INFORMATIONAL

    fn on_informational(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        id: u32,
        payloads: &[Payload],
    ) -> Vec<Action> {
        let exch = ExchangeType::INFORMATIONAL;
        let deletes: Vec<&DeletePayload> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Delete(d) => Some(d),
                _ => None,
            })
            .collect();
        if deletes.iter().any(|d| d.protocol == ProtocolId::IKE) {
            // RFC 7296 §1.4.1: acknowledge with an empty INFORMATIONAL, then go.
            self.respond(ctx, exch, id, Vec::new(), local, remote);
            let report = self.state == SaState::Established && self.live;
            return self.close(ctx, now, report.then_some(DownReason::DeletedByPeer));
        }
        let mut ours = Vec::new();
        for d in deletes.iter().filter(|d| d.protocol == ProtocolId::ESP) {
            for spi in d.spis.iter().filter_map(|s| spi_u32(s)) {
                let Some(pos) = self.children.iter().position(|c| c.spi_out == spi) else {
                    continue;
                };
                let c = self.children.remove(pos);
                // A child we are deleting ourselves is left out of the answer (§1.4.1).
                if c.state != ChildState::Deleting {
                    ours.push(c.spi_in.to_be_bytes());
                }
                let reason = match c.state {
                    ChildState::Rekeyed => DownReason::Rekeyed,
                    ChildState::Deleting => c.down_reason.clone(),
                    _ => DownReason::DeletedByPeer,
                };
                ctx.child_spis.remove(&c.spi_in);
                self.queue.retain(|t| *t != Task::RekeyChild(c.spi_in));
                ctx.event(Event::ChildDown {
                    conn: self.conn,
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    reason,
                });
            }
        }
        let resp = if ours.is_empty() {
            Vec::new()
        } else {
            vec![Payload::Delete(DeletePayload::esp(&ours))]
        };
        self.respond(ctx, exch, id, resp, local, remote);
        Vec::new()
    }

    // ---------------------------------------------------------------- CREATE_CHILD_SA

    fn on_create_child(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        id: u32,
        payloads: &[Payload],
    ) -> Vec<Action> {
        let exch = ExchangeType::CREATE_CHILD_SA;
        let simple = |t| NotifyPayload::new(t, Vec::new());
        let (Some(sa), Some(ni)) = (
            find_payload!(payloads, Payload::Sa),
            find_payload!(payloads, Payload::Nonce),
        ) else {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::INVALID_SYNTAX),
                local,
                remote,
            );
            return Vec::new();
        };
        let is_ike = sa
            .proposals
            .first()
            .is_some_and(|p| p.protocol == ProtocolId::IKE);
        let ni = ni.as_bytes().to_vec();
        let Ok(nr) = Nonce::random(ctx.rng(), NONCE_LEN) else {
            return Vec::new();
        };
        let nr_bytes = nr.as_bytes().to_vec();
        if is_ike {
            return self.on_ike_rekey_request(ctx, now, local, remote, id, payloads, &ni, nr);
        }
        // RFC 7296 §2.25.2: no Child SA work while we rekey the IKE SA.
        if matches!(
            self.outstanding.as_ref().map(|o| &o.request),
            Some(Request::RekeyIke(_))
        ) {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::TEMPORARY_FAILURE),
                local,
                remote,
            );
            return Vec::new();
        }
        let rekey = find_notify(payloads, NotifyType::REKEY_SA);
        let mut old_idx = None;
        if let Some(n) = rekey {
            let spi = spi_u32(&n.spi);
            match self.children.iter().position(|c| Some(c.spi_out) == spi) {
                None => {
                    let mut nf = simple(NotifyType::CHILD_SA_NOT_FOUND);
                    nf.protocol = n.protocol;
                    nf.spi = n.spi.clone();
                    self.respond_error(ctx, exch, id, nf, local, remote);
                    return Vec::new();
                }
                Some(i) => {
                    let st = self.children.get(i).map(|c| c.state);
                    if matches!(st, Some(ChildState::Rekeyed | ChildState::Deleting)) {
                        self.respond_error(
                            ctx,
                            exch,
                            id,
                            simple(NotifyType::TEMPORARY_FAILURE),
                            local,
                            remote,
                        );
                        return Vec::new();
                    }
                    old_idx = Some(i);
                }
            }
        }
        let peer_ke = find_payload!(payloads, Payload::Ke).cloned();
        let mut our_ke = None;
        let accepted = self.accept_child(
            ctx,
            now,
            payloads,
            &ni,
            &nr_bytes,
            Some((&peer_ke, &mut our_ke)),
            false,
        );
        let (child_payloads, mut child) = match accepted {
            Ok(x) => x,
            Err((n, _reason)) => {
                self.respond_error(ctx, exch, id, n, local, remote);
                return Vec::new();
            }
        };
        let mut resp = Vec::new();
        let mut it = child_payloads.into_iter();
        if let Some(sa) = it.next() {
            resp.push(sa);
        }
        resp.push(Payload::Nonce(nr));
        if let Some(k) = our_ke {
            resp.push(Payload::Ke(k));
        }
        resp.extend(it);
        self.respond(ctx, exch, id, resp, local, remote);
        let mut replaces = None;
        if let Some(old) = old_idx.and_then(|i| self.children.get_mut(i)) {
            replaces = Some((old.spi_in, old.spi_out));
            let ours_outstanding = matches!(
                self.outstanding.as_ref().map(|o| &o.request),
                Some(Request::CreateChild(r)) if r.rekey == Some(old.spi_in)
            );
            if ours_outstanding {
                // §2.8.1 collision: decided when our own exchange completes.
                old.peer_rekey = Some(lowest(&ni, &nr_bytes));
            } else {
                let spi = old.spi_in;
                old.state = ChildState::Rekeyed;
                old.soft_at = None;
                self.queue.retain(|t| *t != Task::RekeyChild(spi));
            }
            // The peer deletes the old SA once it has the response; until then it
            // may still be sending on the old one.
            child.delay_outbound = true;
        }
        self.install(ctx, child, replaces);
        Vec::new()
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ike_rekey_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        id: u32,
        payloads: &[Payload],
        ni: &[u8],
        nr: Nonce,
    ) -> Vec<Action> {
        let exch = ExchangeType::CREATE_CHILD_SA;
        let simple = |t| NotifyPayload::new(t, Vec::new());
        let child_op = matches!(
            self.outstanding.as_ref().map(|o| &o.request),
            Some(Request::CreateChild(_) | Request::DeleteChildren)
        );
        if child_op {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::TEMPORARY_FAILURE),
                local,
                remote,
            );
            return Vec::new();
        }
        let (Some(sa), Some(ke)) = (
            find_payload!(payloads, Payload::Sa),
            find_payload!(payloads, Payload::Ke),
        ) else {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::INVALID_SYNTAX),
                local,
                remote,
            );
            return Vec::new();
        };
        let Ok(chosen) = select_for_ke(
            sa,
            &self.cfg.ike_proposals,
            Some(ke.method),
            SelectOptions::default(),
        ) else {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::NO_PROPOSAL_CHOSEN),
                local,
                remote,
            );
            return Vec::new();
        };
        let Ok(suite) = IkeSuite::from_proposal(&chosen.proposal) else {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::NO_PROPOSAL_CHOSEN),
                local,
                remote,
            );
            return Vec::new();
        };
        if ke.method != suite.ke {
            self.respond_error(
                ctx,
                exch,
                id,
                NotifyPayload::invalid_ke_payload(suite.ke),
                local,
                remote,
            );
            return Vec::new();
        }
        let Some(peer_spi) = spi_ike(&chosen.spi).filter(|s| !s.is_zero()) else {
            self.respond_error(
                ctx,
                exch,
                id,
                simple(NotifyType::INVALID_SYNTAX),
                local,
                remote,
            );
            return Vec::new();
        };
        let derived = (|| {
            let kx = KeyExchange::generate(suite.ke, ctx.rng())?;
            let ke_r = kx.ke_payload();
            let shared = kx.agree(ke)?;
            let our_spi = ctx.new_ike_spi()?;
            let keys = match self.keys.as_ref() {
                Some(k) => k.derive_rekeyed(suite, &shared, ni, nr.as_bytes(), peer_spi, our_spi),
                None => Err(crate::ApiMisuse::Other("no keys").into()),
            };
            match keys {
                Ok(k) => Ok((ke_r, our_spi, k)),
                Err(e) => {
                    ctx.ike_spis.remove(&our_spi);
                    Err(e)
                }
            }
        })();
        let (ke_r, our_spi, keys) = match derived {
            Ok(x) => x,
            Err(e) => {
                let n = e
                    .notify()
                    .map_or_else(|| simple(NotifyType::INVALID_SYNTAX), NotifyPayload::from);
                self.respond_error(ctx, exch, id, n, local, remote);
                return Vec::new();
            }
        };
        let nr_bytes = nr.as_bytes().to_vec();
        let resp = vec![
            Payload::Sa(chosen.response(our_spi.0.to_vec())),
            Payload::Nonce(nr),
            Payload::Ke(ke_r),
        ];
        self.respond(ctx, exch, id, resp, local, remote);
        let Ok(mut new) = self.rekeyed(ctx, now, Role::Responder, peer_spi, our_spi, keys, &chosen)
        else {
            ctx.ike_spis.remove(&our_spi);
            return Vec::new();
        };
        let ours_outstanding = matches!(
            self.outstanding.as_ref().map(|o| &o.request),
            Some(Request::RekeyIke(_))
        );
        if ours_outstanding {
            self.ike_peer_rekey = Some((our_spi, lowest(ni, &nr_bytes)));
        } else {
            self.queue.retain(|t| *t != Task::RekeyIke);
            new.children = std::mem::take(&mut self.children);
            new.live = true;
            self.become_rekeyed(ctx, now);
        }
        vec![Action::Spawn(Box::new(new))]
    }

    /// The IKE SA that replaces this one (RFC 7296 §2.18): the rekey's initiator is its
    /// initiator; message IDs start at zero; NAT state and addresses carry over.
    #[allow(clippy::too_many_arguments)]
    fn rekeyed(
        &self,
        ctx: &mut Ctx,
        now: Instant,
        role: Role,
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        keys: IkeKeys,
        chosen: &Selected,
    ) -> Result<Self, Error> {
        let (sealer, opener) = keys.sk_crypto(role)?;
        let mut sa = Self::blank(
            ctx,
            now,
            self.conn,
            self.cfg.clone(),
            role,
            spi_i,
            spi_r,
            self.local,
            self.remote,
        );
        sa.nat_local = self.nat_local;
        sa.nat_remote = self.nat_remote;
        sa.keys = Some(keys);
        sa.sealer = Some(sealer);
        sa.opener = Some(opener);
        sa.proposal = chosen.proposal.to_log_string();
        sa.state = SaState::Established;
        sa.established_at = Some(now);
        sa.start_lifetime_timers(ctx, now);
        Ok(sa)
    }

    /// The old IKE SA after a rekey: no more work, waiting for the DELETE (bounded).
    fn become_rekeyed(&mut self, ctx: &mut Ctx, now: Instant) {
        self.state = SaState::Rekeyed;
        self.live = false;
        self.queue.clear();
        for t in [Timer::Dpd, Timer::Keepalive, Timer::Rekey, Timer::Expire] {
            self.timers.stop(t);
        }
        self.timers
            .set(Timer::Linger, now + ctx.cfg.retransmit.total() * 2);
    }

    // ---------------------------------------------------------------- responses

    fn handle_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        o: Outstanding,
        payloads: &[Payload],
    ) -> Vec<Action> {
        match o.request {
            Request::Init => Vec::new(),
            Request::Auth {
                spi_in,
                proposals,
                ts_local,
                ts_remote,
            } => self.on_auth_response(ctx, now, spi_in, &proposals, ts_local, ts_remote, payloads),
            Request::CreateChild(req) => self.on_child_response(ctx, now, *req, payloads),
            Request::RekeyIke(req) => self.on_ike_rekey_response(ctx, now, *req, payloads),
            Request::Dpd => Vec::new(),
            Request::DeleteChildren => {
                let gone: Vec<Child> = {
                    let (gone, keep) = std::mem::take(&mut self.children)
                        .into_iter()
                        .partition(|c| c.state == ChildState::Deleting);
                    self.children = keep;
                    gone
                };
                for c in gone {
                    ctx.child_spis.remove(&c.spi_in);
                    ctx.event(Event::ChildDown {
                        conn: self.conn,
                        spi_in: c.spi_in,
                        spi_out: c.spi_out,
                        reason: c.down_reason,
                    });
                }
                Vec::new()
            }
            Request::DeleteIke => {
                self.timers.stop_all();
                vec![Action::Remove]
            }
        }
    }

    fn on_child_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        req: ChildRequest,
        payloads: &[Payload],
    ) -> Vec<Action> {
        let old_pos = req
            .rekey
            .and_then(|s| self.children.iter().position(|c| c.spi_in == s));
        if let Some(n) = first_error(payloads) {
            ctx.child_spis.remove(&req.spi_in);
            if n.notify_type == NotifyType::INVALID_KE_PAYLOAD {
                if let Some(g) = n.accepted_ke_method() {
                    let current = req.kx.as_ref().map(KeyExchange::method);
                    if Some(g) != current && group_offered(&req.proposals, g) {
                        if let Some(old) = req.rekey {
                            self.queue.push_front(Task::RekeyChild(old));
                        }
                        self.pfs_override = Some(g);
                        return Vec::new();
                    }
                }
            }
            if let Some(old) = old_pos.and_then(|i| self.children.get_mut(i)) {
                if old.peer_rekey.is_some() {
                    // The peer's rekey of this child won (RFC 7296 §2.8.1).
                    old.state = ChildState::Rekeyed;
                } else {
                    old.state = ChildState::Installed;
                    old.soft_at = (n.notify_type == NotifyType::TEMPORARY_FAILURE)
                        .then(|| now + ctx.cfg.retransmit.timeout);
                }
            }
            return Vec::new();
        }
        let done = (|| {
            let (suite, proposal, spi_out, tl, tr) = self.complete_child(
                &req.proposals,
                &req.ts_local,
                &req.ts_remote,
                payloads,
                None,
                false,
            )?;
            let nr = find_payload!(payloads, Payload::Nonce)
                .ok_or_else(|| DownReason::Protocol("no nonce".into()))?
                .as_bytes()
                .to_vec();
            let shared = match (suite.ke, req.kx) {
                (Some(g), Some(kx)) if kx.method() == g => {
                    let ke = find_payload!(payloads, Payload::Ke)
                        .ok_or_else(|| DownReason::Protocol("no KE".into()))?;
                    Some(
                        kx.agree(ke)
                            .map_err(|_| DownReason::Protocol("bad KE".into()))?,
                    )
                }
                (None, _) => None,
                _ => return Err(DownReason::Protocol("KE group mismatch".into())),
            };
            let keys = self
                .keys
                .as_ref()
                .ok_or_else(|| DownReason::Protocol("no keys".into()))?;
            let km = keys
                .child_keys(&suite, shared.as_ref(), req.nonce.as_bytes(), &nr)
                .map_err(|_| DownReason::Protocol("keys".into()))?;
            Ok((
                NewChild {
                    spi_in: req.spi_in,
                    spi_out,
                    suite,
                    proposal,
                    keys_in: km.r_to_i,
                    keys_out: km.i_to_r,
                    ts_local: tl,
                    ts_remote: tr,
                    delay_outbound: false,
                },
                nr,
            ))
        })();
        let Ok((child, nr)) = done else {
            // The peer installed something we cannot use: delete it by our SPI.
            self.queue.push_back(Task::DeleteChildren(vec![req.spi_in]));
            if let Some(old) = old_pos.and_then(|i| self.children.get_mut(i)) {
                old.state = ChildState::Installed;
            }
            return Vec::new();
        };
        let new_spi = child.spi_in;
        let replaces = old_pos
            .and_then(|i| self.children.get(i))
            .map(|c| (c.spi_in, c.spi_out));
        self.install(ctx, child, replaces);
        if let Some(i) = old_pos {
            let ours = lowest(req.nonce.as_bytes(), &nr);
            let collision = self.children.get(i).and_then(|c| c.peer_rekey.clone());
            let delete = match collision {
                // Ours holds the lowest nonce: ours is the redundant one.
                Some(theirs) if ours < theirs => {
                    if let Some(old) = self.children.get_mut(i) {
                        old.state = ChildState::Rekeyed;
                    }
                    new_spi
                }
                _ => self.children.get(i).map_or(new_spi, |c| c.spi_in),
            };
            if let Some(c) = self.children.iter_mut().find(|c| c.spi_in == delete) {
                c.state = ChildState::Deleting;
                c.down_reason = DownReason::Rekeyed;
                c.soft_at = None;
            }
            self.queue.push_back(Task::DeleteChildren(vec![delete]));
        }
        Vec::new()
    }

    fn on_ike_rekey_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        req: IkeRekeyRequest,
        payloads: &[Payload],
    ) -> Vec<Action> {
        if let Some(n) = first_error(payloads) {
            ctx.ike_spis.remove(&req.new_spi);
            if self.ike_peer_rekey.is_some() {
                self.become_rekeyed(ctx, now);
                return self.give_children_to_peer_rekey();
            }
            match (n.notify_type, n.accepted_ke_method()) {
                (NotifyType::INVALID_KE_PAYLOAD, Some(g))
                    if g != req.kx.method() && group_offered(&self.cfg.ike_proposals, g) =>
                {
                    self.ike_group_override = Some(g);
                    self.queue.push_front(Task::RekeyIke);
                }
                (NotifyType::TEMPORARY_FAILURE, _) => {
                    self.timers
                        .set(Timer::Rekey, now + ctx.cfg.retransmit.timeout);
                }
                _ => {} // the hard lifetime will end it
            }
            return Vec::new();
        }
        let result = (|| {
            let sa =
                find_payload!(payloads, Payload::Sa).ok_or(PeerMisbehaved::BadProposal("no SA"))?;
            let chosen = verify_choice(&self.cfg.ike_proposals, sa, SelectOptions::default())?;
            let suite = IkeSuite::from_proposal(&chosen.proposal)?;
            let peer_spi = spi_ike(&chosen.spi)
                .filter(|s| !s.is_zero())
                .ok_or(PeerMisbehaved::BadProposal("bad SPI"))?;
            let nr = find_payload!(payloads, Payload::Nonce)
                .ok_or(PeerMisbehaved::BadProposal("no nonce"))?;
            let ke =
                find_payload!(payloads, Payload::Ke).ok_or(PeerMisbehaved::BadProposal("no KE"))?;
            if suite.ke != req.kx.method() {
                return Err(PeerMisbehaved::BadProposal("KE group").into());
            }
            let shared = req.kx.agree(ke)?;
            let keys = self
                .keys
                .as_ref()
                .ok_or(crate::ApiMisuse::Other("no keys"))?
                .derive_rekeyed(
                    suite,
                    &shared,
                    req.nonce.as_bytes(),
                    nr.as_bytes(),
                    req.new_spi,
                    peer_spi,
                )?;
            let new = self.rekeyed(
                ctx,
                now,
                Role::Initiator,
                req.new_spi,
                peer_spi,
                keys,
                &chosen,
            )?;
            Ok::<_, Error>((new, nr.as_bytes().to_vec()))
        })();
        let Ok((mut new, nr)) = result else {
            ctx.ike_spis.remove(&req.new_spi);
            return Vec::new();
        };
        let ours = lowest(req.nonce.as_bytes(), &nr);
        let mut actions = Vec::new();
        match self.ike_peer_rekey.clone() {
            Some((_, theirs)) if ours < theirs => {
                // Our new IKE SA is the redundant one (§2.8.1): delete it; the peer
                // deletes this old one; the children go to the peer's new SA.
                new.state = SaState::Deleting;
                new.queue.push_back(Task::DeleteIke);
                new.timers.stop_all();
                actions.extend(new.pump(ctx, now));
                actions.clear();
                self.become_rekeyed(ctx, now);
                let mut a = vec![Action::Spawn(Box::new(new))];
                a.extend(self.give_children_to_peer_rekey());
                return a;
            }
            _ => {
                new.children = std::mem::take(&mut self.children);
                new.live = true;
                self.live = false;
                self.state = SaState::Deleting;
                self.queue.clear();
                self.queue.push_back(Task::DeleteIke);
                for t in [Timer::Dpd, Timer::Keepalive, Timer::Rekey, Timer::Expire] {
                    self.timers.stop(t);
                }
            }
        }
        actions.push(Action::Spawn(Box::new(new)));
        actions
    }

    fn give_children_to_peer_rekey(&mut self) -> Vec<Action> {
        match &self.ike_peer_rekey {
            Some((spi, _)) => vec![Action::GiveChildren(
                std::mem::take(&mut self.children),
                *spi,
            )],
            None => Vec::new(),
        }
    }

    // ---------------------------------------------------------------- closing

    /// Stops all work; reports the reason (with ChildDown for each child) if given; stays
    /// around to answer retransmissions of the last request.
    fn close(&mut self, ctx: &mut Ctx, now: Instant, reason: Option<DownReason>) -> Vec<Action> {
        if let Some(reason) = reason {
            if !self.live && self.established_at.is_none() {
                // A failed establishment is reported too.
                self.live = true;
            }
            self.report_down(ctx, reason);
        } else {
            for c in std::mem::take(&mut self.children) {
                ctx.child_spis.remove(&c.spi_in);
            }
        }
        self.state = SaState::Closed;
        self.queue.clear();
        self.outstanding = None;
        self.timers.stop_all();
        self.timers
            .set(Timer::Linger, now + ctx.cfg.retransmit.total());
        Vec::new()
    }

    fn report_down(&mut self, ctx: &mut Ctx, reason: DownReason) {
        for c in std::mem::take(&mut self.children) {
            ctx.child_spis.remove(&c.spi_in);
            ctx.event(Event::ChildDown {
                conn: self.conn,
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                reason: reason.clone(),
            });
        }
        if self.live {
            self.live = false;
            ctx.event(Event::IkeDown {
                conn: self.conn,
                reason,
            });
        }
    }

    /// Deletes the IKE SA with an INFORMATIONAL DELETE, without further events.
    fn delete_quietly(&mut self, ctx: &mut Ctx, now: Instant) -> Vec<Action> {
        for c in std::mem::take(&mut self.children) {
            ctx.child_spis.remove(&c.spi_in);
        }
        self.state = SaState::Deleting;
        self.queue.clear();
        self.queue.push_back(Task::DeleteIke);
        for t in [
            Timer::Dpd,
            Timer::Keepalive,
            Timer::Rekey,
            Timer::Expire,
            Timer::Linger,
        ] {
            self.timers.stop(t);
        }
        self.pump(ctx, now)
    }

    /// `terminate`: report everything down now, then DELETE.
    pub(crate) fn terminate(&mut self, ctx: &mut Ctx, now: Instant) -> Vec<Action> {
        match self.state {
            SaState::Established => {
                self.report_down(ctx, DownReason::DeletedLocally);
                self.delete_quietly(ctx, now)
            }
            SaState::ExpectSaInitResponse | SaState::ExpectAuthResponse => {
                ctx.event(Event::IkeDown {
                    conn: self.conn,
                    reason: DownReason::DeletedLocally,
                });
                if self.keys.is_some() {
                    self.delete_quietly(ctx, now)
                } else {
                    self.timers.stop_all();
                    vec![Action::Remove]
                }
            }
            SaState::ExpectAuthRequest => {
                self.timers.stop_all();
                vec![Action::Remove]
            }
            SaState::Rekeyed | SaState::Deleting | SaState::Closed => Vec::new(),
        }
    }

    /// Removes this SA at once, reporting `reason` (INITIAL_CONTACT from a restarted peer).
    pub(crate) fn drop_with(&mut self, ctx: &mut Ctx, reason: DownReason) {
        if self.state == SaState::Established {
            self.report_down(ctx, reason);
        } else {
            for c in std::mem::take(&mut self.children) {
                ctx.child_spis.remove(&c.spi_in);
            }
        }
        self.timers.stop_all();
    }

    // ---------------------------------------------------------------- requests we start

    /// Starts the next queued task if the window is free.
    fn pump(&mut self, ctx: &mut Ctx, now: Instant) -> Vec<Action> {
        while self.outstanding.is_none() {
            let Some(task) = self.queue.pop_front() else {
                break;
            };
            let allowed = match self.state {
                SaState::Established => true,
                SaState::Deleting => task == Task::DeleteIke,
                _ => false,
            };
            if !allowed {
                continue;
            }
            let r = match task {
                Task::Dpd => self.send_request(
                    ctx,
                    now,
                    ExchangeType::INFORMATIONAL,
                    Vec::new(),
                    Request::Dpd,
                ),
                Task::DeleteIke => self.send_request(
                    ctx,
                    now,
                    ExchangeType::INFORMATIONAL,
                    vec![Payload::Delete(DeletePayload::ike())],
                    Request::DeleteIke,
                ),
                Task::DeleteChildren(spis) => {
                    let spis: Vec<[u8; 4]> = spis.iter().map(|s| s.to_be_bytes()).collect();
                    self.send_request(
                        ctx,
                        now,
                        ExchangeType::INFORMATIONAL,
                        vec![Payload::Delete(DeletePayload::esp(&spis))],
                        Request::DeleteChildren,
                    )
                }
                Task::RekeyChild(spi) => self.start_child_rekey(ctx, now, spi),
                Task::RekeyIke => self.start_ike_rekey(ctx, now),
            };
            if r.is_err() {
                // A crypto-library failure: nothing sensible to do but try the next task.
                continue;
            }
        }
        Vec::new()
    }

    fn start_child_rekey(&mut self, ctx: &mut Ctx, now: Instant, old: u32) -> Result<(), Error> {
        let Some(child) = self.children.iter().find(|c| c.spi_in == old) else {
            return Ok(());
        };
        if child.state != ChildState::Rekeying {
            return Ok(());
        }
        let (ts_local, ts_remote) = (child.ts_local.clone(), child.ts_remote.clone());
        let proposals = self.cfg.esp_proposals.clone();
        let group = self
            .pfs_override
            .take()
            .filter(|g| group_offered(&proposals, *g))
            .or_else(|| {
                proposals
                    .first()
                    .and_then(|p| p.ke.first().copied())
                    .filter(|g| *g != KeMethod::NONE)
            });
        let kx = group
            .map(|g| KeyExchange::generate(g, ctx.rng()))
            .transpose()?;
        let nonce = Nonce::random(ctx.rng(), NONCE_LEN)?;
        let spi_in = ctx.new_child_spi()?;
        let mut payloads = vec![
            Payload::Notify(NotifyPayload::rekey_sa(ProtocolId::ESP, old.to_be_bytes())),
            Payload::Sa(Proposal::sa_payload(&proposals, &spi_in.to_be_bytes())),
            Payload::Nonce(nonce.clone()),
        ];
        if let Some(kx) = &kx {
            payloads.push(Payload::Ke(kx.ke_payload()));
        }
        payloads.push(Payload::TsI(narrow::payload(&ts_local)));
        payloads.push(Payload::TsR(narrow::payload(&ts_remote)));
        let req = ChildRequest {
            rekey: Some(old),
            spi_in,
            nonce,
            kx,
            proposals,
            ts_local,
            ts_remote,
        };
        let r = self.send_request(
            ctx,
            now,
            ExchangeType::CREATE_CHILD_SA,
            payloads,
            Request::CreateChild(Box::new(req)),
        );
        if r.is_err() {
            ctx.child_spis.remove(&spi_in);
        }
        r
    }

    fn start_ike_rekey(&mut self, ctx: &mut Ctx, now: Instant) -> Result<(), Error> {
        let proposals = self.cfg.ike_proposals.clone();
        let group = self
            .ike_group_override
            .take()
            .or_else(|| proposals.first().and_then(|p| p.ke.first().copied()))
            .ok_or(crate::ApiMisuse::Other("no IKE proposal"))?;
        let kx = KeyExchange::generate(group, ctx.rng())?;
        let nonce = Nonce::random(ctx.rng(), NONCE_LEN)?;
        let new_spi = ctx.new_ike_spi()?;
        let payloads = vec![
            Payload::Sa(Proposal::sa_payload(&proposals, &new_spi.0)),
            Payload::Nonce(nonce.clone()),
            Payload::Ke(kx.ke_payload()),
        ];
        let r = self.send_request(
            ctx,
            now,
            ExchangeType::CREATE_CHILD_SA,
            payloads,
            Request::RekeyIke(Box::new(IkeRekeyRequest { new_spi, nonce, kx })),
        );
        if r.is_err() {
            ctx.ike_spis.remove(&new_spi);
        }
        r
    }

    pub(crate) fn start_rekey_ike(&mut self, ctx: &mut Ctx, now: Instant) -> Vec<Action> {
        self.enqueue(Task::RekeyIke);
        self.pump(ctx, now)
    }

    fn enqueue(&mut self, t: Task) {
        if !self.queue.contains(&t) {
            self.queue.push_back(t);
        }
    }

    // ---------------------------------------------------------------- timers

    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.timers.take_expired(Timer::Retransmit, now) {
            if let Some(o) = self.outstanding.as_mut() {
                if o.sent <= ctx.cfg.retransmit.tries {
                    let delay = ctx.cfg.retransmit.delay(o.sent);
                    o.sent += 1;
                    let payload = o.bytes.clone();
                    ctx.stats.retransmits += 1;
                    ctx.transmit(Transmit {
                        local: self.local,
                        remote: self.remote,
                        non_esp_marker: self.local.port() == NATT_PORT,
                        payload,
                    });
                    self.timers.set(Timer::Retransmit, now + delay);
                } else {
                    return self.give_up(ctx);
                }
            }
        }
        if self.timers.take_expired(Timer::Linger, now) {
            // Half-open timeout, or the end of a closed/rekeyed SA's grace period.
            if self.state == SaState::Rekeyed && !self.children.is_empty() {
                // Never drop children on the floor.
                self.report_down(ctx, DownReason::Timeout);
            }
            self.timers.stop_all();
            return vec![Action::Remove];
        }
        if self.timers.take_expired(Timer::Expire, now) && self.state == SaState::Established {
            self.report_down(ctx, DownReason::Expired);
            return self.delete_quietly(ctx, now);
        }
        if self.timers.take_expired(Timer::Rekey, now) && self.state == SaState::Established {
            self.enqueue(Task::RekeyIke);
        }
        if self.timers.take_expired(Timer::Keepalive, now) {
            ctx.stats.keepalives += 1;
            ctx.transmits.push_back(Transmit {
                local: self.local,
                remote: self.remote,
                non_esp_marker: false,
                payload: vec![0xff],
            });
            self.timers
                .set(Timer::Keepalive, now + ctx.cfg.keepalive_interval);
        }
        if self.timers.take_expired(Timer::Dpd, now) {
            if let Some(interval) = self.cfg.dpd_interval {
                let due = self.last_heard + interval;
                if due <= now {
                    if self.outstanding.is_none() {
                        self.enqueue(Task::Dpd);
                    }
                    self.timers.set(Timer::Dpd, now + interval);
                } else {
                    self.timers.set(Timer::Dpd, due);
                }
            }
        }
        // Child SA lifetimes.
        if self.state == SaState::Established {
            let mut expired = Vec::new();
            for c in &mut self.children {
                if c.hard_at.is_some_and(|t| t <= now) {
                    expired.push(c.spi_in);
                } else if c.soft_at.is_some_and(|t| t <= now) {
                    c.soft_at = None;
                    if c.state == ChildState::Installed {
                        c.state = ChildState::Rekeying;
                        let t = Task::RekeyChild(c.spi_in);
                        if !self.queue.contains(&t) {
                            self.queue.push_back(t);
                        }
                    }
                }
            }
            for spi in expired {
                self.expire_child(ctx, spi);
            }
        }
        actions.extend(self.pump(ctx, now));
        actions
    }

    fn expire_child(&mut self, ctx: &mut Ctx, spi: u32) {
        let Some(pos) = self.children.iter().position(|c| c.spi_in == spi) else {
            return;
        };
        let c = self.children.remove(pos);
        ctx.child_spis.remove(&c.spi_in);
        self.queue.retain(|t| *t != Task::RekeyChild(spi));
        ctx.event(Event::ChildDown {
            conn: self.conn,
            spi_in: c.spi_in,
            spi_out: c.spi_out,
            reason: DownReason::Expired,
        });
        self.queue.push_back(Task::DeleteChildren(vec![spi]));
    }

    /// The data plane's soft/hard limit for a child.
    pub(crate) fn child_limit(&mut self, ctx: &mut Ctx, now: Instant, spi: u32, hard: bool) {
        if self.state != SaState::Established {
            return;
        }
        if hard {
            self.expire_child(ctx, spi);
        } else if let Some(c) = self.children.iter_mut().find(|c| c.spi_in == spi) {
            if c.state == ChildState::Installed {
                c.state = ChildState::Rekeying;
                c.soft_at = None;
                self.enqueue(Task::RekeyChild(spi));
            }
        }
        self.pump(ctx, now);
    }

    /// The retransmission schedule ran out.
    fn give_up(&mut self, ctx: &mut Ctx) -> Vec<Action> {
        let was_dpd = matches!(
            self.outstanding.as_ref().map(|o| &o.request),
            Some(Request::Dpd)
        );
        self.outstanding = None;
        match self.state {
            SaState::ExpectSaInitResponse | SaState::ExpectAuthResponse => {
                for c in std::mem::take(&mut self.children) {
                    ctx.child_spis.remove(&c.spi_in);
                }
                if let Some(Request::Auth { .. }) = None::<Request> {}
                self.fail_establishment(ctx, DownReason::Timeout)
            }
            SaState::Established => {
                let reason = if was_dpd {
                    DownReason::PeerDead
                } else {
                    DownReason::Timeout
                };
                self.report_down(ctx, reason);
                self.timers.stop_all();
                let mut a = vec![Action::Remove];
                if self.cfg.dpd_action == DpdAction::Restart {
                    a.push(Action::Restart(self.conn));
                }
                a
            }
            _ => {
                for c in std::mem::take(&mut self.children) {
                    ctx.child_spis.remove(&c.spi_in);
                }
                self.timers.stop_all();
                vec![Action::Remove]
            }
        }
    }

    /// Our retransmission of IKE_AUTH reserved a child SPI; free everything we hold.
    pub(crate) fn release(&mut self, ctx: &mut Ctx) {
        ctx.ike_spis.remove(&self.local_spi());
        for c in &self.children {
            ctx.child_spis.remove(&c.spi_in);
        }
        if let Some(o) = &self.outstanding {
            match &o.request {
                Request::Auth { spi_in, .. } => {
                    ctx.child_spis.remove(spi_in);
                }
                Request::CreateChild(r) => {
                    ctx.child_spis.remove(&r.spi_in);
                }
                Request::RekeyIke(r) => {
                    ctx.ike_spis.remove(&r.new_spi);
                }
                _ => {}
            }
        }
    }

    pub(crate) fn adopt_children(&mut self, c: Vec<Child>) {
        self.live = true;
        self.children.extend(c);
    }
}

/// A child negotiated but not yet installed.
#[derive(Debug)]
struct NewChild {
    spi_in: u32,
    spi_out: u32,
    suite: ChildSuite,
    proposal: String,
    keys_in: crate::Secret,
    keys_out: crate::Secret,
    ts_local: Vec<AddrRange>,
    ts_remote: Vec<AddrRange>,
    delay_outbound: bool,
}
