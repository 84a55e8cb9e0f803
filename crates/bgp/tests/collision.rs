//! Connection collision detection (RFC 4271 §6.8): a session with a second connection to the
//! same peer keeps the one opened by the speaker with the higher BGP Identifier and sends
//! Cease / Connection Collision Resolution (subcode 7) on the other. Scripted peers on the
//! session alone, then two speakers that connect to each other at the same moment.

use std::{collections::VecDeque, net::SocketAddr};

use bgp::{
    neighbor::{Direction, Output},
    packet::{
        iana::{cease, ErrorCode, Family},
        message::{Capability, Message, Notification, Open},
        DecodeCxt, EncodeCxt,
    },
    Event, Input, PeerConfig, PeerId, Session, Speaker, SpeakerConfig, State,
};

const ME: &str = "10.0.0.2";

fn session(router_id: &str) -> Session {
    let c = PeerConfig::new("peer", "10.0.0.1".parse().unwrap(), 65001);
    Session::new(65002, router_id.parse().unwrap(), c)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The peer's connection to us.
fn incoming() -> Input {
    Input::TcpConnected {
        local: sa("10.0.0.2:179"),
        remote: sa("10.0.0.1:40000"),
        direction: Direction::Passive,
    }
}

/// Our connection to the peer.
fn outgoing() -> Input {
    Input::TcpConnected {
        local: sa("10.0.0.2:40001"),
        remote: sa("10.0.0.1:179"),
        direction: Direction::Active,
    }
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_bytes(&EncodeCxt {
        four_octet_as: true,
    })
    .unwrap()
}

fn open_from(asn: u32, id: &str) -> Vec<u8> {
    bytes(&Message::Open(Open::new(
        asn,
        90,
        id.parse().unwrap(),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    )))
}

fn decode(b: &[u8]) -> Message {
    Message::decode(b, &DecodeCxt::default()).unwrap()
}

/// Messages written to the session's connection.
fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(decode(b)),
            _ => None,
        })
        .collect()
}

/// Messages written to the collision connection.
fn sent_collision(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::CollisionSend(b) => Some(decode(b)),
            _ => None,
        })
        .collect()
}

/// Whether written bytes are a Cease/7 (UPDATE batches hold several messages: not one).
fn is_cease_bytes(b: &[u8]) -> bool {
    Message::decode(b, &DecodeCxt::default()).is_ok_and(|m| is_collision_cease(&m))
}

fn is_collision_cease(m: &Message) -> bool {
    matches!(m, Message::Notification(n)
        if n.code == ErrorCode::CEASE && n.subcode == cease::CONNECTION_COLLISION_RESOLUTION)
}

/// Started, with the peer's connection taken first (OpenSent) and ours completing second.
fn colliding(router_id: &str) -> Session {
    let mut s = session(router_id);
    s.process(Input::ManualStart);
    assert_eq!(s.state(), State::Connect);
    s.process(incoming());
    assert_eq!(s.state(), State::OpenSent);
    assert!(s.accepts_collision());
    let out = s.process(outgoing());
    // Our OPEN goes out on the second connection too: the peer's answer there settles it.
    assert!(matches!(sent_collision(&out)[..], [Message::Open(_)]));
    assert!(!s.accepts_collision(), "one collision at a time");
    assert_eq!(s.state(), State::OpenSent);
    s
}

#[test]
fn higher_identifier_keeps_the_connection_it_opened() {
    // 10.0.0.2 > 10.0.0.1: ours (the collision connection, Active) survives.
    let mut s = colliding(ME);
    let out = s.process(Input::Received(open_from(65001, "10.0.0.1")));
    let msgs = sent(&out);
    assert!(is_collision_cease(&msgs[0]), "{msgs:?}");
    let close = out.iter().position(|o| *o == Output::Close).unwrap();
    let won = out.iter().position(|o| *o == Output::CollisionWon).unwrap();
    assert!(
        close < won,
        "the old connection closes before the swap: {out:?}"
    );
    // The peer's OPEN on the kept connection is still to come.
    assert_eq!(s.state(), State::OpenSent);
    assert!(s.negotiated().is_none());
    let out = s.process(Input::Received(open_from(65001, "10.0.0.1")));
    assert!(matches!(sent(&out)[..], [Message::Keepalive]));
    assert_eq!(s.state(), State::OpenConfirm);
    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert!(out.contains(&Output::Established));
    assert_eq!(
        s.negotiated().unwrap().local_addr,
        sa("10.0.0.2:40001").ip()
    );
}

#[test]
fn lower_identifier_keeps_the_peers_connection() {
    // The peer's 10.0.0.9 is higher: its connection (ours passive) survives; the OPEN on the
    // collision connection settles it.
    let mut s = colliding(ME);
    let out = s.process(Input::CollisionReceived(open_from(65001, "10.0.0.9")));
    let msgs = sent_collision(&out);
    assert!(is_collision_cease(&msgs[0]), "{msgs:?}");
    assert!(out.contains(&Output::CollisionClose));
    assert!(!out.contains(&Output::Close));
    assert!(sent(&out).is_empty());
    assert_eq!(s.state(), State::OpenSent);
    assert!(s.accepts_collision());
    s.process(Input::Received(open_from(65001, "10.0.0.9")));
    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert!(out.contains(&Output::Established));
}

#[test]
fn resolved_in_open_confirm_on_the_collisions_open() {
    // Ours (Active) reached OpenConfirm; the peer connects too. We are higher: ours stays.
    let mut s = session(ME);
    s.process(Input::ManualStart);
    s.process(outgoing());
    s.process(Input::Received(open_from(65001, "10.0.0.1")));
    assert_eq!(s.state(), State::OpenConfirm);
    let out = s.process(incoming());
    assert!(matches!(sent_collision(&out)[..], [Message::Open(_)]));
    let out = s.process(Input::CollisionReceived(open_from(65001, "10.0.0.1")));
    assert!(is_collision_cease(&sent_collision(&out)[0]));
    assert!(out.contains(&Output::CollisionClose));
    assert_eq!(s.state(), State::OpenConfirm);
    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert!(out.contains(&Output::Established));
}

#[test]
fn open_confirm_gives_way_when_the_peers_connection_wins() {
    // Ours (Active) in OpenConfirm, the peer (higher) connects: its connection wins, and the
    // OPEN that came on it is processed at once.
    let mut s = session(ME);
    s.process(Input::ManualStart);
    s.process(outgoing());
    s.process(Input::Received(open_from(65001, "10.0.0.9")));
    s.process(incoming());
    let out = s.process(Input::CollisionReceived(open_from(65001, "10.0.0.9")));
    assert!(is_collision_cease(&sent(&out)[0]));
    assert!(out.contains(&Output::CollisionWon));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(s.negotiated().unwrap().local_addr, sa("10.0.0.2:179").ip());
    // Only the KEEPALIVE answering the OPEN went on the new connection.
    let won = out.iter().position(|o| *o == Output::CollisionWon).unwrap();
    assert!(matches!(sent(&out[won..])[..], [Message::Keepalive]));
}

#[test]
fn peer_resolving_first_hands_the_session_to_the_other_connection() {
    // The peer closed our connection with Cease/7 before its OPEN reached us on the other.
    let mut s = colliding(ME);
    let n = Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION);
    let out = s.process(Input::Received(bytes(&Message::Notification(n))));
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::CollisionWon));
    assert!(!out.iter().any(|o| matches!(o, Output::Down(_))));
    assert_eq!(s.state(), State::OpenSent);
    // A plain TCP failure of the old one does the same.
    let mut s = colliding(ME);
    let out = s.process(Input::TcpFailed);
    assert!(out.contains(&Output::CollisionWon));
    s.process(Input::Received(open_from(65001, "10.0.0.1")));
    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert!(out.contains(&Output::Established));
}

#[test]
fn established_closes_the_pending_collision_and_refuses_new_ones() {
    let mut s = colliding(ME);
    s.process(Input::CollisionFailed);
    assert!(s.accepts_collision());
    s.process(outgoing());
    // The peer (lower) answers on the connection it opened before we see our own answered;
    // RFC 4271 §6.8 resolves on that OPEN: ours wins.
    let mut s2 = colliding("10.0.0.1");
    // Equal identifiers (legal between ASes, RFC 6286): the larger AS keeps its own
    // connection; the peer's 65001 < our 65002, so ours (the collision) wins.
    let out = s2.process(Input::Received(open_from(65001, "10.0.0.1")));
    assert!(out.contains(&Output::CollisionWon));
    // Lower identifier: the peer's connection is kept and reaches Established; the pending
    // collision then closes with Cease/7.
    let mut s3 = colliding("10.0.0.1");
    s3.process(Input::Received(open_from(65001, "10.0.0.200")));
    assert!(!s3.accepts_connection());
    assert!(s3.accepts_collision(), "the collision went with the OPEN");
    s3.process(outgoing());
    let out = s3.process(Input::Received(bytes(&Message::Keepalive)));
    assert!(out.contains(&Output::Established));
    assert!(is_collision_cease(&sent_collision(&out)[0]));
    assert!(out.contains(&Output::CollisionClose));
    assert!(!s3.accepts_collision());
    assert!(!s3.accepts_connection());
}

#[test]
fn garbage_on_the_collision_connection_ends_it_alone() {
    let mut s = colliding(ME);
    let out = s.process(Input::CollisionReceived(vec![0u8; 19]));
    let msgs = sent_collision(&out);
    assert!(
        matches!(&msgs[..], [Message::Notification(n)] if n.code == ErrorCode::MESSAGE_HEADER),
        "{msgs:?}"
    );
    assert!(out.contains(&Output::CollisionClose));
    assert_eq!(s.state(), State::OpenSent);
    // A KEEPALIVE before its OPEN: an FSM error, on that connection only.
    s.process(outgoing());
    let out = s.process(Input::CollisionReceived(bytes(&Message::Keepalive)));
    let msgs = sent_collision(&out);
    assert!(
        matches!(&msgs[..], [Message::Notification(n)] if n.code == ErrorCode::FSM),
        "{msgs:?}"
    );
    assert_eq!(s.state(), State::OpenSent);
    // Input for a collision connection that is gone is ignored.
    assert!(s
        .process(Input::CollisionReceived(open_from(65001, "10.0.0.1")))
        .is_empty());
    assert!(s.process(Input::CollisionFailed).is_empty());
}

#[test]
fn going_idle_closes_the_collision_too() {
    let mut s = colliding(ME);
    let out = s.process(Input::ManualStop);
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::CollisionClose));
    assert_eq!(s.state(), State::Idle);
    let mut s = colliding(ME);
    let out = s.process(Input::TransportDown);
    assert!(out.contains(&Output::CollisionClose));
}

// -- two speakers connecting to each other at once ------------------------------------------

/// One side's view of its connections: which wire is the session's, which the collision's.
#[derive(Default)]
struct Ends {
    primary: Option<usize>,
    collision: Option<usize>,
}

/// Two speakers, each opening a connection to the other at the same moment; wires carry
/// bytes in order. Returns the wire both kept, and the Cease/7 count.
fn simultaneous_open(id_a: &str, id_b: &str) -> (usize, usize, [Speaker; 2]) {
    let addrs = ["10.0.0.1", "10.0.0.2"];
    let ids = [id_a, id_b];
    let mut sp: Vec<Speaker> = (0..2)
        .map(|i| {
            let mut s = Speaker::new(SpeakerConfig {
                asn: 65001 + i as u32,
                router_id: ids[i].parse().unwrap(),
            })
            .unwrap();
            let mut c = PeerConfig::new("peer", addrs[1 - i].parse().unwrap(), 65002 - i as u32);
            c.import = bgp::policy::ImportPolicy::permit_all();
            c.export = bgp::policy::ExportPolicy::permit_all();
            s.add_peer(c).unwrap();
            s
        })
        .collect();
    let p = PeerId(0);
    let mut ends = [Ends::default(), Ends::default()];
    // (to side, wire, what): Some(bytes) or None for a close.
    let mut q: VecDeque<(usize, usize, Option<Vec<u8>>)> = VecDeque::new();
    let mut ceases = 0;
    let mut route = |side: usize,
                     out: Vec<bgp::Output>,
                     ends: &mut [Ends; 2],
                     q: &mut VecDeque<(usize, usize, Option<Vec<u8>>)>| {
        for o in out {
            let e = &mut ends[side];
            match o {
                bgp::Output::Send { bytes, .. } => {
                    if is_cease_bytes(&bytes) {
                        ceases += 1;
                    }
                    q.push_back((1 - side, e.primary.unwrap(), Some(bytes)));
                }
                bgp::Output::CollisionSend { bytes, .. } => {
                    if is_cease_bytes(&bytes) {
                        ceases += 1;
                    }
                    q.push_back((1 - side, e.collision.unwrap(), Some(bytes)));
                }
                bgp::Output::Close { .. } => {
                    if let Some(w) = e.primary.take() {
                        q.push_back((1 - side, w, None));
                    }
                }
                bgp::Output::CollisionClose { .. } => {
                    if let Some(w) = e.collision.take() {
                        q.push_back((1 - side, w, None));
                    }
                }
                bgp::Output::CollisionWon { .. } => e.primary = e.collision.take(),
                _ => {}
            }
        }
    };
    for (i, s) in sp.iter_mut().enumerate() {
        let out = s.process(p, Input::ManualStart);
        route(i, out, &mut ends, &mut q);
    }
    // Wire w is opened by side w; both complete before either side reads anything.
    for (wire, (from, to)) in [(0usize, 1usize), (1, 0)].into_iter().enumerate() {
        for (side, dir) in [(from, Direction::Active), (to, Direction::Passive)] {
            let role_primary = sp[side].accepts_connection(p);
            assert!(role_primary || sp[side].accepts_collision(p));
            let local = sa(&format!("{}:179", addrs[side]));
            let remote = sa(&format!("{}:179", addrs[1 - side]));
            let out = sp[side].process(
                p,
                Input::TcpConnected {
                    local,
                    remote,
                    direction: dir,
                },
            );
            if role_primary {
                ends[side].primary = Some(wire);
            } else {
                ends[side].collision = Some(wire);
            }
            route(side, out, &mut ends, &mut q);
        }
    }
    let mut guard = 0;
    while let Some((to, wire, what)) = q.pop_front() {
        guard += 1;
        assert!(guard < 100, "does not settle");
        let e = &ends[to];
        let input = match (what, e.primary == Some(wire), e.collision == Some(wire)) {
            (Some(b), true, _) => Input::Received(b),
            (Some(b), _, true) => Input::CollisionReceived(b),
            (None, true, _) => Input::TcpFailed,
            (None, _, true) => Input::CollisionFailed,
            // For a wire this side closed already.
            _ => continue,
        };
        if let Input::TcpFailed = input {
            ends[to].primary = None;
        }
        if let Input::CollisionFailed = input {
            ends[to].collision = None;
        }
        let out = sp[to].process(p, input);
        route(to, out, &mut ends, &mut q);
    }
    assert_eq!(ends[0].primary, ends[1].primary, "both kept the same wire");
    assert!(ends[0].collision.is_none() && ends[1].collision.is_none());
    let kept = ends[0].primary.unwrap();
    let [a, b]: [Speaker; 2] = sp.try_into().unwrap_or_else(|_| unreachable!());
    (kept, ceases, [a, b])
}

#[test]
fn both_ends_connecting_at_once_agree_on_one_connection() {
    // b (10.0.0.2) has the higher identifier: the wire it opened (1) survives.
    let (kept, ceases, sp) = simultaneous_open("10.0.0.1", "10.0.0.2");
    assert_eq!(kept, 1);
    for s in &sp {
        assert_eq!(s.session(PeerId(0)).unwrap().state(), State::Established);
    }
    assert!((1..=2).contains(&ceases), "{ceases}");
    // And the other way round.
    let (kept, _, sp) = simultaneous_open("10.9.0.1", "10.0.0.2");
    assert_eq!(kept, 0);
    assert!(sp
        .iter()
        .all(|s| s.session(PeerId(0)).unwrap().state() == State::Established));
}

#[test]
fn speaker_reports_one_established_session_after_a_collision() {
    let (_, _, mut sp) = simultaneous_open("10.0.0.1", "10.0.0.2");
    // Established once per side, no Down: the collision never looked like a flap.
    for s in &mut sp {
        let st = s.session(PeerId(0)).unwrap().stats();
        assert_eq!(st.established, 1);
        let out = s.originate("192.0.2.0/24".parse().unwrap(), Default::default());
        assert!(out.iter().any(|o| matches!(o, bgp::Output::Send { .. })));
        assert!(!out
            .iter()
            .any(|o| matches!(o, bgp::Output::Event(Event::Down { .. }))));
    }
}
