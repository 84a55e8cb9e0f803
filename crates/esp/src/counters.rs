//! Plain counters for export (the daemon turns them into Prometheus counters).

use crate::error::DropReason;

/// Inbound packets dropped, one counter per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// [`DropReason::Short`].
    pub short: u64,
    /// [`DropReason::Malformed`].
    pub malformed: u64,
    /// [`DropReason::UnknownSpi`].
    pub unknown_spi: u64,
    /// [`DropReason::AuthFailed`].
    pub auth_failed: u64,
    /// [`DropReason::Replayed`].
    pub replayed: u64,
    /// [`DropReason::BadPadding`].
    pub bad_padding: u64,
    /// [`DropReason::BadNextHeader`].
    pub bad_next_header: u64,
    /// [`DropReason::BadInnerPacket`].
    pub bad_inner_packet: u64,
    /// [`DropReason::Expired`].
    pub expired: u64,
}

impl DropCounters {
    fn slot(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::Short => &mut self.short,
            DropReason::Malformed => &mut self.malformed,
            DropReason::UnknownSpi => &mut self.unknown_spi,
            DropReason::AuthFailed => &mut self.auth_failed,
            DropReason::Replayed => &mut self.replayed,
            DropReason::BadPadding => &mut self.bad_padding,
            DropReason::BadNextHeader => &mut self.bad_next_header,
            DropReason::BadInnerPacket => &mut self.bad_inner_packet,
            DropReason::Expired => &mut self.expired,
        }
    }

    /// Counts one drop.
    pub fn bump(&mut self, reason: DropReason) {
        let c = self.slot(reason);
        *c = c.wrapping_add(1);
    }

    /// The counter for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        let mut copy = *self;
        *copy.slot(reason)
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        DropReason::ALL
            .iter()
            .fold(0u64, |acc, r| acc.wrapping_add(self.get(*r)))
    }

    /// `(label, value)` pairs for export, labels from [`DropReason::as_str`].
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().map(|r| (r, self.get(r)))
    }
}

/// Inbound datagrams accepted, by what they turned out to be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCounters {
    /// Inner IPv4 packets delivered.
    pub ipv4: u64,
    /// Inner IPv6 packets delivered.
    pub ipv6: u64,
    /// Bytes of inner IP packets delivered.
    pub inner_bytes: u64,
    /// Authenticated dummy packets (Next Header 59) discarded.
    pub dummy: u64,
    /// IKE messages (after a non-ESP marker) passed up.
    pub ike: u64,
    /// NAT-keepalives ignored.
    pub nat_keepalive: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_get_total() {
        let mut c = DropCounters::default();
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                c.bump(r);
            }
        }
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(c.get(r), i as u64 + 1);
        }
        assert_eq!(c.total(), 45);
        assert_eq!(c.iter().count(), 9);
        assert_eq!(c.replayed, 5);
    }
}
