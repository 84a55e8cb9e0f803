//! A sans-IO BGP-4 speaker ([RFC 4271]): wire codec, per-peer finite state machine,
//! Adj-RIB-In / Loc-RIB / Adj-RIB-Out with the decision process, and routing policy.
//!
//! This crate owns the protocol: bytes and timer expiries in, bytes, timer requests and
//! route changes out. It never opens a socket, reads a clock, spawns a thread or touches a
//! kernel route: the `vpngw` daemon drives it over TCP, keeps its timers, and installs the
//! [`rib::Route`](::rib::Route)s it selects into a [`rib::Table`](::rib::Table).
//!
//! ```text
//!   driver (vpngw: TCP, clock, tunnel state)                       bgp
//!   ───────────────────────────────────────     ──────────────────────────────────────────
//!   TCP bytes ──────── Input::Received ──────►  Speaker::process(peer, input)
//!   connect ok/fail ── Input::TcpConnected/..►    │ Session (neighbor.rs): Framer → Message
//!   timer fired ────── Input::TimerExpired ──►    │   ::decode → FSM (RFC 4271 §8)
//!   tunnel down ────── Input::TransportDown ─►    │ UPDATE → import policy → Adj-RIB-In
//!                                                 │   → Loc-RIB decision (rib.rs, §9.1)
//!   write / close ◄─── Output::Send / Close ──    │   → export policy → Adj-RIB-Out
//!   arm timers ◄────── Output::SetTimer ──────    │   → UPDATEs packed by attributes
//!   rib::Table ◄────── Event::RoutesChanged ──    ▼
//! ```
//!
//! Modules, after holo-bgp's map: [`packet`] (codec: [`packet::message`],
//! [`packet::attribute`], [`packet::iana`], [`packet::error`]), [`neighbor`] (the
//! per-peer [`Session`]), [`rib`] (RIBs and [`rib::best_path`]), [`policy`], [`timer`],
//! [`speaker`] (the [`Speaker`] that ties them together), [`error`].
//!
//! What is supported: sessions active or passive, eBGP and iBGP, hold/keepalive negotiation
//! (default 30/10 s); capabilities 4-octet AS ([RFC 6793], with AS4_PATH/AS4_AGGREGATOR
//! towards 2-octet speakers), multiprotocol IPv4/IPv6 unicast ([RFC 4760]), route refresh
//! ([RFC 2918]), graceful restart as helper ([RFC 4724]); UPDATE error handling per
//! [RFC 7606] (treat-as-withdraw, attribute discard, session reset, see
//! [`packet::attribute`]); NOTIFICATION codes as named constants ([`packet::iana`]);
//! prefix filters with ge/le, max-prefix with drop-excess or reset ([RFC 4486]), AS-path
//! prepend, MED, next-hop-self; [RFC 8212] default-deny on external sessions; End-of-RIB;
//! an immediate close with every learned route withdrawn when the transport (the IPsec
//! tunnel) goes down ([`neighbor::Input::TransportDown`]); connection collision detection
//! ([RFC 4271 §6.8]): both ends may connect at once, the driver hands the session a second
//! connection while the first is in OpenSent or OpenConfirm
//! ([`Session::accepts_collision`]), and the session keeps the one opened by the speaker
//! with the higher BGP Identifier (the larger AS on equal identifiers, [RFC 6286] §2.3),
//! sending Cease / Connection Collision Resolution on the other (see [`neighbor`] for the
//! driver's part). Not supported: ADD-PATH, extended messages, route reflection,
//! confederations (segments are decoded and counted), collision detection against an
//! Established session (the newer connection is refused, the RFC's default), TCP-MD5 (a
//! socket option, the driver's business).
//!
//! # Why a hand-written codec
//!
//! The wire format is written here rather than taken from `netgauze-bgp-pkt` (checked at
//! 0.13.0). That crate is a complete, well-kept BGP model (BGP-LS, EVPN, MPLS labels, SR
//! and more, about 32 000 lines plus `netgauze-iana`, `netgauze-parse-utils` and
//! `strum_macros`), which is far more than a VPN gateway's two unicast families need and
//! weighs on a 2-core build; more to the point, its UPDATE parser still marks RFC 7606
//! handling as a TODO and maps attribute errors to NOTIFICATIONs, while this speaker must
//! classify every attribute error into session-reset, treat-as-withdraw or
//! attribute-discard, and merge AS4_PATH per RFC 6793 with the negotiated context. The
//! codec here (`packet/`, about 3 300 lines including its unit tests and RFC diagrams) has
//! no dependency beyond `ipnet`, decodes straight into the attribute values the RIBs share
//! behind an `Arc`, and encodes UPDATEs by packing prefixes into 4096-octet messages
//! without intermediate values, which is what the 100 000-prefix relay benchmark exercises.
//! Its encodings match BIRD's byte for byte (captures in `tests/fixtures/`).
//!
//! # Tests
//!
//! `tests/codec.rs` (captures from BIRD and GoBGP, both ways), `tests/rfc7606.rs`,
//! `tests/proptest.rs` (round trips, random bytes), `tests/fsm.rs` (the session's outputs),
//! `tests/decision.rs`, `tests/speaker.rs` (scripted peers), `tests/collision.rs` (RFC 4271
//! §6.8 with scripted peers, and two speakers opening connections to each other at once),
//! `tests/session.rs` (speakers back to back on virtual time). Against real daemons in network namespaces, as root:
//! `cargo test -p bgp --test bird -- --ignored` (needs `bird2`) and
//! `cargo test -p bgp --test gobgp -- --ignored` (needs `gobgpd`) and
//! `cargo test -p bgp --test frr -- --ignored` (needs `frr`: its `bgpd` alone, without
//! zebra, configured from the test's own directory). The cargo-fuzz target
//! for UPDATE parsing is one line over `bgp::fuzzing::update_decode` (feature `fuzzing`).
//!
//! [RFC 4271]: https://www.rfc-editor.org/rfc/rfc4271
//! [RFC 4271 §6.8]: https://www.rfc-editor.org/rfc/rfc4271#section-6.8
//! [RFC 6286]: https://www.rfc-editor.org/rfc/rfc6286
//! [RFC 6793]: https://www.rfc-editor.org/rfc/rfc6793
//! [RFC 4760]: https://www.rfc-editor.org/rfc/rfc4760
//! [RFC 2918]: https://www.rfc-editor.org/rfc/rfc2918
//! [RFC 4724]: https://www.rfc-editor.org/rfc/rfc4724
//! [RFC 7606]: https://www.rfc-editor.org/rfc/rfc7606
//! [RFC 4486]: https://www.rfc-editor.org/rfc/rfc4486
//! [RFC 8212]: https://www.rfc-editor.org/rfc/rfc8212
#![warn(missing_docs)]
// Nothing on a peer-controlled path may panic: index with `get`, never unwrap. Tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod neighbor;
pub mod packet;
pub mod policy;
pub mod rib;
pub mod speaker;
pub mod timer;

pub use error::{ConfigError, PeerMisbehaved, SessionError};
pub use neighbor::{DownReason, Input, PeerConfig, Session, State};
pub use packet::{
    iana::Family,
    message::{Message, Notification, Update},
};
pub use policy::{check_dc_asn, AsnMismatch};
pub use rib::PeerId;
pub use speaker::{Event, LocalRoute, Output, RouteChange, Speaker, SpeakerConfig};
pub use timer::{Timer, TimerTable};
