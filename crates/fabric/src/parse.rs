//! Reading the TOML file into a [`FabricConfig`], keeping each field's line.
//!
//! The document is walked by hand over `toml_edit`'s spanned tree rather than through serde,
//! so that every bad value, unknown key and missing field is reported, not only the first.

use std::{net::IpAddr, ops::Range};

use ipnet::IpNet;
use toml_edit::{Document, Item, TableLike, Value};

use crate::{
    config::{
        DataCenterConfig, EndConfig, LinkConfig, NodeConfig, Origin, RouteConfig, RouteTarget,
    },
    ConfigError, ConfigErrors, FabricConfig, Method, NodeKind, Routing,
};

type Span = Option<Range<usize>>;

/// Reads `text`. With `default_topology`, a file without any topology section gets the
/// built-in one (the built-in file itself is read without).
pub(crate) fn parse(
    file: &str,
    text: &str,
    default_topology: bool,
) -> Result<FabricConfig, ConfigErrors> {
    let doc = Document::parse(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            line: line_of(text, e.span().map_or(0, |s| s.start)),
            field: String::new(),
            message: format!("invalid TOML: {}", e.message().trim_end()),
        }])
    })?;
    let mut p = Parser {
        text,
        origin: Origin::new(file),
        errors: Vec::new(),
    };
    let root: &dyn TableLike = doc.as_table();
    p.unknown_keys(root, "", &ROOT_KEYS);

    let method = match root.get("routing") {
        Some(item) => p.routing(item),
        None => Some(Method::One),
    };

    let mut config = FabricConfig::empty();
    let topology_given = TOPOLOGY_KEYS.iter().any(|k| root.contains_key(k));
    if topology_given || !default_topology {
        if let Some(item) = root.get("data_center") {
            config.data_center = p.data_center(item);
        }
        if let Some(item) = root.get("node") {
            config.nodes = p.list(item, "node", Parser::node);
        }
        if let Some(item) = root.get("link") {
            config.links = p.list(item, "link", Parser::link);
        }
        if let Some(item) = root.get("route") {
            config.routes = p.list(item, "route", Parser::route);
        }
    } else {
        let default = FabricConfig::default();
        config.data_center = default.data_center;
        config.nodes = default.nodes;
        config.links = default.links;
        config.routes = default.routes;
        // Errors in the defaulted sections (say a route naming a node the user's file renamed;
        // impossible today, but cheap to get right) point into the built-in file.
        for (path, loc) in default.origin.locs {
            if !path.starts_with("routing") {
                p.origin.locs.insert(path, loc);
            }
        }
    }

    ConfigErrors::check(std::mem::take(&mut p.errors))?;
    config.method = method.unwrap_or(Method::One);
    config.origin = p.origin;
    Ok(config)
}

const ROOT_KEYS: [&str; 5] = ["routing", "data_center", "node", "link", "route"];
const TOPOLOGY_KEYS: [&str; 4] = ["data_center", "node", "link", "route"];

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// What an item is, for "expected X, found Y".
fn kind_of(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "an inline table",
        },
    }
}

/// Marks a value already reported as an error.
struct Reported;

struct Parser<'a> {
    text: &'a str,
    origin: Origin,
    errors: Vec<ConfigError>,
}

impl Parser<'_> {
    fn line(&self, span: &Span) -> usize {
        span.as_ref().map_or(0, |s| line_of(self.text, s.start))
    }

    /// Records where `path` is.
    fn at(&mut self, path: &str, span: &Span) {
        let line = self.line(span);
        if line > 0 {
            self.origin
                .locs
                .insert(path.to_owned(), (self.origin.file.clone(), line));
        }
    }

    fn err(&mut self, path: &str, span: &Span, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.origin.file.clone(),
            line: self.line(span),
            field: path.to_owned(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, t: &dyn TableLike, path: &str, allowed: &[&str]) {
        for (k, item) in t.iter() {
            if !allowed.contains(&k) {
                let span = t.key(k).and_then(|k| k.span()).or_else(|| item.span());
                let expected = allowed.join(", ");
                self.err(
                    &join(path, k),
                    &span,
                    format!("unknown key {k:?}; expected one of: {expected}"),
                );
            }
        }
    }

    /// A table (standard or inline) at `path`.
    fn table<'t>(&mut self, item: &'t Item, path: &str) -> Option<&'t dyn TableLike> {
        let span = item.span();
        if let Some(t) = item.as_table_like() {
            self.at(path, &span);
            Some(t)
        } else {
            self.err(
                path,
                &span,
                format!("expected a table, found {}", kind_of(item)),
            );
            None
        }
    }

    /// An optional value of `t`: `Ok(None)` when absent.
    fn opt<'t, T>(
        &mut self,
        t: &'t dyn TableLike,
        path: &str,
        key: &str,
        expected: &str,
        read: impl FnOnce(&'t Value) -> Option<Result<T, String>>,
    ) -> Result<Option<T>, Reported> {
        let field = join(path, key);
        let Some(item) = t.get(key) else {
            return Ok(None);
        };
        let span = item.span();
        self.at(&field, &span);
        match item.as_value().and_then(read) {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(msg)) => {
                self.err(&field, &span, msg);
                Err(Reported)
            }
            None => {
                self.err(
                    &field,
                    &span,
                    format!("expected {expected}, found {}", kind_of(item)),
                );
                Err(Reported)
            }
        }
    }

    /// A required value of `t`; `span` locates `t` for a missing-key error.
    fn req<'t, T>(
        &mut self,
        t: &'t dyn TableLike,
        span: &Span,
        path: &str,
        key: &str,
        expected: &str,
        read: impl FnOnce(&'t Value) -> Option<Result<T, String>>,
    ) -> Option<T> {
        match self.opt(t, path, key, expected, read) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.err(
                    &join(path, key),
                    span,
                    format!("missing: `{key}` ({expected}) is required"),
                );
                None
            }
            Err(Reported) => None,
        }
    }

    /// A list of prefixes (`cidrs = ["10.0.0.0/8"]`); each element located as `path.key[i]`.
    fn nets(&mut self, t: &dyn TableLike, path: &str, key: &str) -> Result<Vec<IpNet>, Reported> {
        let field = join(path, key);
        let Some(item) = t.get(key) else {
            return Ok(Vec::new());
        };
        let span = item.span();
        self.at(&field, &span);
        let Some(arr) = item.as_array() else {
            self.err(
                &field,
                &span,
                format!(
                    "expected an array of prefixes such as [\"172.16.0.0/16\"], found {}",
                    kind_of(item)
                ),
            );
            return Err(Reported);
        };
        let mut out = Vec::new();
        let mut bad = false;
        for (i, v) in arr.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let s = v.span();
            self.at(&f, &s);
            match v.as_str().map(parse_net) {
                Some(Ok(n)) => out.push(n),
                Some(Err(msg)) => {
                    self.err(&f, &s, msg);
                    bad = true;
                }
                None => {
                    self.err(&f, &s, "expected a prefix string such as \"172.16.0.0/16\"");
                    bad = true;
                }
            }
        }
        if bad {
            Err(Reported)
        } else {
            Ok(out)
        }
    }

    /// `[routing]`: `method`, or `vbr` and `vpn_gateway`, or both when they agree.
    fn routing(&mut self, item: &Item) -> Option<Method> {
        let t = self.table(item, "routing")?;
        self.unknown_keys(t, "routing", &["method", "vbr", "vpn_gateway"]);
        let method = self.opt(t, "routing", "method", "1, 2 or 3", |v| {
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
        let vbr = self.opt(t, "routing", "vbr", "\"static\" or \"bgp\"", read_routing);
        let vpn = self.opt(
            t,
            "routing",
            "vpn_gateway",
            "\"static\" or \"bgp\"",
            read_routing,
        );
        let (Ok(method), Ok(vbr), Ok(vpn)) = (method, vbr, vpn) else {
            return None;
        };
        let span_of = |key: &str| t.get(key).and_then(Item::span).or_else(|| item.span());
        if let Some(m) = method {
            let mut ok = true;
            for (key, given, implied) in
                [("vbr", vbr, m.vbr()), ("vpn_gateway", vpn, m.vpn_gateway())]
            {
                if let Some(given) = given.filter(|g| *g != implied) {
                    ok = false;
                    self.err(
                        &format!("routing.{key}"),
                        &span_of(key),
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
                self.err("routing.vbr", &span_of("vbr"), format!("{forbidden}{note}"));
                None
            }
        }
    }

    fn data_center(&mut self, item: &Item) -> DataCenterConfig {
        let Some(t) = self.table(item, "data_center") else {
            return DataCenterConfig::default();
        };
        self.unknown_keys(t, "data_center", &["cidrs"]);
        DataCenterConfig {
            cidrs: self.nets(t, "data_center", "cidrs").unwrap_or_default(),
        }
    }

    /// `[[key]]` tables, or `key = [{..}, ..]`; each element read by `read`.
    fn list<T>(
        &mut self,
        item: &Item,
        key: &str,
        read: fn(&mut Self, &dyn TableLike, &Span, &str) -> Option<T>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        match item {
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let path = format!("{key}[{i}]");
                    let span = t.span();
                    self.at(&path, &span);
                    out.extend(read(self, t, &span, &path));
                }
            }
            Item::Value(Value::Array(arr)) => {
                for (i, v) in arr.iter().enumerate() {
                    let path = format!("{key}[{i}]");
                    let span = v.span();
                    self.at(&path, &span);
                    match v.as_inline_table() {
                        Some(t) => out.extend(read(self, t, &span, &path)),
                        None => self.err(&path, &span, "expected an inline table { .. }"),
                    }
                }
            }
            other => self.err(
                key,
                &other.span(),
                format!("expected [[{key}]] tables, found {}", kind_of(other)),
            ),
        }
        out
    }

    fn node(&mut self, t: &dyn TableLike, span: &Span, path: &str) -> Option<NodeConfig> {
        self.unknown_keys(t, path, &["name", "kind", "cidrs"]);
        let name = self.req(t, span, path, "name", "a string", read_str);
        let kind = self.req(
            t,
            span,
            path,
            "kind",
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
        let cidrs = self.nets(t, path, "cidrs");
        Some(NodeConfig {
            name: name?,
            kind: kind?,
            cidrs: cidrs.ok()?,
        })
    }

    fn end(&mut self, t: &dyn TableLike, span: &Span, path: &str) -> Option<EndConfig> {
        self.unknown_keys(t, path, &["node", "iface", "addr"]);
        let node = self.req(t, span, path, "node", "a node name", read_str);
        let iface = self.opt(t, path, "iface", "an interface name", read_str);
        let addr = self.req(
            t,
            span,
            path,
            "addr",
            "an address with its prefix length, such as \"10.0.0.1/30\"",
            |v| v.as_str().map(parse_net),
        );
        Some(EndConfig {
            node: node?,
            iface: iface.ok()?,
            addr: addr?,
        })
    }

    fn link(&mut self, t: &dyn TableLike, span: &Span, path: &str) -> Option<LinkConfig> {
        self.unknown_keys(t, path, &["a", "b"]);
        let mut ends = [None, None];
        for (slot, key) in ends.iter_mut().zip(["a", "b"]) {
            let field = join(path, key);
            match t.get(key) {
                Some(item) => {
                    if let Some(et) = self.table(item, &field) {
                        *slot = self.end(et, &item.span(), &field);
                    }
                }
                None => self.err(
                    &field,
                    span,
                    format!(
                        "missing: `{key}` is required, such as {key} = {{ node = \"vbr\", addr = \
                         \"10.0.0.2/30\" }}"
                    ),
                ),
            }
        }
        let [a, b] = ends;
        Some(LinkConfig { a: a?, b: b? })
    }

    fn route(&mut self, t: &dyn TableLike, span: &Span, path: &str) -> Option<RouteConfig> {
        self.unknown_keys(t, path, &["node", "prefix", "via", "blackhole"]);
        let node = self.req(t, span, path, "node", "a node name", read_str);
        let prefix = self.req(
            t,
            span,
            path,
            "prefix",
            "a prefix such as \"0.0.0.0/0\"",
            |v| v.as_str().map(parse_net),
        );
        let via = self.opt(t, path, "via", "an address such as \"10.0.0.1\"", |v| {
            v.as_str().map(|s| {
                s.parse::<IpAddr>().map_err(|_| {
                    format!("{s:?} is not an IP address (a next hop has no prefix length)")
                })
            })
        });
        let blackhole = self.opt(t, path, "blackhole", "true or false", |v| {
            v.as_bool().map(Ok)
        });
        let (Ok(via), Ok(blackhole)) = (via, blackhole) else {
            return None;
        };
        let target = match (via, blackhole.unwrap_or(false)) {
            (Some(via), false) => RouteTarget::Via(via),
            (None, true) => RouteTarget::Blackhole,
            (Some(_), true) => {
                let f = join(path, "blackhole");
                let s = t.get("blackhole").and_then(Item::span);
                self.err(
                    &f,
                    &s,
                    "a route has either `via` or `blackhole = true`, not both",
                );
                return None;
            }
            (None, false) => {
                self.err(
                    path,
                    span,
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
}

fn read_str(v: &Value) -> Option<Result<String, String>> {
    v.as_str().map(|s| Ok(s.to_owned()))
}

fn read_routing(v: &Value) -> Option<Result<Routing, String>> {
    v.as_str().map(|s| match s {
        "static" => Ok(Routing::Static),
        "bgp" => Ok(Routing::Bgp),
        other => Err(format!(
            "{other:?} is not a routing; use \"static\" or \"bgp\""
        )),
    })
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        if s.parse::<IpAddr>().is_ok() {
            format!("{s:?} needs a prefix length, such as \"{s}/24\"")
        } else {
            format!("{s:?} is not an address/prefix-length such as \"10.0.0.1/30\"")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    #[test]
    fn parse_net_hints_at_a_missing_length() {
        assert!(parse_net("10.0.0.1")
            .unwrap_err()
            .contains("needs a prefix length"));
        assert!(parse_net("ten").unwrap_err().contains("is not an address"));
        assert_eq!(parse_net("10.0.0.1/30").unwrap().to_string(), "10.0.0.1/30");
    }
}
