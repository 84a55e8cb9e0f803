//! The IKE header (RFC 7296 §3.1).

use std::fmt;

use super::codec::Reader;
use super::iana::{ExchangeType, PayloadType};
use crate::error::{DecodeErrorKind, Error, Within};

/// An IKE SA SPI: eight opaque octets chosen by one side (RFC 7296 §2.6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IkeSpi(pub [u8; 8]);

impl IkeSpi {
    /// The all-zero SPI: the responder's SPI in the first IKE_SA_INIT request.
    pub const ZERO: Self = Self([0; 8]);

    /// Whether this is the all-zero SPI.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Debug for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<u64> for IkeSpi {
    fn from(v: u64) -> Self {
        Self(v.to_be_bytes())
    }
}

/// The Flags octet of the IKE header (RFC 7296 §3.1). Unknown bits ("X") are kept so a
/// decoded header encodes back to the same bytes; senders must leave them clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// I(nitiator): set in messages sent by the original initiator of the IKE SA.
    pub const INITIATOR: Self = Self(0x08);
    /// V(ersion): the sender can speak a higher major version. Always clear for us.
    pub const VERSION: Self = Self(0x10);
    /// R(esponse): this message is a response to a message with the same Message ID.
    pub const RESPONSE: Self = Self(0x20);

    /// Whether all bits of `other` are set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both flag sets.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether the I bit is set.
    pub const fn is_initiator(self) -> bool {
        self.contains(Self::INITIATOR)
    }

    /// Whether the R bit is set.
    pub const fn is_response(self) -> bool {
        self.contains(Self::RESPONSE)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags(")?;
        let mut sep = "";
        for (bit, name) in [
            (Self::INITIATOR, "I"),
            (Self::VERSION, "V"),
            (Self::RESPONSE, "R"),
        ] {
            if self.contains(bit) {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        let unknown = self.0 & !(0x08 | 0x10 | 0x20);
        if unknown != 0 {
            write!(f, "{sep}0x{unknown:02x}")?;
        }
        write!(f, ")")
    }
}

/// The IKE header.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       IKE SA Initiator's SPI                  |
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       IKE SA Responder's SPI                  |
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Message ID                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            Length                             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.1, Figure 4.
///
/// `Next Payload` and `Length` are not stored: they are derived from the payload list when
/// a [`Message`](super::Message) is encoded, and checked when one is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// IKE SA Initiator's SPI.
    pub spi_i: IkeSpi,
    /// IKE SA Responder's SPI (zero in the first IKE_SA_INIT request).
    pub spi_r: IkeSpi,
    /// Minor version: sent as 0, ignored on receipt, kept for exact re-encoding.
    pub minor_version: u8,
    /// Exchange Type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// Encoded length of the IKE header.
    pub const LEN: usize = 28;
    /// The major version this crate speaks.
    pub const MAJOR_VERSION: u8 = 2;

    /// A header with minor version 0.
    pub fn new(
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        exchange: ExchangeType,
        flags: Flags,
        message_id: u32,
    ) -> Self {
        Self {
            spi_i,
            spi_r,
            minor_version: 0,
            exchange,
            flags,
            message_id,
        }
    }

    /// Reads just the fixed header fields from the start of a datagram, without checking
    /// the version, the Length field against the datagram, or any payload: what a
    /// dispatcher needs to find the IKE SA, or to answer `INVALID_MAJOR_VERSION` (RFC 7296
    /// §2.5) to a message [`Message::decode`](super::Message::decode) refused.
    pub fn peek(datagram: &[u8]) -> Result<RawHeader, Error> {
        let mut r = Reader::new(datagram);
        RawHeader::decode(&mut r).within("IKE header")
    }

    pub(crate) fn encode(&self, next: PayloadType, length: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.0);
        out.extend_from_slice(&self.spi_r.0);
        out.push(next.0);
        out.push((Self::MAJOR_VERSION << 4) | (self.minor_version & 0x0f));
        out.push(self.exchange.0);
        out.push(self.flags.0);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
    }
}

/// The IKE header as it is on the wire, including the fields [`Header`] derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    /// The header proper.
    pub header: Header,
    /// Next Payload: type of the first payload.
    pub next_payload: PayloadType,
    /// Length of the whole message, header included.
    pub length: u32,
    /// MjVer: 2 for every message [`Message::decode`](super::Message::decode) accepts.
    pub major_version: u8,
}

impl RawHeader {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let spi_i = IkeSpi(r.array()?);
        let spi_r = IkeSpi(r.array()?);
        let next_payload = PayloadType(r.u8()?);
        let version = r.u8()?;
        let exchange = ExchangeType(r.u8()?);
        let flags = Flags(r.u8()?);
        let message_id = r.u32()?;
        let length = r.u32()?;
        if (length as usize) < Header::LEN {
            return Err(r.error(DecodeErrorKind::InvalidLength {
                what: "message",
                length: length as usize,
            }));
        }
        Ok(Self {
            header: Header {
                spi_i,
                spi_r,
                minor_version: version & 0x0f,
                exchange,
                flags,
                message_id,
            },
            next_payload,
            length,
            major_version: version >> 4,
        })
    }
}
