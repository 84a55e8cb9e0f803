//! Reading the TOML file into a [`FabricConfig`], keeping each field's line.
//!
//! The document is walked by hand with `confread` over `toml_edit`'s spanned tree rather than
//! through serde, so that every bad value, unknown key and missing field is reported, not only
//! the first.

use confread::{
    kind::{self, Kind},
    parse_document, Reader, Reported, Table,
};

use crate::{
    config::{DataCenterConfig, EndConfig, LinkConfig, NodeConfig, RouteConfig, RouteTarget},
    ConfigErrors, FabricConfig, Method, NodeKind, Routing,
};

/// Reads `text`. With `default_topology`, a file without any topology section gets the
/// built-in one (the built-in file itself is read without).
pub(crate) fn parse(
    file: &str,
    text: &str,
    default_topology: bool,
) -> Result<FabricConfig, ConfigErrors> {
    let doc = parse_document(file, text)?;
    let mut r = Reader::new(file, text);
    let root = r.root(&doc);
    r.unknown_keys(&root, &ROOT_KEYS);

    let method = match r.sub_table(&root, "routing") {
        Ok(Some(t)) => routing(&mut r, &t),
        Ok(None) => Some(Method::One),
        Err(Reported) => None,
    };

    let mut config = FabricConfig::empty();
    let topology_given = TOPOLOGY_KEYS.iter().any(|k| root.contains(k));
    if topology_given || !default_topology {
        if let Ok(Some(t)) = r.sub_table(&root, "data_center") {
            config.data_center = data_center(&mut r, &t);
        }
        config.nodes = r.list(&root, "node", node);
        config.links = r.list(&root, "link", link);
        config.routes = r.list(&root, "route", route);
    } else {
        let default = FabricConfig::default();
        config.data_center = default.data_center;
        config.nodes = default.nodes;
        config.links = default.links;
        config.routes = default.routes;
        // Errors in the defaulted sections (say a route naming a node the user's file renamed;
        // impossible today, but cheap to get right) point into the built-in file.
        for (path, file, line) in default.origin.locations() {
            if !path.starts_with("routing") {
                r.origin_mut().insert(path, file, line);
            }
        }
    }

    let (origin, errors) = r.finish();
    ConfigErrors::check(errors)?;
    config.method = method.unwrap_or(Method::One);
    config.origin = origin;
    Ok(config)
}

const ROOT_KEYS: [&str; 5] = ["routing", "data_center", "node", "link", "route"];
const TOPOLOGY_KEYS: [&str; 4] = ["data_center", "node", "link", "route"];

fn routing_kind() -> Kind<Routing> {
    kind::one_of(&[("static", Routing::Static), ("bgp", Routing::Bgp)])
}

/// `[routing]`: `method`, or `vbr` and `vpn_gateway`, or both when they agree.
fn routing(r: &mut Reader<'_>, t: &Table<'_>) -> Option<Method> {
    r.unknown_keys(t, &["method", "vbr", "vpn_gateway"]);
    let method_kind = Kind::new("1, 2 or 3", |v| {
        v.as_integer().map(|n| {
            u8::try_from(n)
                .ok()
                .and_then(Method::from_number)
                .ok_or_else(|| {
                    format!(
                        "method {n} does not exist: use 1 (static/static), 2 (vbr static, \
                         vpn_gateway bgp) or 3 (bgp/bgp)"
                    )
                })
        })
    });
    let method = r.opt(t, "method", &method_kind);
    let vbr = r.opt(t, "vbr", &routing_kind());
    let vpn = r.opt(t, "vpn_gateway", &routing_kind());
    let (Ok(method), Ok(vbr), Ok(vpn)) = (method, vbr, vpn) else {
        return None;
    };
    if let Some(m) = method {
        let mut ok = true;
        for (key, given, implied) in [("vbr", vbr, m.vbr()), ("vpn_gateway", vpn, m.vpn_gateway())]
        {
            if let Some(given) = given.filter(|g| *g != implied) {
                ok = false;
                r.err(
                    &t.field(key),
                    &t.span_of(key),
                    format!(
                        "routing.{key} = \"{given}\" contradicts routing.method = {m}, which \
                         means vbr = \"{}\" and vpn_gateway = \"{}\"; give one form, or both \
                         in agreement",
                        m.vbr(),
                        m.vpn_gateway()
                    ),
                );
            }
        }
        return ok.then_some(m);
    }
    let vbr_given = vbr.unwrap_or(Routing::Static);
    let vpn_given = vpn.unwrap_or(Routing::Static);
    match Method::from_routing(vbr_given, vpn_given) {
        Ok(m) => Some(m),
        Err(forbidden) => {
            let note = if vpn.is_none() {
                " (routing.vpn_gateway is absent, and absent means \"static\")"
            } else {
                ""
            };
            r.err(
                &t.field("vbr"),
                &t.span_of("vbr"),
                format!("{forbidden}{note}"),
            );
            None
        }
    }
}

fn data_center(r: &mut Reader<'_>, t: &Table<'_>) -> DataCenterConfig {
    r.unknown_keys(t, &["cidrs"]);
    DataCenterConfig {
        cidrs: nets(r, t).unwrap_or_default(),
    }
}

/// A list of prefixes (`cidrs = ["10.0.0.0/8"]`). Host bits are the fabric's rule to check,
/// with the node's context; here only the syntax is.
fn nets(r: &mut Reader<'_>, t: &Table<'_>) -> Result<Vec<ipnet::IpNet>, Reported> {
    let k = kind::net().expecting("a prefix such as \"172.16.0.0/16\"");
    r.array(t, "cidrs", &k).map(Option::unwrap_or_default)
}

fn node(r: &mut Reader<'_>, t: &Table<'_>) -> Option<NodeConfig> {
    r.unknown_keys(t, &["name", "kind", "cidrs"]);
    let name = r.req(t, "name", &kind::string());
    let node_kind = Kind::new(
        "one of \"host\", \"gateway\", \"vbr\", \"cen\", \"vpc\"",
        |v| {
            v.as_str().map(|s| {
                NodeKind::parse(s).ok_or_else(|| {
                    format!(
                        "unknown kind {s:?}; expected one of \"host\", \"gateway\", \"vbr\", \
                         \"cen\", \"vpc\""
                    )
                })
            })
        },
    );
    let kind = r.req(t, "kind", &node_kind);
    let cidrs = nets(r, t);
    Some(NodeConfig {
        name: name?,
        kind: kind?,
        cidrs: cidrs.ok()?,
    })
}

fn end(r: &mut Reader<'_>, t: &Table<'_>) -> Option<EndConfig> {
    r.unknown_keys(t, &["node", "iface", "addr"]);
    let node = r.req(t, "node", &kind::string().expecting("a node name"));
    let iface = r.opt(t, "iface", &kind::string().expecting("an interface name"));
    let addr = r.req(t, "addr", &kind::net());
    Some(EndConfig {
        node: node?,
        iface: iface.ok()?,
        addr: addr?,
    })
}

fn link(r: &mut Reader<'_>, t: &Table<'_>) -> Option<LinkConfig> {
    r.unknown_keys(t, &["a", "b"]);
    let mut ends = [None, None];
    for (slot, key) in ends.iter_mut().zip(["a", "b"]) {
        match r.sub_table(t, key) {
            Ok(Some(et)) => *slot = end(r, &et),
            Ok(None) => r.err(
                &t.field(key),
                t.span(),
                format!(
                    "missing: `{key}` is required, such as {key} = {{ node = \"vbr\", addr = \
                     \"10.0.0.2/30\" }}"
                ),
            ),
            Err(Reported) => {}
        }
    }
    let [a, b] = ends;
    Some(LinkConfig { a: a?, b: b? })
}

fn route(r: &mut Reader<'_>, t: &Table<'_>) -> Option<RouteConfig> {
    r.unknown_keys(t, &["node", "prefix", "via", "blackhole"]);
    let node = r.req(t, "node", &kind::string().expecting("a node name"));
    let prefix = r.req(
        t,
        "prefix",
        &kind::net().expecting("a prefix such as \"0.0.0.0/0\""),
    );
    let via = r.opt(t, "via", &kind::ip());
    let blackhole = r.opt(t, "blackhole", &kind::boolean());
    let (Ok(via), Ok(blackhole)) = (via, blackhole) else {
        return None;
    };
    let target = match (via, blackhole.unwrap_or(false)) {
        (Some(via), false) => RouteTarget::Via(via),
        (None, true) => RouteTarget::Blackhole,
        (Some(_), true) => {
            r.err(
                &t.field("blackhole"),
                &t.span_of("blackhole"),
                "a route has either `via` or `blackhole = true`, not both",
            );
            return None;
        }
        (None, false) => {
            r.err(
                t.path(),
                t.span(),
                "a route needs a next hop: `via = \"address\"` or `blackhole = true`",
            );
            return None;
        }
    };
    Some(RouteConfig {
        node: node?,
        prefix: prefix?,
        target,
    })
}
