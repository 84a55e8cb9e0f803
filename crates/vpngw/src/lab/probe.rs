//! The lab's own probes: ICMP echo requests from a raw socket opened inside a node's
//! namespace, so a fresh machine needs neither ping nor traceroute. A TTL-limited echo makes
//! each router on the way answer with "time exceeded" from the interface the probe came in on
//! (the lab sets `icmp_errors_use_inbound_ifaddr`), which is how `trace` sees the real path.

use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    sync::atomic::{AtomicU16, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::{checksum::checksum, netns};

const ECHO_REPLY: u8 = 0;
const UNREACHABLE: u8 = 3;
const ECHO_REQUEST: u8 = 8;
const TIME_EXCEEDED: u8 = 11;

/// What came back for one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The destination answered.
    Echo { from: Ipv4Addr },
    /// A router dropped the probe when its TTL ran out.
    TimeExceeded { from: Ipv4Addr },
    /// A router or host said it cannot deliver (code as in RFC 792).
    Unreachable { from: Ipv4Addr, code: u8 },
}

/// A raw ICMP socket living in one node's namespace.
#[derive(Debug)]
pub(crate) struct Prober {
    sock: Socket,
    id: u16,
}

impl Prober {
    pub(crate) fn open(ns: &str) -> Result<Self> {
        let sock = netns::run_in(ns, || {
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).context("raw ICMP socket")
        })?;
        // Distinct per process and per prober, so concurrent probes in one namespace never
        // take each other's answers.
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let id = (std::process::id() as u16)
            .wrapping_mul(31)
            .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        Ok(Self { sock, id })
    }

    fn send(&self, dst: Ipv4Addr, ttl: u8, seq: u16) -> Result<()> {
        let mut pkt = [0u8; 24];
        pkt[0] = ECHO_REQUEST;
        pkt[4..6].copy_from_slice(&self.id.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..24].copy_from_slice(b"vpngw-lab-probe!");
        let sum = checksum(0, &pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
        self.sock.set_ttl_v4(u32::from(ttl))?;
        self.sock
            .send_to(&pkt, &SockAddr::from(SocketAddrV4::new(dst, 0)))?;
        Ok(())
    }

    /// The next answer to one of our probes before `deadline`: (sequence number, answer).
    fn recv(&self, deadline: Instant) -> Option<(u16, Answer)> {
        let mut buf = [0u8; 1500];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let n = match (&self.sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            };
            if let Some(hit) = parse(&buf[..n], self.id) {
                return Some(hit);
            }
        }
    }

    /// Sends `count` echo requests `interval` apart; returns how many were answered by `dst`.
    pub(crate) fn ping(&self, dst: Ipv4Addr, count: u16, interval: Duration) -> Result<u16> {
        let mut answered = std::collections::BTreeSet::new();
        for seq in 0..count {
            self.send(dst, 64, seq)?;
            let until = Instant::now() + interval;
            while let Some((s, a)) = self.recv(until) {
                if matches!(a, Answer::Echo { from } if from == dst) {
                    answered.insert(s);
                }
            }
        }
        // Late answers to the last requests.
        let until = Instant::now() + Duration::from_millis(500);
        while answered.len() < usize::from(count) {
            match self.recv(until) {
                Some((s, Answer::Echo { from })) if from == dst => {
                    answered.insert(s);
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok(answered.len() as u16)
    }

    /// An echo request every `interval` until `stop`, appending to `samples` when each was
    /// sent and whether `dst` answered it within the interval (a later answer counts as lost,
    /// as it would for a person watching the traffic).
    pub(crate) fn stream(
        &self,
        dst: Ipv4Addr,
        interval: Duration,
        stop: &std::sync::atomic::AtomicBool,
        samples: &std::sync::Mutex<Vec<(Instant, bool)>>,
    ) -> Result<()> {
        let mut seq: u16 = 0;
        while !stop.load(Ordering::Relaxed) {
            seq = seq.wrapping_add(1);
            let sent = Instant::now();
            self.send(dst, 64, seq)?;
            let until = sent + interval;
            let mut answered = false;
            while let Some((s, a)) = self.recv(until) {
                answered |= s == seq && matches!(a, Answer::Echo { from } if from == dst);
            }
            samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((sent, answered));
        }
        Ok(())
    }

    /// Probes with TTL 1, 2, … `max_ttl`; entry `k-1` is what answered at TTL `k`.
    pub(crate) fn hops(&self, dst: Ipv4Addr, max_ttl: u8) -> Result<Vec<Option<Answer>>> {
        let mut got: Vec<Option<Answer>> = vec![None; usize::from(max_ttl)];
        for _round in 0..3 {
            for ttl in 1..=max_ttl {
                if got[usize::from(ttl - 1)].is_none() {
                    self.send(dst, ttl, u16::from(ttl))?;
                }
            }
            let until = Instant::now() + Duration::from_millis(700);
            while got.iter().any(Option::is_none) {
                let Some((seq, a)) = self.recv(until) else {
                    break;
                };
                if let Some(slot) = usize::from(seq).checked_sub(1).and_then(|i| got.get_mut(i)) {
                    slot.get_or_insert(a);
                }
            }
            if got.iter().all(Option::is_some) {
                break;
            }
        }
        Ok(got)
    }
}

/// Picks our answers out of everything a raw ICMP socket sees (it gets a copy of all ICMP).
fn parse(pkt: &[u8], id: u16) -> Option<(u16, Answer)> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    let from = Ipv4Addr::new(*pkt.get(12)?, *pkt.get(13)?, *pkt.get(14)?, *pkt.get(15)?);
    let icmp = pkt.get(ihl..)?;
    let ty = *icmp.first()?;
    let ours = |h: &[u8]| -> Option<u16> {
        (u16::from_be_bytes([*h.get(4)?, *h.get(5)?]) == id)
            .then_some(u16::from_be_bytes([*h.get(6)?, *h.get(7)?]))
    };
    match ty {
        ECHO_REPLY => Some((ours(icmp)?, Answer::Echo { from })),
        TIME_EXCEEDED | UNREACHABLE => {
            // The error quotes our IP header and the first 8 bytes of our echo request.
            let inner = icmp.get(8..)?;
            let inner_ihl = usize::from(inner.first()? & 0x0f) * 4;
            let quoted = inner.get(inner_ihl..)?;
            if *quoted.first()? != ECHO_REQUEST {
                return None;
            }
            let seq = ours(quoted)?;
            let answer = if ty == TIME_EXCEEDED {
                Answer::TimeExceeded { from }
            } else {
                Answer::Unreachable {
                    from,
                    code: *icmp.get(1)?,
                }
            };
            Some((seq, answer))
        }
        _ => None,
    }
}

pub(crate) fn v4(addr: IpAddr) -> Result<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => bail!("{a}: the lab's probes are IPv4 only for now"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_time_exceeded_quoting_our_probe() {
        let mut pkt = vec![
            0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 192, 168, 10, 10,
        ];
        pkt.extend([TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0]);
        pkt.extend([
            0x45, 0, 0, 44, 0, 0, 0, 0, 1, 1, 0, 0, 192, 168, 10, 10, 172, 16, 2, 10,
        ]);
        pkt.extend([ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 3]);
        let from = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(
            parse(&pkt, 0x1234),
            Some((3, Answer::TimeExceeded { from }))
        );
        assert_eq!(parse(&pkt, 0x9999), None, "someone else's probe");
        assert_eq!(parse(&pkt[..30], 0x1234), None, "truncated");
    }
}
