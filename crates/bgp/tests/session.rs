//! Speakers back to back on virtual time: sessions, route exchange, failures.

mod common;

use std::time::Duration;

use bgp::{
    error::{PeerMisbehaved, SessionError},
    neighbor::DownReason,
    packet::{
        iana::{cease, ErrorCode},
        message::Notification,
    },
    policy::{ImportPolicy, MaxPrefix, MaxPrefixAction, PrefixFilter},
    Event, Family, Input, LocalRoute, State,
};
use common::{net, pair, secs, Net};

const A: usize = 0;
const B: usize = 1;
const L: usize = 0;

fn originate(n: &mut Net, node: usize, prefixes: &[&str]) {
    for p in prefixes {
        let p = net(p);
        n.with(node, |s| s.originate(p, LocalRoute::default()));
    }
}

fn established_pair() -> Net {
    let mut n = pair(|_, _| {});
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    n
}

#[test]
fn sessions_establish_and_negotiate() {
    let mut n = pair(|c, me| {
        if me == B {
            c.hold_time = 9;
        }
    });
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    // Both sides connect at once; one connection wins without collision handling.
    assert!(n.now < Duration::from_millis(50), "took {:?}", n.now);
    let pa = n.peer_of(L, A);
    let neg = n.nodes[A]
        .speaker
        .session(pa)
        .unwrap()
        .negotiated()
        .unwrap()
        .clone();
    assert_eq!(neg.peer_as, 65002);
    assert!(neg.external);
    assert!(neg.four_octet_as && neg.route_refresh);
    assert_eq!(neg.hold_time, secs(9));
    assert_eq!(neg.keepalive, secs(3));
    assert_eq!(neg.families, Family::ALL.to_vec());
    assert!(neg.peer_graceful_restart.is_some());
    // Keepalives keep it up for a long while.
    n.run_for(secs(600));
    assert!(n.all_established());
}

#[test]
fn ipv4_and_ipv6_routes_both_ways_then_withdraw() {
    // B's routes exist before the session: they go in the initial table dump, packed.
    let mut n = pair(|_, _| {});
    originate(
        &mut n,
        B,
        &["10.2.0.0/24", "10.2.1.0/24", "2001:db8:2::/48"],
    );
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    // A's are announced once the session is up.
    originate(&mut n, A, &["10.1.0.0/24", "2001:db8:1::/48"]);
    n.run_for(secs(1));
    for p in ["10.2.0.0/24", "10.2.1.0/24", "2001:db8:2::/48"] {
        assert!(n.nodes[A].has_route(p), "A lacks {p}");
    }
    for p in ["10.1.0.0/24", "2001:db8:1::/48"] {
        assert!(n.nodes[B].has_route(p), "B lacks {p}");
    }
    // Next hops: B's session address for IPv4, B's configured IPv6 next hop for IPv6.
    let r = n.nodes[A]
        .table
        .best(net("10.2.0.0/24"))
        .unwrap()
        .primary()
        .clone();
    assert_eq!(r.next_hop.to_string(), "via 10.0.0.2");
    assert_eq!(r.source, rib::Source::Bgp);
    let r6 = n.nodes[A]
        .table
        .best(net("2001:db8:2::/48"))
        .unwrap()
        .primary()
        .clone();
    assert_eq!(r6.next_hop.to_string(), "via 2001:db8:ffff::2");
    // The AS path is B's AS; LOCAL_PREF from the eBGP peer absent, ours is 100.
    let pa = n.peer_of(L, A);
    let cand = n.nodes[A]
        .speaker
        .loc_rib()
        .best(&net("10.2.0.0/24"))
        .unwrap()
        .clone();
    assert_eq!(cand.path.attrs.as_path.to_string(), "65002");
    assert_eq!(cand.path.attrs.local_pref, Some(100));
    assert_eq!(cand.source.peer(), Some(pa));
    // The two IPv4 prefixes of B share attributes: one UPDATE carried both.
    let ri = n.nodes[A].speaker.received(pa).unwrap();
    let get = |p: &str| &ri.iter().find(|r| r.0 == net(p)).unwrap().1.path.attrs;
    let (a1, a2) = (get("10.2.0.0/24"), get("10.2.1.0/24"));
    assert!(std::sync::Arc::ptr_eq(a1, a2));
    // rib_routes() lists the same routes as the table.
    assert_eq!(n.nodes[A].speaker.rib_routes().len(), 3);

    n.with(B, |s| s.withdraw_local(net("10.2.0.0/24")));
    n.with(B, |s| s.withdraw_local(net("2001:db8:2::/48")));
    n.run_for(secs(1));
    assert!(!n.nodes[A].has_route("10.2.0.0/24"));
    assert!(!n.nodes[A].has_route("2001:db8:2::/48"));
    assert!(n.nodes[A].has_route("10.2.1.0/24"));
    n.with(A, |s| s.withdraw_local(net("10.1.0.0/24")));
    n.run_for(secs(1));
    assert!(!n.nodes[B].has_route("10.1.0.0/24"));
    assert!(n.all_established());
}

#[test]
fn hold_timer_expiry_withdraws_after_hold_time() {
    let mut n = established_pair();
    originate(&mut n, B, &["10.2.0.0/24"]);
    n.run_for(secs(1));
    assert!(n.nodes[A].has_route("10.2.0.0/24"));
    // B hangs: no keepalives, nothing read.
    n.nodes[B].frozen = true;
    let t0 = n.now;
    assert!(n.run_until(secs(60), |n| !n.nodes[A].has_route("10.2.0.0/24")));
    let waited = n.now - t0;
    assert!(
        waited > secs(20) && waited <= secs(30),
        "withdrawn after {waited:?}"
    );
    let pa = n.peer_of(L, A);
    assert_eq!(
        n.nodes[A].downs(),
        vec![&DownReason::Error(SessionError::Misbehaved(
            PeerMisbehaved::HoldTimerExpired
        ))]
    );
    // A sent Hold Timer Expired (4/0) as its last message before closing.
    let last = &n.nodes[A].sent.last().unwrap().2;
    assert_eq!(last[18], 3);
    assert_eq!(last[19..21], [4, 0]);
    assert_ne!(n.nodes[A].state(pa), State::Established);
}

#[test]
fn transport_down_withdraws_everything_at_once() {
    let mut n = established_pair();
    originate(
        &mut n,
        B,
        &["10.2.0.0/24", "10.2.1.0/24", "2001:db8:2::/48"],
    );
    n.run_for(secs(1));
    assert_eq!(n.nodes[A].table.iter().count(), 3);
    n.cut(L);
    let events_before = n.nodes[A].events.len();
    let t0 = n.now;
    n.input(A, L, Input::TransportDown);
    // Same instant, one call: down, all three routes gone in one RoutesChanged.
    assert_eq!(n.now, t0);
    assert_eq!(n.nodes[A].table.iter().count(), 0);
    let new: Vec<_> = n.nodes[A].events[events_before..].to_vec();
    let changes = new
        .iter()
        .find_map(|e| match e {
            Event::RoutesChanged(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(changes.len(), 3);
    assert!(changes.iter().all(|c| c.old.is_some() && c.new.is_none()));
    assert!(new.iter().any(|e| matches!(
        e,
        Event::Down {
            reason: DownReason::TransportDown,
            ..
        }
    )));
    // Nothing was sent: the tunnel is dead, no NOTIFICATION.
    assert!(n.nodes[A].sent.iter().all(|(t, _, _)| *t < t0));
    // The tunnel comes back: the session re-establishes and routes return.
    n.restore(L);
    // B still believes in the old connection until its hold timer fires.
    assert!(n.run_until(secs(120), |n| n.all_established()
        && n.nodes[A].has_route("10.2.0.0/24")));
}

#[test]
fn route_refresh_resends_adj_rib_out() {
    let mut n = established_pair();
    originate(&mut n, B, &["10.2.0.0/24", "2001:db8:2::/48"]);
    n.run_for(secs(1));
    let pa = n.peer_of(L, A);
    let pb = n.peer_of(L, B);
    let updates_before = n.nodes[A].speaker.session(pa).unwrap().stats().updates_in;
    let sent_before = n.nodes[B].sent.len();
    n.with(A, |s| s.request_refresh(pa, Family::Ipv4Unicast));
    n.run_for(secs(1));
    let updates_after = n.nodes[A].speaker.session(pa).unwrap().stats().updates_in;
    assert_eq!(updates_after, updates_before + 1, "one IPv4 UPDATE re-sent");
    assert!(n.nodes[B].sent.len() > sent_before);
    assert_eq!(n.nodes[B].speaker.advertised_count(pb).unwrap(), 2);
    n.with(A, |s| s.request_refresh(pa, Family::Ipv6Unicast));
    n.run_for(secs(1));
    assert_eq!(
        n.nodes[A].speaker.session(pa).unwrap().stats().updates_in,
        updates_after + 1
    );
    assert!(n.nodes[A].has_route("2001:db8:2::/48"));
}

fn max_prefix(limit: u32, action: MaxPrefixAction) -> impl Fn(&mut bgp::PeerConfig, usize) {
    move |c, me| {
        if me == A {
            c.import = ImportPolicy {
                filter: Some(PrefixFilter::permit_all()),
                max_prefix: Some(MaxPrefix {
                    limit,
                    action,
                    warning_threshold: 50,
                }),
                local_pref: None,
            };
        }
    }
}

#[test]
fn max_prefix_drop_excess_keeps_session() {
    let mut n = pair(max_prefix(2, MaxPrefixAction::DropExcess));
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    originate(&mut n, B, &["10.2.0.0/24", "10.2.1.0/24", "10.2.2.0/24"]);
    n.run_for(secs(1));
    assert_eq!(n.nodes[A].table.iter().count(), 2);
    assert!(n.all_established());
    let ev = &n.nodes[A].events;
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::MaxPrefixDropped {
            dropped: 1,
            limit: 2,
            ..
        }
    )));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::MaxPrefixWarning { limit: 2, .. })));
    // Room frees up when B withdraws one; a refresh brings the dropped one in.
    n.with(B, |s| s.withdraw_local(net("10.2.0.0/24")));
    n.run_for(secs(1));
    let pa = n.peer_of(L, A);
    n.with(A, |s| s.request_refresh(pa, Family::Ipv4Unicast));
    n.run_for(secs(1));
    assert!(n.nodes[A].has_route("10.2.1.0/24"));
    assert!(n.nodes[A].has_route("10.2.2.0/24"));
}

#[test]
fn max_prefix_reset_sends_cease_and_restarts_later() {
    let mut n = pair(max_prefix(
        2,
        MaxPrefixAction::Reset {
            restart_after: Some(30),
        },
    ));
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    originate(&mut n, B, &["10.2.0.0/24", "10.2.1.0/24", "10.2.2.0/24"]);
    n.run_for(secs(1));
    assert_eq!(
        n.nodes[A].table.iter().count(),
        0,
        "routes withdrawn on reset"
    );
    let expected = Notification::new(
        ErrorCode::CEASE,
        cease::MAX_PREFIXES,
        vec![0, 1, 1, 0, 0, 0, 2],
    );
    assert_eq!(
        n.nodes[B].downs(),
        vec![&DownReason::NotificationReceived(expected)]
    );
    assert!(matches!(
        n.nodes[A].downs()[..],
        [DownReason::Error(SessionError::Misbehaved(
            PeerMisbehaved::MaxPrefixExceeded { limit: 2, .. }
        ))]
    ));
    // A stays down for its restart interval (B's own reconnects are refused meanwhile).
    let pa = n.peer_of(L, A);
    n.run_for(secs(20));
    assert_ne!(n.nodes[A].state(pa), State::Established);
    // Then it restarts, and is reset again since B still sends three prefixes.
    n.run_for(secs(20));
    assert_eq!(n.nodes[A].downs().len(), 2);
}

#[test]
fn manual_stop_sends_cease_admin_shutdown() {
    let mut n = established_pair();
    originate(&mut n, A, &["10.1.0.0/24"]);
    n.run_for(secs(1));
    assert!(n.nodes[B].has_route("10.1.0.0/24"));
    n.input(A, L, Input::ManualStop);
    n.run_for(secs(5));
    assert!(!n.nodes[B].has_route("10.1.0.0/24"));
    assert_eq!(
        n.nodes[B].downs(),
        vec![&DownReason::NotificationReceived(Notification::cease(
            cease::ADMINISTRATIVE_SHUTDOWN
        ))]
    );
    // A stays Idle (manual stop disables automatic restart); B keeps trying and fails.
    n.run_for(secs(60));
    assert_eq!(n.nodes[A].state(n.peer_of(L, A)), State::Idle);
    n.input(A, L, Input::ManualStart);
    assert!(n.run_until(secs(200), Net::all_established));
}

#[test]
fn wrong_peer_as_is_refused() {
    let mut n = pair(|c, me| {
        if me == A {
            c.remote_as = 65099;
        }
    });
    n.start_all();
    n.run_for(secs(5));
    assert!(!n.all_established());
    let pa = n.peer_of(L, A);
    let err = n.nodes[A]
        .speaker
        .session(pa)
        .unwrap()
        .last_error()
        .cloned();
    assert_eq!(
        err,
        Some(SessionError::Misbehaved(PeerMisbehaved::BadPeerAs {
            expected: 65099,
            received: 65002
        }))
    );
    // A sent OPEN Message Error / Bad Peer AS.
    assert!(n.nodes[A]
        .sent
        .iter()
        .any(|(_, _, b)| b.len() >= 21 && b[18] == 3 && b[19..21] == [2, 2]));
}

#[test]
fn graceful_restart_helper_keeps_stale_routes_until_end_of_rib() {
    let mut n = pair(|c, _| {
        c.graceful_restart.restart_time = 60;
    });
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    originate(&mut n, B, &["10.2.0.0/24", "10.2.1.0/24"]);
    n.run_for(secs(1));
    // Our speakers advertise GR as helpers without families, so nothing is retained.
    n.reset_connection(L);
    assert_eq!(n.nodes[A].table.iter().count(), 0);
}

#[test]
fn three_speakers_relay_with_as_path() {
    let mut n = Net::new();
    n.add_node("a", 65001, "10.0.0.1");
    n.add_node("b", 65002, "10.0.0.2");
    n.add_node("c", 65003, "10.0.0.3");
    n.connect(0, 1, |_, _| {});
    n.connect(1, 2, |c, me| {
        if me == 1 {
            c.export.prepend = 2;
        }
    });
    n.start_all();
    assert!(n.run_until(secs(10), Net::all_established));
    originate(&mut n, 0, &["10.1.0.0/24"]);
    n.run_for(secs(1));
    let c = n.nodes[2]
        .speaker
        .loc_rib()
        .best(&net("10.1.0.0/24"))
        .unwrap()
        .clone();
    assert_eq!(c.path.attrs.as_path.to_string(), "65002 65002 65002 65001");
    assert_eq!(c.path.next_hop.addr, common::ip("10.0.0.2"));
    // A's own route is not sent back to A (loop) and C does not send it back to B.
    let pab = n.peer_of(0, 0);
    assert!(n.nodes[0].speaker.received(pab).unwrap().is_empty());
    // The link A-B dies: C loses the route through B at once.
    n.cut(0);
    n.input(1, 0, Input::TransportDown);
    n.run_for(Duration::from_millis(10));
    assert!(!n.nodes[2].has_route("10.1.0.0/24"));
}
