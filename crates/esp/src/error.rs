//! Errors, split by blame as rustls splits them: bytes from the network that are malformed
//! or not ours, authenticated bytes from a peer that break the rules, and misuse by the
//! caller (short buffers, exhausted or expired SAs, bad configuration).

use crate::limits::LimitKind;
use crate::replay::{ReplayError, WindowSizeError};
use crate::transform::Transform;
use crate::wire::esp::{Spi, Truncated};

/// Why an inbound packet was dropped: the label of one drop counter.
///
/// Every [`RecvError`] maps to exactly one reason ([`RecvError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than the smallest packet the header or the SA's transform allows.
    Short,
    /// Lengths that cannot be right (CBC ciphertext not a whole number of blocks).
    Malformed,
    /// No inbound SA has this SPI.
    UnknownSpi,
    /// The ICV did not verify: forged, corrupted, or a wrong ESN guess.
    AuthFailed,
    /// Sequence number already seen, or left of the replay window.
    Replayed,
    /// Authenticated, but Pad Length or the padding bytes are wrong (RFC 4303 §2.4).
    BadPadding,
    /// Authenticated, but Next Header is neither IPv4, IPv6 nor 59 (tunnel mode only).
    BadNextHeader,
    /// Authenticated, but the inner packet's header contradicts Next Header or its length.
    BadInnerPacket,
    /// The SA reached a hard limit and accepts nothing more.
    Expired,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [Self; 9] = [
        Self::Short,
        Self::Malformed,
        Self::UnknownSpi,
        Self::AuthFailed,
        Self::Replayed,
        Self::BadPadding,
        Self::BadNextHeader,
        Self::BadInnerPacket,
        Self::Expired,
    ];

    /// A snake_case label, stable for metrics (`esp_rx_dropped_total{reason="replayed"}`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Malformed => "malformed",
            Self::UnknownSpi => "unknown_spi",
            Self::AuthFailed => "auth_failed",
            Self::Replayed => "replayed",
            Self::BadPadding => "bad_padding",
            Self::BadNextHeader => "bad_next_header",
            Self::BadInnerPacket => "bad_inner_packet",
            Self::Expired => "expired",
        }
    }
}

/// An inbound packet that was dropped.
///
/// Nothing here is logged by this crate: the caller counts ([`crate::DropCounters`] does it
/// for [`crate::SadIn`]) and decides what, if anything, is worth a log line. Per-packet
/// errors from the network are routine; log them rate-limited at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    // --- Unauthenticated bytes: anyone on the path can cause these.
    /// Too short for the ESP header, or for the SA's IV, minimal ciphertext and ICV.
    #[error("packet too short: {len} bytes, need at least {need}")]
    Short {
        /// Bytes received.
        len: usize,
        /// Minimum for this header or SA.
        need: usize,
    },
    /// The ciphertext length is not a multiple of the cipher block.
    #[error("ciphertext of {len} bytes at offset {offset} is not a multiple of {block}")]
    Malformed {
        /// Offset of the ciphertext in the ESP packet.
        offset: usize,
        /// Ciphertext length.
        len: usize,
        /// Required multiple.
        block: usize,
    },
    /// No inbound SA is installed for this SPI.
    #[error("unknown SPI {0}")]
    UnknownSpi(Spi),
    /// The ICV did not verify.
    #[error("integrity check failed on SA {spi} (sequence number {seq})")]
    AuthFailed {
        /// SA the SPI named.
        spi: Spi,
        /// Sequence number as inferred (with ESN, the high half is a guess).
        seq: u64,
    },
    /// Refused by the anti-replay window.
    #[error("replayed packet on SA {spi}: sequence number {seq} is {why}")]
    Replayed {
        /// SA the SPI named.
        spi: Spi,
        /// Sequence number (inferred 64-bit value with ESN; 0 if none could be inferred).
        seq: u64,
        /// Duplicate or too old.
        why: ReplayError,
    },

    // --- Authenticated bytes: the peer holding the key sent something RFC 4303 forbids.
    /// Pad Length exceeds the plaintext, or the padding is not 1, 2, 3, ... (RFC 4303 §2.4).
    #[error("bad padding on SA {spi} (sequence number {seq})")]
    BadPadding {
        /// SA.
        spi: Spi,
        /// Authenticated sequence number.
        seq: u64,
    },
    /// Next Header is not something tunnel mode carries.
    #[error("next header {next_header} on SA {spi} is not IPv4 (4), IPv6 (41) or none (59)")]
    BadNextHeader {
        /// SA.
        spi: Spi,
        /// The Next Header value.
        next_header: u8,
    },
    /// The inner packet's version does not match Next Header, or its header is truncated or
    /// claims more bytes than were sent.
    #[error("bad inner IP packet on SA {spi} (sequence number {seq})")]
    BadInnerPacket {
        /// SA.
        spi: Spi,
        /// Authenticated sequence number.
        seq: u64,
    },

    // --- Local state.
    /// The SA reached a hard limit; the control plane should already have replaced it.
    #[error("SA {spi} expired ({kind} hard limit)")]
    Expired {
        /// SA.
        spi: Spi,
        /// Which limit.
        kind: LimitKind,
    },
}

impl RecvError {
    /// The counter this error bumps.
    pub const fn reason(&self) -> DropReason {
        match self {
            Self::Short { .. } => DropReason::Short,
            Self::Malformed { .. } => DropReason::Malformed,
            Self::UnknownSpi(_) => DropReason::UnknownSpi,
            Self::AuthFailed { .. } => DropReason::AuthFailed,
            Self::Replayed { .. } => DropReason::Replayed,
            Self::BadPadding { .. } => DropReason::BadPadding,
            Self::BadNextHeader { .. } => DropReason::BadNextHeader,
            Self::BadInnerPacket { .. } => DropReason::BadInnerPacket,
            Self::Expired { .. } => DropReason::Expired,
        }
    }

    /// Whether the packet passed integrity verification (the peer, not the path, is to
    /// blame). Useful to decide whether an error deserves the operator's attention.
    pub const fn is_authenticated(&self) -> bool {
        matches!(
            self,
            Self::BadPadding { .. } | Self::BadNextHeader { .. } | Self::BadInnerPacket { .. }
        )
    }
}

impl From<Truncated> for RecvError {
    fn from(t: Truncated) -> Self {
        Self::Short {
            len: t.len,
            need: t.need,
        }
    }
}

/// Sealing failed. Nothing was sent; the buffer may hold a partly written header, and (for
/// limit and sequence errors) is untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    // --- Caller bugs: the buffer contract was not met.
    /// The payload range does not lie inside the buffer.
    #[error("payload range {start}..{end} is outside a buffer of {len} bytes")]
    BadRange {
        /// Range start.
        start: usize,
        /// Range end.
        end: usize,
        /// Buffer length.
        len: usize,
    },
    /// Not enough room before the payload for the ESP header and IV.
    #[error("headroom of {have} bytes, need {need}")]
    Headroom {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Not enough room after the payload for padding, Pad Length, Next Header and ICV.
    #[error("tailroom of {have} bytes, need {need}")]
    Tailroom {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The payload does not start with an IPv4 or IPv6 version nibble.
    #[error("payload is not an IPv4 or IPv6 packet (first byte {first_byte:#04x})")]
    NotIp {
        /// The first byte, or 0 for an empty payload.
        first_byte: u8,
    },

    // --- SA state: the control plane must install a new SA.
    /// The next sequence number would wrap; RFC 4303 §3.3.3 forbids cycling the counter.
    #[error("sequence numbers exhausted; the SA must be rekeyed")]
    SequenceExhausted,
    /// A hard byte or packet limit was reached.
    #[error("SA expired ({0} hard limit)")]
    Expired(LimitKind),

    // --- Environment.
    /// The random source failed to produce a CBC IV.
    #[error("random source failed")]
    Random,
    /// The crypto library refused the operation (it does so only for lengths no ESP packet
    /// can have).
    #[error("cipher failure")]
    Crypto,
}

/// An SA cannot be built from this configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The key material has the wrong length for the transform.
    #[error("{transform} needs {expected} bytes of key material, got {got}")]
    KeyLength {
        /// Transform.
        transform: Transform,
        /// Expected length ([`Transform::keymat_len`]).
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// SPIs 0–255 are reserved (RFC 4303 §2.1).
    #[error("SPI {0} is reserved")]
    ReservedSpi(Spi),
    /// Unsupported replay window size.
    #[error(transparent)]
    ReplayWindow(#[from] WindowSizeError),
    /// A soft limit above its hard limit.
    #[error("soft {0} limit above the hard limit")]
    Limits(LimitKind),
    /// The crypto library rejected the key.
    #[error("cipher rejected the key")]
    Crypto,
}

/// The inbound SA table refused an insertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SadError {
    /// An SA with this SPI is already installed.
    #[error("an inbound SA with SPI {0} exists")]
    DuplicateSpi(Spi),
}
