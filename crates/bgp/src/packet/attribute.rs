//! Path attributes (RFC 4271 §4.3, §5), their decoding with the error handling of
//! [RFC 7606], the 2-/4-octet AS number handling of [RFC 6793], and NLRI prefixes.
//!
//! ```text
//!  Path attribute (RFC 4271 §4.3):
//!   0                   1
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |  Attr. Flags  |Attr. Type Code|  flags: Optional, Transitive, Partial, Extended Length
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  | Attribute Length (1 or 2 octets, 2 with Extended Length)
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  | Attribute Value (variable) ...
//! ```
//!
//! Per attribute, what a malformed one costs (RFC 7606 §7, RFC 6793 §6):
//!
//! | attribute | error | approach |
//! |---|---|---|
//! | any | Optional/Transitive flags wrong | treat-as-withdraw (§3 c) |
//! | any | length overruns the attribute list (§4) | treat-as-withdraw |
//! | any but MP_* | repeated | later copies discarded (§3 g) |
//! | MP_REACH_NLRI, MP_UNREACH_NLRI | repeated, or malformed | session reset (§3 g, §7.11) |
//! | well-known, unrecognized | — | session reset (RFC 4271 §6.3) |
//! | ORIGIN, AS_PATH, NEXT_HOP | missing while NLRI present | treat-as-withdraw (§3 d) |
//! | ORIGIN | length ≠ 1, undefined value | treat-as-withdraw (§7.1) |
//! | AS_PATH | malformed segment | treat-as-withdraw (§7.2) |
//! | NEXT_HOP | length ≠ 4 | treat-as-withdraw (§7.3) |
//! | MULTI_EXIT_DISC | length ≠ 4 | treat-as-withdraw (§7.4) |
//! | LOCAL_PREF | length ≠ 4 | treat-as-withdraw (§7.5) |
//! | ATOMIC_AGGREGATE | length ≠ 0 | attribute discard (§7.6) |
//! | AGGREGATOR | length ≠ 6 / 8 | attribute discard (§7.7) |
//! | COMMUNITIES | length not a non-zero multiple of 4 | treat-as-withdraw (§7.8) |
//! | ORIGINATOR_ID / CLUSTER_LIST | length ≠ 4 / not a multiple of 4 | treat-as-withdraw (§7.9, §7.10) |
//! | EXTENDED_COMMUNITIES | length not a multiple of 8 | treat-as-withdraw (§7.14) |
//! | LARGE_COMMUNITY | length not a non-zero multiple of 12 | treat-as-withdraw (RFC 8092 §6) |
//! | AS4_PATH, AS4_AGGREGATOR | malformed, or from a 4-octet speaker | attribute discard (RFC 6793 §6, §4.1) |
//!
//! Session-dependent checks (LOCAL_PREF from an external peer, the first AS of an external
//! peer's AS_PATH, unusable NEXT_HOP) are made by the session, which knows the peer
//! ([`crate::neighbor`]).
//!
//! [RFC 7606]: https://www.rfc-editor.org/rfc/rfc7606
//! [RFC 6793]: https://www.rfc-editor.org/rfc/rfc6793

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::{
    error::{AttrAction, AttrError, AttrErrorReason, DecodeError, DecodeErrorKind},
    iana::{AttrType, Family, Origin, AS_TRANS},
    DecodeCxt, EncodeCxt, Reader,
};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    /// Optional (1) or well-known (0).
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive (1) or non-transitive (0).
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial: some speaker on the path did not recognize this optional transitive attribute.
    pub const PARTIAL: u8 = 0x20;
    /// The length field is two octets.
    pub const EXTENDED_LENGTH: u8 = 0x10;
    /// Well-known attributes: Transitive only.
    pub(crate) const WELL_KNOWN: u8 = TRANSITIVE;
    /// Optional transitive.
    pub(crate) const OPT_TRANS: u8 = OPTIONAL | TRANSITIVE;
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentType {
    /// AS_SET: unordered, counts as one AS.
    Set = 1,
    /// AS_SEQUENCE: ordered.
    Sequence = 2,
    /// AS_CONFED_SEQUENCE (RFC 5065): does not count toward path length.
    ConfedSequence = 3,
    /// AS_CONFED_SET (RFC 5065): does not count toward path length.
    ConfedSet = 4,
}

impl SegmentType {
    const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Set),
            2 => Some(Self::Sequence),
            3 => Some(Self::ConfedSequence),
            4 => Some(Self::ConfedSet),
            _ => None,
        }
    }

    const fn is_confed(self) -> bool {
        matches!(self, Self::ConfedSequence | Self::ConfedSet)
    }
}

/// One AS_PATH segment. Never empty when decoded (an empty segment is malformed, RFC 7606
/// §7.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AsSegment {
    /// The segment type.
    pub kind: SegmentType,
    /// The AS numbers, 4-octet values whatever the session encoding.
    pub asns: Vec<u32>,
}

/// An AS_PATH, kept as 4-octet AS numbers; the 2-octet encoding and AS4_PATH are wire
/// details handled by the codec (RFC 6793).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AsPath {
    /// Segments, leftmost (most recently prepended) first.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let asns: Vec<u32> = asns.into_iter().collect();
        if asns.is_empty() {
            return Self::default();
        }
        Self {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Whether the path has no segments (a route originated in the local AS).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): an AS_SET counts as one,
    /// confederation segments count zero (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighbouring AS: the leftmost AS of a leading AS_SEQUENCE (RFC 4271 §9.1.2.2 c).
    pub fn first_as(&self) -> Option<u32> {
        let seg = self.segments.first()?;
        match seg.kind {
            SegmentType::Sequence => seg.asns.first().copied(),
            _ => None,
        }
    }

    /// Whether `asn` appears anywhere in the path (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Every AS number, left to right.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// The path with `asn` prepended `count` times (RFC 4271 §5.1.2, AS-path prepending).
    #[must_use]
    pub fn prepended(&self, asn: u32, count: usize) -> Self {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        let mut lead = vec![asn; count];
        let mut rest = self.segments.iter();
        if let Some(first) = self.segments.first() {
            if first.kind == SegmentType::Sequence {
                lead.extend_from_slice(&first.asns);
                rest.next();
            }
        }
        if !lead.is_empty() {
            segments.push(AsSegment {
                kind: SegmentType::Sequence,
                asns: lead,
            });
        }
        segments.extend(rest.cloned());
        Self { segments }
    }

    /// Whether any AS number needs 4 octets.
    fn has_4_octet(&self) -> bool {
        self.segments
            .iter()
            .filter(|s| !s.kind.is_confed())
            .any(|s| s.asns.iter().any(|&a| a > 0xffff))
    }

    /// Counts as RFC 6793 §4.2.3 does for the AS4_PATH merge: sets count one, confederation
    /// segments zero.
    fn as4_count(&self) -> usize {
        self.path_len()
    }

    /// Reconstructs the path from an AS_PATH and AS4_PATH received from a 2-octet speaker
    /// (RFC 6793 §4.2.3).
    fn merge_as4(self, as4: Self) -> Self {
        let n = self.as4_count();
        let n4 = as4.as4_count();
        if n < n4 {
            // "the AS4_PATH attribute is ignored".
            return self;
        }
        let mut need = n - n4;
        let mut out: Vec<AsSegment> = Vec::new();
        for seg in self.segments {
            // Confederation segments (always leftmost) are not in AS4_PATH: keep them.
            if need == 0 && !seg.kind.is_confed() {
                break;
            }
            match seg.kind {
                SegmentType::Sequence => {
                    let take = need.min(seg.asns.len());
                    need -= take;
                    out.push(AsSegment {
                        kind: seg.kind,
                        asns: seg.asns.into_iter().take(take).collect(),
                    });
                }
                SegmentType::Set => {
                    need -= 1;
                    out.push(seg);
                }
                SegmentType::ConfedSequence | SegmentType::ConfedSet => out.push(seg),
            }
        }
        for seg in as4.segments {
            // Join a leading-part sequence with the AS4_PATH's first sequence, so the merged
            // path is one segment where the sender had one.
            if let Some(last) = out.last_mut() {
                if last.kind == SegmentType::Sequence
                    && seg.kind == SegmentType::Sequence
                    && last.asns.len() + seg.asns.len() <= 255
                {
                    last.asns.extend(seg.asns);
                    continue;
                }
            }
            out.push(seg);
        }
        Self { segments: out }
    }

    fn decode(value: &[u8], asn4: bool) -> Result<Self, &'static str> {
        let width = if asn4 { 4 } else { 2 };
        let mut segments = Vec::new();
        let mut rest = value;
        while !rest.is_empty() {
            let [kind, count, tail @ ..] = rest else {
                return Err("segment header overruns the attribute");
            };
            let kind = SegmentType::from_u8(*kind).ok_or("undefined segment type")?;
            if *count == 0 {
                return Err("empty segment");
            }
            let len = usize::from(*count) * width;
            let (body, tail) = tail
                .split_at_checked(len)
                .ok_or("segment overruns the attribute")?;
            let asns = if asn4 {
                body.chunks_exact(4).filter_map(u32_of).collect()
            } else {
                body.chunks_exact(2)
                    .filter_map(|c| <[u8; 2]>::try_from(c).ok())
                    .map(|c| u32::from(u16::from_be_bytes(c)))
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
            rest = tail;
        }
        Ok(Self { segments })
    }

    /// Encodes the segments; `asn4` false maps 4-octet numbers to AS_TRANS. Segments with
    /// more than 255 AS numbers are split. With `skip_confed`, confederation segments are
    /// left out (AS4_PATH, RFC 6793 §4.2.2).
    fn encode(&self, asn4: bool, skip_confed: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            if skip_confed && seg.kind.is_confed() {
                continue;
            }
            for chunk in seg.asns.chunks(255) {
                out.push(seg.kind as u8);
                // chunks(255) yields at most 255 elements.
                out.push(chunk.len() as u8);
                for &asn in chunk {
                    if asn4 {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let a = u16::try_from(asn).unwrap_or(AS_TRANS as u16);
                        out.extend_from_slice(&a.to_be_bytes());
                    }
                }
            }
        }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, close) = match seg.kind {
                SegmentType::Sequence => ("", ""),
                SegmentType::Set => ("{", "}"),
                SegmentType::ConfedSequence => ("(", ")"),
                SegmentType::ConfedSet => ("[", "]"),
            };
            f.write_str(open)?;
            for (i, a) in seg.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

/// AGGREGATOR / AS4_AGGREGATOR value (RFC 4271 §5.1.7, RFC 6793).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Aggregator {
    /// The AS that formed the aggregate (4-octet value).
    pub asn: u32,
    /// The BGP speaker that formed it.
    pub address: Ipv4Addr,
}

/// A COMMUNITIES value (RFC 1997): conventionally `asn:value`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT: not advertised outside the AS (or confederation).
    pub const NO_EXPORT: Self = Self(0xffff_ff01);
    /// NO_ADVERTISE: not advertised to any peer.
    pub const NO_ADVERTISE: Self = Self(0xffff_ff02);
    /// NO_EXPORT_SUBCONFED: not advertised to external peers, not even within a
    /// confederation.
    pub const NO_EXPORT_SUBCONFED: Self = Self(0xffff_ff03);
    /// NOPEER (RFC 3765).
    pub const NO_PEER: Self = Self(0xffff_ff04);
    /// GRACEFUL_SHUTDOWN (RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Self = Self(0xffff_0000);

    /// The community `asn:value`.
    pub const fn new(asn: u16, value: u16) -> Self {
        Self(((asn as u32) << 16) | value as u32)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NO_EXPORT => f.write_str("no-export"),
            Self::NO_ADVERTISE => f.write_str("no-advertise"),
            Self::NO_EXPORT_SUBCONFED => f.write_str("no-export-subconfed"),
            _ => write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff),
        }
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Community({self})")
    }
}

/// An attribute this crate does not interpret, kept as received so it can be passed on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawAttribute {
    /// Flags as received (the Extended Length bit is recomputed on encoding).
    pub flags: u8,
    /// Type code.
    pub type_code: AttrType,
    /// Value.
    pub value: Vec<u8>,
}

impl RawAttribute {
    /// Whether the attribute is optional transitive, so passed on to other speakers.
    pub const fn is_transitive(&self) -> bool {
        self.flags & flags::OPT_TRANS == flags::OPT_TRANS
    }
}

/// A route's next hop: an IPv4 or IPv6 address, plus an IPv6 link-local address when the
/// peer sent both (RFC 2545 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NextHop {
    /// The (global) next hop.
    pub addr: IpAddr,
    /// The link-local next hop, IPv6 only.
    pub link_local: Option<Ipv6Addr>,
}

impl NextHop {
    /// A next hop without a link-local address.
    pub const fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            link_local: None,
        }
    }
}

impl From<IpAddr> for NextHop {
    fn from(addr: IpAddr) -> Self {
        Self::new(addr)
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.link_local {
            Some(ll) => write!(f, "{} ({ll})", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 §3) for a supported family.
///
/// ```text
///  +---------------------------------------------------------+
///  | Address Family Identifier (2 octets)                    |
///  | Subsequent Address Family Identifier (1 octet)          |
///  | Length of Next Hop Network Address (1 octet)            |
///  | Network Address of Next Hop (variable)                  |
///  | Reserved (1 octet)                                      |
///  | Network Layer Reachability Information (variable)       |
///  +---------------------------------------------------------+
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpReach {
    /// The address family.
    pub family: Family,
    /// The next hop: 4 octets for IPv4, 16 or 32 (global + link-local) for IPv6.
    pub next_hop: NextHop,
    /// Reachable prefixes.
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4) for a supported family. Empty `withdrawn` is the
/// End-of-RIB marker of a non-IPv4 family (RFC 4724 §2).
///
/// ```text
///  +---------------------------------------------------------+
///  | Address Family Identifier (2 octets)                    |
///  | Subsequent Address Family Identifier (1 octet)          |
///  | Withdrawn Routes (variable)                             |
///  +---------------------------------------------------------+
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpUnreach {
    /// The address family.
    pub family: Family,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<IpNet>,
}

/// The path attributes of an UPDATE, other than MP_REACH_NLRI and MP_UNREACH_NLRI.
///
/// AS numbers are 4-octet values whatever the session negotiated: AS4_PATH and
/// AS4_AGGREGATOR are merged on decoding and regenerated on encoding (RFC 6793). Routes in a
/// RIB keep their next hop beside the attributes ([`crate::rib::Path`]), so attributes held
/// there have `next_hop` cleared and can be shared between families.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathAttrs {
    /// ORIGIN (well-known mandatory).
    pub origin: Origin,
    /// AS_PATH (well-known mandatory; empty for routes of the local AS).
    pub as_path: AsPath,
    /// NEXT_HOP (well-known mandatory with IPv4 NLRI).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE.
    pub atomic_aggregate: bool,
    /// AGGREGATOR (AS4_AGGREGATOR merged in).
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES, in received order (empty: attribute absent).
    pub communities: Vec<Community>,
    /// Attributes not interpreted here, in type order (as encoded).
    pub unknown: Vec<RawAttribute>,
}

impl PathAttrs {
    /// Whether a community is attached.
    pub fn has_community(&self, c: Community) -> bool {
        self.communities.contains(&c)
    }
}

// ---------------------------------------------------------------------------------------
// Prefixes
// ---------------------------------------------------------------------------------------

/// Decodes one prefix (RFC 4271 §4.3: length in bits, then the minimum number of octets).
/// Bits past the length are ignored.
pub(crate) fn decode_prefix(r: &mut Reader<'_>, family: Family) -> Result<IpNet, &'static str> {
    let len = r.u8("prefix length").map_err(|_| "prefix overruns")?;
    let max = match family {
        Family::Ipv4Unicast => 32,
        Family::Ipv6Unicast => 128,
    };
    if len > max {
        return Err("prefix length too long");
    }
    let n = usize::from(len).div_ceil(8);
    let bytes = r.take(n, "prefix").map_err(|_| "prefix overruns")?;
    let mut a = [0u8; 16];
    if let Some(dst) = a.get_mut(..n) {
        dst.copy_from_slice(bytes);
    }
    // `len` ≤ max was checked above, so both constructors succeed.
    let net = match family {
        Family::Ipv4Unicast => {
            let addr = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            IpNet::V4(Ipv4Net::new(addr, len).map_err(|_| "prefix length too long")?)
        }
        Family::Ipv6Unicast => {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).map_err(|_| "prefix length too long")?)
        }
    };
    Ok(net.trunc())
}

/// Decodes prefixes filling `r`.
pub(crate) fn decode_prefixes(
    r: &mut Reader<'_>,
    family: Family,
) -> Result<Vec<IpNet>, &'static str> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(decode_prefix(r, family)?);
    }
    Ok(out)
}

/// Octets `prefix` takes on the wire.
pub(crate) fn prefix_wire_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

/// Encodes one prefix.
pub(crate) fn encode_prefix(prefix: &IpNet, out: &mut Vec<u8>) {
    let len = prefix.prefix_len();
    let n = usize::from(len).div_ceil(8);
    out.push(len);
    match prefix {
        IpNet::V4(p) => out.extend_from_slice(p.addr().octets().get(..n).unwrap_or_default()),
        IpNet::V6(p) => out.extend_from_slice(p.addr().octets().get(..n).unwrap_or_default()),
    }
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/// What the attribute list of one UPDATE decoded to, before the checks that need the NLRI.
#[derive(Debug, Default)]
pub(crate) struct DecodedAttrs {
    origin: Option<Origin>,
    as_path: Option<AsPath>,
    as4_path: Option<AsPath>,
    next_hop: Option<Ipv4Addr>,
    med: Option<u32>,
    local_pref: Option<u32>,
    atomic_aggregate: bool,
    aggregator: Option<Aggregator>,
    as4_aggregator: Option<Aggregator>,
    communities: Vec<Community>,
    unknown: Vec<RawAttribute>,
    pub(crate) mp_reach: Option<MpReach>,
    pub(crate) mp_unreach: Option<MpUnreach>,
    pub(crate) errors: Vec<AttrError>,
    /// Bitmap of type codes seen.
    seen: [u64; 4],
    four_octet_as: bool,
}

impl DecodedAttrs {
    fn seen(&mut self, t: AttrType) -> bool {
        let (word, bit) = (usize::from(t.0 / 64), t.0 % 64);
        match self.seen.get_mut(word) {
            Some(w) => {
                let was = *w & (1 << bit) != 0;
                *w |= 1 << bit;
                was
            }
            None => false,
        }
    }

    fn error(
        &mut self,
        type_code: AttrType,
        offset: usize,
        action: AttrAction,
        reason: AttrErrorReason,
    ) {
        self.errors.push(AttrError {
            type_code,
            offset,
            action,
            reason,
        });
    }

    /// Applies the checks that need to know whether NLRI are present and builds the
    /// attributes. Returns `None` for the attributes when the well-known mandatory ones are
    /// missing (nothing usable to attach to routes).
    pub(crate) fn finish(mut self, has_ipv4_nlri: bool) -> Finished {
        // RFC 6793 §4.2.3: reconstruct the path from a 2-octet speaker.
        if !self.four_octet_as {
            let agg_is_trans = self.aggregator.map(|a| a.asn == AS_TRANS);
            if agg_is_trans == Some(false) {
                // "If the AGGREGATOR attribute... carries an AS number other than AS_TRANS,
                // then the AS4_AGGREGATOR attribute and the AS4_PATH attribute... MUST be
                // ignored."
                self.as4_aggregator = None;
                self.as4_path = None;
            }
            if let (Some(agg), Some(a4)) = (self.aggregator.as_mut(), self.as4_aggregator) {
                *agg = a4;
            }
            if let Some(p4) = self.as4_path.take() {
                self.as_path = self.as_path.take().map(|p| p.merge_as4(p4));
            }
        }
        let reach = has_ipv4_nlri || self.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
        if reach {
            // RFC 7606 §3 d: a missing well-known mandatory attribute is treat-as-withdraw.
            let mut missing = Vec::new();
            if self.origin.is_none() {
                missing.push(AttrType::ORIGIN);
            }
            if self.as_path.is_none() {
                missing.push(AttrType::AS_PATH);
            }
            if has_ipv4_nlri && self.next_hop.is_none() {
                missing.push(AttrType::NEXT_HOP);
            }
            for t in missing {
                // A malformed one was reported already.
                if !self.errors.iter().any(|e| e.type_code == t) {
                    self.error(t, 0, AttrAction::TreatAsWithdraw, AttrErrorReason::Missing);
                }
            }
        }
        // Canonical order, the one encoding uses (duplicates were already dropped).
        self.unknown.sort_by_key(|a| a.type_code);
        let attrs = match (self.origin, self.as_path) {
            (Some(origin), Some(as_path)) => Some(PathAttrs {
                origin,
                as_path,
                next_hop: self.next_hop,
                med: self.med,
                local_pref: self.local_pref,
                atomic_aggregate: self.atomic_aggregate,
                aggregator: self.aggregator,
                communities: self.communities,
                unknown: self.unknown,
            }),
            _ => None,
        };
        Finished {
            attrs,
            mp_reach: self.mp_reach,
            mp_unreach: self.mp_unreach,
            errors: self.errors,
        }
    }
}

/// The decoded attribute list of one UPDATE.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) attrs: Option<PathAttrs>,
    pub(crate) mp_reach: Option<MpReach>,
    pub(crate) mp_unreach: Option<MpUnreach>,
    pub(crate) errors: Vec<AttrError>,
}

/// The Optional and Transitive bits each known attribute must carry.
const fn expected_flags(t: AttrType) -> Option<u8> {
    Some(match t.0 {
        1 | 2 | 3 | 5 | 6 => flags::WELL_KNOWN,
        4 | 9 | 10 | 14 | 15 => flags::OPTIONAL,
        7 | 8 | 16 | 17 | 18 | 32 => flags::OPT_TRANS,
        _ => return None,
    })
}

/// Whether this crate knows the attribute type (it validates it, even if it keeps the value
/// raw): only unknown ones get the Partial bit when passed on.
pub(crate) const fn is_recognized(t: AttrType) -> bool {
    expected_flags(t).is_some()
}

/// Decodes the Path Attributes field of an UPDATE (`r` spans exactly that field).
pub(crate) fn decode_attributes(
    r: &mut Reader<'_>,
    cxt: &DecodeCxt,
) -> Result<DecodedAttrs, DecodeError> {
    let mut d = DecodedAttrs {
        four_octet_as: cxt.four_octet_as,
        ..DecodedAttrs::default()
    };
    // A copy of the cursor at the attribute's start, to quote the whole attribute in a
    // NOTIFICATION.
    while !r.is_empty() {
        let start = r.clone();
        let offset = r.offset();
        // RFC 7606 §4: too few octets left for an attribute header, or an attribute that
        // overruns the list: treat-as-withdraw, and stop parsing the list.
        let header = (|| {
            let fl = r.u8("attribute flags")?;
            let t = AttrType(r.u8("attribute type")?);
            let len = if fl & flags::EXTENDED_LENGTH != 0 {
                usize::from(r.u16("attribute length")?)
            } else {
                usize::from(r.u8("attribute length")?)
            };
            let value = r.take(len, "attribute value")?;
            Ok::<_, DecodeError>((fl, t, value))
        })();
        let Ok((fl, t, value)) = header else {
            d.error(
                AttrType(0),
                offset,
                AttrAction::TreatAsWithdraw,
                AttrErrorReason::ListLength,
            );
            break;
        };
        let whole = || {
            let mut s = start.clone();
            s.take(start.remaining() - r.remaining(), "attribute")
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        };
        let is_mp = t == AttrType::MP_REACH_NLRI || t == AttrType::MP_UNREACH_NLRI;
        if d.seen(t) {
            if is_mp {
                return Err(DecodeError::new(
                    r.message(),
                    offset,
                    DecodeErrorKind::MalformedAttributeList(
                        "repeated MP_REACH_NLRI or MP_UNREACH_NLRI",
                    ),
                ));
            }
            d.error(
                t,
                offset,
                AttrAction::AttributeDiscard,
                AttrErrorReason::Duplicate,
            );
            continue;
        }
        let Some(expected) = expected_flags(t) else {
            if fl & flags::OPTIONAL == 0 {
                return Err(DecodeError::new(
                    r.message(),
                    offset,
                    DecodeErrorKind::UnrecognizedWellKnownAttribute {
                        type_code: t,
                        attribute: whole(),
                    },
                ));
            }
            d.unknown.push(RawAttribute {
                flags: fl & !flags::EXTENDED_LENGTH,
                type_code: t,
                value: value.to_vec(),
            });
            continue;
        };
        if is_mp {
            let base = offset + (start.remaining() - r.remaining()) - value.len();
            decode_mp(&mut d, t, value, base, r.message(), whole)?;
            continue;
        }
        let as4_attr = t == AttrType::AS4_PATH || t == AttrType::AS4_AGGREGATOR;
        // AS4_* are attribute-discard whatever is wrong with them (RFC 6793 §6); everything
        // else here is treat-as-withdraw on a flags error (RFC 7606 §3 c).
        let flags_action = if as4_attr {
            AttrAction::AttributeDiscard
        } else {
            AttrAction::TreatAsWithdraw
        };
        if fl & flags::OPT_TRANS != expected {
            d.error(t, offset, flags_action, AttrErrorReason::Flags(fl));
            continue;
        }
        decode_known(&mut d, t, value, offset, cxt);
    }
    Ok(d)
}

fn u32_of(v: &[u8]) -> Option<u32> {
    let a: [u8; 4] = v.try_into().ok()?;
    Some(u32::from_be_bytes(a))
}

fn decode_known(d: &mut DecodedAttrs, t: AttrType, v: &[u8], offset: usize, cxt: &DecodeCxt) {
    use AttrAction::{AttributeDiscard as Discard, TreatAsWithdraw as Withdraw};
    let len_err = |d: &mut DecodedAttrs, action| {
        d.error(t, offset, action, AttrErrorReason::Length(v.len()));
    };
    match t {
        AttrType::ORIGIN => match v {
            [o] => match Origin::from_u8(*o) {
                Some(o) => d.origin = Some(o),
                None => d.error(t, offset, Withdraw, AttrErrorReason::InvalidValue),
            },
            _ => len_err(d, Withdraw),
        },
        AttrType::AS_PATH => match AsPath::decode(v, cxt.four_octet_as) {
            Ok(p) => d.as_path = Some(p),
            Err(why) => d.error(t, offset, Withdraw, AttrErrorReason::MalformedAsPath(why)),
        },
        AttrType::NEXT_HOP => match u32_of(v) {
            Some(a) => d.next_hop = Some(Ipv4Addr::from(a)),
            None => len_err(d, Withdraw),
        },
        AttrType::MULTI_EXIT_DISC => match u32_of(v) {
            Some(m) => d.med = Some(m),
            None => len_err(d, Withdraw),
        },
        AttrType::LOCAL_PREF => match u32_of(v) {
            Some(l) => d.local_pref = Some(l),
            None => len_err(d, Withdraw),
        },
        AttrType::ATOMIC_AGGREGATE => {
            if v.is_empty() {
                d.atomic_aggregate = true;
            } else {
                len_err(d, Discard);
            }
        }
        AttrType::AGGREGATOR => {
            let agg = match (cxt.four_octet_as, v) {
                (true, [a, b, c, e, w, x, y, z]) => Some(Aggregator {
                    asn: u32::from_be_bytes([*a, *b, *c, *e]),
                    address: Ipv4Addr::new(*w, *x, *y, *z),
                }),
                (false, [a, b, w, x, y, z]) => Some(Aggregator {
                    asn: u32::from(u16::from_be_bytes([*a, *b])),
                    address: Ipv4Addr::new(*w, *x, *y, *z),
                }),
                _ => None,
            };
            match agg {
                Some(a) => d.aggregator = Some(a),
                None => len_err(d, Discard),
            }
        }
        AttrType::COMMUNITIES => {
            if v.is_empty() || v.len() % 4 != 0 {
                len_err(d, Withdraw);
            } else {
                d.communities = v
                    .chunks_exact(4)
                    .filter_map(u32_of)
                    .map(Community)
                    .collect();
            }
        }
        AttrType::AS4_PATH => {
            if cxt.four_octet_as {
                d.error(t, offset, Discard, AttrErrorReason::NotAllowed);
                return;
            }
            match AsPath::decode(v, true) {
                Ok(mut p) => {
                    // RFC 6793 §6: confederation segments in AS4_PATH are discarded.
                    p.segments.retain(|s| !s.kind.is_confed());
                    d.as4_path = Some(p);
                }
                Err(why) => d.error(t, offset, Discard, AttrErrorReason::MalformedAsPath(why)),
            }
        }
        AttrType::AS4_AGGREGATOR => {
            if cxt.four_octet_as {
                d.error(t, offset, Discard, AttrErrorReason::NotAllowed);
                return;
            }
            match v {
                [a, b, c, e, w, x, y, z] => {
                    d.as4_aggregator = Some(Aggregator {
                        asn: u32::from_be_bytes([*a, *b, *c, *e]),
                        address: Ipv4Addr::new(*w, *x, *y, *z),
                    });
                }
                _ => len_err(d, Discard),
            }
        }
        _ => {
            // Known length rules for attributes kept raw.
            let ok = match t {
                AttrType::ORIGINATOR_ID => v.len() == 4,
                AttrType::CLUSTER_LIST => !v.is_empty() && v.len() % 4 == 0,
                AttrType::EXTENDED_COMMUNITIES => v.len() % 8 == 0,
                AttrType::LARGE_COMMUNITY => !v.is_empty() && v.len() % 12 == 0,
                _ => true,
            };
            if ok {
                d.unknown.push(RawAttribute {
                    flags: expected_flags(t).unwrap_or(flags::OPTIONAL),
                    type_code: t,
                    value: v.to_vec(),
                });
            } else {
                len_err(d, Withdraw);
            }
        }
    }
}

fn decode_mp(
    d: &mut DecodedAttrs,
    t: AttrType,
    v: &[u8],
    base: usize,
    message: super::iana::MessageType,
    whole: impl Fn() -> Vec<u8>,
) -> Result<(), DecodeError> {
    let fail = |reason: &'static str| {
        DecodeError::new(
            message,
            base,
            DecodeErrorKind::MalformedMpAttribute {
                type_code: t,
                reason,
                attribute: whole(),
            },
        )
    };
    let mut r = Reader::new(v, base, message);
    let afi = super::iana::Afi(r.u16("AFI").map_err(|_| fail("truncated"))?);
    let safi = super::iana::Safi(r.u8("SAFI").map_err(|_| fail("truncated"))?);
    let family = Family::from_afi_safi(afi, safi);
    if t == AttrType::MP_UNREACH_NLRI {
        let Some(family) = family else {
            d.error(
                t,
                base,
                AttrAction::AttributeDiscard,
                AttrErrorReason::UnsupportedFamily,
            );
            return Ok(());
        };
        let withdrawn = decode_prefixes(&mut r, family).map_err(fail)?;
        d.mp_unreach = Some(MpUnreach { family, withdrawn });
        return Ok(());
    }
    let nh_len = r.u8("next hop length").map_err(|_| fail("truncated"))?;
    let nh = r
        .take(usize::from(nh_len), "next hop")
        .map_err(|_| fail("next hop overruns"))?;
    let _reserved = r.u8("reserved").map_err(|_| fail("truncated"))?;
    let Some(family) = family else {
        d.error(
            t,
            base,
            AttrAction::AttributeDiscard,
            AttrErrorReason::UnsupportedFamily,
        );
        return Ok(());
    };
    let next_hop = match (family, nh) {
        (Family::Ipv4Unicast, &[a, b, c, e]) => NextHop::new(Ipv4Addr::new(a, b, c, e).into()),
        (Family::Ipv6Unicast, nh) if nh.len() == 16 || nh.len() == 32 => {
            let (g, ll) = nh.split_at(16);
            let g: [u8; 16] = g.try_into().map_err(|_| fail("bad next hop length"))?;
            let link_local = <[u8; 16]>::try_from(ll).ok().map(Ipv6Addr::from);
            NextHop {
                addr: Ipv6Addr::from(g).into(),
                link_local,
            }
        }
        _ => return Err(fail("next hop length inconsistent with the address family")),
    };
    let nlri = decode_prefixes(&mut r, family).map_err(fail)?;
    d.mp_reach = Some(MpReach {
        family,
        next_hop,
        nlri,
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Writes one attribute: header, then the value `f` appends; picks the 1- or 2-octet length
/// form from the value's size.
pub(crate) fn put_attr(out: &mut Vec<u8>, fl: u8, t: AttrType, f: impl FnOnce(&mut Vec<u8>)) {
    put_attr_with(out, fl, t, false, f);
}

/// Like [`put_attr`], always with a 2-octet length. Used for MP_REACH_NLRI, as BIRD and FRR
/// do, so the packer can fill it without moving bytes.
pub(crate) fn put_attr_ext(out: &mut Vec<u8>, fl: u8, t: AttrType, f: impl FnOnce(&mut Vec<u8>)) {
    put_attr_with(out, fl, t, true, f);
}

fn put_attr_with(
    out: &mut Vec<u8>,
    fl: u8,
    t: AttrType,
    always_ext: bool,
    f: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.extend_from_slice(&[fl | flags::EXTENDED_LENGTH, t.0, 0, 0]);
    f(out);
    let len = out.len() - start - 4;
    if len <= 255 && !always_ext {
        if let Some([f, _, l]) = out.get_mut(start..start + 3) {
            *f = fl & !flags::EXTENDED_LENGTH;
            // `len` ≤ 255 here.
            *l = len as u8;
        }
        out.remove(start + 3);
    } else if let Some(h) = out.get_mut(start + 2..start + 4) {
        // Attributes live inside a 4096-octet message, so `len` fits in u16.
        h.copy_from_slice(&(len.min(0xffff) as u16).to_be_bytes());
    }
}

/// Encodes every attribute but MP_REACH_NLRI / MP_UNREACH_NLRI, with `next_hop` as the
/// NEXT_HOP attribute (absent when `None`, whatever `attrs.next_hop` says).
pub(crate) fn encode_attrs(
    attrs: &PathAttrs,
    next_hop: Option<Ipv4Addr>,
    cxt: &EncodeCxt,
    out: &mut Vec<u8>,
) {
    let mut unknown: Vec<&RawAttribute> = attrs.unknown.iter().collect();
    unknown.sort_by_key(|a| a.type_code);
    let mut unknown = unknown.into_iter().peekable();
    // Known attributes go out in ascending type order, unknown ones merged in by type
    // (RFC 4271 §5: "SHOULD order path attributes ... in ascending order of attribute type").
    let mut flush_below = |out: &mut Vec<u8>, t: u8| {
        while let Some(a) = unknown.next_if(|a| a.type_code.0 < t) {
            put_attr(out, a.flags, a.type_code, |o| o.extend_from_slice(&a.value));
        }
    };
    flush_below(out, 1);
    put_attr(out, flags::WELL_KNOWN, AttrType::ORIGIN, |o| {
        o.push(attrs.origin as u8)
    });
    flush_below(out, 2);
    put_attr(out, flags::WELL_KNOWN, AttrType::AS_PATH, |o| {
        attrs.as_path.encode(cxt.four_octet_as, false, o);
    });
    flush_below(out, 3);
    if let Some(nh) = next_hop {
        put_attr(out, flags::WELL_KNOWN, AttrType::NEXT_HOP, |o| {
            o.extend_from_slice(&nh.octets());
        });
    }
    flush_below(out, 4);
    if let Some(med) = attrs.med {
        put_attr(out, flags::OPTIONAL, AttrType::MULTI_EXIT_DISC, |o| {
            o.extend_from_slice(&med.to_be_bytes());
        });
    }
    flush_below(out, 5);
    if let Some(lp) = attrs.local_pref {
        put_attr(out, flags::WELL_KNOWN, AttrType::LOCAL_PREF, |o| {
            o.extend_from_slice(&lp.to_be_bytes());
        });
    }
    flush_below(out, 6);
    if attrs.atomic_aggregate {
        put_attr(out, flags::WELL_KNOWN, AttrType::ATOMIC_AGGREGATE, |_| {});
    }
    flush_below(out, 7);
    if let Some(agg) = attrs.aggregator {
        put_attr(out, flags::OPT_TRANS, AttrType::AGGREGATOR, |o| {
            if cxt.four_octet_as {
                o.extend_from_slice(&agg.asn.to_be_bytes());
            } else {
                let a = u16::try_from(agg.asn).unwrap_or(AS_TRANS as u16);
                o.extend_from_slice(&a.to_be_bytes());
            }
            o.extend_from_slice(&agg.address.octets());
        });
    }
    flush_below(out, 8);
    if !attrs.communities.is_empty() {
        put_attr(out, flags::OPT_TRANS, AttrType::COMMUNITIES, |o| {
            for c in &attrs.communities {
                o.extend_from_slice(&c.0.to_be_bytes());
            }
        });
    }
    if !cxt.four_octet_as {
        // RFC 6793 §4.2.2: a NEW speaker talking to an OLD one sends the real path and
        // aggregator in AS4_PATH / AS4_AGGREGATOR when they hold 4-octet numbers.
        flush_below(out, 17);
        if attrs.as_path.has_4_octet() {
            put_attr(out, flags::OPT_TRANS, AttrType::AS4_PATH, |o| {
                attrs.as_path.encode(true, true, o);
            });
        }
        flush_below(out, 18);
        if let Some(agg) = attrs.aggregator.filter(|a| a.asn > 0xffff) {
            put_attr(out, flags::OPT_TRANS, AttrType::AS4_AGGREGATOR, |o| {
                o.extend_from_slice(&agg.asn.to_be_bytes());
                o.extend_from_slice(&agg.address.octets());
            });
        }
    }
    flush_below(out, 255);
    for a in unknown {
        put_attr(out, a.flags, a.type_code, |o| o.extend_from_slice(&a.value));
    }
}

/// Writes the MP_REACH_NLRI header fields (AFI, SAFI, next hop, reserved) into `o`.
pub(crate) fn encode_mp_reach_head(family: Family, nh: &NextHop, o: &mut Vec<u8>) {
    o.extend_from_slice(&family.afi().0.to_be_bytes());
    o.push(family.safi().0);
    match (nh.addr, nh.link_local) {
        (IpAddr::V4(a), _) => {
            o.push(4);
            o.extend_from_slice(&a.octets());
        }
        (IpAddr::V6(a), None) => {
            o.push(16);
            o.extend_from_slice(&a.octets());
        }
        (IpAddr::V6(a), Some(ll)) => {
            o.push(32);
            o.extend_from_slice(&a.octets());
            o.extend_from_slice(&ll.octets());
        }
    }
    o.push(0);
}

/// Octets of the MP_REACH_NLRI header fields for `nh`.
pub(crate) const fn mp_reach_head_len(nh: &NextHop) -> usize {
    5 + match (nh.addr, nh.link_local) {
        (IpAddr::V4(_), _) => 4,
        (IpAddr::V6(_), None) => 16,
        (IpAddr::V6(_), Some(_)) => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_path_lengths_and_first_as() {
        let p = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![64512],
                },
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![1, 2, 3],
                },
                AsSegment {
                    kind: SegmentType::Set,
                    asns: vec![4, 5],
                },
            ],
        };
        assert_eq!(p.path_len(), 4);
        assert_eq!(p.first_as(), None);
        assert!(p.contains(5));
        assert_eq!(AsPath::sequence([7, 8]).first_as(), Some(7));
        assert_eq!(p.to_string(), "(64512) 1 2 3 {4 5}");
    }

    #[test]
    fn prepend_joins_the_leading_sequence() {
        let p = AsPath::sequence([65001]).prepended(65000, 3);
        assert_eq!(p, AsPath::sequence([65000, 65000, 65000, 65001]));
        let set = AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Set,
                asns: vec![1],
            }],
        };
        assert_eq!(set.prepended(9, 1).segments.len(), 2);
        assert_eq!(AsPath::default().prepended(9, 0), AsPath::default());
    }

    #[test]
    fn as4_merge_rfc6793() {
        // AS_PATH from an OLD speaker: 100 200 AS_TRANS AS_TRANS; AS4_PATH: 70000 80000.
        let p = AsPath::sequence([100, 200, 23456, 23456]);
        let p4 = AsPath::sequence([70000, 80000]);
        assert_eq!(p.merge_as4(p4), AsPath::sequence([100, 200, 70000, 80000]));
        // Leading confederation segments survive even when AS_PATH has nothing extra.
        let p = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![64512],
                },
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![23456],
                },
            ],
        };
        let merged = p.merge_as4(AsPath::sequence([70000]));
        assert_eq!(merged.to_string(), "(64512) 70000");
        // AS4_PATH longer than AS_PATH: ignored.
        let p = AsPath::sequence([23456]);
        let p4 = AsPath::sequence([70000, 80000]);
        assert_eq!(p.clone().merge_as4(p4), p);
    }

    #[test]
    fn as_path_decode_errors() {
        assert_eq!(AsPath::decode(&[2, 0], false), Err("empty segment"));
        assert_eq!(
            AsPath::decode(&[5, 1, 0, 1], false),
            Err("undefined segment type")
        );
        assert_eq!(
            AsPath::decode(&[2, 2, 0, 1], false),
            Err("segment overruns the attribute")
        );
        assert_eq!(
            AsPath::decode(&[2, 1, 0, 1, 2], false),
            Err("segment header overruns the attribute")
        );
        assert_eq!(AsPath::decode(&[], true), Ok(AsPath::default()));
    }

    #[test]
    fn put_attr_picks_length_form() {
        let mut v = Vec::new();
        put_attr(&mut v, flags::OPT_TRANS, AttrType(99), |o| {
            o.extend_from_slice(&[1, 2])
        });
        assert_eq!(v, [0xc0, 99, 2, 1, 2]);
        let mut v = Vec::new();
        put_attr(&mut v, flags::OPT_TRANS, AttrType(99), |o| {
            o.extend_from_slice(&[7; 300])
        });
        assert_eq!(v[..4], [0xd0, 99, 1, 44]);
        assert_eq!(v.len(), 304);
    }

    #[test]
    fn prefixes_round_trip() {
        for p in ["0.0.0.0/0", "10.0.0.0/8", "192.168.1.128/25", "1.2.3.4/32"] {
            let net: IpNet = p.parse().unwrap();
            let mut v = Vec::new();
            encode_prefix(&net, &mut v);
            assert_eq!(v.len(), prefix_wire_len(&net));
            let mut r = Reader::new(&v, 0, super::super::iana::MessageType::UPDATE);
            assert_eq!(decode_prefix(&mut r, Family::Ipv4Unicast).unwrap(), net);
        }
        // Host bits past the length are ignored.
        let mut r = Reader::new(&[24, 10, 1, 2], 0, super::super::iana::MessageType::UPDATE);
        assert_eq!(
            decode_prefix(&mut r, Family::Ipv4Unicast).unwrap(),
            "10.1.2.0/24".parse::<IpNet>().unwrap()
        );
        let mut r = Reader::new(
            &[33, 10, 1, 2, 3, 4],
            0,
            super::super::iana::MessageType::UPDATE,
        );
        assert!(decode_prefix(&mut r, Family::Ipv4Unicast).is_err());
    }
}
