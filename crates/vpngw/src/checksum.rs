//! The Internet checksum (RFC 1071), for the packets vpngw builds or checks itself: the lab's
//! ICMP probes, the engine's health probes, and tests of what the engine rewrites.

/// Adds `data`, as big-endian 16-bit words (an odd last byte padded with zero), to `acc`.
pub(crate) fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
    }
    acc
}

/// The checksum of `data` after the partial sum `acc` (0, or a pseudo-header's
/// [`sum_words`]): 0 when `data` already carries a correct checksum.
pub(crate) fn checksum(acc: u32, data: &[u8]) -> u16 {
    let mut acc = sum_words(acc, data);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is 220d.
        assert_eq!(
            checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }
}
