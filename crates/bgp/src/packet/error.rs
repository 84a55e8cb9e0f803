//! Codec errors, split by what follows from them.
//!
//! * [`DecodeError`]: the bytes are malformed in a way that ends the session. It maps to the
//!   NOTIFICATION to send through the one mapping `From<&DecodeError> for Notification`.
//! * [`AttrError`]: an UPDATE attribute is malformed in a way [RFC 7606] lets the session
//!   survive. It travels inside the decoded [`Update`](super::message::Update) and says which
//!   of the RFC's approaches applies: treat-as-withdraw or attribute discard.
//! * [`EncodeError`]: the caller asked for something the wire cannot carry.
//!
//! [RFC 7606]: https://www.rfc-editor.org/rfc/rfc7606

use std::{fmt, net::Ipv4Addr};

use thiserror::Error;

use super::{
    iana::{header_error, open_error, update_error, AttrType, ErrorCode, MessageType},
    message::Notification,
};

/// A message that cannot be decoded; the session must be reset (RFC 4271 §6, RFC 7606 §2's
/// "session reset").
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message} at offset {offset}: {kind}")]
pub struct DecodeError {
    /// The message being decoded (as the header said; for header errors, the type field if it
    /// was read, else 0).
    pub message: MessageType,
    /// Byte offset from the start of the message (the first marker octet).
    pub offset: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(message: MessageType, offset: usize, kind: DecodeErrorKind) -> Self {
        Self {
            message,
            offset,
            kind,
        }
    }
}

/// What made a message undecodable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    /// The marker is not all ones (RFC 4271 §6.1).
    #[error("marker is not all ones")]
    ConnectionNotSynchronized,
    /// The length field is out of bounds for the message (RFC 4271 §6.1).
    #[error("bad message length {0}")]
    BadMessageLength(u16),
    /// Unknown message type (RFC 4271 §6.1).
    #[error("bad message type {0}")]
    BadMessageType(u8),
    /// A field runs past the end of its enclosing structure.
    #[error("truncated {what}: needs {needed} octets, {available} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Octets the field needs.
        needed: usize,
        /// Octets left.
        available: usize,
    },
    /// Octets left over after a structure that must fill its space exactly.
    #[error("{0} trailing octets")]
    TrailingBytes(usize),
    /// OPEN version is not 4 (RFC 4271 §6.2).
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    /// OPEN BGP Identifier is zero (RFC 6286 §2.2).
    #[error("bad BGP identifier {0}")]
    BadBgpIdentifier(Ipv4Addr),
    /// OPEN optional parameter other than Capabilities (RFC 4271 §6.2, RFC 5492).
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    /// OPEN optional parameters that do not add up.
    #[error("malformed optional parameters")]
    MalformedOptionalParameters,
    /// UPDATE: the withdrawn-routes or attribute lengths overrun the message, or an
    /// MP_REACH_NLRI / MP_UNREACH_NLRI attribute appears twice (RFC 7606 §3 g).
    #[error("malformed attribute list: {0}")]
    MalformedAttributeList(&'static str),
    /// UPDATE: a well-known attribute this speaker does not know (RFC 4271 §6.3).
    #[error("unrecognized well-known attribute {type_code}")]
    UnrecognizedWellKnownAttribute {
        /// The attribute's type.
        type_code: AttrType,
        /// The whole attribute (flags, type, length, value), for the NOTIFICATION data.
        attribute: Vec<u8>,
    },
    /// UPDATE: an NLRI or withdrawn prefix is malformed (RFC 7606 §5.3).
    #[error("invalid network field: {0}")]
    InvalidNetworkField(&'static str),
    /// UPDATE: an MP_REACH_NLRI or MP_UNREACH_NLRI attribute is malformed, so its NLRI cannot
    /// be located (RFC 7606 §7.11, §7.12).
    #[error("malformed {type_code}: {reason}")]
    MalformedMpAttribute {
        /// MP_REACH_NLRI or MP_UNREACH_NLRI.
        type_code: AttrType,
        /// What is wrong.
        reason: &'static str,
        /// The whole attribute, for the NOTIFICATION data.
        attribute: Vec<u8>,
    },
}

impl From<&DecodeError> for Notification {
    /// The NOTIFICATION that answers a decode error (RFC 4271 §6, RFC 7606).
    ///
    /// A NOTIFICATION that cannot be decoded is answered by closing the connection (RFC 4271
    /// §6.4); the value returned for it here is only informative.
    fn from(e: &DecodeError) -> Self {
        use DecodeErrorKind as K;
        let n = Self::new;
        match &e.kind {
            K::ConnectionNotSynchronized => n(
                ErrorCode::MESSAGE_HEADER,
                header_error::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ),
            K::BadMessageLength(len) => n(
                ErrorCode::MESSAGE_HEADER,
                header_error::BAD_MESSAGE_LENGTH,
                len.to_be_bytes().to_vec(),
            ),
            K::BadMessageType(t) => n(
                ErrorCode::MESSAGE_HEADER,
                header_error::BAD_MESSAGE_TYPE,
                vec![*t],
            ),
            K::Truncated { .. } | K::TrailingBytes(_) => match e.message {
                MessageType::OPEN => n(ErrorCode::OPEN_MESSAGE, open_error::UNSPECIFIC, vec![]),
                MessageType::UPDATE => n(
                    ErrorCode::UPDATE_MESSAGE,
                    update_error::MALFORMED_ATTRIBUTE_LIST,
                    vec![],
                ),
                _ => n(
                    ErrorCode::MESSAGE_HEADER,
                    header_error::BAD_MESSAGE_LENGTH,
                    vec![],
                ),
            },
            K::UnsupportedVersion(_) => n(
                ErrorCode::OPEN_MESSAGE,
                open_error::UNSUPPORTED_VERSION_NUMBER,
                // The largest version we support (RFC 4271 §6.2).
                4u16.to_be_bytes().to_vec(),
            ),
            K::BadBgpIdentifier(_) => n(
                ErrorCode::OPEN_MESSAGE,
                open_error::BAD_BGP_IDENTIFIER,
                vec![],
            ),
            K::UnsupportedOptionalParameter(_) => n(
                ErrorCode::OPEN_MESSAGE,
                open_error::UNSUPPORTED_OPTIONAL_PARAMETER,
                vec![],
            ),
            K::MalformedOptionalParameters => {
                n(ErrorCode::OPEN_MESSAGE, open_error::UNSPECIFIC, vec![])
            }
            K::MalformedAttributeList(_) => n(
                ErrorCode::UPDATE_MESSAGE,
                update_error::MALFORMED_ATTRIBUTE_LIST,
                vec![],
            ),
            K::UnrecognizedWellKnownAttribute { attribute, .. } => n(
                ErrorCode::UPDATE_MESSAGE,
                update_error::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                attribute.clone(),
            ),
            K::InvalidNetworkField(_) => n(
                ErrorCode::UPDATE_MESSAGE,
                update_error::INVALID_NETWORK_FIELD,
                vec![],
            ),
            K::MalformedMpAttribute { attribute, .. } => n(
                ErrorCode::UPDATE_MESSAGE,
                update_error::OPTIONAL_ATTRIBUTE_ERROR,
                attribute.clone(),
            ),
        }
    }
}

impl From<DecodeError> for Notification {
    fn from(e: DecodeError) -> Self {
        Self::from(&e)
    }
}

/// How an UPDATE with a malformed attribute is handled without resetting the session
/// ([RFC 7606 §2](https://www.rfc-editor.org/rfc/rfc7606#section-2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttrAction {
    /// The attribute is dropped; the routes are processed without it.
    AttributeDiscard,
    /// Every route the UPDATE announces is handled as if it were withdrawn.
    TreatAsWithdraw,
}

impl fmt::Display for AttrAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AttributeDiscard => "attribute-discard",
            Self::TreatAsWithdraw => "treat-as-withdraw",
        })
    }
}

/// A malformed attribute the session survives ([RFC 7606]).
///
/// [RFC 7606]: https://www.rfc-editor.org/rfc/rfc7606
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{type_code} at offset {offset}: {reason} ({action})")]
pub struct AttrError {
    /// The attribute concerned.
    pub type_code: AttrType,
    /// Byte offset of the attribute from the start of the message (0 for a missing one).
    pub offset: usize,
    /// What the RFC says to do.
    pub action: AttrAction,
    /// What is wrong.
    pub reason: AttrErrorReason,
}

/// Why an attribute was found malformed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AttrErrorReason {
    /// The Optional or Transitive flag disagrees with the attribute's definition
    /// (RFC 7606 §3 c).
    #[error("flags {0:#04x} conflict with the attribute type")]
    Flags(u8),
    /// The length is wrong for the attribute.
    #[error("bad length {0}")]
    Length(usize),
    /// The value is undefined (for example an ORIGIN of 3).
    #[error("invalid value")]
    InvalidValue,
    /// An AS_PATH or AS4_PATH segment is malformed (RFC 7606 §7.2).
    #[error("malformed AS path: {0}")]
    MalformedAsPath(&'static str),
    /// A well-known mandatory attribute is missing (RFC 7606 §3 d).
    #[error("missing well-known mandatory attribute")]
    Missing,
    /// The attribute appeared before in the same UPDATE; this occurrence is ignored
    /// (RFC 7606 §3 g).
    #[error("duplicate attribute")]
    Duplicate,
    /// The attribute list is shorter or longer than its attributes (RFC 7606 §4).
    #[error("attribute list length conflicts with the attributes")]
    ListLength,
    /// An attribute this speaker must not receive on this session (AS4_PATH or
    /// AS4_AGGREGATOR from a 4-octet speaker, RFC 6793 §4.1; LOCAL_PREF from an external
    /// peer, RFC 7606 §7.5).
    #[error("not allowed on this session")]
    NotAllowed,
    /// The leftmost AS of an external peer's AS_PATH is not the peer's AS (RFC 4271 §6.3).
    #[error("first AS {0} is not the peer's")]
    FirstAs(u32),
    /// NEXT_HOP is syntactically fine but cannot be used (RFC 4271 §6.3, RFC 7606 §7.3).
    #[error("unusable next hop")]
    NextHop,
    /// MP_REACH_NLRI / MP_UNREACH_NLRI for an address family this crate does not handle.
    #[error("unsupported address family")]
    UnsupportedFamily,
}

/// A message the caller asked for that the wire cannot carry.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The message would exceed the 4096-octet limit (RFC 4271 §4).
    #[error("message of {0} octets exceeds the 4096-octet limit")]
    TooLong(usize),
    /// A field would not fit its length field (more than 255 capabilities' worth of optional
    /// parameters, for example).
    #[error("{0} does not fit its length field")]
    FieldTooLong(&'static str),
    /// An address of the wrong family for the field.
    #[error("{0}")]
    WrongFamily(&'static str),
}
