//! `Pair`: two [`Endpoint`]s on virtual time over a simulated network with latency,
//! loss, duplication, reordering and an optional NAT in front of A (quinn-proto's
//! `tests/util.rs` shape).

#![allow(dead_code, unreachable_pub, clippy::type_complexity)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ike::packet::iana::ProtocolId;
use ike::packet::Identity;
use ike::{
    ConnId, ConnectionConfig, DpdAction, Endpoint, EndpointConfig, Event, Proposal, RandomError,
    RetransmitConfig, Rng, Secret, TrafficSelectorPolicy, Transmit,
};

/// splitmix64: reproducible, never for production.
#[derive(Debug, Clone)]
pub struct TestRng(pub u64);

impl TestRng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() as f64 / u64::MAX as f64) < p
    }
}

impl Rng for TestRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError> {
        for chunk in dest.chunks_mut(8) {
            let z = self.next();
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

pub const A_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const B_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
pub const NAT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

pub fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub from: Side,
    pub t: Transmit,
}

struct InFlight {
    at: Instant,
    seq: u64,
    to: Side,
    local: SocketAddr,
    remote: SocketAddr,
    payload: Vec<u8>,
}

pub type Filter = Box<dyn FnMut(Side, &Transmit, usize) -> bool>;

pub struct Pair {
    pub now: Instant,
    pub start: Instant,
    pub a: Endpoint,
    pub b: Endpoint,
    pub events_a: Vec<(Instant, Event)>,
    pub events_b: Vec<(Instant, Event)>,
    pub sent: Vec<Sent>,
    pub latency: Duration,
    pub jitter: Duration,
    pub loss: f64,
    pub dup: f64,
    /// A sits behind a NAT whose public address is NAT_IP.
    pub nat: bool,
    /// Returns true to drop; gets the side, the datagram and its index in `sent`.
    pub filter: Option<Filter>,
    net_rng: TestRng,
    seq: u64,
    in_flight: Vec<InFlight>,
}

pub fn lab_endpoint_config() -> EndpointConfig {
    EndpointConfig {
        retransmit: RetransmitConfig {
            timeout: Duration::from_secs(1),
            base: 1.0,
            tries: 2,
        },
        ..EndpointConfig::default()
    }
}

impl Pair {
    pub fn new(seed: u64) -> Self {
        Self::with_configs(seed, lab_endpoint_config(), lab_endpoint_config())
    }

    pub fn with_configs(seed: u64, ca: EndpointConfig, cb: EndpointConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            start: now,
            a: Endpoint::new(ca, Box::new(TestRng(seed ^ 0xa))),
            b: Endpoint::new(cb, Box::new(TestRng(seed ^ 0xb))),
            events_a: Vec::new(),
            events_b: Vec::new(),
            sent: Vec::new(),
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            dup: 0.0,
            nat: false,
            filter: None,
            net_rng: TestRng(seed ^ 0x5eed),
            seq: 0,
            in_flight: Vec::new(),
        }
    }

    pub fn ep(&mut self, s: Side) -> &mut Endpoint {
        match s {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    pub fn events(&self, s: Side) -> &[(Instant, Event)] {
        match s {
            Side::A => &self.events_a,
            Side::B => &self.events_b,
        }
    }

    fn flush(&mut self) {
        for side in [Side::A, Side::B] {
            loop {
                let ev = self.ep(side).poll_event();
                let Some(ev) = ev else { break };
                let now = self.now;
                match side {
                    Side::A => self.events_a.push((now, ev)),
                    Side::B => self.events_b.push((now, ev)),
                }
            }
            loop {
                let t = self.ep(side).poll_transmit();
                let Some(t) = t else { break };
                self.send(side, t);
            }
        }
    }

    fn send(&mut self, from: Side, t: Transmit) {
        if t.payload != [0xff] {
            assert_eq!(
                t.non_esp_marker,
                t.local.port() == 4500,
                "non-ESP marker iff sent from 4500"
            );
        } else {
            assert!(!t.non_esp_marker, "keepalives have no marker");
        }
        let index = self.sent.len();
        self.sent.push(Sent {
            at: self.now,
            from,
            t: t.clone(),
        });
        if let Some(f) = self.filter.as_mut() {
            if f(from, &t, index) {
                return;
            }
        }
        if self.net_rng.chance(self.loss) {
            return;
        }
        let copies = if self.net_rng.chance(self.dup) { 2 } else { 1 };
        // NAT in front of A: rewrite A's source, and B's destination back.
        let mut src = t.local;
        let (to, mut dst) = if t.remote.ip() == B_IP {
            (Side::B, t.remote)
        } else {
            (Side::A, t.remote)
        };
        if self.nat && from == Side::A {
            src = sa(NAT_IP, t.local.port() + 40000);
        }
        if self.nat && to == Side::A {
            if t.remote.ip() != NAT_IP {
                return; // unroutable: A is only reachable through the NAT
            }
            dst = sa(A_IP, t.remote.port() - 40000);
        }
        for _ in 0..copies {
            let jitter_ms = self.jitter.as_millis() as u64;
            let extra = if jitter_ms > 0 {
                Duration::from_millis(self.net_rng.next() % (jitter_ms + 1))
            } else {
                Duration::ZERO
            };
            self.seq += 1;
            self.in_flight.push(InFlight {
                at: self.now + self.latency + extra,
                seq: self.seq,
                to,
                local: dst,
                remote: src,
                payload: t.payload.clone(),
            });
        }
    }

    /// Advances virtual time until `until`, delivering datagrams and firing timers.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.flush();
            let next_flight = self.in_flight.iter().map(|f| f.at).min();
            let next = [next_flight, self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    if t > self.now {
                        self.now = t;
                    }
                }
                _ => {
                    self.now = until.max(self.now);
                    self.flush();
                    return;
                }
            }
            // Deliver everything due, in (time, seq) order.
            self.in_flight.sort_by_key(|f| (f.at, f.seq));
            while self.in_flight.first().is_some_and(|f| f.at <= self.now) {
                let f = self.in_flight.remove(0);
                let now = self.now;
                self.ep(f.to)
                    .handle_datagram(now, f.local, f.remote, &f.payload);
                self.flush();
            }
            let now = self.now;
            if self.a.poll_timeout().is_some_and(|t| t <= now) {
                self.a.handle_timeout(now);
            }
            if self.b.poll_timeout().is_some_and(|t| t <= now) {
                self.b.handle_timeout(now);
            }
        }
    }

    pub fn run(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub fn ike_up(&self, s: Side) -> usize {
        self.events(s)
            .iter()
            .filter(|(_, e)| matches!(e, Event::IkeUp { .. }))
            .count()
    }

    pub fn ike_down(&self, s: Side) -> Vec<ike::DownReason> {
        self.events(s)
            .iter()
            .filter_map(|(_, e)| match e {
                Event::IkeDown { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn children_up(&self, s: Side) -> Vec<(Instant, ike::ChildSa, Option<(u32, u32)>)> {
        self.events(s)
            .iter()
            .filter_map(|(t, e)| match e {
                Event::ChildUp {
                    child, replaces, ..
                } => Some((*t, child.clone(), *replaces)),
                _ => None,
            })
            .collect()
    }

    pub fn children_down(&self, s: Side) -> Vec<(Instant, u32, ike::DownReason)> {
        self.events(s)
            .iter()
            .filter_map(|(t, e)| match e {
                Event::ChildDown { spi_in, reason, .. } => Some((*t, *spi_in, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// Inbound SPIs of the children of `sas()`.
    pub fn sas_children(&self, s: Side) -> Vec<u32> {
        let ep = match s {
            Side::A => &self.a,
            Side::B => &self.b,
        };
        ep.sas()
            .flat_map(|i| i.children.into_iter().map(|c| c.spi_in))
            .collect()
    }

    /// Inbound SPIs of children up and not down, in order of installation.
    pub fn live_children(&self, s: Side) -> Vec<u32> {
        let down: Vec<u32> = self.children_down(s).iter().map(|d| d.1).collect();
        self.children_up(s)
            .iter()
            .map(|c| c.1.spi_in)
            .filter(|spi| !down.contains(spi))
            .collect()
    }
}

pub struct ConnBuilder {
    pub c: ConnectionConfig,
}

pub fn props(proto: ProtocolId, s: &str) -> Vec<Proposal> {
    Proposal::parse_list(proto, s).unwrap()
}

/// A's (initiator) or B's (responder) connection to the other.
pub fn conn(side: Side, ike: &str, esp: &str) -> ConnectionConfig {
    let (local, remote, lid, rid) = match side {
        Side::A => (
            sa(A_IP, 500),
            sa(B_IP, 500),
            Identity::Fqdn("a.example".into()),
            Identity::Ipv4(Ipv4Addr::new(198, 51, 100, 2)),
        ),
        Side::B => (
            sa(B_IP, 500),
            sa(A_IP, 500),
            Identity::Ipv4(Ipv4Addr::new(198, 51, 100, 2)),
            Identity::Fqdn("a.example".into()),
        ),
    };
    ConnectionConfig {
        name: format!("{side:?}-conn"),
        local,
        remote,
        local_id: lid,
        remote_id: rid,
        psk: Secret::from_slice(b"correct horse battery staple"),
        ike_proposals: props(ProtocolId::IKE, ike),
        esp_proposals: props(ProtocolId::ESP, esp),
        ts: TrafficSelectorPolicy::RouteBased,
        ike_lifetime: Duration::from_secs(3 * 3600),
        child_lifetime: Duration::from_secs(3600),
        child_lifetime_bytes: None,
        rekey_margin: Duration::from_secs(300),
        rand_jitter: Duration::ZERO,
        dpd_interval: None,
        dpd_retries: 3,
        dpd_action: DpdAction::Clear,
        initiate: side == Side::A,
    }
}

/// Adds A (initiator) and B (responder) and returns their ids.
pub fn setup(p: &mut Pair, a: ConnectionConfig, b: ConnectionConfig) -> (ConnId, ConnId) {
    let now = p.now;
    let cb = p.b.add_connection(now, b);
    let ca = p.a.add_connection(now, a);
    (ca, cb)
}

pub fn same(a: &Secret, b: &Secret) -> bool {
    a.ct_eq(b.expose())
}

/// Asserts the last child pair matches across the two sides.
pub fn assert_child_pair(p: &Pair, spi_a_in: u32) {
    let a = p
        .children_up(Side::A)
        .into_iter()
        .find(|c| c.1.spi_in == spi_a_in)
        .expect("A child")
        .1;
    let b = p
        .children_up(Side::B)
        .into_iter()
        .find(|c| c.1.spi_out == spi_a_in)
        .expect("B child")
        .1;
    assert_eq!(a.spi_out, b.spi_in);
    assert!(same(&a.keys_out, &b.keys_in), "A out == B in");
    assert!(same(&a.keys_in, &b.keys_out), "A in == B out");
    assert!(!same(&a.keys_in, &a.keys_out));
    assert_eq!(a.suite, b.suite);
    assert_eq!(a.keys_in.len(), a.suite.keymat_len());
}
