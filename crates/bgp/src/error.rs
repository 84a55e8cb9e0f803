//! Session errors split by blame, their one mapping to a NOTIFICATION, and where they are
//! logged.
//!
//! * [`SessionError::Malformed`]: the peer sent bytes that do not decode
//!   ([`DecodeError`]).
//! * [`SessionError::Misbehaved`]: the bytes decode but the peer's behaviour is not allowed
//!   ([`PeerMisbehaved`]: wrong AS, unacceptable hold time, a message the state does not
//!   allow, silence past the hold time, too many prefixes).
//! * [`ConfigError`]: the caller's configuration is invalid (nothing goes on the wire).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    neighbor::State,
    packet::{
        error::DecodeError,
        iana::{cease, fsm_error, open_error, ErrorCode, Family, MessageType},
        message::Notification,
    },
};

/// Why a session is reset by this speaker. Every variant maps to the NOTIFICATION sent
/// ([`SessionError::notification`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SessionError {
    /// Malformed bytes.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    /// Legal bytes, illegal behaviour.
    #[error("{0}")]
    Misbehaved(#[from] PeerMisbehaved),
}

/// Legal messages, illegal behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum PeerMisbehaved {
    /// The OPEN's AS is not the configured one (RFC 4271 §6.2).
    #[error("peer AS {received}, expected {expected}")]
    BadPeerAs {
        /// Configured.
        expected: u32,
        /// Received.
        received: u32,
    },
    /// An internal peer uses this speaker's BGP Identifier (RFC 6286 §2.2).
    #[error("BGP identifier {0} is ours")]
    BadBgpIdentifier(Ipv4Addr),
    /// Hold time 1 or 2 seconds (RFC 4271 §6.2).
    #[error("unacceptable hold time {0}")]
    UnacceptableHoldTime(u16),
    /// A message the current state does not allow (RFC 4271 §8.2.2, RFC 6608).
    #[error("unexpected {message} in state {state}")]
    UnexpectedMessage {
        /// The state.
        state: State,
        /// The message.
        message: MessageType,
    },
    /// Nothing received within the hold time (RFC 4271 §6.5).
    #[error("hold timer expired")]
    HoldTimerExpired,
    /// More prefixes than the max-prefix limit (RFC 4486).
    #[error("maximum of {limit} prefixes exceeded ({family})")]
    MaxPrefixExceeded {
        /// The family of the prefix that went over.
        family: Family,
        /// The limit.
        limit: u32,
    },
}

impl SessionError {
    /// The NOTIFICATION that reports this error to the peer.
    pub fn notification(&self) -> Notification {
        match self {
            Self::Malformed(e) => Notification::from(e),
            Self::Misbehaved(m) => match m {
                PeerMisbehaved::BadPeerAs { .. } => {
                    Notification::new(ErrorCode::OPEN_MESSAGE, open_error::BAD_PEER_AS, vec![])
                }
                PeerMisbehaved::BadBgpIdentifier(_) => Notification::new(
                    ErrorCode::OPEN_MESSAGE,
                    open_error::BAD_BGP_IDENTIFIER,
                    vec![],
                ),
                PeerMisbehaved::UnacceptableHoldTime(_) => Notification::new(
                    ErrorCode::OPEN_MESSAGE,
                    open_error::UNACCEPTABLE_HOLD_TIME,
                    vec![],
                ),
                PeerMisbehaved::UnexpectedMessage { state, .. } => {
                    let sub = match state {
                        State::OpenSent => fsm_error::UNEXPECTED_IN_OPENSENT,
                        State::OpenConfirm => fsm_error::UNEXPECTED_IN_OPENCONFIRM,
                        State::Established => fsm_error::UNEXPECTED_IN_ESTABLISHED,
                        _ => fsm_error::UNSPECIFIED,
                    };
                    Notification::new(ErrorCode::FSM, sub, vec![])
                }
                PeerMisbehaved::HoldTimerExpired => {
                    Notification::new(ErrorCode::HOLD_TIMER_EXPIRED, 0, vec![])
                }
                PeerMisbehaved::MaxPrefixExceeded { family, limit } => {
                    // RFC 4486 §4: AFI (2), SAFI (1), prefix upper bound (4).
                    let mut data = family.afi().0.to_be_bytes().to_vec();
                    data.push(family.safi().0);
                    data.extend_from_slice(&limit.to_be_bytes());
                    Notification::new(ErrorCode::CEASE, cease::MAX_PREFIXES, data)
                }
            },
        }
    }

    /// Logs the error at the level its blame calls for: a peer's malformed bytes or
    /// misbehaviour is a warning (the operator of either side must act); a hold-timer expiry
    /// or a max-prefix reset is a warning too, since it drops routes.
    pub fn log(&self, peer: &str) {
        tracing::warn!(peer, error = %self, "BGP session reset");
    }
}

/// Invalid configuration passed by the caller.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// AS 0 is reserved (RFC 7607).
    #[error("AS number 0 is not allowed")]
    ZeroAsn,
    /// The router ID must be non-zero (RFC 6286).
    #[error("router ID 0.0.0.0 is not allowed")]
    ZeroRouterId,
    /// Hold time 1 or 2 (RFC 4271 §4.2).
    #[error("hold time {0} s: must be 0 or at least 3")]
    HoldTime(u16),
    /// Keepalive 0, or longer than a third of the hold time.
    #[error("keepalive {keepalive} s does not fit hold time {hold} s (0 < keepalive <= hold/3)")]
    Keepalive {
        /// Keepalive.
        keepalive: u16,
        /// Hold time.
        hold: u16,
    },
    /// A session needs at least one family.
    #[error("no address family configured")]
    NoFamily,
    /// A prefix rule's bounds are inconsistent.
    #[error("invalid prefix rule '{0}': needs len <= ge <= le <= max")]
    PrefixRule(String),
    /// No peer has this ID.
    #[error("no peer {0}")]
    UnknownPeer(usize),
    /// Another peer has this address.
    #[error("a peer with address {0} already exists")]
    DuplicatePeer(std::net::IpAddr),
}
