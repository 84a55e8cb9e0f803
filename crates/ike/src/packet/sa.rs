//! The Security Association payload and its substructures (RFC 7296 §3.3), in wire form.
//! Negotiation works on the grouped view in [`crate::proposal`].

use super::codec::{backfill16, fit, placeholder16, Reader};
use super::iana::{AttributeType, ProtocolId, TransformType};
use crate::error::{ApiMisuse, DecodeError, DecodeErrorKind, Error, Within};

/// Security Association payload: a list of proposals, in the sender's preference order.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                          <Proposals>                          ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.3, Figure 6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    /// The proposals.
    pub proposals: Vec<WireProposal>,
}

/// Last Substruc value: this is the last proposal.
const LAST: u8 = 0;
/// Last Substruc value: more proposals follow.
const MORE_PROPOSALS: u8 = 2;
/// Last Substruc value: more transforms follow.
const MORE_TRANSFORMS: u8 = 3;

impl SaPayload {
    pub(crate) fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let mut proposals = Vec::new();
        loop {
            let last_at = r.offset();
            let last = r.u8()?;
            if last != LAST && last != MORE_PROPOSALS {
                return Err(invalid_value(
                    last_at,
                    "proposal Last Substruc",
                    last.into(),
                ));
            }
            r.take(1)?;
            let len_at = r.offset();
            let length = usize::from(r.u16()?);
            let body_len = length.checked_sub(4).ok_or_else(|| {
                Error::Malformed(DecodeError::new(
                    len_at,
                    DecodeErrorKind::InvalidLength {
                        what: "proposal",
                        length,
                    },
                ))
            })?;
            let body = r.sub(body_len)?;
            proposals.push(WireProposal::decode_body(body).within("proposal")?);
            if last == LAST {
                break;
            }
            if r.is_empty() {
                return Err(r.error(DecodeErrorKind::Invalid(
                    "Last Substruc says more proposals follow, but none do",
                )));
            }
        }
        r.finish()?;
        Ok(Self { proposals })
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.proposals.is_empty() {
            return Err(ApiMisuse::Other("SA payload without proposals").into());
        }
        let count = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            let start = out.len();
            out.push(if i + 1 == count { LAST } else { MORE_PROPOSALS });
            out.push(0);
            let at = placeholder16(out);
            p.encode_body(out)?;
            backfill16(out, at, start, "proposal")?;
        }
        Ok(())
    }
}

fn invalid_value(at: usize, what: &'static str, value: u32) -> Error {
    Error::Malformed(DecodeError::new(
        at,
        DecodeErrorKind::InvalidValue { what, value },
    ))
}

/// A Proposal substructure.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Last Substruc |   RESERVED    |         Proposal Length       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                        SPI (variable)                         ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                        <Transforms>                           ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.3.1, Figure 7. `Last Substruc`, `Proposal Length`, `SPI Size` and
/// `Num Transforms` are derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireProposal {
    /// Proposal Num: 1, 2, ... in a request; the accepted number in a response.
    pub number: u8,
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// SPI: empty in IKE_SA_INIT, 8 octets for IKE rekeying, 4 for ESP/AH.
    pub spi: Vec<u8>,
    /// Transforms, in the sender's preference order.
    pub transforms: Vec<Transform>,
}

impl WireProposal {
    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let count_at = r.offset();
        let count = r.u8()?;
        let spi = r.take(spi_size)?.to_vec();
        let mut transforms = Vec::with_capacity(count.into());
        let mut more = !r.is_empty();
        while more {
            let last_at = r.offset();
            let last = r.u8()?;
            if last != LAST && last != MORE_TRANSFORMS {
                return Err(invalid_value(
                    last_at,
                    "transform Last Substruc",
                    last.into(),
                ));
            }
            r.take(1)?;
            let len_at = r.offset();
            let length = usize::from(r.u16()?);
            let body_len = length.checked_sub(4).ok_or_else(|| {
                Error::Malformed(DecodeError::new(
                    len_at,
                    DecodeErrorKind::InvalidLength {
                        what: "transform",
                        length,
                    },
                ))
            })?;
            let body = r.sub(body_len)?;
            transforms.push(Transform::decode_body(body).within("transform")?);
            more = last == MORE_TRANSFORMS;
            if more && r.is_empty() {
                return Err(r.error(DecodeErrorKind::Invalid(
                    "Last Substruc says more transforms follow, but none do",
                )));
            }
        }
        if transforms.len() != usize::from(count) {
            return Err(invalid_value(count_at, "Num Transforms", count.into()));
        }
        r.finish()?;
        Ok(Self {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(self.number);
        out.push(self.protocol.0);
        out.push(fit(self.spi.len(), "proposal SPI")?);
        out.push(fit(self.transforms.len(), "transform count")?);
        out.extend_from_slice(&self.spi);
        let count = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            let start = out.len();
            out.push(if i + 1 == count {
                LAST
            } else {
                MORE_TRANSFORMS
            });
            out.push(0);
            let at = placeholder16(out);
            t.encode_body(out)?;
            backfill16(out, at, start, "transform")?;
        }
        Ok(())
    }
}

/// A Transform substructure.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Last Substruc |   RESERVED    |        Transform Length       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Transform Type |   RESERVED    |          Transform ID         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                      Transform Attributes                     ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.3.2, Figure 8. The Transform ID is kept as the raw 16-bit value; its
/// registry depends on the Transform Type ([`super::iana::EncrId`], ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Transform Type.
    pub transform_type: TransformType,
    /// Transform ID, in the registry of `transform_type`.
    pub id: u16,
    /// Transform Attributes.
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(transform_type: TransformType, id: u16) -> Self {
        Self {
            transform_type,
            id,
            attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute (§3.3.5).
    pub fn with_key_length(transform_type: TransformType, id: u16, bits: u16) -> Self {
        Self {
            transform_type,
            id,
            attributes: vec![Attribute {
                attr_type: AttributeType::KEY_LENGTH,
                value: AttributeValue::Tv(bits),
            }],
        }
    }

    /// The Key Length attribute, if present in TV form.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute {
                attr_type: AttributeType::KEY_LENGTH,
                value: AttributeValue::Tv(bits),
            } => Some(*bits),
            _ => None,
        })
    }

    fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let transform_type = TransformType(r.u8()?);
        r.take(1)?;
        let id = r.u16()?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            attributes.push(Attribute::decode(&mut r).within("attribute")?);
        }
        Ok(Self {
            transform_type,
            id,
            attributes,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(self.transform_type.0);
        out.push(0);
        out.extend_from_slice(&self.id.to_be_bytes());
        for a in &self.attributes {
            a.encode(out)?;
        }
        Ok(())
    }
}

/// A Data Attribute.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |A|       Attribute Type        |    AF=0  Attribute Length     |
/// |F|                             |    AF=1  Attribute Value      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   AF=0  Attribute Value                       |
/// |                   AF=1  Not Transmitted                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.3.5, Figure 9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute Type (15 bits, without the AF bit).
    pub attr_type: AttributeType,
    /// The value, whose form is the AF bit.
    pub value: AttributeValue,
}

/// The two attribute formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// AF=1, Type/Value: a 16-bit value.
    Tv(u16),
    /// AF=0, Type/Length/Value.
    Tlv(Vec<u8>),
}

impl Attribute {
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let word = r.u16()?;
        let attr_type = AttributeType(word & 0x7fff);
        let value = if word & 0x8000 != 0 {
            AttributeValue::Tv(r.u16()?)
        } else {
            let length = usize::from(r.u16()?);
            AttributeValue::Tlv(r.take(length)?.to_vec())
        };
        Ok(Self { attr_type, value })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.attr_type.0 & 0x8000 != 0 {
            return Err(ApiMisuse::InvalidValue {
                what: "attribute type (15 bits)",
                value: self.attr_type.0.into(),
            }
            .into());
        }
        match &self.value {
            AttributeValue::Tv(v) => {
                out.extend_from_slice(&(self.attr_type.0 | 0x8000).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttributeValue::Tlv(v) => {
                out.extend_from_slice(&self.attr_type.0.to_be_bytes());
                out.extend_from_slice(&fit::<u16>(v.len(), "attribute")?.to_be_bytes());
                out.extend_from_slice(v);
            }
        }
        Ok(())
    }
}
