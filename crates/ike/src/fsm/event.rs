//! What the [`Endpoint`](super::Endpoint) reports: datagrams to send, events, state.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::crypto::{ChildSuite, Role};
use crate::packet::{AddrRange, IkeSpi};
use crate::secret::Secret;

/// Identifies a connection added with [`Endpoint::add_connection`](super::Endpoint::add_connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Source address (port 500, or 4500 after NAT-T floated).
    pub local: SocketAddr,
    /// Destination.
    pub remote: SocketAddr,
    /// Prefix the payload with the 4-byte non-ESP marker (IKE on port 4500, RFC 3948 §2.2).
    pub non_esp_marker: bool,
    /// The UDP payload (without the marker). `[0xff]` is a NAT-T keepalive.
    pub payload: Vec<u8>,
}

/// What the data plane reports about a Child SA (named by its inbound SPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildSaSignal {
    /// A soft byte/packet limit was reached (`esp::SaEvent::SoftLimit`): rekey.
    SoftLimit,
    /// A hard limit was reached (`esp::SaEvent::HardLimit`): delete.
    HardLimit,
    /// ESP arrived on this SA: the peer is alive (DPD is skipped, as strongSwan does).
    InboundTraffic,
}

/// Why an IKE or Child SA went down (or never came up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// DPD: the liveness check went unanswered.
    PeerDead,
    /// The peer sent a DELETE.
    DeletedByPeer,
    /// [`Endpoint::terminate`](super::Endpoint::terminate) or `remove_connection`.
    DeletedLocally,
    /// The AUTH payload or the peer's identity did not verify (either side).
    AuthFailed,
    /// No proposal acceptable; both sides in strongSwan proposal syntax (the initiator
    /// only learns its own side: `configured` is then empty).
    NoProposalChosen {
        /// What the initiator offered.
        offered: Vec<String>,
        /// What the responder accepts.
        configured: Vec<String>,
    },
    /// No traffic selector acceptable (RFC 7296 §2.9); both sides' selectors.
    TsUnacceptable {
        /// The initiator's TSi, TSr.
        offered: (String, String),
        /// The responder's configured (remote, local) selectors, i.e. in TSi, TSr order;
        /// empty strings on the initiator, which does not learn them.
        configured: (String, String),
    },
    /// A request went unanswered through the whole retransmission schedule.
    Timeout,
    /// The hard lifetime passed.
    Expired,
    /// The Child SA was replaced by a rekeyed one, or was the redundant SA of a rekey
    /// collision (RFC 7296 §2.8.1). Extension to the agreed contract.
    Rekeyed,
    /// The peer answered with another error notify (its name). Extension.
    Protocol(String),
}

impl fmt::Display for DownReason {
    /// One line for logs and the CLI; NO_PROPOSAL_CHOSEN and TS_UNACCEPTABLE name both sides
    /// as the issue requires, in strongSwan's syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |v: &[String]| {
            if v.is_empty() {
                "(not known here)".to_owned()
            } else {
                v.join(", ")
            }
        };
        match self {
            Self::PeerDead => f.write_str("peer dead (DPD)"),
            Self::DeletedByPeer => f.write_str("deleted by the peer"),
            Self::DeletedLocally => f.write_str("deleted locally"),
            Self::AuthFailed => f.write_str("authentication failed"),
            Self::NoProposalChosen {
                offered,
                configured,
            } => write!(
                f,
                "no proposal chosen: offered {}; configured {}",
                side(offered),
                side(configured)
            ),
            Self::TsUnacceptable {
                offered,
                configured,
            } => write!(
                f,
                "traffic selectors unacceptable: offered {} === {}; configured {} === {}",
                offered.0, offered.1, configured.0, configured.1
            ),
            Self::Timeout => f.write_str("peer did not answer (retransmissions exhausted)"),
            Self::Expired => f.write_str("hard lifetime expired"),
            Self::Rekeyed => f.write_str("rekeyed"),
            Self::Protocol(n) => write!(f, "peer answered {n}"),
        }
    }
}

/// A negotiated Child SA: everything the data plane needs for both directions.
///
/// `keys_in`/`keys_out` are the KEYMAT halves of RFC 7296 §2.17 in the layout the `esp`
/// crate takes (`SaConfig` + `InboundSa::new(config, keymat)`): encryption key, then the
/// AEAD salt or the integrity key. Map `suite` to `esp::Transform` by
/// [`ChildSuite::encr`]`.id()` / `key_length_attr()` and `integ` (`Transform::ikev2_ids`).
#[derive(Debug, Clone)]
pub struct ChildSa {
    /// Our SPI (inbound ESP carries it).
    pub spi_in: u32,
    /// The peer's SPI (we send ESP with it).
    pub spi_out: u32,
    /// The negotiated algorithms.
    pub suite: ChildSuite,
    /// KEYMAT of the inbound SA.
    pub keys_in: Secret,
    /// KEYMAT of the outbound SA.
    pub keys_out: Secret,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our traffic selectors (sources of outbound packets).
    pub ts_local: Vec<AddrRange>,
    /// The peer's traffic selectors.
    pub ts_remote: Vec<AddrRange>,
    /// ESP in UDP on port 4500 (NAT detected, or faked by the peer as strongSwan's
    /// `encap=yes` does).
    pub encap: bool,
    /// Hard lifetime (the IKE layer deletes the SA when it passes).
    pub lifetime: Duration,
    /// Hard byte limit for `esp::Limits` (the soft one is the daemon's choice).
    pub lifetime_bytes: Option<u64>,
    /// The negotiated proposal in strongSwan syntax, e.g. `ESP:aes128gcm16`. Extension.
    pub proposal: String,
    /// We are the responder of a rekey: keep *sending* on the replaced child until its
    /// [`Event::ChildDown`] (the initiator deletes it once it has installed this one),
    /// then switch; receive on both meanwhile. strongSwan does the same. `false`: send on
    /// this child at once. Extension.
    pub delay_outbound: bool,
}

/// Something the daemon must act on, drained with [`Endpoint::poll_event`](super::Endpoint::poll_event).
#[derive(Debug, Clone)]
pub enum Event {
    /// An IKE SA was established (not emitted for IKE SA rekeys).
    IkeUp {
        /// Connection.
        conn: ConnId,
        /// Its name.
        name: String,
        /// Our address as used by the SA (port 4500 after NAT-T).
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
        /// The IKE proposal, e.g. `IKE:aes128gcm16-prfsha256-x25519`.
        proposal: String,
    },
    /// A Child SA to install. Install it before the old one is removed
    /// (make-before-break); `replaces` = the old child's (spi_in, spi_out) on a rekey,
    /// which goes down with a later [`Event::ChildDown`]. While two children of a
    /// connection are up, send on the newest one and accept on both.
    ChildUp {
        /// Connection.
        conn: ConnId,
        /// The SA.
        child: ChildSa,
        /// The child this one rekeys.
        replaces: Option<(u32, u32)>,
    },
    /// A Child SA to remove.
    ChildDown {
        /// Connection.
        conn: ConnId,
        /// Its inbound SPI.
        spi_in: u32,
        /// Its outbound SPI.
        spi_out: u32,
        /// Why.
        reason: DownReason,
    },
    /// The IKE SA went down, or an attempt to establish one failed. Every Child SA of it
    /// has had its [`Event::ChildDown`] before.
    IkeDown {
        /// Connection.
        conn: ConnId,
        /// Why.
        reason: DownReason,
    },
    /// NAT-T: the IKE SA now talks to another address or port (floated to 4500, or the
    /// peer's NAT mapping changed). ESP must follow.
    PeerMoved {
        /// Connection.
        conn: ConnId,
        /// The peer's new address.
        remote: SocketAddr,
    },
}

/// Counters (dropped datagrams by reason, retransmissions, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent (IKE messages, not keepalives).
    pub sent: u64,
    /// Retransmitted requests.
    pub retransmits: u64,
    /// Requests answered from the response cache.
    pub cached_responses: u64,
    /// NAT-T keepalives sent.
    pub keepalives: u64,
    /// Dropped: not a valid IKEv2 message.
    pub dropped_malformed: u64,
    /// Dropped: no IKE SA with that SPI.
    pub dropped_unknown_spi: u64,
    /// Dropped: the ICV or tag did not verify.
    pub dropped_integrity: u64,
    /// Dropped: a response to no outstanding request, or a request out of window.
    pub dropped_message_id: u64,
    /// Dropped: legal but unexpected in this state.
    pub dropped_unexpected: u64,
    /// Dropped: the half-open limit for the peer address was reached.
    pub dropped_half_open: u64,
    /// COOKIE notifies sent.
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests with an invalid cookie.
    pub dropped_bad_cookie: u64,
    /// Error notifies sent in answer to bad requests (all types; the counters below break
    /// some of them out).
    pub error_notifies_sent: u64,
    /// INVALID_SYNTAX sent: a request that was malformed, lacked a required payload, or
    /// was not valid in the SA's state (RFC 7296 §2.21.2, §2.21.3, §3.10.1). Extension.
    pub invalid_syntax_sent: u64,
    /// UNSUPPORTED_CRITICAL_PAYLOAD sent (RFC 7296 §2.5). Extension.
    pub unsupported_critical_sent: u64,
    /// Unprotected INVALID_IKE_SPI sent for a request to an unknown IKE SA (RFC 7296
    /// §1.5, §2.21.4). Extension.
    pub invalid_ike_spi_sent: u64,
    /// Unprotected INVALID_MAJOR_VERSION sent (RFC 7296 §1.5, §2.5). Extension.
    pub invalid_major_version_sent: u64,
    /// Unprotected error notifies not sent because the peer address already had one in
    /// the last second (RFC 7296 §2.21.4). Extension.
    pub rate_limited_notifies: u64,
    /// Authenticated responses whose payloads did not parse (never answered, RFC 7296
    /// §2.21; the exchange fails). Extension.
    pub malformed_responses: u64,
}

/// The state of an IKE SA, for `sa list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaState {
    /// Initiator, IKE_SA_INIT sent.
    ExpectSaInitResponse,
    /// Initiator, IKE_AUTH sent.
    ExpectAuthResponse,
    /// Responder, IKE_SA_INIT answered (half-open).
    ExpectAuthRequest,
    /// Established.
    Established,
    /// Replaced by a rekeyed IKE SA, waiting for the DELETE.
    Rekeyed,
    /// Our DELETE is outstanding.
    Deleting,
    /// Gone; answering retransmissions only.
    Closed,
}

/// An IKE SA as listed by [`Endpoint::sas`](super::Endpoint::sas).
#[derive(Debug, Clone)]
pub struct SaInfo {
    /// Connection.
    pub conn: ConnId,
    /// Its name.
    pub name: String,
    /// Original initiator or responder.
    pub role: Role,
    /// State.
    pub state: SaState,
    /// Initiator's SPI.
    pub spi_i: IkeSpi,
    /// Responder's SPI.
    pub spi_r: IkeSpi,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// IKE proposal (empty before IKE_SA_INIT completed).
    pub proposal: String,
    /// When it was established.
    pub established_at: Option<Instant>,
    /// Its Child SAs.
    pub children: Vec<ChildInfo>,
}

/// A Child SA as listed by [`Endpoint::sas`](super::Endpoint::sas).
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// Inbound SPI.
    pub spi_in: u32,
    /// Outbound SPI.
    pub spi_out: u32,
    /// ESP proposal.
    pub proposal: String,
    /// Our selectors.
    pub ts_local: Vec<AddrRange>,
    /// The peer's selectors.
    pub ts_remote: Vec<AddrRange>,
    /// When it was installed.
    pub established_at: Instant,
}
