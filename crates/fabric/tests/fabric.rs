//! Propagation, publication, the preference rule, the walk and `explain`, on the seed's lab.

use std::net::IpAddr;

use fabric::{
    Fabric, FabricConfig, FabricError, GatewayTunnel, KernelNextHop, KernelRoute, Method, Outcome,
    Verdict, MAX_HOPS, PUBLISHED_BEATS_PROPAGATED,
};
use ipnet::IpNet;
use proptest::prelude::*;
use rib::{NextHop, Source};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn lab(method: Method) -> Fabric {
    Fabric::new(FabricConfig::default().with_method(method)).unwrap()
}

/// Every candidate of a node's table, one line each, sorted.
fn table(f: &Fabric, node: &str) -> Vec<String> {
    let mut v: Vec<String> = f
        .table(node)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    v.sort();
    v
}

fn lines(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

const DC: &str = "192.168.10.0/24";

#[test]
fn propagation_tables_of_the_default_lab() {
    let f = lab(Method::One);
    assert_eq!(
        table(&f, "vbr"),
        lines(&[
            "10.0.0.0/30 dev onprem-gw (connected, pref 0, weight 100)",
            "100.64.0.0/30 dev cen (connected, pref 0, weight 100)",
            "192.168.10.0/24 via 10.0.0.1 dev onprem-gw (static, pref 10, weight 100)",
            "172.16.0.0/16 via 100.64.0.2 dev cen (propagated from cen, pref 200, weight 100)",
        ])
    );
    assert_eq!(
        table(&f, "cen"),
        lines(&[
            "100.64.0.0/30 dev vbr (connected, pref 0, weight 100)",
            "100.64.0.4/30 dev vpc (connected, pref 0, weight 100)",
            "10.0.0.0/30 via 100.64.0.1 dev vbr (propagated from vbr, pref 200, weight 100)",
            "192.168.10.0/24 via 100.64.0.1 dev vbr (propagated from vbr, pref 200, weight 100)",
            "172.16.0.0/16 via 100.64.0.6 dev vpc (propagated from vpc, pref 200, weight 100)",
        ])
    );
    assert_eq!(
        table(&f, "vpc"),
        lines(&[
            "100.64.0.4/30 dev cen (connected, pref 0, weight 100)",
            "172.16.1.0/24 dev vpngw (connected, pref 0, weight 100)",
            "172.16.2.0/24 dev ecs (connected, pref 0, weight 100)",
            "10.0.0.0/30 via 100.64.0.5 dev cen (propagated from cen, pref 200, weight 100)",
            "192.168.10.0/24 via 100.64.0.5 dev cen (propagated from cen, pref 200, weight 100)",
        ])
    );
    assert_eq!(
        table(&f, "onprem-gw"),
        lines(&[
            "192.168.10.0/24 dev client (connected, pref 0, weight 100)",
            "10.0.0.0/30 dev vbr (connected, pref 0, weight 100)",
            "172.16.0.0/16 via 10.0.0.2 dev vbr (static, pref 10, weight 100)",
        ])
    );
    assert_eq!(
        table(&f, "ecs"),
        lines(&[
            "172.16.2.0/24 dev vpc (connected, pref 0, weight 100)",
            "0.0.0.0/0 via 172.16.2.1 dev vpc (static, pref 10, weight 100)",
        ])
    );
    assert!(f.table("nowhere").is_none());
}

#[test]
fn routes_are_never_reflected_to_their_attachment() {
    let f = lab(Method::One);
    // The VPC does not get its own address space back, nor the VBR the data center.
    assert!(f
        .table("vpc")
        .unwrap()
        .candidates(net("172.16.0.0/16"))
        .is_empty());
    assert!(f
        .table("vbr")
        .unwrap()
        .candidates(net(DC))
        .iter()
        .all(|r| r.source == Source::Static));
    // The VBR's link to the CEN stays local.
    assert!(f
        .table("vpc")
        .unwrap()
        .candidates(net("100.64.0.0/30"))
        .is_empty());
}

#[test]
fn kernel_routes_are_the_selected_non_connected_routes() {
    let f = lab(Method::One);
    let hop = |via: &str, dev: &str| KernelNextHop {
        via: ip(via),
        dev: dev.into(),
    };
    let route = |p: &str, via: &str, dev: &str| KernelRoute {
        prefix: net(p),
        nexthops: vec![hop(via, dev)],
        blackhole: false,
    };
    assert_eq!(
        f.kernel_routes("vpc"),
        [
            route("10.0.0.0/30", "100.64.0.5", "cen"),
            route(DC, "100.64.0.5", "cen"),
        ]
    );
    assert_eq!(
        f.kernel_routes("vbr"),
        [
            route("172.16.0.0/16", "100.64.0.2", "cen"),
            route(DC, "10.0.0.1", "onprem-gw"),
        ]
    );
    assert_eq!(
        f.kernel_routes("client"),
        [route("0.0.0.0/0", "192.168.10.1", "onprem-gw")]
    );
    assert_eq!(
        f.kernel_routes("vpngw"),
        [route("0.0.0.0/0", "172.16.1.1", "vpc")]
    );
    assert!(f.kernel_routes("nowhere").is_empty());
    let json = serde_json::to_string(&f.kernel_routes("ecs")).unwrap();
    assert_eq!(
        json,
        r#"[{"prefix":"0.0.0.0/0","nexthops":[{"via":"172.16.2.1","dev":"vpc"}],"blackhole":false}]"#
    );
}

#[test]
fn walk_client_to_ecs_and_back() {
    let f = lab(Method::One);
    let w = f.walk("client", ip("172.16.2.10"));
    assert_eq!(w.outcome, Outcome::Delivered);
    assert_eq!(
        w.path(),
        ["client", "onprem-gw", "vbr", "cen", "vpc", "ecs"]
    );
    let ins: Vec<Option<(String, IpAddr)>> = w
        .hops
        .iter()
        .map(|h| h.in_iface.clone().zip(h.in_addr))
        .collect();
    let at = |i: &str, a: &str| Some((i.to_owned(), ip(a)));
    assert_eq!(
        ins,
        [
            None,
            at("client", "192.168.10.1"),
            at("onprem-gw", "10.0.0.2"),
            at("vbr", "100.64.0.2"),
            at("cen", "100.64.0.6"),
            at("vpc", "172.16.2.10"),
        ]
    );
    let last = w.hops.last().unwrap();
    assert!(last.matched.is_none() && last.out_iface.is_none() && last.next_node.is_none());
    let vpc = &w.hops[4];
    assert_eq!(
        vpc.matched.as_ref().map(|r| (r.prefix, r.source.clone())),
        Some((net("172.16.2.0/24"), Source::Connected))
    );
    assert_eq!(vpc.out_iface.as_deref(), Some("ecs"));
    assert_eq!(vpc.next_node.as_deref(), Some("ecs"));
    assert_eq!(
        w.to_string(),
        "client → onprem-gw (192.168.10.1) → vbr (10.0.0.2) → cen (100.64.0.2) → vpc \
         (100.64.0.6) → ecs (172.16.2.10): delivered"
    );

    let back = f.walk("ecs", ip("192.168.10.10"));
    assert_eq!(back.outcome, Outcome::Delivered);
    assert_eq!(
        back.path(),
        ["ecs", "vpc", "cen", "vbr", "onprem-gw", "client"]
    );
    let addrs: Vec<Option<IpAddr>> = back.hops.iter().map(|h| h.in_addr).collect();
    assert_eq!(
        addrs,
        [
            None,
            Some(ip("172.16.2.1")),
            Some(ip("100.64.0.5")),
            Some(ip("100.64.0.1")),
            Some(ip("10.0.0.1")),
            Some(ip("192.168.10.10")),
        ]
    );
    // The VPN gateway's own address is reachable over the line: the outer path of the tunnel.
    let outer = f.walk("onprem-gw", ip("172.16.1.2"));
    assert_eq!(outer.path(), ["onprem-gw", "vbr", "cen", "vpc", "vpngw"]);
    assert_eq!(outer.outcome, Outcome::Delivered);
    let json = serde_json::to_value(&back).unwrap();
    assert_eq!(json["outcome"]["outcome"], "delivered");
}

#[test]
fn published_route_wins_over_the_cen_route_and_withdraw_restores_it() {
    let mut f = lab(Method::One);
    let dc = net(DC);
    let selected = |f: &Fabric| f.table("vpc").unwrap().best(dc).unwrap().primary().clone();
    assert_eq!(
        selected(&f).source,
        Source::Propagated { from: "cen".into() }
    );
    let cen_before = table(&f, "cen");
    let vbr_before = table(&f, "vbr");

    assert_eq!(f.publish("vpngw", dc), Ok(true));
    assert_eq!(
        f.publish("vpngw", dc),
        Ok(false),
        "publishing twice changes nothing"
    );
    let won = selected(&f);
    assert_eq!(won.source, Source::Published { by: "vpngw".into() });
    assert_eq!(
        won.next_hop,
        NextHop::Address {
            via: ip("172.16.1.2"),
            dev: Some("vpngw".into())
        }
    );
    assert_eq!(won.preference, 50);
    // The CEN route is still a candidate: it loses, it is not gone.
    assert_eq!(f.table("vpc").unwrap().candidates(dc).len(), 2);
    assert_eq!(f.published(), [("vpngw".to_owned(), dc)]);
    // Never exported: the CEN and the VBR do not change.
    assert_eq!(table(&f, "cen"), cen_before);
    assert_eq!(table(&f, "vbr"), vbr_before);
    assert_eq!(
        f.kernel_routes("vpc")[1],
        KernelRoute {
            prefix: dc,
            nexthops: vec![KernelNextHop {
                via: ip("172.16.1.2"),
                dev: "vpngw".into()
            }],
            blackhole: false
        }
    );
    // ECS → client now goes to the VPN gateway. Without a tunnel in the model, the gateway's
    // default route sends it back to the VPC: a loop, which is what a dead tunnel under
    // method 1 means until the route is withdrawn.
    let w = f.walk("ecs", ip("192.168.10.10"));
    assert_eq!(&w.path()[..4], ["ecs", "vpc", "vpngw", "vpc"]);
    assert_eq!(w.outcome, Outcome::Loop);
    assert_eq!(w.hops.len(), MAX_HOPS);

    assert_eq!(f.withdraw("vpngw", dc), Ok(true));
    assert_eq!(f.withdraw("vpngw", dc), Ok(false));
    assert_eq!(
        selected(&f).source,
        Source::Propagated { from: "cen".into() }
    );
    assert!(f.published().is_empty());
    assert_eq!(
        f.walk("ecs", ip("192.168.10.10")).outcome,
        Outcome::Delivered
    );
}

#[test]
fn publication_errors() {
    let mut f = lab(Method::One);
    assert_eq!(
        f.publish("nobody", net(DC)),
        Err(FabricError::UnknownNode("nobody".into()))
    );
    assert_eq!(
        f.publish("vbr", net(DC)),
        Err(FabricError::NotAGateway("vbr".into()))
    );
    assert_eq!(
        f.publish("onprem-gw", net(DC)),
        Err(FabricError::NoVpcAttachment("onprem-gw".into()))
    );
    let e = f.publish("vpngw", net("172.16.9.0/24")).unwrap_err();
    assert_eq!(
        e,
        FabricError::InsideVpcCidr {
            prefix: net("172.16.9.0/24"),
            cidr: net("172.16.0.0/16")
        }
    );
    assert!(e
        .to_string()
        .contains("inside the VPC's cidr 172.16.0.0/16"));
    // The whole VPC CIDR is inside it too; a covering prefix (a default route) is not.
    assert!(f.publish("vpngw", net("172.16.0.0/16")).is_err());
    assert_eq!(f.publish("vpngw", net("0.0.0.0/0")), Ok(true));
    assert_eq!(
        f.withdraw("ecs", net(DC)),
        Err(FabricError::NotAGateway("ecs".into()))
    );
}

#[test]
fn withdraw_all_is_what_a_tunnel_failure_does() {
    let mut f = lab(Method::Two);
    f.publish("vpngw", net(DC)).unwrap();
    f.publish("vpngw", net("10.0.0.0/30")).unwrap();
    assert_eq!(
        f.withdraw_all("vpngw").unwrap(),
        [net("10.0.0.0/30"), net(DC)]
    );
    assert!(f.published().is_empty());
    assert_eq!(f.withdraw_all("vpngw").unwrap(), []);
}

#[test]
fn explain_shows_the_rule() {
    let mut f = lab(Method::One);
    let ex = f.explain("vpc", net(DC)).unwrap();
    assert_eq!(ex.candidates.len(), 1);
    assert_eq!(ex.candidates[0].verdict, Verdict::Selected);
    assert!(ex.candidates[0].reason.contains("the only candidate"));

    f.publish("vpngw", net(DC)).unwrap();
    let ex = f.explain("vpc", net(DC)).unwrap();
    assert_eq!(ex.prefix, net(DC));
    let verdicts: Vec<(Source, Verdict)> = ex
        .candidates
        .iter()
        .map(|c| (c.route.source.clone(), c.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            (Source::Published { by: "vpngw".into() }, Verdict::Selected),
            (Source::Propagated { from: "cen".into() }, Verdict::Lost),
        ]
    );
    assert!(ex.candidates[0].reason.contains(PUBLISHED_BEATS_PROPAGATED));
    assert!(ex.candidates[1].reason.contains("preference 200"));
    assert!(ex.candidates[1].reason.contains("unencrypted"));
    let shown = ex.to_string();
    assert!(shown.starts_with("vpc 192.168.10.0/24:\n  * 192.168.10.0/24 via 172.16.1.2 dev vpngw (published by vpngw, pref 50"), "{shown}");
    assert_eq!(ex.selected().count(), 1);

    // A host address is explained by the prefix that covers it.
    let ex = f.explain("vpc", net("192.168.10.10/32")).unwrap();
    assert_eq!((ex.asked, ex.prefix), (net("192.168.10.10/32"), net(DC)));
    assert!(ex.to_string().contains("(covers 192.168.10.10/32)"));

    assert_eq!(
        f.explain("vpc", net("8.8.8.8/32")),
        Err(FabricError::NotFound {
            node: "vpc".into(),
            prefix: net("8.8.8.8/32")
        })
    );
    assert_eq!(
        f.explain("nobody", net(DC)),
        Err(FabricError::UnknownNode("nobody".into()))
    );
}

#[test]
fn method_3_learns_the_data_center_from_bgp_on_the_vbr() {
    let mut f = lab(Method::Three);
    let dc = net(DC);
    // Until BGP speaks, the cloud has no route to the data center.
    assert!(f.table("vbr").unwrap().candidates(dc).is_empty());
    assert!(f.table("vpc").unwrap().candidates(dc).is_empty());
    assert_eq!(
        f.walk("ecs", ip("192.168.10.10")).outcome,
        Outcome::NoRoute { node: "vpc".into() }
    );

    assert_eq!(f.learn_bgp("vbr", dc, ip("10.0.0.1")), Ok(true));
    assert_eq!(f.learn_bgp("vbr", dc, ip("10.0.0.1")), Ok(false));
    assert_eq!(
        f.table("vbr").unwrap().best(dc).unwrap().primary().source,
        Source::Bgp
    );
    assert_eq!(
        f.table("vpc").unwrap().best(dc).unwrap().primary().source,
        Source::Propagated { from: "cen".into() }
    );
    assert_eq!(
        f.walk("ecs", ip("192.168.10.10")).outcome,
        Outcome::Delivered
    );
    assert_eq!(f.bgp_routes(), [("vbr".to_owned(), dc, ip("10.0.0.1"))]);

    let ex = f.explain("vbr", dc).unwrap();
    let verdicts: Vec<Verdict> = ex.candidates.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts, [Verdict::Selected, Verdict::Inactive]);

    assert_eq!(f.forget_bgp("vbr", dc, ip("10.0.0.1")), Ok(true));
    assert_eq!(f.forget_bgp("vbr", dc, ip("10.0.0.1")), Ok(false));
    assert!(f.table("vpc").unwrap().candidates(dc).is_empty());

    f.learn_bgp("vbr", dc, ip("10.0.0.1")).unwrap();
    assert_eq!(f.forget_all_bgp("vbr"), Ok(1));
    assert!(f.bgp_routes().is_empty());
}

#[test]
fn learn_bgp_errors() {
    let mut f = lab(Method::One);
    assert_eq!(
        f.learn_bgp("vbr", net(DC), ip("10.0.0.1")),
        Err(FabricError::BgpDisabled { node: "vbr".into() })
    );
    let mut f = lab(Method::Three);
    assert_eq!(
        f.learn_bgp("vbr", net(DC), ip("10.0.0.9")),
        Err(FabricError::ViaOffLink {
            node: "vbr".into(),
            via: ip("10.0.0.9")
        })
    );
    assert!(matches!(
        f.learn_bgp("vbr", net(DC), ip("10.0.0.2")),
        Err(FabricError::ViaOffLink { .. })
    ));
    assert!(matches!(
        f.learn_bgp("vbr", net("2001:db8::/32"), ip("10.0.0.1")),
        Err(FabricError::FamilyMismatch { .. })
    ));
    assert_eq!(
        f.learn_bgp("x", net(DC), ip("10.0.0.1")),
        Err(FabricError::UnknownNode("x".into()))
    );
}

#[test]
fn owner_of_finds_node_and_interface() {
    let f = lab(Method::One);
    let (n, i) = f.owner_of(ip("172.16.1.2")).unwrap();
    assert_eq!((n.name.as_str(), i.name.as_str()), ("vpngw", "vpc"));
    assert_eq!(i.link, 4);
    assert_eq!(f.links()[4].a.node, "vpc");
    assert!(f.owner_of(ip("172.16.1.3")).is_none());
}

#[test]
fn walk_outcomes() {
    let f = lab(Method::One);
    // On-link but nobody has it.
    assert_eq!(
        f.walk("client", ip("192.168.10.99")).outcome,
        Outcome::Unreachable {
            node: "client".into()
        }
    );
    // No default route in the VPC.
    assert_eq!(
        f.walk("ecs", ip("8.8.8.8")).outcome,
        Outcome::NoRoute { node: "vpc".into() }
    );
    assert_eq!(
        f.walk("nobody", ip("8.8.8.8")).outcome,
        Outcome::UnknownNode {
            node: "nobody".into()
        }
    );
    // Starting at the destination.
    let w = f.walk("ecs", ip("172.16.2.10"));
    assert_eq!((w.hops.len(), w.outcome), (1, Outcome::Delivered));

    // A blackhole, and a host in the middle of a path.
    let text = r#"
[[node]]
name = "a"
kind = "host"
[[node]]
name = "h"
kind = "host"
[[node]]
name = "r"
kind = "gateway"
[[link]]
a = { node = "a", addr = "10.1.0.1/30" }
b = { node = "h", addr = "10.1.0.2/30" }
[[link]]
a = { node = "h", addr = "10.2.0.1/30" }
b = { node = "r", addr = "10.2.0.2/30" }
[[route]]
node = "a"
prefix = "10.2.0.0/30"
via = "10.1.0.2"
[[route]]
node = "a"
prefix = "203.0.113.0/24"
blackhole = true
"#;
    let f = Fabric::new(FabricConfig::from_toml("t.toml", text).unwrap()).unwrap();
    assert_eq!(
        f.walk("a", ip("10.2.0.2")).outcome,
        Outcome::NotForwarded { node: "h".into() }
    );
    assert_eq!(
        f.walk("a", ip("203.0.113.7")).outcome,
        Outcome::Blackhole { node: "a".into() }
    );
    assert_eq!(
        f.kernel_routes("a")[1],
        KernelRoute {
            prefix: net("203.0.113.0/24"),
            nexthops: vec![],
            blackhole: true
        }
    );
    assert_eq!(
        Outcome::Blackhole { node: "a".into() }.to_string(),
        "dropped by a blackhole route at a"
    );
}

#[test]
fn two_gateways_publishing_one_prefix_share_it() {
    let text = FabricConfig::default().to_toml()
        + r#"
[[node]]
name = "vpngw2"
kind = "gateway"

[[link]]
a = { node = "vpc", addr = "172.16.3.1/24" }
b = { node = "vpngw2", addr = "172.16.3.2/24" }
"#;
    let mut f = Fabric::new(FabricConfig::from_toml("t.toml", &text).unwrap()).unwrap();
    f.publish("vpngw", net(DC)).unwrap();
    f.publish("vpngw2", net(DC)).unwrap();
    let k = f.kernel_routes("vpc");
    let dc = k.iter().find(|r| r.prefix == net(DC)).unwrap();
    let vias: Vec<IpAddr> = dc.nexthops.iter().map(|h| h.via).collect();
    assert_eq!(vias, [ip("172.16.1.2"), ip("172.16.3.2")]);
    let ex = f.explain("vpc", net(DC)).unwrap();
    assert!(ex.candidates[1].reason.contains("ECMP"), "{ex}");
    f.withdraw("vpngw", net(DC)).unwrap();
    assert_eq!(
        f.table("vpc").unwrap().best(net(DC)).unwrap().routes.len(),
        1
    );
}

#[derive(Clone, Debug)]
enum Op {
    Publish(usize),
    Withdraw(usize),
    Learn(usize),
    Forget(usize),
}

fn prefixes() -> Vec<IpNet> {
    [
        "192.168.10.0/24",
        "192.168.0.0/16",
        "0.0.0.0/0",
        "10.0.0.0/30",
        "10.0.0.0/8",
        "100.64.0.0/30",
        "192.168.10.10/32",
        "172.16.1.2/32",
        "203.0.113.0/24",
    ]
    .iter()
    .map(|s| net(s))
    .collect()
}

fn op() -> impl Strategy<Value = Op> {
    let n = prefixes().len();
    prop_oneof![
        (0..n).prop_map(Op::Publish),
        (0..n).prop_map(Op::Withdraw),
        (0..n).prop_map(Op::Learn),
        (0..n).prop_map(Op::Forget),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever is published, learned, withdrawn or forgotten, every walk ends within
    /// MAX_HOPS, a delivered walk ends at the destination's owner, and the tables stay
    /// explainable.
    #[test]
    fn walks_always_terminate(
        method in 0..3usize,
        ops in proptest::collection::vec(op(), 0..12),
        dsts in proptest::collection::vec(any::<u32>(), 1..6),
    ) {
        let mut f = lab(Method::ALL[method]);
        let ps = prefixes();
        for op in ops {
            // Refusals (inside the VPC, BGP disabled) are fine: the fabric must stay sane.
            let _ = match op {
                Op::Publish(i) => f.publish("vpngw", ps[i]),
                Op::Withdraw(i) => f.withdraw("vpngw", ps[i]),
                Op::Learn(i) => f.learn_bgp("vbr", ps[i], ip("10.0.0.1")),
                Op::Forget(i) => f.forget_bgp("vbr", ps[i], ip("10.0.0.1")),
            };
        }
        let mut targets: Vec<IpAddr> = dsts.into_iter().map(|d| IpAddr::from(d.to_be_bytes())).collect();
        targets.extend(f.nodes().iter().flat_map(|n| n.interfaces.iter().map(|i| i.addr.addr())));
        for node in f.nodes() {
            for &dst in &targets {
                let w = f.walk(&node.name, dst);
                prop_assert!(!w.hops.is_empty() && w.hops.len() <= MAX_HOPS);
                if w.outcome == Outcome::Delivered {
                    let last = &w.hops[w.hops.len() - 1].node;
                    prop_assert_eq!(f.owner_of(dst).map(|(n, _)| &n.name), Some(last));
                }
                prop_assert_eq!(w.outcome == Outcome::Loop, w.hops.len() == MAX_HOPS);
            }
            for r in f.kernel_routes(&node.name) {
                prop_assert!(r.blackhole || !r.nexthops.is_empty());
                let _ = f.explain(&node.name, r.prefix).unwrap();
            }
        }
    }
}

/// The seed's tunnel as the lab's two daemons report it: on-premises gateway 10.0.0.1 ⇄ VPN
/// gateway 172.16.1.2, inside 169.254.10.0/30.
fn with_tunnel(f: &mut Fabric, up: bool) {
    f.set_tunnel(
        "onprem-gw",
        GatewayTunnel {
            connection: "to-vpc".into(),
            local: ip("10.0.0.1"),
            peer: ip("172.16.1.2"),
            iface: "vpngw0".into(),
            inside: Some(ip("169.254.10.2")),
            up,
            routes: vec![net("172.16.0.0/16")],
        },
    )
    .unwrap();
    f.set_tunnel(
        "vpngw",
        GatewayTunnel {
            connection: "to-dc".into(),
            local: ip("172.16.1.2"),
            peer: ip("10.0.0.1"),
            iface: "vpngw0".into(),
            inside: Some(ip("169.254.10.1")),
            up,
            routes: vec![net("192.168.10.0/24")],
        },
    )
    .unwrap();
}

#[test]
fn walk_through_the_tunnel_is_the_seeds_twelve_steps() {
    let mut f = lab(Method::One);
    f.publish("vpngw", net("192.168.10.0/24")).unwrap();
    with_tunnel(&mut f, true);

    let there = f.walk("client", ip("172.16.2.10"));
    assert_eq!(there.outcome, Outcome::Delivered, "{there}");
    assert_eq!(there.path(), ["client", "onprem-gw", "vpngw", "vpc", "ecs"]);
    let at_gw = &there.hops[1];
    assert_eq!(
        at_gw.matched.as_ref().unwrap().next_hop,
        NextHop::Connection("to-vpc".into())
    );
    let leg = at_gw.tunnel.as_ref().unwrap();
    assert_eq!(
        (leg.outer_src, leg.outer_dst),
        (ip("10.0.0.1"), ip("172.16.1.2"))
    );
    // The outer packet never enters its own tunnel: it takes the line.
    assert_eq!(
        leg.outer.path(),
        ["onprem-gw", "vbr", "cen", "vpc", "vpngw"],
        "{}",
        leg.outer
    );
    assert_eq!(leg.outer.outcome, Outcome::Delivered);
    // It comes out of the VPN gateway's tunnel device, whose address answers TTL probes.
    assert_eq!(there.hops[2].in_iface.as_deref(), Some("vpngw0"));
    assert_eq!(there.hops[2].in_addr, Some(ip("169.254.10.1")));
    assert!(there
        .to_string()
        .contains("onprem-gw (192.168.10.1) ═[to-vpc]═▶ vpngw"));

    let back = f.walk("ecs", ip("192.168.10.10"));
    assert_eq!(back.outcome, Outcome::Delivered, "{back}");
    assert_eq!(back.path(), ["ecs", "vpc", "vpngw", "onprem-gw", "client"]);
    let leg = back.hops[2].tunnel.as_ref().unwrap();
    assert_eq!(
        leg.outer.path(),
        ["vpngw", "vpc", "cen", "vbr", "onprem-gw"]
    );
    assert_eq!(back.hops[3].in_addr, Some(ip("169.254.10.2")));
}

#[test]
fn a_tunnel_without_child_sa_drops_rather_than_leaks() {
    let mut f = lab(Method::One);
    f.publish("vpngw", net("192.168.10.0/24")).unwrap();
    with_tunnel(&mut f, false);
    let w = f.walk("client", ip("172.16.2.10"));
    assert_eq!(w.path(), ["client", "onprem-gw"]);
    assert!(
        matches!(&w.outcome, Outcome::TunnelDown { node, connection, .. } if node == "onprem-gw" && connection == "to-vpc"),
        "{w}"
    );
    // Routes gone (fallback): the line, unencrypted.
    f.set_tunnel(
        "onprem-gw",
        GatewayTunnel {
            connection: "to-vpc".into(),
            local: ip("10.0.0.1"),
            peer: ip("172.16.1.2"),
            iface: "vpngw0".into(),
            inside: Some(ip("169.254.10.2")),
            up: false,
            routes: vec![],
        },
    )
    .unwrap();
    let w = f.walk("client", ip("172.16.2.10"));
    assert_eq!(
        w.path(),
        ["client", "onprem-gw", "vbr", "cen", "vpc", "ecs"]
    );
}

#[test]
fn a_tunnel_whose_far_end_does_not_know_it_is_down() {
    let mut f = lab(Method::One);
    f.set_tunnel(
        "onprem-gw",
        GatewayTunnel {
            connection: "to-vpc".into(),
            local: ip("10.0.0.1"),
            peer: ip("172.16.1.2"),
            iface: "vpngw0".into(),
            inside: None,
            up: true,
            routes: vec![net("172.16.2.0/24")],
        },
    )
    .unwrap();
    let w = f.walk("client", ip("172.16.2.10"));
    assert!(
        matches!(&w.outcome, Outcome::TunnelDown { node, why, .. } if node == "vpngw" && why.contains("no connection from 10.0.0.1")),
        "{w}"
    );
    assert_eq!(
        f.set_tunnel("vbr", f.tunnels("onprem-gw")[0].clone()),
        Err(FabricError::NotAGateway("vbr".into()))
    );
}
