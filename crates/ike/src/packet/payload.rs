//! The generic payload header chain (RFC 7296 §3.2) and the payloads that are not big
//! enough for a module of their own.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::codec::{backfill16, fit, placeholder16, Reader};
use super::iana::{
    AuthMethod, CertEncoding, IdType, KeMethod, NotifyType, PayloadType, ProtocolId,
};
use super::sa::SaPayload;
use super::ts::TrafficSelectors;
use crate::error::{ApiMisuse, DecodeErrorKind, Error, Unsupported, Within};

/// One IKEv2 payload.
///
/// Every payload shares the generic payload header; `Next Payload` and `Payload Length` are
/// derived from the list order on encode and checked on decode, so they are not stored.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.2, Figure 5. The critical bit of payloads this crate understands is ignored
/// on receipt and sent as zero, as §3.2 requires; an unknown payload with the bit set fails
/// the whole message with [`Unsupported::CriticalPayload`] (→ `UNSUPPORTED_CRITICAL_PAYLOAD`),
/// and an unknown payload without it is kept as [`Payload::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security Association (§3.3).
    Sa(SaPayload),
    /// Key Exchange (§3.4).
    Ke(KePayload),
    /// Identification - Initiator (§3.5).
    IdI(Identity),
    /// Identification - Responder (§3.5).
    IdR(Identity),
    /// Certificate (§3.6), kept opaque.
    Cert(CertPayload),
    /// Certificate Request (§3.7), kept opaque.
    CertReq(CertPayload),
    /// Authentication (§3.8).
    Auth(AuthPayload),
    /// Nonce (§3.9).
    Nonce(Nonce),
    /// Notify (§3.10).
    Notify(NotifyPayload),
    /// Delete (§3.11).
    Delete(DeletePayload),
    /// Vendor ID (§3.12): opaque.
    VendorId(Vec<u8>),
    /// Traffic Selector - Initiator (§3.13).
    TsI(TrafficSelectors),
    /// Traffic Selector - Responder (§3.13).
    TsR(TrafficSelectors),
    /// Encrypted and Authenticated (§3.14), still encrypted. Always the last payload.
    Encrypted(EncryptedPayload),
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5), still encrypted. Always last.
    EncryptedFragment(EncryptedFragment),
    /// A payload type this crate does not model, received without the critical bit.
    Unknown(UnknownPayload),
}

impl Payload {
    /// The Payload Type that announces this payload in the preceding Next Payload field.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDI,
            Self::IdR(_) => PayloadType::IDR,
            Self::Cert(_) => PayloadType::CERT,
            Self::CertReq(_) => PayloadType::CERTREQ,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::VendorId(_) => PayloadType::VENDOR_ID,
            Self::TsI(_) => PayloadType::TSI,
            Self::TsR(_) => PayloadType::TSR,
            Self::Encrypted(_) => PayloadType::SK,
            Self::EncryptedFragment(_) => PayloadType::SKF,
            Self::Unknown(u) => u.payload_type,
        }
    }

    /// Whether this payload is an SK or SKF container.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Encrypted(_) | Self::EncryptedFragment(_))
    }

    fn decode_body(t: PayloadType, r: Reader<'_>) -> Result<Option<Self>, Error> {
        let p = match t {
            PayloadType::SA => Self::Sa(SaPayload::decode_body(r).within("SA")?),
            PayloadType::KE => Self::Ke(KePayload::decode_body(r).within("KE")?),
            PayloadType::IDI => Self::IdI(Identity::decode_body(r).within("IDi")?),
            PayloadType::IDR => Self::IdR(Identity::decode_body(r).within("IDr")?),
            PayloadType::CERT => Self::Cert(CertPayload::decode_body(r).within("CERT")?),
            PayloadType::CERTREQ => Self::CertReq(CertPayload::decode_body(r).within("CERTREQ")?),
            PayloadType::AUTH => Self::Auth(AuthPayload::decode_body(r).within("AUTH")?),
            PayloadType::NONCE => Self::Nonce(Nonce::decode_body(r).within("Nonce")?),
            PayloadType::NOTIFY => Self::Notify(NotifyPayload::decode_body(r).within("Notify")?),
            PayloadType::DELETE => Self::Delete(DeletePayload::decode_body(r).within("Delete")?),
            PayloadType::VENDOR_ID => {
                let mut r = r;
                Self::VendorId(r.rest().to_vec())
            }
            PayloadType::TSI => Self::TsI(TrafficSelectors::decode_body(r).within("TSi")?),
            PayloadType::TSR => Self::TsR(TrafficSelectors::decode_body(r).within("TSr")?),
            _ => return Ok(None),
        };
        Ok(Some(p))
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Self::Sa(p) => p.encode_body(out),
            Self::Ke(p) => {
                p.encode_body(out);
                Ok(())
            }
            Self::IdI(p) | Self::IdR(p) => {
                p.encode_body(out);
                Ok(())
            }
            Self::Cert(p) | Self::CertReq(p) => {
                out.push(p.encoding.0);
                out.extend_from_slice(&p.data);
                Ok(())
            }
            Self::Auth(p) => {
                out.push(p.method.0);
                out.extend_from_slice(&[0; 3]);
                out.extend_from_slice(&p.data);
                Ok(())
            }
            Self::Nonce(n) => {
                out.extend_from_slice(&n.0);
                Ok(())
            }
            Self::Notify(p) => p.encode_body(out),
            Self::Delete(p) => p.encode_body(out),
            Self::VendorId(v) => {
                out.extend_from_slice(v);
                Ok(())
            }
            Self::TsI(t) | Self::TsR(t) => t.encode_body(out),
            Self::Encrypted(e) => {
                out.extend_from_slice(&e.body);
                Ok(())
            }
            Self::EncryptedFragment(e) => {
                out.extend_from_slice(&e.number.to_be_bytes());
                out.extend_from_slice(&e.total.to_be_bytes());
                out.extend_from_slice(&e.body);
                Ok(())
            }
            Self::Unknown(u) => {
                out.extend_from_slice(&u.body);
                Ok(())
            }
        }
    }

    /// The value of this payload's own Next Payload field when `following` comes next: the
    /// SK and SKF containers instead name the first payload *inside* them.
    fn next_field(&self, following: PayloadType) -> PayloadType {
        match self {
            Self::Encrypted(e) => e.first_inner,
            Self::EncryptedFragment(e) => e.first_inner,
            _ => following,
        }
    }
}

/// Length of the generic payload header.
pub(crate) const GENERIC_HEADER_LEN: usize = 4;

/// Where the encrypted container of a message sits, for the SK decrypt path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContainerSpan {
    /// Offset of the SK/SKF generic payload header.
    pub(crate) header_at: usize,
    /// Offset of the first byte after the generic header (and after the SKF fragment
    /// fields): where the IV starts.
    pub(crate) body_at: usize,
}

/// Decodes a payload chain that starts with `first` and must fill `r` exactly.
///
/// Returns the payloads and, if the chain ended in an SK or SKF container, where that
/// container sits in the buffer.
pub(crate) fn decode_chain(
    r: &mut Reader<'_>,
    first: PayloadType,
) -> Result<(Vec<Payload>, Option<ContainerSpan>), Error> {
    let mut payloads = Vec::new();
    let mut next = first;
    while next != PayloadType::NONE {
        let this = next;
        let header_at = r.offset();
        if r.is_empty() {
            return Err(r.error(DecodeErrorKind::Invalid(
                "Next Payload announces a payload but the message ends",
            )));
        }
        next = PayloadType(r.u8()?);
        let critical = r.u8()? & 0x80 != 0;
        let length = usize::from(r.u16()?);
        if length < GENERIC_HEADER_LEN {
            return Err(Error::Malformed(crate::error::DecodeError::new(
                header_at + 2,
                DecodeErrorKind::InvalidLength {
                    what: "payload",
                    length,
                },
            )));
        }
        let mut body = r.sub(length - GENERIC_HEADER_LEN)?;
        match this {
            PayloadType::SK | PayloadType::SKF => {
                let body_at;
                let payload = if this == PayloadType::SK {
                    body_at = body.offset();
                    Payload::Encrypted(EncryptedPayload {
                        first_inner: next,
                        body: body.rest().to_vec(),
                    })
                } else {
                    let f = EncryptedFragment::decode_body(next, &mut body).within("SKF")?;
                    body_at = header_at + GENERIC_HEADER_LEN + 4;
                    Payload::EncryptedFragment(f)
                };
                payloads.push(payload);
                // RFC 7296 §3.14: the Encrypted payload MUST be the last payload.
                if !r.is_empty() {
                    return Err(r.error(DecodeErrorKind::Invalid(
                        "payload after the Encrypted payload",
                    )));
                }
                return Ok((payloads, Some(ContainerSpan { header_at, body_at })));
            }
            _ => match Payload::decode_body(this, body.clone())? {
                Some(p) => payloads.push(p),
                None if critical => {
                    return Err(Unsupported::CriticalPayload {
                        payload_type: this,
                        offset: header_at,
                    }
                    .into())
                }
                None => payloads.push(Payload::Unknown(UnknownPayload {
                    payload_type: this,
                    body: body.rest().to_vec(),
                })),
            },
        }
    }
    if !r.is_empty() {
        return Err(r.error(DecodeErrorKind::Invalid(
            "bytes after the last payload (Next Payload was 0)",
        )));
    }
    Ok((payloads, None))
}

/// Encodes a payload chain. An SK/SKF container may only be last.
pub(crate) fn encode_chain(payloads: &[Payload], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut iter = payloads.iter().peekable();
    while let Some(p) = iter.next() {
        let following = iter.peek().map(|n| n.payload_type());
        if p.is_encrypted() && following.is_some() {
            return Err(ApiMisuse::Other("the Encrypted payload must be the last payload").into());
        }
        encode_one(p, following.unwrap_or(PayloadType::NONE), out)?;
    }
    Ok(())
}

/// Encodes one payload with its generic header.
pub(crate) fn encode_one(
    p: &Payload,
    following: PayloadType,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    out.push(p.next_field(following).0);
    out.push(0);
    let at = placeholder16(out);
    p.encode_body(out)?;
    backfill16(out, at, start, "payload")
}

/// Key Exchange payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Diffie-Hellman Group Num    |           RESERVED            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       Key Exchange Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.4, Figure 10. The data's length is checked against the group by the
/// key-exchange code ([`crate::crypto::KeyExchange`]), which knows the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KePayload {
    /// Diffie-Hellman Group Num.
    pub method: KeMethod,
    /// Key Exchange Data: the public value.
    pub data: Vec<u8>,
}

impl KePayload {
    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let method = KeMethod(r.u16()?);
        r.take(2)?;
        Ok(Self {
            method,
            data: r.rest().to_vec(),
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.method.0.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.data);
    }
}

/// An identity, the content of an IDi or IDr payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   ID Type     |                 RESERVED                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                   Identification Data                         ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.5, Figure 11. IPv4, IPv6, FQDN and KEY_ID are modelled; every other type
/// (RFC822, DN, GN, ...) is kept as [`Identity::Other`]. The RESERVED octets are sent as
/// zero and ignored on receipt, also when the payload body is MACed for AUTH (§2.15), as
/// strongSwan does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_FQDN: the data is valid UTF-8 (in practice ASCII) without NUL.
    Fqdn(String),
    /// ID_KEY_ID: opaque octets.
    KeyId(Vec<u8>),
    /// Any other ID type, or an ID_FQDN that is not valid UTF-8, kept raw.
    Other {
        /// ID Type.
        id_type: IdType,
        /// Identification Data.
        data: Vec<u8>,
    },
}

impl Identity {
    /// The ID Type field.
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Ipv4(_) => IdType::ID_IPV4_ADDR,
            Self::Ipv6(_) => IdType::ID_IPV6_ADDR,
            Self::Fqdn(_) => IdType::ID_FQDN,
            Self::KeyId(_) => IdType::ID_KEY_ID,
            Self::Other { id_type, .. } => *id_type,
        }
    }

    /// The Identification Data field.
    pub fn data(&self) -> Vec<u8> {
        match self {
            Self::Ipv4(a) => a.octets().to_vec(),
            Self::Ipv6(a) => a.octets().to_vec(),
            Self::Fqdn(s) => s.as_bytes().to_vec(),
            Self::KeyId(k) => k.clone(),
            Self::Other { data, .. } => data.clone(),
        }
    }

    /// `RestOfIDPayload` of RFC 7296 §2.15: the payload body (ID Type, three zero
    /// RESERVED octets, Identification Data), the input of `MACedIDForI/R`.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_body(&mut out);
        out
    }

    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let id_type = IdType(r.u8()?);
        r.take(3)?;
        let data_at = r.offset();
        let data = r.rest();
        let bad_len = |length| {
            Error::Malformed(crate::error::DecodeError::new(
                data_at,
                DecodeErrorKind::InvalidLength {
                    what: "identification data",
                    length,
                },
            ))
        };
        Ok(match id_type {
            IdType::ID_IPV4_ADDR => {
                let octets: [u8; 4] = data.try_into().map_err(|_| bad_len(data.len()))?;
                Self::Ipv4(Ipv4Addr::from(octets))
            }
            IdType::ID_IPV6_ADDR => {
                let octets: [u8; 16] = data.try_into().map_err(|_| bad_len(data.len()))?;
                Self::Ipv6(Ipv6Addr::from(octets))
            }
            IdType::ID_FQDN => match std::str::from_utf8(data) {
                Ok(s) if !s.contains('\0') => Self::Fqdn(s.to_owned()),
                _ => Self::Other {
                    id_type,
                    data: data.to_vec(),
                },
            },
            IdType::ID_KEY_ID => Self::KeyId(data.to_vec()),
            _ => Self::Other {
                id_type,
                data: data.to_vec(),
            },
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.id_type().0);
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&self.data());
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "{a}"),
            Self::Fqdn(s) => f.write_str(s),
            Self::KeyId(k) => {
                f.write_str("keyid:")?;
                k.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Self::Other { id_type, data } => {
                write!(f, "{id_type}:")?;
                data.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// Certificate (§3.6) or Certificate Request (§3.7) payload, kept opaque.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Cert Encoding |                                               |
/// +-+-+-+-+-+-+-+-+                                               |
/// ~       Certificate Data / Certification Authority              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.6 Figure 12 and §3.7 Figure 13.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    /// Cert Encoding.
    pub encoding: CertEncoding,
    /// Certificate Data, or the Certification Authority hashes of a CERTREQ.
    pub data: Vec<u8>,
}

impl CertPayload {
    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        Ok(Self {
            encoding: CertEncoding(r.u8()?),
            data: r.rest().to_vec(),
        })
    }
}

/// Authentication payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Auth Method   |                RESERVED                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                      Authentication Data                      ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.8, Figure 14.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPayload {
    /// Auth Method.
    pub method: AuthMethod,
    /// Authentication Data.
    pub data: Vec<u8>,
}

impl AuthPayload {
    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let method = AuthMethod(r.u8()?);
        r.take(3)?;
        Ok(Self {
            method,
            data: r.rest().to_vec(),
        })
    }
}

/// Nonce payload data: 16 to 256 octets.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                            Nonce Data                         ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.9, Figure 15: "The size of the Nonce Data MUST be between 16 and 256
/// octets, inclusive." Nonces are public (they travel in the clear in IKE_SA_INIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    /// Smallest legal nonce.
    pub const MIN_LEN: usize = 16;
    /// Largest legal nonce.
    pub const MAX_LEN: usize = 256;

    /// Wraps nonce data, checking the length bounds.
    pub fn new(data: Vec<u8>) -> Result<Self, ApiMisuse> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&data.len()) {
            Ok(Self(data))
        } else {
            Err(ApiMisuse::InvalidValue {
                what: "nonce length",
                value: data.len(),
            })
        }
    }

    /// A fresh nonce of `len` bytes from `rng`. RFC 7296 §2.10: at least half the PRF key
    /// size, and at least 128 bits; 32 is what strongSwan sends.
    pub fn random(rng: &mut dyn crate::Rng, len: usize) -> Result<Self, Error> {
        let mut data = vec![0; len];
        rng.fill(&mut data)?;
        Ok(Self::new(data)?)
    }

    /// The nonce data.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let at = r.offset();
        let data = r.rest();
        Self::new(data.to_vec()).map_err(|_| {
            Error::Malformed(crate::error::DecodeError::new(
                at,
                DecodeErrorKind::InvalidLength {
                    what: "nonce (16..=256)",
                    length: data.len(),
                },
            ))
        })
    }
}

/// Notify payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Protocol ID  |   SPI Size    |      Notify Message Type      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                Security Parameter Index (SPI)                 ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       Notification Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.10, Figure 16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    /// Protocol ID: NONE (0) for notifications about the IKE SA or none at all.
    pub protocol: ProtocolId,
    /// SPI (its size is the SPI Size field; usually empty).
    pub spi: Vec<u8>,
    /// Notify Message Type.
    pub notify_type: NotifyType,
    /// Notification Data.
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// A notification without SPI.
    pub fn new(notify_type: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            notify_type,
            data,
        }
    }

    /// `INVALID_KE_PAYLOAD` naming the group the responder wants (§1.2, §3.10.1).
    pub fn invalid_ke_payload(accepted: KeMethod) -> Self {
        Self::new(
            NotifyType::INVALID_KE_PAYLOAD,
            accepted.0.to_be_bytes().to_vec(),
        )
    }

    /// The group named by an `INVALID_KE_PAYLOAD` (exactly two octets of data), if this is
    /// one.
    pub fn accepted_ke_method(&self) -> Option<KeMethod> {
        if self.notify_type != NotifyType::INVALID_KE_PAYLOAD {
            return None;
        }
        let bytes: [u8; 2] = self.data.as_slice().try_into().ok()?;
        Some(KeMethod(u16::from_be_bytes(bytes)))
    }

    /// `COOKIE` with the responder's cookie (§2.6).
    pub fn cookie(cookie: Vec<u8>) -> Self {
        Self::new(NotifyType::COOKIE, cookie)
    }

    /// `REKEY_SA` for the Child SA with inbound SPI `spi` (§1.3.3).
    pub fn rekey_sa(protocol: ProtocolId, spi: [u8; 4]) -> Self {
        Self {
            protocol,
            spi: spi.to_vec(),
            notify_type: NotifyType::REKEY_SA,
            data: Vec::new(),
        }
    }

    /// `UNSUPPORTED_CRITICAL_PAYLOAD` with the offending payload type (§3.10.1).
    pub fn unsupported_critical_payload(payload_type: PayloadType) -> Self {
        Self::new(
            NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
            vec![payload_type.0],
        )
    }

    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let notify_type = NotifyType(r.u16()?);
        let spi = r.take(spi_size)?.to_vec();
        Ok(Self {
            protocol,
            spi,
            notify_type,
            data: r.rest().to_vec(),
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(self.protocol.0);
        out.push(fit(self.spi.len(), "notify SPI")?);
        out.extend_from_slice(&self.notify_type.0.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// Delete payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Protocol ID   |   SPI Size    |          Num of SPIs          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~               Security Parameter Index(es) (SPI)              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.11, Figure 17. For the IKE SA the SPI Size is 0 and there are no SPIs; for
/// AH and ESP it is 4. Both are enforced on decode (anything else is `INVALID_SYNTAX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// SPI Size.
    pub spi_size: u8,
    /// The SPIs, each `spi_size` long.
    pub spis: Vec<Vec<u8>>,
}

impl DeletePayload {
    /// Deletes the IKE SA the message travels on.
    pub fn ike() -> Self {
        Self {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: Vec::new(),
        }
    }

    /// Deletes ESP SAs, named by the sender's inbound SPIs.
    pub fn esp(spis: &[[u8; 4]]) -> Self {
        Self {
            protocol: ProtocolId::ESP,
            spi_size: 4,
            spis: spis.iter().map(|s| s.to_vec()).collect(),
        }
    }

    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let protocol = ProtocolId(r.u8()?);
        let size_at = r.offset();
        let spi_size = r.u8()?;
        let count = r.u16()?;
        let expected = match protocol {
            ProtocolId::IKE => Some(0),
            ProtocolId::AH | ProtocolId::ESP => Some(4),
            _ => None,
        };
        if expected.is_some_and(|e| e != spi_size) {
            return Err(Error::Malformed(crate::error::DecodeError::new(
                size_at,
                DecodeErrorKind::InvalidValue {
                    what: "SPI Size",
                    value: spi_size.into(),
                },
            )));
        }
        let mut spis = Vec::new();
        for _ in 0..count {
            spis.push(r.take(spi_size.into())?.to_vec());
        }
        r.finish()?;
        Ok(Self {
            protocol,
            spi_size,
            spis,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(self.protocol.0);
        out.push(self.spi_size);
        out.extend_from_slice(&fit::<u16>(self.spis.len(), "Delete SPI count")?.to_be_bytes());
        for spi in &self.spis {
            if spi.len() != usize::from(self.spi_size) {
                return Err(ApiMisuse::InvalidValue {
                    what: "Delete SPI length",
                    value: spi.len(),
                }
                .into());
            }
            out.extend_from_slice(spi);
        }
        Ok(())
    }
}

/// The Encrypted and Authenticated payload, before decryption.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Initialization Vector                     |
/// |         (length is block size for encryption algorithm)       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                    Encrypted IKE Payloads                     ~
/// +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |               |             Padding (0-255 octets)            |
/// +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
/// |                                               |  Pad Length   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                    Integrity Checksum Data                    ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.14, Figure 21. Its Next Payload field names the first payload *inside*.
/// Sealing and opening live in [`crate::crypto::sk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedPayload {
    /// Type of the first inner payload (this payload's Next Payload field).
    pub first_inner: PayloadType,
    /// IV, ciphertext and ICV, opaque until opened.
    pub body: Vec<u8>,
}

/// The Encrypted and Authenticated Fragment payload (RFC 7383 §2.5), kept sealed; this
/// crate does not reassemble fragments yet.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Fragment Number        |        Total Fragments        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Initialization Vector                     |
/// ~                      Encrypted content                        ~
/// ~                    Integrity Checksum Data                    ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7383 §2.5, Figure 2 (abridged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    /// Type of the first inner payload (non-zero in fragment 1 only).
    pub first_inner: PayloadType,
    /// Fragment Number, from 1.
    pub number: u16,
    /// Total Fragments.
    pub total: u16,
    /// IV, ciphertext and ICV.
    pub body: Vec<u8>,
}

impl EncryptedFragment {
    fn decode_body(first_inner: PayloadType, r: &mut Reader<'_>) -> Result<Self, Error> {
        let at = r.offset();
        let number = r.u16()?;
        let total = r.u16()?;
        if number == 0 || total == 0 || number > total {
            return Err(Error::Malformed(crate::error::DecodeError::new(
                at,
                DecodeErrorKind::Invalid("fragment number out of range"),
            )));
        }
        Ok(Self {
            first_inner,
            number,
            total,
            body: r.rest().to_vec(),
        })
    }
}

/// A payload of a type this crate does not model, received with the critical bit clear
/// (RFC 7296 §2.5: skipped, but kept for logging and exact re-encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPayload {
    /// Its payload type.
    pub payload_type: PayloadType,
    /// Its body after the generic header.
    pub body: Vec<u8>,
}

macro_rules! payload_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Payload {
            fn from(p: $ty) -> Self {
                Self::$variant(p)
            }
        })*
    };
}

payload_from! {
    SaPayload => Sa,
    KePayload => Ke,
    AuthPayload => Auth,
    Nonce => Nonce,
    NotifyPayload => Notify,
    DeletePayload => Delete,
    EncryptedPayload => Encrypted,
    EncryptedFragment => EncryptedFragment,
    UnknownPayload => Unknown,
}
