//! Error notifies on the wire (RFC 7296 §1.5, §2.5, §2.21): what a peer receives when it
//! sends a malformed or unexpected message, decoded from the datagrams, and whether the
//! IKE SA survives it.
//!
//! Authentic but malformed messages are made with `ike::fuzzing::forge`, which seals any
//! plaintext under an endpoint's own keys: random bytes never pass the ICV.

#[path = "fsm/util.rs"]
mod util;

use std::time::Duration;

use ike::packet::iana::{ExchangeType, NotifyType, PayloadType};
use ike::packet::{Message, NotifyPayload, Payload};
use ike::{ChildSaSignal, ConnId, DownReason, SaState, Transmit};
use util::*;

const GCM: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");

fn established() -> (Pair, ConnId, ConnId) {
    let mut p = Pair::new(7);
    let (ca, cb) = setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    p.run(Duration::from_secs(2));
    assert_eq!(p.ike_up(Side::A), 1);
    assert_eq!(p.ike_up(Side::B), 1);
    (p, ca, cb)
}

/// Delivers `data` to B as if from A and returns what B sends at once (not yet delivered).
fn to_b(p: &mut Pair, data: &[u8]) -> Vec<Transmit> {
    let now = p.now;
    p.b.handle_datagram(now, sa(B_IP, 500), sa(A_IP, 500), data);
    std::iter::from_fn(|| p.b.poll_transmit()).collect()
}

/// The one Notify of a protected response from B, opened with A's keys.
fn sole_notify(
    p: &Pair,
    ca: ConnId,
    t: &Transmit,
    exchange: ExchangeType,
    id: u32,
) -> NotifyPayload {
    let d = ike::fuzzing::open(&p.a, ca, &t.payload)
        .expect("A has the SA")
        .expect("B's answer is protected under the IKE SA");
    assert!(d.header.flags.is_response(), "an answer, never a request");
    assert!(
        !d.header.flags.is_initiator(),
        "B is the original responder"
    );
    assert_eq!(d.header.exchange, exchange);
    assert_eq!(d.header.message_id, id);
    match d.payloads.as_slice() {
        [Payload::Notify(n)] => n.clone(),
        other => panic!("expected exactly one Notify, got {other:?}"),
    }
}

/// Both sides still have exactly the one IKE SA, nobody reported it down, and a child
/// rekey goes through it.
fn assert_sa_survives(p: &mut Pair) {
    p.run(Duration::from_secs(5));
    assert!(p.ike_down(Side::A).is_empty(), "{:?}", p.ike_down(Side::A));
    assert!(p.ike_down(Side::B).is_empty(), "{:?}", p.ike_down(Side::B));
    for ep in [&p.a, &p.b] {
        let up: Vec<_> = ep
            .sas()
            .filter(|s| s.state == SaState::Established)
            .collect();
        assert_eq!(up.len(), 1);
    }
    let spi = p.live_children(Side::A)[0];
    let now = p.now;
    p.a.handle_child_event(now, spi, ChildSaSignal::SoftLimit);
    p.run(Duration::from_secs(5));
    assert_eq!(p.live_children(Side::A).len(), 1);
    assert_ne!(p.live_children(Side::A)[0], spi, "rekeyed");
    assert_child_pair(p, p.live_children(Side::A)[0]);
}

fn header_of(t: &Transmit) -> ike::packet::RawHeader {
    ike::packet::Header::peek(&t.payload).unwrap()
}

// ---------------------------------------------------------------- gap 1: INVALID_SYNTAX

#[test]
fn malformed_authenticated_request_gets_invalid_syntax_and_the_sa_survives() {
    let (mut p, ca, _) = established();
    // An INFORMATIONAL whose inner Notify claims a length of 3 (< its 4-byte header).
    let plain = [0u8, 0, 0, 3, /* Pad Length */ 0];
    let bad = ike::fuzzing::forge(
        &mut p.a,
        ca,
        ExchangeType::INFORMATIONAL,
        false,
        None,
        PayloadType::NOTIFY,
        &plain,
    )
    .unwrap();
    let id = header_of(&Transmit {
        local: sa(A_IP, 500),
        remote: sa(B_IP, 500),
        non_esp_marker: false,
        payload: bad.clone(),
    })
    .header
    .message_id;
    let out = to_b(&mut p, &bad);
    assert_eq!(out.len(), 1);
    let n = sole_notify(&p, ca, &out[0], ExchangeType::INFORMATIONAL, id);
    assert_eq!(n.notify_type, NotifyType::INVALID_SYNTAX);
    assert!(n.data.is_empty());
    assert_eq!(p.b.stats().invalid_syntax_sent, 1);
    assert_eq!(p.b.stats().error_notifies_sent, 1);

    // A retransmission gets the same answer from the cache (RFC 7296 §2.1).
    let again = to_b(&mut p, &bad);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].payload, out[0].payload);
    assert_eq!(p.b.stats().invalid_syntax_sent, 1);

    // A tampered copy is still dropped silently: no ICV, no answer (§2.21).
    let mut forged = bad.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(to_b(&mut p, &forged).is_empty());
    assert_eq!(p.b.stats().dropped_integrity, 1);

    assert_sa_survives(&mut p);
}

#[test]
fn request_missing_required_payloads_gets_invalid_syntax_and_the_sa_survives() {
    let (mut p, ca, _) = established();
    // CREATE_CHILD_SA without SA and Nonce (RFC 7296 §1.3): nothing inside at all.
    let empty = [0u8];
    let req = ike::fuzzing::forge(
        &mut p.a,
        ca,
        ExchangeType::CREATE_CHILD_SA,
        false,
        None,
        PayloadType::NONE,
        &empty,
    )
    .unwrap();
    let id = ike::packet::Header::peek(&req).unwrap().header.message_id;
    let out = to_b(&mut p, &req);
    assert_eq!(out.len(), 1);
    let n = sole_notify(&p, ca, &out[0], ExchangeType::CREATE_CHILD_SA, id);
    assert_eq!(n.notify_type, NotifyType::INVALID_SYNTAX);

    // An exchange that is not valid once established (IKE_AUTH again): answered too
    // (§2.21.3: every request with an error gets a response).
    let req = ike::fuzzing::forge(
        &mut p.a,
        ca,
        ExchangeType::IKE_AUTH,
        false,
        None,
        PayloadType::NONE,
        &empty,
    )
    .unwrap();
    let out = to_b(&mut p, &req);
    assert_eq!(out.len(), 1);
    let n = sole_notify(&p, ca, &out[0], ExchangeType::IKE_AUTH, id + 1);
    assert_eq!(n.notify_type, NotifyType::INVALID_SYNTAX);
    assert_eq!(p.b.stats().invalid_syntax_sent, 2);

    assert_sa_survives(&mut p);
}

#[test]
fn malformed_ike_auth_request_is_rejected_and_the_sa_never_comes_up() {
    let mut p = Pair::new(8);
    // Hold back A's IKE_AUTH request: a malformed one with its message ID goes instead.
    p.filter = Some(Box::new(|from, t, _| {
        let h = ike::packet::Header::peek(&t.payload).unwrap().header;
        from == Side::A && h.exchange == ExchangeType::IKE_AUTH && !h.flags.is_response()
    }));
    let (ca, _) = setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    p.run(Duration::from_millis(50));
    p.filter = None;
    let plain = [0u8, 0, 0, 3, 0];
    let bad = ike::fuzzing::forge(
        &mut p.a,
        ca,
        ExchangeType::IKE_AUTH,
        false,
        Some(1),
        PayloadType::IDI,
        &plain,
    )
    .unwrap();
    let out = to_b(&mut p, &bad);
    assert_eq!(out.len(), 1);
    // A is not established yet, so read the answer as A does: A fails on it.
    assert!(header_of(&out[0]).header.flags.is_response());
    assert_eq!(p.b.stats().invalid_syntax_sent, 1);
    assert_eq!(
        p.ike_down(Side::B),
        Vec::<DownReason>::new(),
        "events not yet drained"
    );
    let now = p.now;
    p.a.handle_datagram(now, sa(A_IP, 500), sa(B_IP, 500), &out[0].payload);
    p.run(Duration::from_secs(1));
    assert_eq!(p.ike_up(Side::B), 0);
    assert_eq!(
        p.ike_down(Side::B),
        vec![DownReason::Protocol("INVALID_SYNTAX".into())]
    );
    assert_eq!(
        p.ike_down(Side::A),
        vec![DownReason::Protocol("INVALID_SYNTAX".into())]
    );
}

#[test]
fn malformed_authenticated_response_is_never_answered() {
    let (mut p, _, cb) = established();
    // A rekeys its child; B's genuine response is lost and a malformed one arrives.
    p.filter = Some(Box::new(|from, t, _| {
        let h = ike::packet::Header::peek(&t.payload).unwrap().header;
        from == Side::B && h.exchange == ExchangeType::CREATE_CHILD_SA && h.flags.is_response()
    }));
    let spi = p.live_children(Side::A)[0];
    let now = p.now;
    p.a.handle_child_event(now, spi, ChildSaSignal::SoftLimit);
    p.run(Duration::from_millis(50));
    p.filter = None;
    let req = p
        .sent
        .iter()
        .rev()
        .find(|s| s.from == Side::A)
        .map(|s| header_of(&s.t).header)
        .unwrap();
    assert_eq!(req.exchange, ExchangeType::CREATE_CHILD_SA);
    let bad = ike::fuzzing::forge(
        &mut p.b,
        cb,
        ExchangeType::CREATE_CHILD_SA,
        true,
        Some(req.message_id),
        PayloadType::SA,
        &[0, 0, 0, 3, 0],
    )
    .unwrap();
    let now = p.now;
    p.a.handle_datagram(now, sa(A_IP, 500), sa(B_IP, 500), &bad);
    let out: Vec<Transmit> = std::iter::from_fn(|| p.a.poll_transmit()).collect();
    assert_eq!(p.a.stats().malformed_responses, 1);
    assert_eq!(p.a.stats().error_notifies_sent, 0);
    // Nothing answers the response; what A sends is a new request: the DELETE of the IKE
    // SA whose state the peers no longer share (RFC 7296 §2.21, §2.21.3).
    assert_eq!(out.len(), 1);
    let d = ike::fuzzing::open(&p.b, cb, &out[0].payload)
        .unwrap()
        .unwrap();
    assert!(!d.header.flags.is_response());
    assert_eq!(d.header.exchange, ExchangeType::INFORMATIONAL);
    assert!(matches!(d.payloads.as_slice(), [Payload::Delete(_)]));
    let now = p.now;
    p.b.handle_datagram(now, sa(B_IP, 500), sa(A_IP, 500), &out[0].payload);
    p.run(Duration::from_secs(1));
    assert_eq!(
        p.ike_down(Side::A),
        vec![DownReason::Protocol(
            "malformed CREATE_CHILD_SA response".into()
        )]
    );
    assert_eq!(p.ike_down(Side::B), vec![DownReason::DeletedByPeer]);
    assert_eq!(p.a.sas().count(), 0);
}

// ---------------------------------------------------------------- gap 4: critical payloads

#[test]
fn unsupported_critical_payload_in_authenticated_request() {
    let (mut p, ca, _) = established();
    // Private-use payload type 200 with the critical bit set (RFC 7296 §2.5, §3.2).
    let plain = [0u8, 0x80, 0, 8, 0xde, 0xad, 0xbe, 0xef, 0];
    let req = ike::fuzzing::forge(
        &mut p.a,
        ca,
        ExchangeType::INFORMATIONAL,
        false,
        None,
        PayloadType(200),
        &plain,
    )
    .unwrap();
    let id = ike::packet::Header::peek(&req).unwrap().header.message_id;
    let out = to_b(&mut p, &req);
    assert_eq!(out.len(), 1);
    let n = sole_notify(&p, ca, &out[0], ExchangeType::INFORMATIONAL, id);
    assert_eq!(n.notify_type, NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD);
    assert_eq!(n.data, vec![200], "the one-octet payload type (§3.10.1)");
    assert_eq!(p.b.stats().unsupported_critical_sent, 1);

    // Without the critical bit the payload is skipped and the request processed.
    let plain = [0u8, 0x00, 0, 8, 0xde, 0xad, 0xbe, 0xef, 0];
    let req = ike::fuzzing::forge(
        &mut p.a,
        ca,
        ExchangeType::INFORMATIONAL,
        false,
        None,
        PayloadType(200),
        &plain,
    )
    .unwrap();
    let out = to_b(&mut p, &req);
    assert_eq!(out.len(), 1);
    let d = ike::fuzzing::open(&p.a, ca, &out[0].payload)
        .unwrap()
        .unwrap();
    assert!(d.payloads.is_empty(), "{:?}", d.payloads);
    assert_eq!(p.b.stats().error_notifies_sent, 1);

    assert_sa_survives(&mut p);
}

#[test]
fn unsupported_critical_payload_in_ike_sa_init() {
    let mut p = Pair::new(9);
    setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    let mut m = raw_header([1; 8], [0; 8], 200, 0x20, 34, 0x08, 0);
    m.extend([0, 0x80, 0, 8, 1, 2, 3, 4]);
    fix_len(&mut m);
    let out = to_b(&mut p, &m);
    assert_eq!(out.len(), 1);
    let r = Message::decode(&out[0].payload).unwrap();
    assert!(r.header.flags.is_response());
    let n = r.notify(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD).unwrap();
    assert_eq!(n.data, vec![200]);
}

// ---------------------------------------------------------------- gap 2: INVALID_IKE_SPI

fn raw_header(
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    next: u8,
    version: u8,
    exchange: u8,
    flags: u8,
    id: u32,
) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(spi_i);
    m.extend(spi_r);
    m.extend([next, version, exchange, flags]);
    m.extend(id.to_be_bytes());
    m.extend([0; 4]);
    m
}

fn fix_len(m: &mut [u8]) {
    let len = (m.len() as u32).to_be_bytes();
    m[24..28].copy_from_slice(&len);
}

/// An encrypted-looking INFORMATIONAL request (SK payload of junk) for SPIs B never had.
fn stray_request(flags: u8) -> Vec<u8> {
    let mut m = raw_header([0xaa; 8], [0xbb; 8], 46, 0x20, 37, flags, 5);
    m.extend([0, 0, 0, 24]);
    m.extend([0x55; 20]);
    fix_len(&mut m);
    m
}

#[test]
fn request_for_unknown_spi_gets_rate_limited_invalid_ike_spi() {
    let (mut p, _, _) = established();
    let out = to_b(&mut p, &stray_request(0x08));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].remote, sa(A_IP, 500), "back to where it came from");
    let r = Message::decode(&out[0].payload).expect("unprotected, version 2");
    assert_eq!(r.header.spi_i.0, [0xaa; 8], "the request's SPIs (§1.5)");
    assert_eq!(r.header.spi_r.0, [0xbb; 8]);
    assert_eq!(r.header.exchange, ExchangeType::INFORMATIONAL);
    assert_eq!(r.header.message_id, 5);
    assert!(r.header.flags.is_response());
    assert!(
        !r.header.flags.is_initiator(),
        "we answer the original initiator"
    );
    match r.payloads.as_slice() {
        [Payload::Notify(n)] => {
            assert_eq!(n.notify_type, NotifyType::INVALID_IKE_SPI);
            assert!(n.data.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.b.stats().invalid_ike_spi_sent, 1);

    // At most one per peer address per second (§2.21.4).
    assert!(to_b(&mut p, &stray_request(0x08)).is_empty());
    assert!(to_b(&mut p, &stray_request(0x00)).is_empty());
    assert_eq!(p.b.stats().rate_limited_notifies, 2);
    let now = p.now;
    let other = sa("192.0.2.77".parse().unwrap(), 500);
    p.b.handle_datagram(now, sa(B_IP, 500), other, &stray_request(0x08));
    let t =
        p.b.poll_transmit()
            .expect("another address has its own budget");
    assert_eq!(t.remote, other);
    p.run(Duration::from_millis(1000));
    let out = to_b(&mut p, &stray_request(0x00));
    assert_eq!(out.len(), 1, "a second later it is answered again");
    let r = Message::decode(&out[0].payload).unwrap();
    assert!(
        r.header.flags.is_initiator(),
        "the sender was the original responder"
    );
    assert_eq!(p.b.stats().invalid_ike_spi_sent, 3);

    // Never for a response, an IKE_SA_INIT, or an unencrypted message.
    p.run(Duration::from_secs(2));
    assert!(to_b(&mut p, &stray_request(0x20 | 0x08)).is_empty());
    let mut init = raw_header([0xaa; 8], [0xbb; 8], 33, 0x20, 34, 0x08, 0);
    init.extend([0, 0, 0, 4]);
    fix_len(&mut init);
    assert!(to_b(&mut p, &init).is_empty());
    let mut clear = raw_header([0xaa; 8], [0xbb; 8], 41, 0x20, 37, 0x08, 5);
    clear.extend([0, 0, 0, 8, 0, 0, 0, 16]);
    fix_len(&mut clear);
    assert!(to_b(&mut p, &clear).is_empty());
    assert_eq!(p.b.stats().invalid_ike_spi_sent, 3);

    assert_sa_survives(&mut p);
}

// ---------------------------------------------------------------- gap 3: major version

#[test]
fn higher_major_version_gets_invalid_major_version() {
    let (mut p, _, _) = established();
    let v3 = |flags| {
        let mut m = raw_header([0xcc; 8], [0; 8], 33, 0x30, 34, flags, 0);
        m.extend([0, 0, 0, 4]);
        fix_len(&mut m);
        m
    };
    let out = to_b(&mut p, &v3(0x08));
    assert_eq!(out.len(), 1);
    // Our highest version is in the header (§2.5, §3.10.1), which is why it decodes.
    let r = Message::decode(&out[0].payload).expect("a version 2 message");
    assert_eq!(
        ike::packet::Header::peek(&out[0].payload)
            .unwrap()
            .major_version,
        2
    );
    assert!(r.header.flags.is_response());
    assert_eq!(r.header.spi_i.0, [0xcc; 8]);
    assert_eq!(r.header.exchange, ExchangeType::IKE_SA_INIT);
    match r.payloads.as_slice() {
        [Payload::Notify(n)] => {
            assert_eq!(n.notify_type, NotifyType::INVALID_MAJOR_VERSION);
            assert!(n.data.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.b.stats().invalid_major_version_sent, 1);
    // Rate-limited, never for responses, never for IKEv1.
    assert!(to_b(&mut p, &v3(0x08)).is_empty());
    p.run(Duration::from_secs(2));
    assert!(to_b(&mut p, &v3(0x20)).is_empty());
    let mut v1 = v3(0x08);
    v1[17] = 0x10;
    assert!(to_b(&mut p, &v1).is_empty());
    assert_eq!(p.b.stats().invalid_major_version_sent, 1);

    assert_sa_survives(&mut p);
}
