//! Properties: any valid message encodes and decodes back to itself in both AS contexts;
//! no byte string makes the decoders or the session panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::{
    fuzzing,
    packet::{
        attribute::{
            flags, Aggregator, AsPath, AsSegment, Community, MpReach, MpUnreach, NextHop,
            PathAttrs, RawAttribute, SegmentType,
        },
        iana::{AttrType, Family, MessageType, Origin},
        message::{Capability, Message, Notification, Open, RouteRefresh, Update},
        DecodeCxt, EncodeCxt, Framer,
    },
    Input, PeerConfig, Session,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

fn v4net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn v6net() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
}

/// AS numbers; on 2-octet sessions only AS_SEQUENCE/AS_SET carry 4-octet values (RFC 6793
/// gives confederation segments no AS4_PATH), and AS_TRANS itself is avoided since it is
/// indistinguishable from a mapped one there.
fn asn(four: bool) -> BoxedStrategy<u32> {
    if four {
        prop_oneof![1u32..65535, any::<u32>()].boxed()
    } else {
        prop_oneof![
            (1u32..65535).prop_filter("AS_TRANS", |a| *a != 23456),
            65536u32..
        ]
        .boxed()
    }
}

fn as_path(four: bool) -> impl Strategy<Value = AsPath> {
    let seg = (
        prop_oneof![
            Just(SegmentType::Sequence),
            Just(SegmentType::Set),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ],
        prop::collection::vec(asn(four), 1..8),
    )
        .prop_map(move |(kind, mut asns)| {
            if !four && matches!(kind, SegmentType::ConfedSequence | SegmentType::ConfedSet) {
                for a in &mut asns {
                    *a = (*a % 60000) + 1;
                }
            }
            AsSegment { kind, asns }
        });
    prop::collection::vec(seg, 0..4).prop_map(move |mut segments| {
        // Confederation segments only lead the path, as RFC 5065 has them, and on a 2-octet
        // session the AS4_PATH merge normalizes adjacent sequences: keep one per run.
        segments.sort_by_key(|s| {
            !matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet)
        });
        if !four {
            segments.dedup_by(|b, a| {
                a.kind == SegmentType::Sequence && b.kind == SegmentType::Sequence && {
                    a.asns.append(&mut b.asns);
                    true
                }
            });
        }
        AsPath { segments }
    })
}

fn attrs(four: bool) -> impl Strategy<Value = PathAttrs> {
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(four),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        proptest::option::of((
            if four {
                any::<u32>().boxed()
            } else {
                (65536u32..).boxed()
            },
            any::<u32>(),
        )),
        prop::collection::vec(any::<u32>(), 0..5),
        prop::collection::vec(
            (40u8..=255, prop::collection::vec(any::<u8>(), 0..20)),
            0..3,
        ),
    )
        .prop_map(
            |(origin, as_path, med, local_pref, atomic, agg, comms, unknown)| {
                let mut unknown: Vec<RawAttribute> = unknown
                    .into_iter()
                    .filter(|(t, _)| *t != 32)
                    .map(|(t, value)| RawAttribute {
                        flags: flags::OPTIONAL | if t % 2 == 0 { flags::TRANSITIVE } else { 0 },
                        type_code: AttrType(t),
                        value,
                    })
                    .collect();
                unknown.sort_by_key(|a| a.type_code);
                unknown.dedup_by_key(|a| a.type_code);
                PathAttrs {
                    origin,
                    as_path,
                    next_hop: None,
                    med,
                    local_pref,
                    atomic_aggregate: atomic,
                    aggregator: agg.map(|(asn, a)| Aggregator {
                        asn,
                        address: Ipv4Addr::from(a),
                    }),
                    communities: comms.into_iter().map(Community).collect(),
                    unknown,
                }
            },
        )
}

fn update(four: bool) -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(v4net(), 0..20),
        proptest::option::of(attrs(four)),
        any::<u32>(),
        prop::collection::vec(v4net(), 0..20),
        proptest::option::of((
            any::<u128>(),
            proptest::option::of(any::<u128>()),
            prop::collection::vec(v6net(), 0..10),
        )),
        proptest::option::of(prop::collection::vec(v6net(), 0..10)),
    )
        .prop_map(|(withdrawn, attrs, nh, nlri, reach, unreach)| {
            let mut u = Update {
                withdrawn,
                mp_unreach: unreach.map(|w| MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: w,
                }),
                ..Update::default()
            };
            // Reachability needs the mandatory attributes (else decoding reports them
            // missing); attributes alone are fine.
            if let Some(mut a) = attrs {
                if !nlri.is_empty() {
                    a.next_hop = Some(Ipv4Addr::from(nh));
                    u.nlri = nlri;
                }
                if let Some((g, ll, nlri)) = reach {
                    u.mp_reach = Some(MpReach {
                        family: Family::Ipv6Unicast,
                        next_hop: NextHop {
                            addr: Ipv6Addr::from(g).into(),
                            link_local: ll.map(Ipv6Addr::from),
                        },
                        nlri,
                    });
                }
                u.attrs = Some(a);
            }
            u
        })
}

fn round_trip(m: &Message, four: bool) -> Result<(), TestCaseError> {
    let e = EncodeCxt {
        four_octet_as: four,
    };
    let d = DecodeCxt {
        four_octet_as: four,
    };
    let Ok(bytes) = m.to_bytes(&e) else {
        // Too long for 4096 octets: refused, fine.
        return Ok(());
    };
    prop_assert!(bytes.len() <= 4096);
    let back = Message::decode(&bytes, &d).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, m);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn update_round_trips_4_octet(u in update(true)) {
        round_trip(&Message::Update(u), true)?;
    }

    #[test]
    fn update_round_trips_2_octet(u in update(false)) {
        round_trip(&Message::Update(u), false)?;
    }

    #[test]
    fn other_messages_round_trip(
        asn in any::<u32>(), hold in prop_oneof![Just(0u16), 3u16..], id in 1u32..,
        unknown in prop::collection::vec((100u8..=255, prop::collection::vec(any::<u8>(), 0..8)), 0..4),
        code in any::<u8>(), sub in any::<u8>(), data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut caps = vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ];
        caps.extend(unknown.into_iter().map(|(c, value)| Capability::Unknown {
            code: bgp::packet::iana::CapabilityCode(c),
            value,
        }));
        let open = Message::Open(Open::new(asn, hold, Ipv4Addr::from(id), caps));
        round_trip(&open, true)?;
        let n = Message::Notification(Notification::new(bgp::packet::iana::ErrorCode(code), sub, data));
        round_trip(&n, true)?;
        round_trip(&Message::RouteRefresh(RouteRefresh::new(Family::Ipv6Unicast)), true)?;
    }

    #[test]
    fn random_update_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::update_decode(&body);
    }

    #[test]
    fn random_messages_never_panic(kind in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let m = fuzzing::with_header(MessageType(kind), &body);
        fuzzing::message_decode(&m);
        let mut f = Framer::new();
        f.push(&m);
        let _ = f.next_message();
    }

    #[test]
    fn mutated_valid_updates_never_panic(u in update(true), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let Ok(mut bytes) = Message::Update(u).to_bytes(&EncodeCxt { four_octet_as: true }) else {
            return Ok(());
        };
        for (i, b) in flips {
            // Keep the header, corrupt the body.
            if bytes.len() > 19 {
                let at = 19 + i.index(bytes.len() - 19);
                bytes[at] = b;
            }
        }
        fuzzing::update_decode(&bytes[19..]);
    }

    #[test]
    fn sessions_survive_any_stream(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..10)) {
        let mut s = Session::new(65002, Ipv4Addr::new(10, 0, 0, 2), PeerConfig::new("p", "10.0.0.1".parse().unwrap(), 65001));
        s.process(Input::ManualStart);
        s.process(Input::TcpConnected {
            local: "10.0.0.2:179".parse().unwrap(),
            remote: "10.0.0.1:1000".parse().unwrap(),
            direction: bgp::neighbor::Direction::Active,
        });
        for c in chunks {
            // A valid header in front of random bodies gets past the framer.
            let mut m = fuzzing::with_header(MessageType(1 + c.first().copied().unwrap_or(0) % 5), &c);
            m.extend(c);
            s.process(Input::Received(m));
        }
    }
}

#[test]
fn captured_fixtures_survive_every_single_byte_corruption() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        for at in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut m = bytes.clone();
                m[at] = v;
                fuzzing::message_decode(&m);
            }
        }
    }
}
