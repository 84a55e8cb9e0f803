//! Traffic Selector payloads (RFC 7296 §3.13).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::codec::{backfill16, fit, placeholder16, Reader};
use super::iana::TsType;
use crate::error::{ApiMisuse, DecodeError, DecodeErrorKind, Error, Within};

/// The body of a TSi or TSr payload.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Next Payload  |C|  RESERVED   |         Payload Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Number of TSs |                 RESERVED                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       <Traffic Selectors>                     ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.13, Figure 19.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSelectors(pub Vec<TrafficSelector>);

impl TrafficSelectors {
    pub(crate) fn decode_body(mut r: Reader<'_>) -> Result<Self, Error> {
        let count_at = r.offset();
        let count = r.u8()?;
        r.take(3)?;
        let mut out = Vec::with_capacity(count.into());
        while !r.is_empty() {
            out.push(TrafficSelector::decode(&mut r).within("traffic selector")?);
        }
        if out.len() != usize::from(count) {
            return Err(Error::Malformed(DecodeError::new(
                count_at,
                DecodeErrorKind::InvalidValue {
                    what: "Number of TSs",
                    value: count.into(),
                },
            )));
        }
        Ok(Self(out))
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(fit(self.0.len(), "traffic selector count")?);
        out.extend_from_slice(&[0; 3]);
        for ts in &self.0 {
            ts.encode(out)?;
        }
        Ok(())
    }
}

impl fmt::Display for TrafficSelectors {
    /// Comma-separated, in strongSwan's `left|rightsubnet` style.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for ts in &self.0 {
            write!(f, "{sep}{ts}")?;
            sep = ", ";
        }
        Ok(())
    }
}

/// One Traffic Selector.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   TS Type     |IP Protocol ID*|       Selector Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Start Port*         |           End Port*           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                         Starting Address*                     ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                         Ending Address*                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 7296 §3.13.1, Figure 20 (* format depends on TS Type). Types other than
/// TS_IPV4_ADDR_RANGE and TS_IPV6_ADDR_RANGE are skipped by their Selector Length and kept
/// raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE (by the family of the addresses).
    Range(AddrRange),
    /// Any other TS type.
    Other {
        /// TS Type.
        ts_type: TsType,
        /// The octet after TS Type (IP Protocol ID for the address-range types).
        second_octet: u8,
        /// Everything after the Selector Length field.
        data: Vec<u8>,
    },
}

impl TrafficSelector {
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let ts_type = TsType(r.u8()?);
        let second_octet = r.u8()?;
        let len_at = r.offset();
        let length = usize::from(r.u16()?);
        let mut body = r.sub(length.saturating_sub(4))?;
        let addr_len = match ts_type {
            TsType::TS_IPV4_ADDR_RANGE => 4,
            TsType::TS_IPV6_ADDR_RANGE => 16,
            _ if length >= 4 => {
                return Ok(Self::Other {
                    ts_type,
                    second_octet,
                    data: body.rest().to_vec(),
                })
            }
            _ => 0,
        };
        if length != 8 + 2 * addr_len {
            return Err(Error::Malformed(DecodeError::new(
                len_at,
                DecodeErrorKind::InvalidLength {
                    what: "Selector Length",
                    length,
                },
            )));
        }
        let start_port = body.u16()?;
        let end_port = body.u16()?;
        let (start, end) = if addr_len == 4 {
            (
                IpAddr::V4(Ipv4Addr::from(body.array::<4>()?)),
                IpAddr::V4(Ipv4Addr::from(body.array::<4>()?)),
            )
        } else {
            (
                IpAddr::V6(Ipv6Addr::from(body.array::<16>()?)),
                IpAddr::V6(Ipv6Addr::from(body.array::<16>()?)),
            )
        };
        body.finish()?;
        Ok(Self::Range(AddrRange {
            ip_protocol: second_octet,
            start_port,
            end_port,
            start,
            end,
        }))
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        match self {
            Self::Range(r) => {
                let ts_type = match (r.start, r.end) {
                    (IpAddr::V4(_), IpAddr::V4(_)) => TsType::TS_IPV4_ADDR_RANGE,
                    (IpAddr::V6(_), IpAddr::V6(_)) => TsType::TS_IPV6_ADDR_RANGE,
                    _ => {
                        return Err(ApiMisuse::Other(
                            "traffic selector mixes IPv4 and IPv6 addresses",
                        )
                        .into())
                    }
                };
                out.push(ts_type.0);
                out.push(r.ip_protocol);
                let at = placeholder16(out);
                out.extend_from_slice(&r.start_port.to_be_bytes());
                out.extend_from_slice(&r.end_port.to_be_bytes());
                for a in [r.start, r.end] {
                    match a {
                        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
                    }
                }
                backfill16(out, at, start, "traffic selector")
            }
            Self::Other {
                ts_type,
                second_octet,
                data,
            } => {
                out.push(ts_type.0);
                out.push(*second_octet);
                let at = placeholder16(out);
                out.extend_from_slice(data);
                backfill16(out, at, start, "traffic selector")
            }
        }
    }
}

impl fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Range(r) => r.fmt(f),
            Self::Other { ts_type, .. } => write!(f, "<{ts_type}>"),
        }
    }
}

/// An address range with protocol and port range (TS types 7 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrRange {
    /// IP Protocol ID; 0 means any protocol.
    pub ip_protocol: u8,
    /// Start Port (0 with `end_port` 65535 means any port).
    pub start_port: u16,
    /// End Port.
    pub end_port: u16,
    /// Starting Address.
    pub start: IpAddr,
    /// Ending Address (same family as `start`).
    pub end: IpAddr,
}

impl AddrRange {
    /// All of IPv4, any protocol, any port (`0.0.0.0/0`): route-based tunnels.
    pub fn any_v4() -> Self {
        Self::from_net(IpNet::V4(Ipv4Net::default()))
    }

    /// All of IPv6, any protocol, any port (`::/0`).
    pub fn any_v6() -> Self {
        Self::from_net(IpNet::V6(Ipv6Net::default()))
    }

    /// The whole subnet, any protocol, any port.
    pub fn from_net(net: IpNet) -> Self {
        Self {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: net.network(),
            end: net.broadcast(),
        }
    }

    /// The subnet this address range is exactly, if it is one.
    pub fn to_net(&self) -> Option<IpNet> {
        let (lo, hi) = match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => (u128::from(u32::from(s)), u128::from(u32::from(e))),
            (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(s), u128::from(e)),
            _ => return None,
        };
        let span = hi.checked_sub(lo)?;
        // A prefix: span + 1 is a power of two and `lo` is aligned to it.
        let size = span.checked_add(1);
        let bits = if self.start.is_ipv4() { 32 } else { 128 };
        let host_bits = match size {
            Some(size) if size.is_power_of_two() && lo & span == 0 => size.trailing_zeros(),
            // The whole IPv6 space: span + 1 overflows u128.
            None if lo == 0 => 128,
            _ => return None,
        };
        let prefix = u8::try_from(bits - host_bits).ok()?;
        IpNet::new(self.start, prefix).ok()
    }

    /// Whether protocol and ports are "any".
    pub fn is_any_port_and_protocol(&self) -> bool {
        self.ip_protocol == 0 && self.start_port == 0 && self.end_port == u16::MAX
    }
}

impl fmt::Display for AddrRange {
    /// `10.1.0.0/16`, or `10.0.0.1..10.0.0.9` when not a prefix; `[proto/port]` or
    /// `[proto/lo-hi]` when not "any" (strongSwan's traffic selector notation, numeric).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_net() {
            Some(net) => write!(f, "{net}")?,
            None => write!(f, "{}..{}", self.start, self.end)?,
        }
        if !self.is_any_port_and_protocol() {
            write!(f, "[{}", self.ip_protocol)?;
            if self.start_port == self.end_port {
                write!(f, "/{}", self.start_port)?;
            } else if !(self.start_port == 0 && self.end_port == u16::MAX) {
                write!(f, "/{}-{}", self.start_port, self.end_port)?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

impl From<AddrRange> for TrafficSelector {
    fn from(r: AddrRange) -> Self {
        Self::Range(r)
    }
}
