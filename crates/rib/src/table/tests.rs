use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::{NextHop, Source};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn via(s: &str) -> NextHop {
    NextHop::Address {
        via: addr(s),
        dev: None,
    }
}

#[test]
fn longest_prefix_wins() {
    let mut t = Table::new();
    t.insert(Route::new(
        net("0.0.0.0/0"),
        via("10.0.0.1"),
        Source::Static,
    ));
    t.insert(Route::new(
        net("172.16.0.0/16"),
        via("10.0.0.2"),
        Source::Static,
    ));
    t.insert(Route::new(
        net("172.16.2.0/24"),
        via("10.0.0.3"),
        Source::Static,
    ));
    let hit = |a| t.lookup(addr(a)).unwrap().primary().next_hop.clone();
    assert_eq!(hit("172.16.2.10"), via("10.0.0.3"));
    assert_eq!(hit("172.16.1.2"), via("10.0.0.2"));
    assert_eq!(hit("8.8.8.8"), via("10.0.0.1"));
    assert_eq!(t.lookup(addr("::1")), None);
}

#[test]
fn host_bits_are_cleared() {
    let mut t = Table::new();
    t.insert(Route::new(
        net("192.168.10.77/24"),
        via("10.0.0.1"),
        Source::Static,
    ));
    assert_eq!(
        t.lookup(addr("192.168.10.1")).unwrap().prefix,
        net("192.168.10.0/24")
    );
    assert!(t.best(net("192.168.10.0/24")).is_some());
}

#[test]
fn preference_beats_weight_and_published_beats_propagated() {
    let mut t = Table::new();
    let p = net("192.168.10.0/24");
    let cen = Route::new(
        p,
        via("100.64.0.5"),
        Source::Propagated { from: "cen".into() },
    );
    let vpn = Route::new(
        p,
        via("172.16.1.2"),
        Source::Published { by: "vpngw".into() },
    )
    .with_weight(Route::STANDBY);
    t.insert(cen.clone());
    assert_eq!(
        t.lookup(addr("192.168.10.10")).unwrap().routes,
        std::slice::from_ref(&cen)
    );
    assert!(
        t.insert(vpn.clone()),
        "a better route changes the selection"
    );
    // Preference is compared before weight: the standby published route still wins.
    assert_eq!(
        t.lookup(addr("192.168.10.10")).unwrap().routes,
        std::slice::from_ref(&vpn)
    );
    assert_eq!(t.remove(&vpn), Some(vpn));
    assert_eq!(t.lookup(addr("192.168.10.10")).unwrap().routes, &[cen]);
}

#[test]
fn weight_picks_active_over_standby() {
    let mut t = Table::new();
    let p = net("10.1.0.0/16");
    let active = Route::new(p, NextHop::Connection("tun-a".into()), Source::Static);
    let standby = Route::new(p, NextHop::Connection("tun-b".into()), Source::Static)
        .with_weight(Route::STANDBY);
    t.insert(standby.clone());
    t.insert(active.clone());
    assert_eq!(t.best(p).unwrap().routes, std::slice::from_ref(&active));
    t.remove(&active);
    assert_eq!(t.best(p).unwrap().routes, &[standby]);
}

#[test]
fn equal_routes_form_an_ecmp_set() {
    let mut t = Table::new();
    let p = net("2001:db8::/32");
    let a = Route::new(p, NextHop::Connection("a".into()), Source::Static);
    let b = Route::new(p, NextHop::Connection("b".into()), Source::Static);
    let worse = Route::new(p, NextHop::Connection("c".into()), Source::Bgp);
    t.insert(worse.clone());
    t.insert(b.clone());
    t.insert(a.clone());
    let sel = t.lookup(addr("2001:db8::1")).unwrap();
    assert_eq!(sel.routes, &[a, b]);
    assert_eq!(t.candidates(p).last(), Some(&worse));
}

#[test]
fn reinsert_replaces_and_reports_change() {
    let mut t = Table::new();
    let p = net("10.0.0.0/8");
    let r = Route::new(p, via("1.1.1.1"), Source::Static);
    assert!(t.insert(r.clone()));
    assert!(!t.insert(r.clone()), "same route again changes nothing");
    assert!(t.insert(r.clone().with_weight(Route::STANDBY)));
    assert_eq!(t.len(), 1);
}

#[test]
fn remove_where_drops_a_whole_source() {
    let mut t = Table::new();
    for (i, p) in ["10.0.0.0/8", "10.1.0.0/16", "fd00::/8"]
        .into_iter()
        .enumerate()
    {
        t.insert(Route::new(net(p), via("10.9.9.9"), Source::Bgp));
        t.insert(
            Route::new(net(p), NextHop::Blackhole, Source::Static).with_preference(i as u32 + 500),
        );
    }
    assert_eq!(t.remove_where(|r| r.source == Source::Bgp).len(), 3);
    assert!(t.iter().all(|r| r.next_hop == NextHop::Blackhole));
    assert_eq!(t.remove_where(|_| true).len(), 3);
    assert!(t.is_empty());
}

#[test]
fn routes_round_trip_through_json() {
    let r = Route::new(
        net("172.16.0.0/16"),
        via("100.64.0.6"),
        Source::Propagated { from: "vpc".into() },
    );
    let j = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<Route>(&j).unwrap(), r);
}

// ---- property test against a brute-force linear table ----

#[derive(Clone, Debug)]
enum Op {
    Insert(Route),
    Remove(Route),
}

fn arb_prefix() -> impl Strategy<Value = IpNet> {
    // A small address space so prefixes overlap and compete often.
    prop_oneof![
        (0u8..4, 0u8..4, 0u8..=32).prop_map(|(a, b, len)| {
            IpNet::new(IpAddr::from([10, a, b, 0]), len)
                .unwrap()
                .trunc()
        }),
        (0u16..4, 0u8..=128).prop_map(|(a, len)| {
            IpNet::new(IpAddr::from([0xfd00, a, 0, 0, 0, 0, 0, 0]), len)
                .unwrap()
                .trunc()
        }),
    ]
}

fn arb_route() -> impl Strategy<Value = Route> {
    let hop = prop_oneof![
        (0u8..3).prop_map(|i| NextHop::Connection(format!("c{i}"))),
        Just(NextHop::Blackhole),
    ];
    let src = prop_oneof![
        Just(Source::Static),
        Just(Source::Bgp),
        Just(Source::Connected)
    ];
    (
        arb_prefix(),
        hop,
        src,
        0u32..3,
        prop_oneof![Just(0u32), Just(100u32)],
    )
        .prop_map(|(p, h, s, pref, w)| Route::new(p, h, s).with_preference(pref).with_weight(w))
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..4, 0u8..4, any::<u8>()).prop_map(|(a, b, c)| IpAddr::from([10, a, b, c])),
        (0u16..4, any::<u16>()).prop_map(|(a, z)| IpAddr::from([0xfd00, a, 0, 0, 0, 0, 0, z])),
    ]
}

/// The reference: scan every route, keep the longest containing prefix, apply the rule.
fn brute_lookup(routes: &[Route], a: IpAddr) -> Option<(IpNet, Vec<Route>)> {
    let len = routes
        .iter()
        .filter(|r| r.prefix.contains(&a))
        .map(|r| r.prefix.prefix_len())
        .max()?;
    let mut cands: Vec<Route> = routes
        .iter()
        .filter(|r| r.prefix.contains(&a) && r.prefix.prefix_len() == len)
        .cloned()
        .collect();
    cands.sort_by(select);
    let best = cands
        .iter()
        .filter(|r| equal_cost(&cands[0], r))
        .cloned()
        .collect();
    Some((cands[0].prefix, best))
}

proptest! {
    #[test]
    fn lookup_matches_brute_force(
        ops in proptest::collection::vec(
            prop_oneof![3 => arb_route().prop_map(Op::Insert), 1 => arb_route().prop_map(Op::Remove)],
            0..80,
        ),
        probes in proptest::collection::vec(arb_addr(), 1..40),
    ) {
        let mut t = Table::new();
        let mut reference: Vec<Route> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(r) => {
                    reference.retain(|x| !x.same_identity(&r));
                    reference.push(r.clone());
                    t.insert(r);
                }
                Op::Remove(r) => {
                    let had = reference.iter().any(|x| x.same_identity(&r));
                    reference.retain(|x| !x.same_identity(&r));
                    prop_assert_eq!(t.remove(&r).is_some(), had);
                }
            }
        }
        prop_assert_eq!(t.len(), reference.len());
        for a in probes {
            let got = t.lookup(a).map(|s| (s.prefix, s.routes.to_vec()));
            prop_assert_eq!(got, brute_lookup(&reference, a), "address {}", a);
        }
    }
}
