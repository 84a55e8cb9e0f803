//! What the engine does to inside packets before sealing them: TCP MSS clamping on SYNs, so
//! TCP never sends segments the tunnel would have to fragment, even where ICMP is filtered.
//!
//! A packet too big for the tunnel never reaches the engine: the kernel forwards into the TUN
//! device only what fits its MTU (`[gateway] mtu`, set so that ESP in UDP fits the line) and
//! answers a larger packet with DF set with ICMP "fragmentation needed" (ICMPv6 "packet too
//! big") itself; the lab's tests check it through the tunnel.
//!
//! Pure functions over packet bytes: no allocation, no panics on any input (every index is
//! checked), the TCP checksum updated incrementally (RFC 1624).

const PROTO_TCP: u8 = 6;
const TCP_SYN: u8 = 0x02;
const TCP_OPT_END: u8 = 0;
const TCP_OPT_NOP: u8 = 1;
const TCP_OPT_MSS: u8 = 2;

/// The largest TCP payload of one segment in a packet of `mtu` bytes.
pub(crate) fn mss_for(mtu: u16, ipv6: bool) -> u16 {
    let headers = if ipv6 { 40 + 20 } else { 20 + 20 };
    mtu.saturating_sub(headers)
}

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in `pkt`, an IPv4 or IPv6 packet, to at
/// most the MSS that fits `mtu`, fixing the TCP checksum. Returns whether it changed
/// anything. Fragments, other protocols and IPv6 packets with extension headers are left
/// alone.
pub(crate) fn clamp_mss(pkt: &mut [u8], mtu: u16) -> bool {
    let Some((tcp, ipv6)) = tcp_offset(pkt) else {
        return false;
    };
    let limit = mss_for(mtu, ipv6);
    let Some(flags) = pkt.get(tcp + 13) else {
        return false;
    };
    if flags & TCP_SYN == 0 {
        return false;
    }
    let Some(&off) = pkt.get(tcp + 12) else {
        return false;
    };
    let header = usize::from(off >> 4) * 4;
    if header < 20 || tcp + header > pkt.len() {
        return false;
    }
    let mut i = tcp + 20;
    let end = tcp + header;
    while i < end {
        match pkt[i] {
            TCP_OPT_END => return false,
            TCP_OPT_NOP => i += 1,
            kind => {
                let Some(&len) = pkt.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || i + len > end {
                    return false;
                }
                if kind == TCP_OPT_MSS && len == 4 {
                    let old = u16::from_be_bytes([pkt[i + 2], pkt[i + 3]]);
                    if old <= limit {
                        return false;
                    }
                    pkt[i + 2..i + 4].copy_from_slice(&limit.to_be_bytes());
                    let sum = u16::from_be_bytes([pkt[tcp + 16], pkt[tcp + 17]]);
                    let sum = checksum_update(sum, old, limit);
                    pkt[tcp + 16..tcp + 18].copy_from_slice(&sum.to_be_bytes());
                    return true;
                }
                i += len;
            }
        }
    }
    false
}

/// Where the TCP header starts, and whether the packet is IPv6; `None` unless `pkt` is an
/// unfragmented TCP packet (a first fragment's options could be clamped, but a SYN is never
/// fragmented in practice, and a later fragment has no TCP header at all).
fn tcp_offset(pkt: &[u8]) -> Option<(usize, bool)> {
    match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*pkt.get(6)?, *pkt.get(7)?]);
            // More-fragments flag or a non-zero offset.
            let fragmented = frag & 0x3fff != 0;
            (ihl >= 20 && *pkt.get(9)? == PROTO_TCP && !fragmented).then_some((ihl, false))
        }
        6 => (*pkt.get(6)? == PROTO_TCP).then_some((40, true)),
        _ => None,
    }
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word changed from `old` to `new`.
fn checksum_update(sum: u16, old: u16, new: u16) -> u16 {
    let mut acc = u32::from(!sum) + u32::from(!old) + u32::from(new);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::checksum::{checksum, sum_words};

    /// TCP checksum over the IPv4 pseudo-header: 0 when the segment is intact.
    fn tcp4_check(pkt: &[u8]) -> u16 {
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let seg = &pkt[ihl..];
        let mut pseudo = pkt[12..20].to_vec();
        pseudo.extend_from_slice(&[0, PROTO_TCP]);
        pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        checksum(sum_words(0, &pseudo), seg)
    }

    /// An IPv4 TCP SYN with options NOP, NOP, MSS `mss`, and a correct checksum.
    fn syn4(mss: u16, flags: u8) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 48, 0, 1, 0x40, 0, 64, PROTO_TCP, 0, 0, 192, 168, 10, 10, 172, 16, 2, 10,
        ];
        let mut tcp = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, flags, 0xff, 0xff,
        ];
        tcp.extend_from_slice(&[0, 0, 0, 0, TCP_OPT_NOP, TCP_OPT_NOP, TCP_OPT_MSS, 4]);
        tcp.extend_from_slice(&mss.to_be_bytes());
        tcp.extend_from_slice(&[TCP_OPT_NOP, TCP_OPT_END]);
        p.extend_from_slice(&tcp);
        let s = tcp4_check(&p);
        p[20 + 16..20 + 18].copy_from_slice(&s.to_be_bytes());
        assert_eq!(tcp4_check(&p), 0);
        p
    }

    #[test]
    fn a_syn_above_the_tunnel_mss_is_clamped_with_a_valid_checksum() {
        let mut p = syn4(1460, TCP_SYN);
        assert!(clamp_mss(&mut p, 1400));
        assert_eq!(u16::from_be_bytes([p[44], p[45]]), 1360);
        assert_eq!(tcp4_check(&p), 0, "checksum still valid");
        // Already small enough: untouched.
        let mut q = syn4(1200, TCP_SYN | 0x10);
        let before = q.clone();
        assert!(!clamp_mss(&mut q, 1400));
        assert_eq!(q, before);
    }

    #[test]
    fn only_syns_are_clamped() {
        let mut p = syn4(1460, 0x10);
        assert!(!clamp_mss(&mut p, 1400));
    }

    #[test]
    fn ipv6_mss_leaves_room_for_the_larger_header() {
        assert_eq!(mss_for(1400, true), 1340);
        assert_eq!(mss_for(1400, false), 1360);
        assert_eq!(mss_for(30, false), 0);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(mut pkt in proptest::collection::vec(any::<u8>(), 0..200), mtu in 0u16..2000) {
            let _ = clamp_mss(&mut pkt, mtu);
        }
    }
}
