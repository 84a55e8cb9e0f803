//! Two or more speakers wired back to back in memory, on virtual time.
//!
//! Each `Node` is a `Speaker` with its timers (a `TimerTable` per peer) and a `rib::Table`
//! fed by its `RoutesChanged` events. Links carry TCP connections: a connect attempt
//! succeeds after one latency if the other side accepts connections then, else fails;
//! bytes arrive in order after one latency; a close reaches the other side as `TcpFailed`
//! after the bytes sent before it. A link can be cut (the tunnel dies): nothing in flight
//! arrives and nobody is told, as with a real tunnel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, VecDeque},
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use bgp::{
    neighbor::Direction, Event, Input, Output, PeerConfig, PeerId, Speaker, SpeakerConfig, State,
    TimerTable,
};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) addr: IpAddr,
    pub(crate) speaker: Speaker,
    pub(crate) timers: BTreeMap<PeerId, TimerTable>,
    pub(crate) events: Vec<Event>,
    pub(crate) table: rib::Table,
    /// Every Send output, per peer, as (time, bytes).
    pub(crate) sent: Vec<(Duration, PeerId, Vec<u8>)>,
    /// While true, the node is hung: it processes nothing and its timers do not fire.
    pub(crate) frozen: bool,
}

impl Node {
    pub(crate) fn peer(&self, addr: IpAddr) -> PeerId {
        self.speaker.peer_by_address(addr).unwrap()
    }

    pub(crate) fn state(&self, peer: PeerId) -> State {
        self.speaker.session(peer).unwrap().state()
    }

    pub(crate) fn has_route(&self, prefix: &str) -> bool {
        self.table.best(net(prefix)).is_some()
    }

    pub(crate) fn downs(&self) -> Vec<&bgp::DownReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Down { reason, .. } => Some(reason),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug)]
enum Delivery {
    /// A connect attempt by `from` over link `link` resolves.
    Attempt {
        link: usize,
        from: usize,
    },
    Bytes {
        link: usize,
        to: usize,
        gen: u64,
        bytes: Vec<u8>,
    },
    Closed {
        link: usize,
        to: usize,
        gen: u64,
    },
}

struct Link {
    ends: [(usize, PeerId); 2],
    up: bool,
    connected: bool,
    gen: u64,
    pending: [bool; 2],
}

pub(crate) struct Net {
    pub(crate) now: Duration,
    pub(crate) latency: Duration,
    pub(crate) nodes: Vec<Node>,
    links: Vec<Link>,
    queue: VecDeque<(Duration, Delivery)>,
}

impl Net {
    pub(crate) fn new() -> Self {
        Self {
            now: Duration::ZERO,
            latency: Duration::from_millis(1),
            nodes: Vec::new(),
            links: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    pub(crate) fn add_node(&mut self, name: &str, asn: u32, addr: &str) -> usize {
        let addr = ip(addr);
        let router_id = match addr {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => "10.255.255.1".parse().unwrap(),
        };
        self.nodes.push(Node {
            name: name.into(),
            addr,
            speaker: Speaker::new(SpeakerConfig { asn, router_id }).unwrap(),
            timers: BTreeMap::new(),
            events: Vec::new(),
            table: rib::Table::new(),
            sent: Vec::new(),
            frozen: false,
        });
        self.nodes.len() - 1
    }

    /// Configures `a` and `b` as each other's peers with `tweak` applied to both configs;
    /// returns the link index.
    pub(crate) fn connect(
        &mut self,
        a: usize,
        b: usize,
        tweak: impl Fn(&mut PeerConfig, usize),
    ) -> usize {
        let mk = |me: usize, other: usize, nodes: &Vec<Node>| {
            let o = &nodes[other];
            let asn = o.speaker.config().asn;
            let mut c = PeerConfig::new(o.name.clone(), o.addr, asn);
            c.import = bgp::policy::ImportPolicy::permit_all();
            c.export = bgp::policy::ExportPolicy::permit_all();
            c.next_hop_v6 = Some(format!("2001:db8:ffff::{}", me + 1).parse().unwrap());
            tweak(&mut c, me);
            c
        };
        let ca = mk(a, b, &self.nodes);
        let cb = mk(b, a, &self.nodes);
        let pa = self.nodes[a].speaker.add_peer(ca).unwrap();
        let pb = self.nodes[b].speaker.add_peer(cb).unwrap();
        self.links.push(Link {
            ends: [(a, pa), (b, pb)],
            up: true,
            connected: false,
            gen: 0,
            pending: [false; 2],
        });
        self.links.len() - 1
    }

    /// The peer id node `n` uses on link `l`.
    pub(crate) fn peer_of(&self, l: usize, n: usize) -> PeerId {
        let link = &self.links[l];
        if link.ends[0].0 == n {
            link.ends[0].1
        } else {
            link.ends[1].1
        }
    }

    fn side(&self, l: usize, n: usize) -> usize {
        usize::from(self.links[l].ends[0].0 != n)
    }

    fn link_of(&self, n: usize, peer: PeerId) -> usize {
        self.links
            .iter()
            .position(|l| l.ends.iter().any(|&(x, p)| x == n && p == peer))
            .unwrap()
    }

    /// Feeds an input to node `n` for its peer on link `l`, and applies the outputs.
    pub(crate) fn input(&mut self, n: usize, l: usize, input: Input) {
        let peer = self.peer_of(l, n);
        let out = self.nodes[n].speaker.process(peer, input);
        self.apply(n, out);
    }

    /// Runs a closure on node `n`'s speaker and applies the outputs it returns.
    pub(crate) fn with(&mut self, n: usize, f: impl FnOnce(&mut Speaker) -> Vec<Output>) {
        let out = f(&mut self.nodes[n].speaker);
        self.apply(n, out);
    }

    pub(crate) fn start_all(&mut self) {
        for l in 0..self.links.len() {
            let [(a, _), (b, _)] = self.links[l].ends;
            self.input(a, l, Input::ManualStart);
            self.input(b, l, Input::ManualStart);
        }
    }

    /// Cuts link `l` like a dead tunnel: the connection silently stops carrying anything.
    pub(crate) fn cut(&mut self, l: usize) {
        let link = &mut self.links[l];
        link.up = false;
        link.connected = false;
        link.gen += 1;
    }

    pub(crate) fn restore(&mut self, l: usize) {
        self.links[l].up = true;
    }

    /// Resets the TCP connection on link `l` (both ends see TcpFailed, no NOTIFICATION).
    pub(crate) fn reset_connection(&mut self, l: usize) {
        let link = &mut self.links[l];
        if !link.connected {
            return;
        }
        link.connected = false;
        link.gen += 1;
        let [(a, _), (b, _)] = link.ends;
        self.input(a, l, Input::TcpFailed);
        self.input(b, l, Input::TcpFailed);
    }

    fn apply(&mut self, n: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Connect { peer, remote } => {
                    let l = self.link_of(n, peer);
                    assert_eq!(remote.port(), 179);
                    let side = self.side(l, n);
                    self.links[l].pending[side] = true;
                    self.queue.push_back((
                        self.now + self.latency,
                        Delivery::Attempt { link: l, from: n },
                    ));
                }
                Output::Close { peer } => {
                    let l = self.link_of(n, peer);
                    let side = self.side(l, n);
                    let link = &mut self.links[l];
                    link.pending[side] = false;
                    if link.connected {
                        link.connected = false;
                        let to = link.ends[1 - side].0;
                        let gen = link.gen;
                        self.queue.push_back((
                            self.now + self.latency,
                            Delivery::Closed { link: l, to, gen },
                        ));
                    }
                }
                Output::Send { peer, bytes } => {
                    self.nodes[n].sent.push((self.now, peer, bytes.clone()));
                    let l = self.link_of(n, peer);
                    let side = self.side(l, n);
                    let link = &self.links[l];
                    if link.connected && link.up {
                        let to = link.ends[1 - side].0;
                        self.queue.push_back((
                            self.now + self.latency,
                            Delivery::Bytes {
                                link: l,
                                to,
                                gen: link.gen,
                                bytes,
                            },
                        ));
                    }
                }
                Output::SetTimer { peer, timer, after } => {
                    let now = self.now;
                    self.nodes[n]
                        .timers
                        .entry(peer)
                        .or_default()
                        .set(timer, now, after);
                }
                Output::ClearTimer { peer, timer } => {
                    self.nodes[n].timers.entry(peer).or_default().clear(timer);
                }
                // One connection per link here: a node never takes a second one (the link
                // refuses an attempt while connected), so no collision arises.
                Output::CollisionSend { .. }
                | Output::CollisionClose { .. }
                | Output::CollisionWon { .. } => {}
                Output::Event(e) => {
                    if let Event::RoutesChanged(changes) = &e {
                        for c in changes {
                            if let Some(old) = &c.old {
                                self.nodes[n].table.remove(old);
                            }
                            if let Some(new) = &c.new {
                                self.nodes[n].table.insert(new.clone());
                            }
                        }
                    }
                    self.nodes[n].events.push(e);
                }
            }
        }
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Attempt { link: l, from } => {
                let side = self.side(l, from);
                if !self.links[l].pending[side] {
                    return; // abandoned
                }
                self.links[l].pending[side] = false;
                let (to, to_peer) = self.links[l].ends[1 - side];
                let (_, from_peer) = self.links[l].ends[side];
                let ok = self.links[l].up
                    && !self.links[l].connected
                    && !self.nodes[to].frozen
                    && self.nodes[to].speaker.accepts_connection(to_peer);
                if ok {
                    let link = &mut self.links[l];
                    link.connected = true;
                    link.gen += 1;
                    link.pending[1 - side] = false;
                    let a = SocketAddr::new(self.nodes[from].addr, 40000);
                    let b = SocketAddr::new(self.nodes[to].addr, 179);
                    let out = self.nodes[from].speaker.process(
                        from_peer,
                        Input::TcpConnected {
                            local: a,
                            remote: b,
                            direction: Direction::Active,
                        },
                    );
                    self.apply(from, out);
                    let out = self.nodes[to].speaker.process(
                        to_peer,
                        Input::TcpConnected {
                            local: b,
                            remote: a,
                            direction: Direction::Passive,
                        },
                    );
                    self.apply(to, out);
                } else {
                    let out = self.nodes[from]
                        .speaker
                        .process(from_peer, Input::TcpFailed);
                    self.apply(from, out);
                }
            }
            Delivery::Bytes {
                link: l,
                to,
                gen,
                bytes,
            } => {
                if self.links[l].gen != gen || self.nodes[to].frozen {
                    return;
                }
                let peer = self.peer_of(l, to);
                let out = self.nodes[to].speaker.handle_bytes(peer, &bytes);
                self.apply(to, out);
            }
            Delivery::Closed { link: l, to, gen } => {
                if self.links[l].gen != gen || self.nodes[to].frozen {
                    return;
                }
                let peer = self.peer_of(l, to);
                let out = self.nodes[to].speaker.process(peer, Input::TcpFailed);
                self.apply(to, out);
            }
        }
    }

    /// Processes what is due now; else advances time to the next thing due, at most to
    /// `limit`. Returns false when nothing is due before `limit`.
    fn step(&mut self, limit: Duration) -> bool {
        // Deliveries due now, in order.
        if let Some(i) = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= self.now)
            .min_by_key(|(i, (t, _))| (*t, *i))
            .map(|(i, _)| i)
        {
            let (_, d) = self.queue.remove(i).unwrap();
            self.deliver(d);
            return true;
        }
        // Timers due now.
        for n in 0..self.nodes.len() {
            if self.nodes[n].frozen {
                continue;
            }
            let peers: Vec<PeerId> = self.nodes[n].timers.keys().copied().collect();
            for peer in peers {
                let now = self.now;
                if let Some(t) = self.nodes[n]
                    .timers
                    .get_mut(&peer)
                    .unwrap()
                    .pop_expired(now)
                {
                    let out = self.nodes[n].speaker.process(peer, Input::TimerExpired(t));
                    self.apply(n, out);
                    return true;
                }
            }
        }
        // Advance.
        let next_q = self.queue.iter().map(|(t, _)| *t).min();
        let next_t = self
            .nodes
            .iter()
            .filter(|n| !n.frozen)
            .flat_map(|n| n.timers.values().filter_map(TimerTable::next_deadline))
            .min();
        match [next_q, next_t].into_iter().flatten().min() {
            Some(t) if t <= limit => {
                self.now = self.now.max(t);
                true
            }
            _ => {
                self.now = limit;
                false
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        let mut guard = 0u64;
        while self.step(limit) {
            guard += 1;
            assert!(guard < 10_000_000, "simulation does not settle");
        }
    }

    /// Runs until `pred` holds (checked after every step) or `max` elapses; returns whether
    /// it held.
    pub(crate) fn run_until(&mut self, max: Duration, pred: impl Fn(&Self) -> bool) -> bool {
        let limit = self.now + max;
        let mut guard = 0u64;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(limit) {
                return pred(self);
            }
            guard += 1;
            assert!(guard < 10_000_000, "simulation does not settle");
        }
    }

    /// Whether both ends of every link are Established.
    pub(crate) fn all_established(&self) -> bool {
        self.links.iter().all(|l| {
            l.ends
                .iter()
                .all(|&(n, p)| self.nodes[n].state(p) == State::Established)
        })
    }
}

/// Two nodes, AS 65001 (10.0.0.1) and AS 65002 (10.0.0.2), one link, both started.
pub(crate) fn pair(tweak: impl Fn(&mut PeerConfig, usize)) -> Net {
    let mut net = Net::new();
    net.add_node("a", 65001, "10.0.0.1");
    net.add_node("b", 65002, "10.0.0.2");
    net.connect(0, 1, tweak);
    net
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
