//! A connection's health check: an ICMP echo from `source` to `destination` through the
//! tunnel every `interval`; `retries` unanswered in a row and the path inside the tunnel is
//! declared broken, one answer and it has recovered.
//!
//! The engine builds the probe here, seals it straight into the connection's child SA and
//! hands every decrypted packet to [`HealthCheck::take_reply`] before the TUN device sees it,
//! so the probe tests exactly the path inside the tunnel, whatever the host's routes say (its
//! routes are what a failed check may revoke). No sockets, no clock: times come in as
//! arguments.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::{
    checksum::{checksum, sum_words},
    config,
};

/// What a probe tick or a reply changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// `retries` probes in a row went unanswered.
    Failed,
    /// A probe was answered after a failure.
    Recovered,
}

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;
const PAYLOAD: &[u8; 16] = b"vpngw-health-chk";

/// One connection's check.
#[derive(Debug)]
pub(crate) struct HealthCheck {
    source: IpAddr,
    destination: IpAddr,
    interval: Duration,
    retries: u32,
    /// The ICMP identifier of this check's probes.
    ident: u16,
    seq: u16,
    /// The probe in flight, unanswered so far.
    outstanding: bool,
    misses: u32,
    healthy: bool,
    next: Instant,
}

impl HealthCheck {
    pub(crate) fn new(cfg: &config::HealthCheck, ident: u16, now: Instant) -> Self {
        Self {
            source: cfg.source,
            destination: cfg.destination,
            interval: cfg.interval,
            retries: cfg.retries,
            ident,
            seq: 0,
            outstanding: false,
            misses: 0,
            healthy: true,
            next: now,
        }
    }

    /// When [`HealthCheck::on_timer`] wants to run next.
    pub(crate) fn deadline(&self) -> Instant {
        self.next
    }

    #[cfg(test)]
    fn healthy(&self) -> bool {
        self.healthy
    }

    /// Starts over, healthy, probing at once (the tunnel has just come up).
    pub(crate) fn reset(&mut self, now: Instant) {
        self.outstanding = false;
        self.misses = 0;
        self.healthy = true;
        self.next = now;
    }

    /// Time for the next probe: the previous one, still unanswered, counts as lost. Returns
    /// the probe packet (an IP packet to seal) and the transition, if any.
    pub(crate) fn on_timer(&mut self, now: Instant) -> (Vec<u8>, Option<Transition>) {
        let mut change = None;
        if self.outstanding {
            self.misses += 1;
            if self.healthy && self.misses >= self.retries {
                self.healthy = false;
                change = Some(Transition::Failed);
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.outstanding = true;
        self.next = now + self.interval;
        (self.probe(), change)
    }

    /// Whether `pkt` (decrypted, inner) is the answer to this check's probe; it is then
    /// consumed here and never reaches the TUN device.
    pub(crate) fn take_reply(&mut self, pkt: &[u8]) -> Option<Option<Transition>> {
        let (src, dst, icmp) = split(pkt)?;
        let reply = if self.source.is_ipv4() {
            ICMP_ECHO_REPLY
        } else {
            ICMPV6_ECHO_REPLY
        };
        let ours = src == self.destination
            && dst == self.source
            && icmp.first() == Some(&reply)
            && icmp.get(4..6) == Some(&self.ident.to_be_bytes()[..]);
        if !ours {
            return None;
        }
        // Any of our sequence numbers proves the path; only the current one clears the miss.
        if icmp.get(6..8) == Some(&self.seq.to_be_bytes()[..]) {
            self.outstanding = false;
        }
        self.misses = 0;
        if self.healthy {
            Some(None)
        } else {
            self.healthy = true;
            Some(Some(Transition::Recovered))
        }
    }

    /// The echo request, a whole IP packet.
    fn probe(&self) -> Vec<u8> {
        let mut icmp = Vec::with_capacity(8 + PAYLOAD.len());
        let kind = if self.source.is_ipv4() {
            ICMP_ECHO_REQUEST
        } else {
            ICMPV6_ECHO_REQUEST
        };
        icmp.extend_from_slice(&[kind, 0, 0, 0]);
        icmp.extend_from_slice(&self.ident.to_be_bytes());
        icmp.extend_from_slice(&self.seq.to_be_bytes());
        icmp.extend_from_slice(PAYLOAD);
        match (self.source, self.destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let sum = checksum(0, &icmp);
                icmp[2..4].copy_from_slice(&sum.to_be_bytes());
                let total = (20 + icmp.len()) as u16;
                let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, PROTO_ICMP, 0, 0];
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                let hsum = checksum(0, &ip);
                ip[10..12].copy_from_slice(&hsum.to_be_bytes());
                ip.extend_from_slice(&icmp);
                ip
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let len = icmp.len() as u32;
                // RFC 4443 §2.3: the checksum covers the IPv6 pseudo-header.
                let mut pseudo = Vec::with_capacity(40);
                pseudo.extend_from_slice(&s.octets());
                pseudo.extend_from_slice(&d.octets());
                pseudo.extend_from_slice(&len.to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, PROTO_ICMPV6]);
                let sum = checksum(sum_words(0, &pseudo), &icmp);
                icmp[2..4].copy_from_slice(&sum.to_be_bytes());
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend_from_slice(&(len as u16).to_be_bytes());
                ip.extend_from_slice(&[PROTO_ICMPV6, 64]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                ip.extend_from_slice(&icmp);
                ip
            }
            // The configuration refuses mixed families.
            _ => Vec::new(),
        }
    }
}

/// Whether `pkt` is an ICMP or ICMPv6 echo reply at all: the one cheap test every decrypted
/// packet goes through before any check looks at it.
pub(crate) fn is_echo_reply(pkt: &[u8]) -> bool {
    split(pkt).is_some_and(|(src, _, icmp)| {
        let reply = if src.is_ipv4() {
            ICMP_ECHO_REPLY
        } else {
            ICMPV6_ECHO_REPLY
        };
        icmp.first() == Some(&reply)
    })
}

/// (source, destination, ICMP message) of an ICMP or ICMPv6 packet without extension headers.
fn split(pkt: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            if *pkt.get(9)? != PROTO_ICMP || ihl < 20 {
                return None;
            }
            let s: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some((s.into(), d.into(), pkt.get(ihl..)?))
        }
        6 => {
            if *pkt.get(6)? != PROTO_ICMPV6 {
                return None;
            }
            let s: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some((s.into(), d.into(), pkt.get(40..)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, dst: &str) -> (HealthCheck, Instant) {
        let now = Instant::now();
        let cfg = config::HealthCheck {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
            interval: Duration::from_secs(1),
            retries: 3,
            policy: config::HealthPolicy::RevokeRoutes,
        };
        (HealthCheck::new(&cfg, 0x4242, now), now)
    }

    /// The reply a peer's kernel would send: addresses swapped, type 0/129, same id and seq.
    fn reply_to(probe: &[u8]) -> Vec<u8> {
        let mut r = probe.to_vec();
        if r[0] >> 4 == 4 {
            let (s, d) = (r[12..16].to_vec(), r[16..20].to_vec());
            r[12..16].copy_from_slice(&d);
            r[16..20].copy_from_slice(&s);
            r[20] = ICMP_ECHO_REPLY;
        } else {
            let (s, d) = (r[8..24].to_vec(), r[24..40].to_vec());
            r[8..24].copy_from_slice(&d);
            r[24..40].copy_from_slice(&s);
            r[40] = ICMPV6_ECHO_REPLY;
        }
        r
    }

    #[test]
    fn ipv4_probe_has_valid_checksums() {
        let (mut h, now) = check("169.254.10.1", "169.254.10.2");
        let (p, _) = h.on_timer(now);
        assert_eq!(p.len(), 20 + 8 + 16);
        assert_eq!(checksum(0, &p[..20]), 0, "IP header checksum");
        assert_eq!(checksum(0, &p[20..]), 0, "ICMP checksum");
        assert_eq!(&p[12..16], &[169, 254, 10, 1]);
    }

    #[test]
    fn ipv6_probe_checksum_covers_the_pseudo_header() {
        let (mut h, now) = check("fd00::1", "fd00::2");
        let (p, _) = h.on_timer(now);
        let mut pseudo = p[8..40].to_vec();
        pseudo.extend_from_slice(&((p.len() - 40) as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, PROTO_ICMPV6]);
        assert_eq!(checksum(sum_words(0, &pseudo), &p[40..]), 0);
    }

    #[test]
    fn fails_after_retries_misses_and_recovers_on_one_reply() {
        let (mut h, now) = check("169.254.10.1", "169.254.10.2");
        let s = Duration::from_secs(1);
        let mut changes = Vec::new();
        let mut last = Vec::new();
        for i in 0..5 {
            let (p, c) = h.on_timer(now + s * i);
            changes.push(c);
            last = p;
        }
        // Probes 1, 2, 3 lost: the fourth tick declares the failure, once.
        assert_eq!(changes, [None, None, None, Some(Transition::Failed), None]);
        assert!(!h.healthy());
        assert_eq!(
            h.take_reply(&reply_to(&last)),
            Some(Some(Transition::Recovered))
        );
        assert!(h.healthy());
        assert_eq!(h.on_timer(now + s * 5).1, None);
    }

    #[test]
    fn answered_probes_keep_it_healthy_and_others_packets_pass() {
        let (mut h, now) = check("169.254.10.1", "169.254.10.2");
        for i in 0..10 {
            let (p, c) = h.on_timer(now + Duration::from_secs(i));
            assert_eq!(c, None);
            assert!(is_echo_reply(&reply_to(&p)));
            assert!(!is_echo_reply(&p));
            assert_eq!(h.take_reply(&reply_to(&p)), Some(None));
            // The probe itself, or a reply with another identifier, is not ours.
            assert_eq!(h.take_reply(&p), None);
            let mut other = reply_to(&p);
            other[24] ^= 0xff;
            assert_eq!(h.take_reply(&other), None);
        }
        assert_eq!(h.take_reply(&[0x45, 0, 0]), None);
        assert_eq!(h.take_reply(&[]), None);
    }
}
