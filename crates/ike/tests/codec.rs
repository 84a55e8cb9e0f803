//! Codec fixtures as `(bytes, value)` pairs checked both ways, strictness checks with
//! error offsets, and property tests (round trip of generated messages, no panic on any
//! input).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hex_literal::hex;
use ike::error::{DecodeError, DecodeErrorKind, Error, Unsupported};
use ike::packet::iana::*;
use ike::packet::*;
use proptest::prelude::*;

/// Decodes and encodes both ways; decoding is strict, so success means every byte was
/// consumed exactly (header Length = datagram length, each payload filled its length).
fn check_both_ways(bytes: &[u8], value: &Message) {
    let decoded = Message::decode(bytes).expect("fixture decodes");
    assert_eq!(&decoded, value);
    assert_eq!(value.encode().expect("fixture encodes"), bytes);
}

/// An IKE_SA_INIT request: SA (AES-GCM-16/128, PRF-HMAC-SHA2-256, Curve25519), KE, Nonce,
/// NAT_DETECTION_SOURCE_IP, Vendor ID.
fn sa_init() -> (Vec<u8>, Message) {
    let bytes = hex!(
        "0102030405060708 0000000000000000 21 20 22 08 00000000 000000b6"
        // SA
        "22 00 0028"
        "00 00 0024 01 01 00 03"
        "03 00 000c 01 00 0014 800e 0080"
        "03 00 0008 02 00 0005"
        "00 00 0008 04 00 001f"
        // KE
        "28 00 0028 001f 0000"
        "1111111111111111111111111111111111111111111111111111111111111111"
        // Nonce
        "29 00 0024"
        "2222222222222222222222222222222222222222222222222222222222222222"
        // Notify NAT_DETECTION_SOURCE_IP
        "2b 00 001c 00 00 4004 3333333333333333333333333333333333333333"
        // Vendor ID
        "00 00 000a 766770677721"
    )
    .to_vec();
    let value = Message {
        header: Header::new(
            IkeSpi(hex!("0102030405060708")),
            IkeSpi::ZERO,
            ExchangeType::IKE_SA_INIT,
            Flags::INITIATOR,
            0,
        ),
        payloads: vec![
            Payload::Sa(SaPayload {
                proposals: vec![WireProposal {
                    number: 1,
                    protocol: ProtocolId::IKE,
                    spi: vec![],
                    transforms: vec![
                        Transform::with_key_length(TransformType::ENCR, 20, 128),
                        Transform::new(TransformType::PRF, 5),
                        Transform::new(TransformType::KE, 31),
                    ],
                }],
            }),
            Payload::Ke(KePayload {
                method: KeMethod::CURVE25519,
                data: vec![0x11; 32],
            }),
            Payload::Nonce(Nonce::new(vec![0x22; 32]).unwrap()),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                vec![0x33; 20],
            )),
            Payload::VendorId(b"vgpgw!".to_vec()),
        ],
    };
    (bytes, value)
}

/// IKE_AUTH content (in the clear, as it is inside SK): IDi (FQDN), AUTH (PSK), SA (ESP
/// AES-CBC-256/HMAC-SHA2-256-128/no ESN), TSi (IPv4 and IPv6 "any"), TSr (10.0.0.0/24 TCP
/// 443), Delete (two ESP SPIs), Notify REKEY_SA.
fn ike_auth_content() -> (Vec<u8>, Message) {
    let bytes = hex!(
        "0102030405060708 1112131415161718 23 20 23 08 00000001 000000f6"
        // IDi
        "27 00 0012 02 000000 67772e6578616d706c65"
        // AUTH
        "21 00 0028 02 000000"
        "5555555555555555555555555555555555555555555555555555555555555555"
        // SA
        "2c 00 002c"
        "00 00 0028 01 03 04 03 deadbeef"
        "03 00 000c 01 00 000c 800e 0100"
        "03 00 0008 03 00 000c"
        "00 00 0008 05 00 0000"
        // TSi
        "2d 00 0040 02 000000"
        "07 00 0010 0000 ffff 00000000 ffffffff"
        "08 00 0028 0000 ffff"
        "00000000000000000000000000000000 ffffffffffffffffffffffffffffffff"
        // TSr
        "2a 00 0018 01 000000"
        "07 06 0010 01bb 01bb 0a000000 0a0000ff"
        // Delete
        "29 00 0010 03 04 0002 cafebabe 01020304"
        // Notify REKEY_SA
        "00 00 000c 03 04 4009 deadbeef"
    )
    .to_vec();
    let value = Message {
        header: Header::new(
            IkeSpi(hex!("0102030405060708")),
            IkeSpi(hex!("1112131415161718")),
            ExchangeType::IKE_AUTH,
            Flags::INITIATOR,
            1,
        ),
        payloads: vec![
            Payload::IdI(Identity::Fqdn("gw.example".into())),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: vec![0x55; 32],
            }),
            Payload::Sa(SaPayload {
                proposals: vec![WireProposal {
                    number: 1,
                    protocol: ProtocolId::ESP,
                    spi: hex!("deadbeef").to_vec(),
                    transforms: vec![
                        Transform::with_key_length(TransformType::ENCR, 12, 256),
                        Transform::new(TransformType::INTEG, 12),
                        Transform::new(TransformType::ESN, 0),
                    ],
                }],
            }),
            Payload::TsI(TrafficSelectors(vec![
                AddrRange::any_v4().into(),
                AddrRange::any_v6().into(),
            ])),
            Payload::TsR(TrafficSelectors(vec![TrafficSelector::Range(AddrRange {
                ip_protocol: 6,
                start_port: 443,
                end_port: 443,
                start: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
                end: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255)),
            })])),
            Payload::Delete(DeletePayload::esp(&[hex!("cafebabe"), hex!("01020304")])),
            Payload::Notify(NotifyPayload::rekey_sa(ProtocolId::ESP, hex!("deadbeef"))),
        ],
    };
    (bytes, value)
}

#[test]
fn fixture_ike_sa_init_both_ways() {
    let (bytes, value) = sa_init();
    check_both_ways(&bytes, &value);
    let Payload::Sa(sa) = &value.payloads[0] else {
        unreachable!()
    };
    assert_eq!(sa.proposals[0].transforms[0].key_length(), Some(128));
    assert_eq!(
        value
            .notify(NotifyType::NAT_DETECTION_SOURCE_IP)
            .map(|n| n.data.len()),
        Some(20)
    );
}

#[test]
fn fixture_ike_auth_content_both_ways() {
    let (bytes, value) = ike_auth_content();
    check_both_ways(&bytes, &value);
    let Payload::TsR(ts) = &value.payloads[4] else {
        unreachable!()
    };
    assert_eq!(ts.to_string(), "10.0.0.0/24[6/443]");
    let Payload::TsI(ts) = &value.payloads[3] else {
        unreachable!()
    };
    assert_eq!(ts.to_string(), "0.0.0.0/0, ::/0");
}

#[test]
fn header_fields_and_peek() {
    let (bytes, value) = sa_init();
    let raw = Header::peek(&bytes).unwrap();
    assert_eq!(raw.header, value.header);
    assert_eq!(raw.next_payload, PayloadType::SA);
    assert_eq!(raw.length as usize, bytes.len());
    assert!(raw.header.flags.is_initiator());
    assert!(!raw.header.flags.is_response());
    assert_eq!(format!("{:?}", Flags(0x28 | 0x01)), "Flags(I|R|0x01)");
}

fn malformed(e: &Error) -> &DecodeError {
    match e {
        Error::Malformed(d) => d,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn nothing_may_follow_or_be_missing() {
    let (mut bytes, _) = sa_init();
    // One byte more than the Length field says.
    bytes.push(0);
    let e = Message::decode(&bytes).unwrap_err();
    assert!(matches!(
        malformed(&e).kind,
        DecodeErrorKind::InvalidLength { .. }
    ));
    // Length field agrees, but the byte is not part of any payload.
    bytes[27] += 1;
    let e = Message::decode(&bytes).unwrap_err();
    assert_eq!(malformed(&e).offset, 182);
    // Truncated datagram.
    let (bytes, _) = sa_init();
    assert!(Message::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(Message::decode(&bytes[..27]).is_err());
    assert!(Message::decode(&[]).is_err());
    // Every strict prefix fails, none panics.
    for n in 0..bytes.len() {
        assert!(Message::decode(&bytes[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn major_version_is_checked() {
    let (mut bytes, _) = sa_init();
    bytes[17] = 0x30;
    let e = Message::decode(&bytes).unwrap_err();
    assert_eq!(e, Error::Unsupported(Unsupported::MajorVersion(3)));
    assert_eq!(
        e.notify().unwrap().notify_type,
        NotifyType::INVALID_MAJOR_VERSION
    );
    // The dispatcher can still read the header to answer.
    let raw = Header::peek(&bytes).unwrap();
    assert_eq!(raw.major_version, 3);
    assert_eq!(raw.header.spi_i, IkeSpi(hex!("0102030405060708")));
    bytes[17] = 0x10; // IKEv1: dropped, not answered
    let e = Message::decode(&bytes).unwrap_err();
    assert_eq!(e.notify(), None);
    // A minor version is kept and re-encoded.
    let (mut bytes, _) = sa_init();
    bytes[17] = 0x21;
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(m.header.minor_version, 1);
    assert_eq!(m.encode().unwrap(), bytes);
}

#[test]
fn nonce_length_bounds_with_offset() {
    let (bytes, mut value) = sa_init();
    value.payloads[2] = Payload::Nonce(Nonce::new(vec![0x22; 16]).unwrap());
    let ok = value.encode().unwrap();
    assert!(Message::decode(&ok).is_ok());
    // Shrink the nonce to 15 bytes by hand: payload length 0x13, message length -1.
    let mut short = ok.clone();
    let nonce_at = 28 + 40 + 40;
    short[nonce_at + 3] = 0x13;
    short.remove(nonce_at + 4);
    short[27] -= 1;
    let e = Message::decode(&short).unwrap_err();
    let d = malformed(&e);
    assert_eq!(d.offset, nonce_at + 4);
    assert!(matches!(
        d.kind,
        DecodeErrorKind::InvalidLength { length: 15, .. }
    ));
    assert_eq!(d.context, vec!["payloads", "Nonce"]);
    assert_eq!(e.notify().unwrap().notify_type, NotifyType::INVALID_SYNTAX);
    assert!(Nonce::new(vec![0; 257]).is_err());
    assert!(Nonce::new(vec![0; 256]).is_ok());
    drop(bytes);
}

#[test]
fn unknown_payloads_critical_and_not() {
    // Header, then an unknown payload type 99 (non-critical), then a Vendor ID.
    let base = hex!(
        "0102030405060708 0000000000000000 63 20 25 00 00000007 0000002a"
        "2b 00 0006 abcd"
        "00 00 0008 01020304"
    );
    let m = Message::decode(&base).unwrap();
    assert_eq!(
        m.payloads,
        vec![
            Payload::Unknown(UnknownPayload {
                payload_type: PayloadType(99),
                body: vec![0xab, 0xcd],
            }),
            Payload::VendorId(vec![1, 2, 3, 4]),
        ]
    );
    assert_eq!(m.encode().unwrap(), base);

    // The same with the critical bit: the whole message is rejected, naming the type.
    let mut crit = base;
    crit[29] = 0x80;
    let e = Message::decode(&crit).unwrap_err();
    assert_eq!(
        e,
        Error::Unsupported(Unsupported::CriticalPayload {
            payload_type: PayloadType(99),
            offset: 28,
        })
    );
    let n = e.notify().unwrap();
    assert_eq!(n.notify_type, NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD);
    assert_eq!(n.data, vec![99]);

    // The critical bit on a payload we understand is ignored (RFC 7296 §2.5) and sent as 0.
    let mut known = base;
    known[35] = 0x80;
    let m = Message::decode(&known).unwrap();
    assert_eq!(m.encode().unwrap(), base);
}

#[test]
fn encrypted_payload_must_be_last() {
    let ok = hex!(
        "0102030405060708 1112131415161718 2e 20 25 00 00000002 00000024"
        "29 00 0008 aabbccdd"
    );
    let m = Message::decode(&ok).unwrap();
    assert_eq!(
        m.payloads,
        vec![Payload::Encrypted(EncryptedPayload {
            first_inner: PayloadType::NOTIFY,
            body: hex!("aabbccdd").to_vec(),
        })]
    );
    assert_eq!(m.encode().unwrap(), ok);

    let bad = hex!(
        "0102030405060708 1112131415161718 2e 20 25 00 00000002 00000028"
        "29 00 0008 aabbccdd 00 00 0004"
    );
    assert!(Message::decode(&bad).is_err());

    let mut m = m;
    m.payloads.push(Payload::VendorId(vec![]));
    assert!(matches!(m.encode(), Err(Error::ApiMisuse(_))));
}

#[test]
fn sa_substructure_rules() {
    let (bytes, _) = sa_init();
    // Num Transforms says 4, three follow.
    let mut b = bytes.clone();
    b[28 + 4 + 7] = 4;
    let e = Message::decode(&b).unwrap_err();
    assert!(matches!(
        malformed(&e).kind,
        DecodeErrorKind::InvalidValue {
            what: "Num Transforms",
            ..
        }
    ));
    // Proposal Last Substruc must be 0 or 2.
    let mut b = bytes.clone();
    b[28 + 4] = 1;
    assert!(Message::decode(&b).is_err());
    // Last transform claims more follow.
    let mut b = bytes.clone();
    b[28 + 4 + 8 + 12 + 8] = 3;
    assert!(Message::decode(&b).is_err());
    // Transform length below its header.
    let mut b = bytes;
    b[28 + 4 + 8 + 3] = 3;
    assert!(Message::decode(&b).is_err());
}

#[test]
fn id_delete_and_ts_rules() {
    let (bytes, _) = ike_auth_content();
    // IDi of type IPv4 with 10 bytes of data.
    let mut b = bytes.clone();
    b[28 + 4] = 1;
    let e = Message::decode(&b).unwrap_err();
    assert!(matches!(
        malformed(&e).kind,
        DecodeErrorKind::InvalidLength { length: 10, .. }
    ));
    // Delete for ESP with SPI size 8.
    let del_at = 28 + 18 + 40 + 44 + 64 + 24;
    let mut b = bytes.clone();
    b[del_at + 5] = 8;
    assert!(Message::decode(&b).is_err());
    // TS count 3, two present.
    let ts_at = 28 + 18 + 40 + 44;
    let mut b = bytes;
    b[ts_at + 4] = 3;
    assert!(Message::decode(&b).is_err());
}

#[test]
fn identities() {
    for (id, ty) in [
        (
            Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            IdType::ID_IPV4_ADDR,
        ),
        (Identity::Ipv6(Ipv6Addr::LOCALHOST), IdType::ID_IPV6_ADDR),
        (Identity::Fqdn("vpn.example.com".into()), IdType::ID_FQDN),
        (Identity::KeyId(vec![1, 2, 3]), IdType::ID_KEY_ID),
        (
            Identity::Other {
                id_type: IdType::ID_RFC822_ADDR,
                data: b"a@example.com".to_vec(),
            },
            IdType::ID_RFC822_ADDR,
        ),
    ] {
        assert_eq!(id.id_type(), ty);
        let body = id.body();
        assert_eq!(body[0], ty.0);
        assert_eq!(&body[1..4], &[0, 0, 0]);
    }
    assert_eq!(Identity::KeyId(vec![0xab, 1]).to_string(), "keyid:ab01");
}

#[test]
fn notify_helpers() {
    let n = NotifyPayload::invalid_ke_payload(KeMethod::ECP384);
    assert_eq!(n.data, vec![0, 20]);
    assert_eq!(n.accepted_ke_method(), Some(KeMethod::ECP384));
    let mut bad = n.clone();
    bad.data.push(0);
    assert_eq!(bad.accepted_ke_method(), None);
    assert!(NotifyType::INVALID_KE_PAYLOAD.is_error());
    assert!(!NotifyType::COOKIE.is_error());
    assert_eq!(
        NotifyType(16430).to_string(),
        "IKEV2_FRAGMENTATION_SUPPORTED"
    );
    assert_eq!(NotifyType(60000).to_string(), "NotifyType(60000)");
}

#[test]
fn addr_range_prefixes() {
    let r = AddrRange::from_net("192.168.10.0/24".parse().unwrap());
    assert_eq!(r.to_string(), "192.168.10.0/24");
    let r = AddrRange {
        start: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        end: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
        ..AddrRange::any_v4()
    };
    assert_eq!(r.to_net(), None);
    assert_eq!(r.to_string(), "10.0.0.1..10.0.0.9");
    assert_eq!(AddrRange::any_v6().to_net(), Some("::/0".parse().unwrap()));
    let mixed = AddrRange {
        end: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ..AddrRange::any_v4()
    };
    let m = Message {
        header: Header::new(
            IkeSpi::ZERO,
            IkeSpi::ZERO,
            ExchangeType::IKE_AUTH,
            Flags(0),
            0,
        ),
        payloads: vec![Payload::TsI(TrafficSelectors(vec![mixed.into()]))],
    };
    assert!(matches!(m.encode(), Err(Error::ApiMisuse(_))));
}

#[test]
fn builder_encodes_in_the_clear() {
    let (bytes, value) = sa_init();
    let mut b = MessageBuilder::from_header(value.header);
    for p in value.payloads.clone() {
        b.push(p);
    }
    assert_eq!(b.encode().unwrap(), bytes);
    assert_eq!(b.into_message(), value);
}

// ---- property tests ----

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| Identity::Ipv4(a.into())),
        any::<[u8; 16]>().prop_map(|a| Identity::Ipv6(a.into())),
        "[a-z0-9.-]{0,40}".prop_map(Identity::Fqdn),
        bytes(40).prop_map(Identity::KeyId),
        (
            any::<u8>().prop_filter("modelled", |t| ![1, 2, 5, 11].contains(t)),
            bytes(40)
        )
            .prop_map(|(t, data)| Identity::Other {
                id_type: IdType(t),
                data
            }),
    ]
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(t, v)| Attribute {
            attr_type: AttributeType(t),
            value: AttributeValue::Tv(v)
        }),
        (0u16..0x8000, bytes(12)).prop_map(|(t, v)| Attribute {
            attr_type: AttributeType(t),
            value: AttributeValue::Tlv(v)
        }),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(attribute(), 0..3),
    )
        .prop_map(|(t, id, attributes)| Transform {
            transform_type: TransformType(t),
            id,
            attributes,
        })
}

fn sa() -> impl Strategy<Value = SaPayload> {
    prop::collection::vec(
        (
            any::<u8>(),
            any::<u8>(),
            bytes(9),
            prop::collection::vec(transform(), 0..6),
        )
            .prop_map(|(number, protocol, spi, transforms)| WireProposal {
                number,
                protocol: ProtocolId(protocol),
                spi,
                transforms,
            }),
        1..4,
    )
    .prop_map(|proposals| SaPayload { proposals })
}

fn traffic_selector() -> impl Strategy<Value = TrafficSelector> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(p, s, e, a, b)| TrafficSelector::Range(AddrRange {
                ip_protocol: p,
                start_port: s,
                end_port: e,
                start: IpAddr::V4(a.into()),
                end: IpAddr::V4(b.into()),
            })),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>()
        )
            .prop_map(|(p, s, e, a, b)| TrafficSelector::Range(AddrRange {
                ip_protocol: p,
                start_port: s,
                end_port: e,
                start: IpAddr::V6(a.into()),
                end: IpAddr::V6(b.into()),
            })),
        (
            any::<u8>().prop_filter("modelled", |t| *t != 7 && *t != 8),
            any::<u8>(),
            bytes(20)
        )
            .prop_map(|(t, second_octet, data)| TrafficSelector::Other {
                ts_type: TsType(t),
                second_octet,
                data
            }),
    ]
}

fn delete() -> impl Strategy<Value = DeletePayload> {
    prop_oneof![
        Just(DeletePayload::ike()),
        prop::collection::vec(any::<[u8; 4]>(), 0..4).prop_map(|s| DeletePayload::esp(&s)),
        (4u8..=255, 0u8..6, 0usize..4).prop_flat_map(|(protocol, spi_size, n)| {
            prop::collection::vec(bytes(1).prop_map(move |_| vec![7; spi_size.into()]), n).prop_map(
                move |spis| DeletePayload {
                    protocol: ProtocolId(protocol),
                    spi_size,
                    spis,
                },
            )
        }),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        sa().prop_map(Payload::Sa),
        (any::<u16>(), bytes(64)).prop_map(|(m, data)| Payload::Ke(KePayload {
            method: KeMethod(m),
            data
        })),
        identity().prop_map(Payload::IdI),
        identity().prop_map(Payload::IdR),
        (any::<u8>(), bytes(30)).prop_map(|(e, data)| Payload::Cert(CertPayload {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(30)).prop_map(|(e, data)| Payload::CertReq(CertPayload {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(64)).prop_map(|(m, data)| Payload::Auth(AuthPayload {
            method: AuthMethod(m),
            data
        })),
        prop::collection::vec(any::<u8>(), 16..=256)
            .prop_map(|n| Payload::Nonce(Nonce::new(n).unwrap())),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(40)).prop_map(|(p, spi, t, data)| {
            Payload::Notify(NotifyPayload {
                protocol: ProtocolId(p),
                spi,
                notify_type: NotifyType(t),
                data,
            })
        }),
        delete().prop_map(Payload::Delete),
        bytes(30).prop_map(Payload::VendorId),
        prop::collection::vec(traffic_selector(), 0..4)
            .prop_map(|t| Payload::TsI(TrafficSelectors(t))),
        prop::collection::vec(traffic_selector(), 0..4)
            .prop_map(|t| Payload::TsR(TrafficSelectors(t))),
        (
            any::<u8>().prop_filter("modelled", |t| *t != 0
                && !(33..=46).contains(t)
                && *t != 53),
            bytes(30)
        )
            .prop_map(|(t, body)| Payload::Unknown(UnknownPayload {
                payload_type: PayloadType(t),
                body
            })),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(payload(), 0..6),
        prop::option::of((any::<u8>(), bytes(48))),
    )
        .prop_map(
            |(i, r, minor, exchange, flags, message_id, mut payloads, sk)| {
                if let Some((first, body)) = sk {
                    payloads.push(Payload::Encrypted(EncryptedPayload {
                        first_inner: PayloadType(first),
                        body,
                    }));
                }
                Message {
                    header: Header {
                        spi_i: IkeSpi(i),
                        spi_r: IkeSpi(r),
                        minor_version: minor,
                        exchange: ExchangeType(exchange),
                        flags: Flags(flags),
                        message_id,
                    },
                    payloads,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_messages_round_trip(m in message()) {
        let bytes = m.encode().unwrap();
        let back = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    #[test]
    fn random_bytes_never_panic(data in bytes(400)) {
        ike::fuzzing::decode_message(&data);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        first in any::<u8>(), body in bytes(300)
    ) {
        let mut data = hex!("0102030405060708 1112131415161718 00 20 25 00 00000001").to_vec();
        data[16] = first;
        data.extend_from_slice(&((28 + body.len()) as u32).to_be_bytes());
        data.extend_from_slice(&body);
        ike::fuzzing::decode_message(&data);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        let (mut data, _) = if which { sa_init() } else { ike_auth_content() };
        for (i, v) in flips {
            let at = i.index(data.len());
            data[at] = v;
        }
        ike::fuzzing::decode_message(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random plaintexts behind a valid ICV: the inner parser never panics, and what opens
    /// seals and opens again identically.
    #[test]
    fn random_plaintext_behind_the_icv(data in bytes(200)) {
        ike::fuzzing::open_sealed(&data);
    }

    /// The same with plaintexts that are real payload chains (so parsing goes deep).
    #[test]
    fn generated_plaintext_behind_the_icv(
        suite in any::<u8>(), payloads in prop::collection::vec(payload(), 0..4), pad in 0u8..20
    ) {
        let m = Message {
            header: Header::new(IkeSpi::ZERO, IkeSpi::ZERO, ExchangeType::INFORMATIONAL, Flags(0), 0),
            payloads,
        };
        let bytes = m.encode().unwrap();
        let first = bytes[16];
        let mut data = vec![suite, first];
        data.extend_from_slice(&bytes[28..]);
        data.extend(std::iter::repeat_n(0, pad.into()));
        data.push(pad);
        ike::fuzzing::open_sealed(&data);
    }
}

#[test]
fn proposal_strings_round_trip_through_the_fuzz_entry() {
    for s in [
        "aes128gcm16-prfsha256-x25519",
        "aes256-sha256",
        "aes128-esn-sha384-noesn",
        "x",
    ] {
        ike::fuzzing::parse_proposal(s.as_bytes());
    }
}
