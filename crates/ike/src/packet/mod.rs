//! The IKEv2 wire codec (RFC 7296 §3): header, payload chain, payloads, and the
//! bounds-checked reader they are all decoded with.
//!
//! ```text
//!  datagram ──> Message::decode ──> Message { header, payloads }
//!                                         └─ Payload::Encrypted (sealed) ──> Opener::open
//!  MessageBuilder ──> encode (clear) | seal (SK) ──> datagram
//! ```

pub(crate) mod codec;
pub mod header;
pub mod iana;
pub mod message;
pub mod payload;
pub mod sa;
pub mod ts;

pub use header::{Flags, Header, IkeSpi, RawHeader};
pub use message::{find_notify, Message, MessageBuilder};
pub use payload::{
    AuthPayload, CertPayload, DeletePayload, EncryptedFragment, EncryptedPayload, Identity,
    KePayload, Nonce, NotifyPayload, Payload, UnknownPayload,
};
pub use sa::{Attribute, AttributeValue, SaPayload, Transform, WireProposal};
pub use ts::{AddrRange, TrafficSelector, TrafficSelectors};
