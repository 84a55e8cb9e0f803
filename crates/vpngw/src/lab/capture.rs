//! `vpngw lab verify`: is the traffic between two nodes encrypted where it crosses the cloud?
//!
//! A packet socket (`AF_PACKET`, cooked, IPv4) opened inside the CEN's namespace sees every
//! packet that crosses the transit router, in both directions, on all its links. While probes
//! run from one node to the other, each captured packet is sorted: the two end hosts'
//! addresses in the clear (plaintext), ESP or ESP-in-UDP/4500 (encrypted), or anything else.
//! The lab needs no tcpdump for this, and nothing leaves the namespaces.

use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use super::probe::Prober;
use crate::netns;

const ETH_P_IP: u16 = 0x0800;
const PROTO_UDP: u8 = 17;
const PROTO_ESP: u8 = 50;
const NAT_T_PORT: u16 = 4500;

/// What a capture saw.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Verdict {
    /// Packets carrying the two end hosts' addresses in the clear.
    pub(crate) plaintext: u64,
    /// ESP or ESP-in-UDP/4500 packets.
    pub(crate) encrypted: u64,
    /// Everything else the transit router forwarded meanwhile.
    pub(crate) other: u64,
    /// One example of each plaintext flow seen, "src → dst proto N".
    pub(crate) plaintext_flows: Vec<String>,
    /// One example of each encrypted flow seen.
    pub(crate) encrypted_flows: Vec<String>,
    /// Echo replies the probing node got back.
    pub(crate) replies: u16,
    pub(crate) probes: u16,
    /// When each plaintext packet was seen, for the demo's timeline.
    #[serde(skip)]
    pub(crate) plaintext_at: Vec<Instant>,
}

impl Verdict {
    /// Encrypted means: traffic flowed, and none of it crossed in the clear.
    pub(crate) fn encrypted(&self) -> bool {
        self.plaintext == 0 && self.encrypted > 0 && self.replies > 0
    }
}

/// A capture running in a node's namespace until [`Capture::finish`].
pub(crate) struct Capture {
    stop: Arc<AtomicBool>,
    reader: thread::JoinHandle<Verdict>,
}

impl Capture {
    /// Starts capturing in `ns`, sorting packets between `src` and `dst`.
    pub(crate) fn start(ns: &str, src: Ipv4Addr, dst: Ipv4Addr) -> Result<Self> {
        let sock = netns::run_in(ns, || {
            let proto = Protocol::from(i32::from(ETH_P_IP.to_be()));
            Socket::new(Domain::PACKET, Type::DGRAM, Some(proto)).context("packet socket")
        })?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || read_until(&sock, &stop, src, dst))
        };
        Ok(Self { stop, reader })
    }

    /// Stops the capture; what it saw.
    pub(crate) fn finish(self) -> Result<Verdict> {
        self.stop.store(true, Ordering::Relaxed);
        self.reader
            .join()
            .map_err(|_| anyhow::anyhow!("capture thread panicked"))
    }
}

/// Captures in `capture_ns` while `probes` echo requests go from `from_ns` to `dst`.
pub(crate) fn verify(
    capture_ns: &str,
    from_ns: &str,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    probes: u16,
) -> Result<Verdict> {
    let capture = Capture::start(capture_ns, src, dst)?;
    let prober = Prober::open(from_ns)?;
    let replies = prober.ping(dst, probes, Duration::from_millis(50))?;
    // Let the last packets cross before the capture stops.
    thread::sleep(Duration::from_millis(100));
    let mut verdict = capture.finish()?;
    verdict.replies = replies;
    verdict.probes = probes;
    Ok(verdict)
}

fn read_until(sock: &Socket, stop: &AtomicBool, a: Ipv4Addr, b: Ipv4Addr) -> Verdict {
    let mut v = Verdict::default();
    let mut buf = [0u8; 65536];
    // A bound in case the owner never stops it (the demo's longest phase is well inside).
    let deadline = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // Read timeouts are how the loop notices `stop`.
        let Ok(n) = (&*sock).read(&mut buf) else {
            continue;
        };
        classify(&buf[..n], a, b, &mut v);
    }
    v
}

/// Sorts one IPv4 packet (cooked capture: no link-layer header).
fn classify(pkt: &[u8], a: Ipv4Addr, b: Ipv4Addr, v: &mut Verdict) {
    let (Some(&vihl), Some(&proto)) = (pkt.first(), pkt.get(9)) else {
        return;
    };
    if vihl >> 4 != 4 || pkt.len() < 20 {
        return;
    }
    let addr = |at: usize| Ipv4Addr::new(pkt[at], pkt[at + 1], pkt[at + 2], pkt[at + 3]);
    let (src, dst) = (addr(12), addr(16));
    let ihl = usize::from(vihl & 0x0f) * 4;
    let port = |at: usize| {
        pkt.get(ihl + at..ihl + at + 2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
    };
    let flow = format!("{src} → {dst} proto {proto}");
    let esp_in_udp =
        proto == PROTO_UDP && (port(0) == Some(NAT_T_PORT) || port(2) == Some(NAT_T_PORT));
    if (src == a && dst == b) || (src == b && dst == a) {
        v.plaintext += 1;
        v.plaintext_at.push(Instant::now());
        push_once(&mut v.plaintext_flows, flow);
    } else if proto == PROTO_ESP || esp_in_udp {
        v.encrypted += 1;
        push_once(&mut v.encrypted_flows, flow);
    } else {
        v.other += 1;
    }
}

fn push_once(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// The human form.
pub(crate) fn render(v: &Verdict, from: &str, to: &str, at: &str, dst: IpAddr) -> String {
    let mut s = format!(
        "{from} → {to} ({dst}): {}/{} echo replies; captured at {at}: {} plaintext, {} encrypted, {} other\n",
        v.replies, v.probes, v.plaintext, v.encrypted, v.other
    );
    for f in &v.plaintext_flows {
        s.push_str(&format!("  plaintext: {f}\n"));
    }
    for f in &v.encrypted_flows {
        s.push_str(&format!("  encrypted: {f}\n"));
    }
    s.push_str(if v.encrypted() {
        "verdict: ENCRYPTED — no inner address crossed the cloud in the clear\n"
    } else if v.plaintext > 0 {
        "verdict: PLAINTEXT — inner addresses crossed the cloud unencrypted\n"
    } else {
        "verdict: NO TRAFFIC — nothing between the two nodes crossed the cloud\n"
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, ports: (u16, u16)) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0];
        p.extend(src);
        p.extend(dst);
        p.extend(ports.0.to_be_bytes());
        p.extend(ports.1.to_be_bytes());
        p
    }

    #[test]
    fn sorts_plaintext_encrypted_and_other() {
        let (c, e) = (
            Ipv4Addr::new(192, 168, 10, 10),
            Ipv4Addr::new(172, 16, 2, 10),
        );
        let mut v = Verdict::default();
        classify(&ipv4(c.octets(), e.octets(), 1, (0, 0)), c, e, &mut v);
        classify(&ipv4(e.octets(), c.octets(), 6, (80, 4000)), c, e, &mut v);
        classify(
            &ipv4([10, 0, 0, 1], [172, 16, 1, 2], PROTO_UDP, (4500, 4500)),
            c,
            e,
            &mut v,
        );
        classify(
            &ipv4([10, 0, 0, 1], [172, 16, 1, 2], PROTO_ESP, (0, 0)),
            c,
            e,
            &mut v,
        );
        classify(
            &ipv4([10, 0, 0, 1], [172, 16, 1, 2], PROTO_UDP, (500, 500)),
            c,
            e,
            &mut v,
        );
        classify(&[0x45, 0, 0], c, e, &mut v);
        assert_eq!((v.plaintext, v.encrypted, v.other), (2, 2, 1));
        assert_eq!(v.plaintext_flows.len(), 2);
        v.replies = 1;
        assert!(!v.encrypted(), "plaintext seen");
        v.plaintext = 0;
        assert!(v.encrypted());
    }
}
