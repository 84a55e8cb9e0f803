//! The speaker against scripted peers: we write the peer's bytes by hand and read what the
//! speaker answers. Covers what two of our own speakers cannot show each other: RFC 7606
//! checks that need the session, graceful-restart helper, 2-octet AS peers, iBGP rules,
//! well-known communities, unknown attributes passed on.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use bgp::{
    neighbor::{Direction, DownReason},
    packet::{
        attribute::{flags, AsPath, Community, MpReach, NextHop, PathAttrs, RawAttribute},
        iana::{Afi, AttrType, Family, Safi},
        message::{
            encode_end_of_rib, Capability, GrFamily, GracefulRestartCap, Message, Open, Update,
        },
        DecodeCxt, EncodeCxt, Framer,
    },
    policy::{ExportPolicy, ImportPolicy},
    Event, Input, LocalRoute, Output, PeerConfig, PeerId, Speaker, SpeakerConfig, State, Timer,
};
use ipnet::{IpNet, Ipv4Net};

const LOCAL_AS: u32 = 65002;
const US: &str = "10.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

struct Peer {
    id: PeerId,
    addr: IpAddr,
    asn: u32,
    four_octet: bool,
    /// Bytes the speaker sent to this peer, not yet read.
    rx: Framer,
}

struct Lab {
    s: Speaker,
    peers: Vec<Peer>,
    events: Vec<Event>,
    timers: Vec<(PeerId, Timer, Option<Duration>)>,
}

impl Lab {
    fn new(asn: u32) -> Self {
        Self {
            s: Speaker::new(SpeakerConfig {
                asn,
                router_id: US.parse().unwrap(),
            })
            .unwrap(),
            peers: Vec::new(),
            events: Vec::new(),
            timers: Vec::new(),
        }
    }

    fn add(
        &mut self,
        addr: &str,
        asn: u32,
        four_octet: bool,
        tweak: impl FnOnce(&mut PeerConfig),
    ) -> usize {
        let mut c = PeerConfig::new(addr, ip(addr), asn);
        c.import = ImportPolicy::permit_all();
        c.export = ExportPolicy::permit_all();
        tweak(&mut c);
        let id = self.s.add_peer(c).unwrap();
        self.peers.push(Peer {
            id,
            addr: ip(addr),
            asn,
            four_octet,
            rx: Framer::new(),
        });
        self.peers.len() - 1
    }

    fn apply(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send { peer, bytes } => {
                    let p = self.peers.iter_mut().find(|p| p.id == peer).unwrap();
                    p.rx.push(&bytes);
                }
                Output::SetTimer { peer, timer, after } => {
                    self.timers.push((peer, timer, Some(after)))
                }
                Output::ClearTimer { peer, timer } => self.timers.push((peer, timer, None)),
                Output::Event(e) => self.events.push(e),
                Output::Connect { .. }
                | Output::Close { .. }
                | Output::CollisionSend { .. }
                | Output::CollisionClose { .. }
                | Output::CollisionWon { .. } => {}
            }
        }
    }

    fn input(&mut self, p: usize, input: Input) {
        let out = self.s.process(self.peers[p].id, input);
        self.apply(out);
    }

    fn send(&mut self, p: usize, m: &Message) {
        let cxt = EncodeCxt {
            four_octet_as: self.peers[p].four_octet,
        };
        let bytes = m.to_bytes(&cxt).unwrap();
        self.send_raw(p, &bytes);
    }

    fn send_raw(&mut self, p: usize, bytes: &[u8]) {
        let out = self.s.handle_bytes(self.peers[p].id, bytes);
        self.apply(out);
    }

    /// Messages the speaker sent to peer `p` since the last call.
    fn sent(&mut self, p: usize) -> Vec<Message> {
        let cxt = DecodeCxt {
            four_octet_as: self.peers[p].four_octet,
        };
        let mut v = Vec::new();
        while let Some(m) = self.peers[p].rx.next_message().unwrap() {
            v.push(Message::decode(m, &cxt).unwrap());
        }
        v
    }

    fn sent_updates(&mut self, p: usize) -> Vec<Update> {
        self.sent(p)
            .into_iter()
            .filter_map(|m| match m {
                Message::Update(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// Connects peer `p` and exchanges OPEN / KEEPALIVE with `caps` (defaults when None);
    /// what the speaker sent on the way is dropped.
    fn establish(&mut self, p: usize, caps: Option<Vec<Capability>>) {
        self.connect(p, caps);
        self.sent(p);
    }

    /// [`Lab::establish`], keeping what the speaker sent (its table dump) for `sent`.
    fn connect(&mut self, p: usize, caps: Option<Vec<Capability>>) {
        let peer = &self.peers[p];
        let (id, addr, asn, four) = (peer.id, peer.addr, peer.asn, peer.four_octet);
        self.input(p, Input::ManualStart);
        self.input(
            p,
            Input::TcpConnected {
                local: SocketAddr::new(ip(US), 179),
                remote: SocketAddr::new(addr, 40000),
                direction: Direction::Passive,
            },
        );
        let mut caps = caps.unwrap_or_else(|| {
            vec![
                Capability::multiprotocol(Family::Ipv4Unicast),
                Capability::multiprotocol(Family::Ipv6Unicast),
                Capability::RouteRefresh,
            ]
        });
        if four {
            caps.push(Capability::FourOctetAs(asn));
        }
        let IpAddr::V4(bgp_id) = addr else { panic!() };
        self.send(p, &Message::Open(Open::new(asn, 90, bgp_id, caps)));
        self.send(p, &Message::Keepalive);
        assert_eq!(self.s.session(id).unwrap().state(), State::Established);
    }

    fn has(&self, prefix: &str) -> bool {
        self.s.loc_rib().best(&net(prefix)).is_some()
    }
}

fn v4_update(
    path: &[u32],
    nh: &str,
    prefixes: &[&str],
    tweak: impl FnOnce(&mut PathAttrs),
) -> Message {
    let mut attrs = PathAttrs {
        as_path: AsPath::sequence(path.iter().copied()),
        next_hop: Some(nh.parse().unwrap()),
        ..PathAttrs::default()
    };
    tweak(&mut attrs);
    Message::Update(Update {
        attrs: Some(attrs),
        nlri: prefixes
            .iter()
            .map(|p| p.parse::<Ipv4Net>().unwrap())
            .collect(),
        ..Update::default()
    })
}

#[test]
fn treat_as_withdraw_removes_the_route_and_keeps_the_session() {
    let mut lab = Lab::new(LOCAL_AS);
    let p = lab.add("10.0.0.1", 65001, true, |_| {});
    lab.establish(p, None);
    lab.send(
        p,
        &v4_update(
            &[65001],
            "10.0.0.1",
            &["10.1.0.0/24", "10.1.1.0/24"],
            |_| {},
        ),
    );
    assert!(lab.has("10.1.0.0/24") && lab.has("10.1.1.0/24"));
    // The same prefix again with a malformed ORIGIN (length 2): treat-as-withdraw.
    let mut bytes = v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |_| {})
        .to_bytes(&EncodeCxt {
            four_octet_as: true,
        })
        .unwrap();
    // ORIGIN is the first attribute: flags at 23, type 24, length 25, value 26.
    assert_eq!(bytes[23..27], [0x40, 1, 1, 0]);
    bytes[26] = 7; // undefined ORIGIN value
    lab.send_raw(p, &bytes);
    assert!(!lab.has("10.1.0.0/24"));
    assert!(lab.has("10.1.1.0/24"));
    let id = lab.peers[p].id;
    assert_eq!(lab.s.session(id).unwrap().state(), State::Established);
    assert_eq!(lab.s.session(id).unwrap().stats().malformed_updates, 1);
    // Nothing but keepalives went back: no NOTIFICATION.
    assert!(lab
        .sent(p)
        .iter()
        .all(|m| !matches!(m, Message::Notification(_))));
}

#[test]
fn session_checks_first_as_local_pref_next_hop_and_loops() {
    let mut lab = Lab::new(LOCAL_AS);
    let p = lab.add("10.0.0.1", 65001, true, |_| {});
    lab.establish(p, None);
    // LOCAL_PREF from an external peer: discarded (RFC 7606 §7.5), our default used.
    lab.send(
        p,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |a| {
            a.local_pref = Some(500)
        }),
    );
    let best = lab.s.loc_rib().best(&net("10.1.0.0/24")).unwrap();
    assert_eq!(best.path.attrs.local_pref, Some(100));
    // First AS is not the peer's: treat-as-withdraw (RFC 4271 §6.3, RFC 7606 §7.2).
    lab.send(
        p,
        &v4_update(
            &[65009],
            "10.0.0.1",
            &["10.1.0.0/24", "10.2.0.0/24"],
            |_| {},
        ),
    );
    assert!(!lab.has("10.1.0.0/24") && !lab.has("10.2.0.0/24"));
    // NEXT_HOP is our own address: the routes are ignored.
    lab.send(p, &v4_update(&[65001], US, &["10.3.0.0/24"], |_| {}));
    assert!(!lab.has("10.3.0.0/24"));
    lab.send(p, &v4_update(&[65001], "0.0.0.0", &["10.3.0.0/24"], |_| {}));
    assert!(!lab.has("10.3.0.0/24"));
    // Our AS in the path: a loop, not installed (RFC 4271 §9.1.2).
    lab.send(
        p,
        &v4_update(&[65001, LOCAL_AS], "10.0.0.1", &["10.4.0.0/24"], |_| {}),
    );
    assert!(!lab.has("10.4.0.0/24"));
    let id = lab.peers[p].id;
    assert_eq!(lab.s.session(id).unwrap().state(), State::Established);
}

#[test]
fn unknown_transitive_attribute_is_passed_on_with_partial_bit() {
    let mut lab = Lab::new(LOCAL_AS);
    let a = lab.add("10.0.0.1", 65001, true, |_| {});
    let b = lab.add("10.0.0.3", 65003, true, |_| {});
    lab.establish(a, None);
    lab.establish(b, None);
    lab.send(
        a,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |attrs| {
            attrs.med = Some(50);
            attrs.communities = vec![Community::new(65001, 7)];
            attrs.unknown = vec![
                RawAttribute {
                    flags: flags::OPTIONAL | flags::TRANSITIVE,
                    type_code: AttrType(99),
                    value: vec![1, 2],
                },
                RawAttribute {
                    flags: flags::OPTIONAL,
                    type_code: AttrType(100),
                    value: vec![3],
                },
            ];
        }),
    );
    let ups = lab.sent_updates(b);
    assert_eq!(ups.len(), 1);
    let attrs = ups[0].attrs.as_ref().unwrap();
    assert_eq!(
        attrs.unknown,
        vec![RawAttribute {
            flags: flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
            type_code: AttrType(99),
            value: vec![1, 2],
        }]
    );
    // eBGP to eBGP: our AS prepended, next hop self, MED not passed on, communities kept,
    // no LOCAL_PREF.
    assert_eq!(attrs.as_path.to_string(), "65002 65001");
    assert_eq!(attrs.next_hop, Some(US.parse().unwrap()));
    assert_eq!(attrs.med, None);
    assert_eq!(attrs.local_pref, None);
    assert_eq!(attrs.communities, vec![Community::new(65001, 7)]);
    // Not sent back to A.
    assert!(lab.sent_updates(a).is_empty());
}

#[test]
fn well_known_communities_limit_export() {
    let mut lab = Lab::new(LOCAL_AS);
    let a = lab.add("10.0.0.1", 65001, true, |_| {});
    let ext = lab.add("10.0.0.3", 65003, true, |_| {});
    let int = lab.add("10.0.0.4", LOCAL_AS, true, |_| {});
    for p in [a, ext, int] {
        lab.establish(p, None);
    }
    lab.send(
        a,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |x| {
            x.communities = vec![Community::NO_EXPORT];
        }),
    );
    lab.send(
        a,
        &v4_update(&[65001], "10.0.0.1", &["10.2.0.0/24"], |x| {
            x.communities = vec![Community::NO_ADVERTISE];
        }),
    );
    assert!(
        lab.sent_updates(ext).is_empty(),
        "NO_EXPORT / NO_ADVERTISE to eBGP"
    );
    let to_int = lab.sent_updates(int);
    assert_eq!(to_int.len(), 1);
    assert_eq!(
        to_int[0].nlri,
        vec!["10.1.0.0/24".parse::<Ipv4Net>().unwrap()]
    );
    // iBGP: path unchanged, LOCAL_PREF sent, next hop unchanged (no next-hop-self).
    let attrs = to_int[0].attrs.as_ref().unwrap();
    assert_eq!(attrs.as_path.to_string(), "65001");
    assert_eq!(attrs.local_pref, Some(100));
    assert_eq!(attrs.next_hop, Some("10.0.0.1".parse().unwrap()));
}

#[test]
fn ibgp_routes_are_not_sent_to_ibgp_peers() {
    let mut lab = Lab::new(LOCAL_AS);
    let i1 = lab.add("10.0.0.4", LOCAL_AS, true, |_| {});
    let i2 = lab.add("10.0.0.5", LOCAL_AS, true, |_| {});
    let e = lab.add("10.0.0.3", 65003, true, |c| c.export.prepend = 2);
    for p in [i1, i2, e] {
        lab.establish(p, None);
    }
    lab.send(
        i1,
        &v4_update(&[], "10.0.0.4", &["10.9.0.0/24"], |a| {
            a.local_pref = Some(200)
        }),
    );
    let best = lab.s.loc_rib().best(&net("10.9.0.0/24")).unwrap();
    assert_eq!(
        best.path.attrs.local_pref,
        Some(200),
        "an internal peer's LOCAL_PREF is kept"
    );
    assert!(lab.sent_updates(i2).is_empty());
    let to_e = lab.sent_updates(e);
    let attrs = to_e[0].attrs.as_ref().unwrap();
    assert_eq!(
        attrs.as_path.to_string(),
        "65002 65002 65002",
        "prepend 2 on eBGP"
    );
    assert_eq!(attrs.local_pref, None);
}

#[test]
fn two_octet_peer_gets_as_trans_and_as4_path() {
    let mut lab = Lab::new(4_200_000_001);
    let old = lab.add("10.0.0.1", 65001, false, |_| {});
    let new = lab.add("10.0.0.3", 65003, true, |_| {});
    lab.establish(old, None);
    lab.establish(new, None);
    let neg = lab
        .s
        .session(lab.peers[old].id)
        .unwrap()
        .negotiated()
        .unwrap()
        .clone();
    assert!(!neg.four_octet_as);
    // The old speaker sends a path with a 4-octet AS hidden behind AS_TRANS.
    let m = v4_update(&[65001, 70000], "10.0.0.1", &["10.1.0.0/24"], |_| {});
    lab.send(old, &m);
    let best = lab.s.loc_rib().best(&net("10.1.0.0/24")).unwrap();
    assert_eq!(best.path.attrs.as_path.to_string(), "65001 70000");
    // Passed to the 4-octet peer as real numbers, with our 4-octet AS first.
    let ups = lab.sent_updates(new);
    assert_eq!(
        ups[0].attrs.as_ref().unwrap().as_path.to_string(),
        "4200000001 65001 70000"
    );
    // A route originated here goes to the old speaker as AS_TRANS + AS4_PATH.
    let out = lab.s.originate(net("10.8.0.0/24"), LocalRoute::default());
    lab.apply(out);
    let raw_cxt = DecodeCxt {
        four_octet_as: false,
    };
    let ups = lab.sent_updates(old);
    assert_eq!(
        ups[0].attrs.as_ref().unwrap().as_path.to_string(),
        "4200000001"
    );
    // The raw AS_PATH on the wire is 23456.
    let bytes = Message::Update(ups[0].clone())
        .to_bytes(&EncodeCxt {
            four_octet_as: false,
        })
        .unwrap();
    assert!(bytes.windows(4).any(|w| w == [2, 1, 0x5b, 0xa0]));
    assert!(
        bytes.windows(2).any(|w| w == [0xc0, 17]),
        "AS4_PATH present"
    );
    assert!(Message::decode(&bytes, &raw_cxt).is_ok());
}

fn gr_caps(forwarding: bool) -> Vec<Capability> {
    vec![
        Capability::multiprotocol(Family::Ipv4Unicast),
        Capability::multiprotocol(Family::Ipv6Unicast),
        Capability::GracefulRestart(GracefulRestartCap {
            restarting: false,
            notification: false,
            restart_time: 90,
            families: vec![GrFamily {
                afi: Afi::IPV4,
                safi: Safi::UNICAST,
                forwarding,
            }],
        }),
    ]
}

fn gr_lab() -> (Lab, usize) {
    let mut lab = Lab::new(LOCAL_AS);
    let p = lab.add("10.0.0.1", 65001, true, |_| {});
    lab.establish(p, Some(gr_caps(false)));
    lab.send(
        p,
        &v4_update(
            &[65001],
            "10.0.0.1",
            &["10.1.0.0/24", "10.1.1.0/24"],
            |_| {},
        ),
    );
    lab.send(
        p,
        &Message::Update(Update {
            attrs: Some(PathAttrs {
                as_path: AsPath::sequence([65001]),
                ..PathAttrs::default()
            }),
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: NextHop::new(ip("2001:db8::1")),
                nlri: vec![net("2001:db8:1::/48")],
            }),
            ..Update::default()
        }),
    );
    assert!(lab.has("10.1.0.0/24") && lab.has("2001:db8:1::/48"));
    (lab, p)
}

#[test]
fn graceful_restart_keeps_stale_routes_until_end_of_rib() {
    let (mut lab, p) = gr_lab();
    let id = lab.peers[p].id;
    // The connection drops without a NOTIFICATION: IPv4 (in the GR capability) is kept
    // stale, IPv6 (not in it) goes now; the restart timer runs.
    lab.input(p, Input::TcpFailed);
    assert!(lab.has("10.1.0.0/24") && lab.has("10.1.1.0/24"));
    assert!(!lab.has("2001:db8:1::/48"));
    assert_eq!(lab.s.stale_count(id).unwrap(), 2);
    assert!(lab
        .timers
        .contains(&(id, Timer::GracefulRestart, Some(Duration::from_secs(90)))));
    // The peer comes back preserving IPv4 forwarding, re-sends one route, then End-of-RIB.
    lab.establish(p, Some(gr_caps(true)));
    assert!(
        lab.has("10.1.1.0/24"),
        "stale routes survive the new session"
    );
    lab.send(
        p,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |_| {}),
    );
    let mut eor = Vec::new();
    encode_end_of_rib(Family::Ipv4Unicast, &mut eor);
    lab.send_raw(p, &eor);
    assert!(lab.has("10.1.0.0/24"));
    assert!(
        !lab.has("10.1.1.0/24"),
        "not re-sent before End-of-RIB: flushed"
    );
    assert_eq!(lab.s.stale_count(id).unwrap(), 0);
    assert!(lab.timers.contains(&(id, Timer::GracefulRestart, None)));
}

#[test]
fn graceful_restart_timer_and_transport_down_flush_stale_routes() {
    let (mut lab, p) = gr_lab();
    lab.input(p, Input::TcpFailed);
    assert!(lab.has("10.1.0.0/24"));
    lab.input(p, Input::TimerExpired(Timer::GracefulRestart));
    assert!(!lab.has("10.1.0.0/24") && !lab.has("10.1.1.0/24"));

    // The tunnel dying is not a restart: nothing is kept.
    let (mut lab, p) = gr_lab();
    lab.input(p, Input::TransportDown);
    assert!(lab.s.loc_rib().is_empty());
    assert!(lab.events.iter().any(|e| matches!(
        e,
        Event::Down {
            reason: DownReason::TransportDown,
            ..
        }
    )));
    // A lost connection, then the tunnel dies while waiting: stale routes go at once.
    let (mut lab, p) = gr_lab();
    lab.input(p, Input::TcpFailed);
    assert!(lab.has("10.1.0.0/24"));
    lab.input(p, Input::TransportDown);
    assert!(lab.s.loc_rib().is_empty());
    // A peer that re-opens without forwarding state for IPv4 loses its stale routes.
    let (mut lab, p) = gr_lab();
    lab.input(p, Input::TcpFailed);
    lab.establish(p, Some(gr_caps(false)));
    assert!(!lab.has("10.1.0.0/24"));
}

#[test]
fn routes_changed_events_carry_rib_routes() {
    let mut lab = Lab::new(LOCAL_AS);
    let p = lab.add("10.0.0.1", 65001, true, |c| {
        c.interface = Some("ipsec0".into())
    });
    lab.establish(p, None);
    lab.events.clear();
    lab.send(
        p,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |_| {}),
    );
    let [Event::RoutesChanged(changes)] = lab.events.as_slice() else {
        panic!("{:?}", lab.events)
    };
    assert_eq!(changes.len(), 1);
    let new = changes[0].new.clone().unwrap();
    assert_eq!(new.prefix, net("10.1.0.0/24"));
    assert_eq!(new.next_hop.to_string(), "via 10.0.0.1 dev ipsec0");
    assert_eq!(new.source, rib::Source::Bgp);
    assert_eq!(changes[0].old, None);
    assert_eq!(lab.s.rib_routes(), vec![new.clone()]);
    // Replaced by a better path from the same peer: one change, old → new.
    lab.events.clear();
    lab.send(
        p,
        &v4_update(&[65001], "10.0.0.9", &["10.1.0.0/24"], |_| {}),
    );
    let [Event::RoutesChanged(changes)] = lab.events.as_slice() else {
        panic!()
    };
    assert_eq!(changes[0].old.as_ref(), Some(&new));
    assert_eq!(
        changes[0].new.as_ref().unwrap().next_hop.to_string(),
        "via 10.0.0.9 dev ipsec0"
    );
    // Local routes are never rib routes: they came from the table.
    lab.events.clear();
    let out = lab.s.originate(net("10.7.0.0/24"), LocalRoute::default());
    lab.apply(out);
    assert!(lab.events.is_empty());
    let mut table = rib::Table::new();
    for r in lab.s.rib_routes() {
        table.insert(r);
    }
    assert!(table.lookup(ip("10.1.0.7")).is_some());
    assert!(table.lookup(ip("10.7.0.1")).is_none());
}

#[test]
fn export_policy_change_withdraws_and_prefix_filter_applies() {
    let mut lab = Lab::new(LOCAL_AS);
    let p = lab.add("10.0.0.1", 65001, true, |_| {});
    lab.establish(p, None);
    for pfx in ["10.7.0.0/24", "10.8.0.0/24"] {
        let out = lab.s.originate(net(pfx), LocalRoute::default());
        lab.apply(out);
    }
    assert_eq!(lab.s.advertised_count(lab.peers[p].id).unwrap(), 2);
    lab.sent(p);
    let policy = ExportPolicy {
        filter: Some(bgp::policy::PrefixFilter::permit_exact([net(
            "10.7.0.0/24",
        )])),
        ..ExportPolicy::default()
    };
    let out = lab.s.set_export_policy(lab.peers[p].id, policy).unwrap();
    lab.apply(out);
    let ups = lab.sent_updates(p);
    assert_eq!(ups.len(), 1);
    assert_eq!(
        ups[0].withdrawn,
        vec!["10.8.0.0/24".parse::<Ipv4Net>().unwrap()]
    );
    // RFC 8212: an eBGP peer without an import filter gets nothing accepted.
    let mut lab = Lab::new(LOCAL_AS);
    let q = lab.add("10.0.0.1", 65001, true, |c| {
        c.import = ImportPolicy::default()
    });
    lab.establish(q, None);
    lab.send(
        q,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |_| {}),
    );
    assert!(!lab.has("10.1.0.0/24"));
}

#[test]
fn local_route_attributes_are_shared_and_packed() {
    let mut lab = Lab::new(LOCAL_AS);
    for i in 0..50u32 {
        let p = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap());
        let out = lab.s.originate(p, LocalRoute::default());
        lab.apply(out);
    }
    let p = lab.add("10.0.0.1", 65001, true, |_| {});
    lab.establish(p, None);
    lab.input(p, Input::TimerExpired(Timer::Keepalive));
    // establish() already read the initial dump; ask for it again.
    let out = lab.s.process(
        lab.peers[p].id,
        Input::Received(
            Message::RouteRefresh(bgp::packet::message::RouteRefresh::new(Family::Ipv4Unicast))
                .to_bytes(&EncodeCxt::default())
                .unwrap(),
        ),
    );
    lab.apply(out);
    let ups = lab.sent_updates(p);
    assert_eq!(ups.len(), 1, "50 prefixes, one UPDATE");
    assert_eq!(ups[0].nlri.len(), 50);
    let a = lab.s.loc_rib().best(&net("10.0.0.0/24")).unwrap();
    let b = lab.s.loc_rib().best(&net("10.0.1.0/24")).unwrap();
    assert!(Arc::ptr_eq(&a.path.attrs, &b.path.attrs));
}

#[test]
fn fsm_error_for_update_before_established() {
    let mut lab = Lab::new(LOCAL_AS);
    let p = lab.add("10.0.0.1", 65001, true, |_| {});
    lab.input(p, Input::ManualStart);
    lab.input(
        p,
        Input::TcpConnected {
            local: SocketAddr::new(ip(US), 179),
            remote: SocketAddr::new(ip("10.0.0.1"), 40000),
            direction: Direction::Passive,
        },
    );
    lab.sent(p);
    lab.send(
        p,
        &v4_update(&[65001], "10.0.0.1", &["10.1.0.0/24"], |_| {}),
    );
    let sent = lab.sent(p);
    let [Message::Notification(n)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (n.code.0, n.subcode),
        (5, 1),
        "FSM error, unexpected message in OpenSent"
    );
    assert_eq!(lab.s.session(lab.peers[p].id).unwrap().state(), State::Idle);
}

mod model {
    //! The Adj-RIB-Out is not stored: what a peer was sent is taken to be what export gives
    //! for the Loc-RIB's selection. These runs check that against what the peers really
    //! received, through random announcements, withdrawals, sessions going down and coming
    //! back, local routes and export-policy changes.

    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Peer announces prefix index with an AS path this long.
        Announce(usize, u8, usize),
        Withdraw(usize, u8),
        /// The peer's connection drops; it connects again at once.
        Flap(usize),
        Originate(u8),
        WithdrawLocal(u8),
        /// Export to the peer only prefixes below this index (`None`: everything).
        ExportBelow(usize, Option<u8>),
        /// The peer asks for our routes again (RFC 2918) and, in the same read, announces.
        RefreshAndAnnounce(usize, u8),
    }

    fn prefix(i: u8) -> IpNet {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 50, i, 0), 24).unwrap())
    }

    fn op() -> impl Strategy<Value = Op> {
        let peer = 0..3usize;
        let pfx = 0..12u8;
        prop_oneof![
            4 => (peer.clone(), pfx.clone(), 1..4usize).prop_map(|(p, i, l)| Op::Announce(p, i, l)),
            2 => (peer.clone(), pfx.clone()).prop_map(|(p, i)| Op::Withdraw(p, i)),
            1 => peer.clone().prop_map(Op::Flap),
            1 => pfx.clone().prop_map(Op::Originate),
            1 => pfx.clone().prop_map(Op::WithdrawLocal),
            1 => (peer.clone(), proptest::option::of(pfx.clone()))
                .prop_map(|(p, b)| Op::ExportBelow(p, b)),
            1 => (peer, pfx).prop_map(|(p, i)| Op::RefreshAndAnnounce(p, i)),
        ]
    }

    /// What peer `p` holds from us, by the UPDATEs it got.
    fn received_by(lab: &mut Lab, p: usize, held: &mut BTreeSet<IpNet>) {
        for u in lab.sent_updates(p) {
            for w in u.withdrawn_prefixes() {
                held.remove(&w);
            }
            for a in u.announced_prefixes() {
                held.insert(a);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn what_peers_hold_is_what_the_speaker_says_it_advertised(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let mut lab = Lab::new(LOCAL_AS);
            let addrs = ["10.0.0.1", "10.0.0.3", "10.0.0.4"];
            for (i, a) in addrs.iter().enumerate() {
                lab.add(a, 65001 + i as u32 * 2, true, |_| {});
                lab.establish(i, None);
            }
            let mut held: Vec<BTreeSet<IpNet>> = vec![BTreeSet::new(); 3];
            let mut announced: Vec<BTreeMap<IpNet, usize>> = vec![BTreeMap::new(); 3];
            for op in ops {
                match op {
                    Op::Announce(p, i, len) => {
                        let asn = lab.peers[p].asn;
                        let path: Vec<u32> = (0..len as u32).map(|k| asn + k * 100).collect();
                        lab.send(p, &v4_update(&path, addrs[p], &[&prefix(i).to_string()], |_| {}));
                        announced[p].insert(prefix(i), len);
                    }
                    Op::Withdraw(p, i) => {
                        let u = Update {
                            withdrawn: vec![prefix(i).to_string().parse().unwrap()],
                            ..Update::default()
                        };
                        lab.send(p, &Message::Update(u));
                        announced[p].remove(&prefix(i));
                    }
                    Op::Flap(p) => {
                        lab.input(p, Input::TcpFailed);
                        lab.input(p, Input::ManualStop);
                        held[p].clear();
                        announced[p].clear();
                        lab.sent(p);
                        lab.connect(p, None);
                    }
                    Op::RefreshAndAnnounce(p, i) => {
                        let cxt = EncodeCxt { four_octet_as: true };
                        let refresh = bgp::packet::message::RouteRefresh::new(Family::Ipv4Unicast);
                        let mut bytes = Message::RouteRefresh(refresh).to_bytes(&cxt).unwrap();
                        let asn = lab.peers[p].asn;
                        let u = v4_update(&[asn], addrs[p], &[&prefix(i).to_string()], |_| {});
                        bytes.extend(u.to_bytes(&cxt).unwrap());
                        lab.send_raw(p, &bytes);
                        announced[p].insert(prefix(i), 1);
                    }
                    Op::Originate(i) => {
                        let out = lab.s.originate(prefix(i), LocalRoute::default());
                        lab.apply(out);
                    }
                    Op::WithdrawLocal(i) => {
                        let out = lab.s.withdraw_local(prefix(i));
                        lab.apply(out);
                    }
                    Op::ExportBelow(p, below) => {
                        let filter = below.map(|b| {
                            bgp::policy::PrefixFilter::permit_exact((0..b).map(prefix))
                        });
                        let policy = ExportPolicy { filter, ..ExportPolicy::permit_all() };
                        let out = lab.s.set_export_policy(lab.peers[p].id, policy).unwrap();
                        lab.apply(out);
                    }
                }
                for p in 0..3 {
                    received_by(&mut lab, p, &mut held[p]);
                    let id = lab.peers[p].id;
                    let advertised: BTreeSet<IpNet> =
                        lab.s.advertised(id).unwrap().into_iter().map(|r| r.0).collect();
                    prop_assert_eq!(&held[p], &advertised, "peer {}", p);
                    prop_assert_eq!(lab.s.advertised_count(id), Some(advertised.len()));
                    let received: BTreeSet<IpNet> =
                        lab.s.received(id).unwrap().into_iter().map(|r| r.0).collect();
                    let want: BTreeSet<IpNet> = announced[p].keys().copied().collect();
                    prop_assert_eq!(&received, &want, "peer {}", p);
                    prop_assert_eq!(lab.s.received_count(id), Some(want.len()));
                }
            }
        }
    }
}
