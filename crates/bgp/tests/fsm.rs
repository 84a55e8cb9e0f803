//! The session FSM (RFC 4271 §8.2.2) alone: inputs in, outputs asserted, no runtime.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use bgp::{
    error::{PeerMisbehaved, SessionError},
    neighbor::{Direction, DownReason, Output},
    packet::{
        iana::{cease, Family},
        message::{Capability, Message, Notification, Open},
        DecodeCxt, EncodeCxt,
    },
    Input, PeerConfig, Session, State, Timer,
};

const S: fn(u64) -> Duration = Duration::from_secs;

fn session(tweak: impl FnOnce(&mut PeerConfig)) -> Session {
    let mut c = PeerConfig::new("peer", "10.0.0.1".parse().unwrap(), 65001);
    tweak(&mut c);
    Session::new(65002, "10.0.0.2".parse().unwrap(), c)
}

fn connected() -> Input {
    Input::TcpConnected {
        local: "10.0.0.2:179".parse().unwrap(),
        remote: "10.0.0.1:40000".parse().unwrap(),
        direction: Direction::Passive,
    }
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_bytes(&EncodeCxt {
        four_octet_as: true,
    })
    .unwrap()
}

fn peer_open(hold: u16) -> Vec<u8> {
    bytes(&Message::Open(Open::new(
        65001,
        hold,
        "10.0.0.1".parse().unwrap(),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65001),
        ],
    )))
}

fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(
                Message::decode(
                    b,
                    &DecodeCxt {
                        four_octet_as: true,
                    },
                )
                .unwrap(),
            ),
            _ => None,
        })
        .collect()
}

fn notification(out: &[Output]) -> Option<Notification> {
    sent(out).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some(n),
        _ => None,
    })
}

/// Idle → Connect → OpenSent → OpenConfirm → Established.
fn established(hold: u16) -> Session {
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    s.process(connected());
    s.process(Input::Received(peer_open(hold)));
    s.process(Input::Received(bytes(&Message::Keepalive)));
    assert_eq!(s.state(), State::Established);
    s
}

#[test]
fn manual_start_connects_or_listens() {
    let mut s = session(|_| {});
    assert_eq!(
        s.process(Input::ManualStart),
        vec![
            Output::ClearTimer(Timer::IdleHold),
            Output::SetTimer(Timer::ConnectRetry, S(5)),
            Output::Connect,
        ]
    );
    assert_eq!(s.state(), State::Connect);
    // A second start is ignored.
    assert!(s.process(Input::ManualStart).is_empty());

    let mut p = session(|c| c.passive = true);
    assert_eq!(
        p.process(Input::ManualStart),
        vec![
            Output::ClearTimer(Timer::IdleHold),
            Output::SetTimer(Timer::ConnectRetry, S(5)),
        ]
    );
    assert_eq!(p.state(), State::Active);
    assert!(p.accepts_connection());
    // Passive: ConnectRetry expiry does not connect.
    assert_eq!(
        p.process(Input::TimerExpired(Timer::ConnectRetry)),
        vec![Output::SetTimer(Timer::ConnectRetry, S(5))]
    );
}

#[test]
fn connect_retry_and_failures() {
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    // Event 9 in Connect: drop the attempt, retry.
    assert_eq!(
        s.process(Input::TimerExpired(Timer::ConnectRetry)),
        vec![
            Output::Close,
            Output::SetTimer(Timer::ConnectRetry, S(5)),
            Output::Connect
        ]
    );
    // Event 18 in Connect: listen (Active) until ConnectRetry fires again.
    assert!(s.process(Input::TcpFailed).is_empty());
    assert_eq!(s.state(), State::Active);
    assert_eq!(
        s.process(Input::TimerExpired(Timer::ConnectRetry)),
        vec![Output::SetTimer(Timer::ConnectRetry, S(5)), Output::Connect]
    );
    assert_eq!(s.state(), State::Connect);
    // Timers from another state are ignored.
    assert!(s.process(Input::TimerExpired(Timer::Hold)).is_empty());
    assert!(s.process(Input::TimerExpired(Timer::Keepalive)).is_empty());
}

#[test]
fn open_exchange_and_hold_negotiation() {
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    let out = s.process(connected());
    assert_eq!(out[0], Output::ClearTimer(Timer::ConnectRetry));
    let msgs = sent(&out);
    let [Message::Open(o)] = msgs.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!((o.my_as, o.hold_time, o.asn()), (65002, 30, 65002));
    assert!(o.capabilities().any(|c| *c == Capability::RouteRefresh));
    assert!(o
        .capabilities()
        .any(|c| matches!(c, Capability::GracefulRestart(g) if g.families.is_empty())));
    assert_eq!(out.last(), Some(&Output::SetTimer(Timer::Hold, S(240))));
    assert_eq!(s.state(), State::OpenSent);

    // Peer proposes 9 s: min(30, 9) = 9, keepalive 3.
    let out = s.process(Input::Received(peer_open(9)));
    assert_eq!(sent(&out), vec![Message::Keepalive]);
    assert_eq!(
        out[1..],
        [
            Output::SetTimer(Timer::Hold, S(9)),
            Output::SetTimer(Timer::Keepalive, S(3))
        ]
    );
    assert_eq!(s.state(), State::OpenConfirm);
    let n = s.negotiated().unwrap();
    assert_eq!(
        n.families,
        vec![Family::Ipv4Unicast],
        "peer announced IPv4 only"
    );
    assert!(n.route_refresh && n.four_octet_as && n.external);

    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert_eq!(
        out,
        vec![Output::SetTimer(Timer::Hold, S(9)), Output::Established]
    );
    // Keepalive timer: send one, re-arm.
    let out = s.process(Input::TimerExpired(Timer::Keepalive));
    assert_eq!(sent(&out), vec![Message::Keepalive]);
    assert_eq!(out[1], Output::SetTimer(Timer::Keepalive, S(3)));
}

#[test]
fn configured_keepalive_and_zero_hold() {
    let mut s = session(|c| c.keepalive = Some(2));
    s.process(Input::ManualStart);
    s.process(connected());
    s.process(Input::Received(peer_open(90)));
    assert_eq!(s.negotiated().unwrap().keepalive, S(2));
    // Hold 0: no hold timer, no keepalives.
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    s.process(connected());
    let out = s.process(Input::Received(peer_open(0)));
    assert!(out.contains(&Output::ClearTimer(Timer::Hold)));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::SetTimer(Timer::Keepalive, _))));
    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert_eq!(out, vec![Output::Established]);
}

#[test]
fn unacceptable_hold_time_and_bad_peer_as() {
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    s.process(connected());
    let out = s.process(Input::Received(peer_open(2)));
    let n = notification(&out).unwrap();
    assert_eq!((n.code.0, n.subcode), (2, 6));
    assert!(out.contains(&Output::Close));
    assert_eq!(s.state(), State::Idle);
    assert!(
        out.contains(&Output::SetTimer(Timer::IdleHold, S(1))),
        "automatic restart"
    );
    assert_eq!(
        s.last_error(),
        Some(&SessionError::Misbehaved(
            PeerMisbehaved::UnacceptableHoldTime(2)
        ))
    );

    let mut s = session(|c| c.remote_as = 65009);
    s.process(Input::ManualStart);
    s.process(connected());
    let n = notification(&s.process(Input::Received(peer_open(90)))).unwrap();
    assert_eq!((n.code.0, n.subcode), (2, 2));
}

#[test]
fn ibgp_peer_with_our_identifier_is_refused() {
    let mut s = Session::new(
        65001,
        "10.0.0.1".parse().unwrap(),
        PeerConfig::new("p", "10.0.0.1".parse().unwrap(), 65001),
    );
    s.process(Input::ManualStart);
    s.process(connected());
    let n = notification(&s.process(Input::Received(peer_open(90)))).unwrap();
    assert_eq!((n.code.0, n.subcode), (2, 3));
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    // KEEPALIVE in OpenSent: 5/1.
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    s.process(connected());
    let n = notification(&s.process(Input::Received(bytes(&Message::Keepalive)))).unwrap();
    assert_eq!((n.code.0, n.subcode), (5, 1));
    // OPEN in OpenConfirm: 5/2.
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    s.process(connected());
    s.process(Input::Received(peer_open(90)));
    let n = notification(&s.process(Input::Received(peer_open(90)))).unwrap();
    assert_eq!((n.code.0, n.subcode), (5, 2));
    // OPEN in Established: 5/3, and Down reports it.
    let mut s = established(90);
    let out = s.process(Input::Received(peer_open(90)));
    assert_eq!(
        notification(&out).map(|n| (n.code.0, n.subcode)),
        Some((5, 3))
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Down(DownReason::Error(_)))));
}

#[test]
fn hold_timer_expiry_sends_notification() {
    let mut s = established(9);
    let out = s.process(Input::TimerExpired(Timer::Hold));
    assert_eq!(
        notification(&out).map(|n| (n.code.0, n.subcode)),
        Some((4, 0))
    );
    assert!(out.contains(&Output::Close));
    assert!(
        out.contains(&Output::Down(DownReason::Error(SessionError::Misbehaved(
            PeerMisbehaved::HoldTimerExpired
        ))))
    );
    // Every message restarts the hold timer in Established.
    let mut s = established(9);
    let out = s.process(Input::Received(bytes(&Message::Keepalive)));
    assert_eq!(out, vec![Output::SetTimer(Timer::Hold, S(9))]);
}

#[test]
fn transport_down_closes_at_once_without_notification() {
    let mut s = established(90);
    let out = s.process(Input::TransportDown);
    assert!(sent(&out).is_empty(), "nothing sent into a dead tunnel");
    assert_eq!(out[0], Output::Close);
    assert!(out.contains(&Output::Down(DownReason::TransportDown)));
    assert!(out.contains(&Output::ClearTimer(Timer::Hold)));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.last_down(), Some(&DownReason::TransportDown));
}

#[test]
fn tcp_failure_per_state() {
    // OpenSent: back to Active with ConnectRetry (RFC 4271 §8.2.2).
    let mut s = session(|_| {});
    s.process(Input::ManualStart);
    s.process(connected());
    let out = s.process(Input::TcpFailed);
    assert_eq!(s.state(), State::Active);
    assert!(out.contains(&Output::SetTimer(Timer::ConnectRetry, S(5))));
    // Established: Down, connection lost.
    let mut s = established(90);
    let out = s.process(Input::TcpFailed);
    assert!(out.contains(&Output::Down(DownReason::ConnectionLost)));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn notification_received_and_manual_stop() {
    let mut s = established(90);
    let n = Notification::cease(cease::PEER_DECONFIGURED);
    let out = s.process(Input::Received(bytes(&Message::Notification(n.clone()))));
    assert!(sent(&out).is_empty(), "no NOTIFICATION in answer to one");
    assert!(out.contains(&Output::Down(DownReason::NotificationReceived(n))));

    let mut s = established(90);
    let out = s.process(Input::ManualStop);
    assert_eq!(
        notification(&out),
        Some(Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN))
    );
    assert!(out.contains(&Output::Down(DownReason::ManualStop)));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::SetTimer(Timer::IdleHold, _))));
    // A malformed NOTIFICATION is not answered either.
    let mut s = established(90);
    let mut bad = vec![0xff; 16];
    bad.extend_from_slice(&[0, 20, 3, 6]);
    let out = s.process(Input::Received(bad));
    assert!(sent(&out).is_empty());
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn malformed_bytes_are_answered_and_rest_of_stream_dropped() {
    let mut s = established(90);
    let mut stream = bytes(&Message::Keepalive);
    stream[0] = 0; // broken marker
    stream.extend(bytes(&Message::Keepalive));
    let out = s.process(Input::Received(stream));
    assert_eq!(
        notification(&out).map(|n| (n.code.0, n.subcode)),
        Some((1, 1))
    );
    assert_eq!(s.state(), State::Idle);
    // Bytes arriving after the reset are ignored.
    assert!(s
        .process(Input::Received(bytes(&Message::Keepalive)))
        .is_empty());
}

#[test]
fn idle_hold_backs_off_and_restarts() {
    let mut s = session(|c| c.idle_hold = 2);
    s.process(Input::ManualStart);
    let mut delays = Vec::new();
    for _ in 0..4 {
        s.process(connected());
        let out = s.process(Input::Received(peer_open(1))); // unacceptable: reset
        let d = out
            .iter()
            .find_map(|o| match o {
                Output::SetTimer(Timer::IdleHold, d) => Some(*d),
                _ => None,
            })
            .unwrap();
        delays.push(d.as_secs());
        // Event 13 → automatic start.
        let out = s.process(Input::TimerExpired(Timer::IdleHold));
        assert!(out.contains(&Output::Connect));
    }
    assert_eq!(delays, vec![2, 4, 8, 16]);
    assert!(s.connect_retry_counter() >= 4);
}

#[test]
fn connection_only_accepted_in_connect_or_active() {
    let mut s = session(|_| {});
    assert!(!s.accepts_connection(), "Idle refuses");
    assert!(s.process(connected()).is_empty());
    s.process(Input::ManualStart);
    assert!(s.accepts_connection());
    s.process(connected());
    assert!(!s.accepts_connection(), "one session connection at a time");
    // A second one in OpenSent is the collision connection of RFC 4271 §6.8
    // (tests/collision.rs); a third is ignored.
    assert!(s.accepts_collision());
    assert!(!s.process(connected()).is_empty());
    assert!(!s.accepts_collision());
    assert!(s.process(connected()).is_empty());
}

#[test]
fn route_refresh_only_for_negotiated_families() {
    let mut s = established(90);
    let rr = |f| {
        bytes(&Message::RouteRefresh(
            bgp::packet::message::RouteRefresh::new(f),
        ))
    };
    let out = s.process(Input::Received(rr(Family::Ipv4Unicast)));
    assert!(out.contains(&Output::RouteRefresh(Family::Ipv4Unicast)));
    let out = s.process(Input::Received(rr(Family::Ipv6Unicast)));
    assert!(!out.iter().any(|o| matches!(o, Output::RouteRefresh(_))));
    // We only ask for families the peer agreed to.
    assert!(sent(&s.request_refresh(Family::Ipv4Unicast)).len() == 1);
    assert!(s.request_refresh(Family::Ipv6Unicast).is_empty());
}

#[test]
fn inputs_serialize_for_replay() {
    let inputs = vec![
        Input::ManualStart,
        connected(),
        Input::Received(peer_open(90)),
        Input::TimerExpired(Timer::Keepalive),
        Input::TransportDown,
    ];
    let json = serde_json::to_string(&inputs).unwrap();
    let back: Vec<Input> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, inputs);
    let _: IpAddr = "10.0.0.1".parse().unwrap();
    let _: SocketAddr = "10.0.0.1:1".parse().unwrap();
}
