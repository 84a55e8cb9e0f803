//! Scenario tests: two `ike::Endpoint`s on virtual time.

#[path = "fsm/util.rs"]
mod util;

use std::time::Duration;

use ike::{DownReason, Event, SaState, TrafficSelectorPolicy};
use util::*;

const GCM: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");

fn established(seed: u64, ike_p: &str, esp_p: &str) -> Pair {
    let mut p = Pair::new(seed);
    setup(
        &mut p,
        conn(Side::A, ike_p, esp_p),
        conn(Side::B, ike_p, esp_p),
    );
    p.run(Duration::from_secs(2));
    assert_eq!(p.ike_up(Side::A), 1, "{:?}", p.events_a);
    assert_eq!(p.ike_up(Side::B), 1, "{:?}", p.events_b);
    p
}

#[test]
fn establishes_each_issue_proposal_pair_with_matching_child_keys() {
    for (i, (ike_p, esp_p)) in [
        ("aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        ("aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
        ("aes256-sha256-modp2048", "aes256-sha256"),
        ("chacha20poly1305-prfsha256-x25519", "chacha20poly1305"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = established(i as u64, ike_p, esp_p);
        let a = p.children_up(Side::A);
        let b = p.children_up(Side::B);
        assert_eq!((a.len(), b.len()), (1, 1), "{ike_p}");
        assert_child_pair(&p, a[0].1.spi_in);
        assert!(!a[0].1.encap, "no NAT, no encapsulation");
        assert_eq!(a[0].1.ts_local.len(), 2, "0/0 and ::/0");
        match &p.events_a[0].1 {
            Event::IkeUp { proposal, .. } => assert_eq!(
                *proposal,
                format!("IKE:{ike_p}")
                    .replace("aes256-sha256-modp2048", "aes256-sha256-prfsha256-modp2048")
            ),
            e => panic!("{e:?}"),
        }
        assert_eq!(a[0].1.proposal, format!("ESP:{esp_p}"));
        // Exactly four datagrams: no retransmission on a clean network.
        assert_eq!(p.sent.len(), 4, "{ike_p}");
        let info: Vec<_> = p.a.sas().collect();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].state, SaState::Established);
        assert_eq!(info[0].children.len(), 1);
        // The same SA through the per-connection view; another connection has none.
        let of: Vec<_> = p.a.sas_of(info[0].conn).collect();
        assert_eq!(of.len(), 1);
        assert_eq!(of[0].children.len(), 1);
        let other = ike::ConnId(info[0].conn.0.wrapping_add(1));
        assert_eq!(p.a.sas_of(other).count(), 0);
    }
}

#[test]
fn invalid_ke_payload_is_retried_with_the_peers_group() {
    let mut p = Pair::new(7);
    setup(
        &mut p,
        conn(
            Side::A,
            "aes128gcm16-prfsha256-x25519-ecp256",
            "aes128gcm16",
        ),
        conn(Side::B, "aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
    );
    p.run(Duration::from_secs(2));
    assert_eq!(p.ike_up(Side::A), 1, "{:?}", p.events_a);
    match &p.events_a[0].1 {
        Event::IkeUp { proposal, .. } => assert!(proposal.ends_with("ecp256"), "{proposal}"),
        e => panic!("{e:?}"),
    }
    // INIT, INVALID_KE, INIT again, response, AUTH, response.
    assert_eq!(p.sent.len(), 6);
    assert_child_pair(&p, p.children_up(Side::A)[0].1.spi_in);
}

#[test]
fn no_proposal_chosen_reports_both_sides() {
    let mut p = Pair::new(3);
    setup(
        &mut p,
        conn(Side::A, "aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        conn(Side::B, "aes256-sha256-modp2048", "aes256-sha256"),
    );
    p.run(Duration::from_secs(5));
    assert_eq!(
        p.ike_down(Side::B),
        vec![DownReason::NoProposalChosen {
            offered: vec!["IKE:aes128gcm16-prfsha256-x25519".into()],
            configured: vec!["IKE:aes256-sha256-prfsha256-modp2048".into()],
        }]
    );
    assert_eq!(
        p.ike_down(Side::A),
        vec![DownReason::NoProposalChosen {
            offered: vec!["IKE:aes128gcm16-prfsha256-x25519".into()],
            configured: vec![],
        }]
    );
    assert_eq!(p.a.sas().count() + p.b.sas().count(), 0);
}

#[test]
fn esp_no_proposal_chosen_in_ike_auth() {
    let mut p = Pair::new(4);
    setup(
        &mut p,
        conn(Side::A, GCM.0, "aes128gcm16"),
        conn(Side::B, GCM.0, "aes256-sha256"),
    );
    p.run(Duration::from_secs(10));
    assert!(
        matches!(
            p.ike_down(Side::B).as_slice(),
            [DownReason::NoProposalChosen { offered, configured }]
                if offered == &["ESP:aes128gcm16"] && configured == &["ESP:aes256-sha256"]
        ),
        "{:?}",
        p.events_b
    );
    assert!(matches!(
        p.ike_down(Side::A).as_slice(),
        [DownReason::NoProposalChosen { .. }]
    ));
    assert_eq!(p.ike_up(Side::A) + p.ike_up(Side::B), 0);
    assert_eq!(p.a.sas().count() + p.b.sas().count(), 0, "cleaned up");
}

#[test]
fn wrong_psk_fails_authentication_on_both_sides() {
    let mut p = Pair::new(5);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    b.psk = ike::Secret::from_slice(b"wrong");
    setup(&mut p, conn(Side::A, GCM.0, GCM.1), b);
    p.run(Duration::from_secs(10));
    assert_eq!(p.ike_down(Side::A), vec![DownReason::AuthFailed]);
    assert_eq!(p.ike_down(Side::B), vec![DownReason::AuthFailed]);
    assert_eq!(p.ike_up(Side::A) + p.ike_up(Side::B), 0);
    assert_eq!(p.a.sas().count() + p.b.sas().count(), 0, "cleaned up");
}

#[test]
fn wrong_identity_fails_authentication() {
    let mut p = Pair::new(6);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    b.remote_id = ike::packet::Identity::Fqdn("someone-else.example".into());
    setup(&mut p, conn(Side::A, GCM.0, GCM.1), b);
    p.run(Duration::from_secs(10));
    assert_eq!(p.ike_down(Side::A), vec![DownReason::AuthFailed]);
    assert_eq!(p.ike_down(Side::B), vec![DownReason::AuthFailed]);
}

fn policy(local: &[&str], remote: &[&str]) -> TrafficSelectorPolicy {
    TrafficSelectorPolicy::Policy {
        local: local.iter().map(|s| s.parse().unwrap()).collect(),
        remote: remote.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

#[test]
fn policy_mode_narrows_traffic_selectors() {
    let mut p = Pair::new(8);
    let mut a = conn(Side::A, GCM.0, GCM.1);
    a.ts = policy(&["10.1.0.0/16"], &["10.2.0.0/16"]);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    b.ts = policy(&["10.2.0.0/24"], &["10.1.0.0/16", "192.168.0.0/16"]);
    setup(&mut p, a, b);
    p.run(Duration::from_secs(2));
    let a = &p.children_up(Side::A)[0].1;
    let b = &p.children_up(Side::B)[0].1;
    let s = |v: &[ike::packet::AddrRange]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(s(&a.ts_local), ["10.1.0.0/16"]);
    assert_eq!(s(&a.ts_remote), ["10.2.0.0/24"]);
    assert_eq!(s(&b.ts_local), ["10.2.0.0/24"]);
    assert_eq!(s(&b.ts_remote), ["10.1.0.0/16"]);
}

#[test]
fn ts_unacceptable_reports_both_sides_selectors() {
    let mut p = Pair::new(9);
    let mut a = conn(Side::A, GCM.0, GCM.1);
    a.ts = policy(&["10.1.0.0/16"], &["10.2.0.0/16"]);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    b.ts = policy(&["172.16.0.0/24"], &["10.1.0.0/16"]);
    setup(&mut p, a, b);
    p.run(Duration::from_secs(10));
    assert_eq!(
        p.ike_down(Side::B),
        vec![DownReason::TsUnacceptable {
            offered: ("10.1.0.0/16".into(), "10.2.0.0/16".into()),
            configured: ("10.1.0.0/16".into(), "172.16.0.0/24".into()),
        }]
    );
    assert!(matches!(
        p.ike_down(Side::A).as_slice(),
        [DownReason::TsUnacceptable { .. }]
    ));
    assert_eq!(p.a.sas().count() + p.b.sas().count(), 0);
}

#[test]
fn every_first_transmission_lost_still_establishes() {
    let mut p = Pair::new(10);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    p.filter = Some(Box::new(move |_, t, _| {
        if seen.contains(&t.payload) {
            false
        } else {
            seen.push(t.payload.clone());
            true
        }
    }));
    setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    p.run(Duration::from_secs(10));
    assert_eq!(p.ike_up(Side::A), 1, "{:?}", p.events_a);
    assert_eq!(p.ike_up(Side::B), 1);
    assert!(p.a.stats().retransmits >= 2);
    assert!(
        p.b.stats().cached_responses >= 1,
        "lost responses come from the cache"
    );
    assert_child_pair(&p, p.children_up(Side::A)[0].1.spi_in);
}

#[test]
fn unanswered_initiation_gives_up_after_the_schedule() {
    let mut p = Pair::new(11);
    p.filter = Some(Box::new(|from, _, _| from == Side::A));
    setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    p.run(Duration::from_secs(30));
    let downs: Vec<_> = p
        .events_a
        .iter()
        .filter(|(_, e)| matches!(e, Event::IkeDown { .. }))
        .collect();
    assert_eq!(downs.len(), 1);
    assert!(matches!(
        &downs[0].1,
        Event::IkeDown {
            reason: DownReason::Timeout,
            ..
        }
    ));
    // Lab schedule: sends at 0, 1, 2 s; give up at 3 s.
    assert_eq!(downs[0].0 - p.start, Duration::from_secs(3));
    assert_eq!(p.sent.len(), 3);
    assert_eq!(p.a.stats().retransmits, 2);
    assert_eq!(p.a.sas().count(), 0);
}

#[test]
fn duplicated_and_reordered_datagrams() {
    for seed in 0..8 {
        let mut p = Pair::new(100 + seed);
        p.dup = 0.5;
        p.jitter = Duration::from_millis(40);
        setup(
            &mut p,
            conn(Side::A, GCM.0, GCM.1),
            conn(Side::B, GCM.0, GCM.1),
        );
        p.run(Duration::from_secs(10));
        assert_eq!(p.ike_up(Side::A), 1, "seed {seed}: {:?}", p.events_a);
        assert_eq!(p.ike_up(Side::B), 1, "seed {seed}");
        assert_eq!(
            p.children_up(Side::B).len(),
            1,
            "a duplicate never creates a second SA"
        );
        assert_eq!(p.b.sas().count(), 1, "seed {seed}");
        assert_child_pair(&p, p.children_up(Side::A)[0].1.spi_in);
    }
}

#[test]
fn duplicated_request_answered_from_cache() {
    let mut p = Pair::new(12);
    p.dup = 1.0;
    setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    p.run(Duration::from_secs(5));
    assert_eq!(p.ike_up(Side::A), 1);
    assert!(p.b.stats().cached_responses >= 2, "{:?}", p.b.stats());
    assert!(
        p.a.stats().dropped_message_id >= 1,
        "duplicate responses dropped"
    );
}

#[test]
fn lossy_network_establishes() {
    let mut ok = 0;
    for seed in 0..10 {
        let mut p = Pair::new(200 + seed);
        p.loss = 0.2;
        setup(
            &mut p,
            conn(Side::A, GCM.0, GCM.1),
            conn(Side::B, GCM.0, GCM.1),
        );
        p.run(Duration::from_secs(10));
        if p.ike_up(Side::A) == 1 {
            assert_eq!(p.ike_up(Side::B), 1);
            assert_child_pair(&p, p.children_up(Side::A)[0].1.spi_in);
            ok += 1;
        } else {
            assert!(matches!(
                p.ike_down(Side::A).as_slice(),
                [DownReason::Timeout]
            ));
        }
    }
    assert!(ok >= 7, "{ok}/10");
}

#[test]
fn nat_traversal_floats_to_4500_and_sends_keepalives() {
    let mut p = Pair::new(13);
    p.nat = true;
    let a = conn(Side::A, GCM.0, GCM.1);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    b.remote = sa(NAT_IP, 500);
    setup(&mut p, a, b);
    p.run(Duration::from_secs(2));
    assert_eq!(p.ike_up(Side::A), 1, "{:?}", p.events_a);
    assert_eq!(p.ike_up(Side::B), 1, "{:?}", p.events_b);
    // IKE_SA_INIT on 500, IKE_AUTH on 4500 with the marker.
    assert_eq!(p.sent[0].t.local.port(), 500);
    assert_eq!(p.sent[2].t.local.port(), 4500);
    assert_eq!(p.sent[2].t.remote.port(), 4500);
    assert!(p.sent[2].t.non_esp_marker);
    assert!(p.sent[3].t.non_esp_marker);
    match &p.events_b[0].1 {
        Event::IkeUp { remote, local, .. } => {
            assert_eq!(*remote, sa(NAT_IP, 44500));
            assert_eq!(local.port(), 4500);
        }
        e => panic!("{e:?}"),
    }
    assert!(p.children_up(Side::A)[0].1.encap);
    assert!(p.children_up(Side::B)[0].1.encap);
    assert_child_pair(&p, p.children_up(Side::A)[0].1.spi_in);
    // A is behind the NAT: keepalives every 20 s; B is not.
    p.run(Duration::from_secs(45));
    let ka = |s: Side| {
        p.sent
            .iter()
            .filter(|x| x.from == s && x.t.payload == [0xff])
            .count()
    };
    assert_eq!(ka(Side::A), 2);
    assert_eq!(ka(Side::B), 0);
    assert!(p
        .sent
        .iter()
        .filter(|x| x.t.payload == [0xff])
        .all(|x| x.t.local.port() == 4500));
}

#[test]
fn esp_proposal_with_pfs_group_still_establishes_in_ike_auth() {
    let p = established(14, "aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384");
    assert_child_pair(&p, p.children_up(Side::A)[0].1.spi_in);
    assert_eq!(p.children_up(Side::A)[0].1.suite.ke, None);
}

// ---------------------------------------------------------------- priority 2: DPD, DELETE

fn dpd_conns(action: ike::DpdAction) -> (ike::ConnectionConfig, ike::ConnectionConfig) {
    let mut a = conn(Side::A, GCM.0, GCM.1);
    a.dpd_interval = Some(Duration::from_secs(10));
    a.dpd_action = action;
    let mut b = conn(Side::B, GCM.0, GCM.1);
    b.dpd_interval = Some(Duration::from_secs(10));
    (a, b)
}

#[test]
fn dpd_keeps_a_live_peer_and_declares_a_silent_one_dead() {
    let mut p = Pair::new(20);
    let (a, b) = dpd_conns(ike::DpdAction::Clear);
    setup(&mut p, a, b);
    p.run(Duration::from_secs(60));
    assert!(p.ike_down(Side::A).is_empty(), "{:?}", p.events_a);
    let dpd_exchanges = p.sent.len() - 4;
    assert!(dpd_exchanges >= 8, "{dpd_exchanges}");
    // The peer goes silent.
    p.filter = Some(Box::new(|from, _, _| from == Side::B));
    let cut = p.now;
    p.run(Duration::from_secs(60));
    let downs: Vec<_> = p
        .events_a
        .iter()
        .filter(|(_, e)| matches!(e, Event::IkeDown { .. } | Event::ChildDown { .. }))
        .collect();
    assert_eq!(downs.len(), 2, "{downs:?}");
    assert!(matches!(
        &downs[0].1,
        Event::ChildDown {
            reason: DownReason::PeerDead,
            ..
        }
    ));
    assert!(matches!(
        &downs[1].1,
        Event::IkeDown {
            reason: DownReason::PeerDead,
            ..
        }
    ));
    // At most one DPD interval of silence, then the 3 s schedule.
    assert!(
        downs[1].0 - cut <= Duration::from_secs(10 + 3),
        "{:?}",
        downs[1].0 - cut
    );
    assert_eq!(p.a.sas().count(), 0);
    assert_eq!(p.ike_up(Side::A), 1, "Clear does not re-initiate");
}

#[test]
fn inbound_esp_counts_as_liveness() {
    let mut p = Pair::new(21);
    let (a, b) = dpd_conns(ike::DpdAction::Clear);
    setup(&mut p, a, b);
    p.run(Duration::from_secs(1));
    let spi = p.children_up(Side::A)[0].1.spi_in;
    let before = p.sent.len();
    for _ in 0..10 {
        p.run(Duration::from_secs(5));
        let now = p.now;
        p.a.handle_child_event(now, spi, ike::ChildSaSignal::InboundTraffic);
        p.b.handle_child_event(
            now,
            p.children_up(Side::B)[0].1.spi_in,
            ike::ChildSaSignal::InboundTraffic,
        );
    }
    assert_eq!(p.sent.len(), before, "no DPD while ESP flows");
}

#[test]
fn dpd_restart_reinitiates_until_the_peer_is_back() {
    let mut p = Pair::new(22);
    let (a, b) = dpd_conns(ike::DpdAction::Restart);
    setup(&mut p, a, b);
    p.run(Duration::from_secs(2));
    // The peer restarts: it loses all state and stays away for a while.
    let cfg_b = conn(Side::B, GCM.0, GCM.1);
    p.b = ike::Endpoint::new(lab_endpoint_config(), Box::new(TestRng(999)));
    p.filter = Some(Box::new(|_, _, _| true));
    p.run(Duration::from_secs(40));
    assert!(
        matches!(p.ike_down(Side::A).first(), Some(DownReason::PeerDead)),
        "{:?}",
        p.events_a
    );
    let retries = p
        .ike_down(Side::A)
        .iter()
        .filter(|r| **r == DownReason::Timeout)
        .count();
    assert!(retries >= 3, "keeps trying: {retries}");
    // strongSwan is started again.
    let now = p.now;
    p.b.add_connection(now, cfg_b);
    p.filter = None;
    p.run(Duration::from_secs(10));
    assert_eq!(p.ike_up(Side::A), 2, "{:?}", p.events_a);
    assert_eq!(p.live_children(Side::A).len(), 1);
    let spi = *p.live_children(Side::A).first().unwrap();
    assert_child_pair(&p, spi);
}

#[test]
fn initial_contact_replaces_the_stale_sa_of_a_restarted_peer() {
    let mut p = Pair::new(23);
    setup(
        &mut p,
        conn(Side::A, GCM.0, GCM.1),
        conn(Side::B, GCM.0, GCM.1),
    );
    p.run(Duration::from_secs(2));
    // A restarts (loses state) and initiates again.
    p.a = ike::Endpoint::new(lab_endpoint_config(), Box::new(TestRng(777)));
    let now = p.now;
    p.a.add_connection(now, conn(Side::A, GCM.0, GCM.1));
    p.run(Duration::from_secs(2));
    let kinds: Vec<&str> = p
        .events_b
        .iter()
        .map(|(_, e)| match e {
            Event::IkeUp { .. } => "ike-up",
            Event::ChildUp { .. } => "child-up",
            Event::ChildDown { .. } => "child-down",
            Event::IkeDown { .. } => "ike-down",
            Event::PeerMoved { .. } => "moved",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ike-up",
            "child-up",
            "child-down",
            "ike-down",
            "ike-up",
            "child-up"
        ]
    );
    assert_eq!(p.b.sas().count(), 1);
}

#[test]
fn delete_from_peer() {
    let mut p = established(24, GCM.0, GCM.1);
    let now = p.now;
    let id_b = ike::ConnId(0);
    p.b.terminate(now, id_b);
    p.run(Duration::from_secs(2));
    assert_eq!(p.ike_down(Side::A), vec![DownReason::DeletedByPeer]);
    assert_eq!(p.ike_down(Side::B), vec![DownReason::DeletedLocally]);
    assert!(matches!(
        p.children_down(Side::A).as_slice(),
        [(_, _, DownReason::DeletedByPeer)]
    ));
    assert_eq!(p.a.sas().count(), 0);
    p.run(Duration::from_secs(10));
    assert_eq!(p.b.sas().count(), 0);
}

#[test]
fn remove_connection_deletes() {
    let mut p = established(25, GCM.0, GCM.1);
    let now = p.now;
    p.a.remove_connection(now, ike::ConnId(0));
    p.run(Duration::from_secs(10));
    assert_eq!(p.ike_down(Side::A), vec![DownReason::DeletedLocally]);
    assert_eq!(p.ike_down(Side::B), vec![DownReason::DeletedByPeer]);
    assert_eq!(p.a.sas().count() + p.b.sas().count(), 0);
}

// ---------------------------------------------------------------- priority 3: rekeying

fn rekey_conns(esp: &str) -> (ike::ConnectionConfig, ike::ConnectionConfig) {
    let mut a = conn(Side::A, GCM.0, esp);
    let mut b = conn(Side::B, GCM.0, esp);
    for c in [&mut a, &mut b] {
        c.child_lifetime = Duration::from_secs(100);
        c.rekey_margin = Duration::from_secs(20);
        c.rand_jitter = Duration::from_secs(10);
    }
    (a, b)
}

/// Make-before-break at one side: the new child is up before the old one goes down.
fn assert_make_before_break(p: &Pair, s: Side) {
    for (t_up, c, replaces) in p.children_up(s) {
        if let Some((old_in, _)) = replaces {
            if let Some((t_down, _, _)) = p.children_down(s).into_iter().find(|d| d.1 == old_in) {
                assert!(
                    t_up <= t_down,
                    "{s:?}: {} up after old {old_in} down",
                    c.spi_in
                );
                let up_idx = p.events(s).iter().position(|(_, e)| matches!(e, Event::ChildUp { child, .. } if child.spi_in == c.spi_in)).unwrap();
                let down_idx = p
                    .events(s)
                    .iter()
                    .position(
                        |(_, e)| matches!(e, Event::ChildDown { spi_in, .. } if *spi_in == old_in),
                    )
                    .unwrap();
                assert!(up_idx < down_idx);
            }
        }
    }
}

#[test]
fn child_rekey_on_soft_lifetime_make_before_break() {
    for (seed, esp) in [
        (30, "aes128gcm16"),
        (31, "aes256gcm16-ecp384"),
        (32, "aes256-sha256-x25519"),
    ] {
        let mut p = Pair::new(seed);
        let (a, b) = rekey_conns(esp);
        setup(&mut p, a, b);
        p.run(Duration::from_secs(250));
        // Rekeyed at least twice (every 70..80 s), never expired.
        assert!(p.children_up(Side::A).len() >= 3, "{esp}: {:?}", p.events_a);
        for s in [Side::A, Side::B] {
            assert_eq!(p.live_children(s).len(), 1, "{s:?} {esp}");
            assert!(
                p.children_down(s)
                    .iter()
                    .all(|d| d.2 == DownReason::Rekeyed),
                "{:?}",
                p.children_down(s)
            );
            assert_make_before_break(&p, s);
        }
        assert!(p.ike_down(Side::A).is_empty());
        let spi = p.live_children(Side::A)[0];
        assert_child_pair(&p, spi);
        let last = p.children_up(Side::A).last().unwrap().1.clone();
        assert_eq!(
            last.suite.ke.is_some(),
            esp.contains("ecp") || esp.contains("x25519"),
            "{esp}"
        );
    }
}

#[test]
fn child_rekey_collision_leaves_exactly_one_pair() {
    for seed in 40..46 {
        let mut p = established(seed, GCM.0, GCM.1);
        let spi_a = p.children_up(Side::A)[0].1.spi_in;
        let spi_b = p.children_up(Side::B)[0].1.spi_in;
        let now = p.now;
        p.a.handle_child_event(now, spi_a, ike::ChildSaSignal::SoftLimit);
        p.b.handle_child_event(now, spi_b, ike::ChildSaSignal::SoftLimit);
        p.run(Duration::from_secs(5));
        for s in [Side::A, Side::B] {
            assert_eq!(
                p.live_children(s).len(),
                1,
                "seed {seed} {s:?}: {:?}",
                p.events(s)
            );
            assert_make_before_break(&p, s);
            assert_eq!(
                p.children_up(s).len(),
                3,
                "both rekeys installed, one deleted"
            );
        }
        let survivor = p.live_children(Side::A)[0];
        assert_child_pair(&p, survivor);
        assert_eq!(p.sas_children(Side::A), vec![survivor]);
        assert!(p.ike_down(Side::A).is_empty() && p.ike_down(Side::B).is_empty());
    }
}

#[test]
fn ike_rekey_moves_children_and_keeps_the_tunnel() {
    let mut p = established(50, GCM.0, GCM.1);
    let child_a = p.children_up(Side::A)[0].1.spi_in;
    let before: Vec<_> = p.a.sas().map(|s| s.spi_i).collect();
    let now = p.now;
    p.a.rekey_ike(now, ike::ConnId(0));
    p.run(Duration::from_secs(5));
    for ep in [&p.a, &p.b] {
        let sas: Vec<_> = ep.sas().collect();
        assert_eq!(sas.len(), 1, "{sas:?}");
        assert_eq!(sas[0].state, SaState::Established);
        assert_ne!(sas[0].spi_i, before[0]);
        assert_eq!(sas[0].children.len(), 1);
    }
    assert_eq!(p.a.sas().next().unwrap().children[0].spi_in, child_a);
    assert!(p.ike_down(Side::A).is_empty() && p.ike_down(Side::B).is_empty());
    assert_eq!(p.children_down(Side::A).len(), 0);
    // The new IKE SA works: DPD-style and child rekey over it.
    let now = p.now;
    p.a.handle_child_event(now, child_a, ike::ChildSaSignal::SoftLimit);
    p.run(Duration::from_secs(5));
    assert_eq!(p.live_children(Side::A).len(), 1);
    assert_child_pair(&p, p.live_children(Side::A)[0]);
}

#[test]
fn ike_rekey_collision_leaves_one_ike_sa() {
    for seed in 51..57 {
        let mut p = established(seed, GCM.0, GCM.1);
        let now = p.now;
        p.a.rekey_ike(now, ike::ConnId(0));
        p.b.rekey_ike(now, ike::ConnId(0));
        p.run(Duration::from_secs(10));
        for (s, ep) in [(Side::A, &p.a), (Side::B, &p.b)] {
            let sas: Vec<_> = ep.sas().collect();
            assert_eq!(sas.len(), 1, "seed {seed} {s:?}: {sas:?}");
            assert_eq!(sas[0].state, SaState::Established);
            assert_eq!(sas[0].children.len(), 1, "seed {seed} {s:?}");
        }
        let (sa_a, sa_b) = (p.a.sas().next().unwrap(), p.b.sas().next().unwrap());
        assert_eq!((sa_a.spi_i, sa_a.spi_r), (sa_b.spi_i, sa_b.spi_r));
        assert!(
            p.ike_down(Side::A).is_empty() && p.ike_down(Side::B).is_empty(),
            "seed {seed}: {:#?}\n{:#?}",
            p.events_a,
            p.events_b
        );
        // And it still carries traffic control: a child rekey over the survivor.
        let spi = p.live_children(Side::A)[0];
        let now = p.now;
        p.a.handle_child_event(now, spi, ike::ChildSaSignal::SoftLimit);
        p.run(Duration::from_secs(5));
        assert_eq!(p.live_children(Side::A).len(), 1);
        assert_child_pair(&p, p.live_children(Side::A)[0]);
    }
}

#[test]
fn ike_rekey_on_soft_lifetime() {
    let mut p = Pair::new(58);
    let mut a = conn(Side::A, GCM.0, GCM.1);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    for c in [&mut a, &mut b] {
        c.ike_lifetime = Duration::from_secs(200);
        c.rekey_margin = Duration::from_secs(30);
        c.rand_jitter = Duration::from_secs(20);
    }
    setup(&mut p, a, b);
    p.run(Duration::from_secs(1000));
    assert!(p.ike_down(Side::A).is_empty(), "{:?}", p.events_a);
    assert_eq!(p.a.sas().count(), 1);
    assert_eq!(p.b.sas().count(), 1);
}

// ---------------------------------------------------------------- priority 4: DoS

fn forged_init(rng: &mut TestRng, spi: u64) -> Vec<u8> {
    use ike::packet::iana::{ExchangeType, KeMethod};
    use ike::packet::{Flags, IkeSpi, MessageBuilder, Nonce};
    let kx = ike::KeyExchange::generate(KeMethod::CURVE25519, rng).unwrap();
    MessageBuilder::new(
        IkeSpi::from(spi),
        IkeSpi::ZERO,
        ExchangeType::IKE_SA_INIT,
        Flags::INITIATOR,
        0,
    )
    .payload(ike::Proposal::sa_payload(
        &props(ike::packet::iana::ProtocolId::IKE, GCM.0),
        &[],
    ))
    .payload(kx.ke_payload())
    .payload(Nonce::random(rng, 32).unwrap())
    .encode()
    .unwrap()
}

#[test]
fn cookies_under_a_flood_of_half_open_sas() {
    let mut cb = lab_endpoint_config();
    cb.cookie_threshold = 4;
    let mut p = Pair::with_configs(60, lab_endpoint_config(), cb);
    let mut b = conn(Side::B, GCM.0, GCM.1);
    // Accept from anywhere, so the flood reaches the proposal stage.
    b.remote = sa("0.0.0.0".parse().unwrap(), 500);
    let now = p.now;
    p.b.add_connection(now, b);
    let mut rng = TestRng(61);
    for i in 0..20u8 {
        let d = forged_init(&mut rng, 0x1000 + u64::from(i));
        let src = sa(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i)),
            500,
        );
        let now = p.now;
        p.b.handle_datagram(now, sa(B_IP, 500), src, &d);
    }
    assert_eq!(p.b.sas().count(), 4, "state only up to the threshold");
    assert_eq!(p.b.stats().cookies_sent, 16);
    // A legitimate initiator gets a cookie, retries with it, and gets through.
    let now = p.now;
    p.a.add_connection(now, conn(Side::A, GCM.0, GCM.1));
    p.run(Duration::from_secs(3));
    assert_eq!(p.ike_up(Side::A), 1, "{:?}", p.events_a);
    assert_eq!(p.ike_up(Side::B), 1);
    assert_eq!(p.b.stats().cookies_sent, 17);
    // INIT, COOKIE, INIT with cookie, response, AUTH, response.
    let a_sent = p.sent.iter().filter(|s| s.from == Side::A).count();
    assert_eq!(a_sent, 3);
    // The half-open SAs time out.
    p.run(Duration::from_secs(40));
    assert_eq!(p.b.sas().count(), 1);
}

#[test]
fn half_open_limit_per_peer_address() {
    let mut cb = lab_endpoint_config();
    cb.cookie_threshold = 1000;
    cb.half_open_per_peer = 3;
    let mut p = Pair::with_configs(62, lab_endpoint_config(), cb);
    let now = p.now;
    p.b.add_connection(now, conn(Side::B, GCM.0, GCM.1));
    let mut rng = TestRng(63);
    for i in 0..10u64 {
        let d = forged_init(&mut rng, 0x2000 + i);
        let now = p.now;
        p.b.handle_datagram(now, sa(B_IP, 500), sa(A_IP, 500), &d);
    }
    assert_eq!(p.b.sas().count(), 3);
    assert_eq!(p.b.stats().dropped_half_open, 7);
}

#[test]
fn bad_cookie_is_not_accepted() {
    use ike::packet::{Message, NotifyPayload, Payload};
    let mut cb = lab_endpoint_config();
    cb.cookie_threshold = 0;
    let mut p = Pair::with_configs(64, lab_endpoint_config(), cb);
    let now = p.now;
    p.b.add_connection(now, conn(Side::B, GCM.0, GCM.1));
    let mut rng = TestRng(65);
    let d = forged_init(&mut rng, 0x3000);
    let mut m = Message::decode(&d).unwrap();
    m.payloads.insert(
        0,
        Payload::Notify(NotifyPayload::cookie(vec![0, 0, 0, 0, 1, 2, 3])),
    );
    let now = p.now;
    p.b.handle_datagram(now, sa(B_IP, 500), sa(A_IP, 500), &m.encode().unwrap());
    assert_eq!(p.b.sas().count(), 0);
    assert_eq!(p.b.stats().dropped_bad_cookie, 1);
}
