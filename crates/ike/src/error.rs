//! Errors, split by who is to blame, and the one mapping from an error to the Notify that
//! RFC 7296 says to answer with.
//!
//! | variant | blame | answer (if the message was a request) |
//! |---|---|---|
//! | [`Error::Malformed`] | the bytes are not IKEv2 | `INVALID_SYNTAX` |
//! | [`Error::PeerMisbehaved`] | legal bytes, illegal behaviour | depends ([`PeerMisbehaved`]) |
//! | [`Error::Unsupported`] | legal, but not something we do | depends ([`Unsupported`]) |
//! | [`Error::ApiMisuse`] | our caller | nothing: it is a bug here |
//! | [`Error::Crypto`] | the crypto library or RNG | nothing |
//!
//! Whether a Notify is actually sent is the state machine's decision: RFC 7296 §2.21 never
//! answers a response, answers unauthenticated messages only in a few cases, and drops
//! messages that fail the integrity check. [`Error::notify`] only says *which* Notify fits.

use std::fmt;

use crate::packet::iana::{KeMethod, NotifyType, PayloadType};
use crate::proposal::NoProposalChosen;

/// Anything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes do not form a valid IKEv2 message.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The peer sent legal bytes that break a protocol rule.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// The peer asked for something this implementation does not do.
    #[error("unsupported: {0}")]
    Unsupported(#[from] Unsupported),
    /// The caller broke an API contract (a bug on our side, never the peer's).
    #[error("API misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
    /// The crypto library or the random source failed.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

/// A Notify payload that answers an error: type and notification data (RFC 7296 §3.10.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorNotify {
    /// The Notify Message Type.
    pub notify_type: NotifyType,
    /// The Notification Data this type carries (may be empty).
    pub data: Vec<u8>,
}

impl From<ErrorNotify> for crate::packet::NotifyPayload {
    /// The Notify payload (Protocol ID 0, no SPI) that answers the error.
    fn from(n: ErrorNotify) -> Self {
        Self::new(n.notify_type, n.data)
    }
}

/// How loudly an error should be logged; the daemon maps this onto its logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Routine noise an attacker can produce at will (counted, logged at debug).
    Debug,
    /// A negotiation failure an operator may want to see.
    Info,
    /// The peer broke the protocol after authentication, or a configuration mismatch.
    Warn,
    /// A bug or a failed crypto library: never the peer's doing.
    Error,
}

impl Error {
    /// The Notify error type RFC 7296 prescribes for this error, with its data, if the
    /// message that caused it was a request that gets an answer. `None`: drop (and count).
    pub fn notify(&self) -> Option<ErrorNotify> {
        let simple = |t| {
            Some(ErrorNotify {
                notify_type: t,
                data: Vec::new(),
            })
        };
        match self {
            Self::Malformed(_) => simple(NotifyType::INVALID_SYNTAX),
            Self::PeerMisbehaved(p) => match p {
                // §2.21.2/§3.14: a message failing its integrity check is silently dropped.
                PeerMisbehaved::IntegrityCheckFailed => None,
                PeerMisbehaved::AuthenticationFailed => simple(NotifyType::AUTHENTICATION_FAILED),
                PeerMisbehaved::WrongKeMethod { expected, .. } => Some(ErrorNotify {
                    notify_type: NotifyType::INVALID_KE_PAYLOAD,
                    data: expected.0.to_be_bytes().to_vec(),
                }),
                PeerMisbehaved::InvalidKePublicValue { .. }
                | PeerMisbehaved::BadPadding
                | PeerMisbehaved::NotEncrypted
                | PeerMisbehaved::BadProposal(_) => simple(NotifyType::INVALID_SYNTAX),
            },
            Self::Unsupported(u) => match u {
                Unsupported::MajorVersion(v) if *v > 2 => simple(NotifyType::INVALID_MAJOR_VERSION),
                // IKEv1 and other older versions: not ours to answer.
                Unsupported::MajorVersion(_) => None,
                Unsupported::CriticalPayload { payload_type, .. } => Some(ErrorNotify {
                    notify_type: NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
                    data: vec![payload_type.0],
                }),
                Unsupported::NoProposalChosen(_) => simple(NotifyType::NO_PROPOSAL_CHOSEN),
                Unsupported::KeMethod(_) => simple(NotifyType::NO_PROPOSAL_CHOSEN),
                Unsupported::Algorithm(_) => simple(NotifyType::NO_PROPOSAL_CHOSEN),
            },
            Self::ApiMisuse(_) | Self::Crypto(_) => None,
        }
    }

    /// The log level this error deserves (one place decides, as `holo-bgp`'s
    /// `Error::log`): anything an unauthenticated attacker can trigger at will stays at
    /// [`Level::Debug`] so it cannot flood the log.
    pub fn level(&self) -> Level {
        match self {
            Self::Malformed(_) => Level::Debug,
            Self::PeerMisbehaved(PeerMisbehaved::IntegrityCheckFailed) => Level::Debug,
            Self::PeerMisbehaved(PeerMisbehaved::AuthenticationFailed) => Level::Warn,
            Self::PeerMisbehaved(_) => Level::Info,
            Self::Unsupported(Unsupported::NoProposalChosen(_)) => Level::Warn,
            Self::Unsupported(_) => Level::Debug,
            Self::ApiMisuse(_) | Self::Crypto(_) => Level::Error,
        }
    }
}

/// Malformed bytes: what was wrong, where (absolute byte offset in the buffer handed to the
/// decoder), and inside which structures (outermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset from the start of the decoded buffer where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// The structures being decoded, innermost last (e.g. `["SA", "proposal", "transform"]`).
    pub context: Vec<&'static str>,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        Self {
            offset,
            kind,
            context: Vec::new(),
        }
    }

    /// Adds an enclosing structure name (called while the error bubbles outwards).
    pub(crate) fn within(mut self, what: &'static str) -> Self {
        self.context.insert(0, what);
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context.join(" > "))?;
        }
        write!(f, "{} (at byte {})", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// The ways bytes can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// A field or structure runs past the end of its enclosing length.
    #[error("truncated: need {needed} bytes, {remaining} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes left over after a structure that must fill its enclosing length exactly.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A length (declared or implied) is out of the range the RFC allows.
    #[error("invalid length {length} for {what}")]
    InvalidLength {
        /// What had the length.
        what: &'static str,
        /// The offending length.
        length: usize,
    },
    /// A field holds a value the RFC forbids.
    #[error("invalid value {value} for {what}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The offending value.
        value: u32,
    },
    /// A structural rule is broken.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Adds decode context to a `Result` as the error bubbles out of a structure.
pub(crate) trait Within<T> {
    fn within(self, what: &'static str) -> Result<T, Error>;
}

impl<T> Within<T> for Result<T, Error> {
    fn within(self, what: &'static str) -> Self {
        self.map_err(|e| e.within(what))
    }
}

impl Error {
    /// Adds decode context to a [`Error::Malformed`]; other errors pass through.
    pub(crate) fn within(self, what: &'static str) -> Self {
        match self {
            Self::Malformed(d) => Self::Malformed(d.within(what)),
            other => other,
        }
    }
}

/// Legal bytes, illegal behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerMisbehaved {
    /// The ICV or AEAD tag of an SK payload did not verify (RFC 7296 §3.14). Drop silently.
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    /// The AUTH payload did not match (RFC 7296 §2.15).
    #[error("AUTH payload did not verify")]
    AuthenticationFailed,
    /// A KE payload for another group than the one negotiated (RFC 7296 §1.2, §3.4).
    #[error("KE payload for {received}, expected {expected}")]
    WrongKeMethod {
        /// The group the responder accepts.
        expected: KeMethod,
        /// The group the peer used.
        received: KeMethod,
    },
    /// The peer's public key-exchange value is invalid (RFC 6989, RFC 5903, RFC 8031).
    #[error("invalid {method} public value: {reason}")]
    InvalidKePublicValue {
        /// The key-exchange method.
        method: KeMethod,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The decrypted SK content had an impossible Pad Length (RFC 7296 §3.14).
    #[error("invalid padding in encrypted payload")]
    BadPadding,
    /// A message that must be protected carried no SK payload (RFC 7296 §3.14).
    #[error("message is not encrypted")]
    NotEncrypted,
    /// A proposal in a response that is not a valid pick from the request (RFC 7296 §2.7).
    #[error("bad proposal: {0}")]
    BadProposal(&'static str),
}

/// Something legal this implementation does not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// A major version other than 2 (RFC 7296 §2.5).
    #[error("IKE major version {0}")]
    MajorVersion(u8),
    /// A payload type we do not understand with the critical bit set (RFC 7296 §2.5).
    #[error("unsupported critical payload {payload_type} at byte {offset}")]
    CriticalPayload {
        /// The payload type.
        payload_type: PayloadType,
        /// Where its generic header started.
        offset: usize,
    },
    /// No proposal acceptable (RFC 7296 §2.7); both sides rendered for the log.
    #[error("{0}")]
    NoProposalChosen(Box<NoProposalChosen>),
    /// A key-exchange method this crate does not implement.
    #[error("key exchange method {0} not implemented")]
    KeMethod(KeMethod),
    /// A negotiated transform this crate cannot run.
    #[error("algorithm not implemented: {0}")]
    Algorithm(String),
}

/// A broken API contract: a bug in the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiMisuse {
    /// A structure is too long for its length field.
    #[error("{what} too long: {length} bytes")]
    TooLong {
        /// The structure.
        what: &'static str,
        /// Its length.
        length: usize,
    },
    /// A value outside what the RFC allows was given to an encoder or builder.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value.
        value: usize,
    },
    /// Key material of the wrong length for the algorithm.
    #[error("key for {what} must be {expected} bytes, got {got}")]
    KeyLength {
        /// The algorithm or key.
        what: &'static str,
        /// The length it needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// Anything else.
    #[error("{0}")]
    Other(&'static str),
}

impl From<NoProposalChosen> for Error {
    fn from(n: NoProposalChosen) -> Self {
        Self::Unsupported(Unsupported::NoProposalChosen(Box::new(n)))
    }
}
