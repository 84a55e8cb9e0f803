//! BGP messages (RFC 4271 §4, RFC 2918 §3) and OPEN capabilities (RFC 5492).
//!
//! ```text
//!  Message header (RFC 4271 §4.1):
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                                                               |
//!  +                                                               +
//!  |                           Marker                              |
//!  +                                                               +
//!  |                                                               |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |          Length               |      Type     |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use super::{
    attribute::{
        decode_attributes, decode_prefixes, encode_attrs, encode_mp_reach_head, encode_prefix,
        flags, mp_reach_head_len, prefix_wire_len, put_attr, put_attr_ext, MpReach, MpUnreach,
        NextHop, PathAttrs,
    },
    error::{AttrAction, AttrError, DecodeError, DecodeErrorKind, EncodeError},
    finish_message,
    iana::{subcode_name, Afi, AttrType, CapabilityCode, ErrorCode, Family, MessageType, Safi},
    start_message, DecodeCxt, EncodeCxt, Reader, HEADER_LEN, MARKER, MAX_MESSAGE_LEN,
};

/// A BGP message.
// Messages are transient (decoded, handled, dropped), so an UPDATE inline costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE (RFC 4271 §4.4): the header alone.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type.
    pub const fn kind(&self) -> MessageType {
        match self {
            Self::Open(_) => MessageType::OPEN,
            Self::Update(_) => MessageType::UPDATE,
            Self::Notification(_) => MessageType::NOTIFICATION,
            Self::Keepalive => MessageType::KEEPALIVE,
            Self::RouteRefresh(_) => MessageType::ROUTE_REFRESH,
        }
    }

    /// Decodes one whole message, header included (as cut by [`Framer`](super::Framer)).
    /// Every octet must be accounted for.
    pub fn decode(msg: &[u8], cxt: &DecodeCxt) -> Result<Self, DecodeError> {
        let mut r = Reader::new(msg, 0, MessageType(0));
        let marker = r.take(16, "marker")?;
        if marker != MARKER {
            return Err(DecodeError::new(
                MessageType(0),
                0,
                DecodeErrorKind::ConnectionNotSynchronized,
            ));
        }
        let len = r.u16("length")?;
        let kind = MessageType(r.u8("type")?);
        let bad_len = || DecodeError::new(kind, 16, DecodeErrorKind::BadMessageLength(len));
        if usize::from(len) != msg.len() || usize::from(len) > MAX_MESSAGE_LEN {
            return Err(bad_len());
        }
        // RFC 4271 §6.1: per-type length bounds.
        let len_ok = match kind {
            MessageType::OPEN => len >= 29,
            MessageType::UPDATE => len >= 23,
            MessageType::NOTIFICATION => len >= 21,
            MessageType::KEEPALIVE => len == 19,
            MessageType::ROUTE_REFRESH => len == 23,
            _ => {
                return Err(DecodeError::new(
                    kind,
                    18,
                    DecodeErrorKind::BadMessageType(kind.0),
                ))
            }
        };
        if !len_ok {
            return Err(bad_len());
        }
        let mut body = Reader::new(r.rest(), HEADER_LEN, kind);
        let m = match kind {
            MessageType::OPEN => Self::Open(Open::decode_body(&mut body)?),
            MessageType::UPDATE => Self::Update(Update::decode_body(&mut body, cxt)?),
            MessageType::NOTIFICATION => Self::Notification(Notification {
                code: ErrorCode(body.u8("error code")?),
                subcode: body.u8("error subcode")?,
                data: body.rest().to_vec(),
            }),
            MessageType::KEEPALIVE => Self::Keepalive,
            _ => Self::RouteRefresh(RouteRefresh {
                afi: Afi(body.u16("AFI")?),
                subtype: body.u8("subtype")?,
                safi: Safi(body.u8("SAFI")?),
            }),
        };
        body.finish()?;
        Ok(m)
    }

    /// Appends the encoded message to `out`. On error nothing is appended.
    pub fn encode(&self, cxt: &EncodeCxt, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = start_message(out, self.kind());
        let body = match self {
            Self::Open(o) => o.encode_body(out),
            Self::Update(u) => u.encode_body(cxt, out),
            Self::Notification(n) => {
                out.push(n.code.0);
                out.push(n.subcode);
                out.extend_from_slice(&n.data);
                Ok(())
            }
            Self::Keepalive => Ok(()),
            Self::RouteRefresh(rr) => {
                out.extend_from_slice(&rr.afi.0.to_be_bytes());
                out.push(rr.subtype);
                out.push(rr.safi.0);
                Ok(())
            }
        };
        if let Err(e) = body {
            out.truncate(start);
            return Err(e);
        }
        finish_message(out, start)
    }

    /// The encoded message.
    pub fn to_bytes(&self, cxt: &EncodeCxt) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(cxt, &mut v)?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------
// OPEN
// ---------------------------------------------------------------------------------------

/// OPEN (RFC 4271 §4.2). The version is always 4: any other is rejected on decoding.
///
/// ```text
///   0                   1                   2                   3
///   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///  +-+-+-+-+-+-+-+-+
///  |    Version    |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |     My Autonomous System      |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |           Hold Time           |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                         BGP Identifier                        |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  | Opt Parm Len  |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |             Optional Parameters (variable)                    |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
///  Optional Parameter: Parm. Type (1) | Parm. Length (1) | Parameter Value
///  (RFC 9072 extended form, decoded only: Opt Parm Len 255, a 255 marker, a 2-octet length,
///  and 2-octet parameter lengths.)
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// My Autonomous System: the sender's AS, or AS_TRANS when it needs 4 octets.
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Optional parameters, as grouped on the wire.
    pub params: Vec<OptParam>,
}

/// An OPEN optional parameter. Only Capabilities (type 2, RFC 5492) is defined; any other
/// type is rejected on decoding (Unsupported Optional Parameter).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptParam {
    /// One or more capabilities in one parameter.
    Capabilities(Vec<Capability>),
}

/// The Capabilities optional parameter type.
const PARAM_CAPABILITIES: u8 = 2;

impl Open {
    /// An OPEN with all capabilities in one optional parameter.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Self {
            my_as: u16::try_from(asn).unwrap_or(super::iana::AS_TRANS as u16),
            hold_time,
            bgp_id,
            params: vec![OptParam::Capabilities(capabilities)],
        }
    }

    /// Every capability, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> + '_ {
        self.params.iter().flat_map(|p| match p {
            OptParam::Capabilities(c) => c.iter(),
        })
    }

    /// The 4-octet AS capability's value, if present (RFC 6793 §3).
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The sender's AS: the 4-octet capability's value if present, else My AS.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The families the sender announced with the Multiprotocol capability; IPv4 unicast
    /// alone when it announced none (RFC 4760 §8: a speaker without the capability speaks
    /// IPv4 unicast). Families this crate does not support are left out.
    pub fn families(&self) -> Vec<Family> {
        let mut mp = false;
        let mut out = Vec::new();
        for c in self.capabilities() {
            if let Capability::Multiprotocol { afi, safi } = c {
                mp = true;
                if let Some(f) = Family::from_afi_safi(*afi, *safi) {
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
        }
        if !mp {
            out.push(Family::Ipv4Unicast);
        }
        out
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("version")?;
        if version != 4 {
            return Err(DecodeError::new(
                MessageType::OPEN,
                HEADER_LEN,
                DecodeErrorKind::UnsupportedVersion(version),
            ));
        }
        let my_as = r.u16("my AS")?;
        let hold_time = r.u16("hold time")?;
        let id_offset = r.offset();
        let bgp_id = Ipv4Addr::from(r.u32("BGP identifier")?);
        if bgp_id.is_unspecified() {
            // RFC 6286 §2.2: a non-zero 4-octet unsigned integer.
            return Err(DecodeError::new(
                MessageType::OPEN,
                id_offset,
                DecodeErrorKind::BadBgpIdentifier(bgp_id),
            ));
        }
        let mut plen = usize::from(r.u8("optional parameters length")?);
        let mut extended = false;
        if plen == 255 && r.clone().u8("extended marker").ok() == Some(255) {
            // RFC 9072 §2.
            r.u8("extended marker")?;
            plen = usize::from(r.u16("extended optional parameters length")?);
            extended = true;
        }
        let malformed = |r: &Reader<'_>| r.error(DecodeErrorKind::MalformedOptionalParameters);
        let mut pr = r
            .sub(plen, "optional parameters")
            .map_err(|_| malformed(r))?;
        let mut params = Vec::new();
        while !pr.is_empty() {
            let off = pr.offset();
            let t = pr.u8("parameter type").map_err(|_| malformed(&pr))?;
            let len = if extended {
                usize::from(pr.u16("parameter length").map_err(|_| malformed(&pr))?)
            } else {
                usize::from(pr.u8("parameter length").map_err(|_| malformed(&pr))?)
            };
            let mut v = pr.sub(len, "parameter value").map_err(|_| malformed(&pr))?;
            if t != PARAM_CAPABILITIES {
                return Err(DecodeError::new(
                    MessageType::OPEN,
                    off,
                    DecodeErrorKind::UnsupportedOptionalParameter(t),
                ));
            }
            let mut caps = Vec::new();
            while !v.is_empty() {
                let code = CapabilityCode(v.u8("capability code").map_err(|_| malformed(&v))?);
                let clen = v.u8("capability length").map_err(|_| malformed(&v))?;
                let value = v
                    .take(usize::from(clen), "capability value")
                    .map_err(|_| malformed(&v))?;
                caps.push(Capability::decode(code, value));
            }
            params.push(OptParam::Capabilities(caps));
        }
        r.finish()?;
        Ok(Self {
            my_as,
            hold_time,
            bgp_id,
            params,
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(4);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let len_at = out.len();
        out.push(0);
        for p in &self.params {
            let OptParam::Capabilities(caps) = p;
            out.push(PARAM_CAPABILITIES);
            let plen_at = out.len();
            out.push(0);
            for c in caps {
                c.encode(out)?;
            }
            let plen = u8::try_from(out.len() - plen_at - 1)
                .map_err(|_| EncodeError::FieldTooLong("optional parameter"))?;
            if let Some(b) = out.get_mut(plen_at) {
                *b = plen;
            }
        }
        let len = u8::try_from(out.len() - len_at - 1)
            .ok()
            .filter(|&l| l < 255)
            .ok_or(EncodeError::FieldTooLong("optional parameters"))?;
        if let Some(b) = out.get_mut(len_at) {
            *b = len;
        }
        Ok(())
    }
}

/// An OPEN capability (RFC 5492).
///
/// ```text
///  +------------------------------+
///  | Capability Code (1 octet)    |
///  +------------------------------+
///  | Capability Length (1 octet)  |
///  +------------------------------+
///  | Capability Value (variable)  |
///  +------------------------------+
/// ```
///
/// A known capability whose value is malformed decodes as [`Capability::Unknown`], so it is
/// ignored rather than fatal (RFC 5492 §3 leaves unknown capabilities to be ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capability {
    /// Multiprotocol Extensions (code 1, RFC 4760 §8): AFI (2), reserved (1), SAFI (1).
    Multiprotocol {
        /// AFI.
        afi: Afi,
        /// SAFI.
        safi: Safi,
    },
    /// Route Refresh (code 2, RFC 2918): empty.
    RouteRefresh,
    /// Graceful Restart (code 64, RFC 4724 §3).
    GracefulRestart(GracefulRestartCap),
    /// 4-octet AS numbers (code 65, RFC 6793 §3): the sender's AS.
    FourOctetAs(u32),
    /// Anything else, kept raw.
    Unknown {
        /// Capability code.
        code: CapabilityCode,
        /// Value.
        value: Vec<u8>,
    },
}

/// The Graceful Restart capability (RFC 4724 §3).
///
/// ```text
///  +--------------------------------------------------+
///  | Restart Flags (4 bits) | Restart Time (12 bits)  |
///  +--------------------------------------------------+
///  | AFI (16 bits) | SAFI (8 bits) | Flags for AF (8) |  repeated
///  +--------------------------------------------------+
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulRestartCap {
    /// Restart State (R): the sender has restarted.
    pub restarting: bool,
    /// Notification (N, RFC 8538): graceful restart also applies after a NOTIFICATION.
    pub notification: bool,
    /// Seconds the sender expects to take to re-establish the session after a restart.
    pub restart_time: u16,
    /// Families whose routes the peer should retain, with the Forwarding State (F) bit.
    pub families: Vec<GrFamily>,
}

/// One family entry of the Graceful Restart capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrFamily {
    /// AFI.
    pub afi: Afi,
    /// SAFI.
    pub safi: Safi,
    /// Forwarding State (F): forwarding was preserved across the restart.
    pub forwarding: bool,
}

impl Capability {
    /// The capability code.
    pub const fn code(&self) -> CapabilityCode {
        match self {
            Self::Multiprotocol { .. } => CapabilityCode::MULTIPROTOCOL,
            Self::RouteRefresh => CapabilityCode::ROUTE_REFRESH,
            Self::GracefulRestart(_) => CapabilityCode::GRACEFUL_RESTART,
            Self::FourOctetAs(_) => CapabilityCode::FOUR_OCTET_AS,
            Self::Unknown { code, .. } => *code,
        }
    }

    /// The Multiprotocol capability for a family.
    pub const fn multiprotocol(family: Family) -> Self {
        Self::Multiprotocol {
            afi: family.afi(),
            safi: family.safi(),
        }
    }

    fn decode(code: CapabilityCode, v: &[u8]) -> Self {
        match (code, v) {
            (CapabilityCode::MULTIPROTOCOL, &[a, b, _reserved, s]) => Self::Multiprotocol {
                afi: Afi(u16::from_be_bytes([a, b])),
                safi: Safi(s),
            },
            (CapabilityCode::ROUTE_REFRESH, []) => Self::RouteRefresh,
            (CapabilityCode::FOUR_OCTET_AS, &[a, b, c, d]) => {
                Self::FourOctetAs(u32::from_be_bytes([a, b, c, d]))
            }
            (CapabilityCode::GRACEFUL_RESTART, &[hi, lo, ref rest @ ..]) if rest.len() % 4 == 0 => {
                Self::GracefulRestart(GracefulRestartCap {
                    restarting: hi & 0x80 != 0,
                    notification: hi & 0x40 != 0,
                    restart_time: u16::from_be_bytes([hi & 0x0f, lo]),
                    families: rest
                        .chunks_exact(4)
                        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                        .map(|[a, b, s, f]| GrFamily {
                            afi: Afi(u16::from_be_bytes([a, b])),
                            safi: Safi(s),
                            forwarding: f & 0x80 != 0,
                        })
                        .collect(),
                })
            }
            _ => Self::Unknown {
                code,
                value: v.to_vec(),
            },
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.code().0);
        let len_at = out.len();
        out.push(0);
        match self {
            Self::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&afi.0.to_be_bytes());
                out.push(0);
                out.push(safi.0);
            }
            Self::RouteRefresh => {}
            Self::GracefulRestart(gr) => {
                let mut hi = ((gr.restart_time >> 8) & 0x0f) as u8;
                if gr.restarting {
                    hi |= 0x80;
                }
                if gr.notification {
                    hi |= 0x40;
                }
                out.push(hi);
                // Low octet of the 12-bit restart time.
                out.push((gr.restart_time & 0xff) as u8);
                for f in &gr.families {
                    out.extend_from_slice(&f.afi.0.to_be_bytes());
                    out.push(f.safi.0);
                    out.push(if f.forwarding { 0x80 } else { 0 });
                }
            }
            Self::FourOctetAs(a) => out.extend_from_slice(&a.to_be_bytes()),
            Self::Unknown { value, .. } => out.extend_from_slice(value),
        }
        let len = u8::try_from(out.len() - len_at - 1)
            .map_err(|_| EncodeError::FieldTooLong("capability"))?;
        if let Some(b) = out.get_mut(len_at) {
            *b = len;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// UPDATE
// ---------------------------------------------------------------------------------------

/// UPDATE (RFC 4271 §4.3), with MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760) lifted out of
/// the attribute list.
///
/// ```text
///  +-----------------------------------------------------+
///  |   Withdrawn Routes Length (2 octets)                |
///  +-----------------------------------------------------+
///  |   Withdrawn Routes (variable)                       |
///  +-----------------------------------------------------+
///  |   Total Path Attribute Length (2 octets)            |
///  +-----------------------------------------------------+
///  |   Path Attributes (variable)                        |
///  +-----------------------------------------------------+
///  |   Network Layer Reachability Information (variable) |
///  +-----------------------------------------------------+
/// ```
///
/// Encoding puts MP_REACH_NLRI and MP_UNREACH_NLRI first (RFC 7606 §5.1), then the other
/// attributes in ascending type order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Withdrawn IPv4 routes.
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes; `None` when the UPDATE carries no usable attributes (a pure
    /// withdrawal, or ORIGIN / AS_PATH missing).
    pub attrs: Option<PathAttrs>,
    /// MP_REACH_NLRI.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI.
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 NLRI.
    pub nlri: Vec<Ipv4Net>,
    /// Malformed attributes the session survives, as found while decoding (RFC 7606).
    /// Ignored by encoding and serde; empty for a locally built UPDATE.
    #[serde(skip)]
    pub errors: Vec<AttrError>,
}

impl Update {
    /// Whether RFC 7606's treat-as-withdraw applies: every route this UPDATE announces must be
    /// handled as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == AttrAction::TreatAsWithdraw)
    }

    /// The family whose End-of-RIB marker this is (RFC 4724 §2), if it is one: an UPDATE with
    /// nothing in it (IPv4), or with only an empty MP_UNREACH_NLRI.
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || self.attrs.is_some()
            || !self.errors.is_empty()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::Ipv4Unicast),
            Some(u) if u.withdrawn.is_empty() => Some(u.family),
            Some(_) => None,
        }
    }

    /// Every prefix this UPDATE announces, with its next hop (IPv4 NLRI with NEXT_HOP, then
    /// MP_REACH_NLRI's). IPv4 NLRI are skipped when NEXT_HOP is missing.
    pub fn announced(&self) -> impl Iterator<Item = (IpNet, NextHop)> + '_ {
        let nh4 = self
            .attrs
            .as_ref()
            .and_then(|a| a.next_hop)
            .map(|a| NextHop::new(IpAddr::V4(a)));
        let v4 = self
            .nlri
            .iter()
            .filter_map(move |p| nh4.map(|nh| (IpNet::V4(*p), nh)));
        let mp = self
            .mp_reach
            .iter()
            .flat_map(|m| m.nlri.iter().map(move |p| (*p, m.next_hop)));
        v4.chain(mp)
    }

    /// Every prefix this UPDATE announces, with or without a usable next hop.
    pub fn announced_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.nlri
            .iter()
            .map(|p| IpNet::V4(*p))
            .chain(self.mp_reach.iter().flat_map(|m| m.nlri.iter().copied()))
    }

    /// Every prefix this UPDATE withdraws (IPv4 field, then MP_UNREACH_NLRI's).
    pub fn withdrawn_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.withdrawn.iter().map(|p| IpNet::V4(*p)).chain(
            self.mp_unreach
                .iter()
                .flat_map(|m| m.withdrawn.iter().copied()),
        )
    }

    fn decode_body(r: &mut Reader<'_>, cxt: &DecodeCxt) -> Result<Self, DecodeError> {
        let overrun = |r: &Reader<'_>, what| r.error(DecodeErrorKind::MalformedAttributeList(what));
        let wlen = usize::from(r.u16("withdrawn routes length")?);
        let mut wr = r
            .sub(wlen, "withdrawn routes")
            .map_err(|_| overrun(r, "withdrawn routes length overruns the message"))?;
        let withdrawn = decode_v4_prefixes(&mut wr)?;
        let alen = usize::from(
            r.u16("total path attribute length")
                .map_err(|_| overrun(r, "no total path attribute length"))?,
        );
        let mut ar = r
            .sub(alen, "path attributes")
            .map_err(|_| overrun(r, "total path attribute length overruns the message"))?;
        let decoded = decode_attributes(&mut ar, cxt)?;
        let nlri = decode_v4_prefixes(r)?;
        let done = decoded.finish(!nlri.is_empty());
        Ok(Self {
            withdrawn,
            attrs: done.attrs,
            mp_reach: done.mp_reach,
            mp_unreach: done.mp_unreach,
            nlri,
            errors: done.errors,
        })
    }

    fn encode_body(&self, cxt: &EncodeCxt, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let wl_at = out.len();
        out.extend_from_slice(&[0, 0]);
        for p in &self.withdrawn {
            encode_prefix(&IpNet::V4(*p), out);
        }
        backfill_u16(out, wl_at)?;
        let al_at = out.len();
        out.extend_from_slice(&[0, 0]);
        if let Some(m) = &self.mp_reach {
            if m.family == Family::Ipv4Unicast && !m.next_hop.addr.is_ipv4()
                || m.family == Family::Ipv6Unicast && !m.next_hop.addr.is_ipv6()
            {
                return Err(EncodeError::WrongFamily("MP_REACH_NLRI next hop family"));
            }
            put_attr_ext(out, flags::OPTIONAL, AttrType::MP_REACH_NLRI, |o| {
                encode_mp_reach_head(m.family, &m.next_hop, o);
                for p in &m.nlri {
                    encode_prefix(p, o);
                }
            });
        }
        if let Some(m) = &self.mp_unreach {
            put_attr(out, flags::OPTIONAL, AttrType::MP_UNREACH_NLRI, |o| {
                o.extend_from_slice(&m.family.afi().0.to_be_bytes());
                o.push(m.family.safi().0);
                for p in &m.withdrawn {
                    encode_prefix(p, o);
                }
            });
        }
        if let Some(a) = &self.attrs {
            encode_attrs(a, a.next_hop, cxt, out);
        }
        backfill_u16(out, al_at)?;
        for p in &self.nlri {
            encode_prefix(&IpNet::V4(*p), out);
        }
        Ok(())
    }
}

fn decode_v4_prefixes(r: &mut Reader<'_>) -> Result<Vec<Ipv4Net>, DecodeError> {
    let at = r.offset();
    let v = decode_prefixes(r, Family::Ipv4Unicast).map_err(|why| {
        DecodeError::new(r.message(), at, DecodeErrorKind::InvalidNetworkField(why))
    })?;
    Ok(v.into_iter()
        .filter_map(|p| match p {
            IpNet::V4(p) => Some(p),
            IpNet::V6(_) => None,
        })
        .collect())
}

fn backfill_u16(out: &mut [u8], at: usize) -> Result<(), EncodeError> {
    let len = u16::try_from(out.len() - at - 2).map_err(|_| EncodeError::FieldTooLong("UPDATE"))?;
    if let Some(d) = out.get_mut(at..at + 2) {
        d.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Appends UPDATE messages that announce `prefixes` (all of `family`) with `attrs` and
/// `next_hop`, packing as many prefixes per message as fit in 4096 octets.
///
/// IPv4 prefixes go in the NLRI field with a NEXT_HOP attribute; IPv6 prefixes in
/// MP_REACH_NLRI. `attrs.next_hop` is ignored.
pub fn encode_announce(
    family: Family,
    attrs: &PathAttrs,
    next_hop: &NextHop,
    prefixes: &[IpNet],
    cxt: &EncodeCxt,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if prefixes.is_empty() {
        return Ok(());
    }
    let mut encoded = Vec::with_capacity(64);
    match (family, next_hop.addr) {
        (Family::Ipv4Unicast, IpAddr::V4(nh)) => encode_attrs(attrs, Some(nh), cxt, &mut encoded),
        (Family::Ipv6Unicast, IpAddr::V6(_)) => encode_attrs(attrs, None, cxt, &mut encoded),
        _ => return Err(EncodeError::WrongFamily("next hop of another family")),
    }
    // Fixed part: header, withdrawn length, attribute length.
    let fixed = HEADER_LEN + 2 + 2 + encoded.len();
    let mp_head = match family {
        Family::Ipv4Unicast => 0,
        // MP_REACH_NLRI attribute header with a 2-octet length, plus its fixed fields.
        Family::Ipv6Unicast => 4 + mp_reach_head_len(next_hop),
    };
    let budget = MAX_MESSAGE_LEN
        .checked_sub(fixed + mp_head)
        .filter(|&b| b >= 17)
        .ok_or(EncodeError::TooLong(fixed + mp_head + 17))?;
    let mut rest = prefixes;
    let mut nlri = Vec::with_capacity(budget);
    while !rest.is_empty() {
        nlri.clear();
        let mut n = 0;
        for p in rest {
            if Family::of(p) != family {
                return Err(EncodeError::WrongFamily("prefix of another family"));
            }
            if nlri.len() + prefix_wire_len(p) > budget {
                break;
            }
            encode_prefix(p, &mut nlri);
            n += 1;
        }
        rest = rest.get(n..).unwrap_or_default();
        let start = start_message(out, MessageType::UPDATE);
        out.extend_from_slice(&[0, 0]);
        let al_at = out.len();
        out.extend_from_slice(&[0, 0]);
        if family == Family::Ipv6Unicast {
            put_attr_ext(out, flags::OPTIONAL, AttrType::MP_REACH_NLRI, |o| {
                encode_mp_reach_head(family, next_hop, o);
                o.extend_from_slice(&nlri);
            });
        }
        out.extend_from_slice(&encoded);
        backfill_u16(out, al_at)?;
        if family == Family::Ipv4Unicast {
            out.extend_from_slice(&nlri);
        }
        finish_message(out, start)?;
    }
    Ok(())
}

/// Appends UPDATE messages that withdraw `prefixes` (all of `family`), as many per message as
/// fit.
pub fn encode_withdraw(
    family: Family,
    prefixes: &[IpNet],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    // Header, both length fields, and for IPv6 the MP_UNREACH_NLRI header (4) + AFI/SAFI (3).
    let budget = MAX_MESSAGE_LEN
        - HEADER_LEN
        - 4
        - match family {
            Family::Ipv4Unicast => 0,
            Family::Ipv6Unicast => 7,
        };
    let mut rest = prefixes;
    let mut buf = Vec::with_capacity(budget);
    while !rest.is_empty() {
        buf.clear();
        let mut n = 0;
        for p in rest {
            if Family::of(p) != family {
                return Err(EncodeError::WrongFamily("prefix of another family"));
            }
            if buf.len() + prefix_wire_len(p) > budget {
                break;
            }
            encode_prefix(p, &mut buf);
            n += 1;
        }
        rest = rest.get(n..).unwrap_or_default();
        let start = start_message(out, MessageType::UPDATE);
        match family {
            Family::Ipv4Unicast => {
                let wl_at = out.len();
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&buf);
                backfill_u16(out, wl_at)?;
                out.extend_from_slice(&[0, 0]);
            }
            Family::Ipv6Unicast => {
                out.extend_from_slice(&[0, 0]);
                let al_at = out.len();
                out.extend_from_slice(&[0, 0]);
                put_attr(out, flags::OPTIONAL, AttrType::MP_UNREACH_NLRI, |o| {
                    o.extend_from_slice(&family.afi().0.to_be_bytes());
                    o.push(family.safi().0);
                    o.extend_from_slice(&buf);
                });
                backfill_u16(out, al_at)?;
            }
        }
        finish_message(out, start)?;
    }
    Ok(())
}

/// Appends the End-of-RIB marker of `family` (RFC 4724 §2).
pub fn encode_end_of_rib(family: Family, out: &mut Vec<u8>) {
    let u = Update {
        mp_unreach: (family != Family::Ipv4Unicast).then_some(MpUnreach {
            family,
            withdrawn: Vec::new(),
        }),
        ..Update::default()
    };
    // An empty UPDATE always fits.
    let _ = Message::Update(u).encode(&EncodeCxt::default(), out);
}

// ---------------------------------------------------------------------------------------
// NOTIFICATION, ROUTE-REFRESH
// ---------------------------------------------------------------------------------------

/// NOTIFICATION (RFC 4271 §4.5).
///
/// ```text
///   0                   1                   2                   3
///   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  | Error code    | Error subcode |   Data (variable)             |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Error code.
    pub code: ErrorCode,
    /// Error subcode (see the subcode modules of [`iana`](super::iana)).
    pub subcode: u8,
    /// Data, meaning per (code, subcode).
    pub data: Vec<u8>,
}

impl Notification {
    /// A NOTIFICATION.
    pub const fn new(code: ErrorCode, subcode: u8, data: Vec<u8>) -> Self {
        Self {
            code,
            subcode,
            data,
        }
    }

    /// Cease with a subcode and no data.
    pub const fn cease(subcode: u8) -> Self {
        Self::new(ErrorCode::CEASE, subcode, Vec::new())
    }

    /// The shutdown communication of a Cease / Administrative Shutdown or Reset
    /// (RFC 9003), if it carries one that is valid UTF-8.
    pub fn shutdown_message(&self) -> Option<&str> {
        if self.code != ErrorCode::CEASE || !matches!(self.subcode, 2 | 4) {
            return None;
        }
        let (len, rest) = self.data.split_first()?;
        std::str::from_utf8(rest.get(..usize::from(*len))?).ok()
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        match subcode_name(self.code, self.subcode) {
            Some("") => {}
            Some(s) => write!(f, " / {s}")?,
            None => write!(f, " / subcode {}", self.subcode)?,
        }
        write!(f, " ({}/{})", self.code.0, self.subcode)?;
        if let Some(m) = self.shutdown_message() {
            write!(f, ": \"{m}\"")?;
        }
        Ok(())
    }
}

/// ROUTE-REFRESH (RFC 2918 §3).
///
/// ```text
///   0       7      15      23      31
///  +-------+-------+-------+-------+
///  |      AFI      | Res.  | SAFI  |
///  +-------+-------+-------+-------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRefresh {
    /// AFI.
    pub afi: Afi,
    /// Reserved (RFC 2918) / Message Subtype (RFC 7313); 0 for a plain refresh request.
    pub subtype: u8,
    /// SAFI.
    pub safi: Safi,
}

impl RouteRefresh {
    /// A refresh request for a family.
    pub const fn new(family: Family) -> Self {
        Self {
            afi: family.afi(),
            subtype: 0,
            safi: family.safi(),
        }
    }
}
