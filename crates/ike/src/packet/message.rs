//! A whole IKE message: header and payload chain (RFC 7296 §3).

use super::codec::{fit, Reader};
use super::header::{Flags, Header, IkeSpi, RawHeader};
use super::iana::{ExchangeType, NotifyType, PayloadType};
use super::payload::{decode_chain, encode_chain, NotifyPayload, Payload};
use crate::crypto::sk::Sealer;
use crate::error::{DecodeErrorKind, Error, Unsupported, Within};
use crate::rng::Rng;

/// An IKE message: the header and the ordered list of (outer) payloads.
///
/// An SK payload stays sealed ([`Payload::Encrypted`]); to read what is inside, hand the
/// datagram to [`Opener::open`](crate::crypto::sk::Opener::open), which checks the ICV
/// before it parses a single inner byte.
///
/// Decoding is strict: the header's Length must equal the datagram length, every
/// payload must fill its length exactly, and nothing may follow the last payload. A
/// decoded message encodes back to the same bytes when the sender used canonical encodings
/// (RESERVED fields and the critical bit of known payloads zero, as RFC 7296 requires of
/// senders); those fields are ignored on receipt, so a message that set them decodes but
/// re-encodes canonically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The IKE header.
    pub header: Header,
    /// The payloads, in order.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Decodes a datagram (without the non-ESP marker of port 4500).
    pub fn decode(datagram: &[u8]) -> Result<Self, Error> {
        let (raw, mut r) = read_header(datagram)?;
        let (payloads, _) = decode_chain(&mut r, raw.next_payload).within("payloads")?;
        Ok(Self {
            header: raw.header,
            payloads,
        })
    }

    /// Encodes the message; header Next Payload and Length are computed.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        encode_chain(&self.payloads, &mut body)?;
        let first = self
            .payloads
            .first()
            .map_or(PayloadType::NONE, Payload::payload_type);
        let total = fit::<u32>(Header::LEN + body.len(), "message")?;
        let mut out = Vec::with_capacity(Header::LEN + body.len());
        self.header.encode(first, total, &mut out);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The first Notify payload of the given type.
    pub fn notify(&self, notify_type: NotifyType) -> Option<&NotifyPayload> {
        find_notify(&self.payloads, notify_type)
    }
}

/// The first payload of one kind in a payload list:
/// `find_payload!(payloads, Payload::Sa)` is an `Option<&SaPayload>`.
macro_rules! find_payload {
    ($payloads:expr, $variant:path) => {
        $payloads.iter().find_map(|p| match p {
            $variant(x) => Some(x),
            _ => None,
        })
    };
}
pub(crate) use find_payload;

/// The first Notify payload of a type in a payload list.
pub fn find_notify(payloads: &[Payload], notify_type: NotifyType) -> Option<&NotifyPayload> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == notify_type => Some(n),
        _ => None,
    })
}

/// Decodes the header and checks the Length field against the datagram; returns a reader
/// over the payload bytes.
pub(crate) fn read_header(datagram: &[u8]) -> Result<(RawHeader, Reader<'_>), Error> {
    let mut r = Reader::new(datagram);
    let raw = RawHeader::decode(&mut r).within("IKE header")?;
    if raw.major_version != Header::MAJOR_VERSION {
        // RFC 7296 §2.5: greater major versions get INVALID_MAJOR_VERSION.
        return Err(Unsupported::MajorVersion(raw.major_version).into());
    }
    let length = raw.length as usize;
    if length != datagram.len() {
        return Err(Error::Malformed(crate::error::DecodeError::new(
            24,
            DecodeErrorKind::InvalidLength {
                what: "message (Length field vs datagram)",
                length,
            },
        ))
        .within("IKE header"));
    }
    Ok((raw, r))
}

/// Assembles an outgoing message: a header and cleartext payloads, then either encoded as
/// is ([`MessageBuilder::encode`], IKE_SA_INIT and unprotected notifications) or sealed
/// into an SK payload with the negotiated suite ([`MessageBuilder::seal`], every other
/// exchange).
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    header: Header,
    payloads: Vec<Payload>,
}

impl MessageBuilder {
    /// Starts a message.
    pub fn new(
        spi_i: IkeSpi,
        spi_r: IkeSpi,
        exchange: ExchangeType,
        flags: Flags,
        message_id: u32,
    ) -> Self {
        Self::from_header(Header::new(spi_i, spi_r, exchange, flags, message_id))
    }

    /// Starts a message with a given header.
    pub fn from_header(header: Header) -> Self {
        Self {
            header,
            payloads: Vec::new(),
        }
    }

    /// Appends a payload.
    #[must_use]
    pub fn payload(mut self, p: impl Into<Payload>) -> Self {
        self.payloads.push(p.into());
        self
    }

    /// Appends a payload in place.
    pub fn push(&mut self, p: impl Into<Payload>) -> &mut Self {
        self.payloads.push(p.into());
        self
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payloads so far.
    pub fn payloads(&self) -> &[Payload] {
        &self.payloads
    }

    /// The message with its payloads in the clear.
    pub fn into_message(self) -> Message {
        Message {
            header: self.header,
            payloads: self.payloads,
        }
    }

    /// Encodes the payloads in the clear.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Message {
            header: self.header,
            payloads: self.payloads.clone(),
        }
        .encode()
    }

    /// Encodes all payloads inside one SK payload protected by `sealer` (RFC 7296 §3.14).
    /// `rng` supplies CBC IVs and padding; AEAD IVs come from the sealer's counter.
    pub fn seal(&self, sealer: &mut Sealer, rng: &mut dyn Rng) -> Result<Vec<u8>, Error> {
        sealer.seal(&self.header, &[], &self.payloads, rng)
    }
}
