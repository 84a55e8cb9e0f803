//! The configuration file: defaults, the three methods and the forbidden one, and every rule's
//! error located by file, line and field.

use fabric::{
    ConfigError, ConfigErrors, EndConfig, Fabric, FabricConfig, LinkConfig, Method, NodeConfig,
    NodeKind, RouteConfig, RouteTarget, Routing, DEFAULT_FILE, DEFAULT_TOML,
};

const FILE: &str = "lab.toml";

/// The 1-based line of the first occurrence of `needle`.
fn line(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"));
    text[..at].matches('\n').count() + 1
}

fn errors(text: &str) -> ConfigErrors {
    match FabricConfig::from_toml(FILE, text) {
        Ok(c) => panic!("accepted:\n{text}\nas {c:?}"),
        Err(e) => e,
    }
}

/// The one error of `text`.
fn error(text: &str) -> ConfigError {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got:\n{e}");
    e.0[0].clone()
}

/// The default file with `from` replaced by `to` (which must occur once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        DEFAULT_TOML.matches(from).count(),
        1,
        "{from:?} is not unique"
    );
    DEFAULT_TOML.replace(from, to)
}

fn assert_error(e: &ConfigError, text: &str, needle: &str, field: &str, words: &[&str]) {
    assert_eq!(e.file, FILE, "{e}");
    assert_eq!(e.line, line(text, needle), "{e}");
    assert_eq!(e.field, field, "{e}");
    for w in words {
        assert!(e.message.contains(w), "{e}\nlacks {w:?}");
    }
}

#[test]
fn default_parses_and_builds() {
    let config = FabricConfig::default();
    assert_eq!(config.method(), Method::One);
    assert_eq!(
        config,
        FabricConfig::from_toml(DEFAULT_FILE, DEFAULT_TOML).unwrap()
    );
    let fabric = Fabric::new(config).unwrap();
    let names: Vec<&str> = fabric.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["client", "onprem-gw", "vbr", "cen", "vpc", "vpngw", "ecs"]
    );
    assert_eq!(fabric.links().len(), 6);
    assert_eq!(
        fabric.data_center_cidrs(),
        ["192.168.10.0/24".parse().unwrap()]
    );
    assert_eq!(fabric.vpc_cidrs("vpc"), ["172.16.0.0/16".parse().unwrap()]);
}

#[test]
fn default_is_the_mission_lab_table() {
    let fabric = Fabric::new(FabricConfig::default()).unwrap();
    let addrs = |node: &str| -> Vec<(String, String)> {
        fabric
            .node(node)
            .unwrap()
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), i.addr.to_string()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(addrs("client"), pairs(&[("onprem-gw", "192.168.10.10/24")]));
    assert_eq!(
        addrs("onprem-gw"),
        pairs(&[("client", "192.168.10.1/24"), ("vbr", "10.0.0.1/30")])
    );
    assert_eq!(
        addrs("vbr"),
        pairs(&[("onprem-gw", "10.0.0.2/30"), ("cen", "100.64.0.1/30")])
    );
    assert_eq!(
        addrs("cen"),
        pairs(&[("vbr", "100.64.0.2/30"), ("vpc", "100.64.0.5/30")])
    );
    assert_eq!(
        addrs("vpc"),
        pairs(&[
            ("cen", "100.64.0.6/30"),
            ("vpngw", "172.16.1.1/24"),
            ("ecs", "172.16.2.1/24")
        ])
    );
    assert_eq!(addrs("vpngw"), pairs(&[("vpc", "172.16.1.2/24")]));
    assert_eq!(addrs("ecs"), pairs(&[("vpc", "172.16.2.10/24")]));
    let kinds: Vec<NodeKind> = fabric.nodes().iter().map(|n| n.kind).collect();
    use NodeKind::*;
    assert_eq!(kinds, [Host, Gateway, Vbr, Cen, Vpc, Gateway, Host]);
    assert!(!Host.forwards());
    assert!([Gateway, Vbr, Cen, Vpc].iter().all(NodeKind::forwards));
    let vpc_if = &fabric.node("vpc").unwrap().interfaces[1];
    assert_eq!(
        (vpc_if.peer_node.as_str(), vpc_if.peer_iface.as_str()),
        ("vpngw", "vpc")
    );
}

#[test]
fn an_empty_file_is_the_lab() {
    let config = FabricConfig::from_toml(FILE, "").unwrap();
    assert_eq!(config, FabricConfig::default());
    let config = FabricConfig::from_toml(FILE, "[routing]\nmethod = 3\n").unwrap();
    assert_eq!(config, FabricConfig::default().with_method(Method::Three));
}

#[test]
fn each_method_is_accepted_in_either_form() {
    for (m, vbr, vpn) in [
        (Method::One, "static", "static"),
        (Method::Two, "static", "bgp"),
        (Method::Three, "bgp", "bgp"),
    ] {
        let forms = [
            format!("[routing]\nmethod = {m}\n"),
            format!("[routing]\nvbr = \"{vbr}\"\nvpn_gateway = \"{vpn}\"\n"),
            format!("[routing]\nmethod = {m}\nvbr = \"{vbr}\"\nvpn_gateway = \"{vpn}\"\n"),
        ];
        for text in forms {
            let config = FabricConfig::from_toml(FILE, &text).unwrap();
            assert_eq!(config.method(), m, "{text}");
            assert_eq!(config.vbr_routing().to_string(), vbr);
            assert_eq!(config.vpn_gateway_routing().to_string(), vpn);
            let fabric = Fabric::new(config).unwrap();
            assert_eq!(fabric.method(), m);
        }
        assert_eq!(
            FabricConfig::default().with_method(m).method(),
            m,
            "with_method"
        );
    }
    // A lone `vpn_gateway = "bgp"` is method 2 (vbr absent means static).
    let config = FabricConfig::from_toml(FILE, "[routing]\nvpn_gateway = \"bgp\"\n").unwrap();
    assert_eq!(config.method(), Method::Two);
}

#[test]
fn bgp_on_the_vbr_with_static_vpn_gateway_is_rejected_naming_both_settings() {
    let text = "[routing]\nvbr = \"bgp\"\nvpn_gateway = \"static\"\n";
    let e = error(text);
    assert_error(
        &e,
        text,
        "vbr =",
        "routing.vbr",
        &[
            "routing.vbr = \"bgp\"",
            "routing.vpn_gateway = \"static\"",
            "cannot configure BGP dynamic routing for the VBR if static routing is configured \
             for the VPN gateway",
        ],
    );
    assert_eq!(
        Method::from_routing(Routing::Bgp, Routing::Static),
        Err(fabric::ForbiddenCombination)
    );

    // An absent vpn_gateway is static, and the error says so.
    let text = "[routing]\nvbr = \"bgp\"\n";
    let e = error(text);
    assert_error(
        &e,
        text,
        "vbr =",
        "routing.vbr",
        &["routing.vpn_gateway = \"static\"", "absent"],
    );
}

#[test]
fn inconsistent_routing_forms_are_rejected() {
    let text = "[routing]\nmethod = 1\nvbr = \"bgp\"\nvpn_gateway = \"bgp\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e}");
    assert_error(
        &e.0[0],
        text,
        "vbr =",
        "routing.vbr",
        &["contradicts routing.method = 1"],
    );
    assert_error(
        &e.0[1],
        text,
        "vpn_gateway =",
        "routing.vpn_gateway",
        &["contradicts routing.method = 1"],
    );

    let text = "[routing]\nmethod = 4\n";
    assert_error(
        &error(text),
        text,
        "method",
        "routing.method",
        &["method 4 does not exist"],
    );
    let text = "[routing]\nvbr = \"ospf\"\n";
    assert_error(
        &error(text),
        text,
        "vbr",
        "routing.vbr",
        &["\"ospf\"", "\"bgp\""],
    );
    let text = "[routing]\nmethod = \"1\"\n";
    assert_error(
        &error(text),
        text,
        "method",
        "routing.method",
        &["expected 1, 2 or 3, found a string"],
    );
}

#[test]
fn syntax_errors_name_file_and_line() {
    let text = "[routing]\nmethod = = 1\n";
    let e = error(text);
    assert_eq!((e.file.as_str(), e.line, e.field.as_str()), (FILE, 2, ""));
    assert!(e.message.starts_with("invalid TOML"), "{e}");
    assert_eq!(e.to_string(), format!("{FILE}:2: {}", e.message));
}

#[test]
fn display_is_file_line_field_message() {
    let text = "[routing]\nmethod = 9\n";
    let e = error(text);
    assert_eq!(
        e.to_string(),
        format!("lab.toml:2: routing.method: {}", e.message)
    );
    let all = errors("[routing]\nmethod = 9\nbogus = 1\n");
    let shown = all.to_string();
    assert_eq!(shown.lines().count(), 2, "{shown}");
    assert!(shown.lines().all(|l| l.starts_with("lab.toml:")));
    let _: &dyn std::error::Error = &all;
}

#[test]
fn value_errors_are_all_reported_at_once() {
    let text = edit("kind = \"cen\"", "kind = \"router\"")
        .replace("addr = \"10.0.0.1/30\"", "addr = \"10.0.0.1\"")
        .replace("via = \"172.16.2.1\"", "via = \"172.16.2.1/24\"")
        + "\n[extra]\n";
    let e = errors(&text);
    assert_eq!(e.len(), 4, "{e}");
    // Unknown root keys are reported first (the root table is read first), then in file order.
    assert_error(
        &e.0[0],
        &text,
        "[extra]",
        "extra",
        &["unknown key \"extra\""],
    );
    assert_error(
        &e.0[1],
        &text,
        "\"router\"",
        "node[3].kind",
        &["unknown kind \"router\""],
    );
    assert_error(
        &e.0[2],
        &text,
        "addr = \"10.0.0.1\"",
        "link[1].a.addr",
        &["needs a prefix length"],
    );
    assert_error(
        &e.0[3],
        &text,
        "via = \"172.16.2.1/24\"",
        "route[4].via",
        &["not an IP address"],
    );
}

#[test]
fn missing_and_unknown_fields() {
    let text = "[[node]]\nname = \"a\"\n\n[[node]]\nkind = \"host\"\ncolour = \"red\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 3, "{e}");
    // A missing key is located at its table's header.
    assert_error(&e.0[0], text, "[[node]]", "node[0].kind", &["missing"]);
    assert_error(&e.0[1], text, "colour", "node[1].colour", &["unknown key"]);
    assert_eq!(e.0[2].field, "node[1].name");
    assert_eq!(e.0[2].line, 4);

    let text = "[[link]]\na = { node = \"x\", addr = \"10.0.0.1/30\" }\n";
    let e = error(text);
    assert_error(&e, text, "[[link]]", "link[0].b", &["missing"]);

    let text = "[[route]]\nnode = \"x\"\nprefix = \"0.0.0.0/0\"\n";
    assert_error(
        &error(text),
        text,
        "[[route]]",
        "route[0]",
        &["needs a next hop"],
    );

    let text =
        "[[route]]\nnode = \"x\"\nprefix = \"0.0.0.0/0\"\nvia = \"1.1.1.1\"\nblackhole = true\n";
    assert_error(
        &error(text),
        text,
        "blackhole",
        "route[0].blackhole",
        &["not both"],
    );

    let text = "node = 3\n";
    assert_error(
        &error(text),
        text,
        "node",
        "node",
        &["expected [[node]] tables"],
    );
}

#[test]
fn nodes_and_links_may_be_inline_arrays() {
    let text = r#"
node = [
  { name = "h1", kind = "host" },
  { name = "r", kind = "gateway" },
]
link = [ { a = { node = "h1", addr = "10.9.0.1/30" }, b = { node = "r", addr = "10.9.0.2/30" } } ]
route = [ { node = "h1", prefix = "0.0.0.0/0", via = "10.9.0.2" } ]
"#;
    let config = FabricConfig::from_toml(FILE, text).unwrap();
    assert_eq!(config.nodes.len(), 2);
    assert_eq!(config.links.len(), 1);
    assert!(config.data_center.cidrs.is_empty());
}

// ---- rules between fields (Fabric::new), located in the file ----

#[test]
fn unknown_node_in_a_link_and_a_route() {
    let text = edit(
        "a = { node = \"vpc\", addr = \"172.16.2.1/24\" }",
        "a = { node = \"vpc2\", addr = \"172.16.2.1/24\" }",
    )
    .replace("node = \"ecs\"\nprefix", "node = \"ecs2\"\nprefix");
    let e = errors(&text);
    // ecs's route through the broken link is not reported again.
    assert_eq!(e.len(), 2, "{e}");
    assert_error(
        &e.0[0],
        &text,
        "node = \"vpc2\"",
        "link[5].a.node",
        &["unknown node \"vpc2\"", "client, onprem-gw"],
    );
    assert_error(
        &e.0[1],
        &text,
        "node = \"ecs2\"",
        "route[4].node",
        &["unknown node \"ecs2\""],
    );
}

#[test]
fn a_next_hop_off_every_link_names_the_route() {
    let text = edit("via = \"10.0.0.1\"", "via = \"10.0.0.9\"");
    let e = error(&text);
    assert_error(
        &e,
        &text,
        "via = \"10.0.0.9\"",
        "route[2].via",
        &[
            "route to 192.168.10.0/24 on \"vbr\"",
            "10.0.0.9",
            "10.0.0.0/30, 100.64.0.0/30",
        ],
    );
}

#[test]
fn a_next_hop_nobody_owns_is_refused() {
    let text = edit(
        "a = { node = \"onprem-gw\", addr = \"10.0.0.1/30\" }\nb = { node = \"vbr\",       addr = \"10.0.0.2/30\" }",
        "a = { node = \"onprem-gw\", addr = \"10.0.0.1/29\" }\nb = { node = \"vbr\",       addr = \"10.0.0.2/29\" }",
    )
    .replace("via = \"10.0.0.1\"", "via = \"10.0.0.3\"");
    let e = error(&text);
    assert_error(
        &e,
        &text,
        "via = \"10.0.0.3\"",
        "route[2].via",
        &["no node has 10.0.0.3", "\"onprem-gw\", is 10.0.0.1"],
    );
}

#[test]
fn link_address_rules() {
    // Not one subnet.
    let text = edit("addr = \"10.0.0.2/30\"", "addr = \"10.0.0.6/30\"");
    assert_error(
        &error(&text),
        &text,
        "10.0.0.6/30",
        "link[1].b.addr",
        &["not in the subnet"],
    );
    // The network address.
    let text = edit("addr = \"100.64.0.1/30\"", "addr = \"100.64.0.0/30\"");
    assert_error(
        &error(&text),
        &text,
        "addr = \"100.64.0.0/30\"",
        "link[2].a.addr",
        &["network address"],
    );
    // A /32 has no room for a peer.
    let text = edit("addr = \"100.64.0.1/30\"", "addr = \"100.64.0.1/32\"")
        .replace("addr = \"100.64.0.2/30\"", "addr = \"100.64.0.1/32\"");
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|e| e.field == "link[2].a.addr" && e.message.contains("no room")),
        "{e}"
    );
    // The same address twice in the fabric.
    let text = edit("addr = \"172.16.2.10/24\"", "addr = \"172.16.2.1/24\"");
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|e| e.field == "link[5].b.addr" && e.message.contains("both ends")),
        "{e}"
    );
    // Overlapping subnets on two links.
    let text = edit("addr = \"100.64.0.5/30\"", "addr = \"100.64.0.1/29\"")
        .replace("addr = \"100.64.0.6/30\"", "addr = \"100.64.0.6/29\"");
    let e = errors(&text);
    let overlap = e
        .iter()
        .find(|e| e.field == "link[3].a.addr" && e.message.contains("overlaps"))
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(overlap.line, line(&text, "100.64.0.1/29"));
    assert!(e.iter().any(|e| e.field == "link[3].a.addr" && e.message.contains("already used by link[2].a")), "{e}");
}

#[test]
fn interface_name_rules() {
    // Defaulted from a long node name: the error says how to fix it.
    let text = DEFAULT_TOML.replace("\"onprem-gw\"", "\"onprem-gateway-01\"");
    let e = errors(&text);
    let first = &e.0[0];
    assert_eq!(first.field, "link[0].a.iface", "{e}");
    assert_eq!(first.line, line(&text, "a = { node = \"client\""));
    assert!(first.message.contains("longer than 15"), "{first}");
    assert!(
        first.message.contains("defaults to the peer's node name"),
        "{first}"
    );
    // Given explicitly.
    let text = edit(
        "a = { node = \"vbr\", addr = \"100.64.0.1/30\" }",
        "a = { node = \"vbr\", iface = \"to cen\", addr = \"100.64.0.1/30\" }",
    );
    assert_error(
        &error(&text),
        &text,
        "iface = \"to cen\"",
        "link[2].a.iface",
        &["without spaces"],
    );
    // Two interfaces of one node with one name.
    let text = edit(
        "a = { node = \"vpc\", addr = \"172.16.2.1/24\" }",
        "a = { node = \"vpc\", iface = \"cen\", addr = \"172.16.2.1/24\" }",
    );
    assert_error(
        &error(&text),
        &text,
        "iface = \"cen\"",
        "link[5].a.iface",
        &["already has an interface named \"cen\""],
    );
}

#[test]
fn node_rules() {
    let text = edit("name = \"ecs\"", "name = \"client\"");
    let e = errors(&text);
    assert_error(
        &e.0[0],
        &text,
        "name = \"client\"\nkind = \"host\"\n\n# Links",
        "node[6].name",
        &["duplicate node name \"client\"", "node[0]"],
    );
    let text = edit("name = \"ecs\"", "name = \"e c s\"");
    assert!(errors(&text)
        .iter()
        .any(|e| e.field == "node[6].name" && e.message.contains("letters, digits")));
    let text = edit("cidrs = [\"172.16.0.0/16\"]\n", "");
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|e| e.field == "node[4].kind" && e.message.contains("needs its address space")),
        "{e}"
    );
    let text = edit(
        "kind = \"cen\"",
        "kind = \"cen\"\ncidrs = [\"10.10.0.0/16\"]",
    );
    assert_error(
        &error(&text),
        &text,
        "cidrs = [\"10.10",
        "node[3].cidrs",
        &["only a vpc node has cidrs"],
    );
    let text = edit("[\"172.16.0.0/16\"]", "[\"172.16.0.1/16\"]");
    assert_error(
        &error(&text),
        &text,
        "172.16.0.1/16",
        "node[4].cidrs[0]",
        &["host bits", "172.16.0.0/16"],
    );
}

#[test]
fn data_center_must_not_overlap_the_vpc() {
    let text = edit(
        "cidrs = [\"192.168.10.0/24\"]",
        "cidrs = [\"172.16.5.0/24\"]",
    );
    assert_error(
        &error(&text),
        &text,
        "172.16.5.0/24",
        "data_center.cidrs[0]",
        &["overlaps the address space 172.16.0.0/16 of vpc \"vpc\""],
    );
}

#[test]
fn kind_rules_for_attachments_and_vswitches() {
    // A CEN linked to a host.
    let text = edit(
        "a = { node = \"vpc\", addr = \"172.16.2.1/24\" }",
        "a = { node = \"cen\", addr = \"172.16.2.1/24\" }",
    );
    let e = errors(&text);
    assert!(
        e.iter().any(|e| e.field == "link[5].a.node"
            && e.message.contains("a cen links only to vbr and vpc")),
        "{e}"
    );
    // A vSwitch outside the VPC.
    let text = edit("addr = \"172.16.2.1/24\"", "addr = \"172.17.2.1/24\"")
        .replace("addr = \"172.16.2.10/24\"", "addr = \"172.17.2.10/24\"")
        .replace("via = \"172.16.2.1\"", "via = \"172.17.2.1\"");
    assert_error(
        &error(&text),
        &text,
        "172.17.2.1/24",
        "link[5].a.addr",
        &["vSwitch subnet 172.17.2.0/24 is outside", "172.16.0.0/16"],
    );
}

#[test]
fn route_rules() {
    let text = edit("prefix = \"172.16.0.0/16\"", "prefix = \"172.16.0.1/16\"");
    assert_error(
        &error(&text),
        &text,
        "172.16.0.1/16",
        "route[1].prefix",
        &["host bits"],
    );
    let text = edit("via = \"10.0.0.2\"", "via = \"10.0.0.1\"");
    assert_error(
        &error(&text),
        &text,
        "via = \"10.0.0.1\"\n\n[[route]]\nnode = \"vbr\"",
        "route[1].via",
        &["own address"],
    );
    let text = edit("via = \"10.0.0.2\"", "via = \"fe80::1\"");
    assert_error(
        &error(&text),
        &text,
        "fe80::1",
        "route[1].via",
        &["different address families"],
    );
    let text = format!(
        "{DEFAULT_TOML}\n[[route]]\nnode = \"ecs\"\nprefix = \"0.0.0.0/0\"\nvia = \"172.16.2.1\"\n"
    );
    let e = error(&text);
    assert_eq!(e.field, "route[5].prefix");
    assert!(e.message.contains("duplicate of route[4]"), "{e}");
}

#[test]
fn errors_in_code_built_configs_have_line_zero() {
    let mut config = FabricConfig::empty();
    config.nodes.push(NodeConfig {
        name: "a".into(),
        kind: NodeKind::Host,
        cidrs: vec![],
    });
    config.routes.push(RouteConfig {
        node: "b".into(),
        prefix: "0.0.0.0/0".parse().unwrap(),
        target: RouteTarget::Blackhole,
    });
    let e = Fabric::new(config).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(
        e.0[0].to_string(),
        "<in code>:0: route[0].node: unknown node \"b\"; nodes are: a"
    );
}

#[test]
fn vbr_static_route_under_bgp_is_kept_but_not_installed() {
    // The same file serves all methods: no error, the route is inactive.
    let config = FabricConfig::default().with_method(Method::Three);
    config.validate().unwrap();
    let fabric = Fabric::new(config).unwrap();
    let dc = "192.168.10.0/24".parse().unwrap();
    assert!(fabric.table("vbr").unwrap().candidates(dc).is_empty());
    let ex = fabric.explain("vbr", dc).unwrap();
    assert_eq!(ex.candidates.len(), 1);
    assert_eq!(ex.candidates[0].verdict, fabric::Verdict::Inactive);
    assert!(ex.candidates[0].reason.contains("routing.vbr = \"bgp\""));
}

#[test]
fn to_toml_round_trips() {
    let default = FabricConfig::default();
    let again = FabricConfig::from_toml("again.toml", &default.to_toml()).unwrap();
    assert_eq!(again, default);

    let mut config = FabricConfig::default().with_method(Method::Two);
    config.links[0].a.iface = Some("lan0".into());
    config.routes.push(RouteConfig {
        node: "vbr".into(),
        prefix: "203.0.113.0/24".parse().unwrap(),
        target: RouteTarget::Blackhole,
    });
    config.nodes.push(NodeConfig {
        name: "odd\"name".into(),
        kind: NodeKind::Host,
        cidrs: vec![],
    });
    let text = config.to_toml();
    // The odd name does not pass validation, but it reads back as written.
    let e = FabricConfig::from_toml("t.toml", &text).unwrap_err();
    assert!(e.iter().all(|e| e.field == "node[7].name"), "{e}");
    config.nodes.pop();
    let again = FabricConfig::from_toml("t.toml", &config.to_toml()).unwrap();
    assert_eq!(again, config);
    assert_eq!(again.method(), Method::Two);

    // An empty topology stays empty.
    let empty = FabricConfig::empty();
    let again = FabricConfig::from_toml("e.toml", &empty.to_toml()).unwrap();
    assert_eq!(again, empty);
}

#[test]
fn serde_json_round_trip() {
    let config = FabricConfig::default().with_method(Method::Three);
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["method"], 3);
    assert_eq!(json["nodes"][4]["kind"], "vpc");
    let back: FabricConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, config);
    assert!(serde_json::from_str::<Method>("4").is_err());
    assert_eq!(serde_json::to_string(&Routing::Bgp).unwrap(), "\"bgp\"");
}

#[test]
fn displays() {
    assert_eq!(Method::Two.to_string(), "2");
    assert_eq!(Routing::Static.to_string(), "static");
    assert_eq!(NodeKind::Vbr.to_string(), "vbr");
    let link = LinkConfig {
        a: EndConfig {
            node: "a".into(),
            iface: None,
            addr: "10.0.0.1/30".parse().unwrap(),
        },
        b: EndConfig {
            node: "b".into(),
            iface: None,
            addr: "10.0.0.2/30".parse().unwrap(),
        },
    };
    assert_eq!(link.clone(), link);
}
