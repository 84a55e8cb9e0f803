//! The two facts about an inner IP packet that tunnel-mode ESP needs: its version and its
//! length. Used after decryption to strip Traffic Flow Confidentiality padding
//! ([RFC 4303] §2.7) and to refuse inner packets whose header lies about their length.
//!
//! [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.7

/// Internet Protocol number of IPv4-in-ESP (tunnel mode), [RFC 4303] §2.6.
///
/// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.6
pub(crate) const NEXT_HEADER_IPV4: u8 = 4;
/// Internet Protocol number of IPv6-in-ESP (tunnel mode).
pub(crate) const NEXT_HEADER_IPV6: u8 = 41;
/// "No Next Header": a dummy packet that the receiver discards ([RFC 4303] §2.6).
///
/// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.6
pub(crate) const NEXT_HEADER_NONE: u8 = 59;

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

/// The IP version of an inner packet, from its first nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    pub(crate) fn of(packet: &[u8]) -> Option<Self> {
        match packet.first()? >> 4 {
            4 => Some(Self::V4),
            6 => Some(Self::V6),
            _ => None,
        }
    }

    pub(crate) const fn next_header(self) -> u8 {
        match self {
            Self::V4 => NEXT_HEADER_IPV4,
            Self::V6 => NEXT_HEADER_IPV6,
        }
    }
}

/// The length an inner packet's own header claims, if the header is well-formed enough to
/// say: IPv4 Total Length (with IHL >= 5 and Total Length >= header length), IPv6 40 +
/// Payload Length. `None` for truncated headers. (An IPv6 jumbogram, RFC 2675, has
/// Payload Length 0 and cannot fit an ESP packet anyway; it comes out as its 40-byte
/// header, which the stack behind the tunnel interface drops.)
pub(crate) fn claimed_len(version: IpVersion, packet: &[u8]) -> Option<usize> {
    match version {
        IpVersion::V4 => {
            let header: &[u8; IPV4_MIN_HEADER] = packet.get(..IPV4_MIN_HEADER)?.try_into().ok()?;
            let ihl = usize::from(header[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
            (ihl >= IPV4_MIN_HEADER && total >= ihl).then_some(total)
        }
        IpVersion::V6 => {
            let header: &[u8; IPV6_HEADER] = packet.get(..IPV6_HEADER)?.try_into().ok()?;
            Some(IPV6_HEADER + usize::from(u16::from_be_bytes([header[4], header[5]])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let mut v4 = [0u8; 28];
        v4[0] = 0x45;
        v4[3] = 28;
        assert_eq!(IpVersion::of(&v4), Some(IpVersion::V4));
        assert_eq!(claimed_len(IpVersion::V4, &v4), Some(28));
        v4[0] = 0x44; // IHL 4 < 5
        assert_eq!(claimed_len(IpVersion::V4, &v4), None);
        v4[0] = 0x46;
        v4[3] = 20; // total < IHL*4
        assert_eq!(claimed_len(IpVersion::V4, &v4), None);
        assert_eq!(claimed_len(IpVersion::V4, &v4[..19]), None);

        let mut v6 = [0u8; 48];
        v6[0] = 0x60;
        v6[5] = 8;
        assert_eq!(IpVersion::of(&v6), Some(IpVersion::V6));
        assert_eq!(claimed_len(IpVersion::V6, &v6), Some(48));
        v6[5] = 0;
        assert_eq!(claimed_len(IpVersion::V6, &v6), Some(40));
        assert_eq!(claimed_len(IpVersion::V6, &v6[..39]), None);
        assert_eq!(IpVersion::of(&[0x50]), None);
        assert_eq!(IpVersion::of(&[]), None);
    }
}
