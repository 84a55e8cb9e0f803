//! Codec known answers: messages captured from BIRD 2.0.12 and GoBGP 3.10 (by
//! `tests/bird.rs` / `tests/gobgp.rs` with `BGP_WRITE_FIXTURES`) and hand-built ones, checked
//! both ways: bytes → value (every octet consumed) and value → bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::packet::{
    attribute::{
        flags, Aggregator, AsPath, AsSegment, Community, MpReach, MpUnreach, NextHop, PathAttrs,
        RawAttribute, SegmentType,
    },
    error::DecodeErrorKind,
    iana::{
        open_error, Afi, AttrType, CapabilityCode, ErrorCode, Family, MessageType, Origin, Safi,
    },
    message::{
        encode_announce, encode_end_of_rib, encode_withdraw, Capability, GrFamily,
        GracefulRestartCap, Message, Notification, Open, OptParam, RouteRefresh, Update,
    },
    DecodeCxt, EncodeCxt, Framer,
};
use ipnet::{IpNet, Ipv4Net};

const FOUR: DecodeCxt = DecodeCxt {
    four_octet_as: true,
};
const FOUR_E: EncodeCxt = EncodeCxt {
    four_octet_as: true,
};
const TWO: DecodeCxt = DecodeCxt {
    four_octet_as: false,
};
const TWO_E: EncodeCxt = EncodeCxt {
    four_octet_as: false,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    hex(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Decodes `bytes` (the Framer must cut exactly one message of that length), compares with
/// `expected`, and checks the encoding: byte-exact when `exact`, else value-exact.
fn both_ways(bytes: &[u8], expected: &Message, cxt: (DecodeCxt, EncodeCxt), exact: bool) {
    let mut f = Framer::new();
    f.push(bytes);
    let m = f.next_message().unwrap().unwrap().to_vec();
    assert_eq!(m.len(), bytes.len(), "one whole message");
    assert_eq!(f.next_message().unwrap(), None);
    let decoded = Message::decode(&m, &cxt.0).unwrap();
    assert_eq!(&decoded, expected);
    if let Message::Update(u) = &decoded {
        assert!(u.errors.is_empty(), "{:?}", u.errors);
    }
    let encoded = expected.to_bytes(&cxt.1).unwrap();
    if exact {
        assert_eq!(encoded, bytes, "encoding differs from the capture");
    } else {
        assert_eq!(&Message::decode(&encoded, &cxt.0).unwrap(), expected);
    }
}

fn path(asns: &[u32]) -> AsPath {
    AsPath::sequence(asns.iter().copied())
}

#[test]
fn bird_open() {
    let expected = Message::Open(Open {
        my_as: 65001,
        hold_time: 9,
        bgp_id: Ipv4Addr::new(10, 99, 0, 1),
        params: vec![OptParam::Capabilities(vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestartCap {
                restarting: false,
                notification: false,
                restart_time: 120,
                families: vec![
                    GrFamily {
                        afi: Afi::IPV4,
                        safi: Safi::UNICAST,
                        forwarding: false,
                    },
                    GrFamily {
                        afi: Afi::IPV6,
                        safi: Safi::UNICAST,
                        forwarding: false,
                    },
                ],
            }),
            Capability::FourOctetAs(65001),
            Capability::Unknown {
                code: CapabilityCode::ENHANCED_ROUTE_REFRESH,
                value: vec![],
            },
            Capability::Unknown {
                code: CapabilityCode::LONG_LIVED_GRACEFUL_RESTART,
                value: vec![],
            },
        ])],
    });
    both_ways(&fixture("bird-open"), &expected, (FOUR, FOUR_E), true);
    let Message::Open(o) = expected else {
        unreachable!()
    };
    assert_eq!(o.asn(), 65001);
    assert_eq!(o.families(), Family::ALL.to_vec());
}

#[test]
fn gobgp_open() {
    let bytes = fixture("gobgp-open");
    let Message::Open(o) = Message::decode(&bytes, &FOUR).unwrap() else {
        panic!("not an OPEN")
    };
    assert_eq!((o.my_as, o.hold_time, o.asn()), (65003, 9, 65003));
    let caps: Vec<_> = o.capabilities().cloned().collect();
    assert_eq!(
        caps,
        vec![
            Capability::RouteRefresh,
            Capability::Unknown {
                code: CapabilityCode::FQDN,
                value: hex("02766d00"),
            },
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::FourOctetAs(65003),
            Capability::Unknown {
                code: CapabilityCode::EXTENDED_NEXT_HOP,
                value: hex("000100010002"),
            },
        ]
    );
    both_ways(&bytes, &Message::Open(o), (FOUR, FOUR_E), true);
}

#[test]
fn bird_update_ipv4() {
    let expected = Message::Update(Update {
        attrs: Some(PathAttrs {
            origin: Origin::Igp,
            as_path: path(&[65001]),
            next_hop: Some(Ipv4Addr::new(10, 99, 0, 1)),
            ..PathAttrs::default()
        }),
        nlri: vec![
            v4("10.201.0.0/24"),
            v4("10.201.1.0/24"),
            v4("10.201.2.0/24"),
        ],
        ..Update::default()
    });
    both_ways(
        &fixture("bird-update-ipv4"),
        &expected,
        (FOUR, FOUR_E),
        true,
    );
}

#[test]
fn bird_update_ipv6() {
    let expected = Message::Update(Update {
        attrs: Some(PathAttrs {
            origin: Origin::Igp,
            as_path: path(&[65001]),
            ..PathAttrs::default()
        }),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::new("fd00:99::1".parse().unwrap()),
            nlri: vec![net("2001:db8:201::/48")],
        }),
        ..Update::default()
    });
    both_ways(
        &fixture("bird-update-ipv6"),
        &expected,
        (FOUR, FOUR_E),
        true,
    );
}

#[test]
fn bird_update_ipv6_with_link_local_next_hop() {
    let bytes = fixture("bird-update-ipv6-link-local");
    let Message::Update(u) = Message::decode(&bytes, &FOUR).unwrap() else {
        panic!()
    };
    let m = u.mp_reach.as_ref().unwrap();
    assert_eq!(
        m.next_hop.addr,
        "fd00:99::1".parse::<std::net::IpAddr>().unwrap()
    );
    assert!(m.next_hop.link_local.unwrap().segments()[0] == 0xfe80);
    both_ways(&bytes, &Message::Update(u), (FOUR, FOUR_E), true);
}

#[test]
fn bird_end_of_rib_and_withdraw() {
    let eor4 = fixture("bird-end-of-rib-ipv4");
    both_ways(
        &eor4,
        &Message::Update(Update::default()),
        (FOUR, FOUR_E),
        true,
    );
    let mut built = Vec::new();
    encode_end_of_rib(Family::Ipv4Unicast, &mut built);
    assert_eq!(built, eor4);

    let eor6 = fixture("bird-end-of-rib-ipv6");
    let expected = Message::Update(Update {
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![],
        }),
        ..Update::default()
    });
    both_ways(&eor6, &expected, (FOUR, FOUR_E), true);
    let Message::Update(u) = &expected else {
        unreachable!()
    };
    assert_eq!(u.end_of_rib(), Some(Family::Ipv6Unicast));
    let mut built = Vec::new();
    encode_end_of_rib(Family::Ipv6Unicast, &mut built);
    assert_eq!(built, eor6);

    let w = fixture("bird-withdraw-ipv4");
    let prefixes = ["10.201.0.0/24", "10.201.1.0/24", "10.201.2.0/24"];
    let expected = Message::Update(Update {
        withdrawn: prefixes.iter().map(|p| v4(p)).collect(),
        ..Update::default()
    });
    both_ways(&w, &expected, (FOUR, FOUR_E), true);
    let mut built = Vec::new();
    let nets: Vec<IpNet> = prefixes.iter().map(|p| net(p)).collect();
    encode_withdraw(Family::Ipv4Unicast, &nets, &mut built).unwrap();
    assert_eq!(built, w);
}

#[test]
fn bird_route_refresh() {
    both_ways(
        &fixture("bird-route-refresh-ipv4"),
        &Message::RouteRefresh(RouteRefresh::new(Family::Ipv4Unicast)),
        (FOUR, FOUR_E),
        true,
    );
    both_ways(
        &fixture("bird-route-refresh-ipv6"),
        &Message::RouteRefresh(RouteRefresh::new(Family::Ipv6Unicast)),
        (FOUR, FOUR_E),
        true,
    );
}

#[test]
fn gobgp_updates() {
    let attrs = PathAttrs {
        origin: Origin::Incomplete,
        as_path: path(&[65003]),
        ..PathAttrs::default()
    };
    let expected = Message::Update(Update {
        attrs: Some(PathAttrs {
            next_hop: Some(Ipv4Addr::new(10, 99, 0, 1)),
            ..attrs.clone()
        }),
        nlri: vec![v4("10.203.0.0/24"), v4("10.203.1.0/24")],
        ..Update::default()
    });
    both_ways(
        &fixture("gobgp-update-ipv4"),
        &expected,
        (FOUR, FOUR_E),
        true,
    );

    // GoBGP puts MP_REACH_NLRI after AS_PATH with a 1-octet length; we encode it first
    // (RFC 7606 §5.1) with a 2-octet length, as BIRD and FRR do: same value, other bytes.
    let expected = Message::Update(Update {
        attrs: Some(attrs),
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::new("fd00:99::1".parse().unwrap()),
            nlri: vec![net("2001:db8:203::/48")],
        }),
        ..Update::default()
    });
    both_ways(
        &fixture("gobgp-update-ipv6"),
        &expected,
        (FOUR, FOUR_E),
        false,
    );

    both_ways(
        &fixture("gobgp-withdraw-ipv4"),
        &Message::Update(Update {
            withdrawn: vec![v4("10.203.1.0/24")],
            ..Update::default()
        }),
        (FOUR, FOUR_E),
        true,
    );
    both_ways(
        &fixture("gobgp-withdraw-ipv6"),
        &Message::Update(Update {
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![net("2001:db8:203::/48")],
            }),
            ..Update::default()
        }),
        (FOUR, FOUR_E),
        true,
    );
}

/// A 2-octet session (RFC 6793 §4.2.2/§4.2.3): AS_PATH carries AS_TRANS, AS4_PATH the real
/// path; AGGREGATOR AS_TRANS with AS4_AGGREGATOR.
#[test]
fn two_octet_session_as4_path_and_aggregator() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 006b 02
         0000 0050
         40 01 01 00
         40 02 08 02 03 fde8 5ba0 5ba0
         40 03 04 c0000201
         80 04 04 00000064
         40 06 00
         c0 07 06 5ba0 c0000202
         c0 08 08 fde80001 ffffff01
         c0 11 0e 02 03 0000fde8 00011170 00011171
         c0 12 08 00011171 c0000202
         18 0a0100");
    let attrs = PathAttrs {
        origin: Origin::Igp,
        as_path: path(&[65000, 70000, 70001]),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(100),
        local_pref: None,
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 70001,
            address: Ipv4Addr::new(192, 0, 2, 2),
        }),
        communities: vec![Community::new(65000, 1), Community::NO_EXPORT],
        unknown: vec![],
    };
    let expected = Message::Update(Update {
        attrs: Some(attrs.clone()),
        nlri: vec![v4("10.1.0.0/24")],
        ..Update::default()
    });
    both_ways(&bytes, &expected, (TWO, TWO_E), true);

    // The same value on a 4-octet session: no AS4_* attributes.
    let four = expected.to_bytes(&FOUR_E).unwrap();
    assert!(four.len() < bytes.len());
    assert_eq!(Message::decode(&four, &FOUR).unwrap(), expected);
    // And the 2-octet bytes read on a 4-octet session are garbage for AS_PATH:
    // treat-as-withdraw, and AS4_* discarded.
    let Message::Update(u) = Message::decode(&bytes, &FOUR).unwrap() else {
        panic!()
    };
    assert!(u.treat_as_withdraw());
}

#[test]
fn unknown_optional_transitive_attribute_round_trips() {
    let u = Update {
        attrs: Some(PathAttrs {
            as_path: path(&[65001]),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            unknown: vec![
                RawAttribute {
                    flags: flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
                    type_code: AttrType(99),
                    value: vec![1, 2, 3],
                },
                RawAttribute {
                    flags: flags::OPTIONAL | flags::TRANSITIVE,
                    type_code: AttrType::LARGE_COMMUNITY,
                    value: vec![0; 12],
                },
            ],
            ..PathAttrs::default()
        }),
        nlri: vec![v4("10.0.0.0/8")],
        ..Update::default()
    };
    let m = Message::Update(u);
    let bytes = m.to_bytes(&FOUR_E).unwrap();
    // Type order: ..., NEXT_HOP (3), LARGE_COMMUNITY (32), then 99; flags kept.
    let find = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let large = find(&[0xc0, 0x20, 0x0c]);
    let t99 = find(&[0xe0, 0x63, 0x03, 1, 2, 3]);
    assert!(find(&[0x40, 0x03, 0x04]) < large && large < t99);
    // Decoding keeps unknown attributes in type order.
    let Message::Update(mut u) = m else {
        unreachable!()
    };
    u.attrs.as_mut().unwrap().unknown.reverse();
    assert_eq!(Message::decode(&bytes, &FOUR).unwrap(), Message::Update(u));
}

#[test]
fn keepalive_and_notification() {
    let ka = hex("ffffffffffffffffffffffffffffffff 0013 04");
    both_ways(&ka, &Message::Keepalive, (FOUR, FOUR_E), true);
    let n = hex("ffffffffffffffffffffffffffffffff 0018 03 06 02 03 61 62");
    let expected = Message::Notification(Notification::new(ErrorCode::CEASE, 2, hex("036162")));
    both_ways(&n, &expected, (FOUR, FOUR_E), true);
    let Message::Notification(n) = expected else {
        unreachable!()
    };
    assert_eq!(n.shutdown_message(), None, "length 3 overruns: no message");
    let n = Notification::new(ErrorCode::CEASE, 2, hex("026869"));
    assert_eq!(n.shutdown_message(), Some("hi"));
    assert_eq!(
        n.to_string(),
        "Cease / Administrative Shutdown (6/2): \"hi\""
    );
    assert_eq!(
        Notification::new(ErrorCode::HOLD_TIMER_EXPIRED, 0, vec![]).to_string(),
        "Hold Timer Expired (4/0)"
    );
}

#[test]
fn header_errors_map_to_notifications() {
    type Case = (&'static str, DecodeErrorKind, (u8, u8, Vec<u8>));
    let cases: [Case; 4] = [
        (
            "ffffffffffffffffffffffffffffff00 0013 04",
            DecodeErrorKind::ConnectionNotSynchronized,
            (1, 1, vec![]),
        ),
        (
            "ffffffffffffffffffffffffffffffff 0014 04 00",
            DecodeErrorKind::BadMessageLength(20),
            (1, 2, vec![0, 20]),
        ),
        (
            "ffffffffffffffffffffffffffffffff 0013 09",
            DecodeErrorKind::BadMessageType(9),
            (1, 3, vec![9]),
        ),
        (
            "ffffffffffffffffffffffffffffffff 0016 05 000100",
            DecodeErrorKind::BadMessageLength(22),
            (1, 2, vec![0, 22]),
        ),
    ];
    for (h, kind, (code, sub, data)) in cases {
        let e = Message::decode(&hex(h), &FOUR).unwrap_err();
        assert_eq!(e.kind, kind);
        let n = Notification::from(&e);
        assert_eq!((n.code.0, n.subcode, n.data), (code, sub, data), "{h}");
    }
}

#[test]
fn open_errors_map_to_notifications() {
    let open = |body: &str| {
        let b = hex(body);
        let mut m = hex("ffffffffffffffffffffffffffffffff");
        m.extend_from_slice(&(19 + b.len() as u16).to_be_bytes());
        m.push(1);
        m.extend(b);
        Message::decode(&m, &FOUR).unwrap_err()
    };
    let e = open("03 fde9 005a 0a000001 00");
    assert_eq!(e.kind, DecodeErrorKind::UnsupportedVersion(3));
    let n = Notification::from(&e);
    assert_eq!(
        (n.code, n.subcode, n.data),
        (
            ErrorCode::OPEN_MESSAGE,
            open_error::UNSUPPORTED_VERSION_NUMBER,
            vec![0, 4]
        )
    );
    let e = open("04 fde9 005a 00000000 00");
    assert_eq!(
        Notification::from(&e).subcode,
        open_error::BAD_BGP_IDENTIFIER
    );
    let e = open("04 fde9 005a 0a000001 03 01 01 00");
    assert_eq!(e.kind, DecodeErrorKind::UnsupportedOptionalParameter(1));
    assert_eq!(
        Notification::from(&e).subcode,
        open_error::UNSUPPORTED_OPTIONAL_PARAMETER
    );
    let e = open("04 fde9 005a 0a000001 04 02 05 0100");
    assert_eq!(Notification::from(&e).subcode, open_error::UNSPECIFIC);
    assert_eq!(e.message, MessageType::OPEN);
}

#[test]
fn open_with_extended_optional_parameters_rfc9072() {
    // Opt Parm Len 255, marker 255, 2-octet length 8, one Capabilities parameter with a
    // 2-octet length 5: the 4-octet AS capability... as 2 + 4 octets = 6.
    let body = hex("04 5ba0 005a 0a000001 ff ff 0009 02 0006 41 04 00011170");
    let mut m = hex("ffffffffffffffffffffffffffffffff");
    m.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
    m.push(1);
    m.extend(body);
    let Message::Open(o) = Message::decode(&m, &FOUR).unwrap() else {
        panic!()
    };
    assert_eq!(o.asn(), 70000);
}

#[test]
fn packer_splits_at_4096_octets() {
    let attrs = PathAttrs {
        as_path: path(&[65001]),
        ..PathAttrs::default()
    };
    let prefixes: Vec<IpNet> = (0..3000u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()))
        .collect();
    let nh = NextHop::new("10.0.0.1".parse().unwrap());
    let mut out = Vec::new();
    encode_announce(
        Family::Ipv4Unicast,
        &attrs,
        &nh,
        &prefixes,
        &FOUR_E,
        &mut out,
    )
    .unwrap();
    let mut f = Framer::new();
    f.push(&out);
    let mut got = Vec::new();
    let mut messages = 0;
    while let Some(m) = f.next_message().unwrap() {
        assert!(m.len() <= 4096);
        messages += 1;
        let Message::Update(u) = Message::decode(m, &FOUR).unwrap() else {
            panic!()
        };
        assert_eq!(
            u.attrs.as_ref().unwrap().next_hop,
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
        got.extend(u.nlri.into_iter().map(IpNet::V4));
    }
    assert_eq!(got, prefixes);
    // 4 octets per /24, about 1000 per message.
    assert_eq!(messages, 3);

    // IPv6 in MP_REACH_NLRI.
    let prefixes: Vec<IpNet> = (0..2000u128)
        .map(|i| {
            IpNet::V6(
                ipnet::Ipv6Net::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64)), 64)
                    .unwrap(),
            )
        })
        .collect();
    let nh = NextHop {
        addr: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let mut out = Vec::new();
    encode_announce(
        Family::Ipv6Unicast,
        &attrs,
        &nh,
        &prefixes,
        &FOUR_E,
        &mut out,
    )
    .unwrap();
    let mut f = Framer::new();
    f.push(&out);
    let mut got = Vec::new();
    while let Some(m) = f.next_message().unwrap() {
        assert!(m.len() <= 4096);
        let Message::Update(u) = Message::decode(m, &FOUR).unwrap() else {
            panic!()
        };
        let mp = u.mp_reach.unwrap();
        assert_eq!(mp.next_hop, nh);
        got.extend(mp.nlri);
    }
    assert_eq!(got, prefixes);

    // Withdrawals too.
    let mut out = Vec::new();
    encode_withdraw(Family::Ipv6Unicast, &prefixes, &mut out).unwrap();
    let mut f = Framer::new();
    f.push(&out);
    let mut got = Vec::new();
    while let Some(m) = f.next_message().unwrap() {
        assert!(m.len() <= 4096);
        let Message::Update(u) = Message::decode(m, &FOUR).unwrap() else {
            panic!()
        };
        got.extend(u.mp_unreach.unwrap().withdrawn);
    }
    assert_eq!(got, prefixes);
}

#[test]
fn long_as_path_splits_segments() {
    let long: Vec<u32> = (1..=300).collect();
    let u = Update {
        attrs: Some(PathAttrs {
            as_path: AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: long.clone(),
                }],
            },
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..PathAttrs::default()
        }),
        nlri: vec![v4("10.0.0.0/8")],
        ..Update::default()
    };
    let bytes = Message::Update(u).to_bytes(&FOUR_E).unwrap();
    let Message::Update(back) = Message::decode(&bytes, &FOUR).unwrap() else {
        panic!()
    };
    let p = &back.attrs.unwrap().as_path;
    assert_eq!(p.segments.len(), 2);
    assert_eq!(p.asns().collect::<Vec<_>>(), long);
    assert_eq!(p.path_len(), 300);
}

#[test]
fn too_long_update_is_refused() {
    let u = Update {
        withdrawn: (0..1100u32)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap())
            .collect(),
        ..Update::default()
    };
    let mut out = vec![7];
    assert!(Message::Update(u).encode(&FOUR_E, &mut out).is_err());
    assert_eq!(out, [7], "nothing appended on error");
}
