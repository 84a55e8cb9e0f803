//! Sans-IO ESP ([RFC 4303]) in tunnel mode, over UDP ([RFC 3948]): the data plane of the
//! vpngw IPsec gateway.
//!
//! This crate owns the per-packet work between the tunnel interface and the port-4500
//! socket: sealing inner IP packets into ESP, opening ESP back into inner packets, the
//! anti-replay window, sequence numbers (32-bit and ESN), SA byte/packet lifetimes, the
//! inbound SA table keyed by SPI, and the classifier that separates IKE, ESP and
//! NAT-keepalives on port 4500.
//!
//! It never does I/O: no sockets, no clocks, no threads, no logging, and no allocation per
//! packet. It never negotiates anything either: SAs arrive fully formed (transform, SPI,
//! KEYMAT) from the `ike` crate, and limit events go back to it.
//!
//! ```text
//!  TUN read ──> buf[headroom | inner IP | tailroom]
//!                    │ OutboundSa::seal / seal_batch      (SPI, seq, IV, pad, ICV in place)
//!                    v
//!               buf[.. | ESP packet | ..] ──> UDP 4500 send
//!
//!  UDP 4500 recv ──> buf[datagram]
//!                    │ SadIn::handle_datagram / _batch
//!                    ├── Received::Ike          ──> ike crate (marker stripped)
//!                    ├── Received::NatKeepalive ──> ignore
//!                    └── ESP: SPI lookup ─> replay check ─> ICV + decrypt ─> window update
//!                          ─> padding check ─> Received::Ipv4/Ipv6 ──> TUN write
//!                                            └─> Received::Dummy   ──> discard
//!  errors: RecvError (typed), counted per DropReason in SadIn::drop_counters
//!  events: OutboundSa::poll_event, SadIn::poll_event ──> control plane (rekey / delete)
//! ```
//!
//! Transforms ([`Transform`]): AES-GCM-16 with 128/256-bit keys ([RFC 4106]),
//! ChaCha20-Poly1305 ([RFC 7634]), and AES-CBC-128/256 with HMAC-SHA-256-128 ([RFC 3602],
//! [RFC 4868]). All primitives come from AWS-LC via `aws-lc-rs`; key schedules are cleansed
//! when SAs drop, and no `Debug` output contains key material.
//!
//! AEAD IVs are the 64-bit sequence number (unique per key, as RFC 4106 §3.1 requires and
//! as Linux and strongSwan do); CBC IVs come from an [`IvSource`] ([`SystemRng`] by
//! default).
//!
//! [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303
//! [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
//! [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106
//! [RFC 7634]: https://www.rfc-editor.org/rfc/rfc7634
//! [RFC 3602]: https://www.rfc-editor.org/rfc/rfc3602
//! [RFC 4868]: https://www.rfc-editor.org/rfc/rfc4868

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

mod counters;
mod crypto;
pub mod encap;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod limits;
pub mod replay;
mod rng;
mod sa;
mod sad;
mod transform;
pub mod wire;

#[cfg(test)]
mod tests;

pub use counters::{DropCounters, RxCounters};
pub use error::{ConfigError, DropReason, RecvError, SadError, SealError};
pub use limits::{LimitKind, Limits, SaEvent};
pub use replay::ReplayWindow;
pub use rng::{IvSource, RandomError, SystemRng};
pub use sa::{InboundSa, OutboundSa, SaConfig, Sealed};
pub use sad::{Outcome, Received, SadIn, Slot};
pub use transform::{Ikev2Ids, ParseTransformError, Transform};
pub use wire::esp::Spi;
