//! IKEv2 ([RFC 7296]) for the vpngw IPsec gateway: the wire codec, the proposal language
//! and negotiation, the cryptographic suite, and the sans-IO state machines ([`fsm`]:
//! [`Endpoint`] and its IKE SAs).
//!
//! This crate owns:
//!
//! - **the codec** ([`packet`]): the IKE header, the generic payload chain with critical
//!   bit handling, every RFC 7296 payload (SA with proposals, transforms and attributes;
//!   KE; IDi/IDr; CERT/CERTREQ kept raw; AUTH; Nonce; Notify; Delete; Vendor ID; TSi/TSr;
//!   the SK container), strict decoding through a bounds-checked reader that never panics,
//!   and exact re-encoding;
//! - **proposals** ([`proposal`]): the grouped model, strongSwan's proposal-string syntax
//!   (`aes128gcm16-prfsha256-x25519`), responder selection and the `NO_PROPOSAL_CHOSEN`
//!   report with both sides in that syntax;
//! - **the crypto suite** ([`crypto`]): HMAC-SHA2 PRFs and `prf+`, SKEYSEED and the seven
//!   IKE SA keys, Child SA KEYMAT with and without PFS, rekeyed SKEYSEED, PSK AUTH with
//!   constant-time verification, NAT detection hashes, cookies, SK payload protection
//!   (AES-GCM-16, ChaCha20-Poly1305, AES-CBC + HMAC-SHA2), and key exchange over groups 14,
//!   19, 20, 21 and 31 with peer-value validation;
//! - **errors** ([`error`]) split by blame, each mapped to the Notify RFC 7296 prescribes.
//!
//! It never does I/O: no sockets, no clocks, no threads, no logging, and no randomness of
//! its own (an [`Rng`] is passed in; [`SystemRng`] wraps AWS-LC's CSPRNG; the time is
//! passed in as `now`). Retransmission, timeouts and the decision whether to answer a
//! message belong to [`fsm`]; the codec and crypto layers below it hold no per-SA state.
//!
//! ```text
//!  UDP payload ──> Message::decode ───────────────> Message { header, payloads }
//!      │                                                     │ SA ──> proposal::select
//!      │                                                     │ KE ──> KeyExchange::agree
//!      │                                        IkeKeys::derive ──> (Sealer, Opener)
//!      └──────> Opener::open (ICV first) ──────> Decrypted { header, payloads }
//!                                                            │ AUTH ─> crypto::auth
//!  MessageBuilder ──encode (IKE_SA_INIT) / seal(Sealer, Rng)──> UDP payload
//!  errors: Error ──notify()──> the Notify to answer with, or None (drop and count)
//! ```
//!
//! Primitives come from AWS-LC through `aws-lc-rs`, the backend the `esp` crate uses; the
//! one exception is the 2048-bit MODP group (14), which AWS-LC does not expose: it is
//! computed with `crypto-bigint`'s constant-time Montgomery exponentiation (see
//! [`crypto::dh`]). Key material lives in [`Secret`]s and AWS-LC key objects, which are
//! zeroized when dropped and never printed by `Debug`.
//!
//! [RFC 7296]: https://www.rfc-editor.org/rfc/rfc7296

#![warn(missing_docs)]
// Nothing on the packet path may panic: index with `get`, never unwrap. Tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod crypto;
pub mod error;
pub mod fsm;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod packet;
pub mod proposal;
mod rng;
mod secret;

#[cfg(test)]
mod tests;

pub use crypto::{ChildKeys, ChildSuite, Encr, IkeKeys, IkeSuite, Integ, KeyExchange, Prf, Role};
pub use error::{ApiMisuse, DecodeError, DecodeErrorKind, Error, PeerMisbehaved, Unsupported};
pub use fsm::{
    ChildInfo, ChildSa, ChildSaSignal, ConnId, ConnectionConfig, DownReason, DpdAction, Endpoint,
    EndpointConfig, Event, RetransmitConfig, SaInfo, SaState, Stats, TrafficSelectorPolicy,
    Transmit,
};
pub use packet::{Message, MessageBuilder};
pub use proposal::{select, NoProposalChosen, Proposal, Selected};
pub use rng::{RandomError, Rng, SystemRng};
pub use secret::Secret;
