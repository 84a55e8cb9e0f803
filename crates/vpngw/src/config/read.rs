//! Reading the file: each section's values, checked where they stand (types, ranges, the rules
//! inside one connection), then [`rules`] between sections.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use confread::{
    kind::{self, format_duration, Kind},
    parse_document, ConfigErrors, Reader, Reported, Table,
};
use ipnet::{IpNet, Ipv4Net};

use super::{
    rules, validate_proposal, Api, Config, Connection, Dpd, DpdAction, FabricLink, Gateway,
    HealthCheck, HealthPolicy, Identity, Lifetimes, Mode, OnTunnelDown, ProposalKind, Retransmit,
    Route, SecretSource, Secrets, TcpApi,
};

/// The defaults, as documented in `examples/vpngw.toml`.
pub(super) mod default {
    use std::time::Duration;

    pub(crate) const TUN: &str = "vpngw0";
    pub(crate) const MTU: u16 = 1400;
    /// Below a plain static route's default metric (0 is taken by hand-made routes, the lab's
    /// are 100), like BIRD's 32: the tunnel wins while it is up, the other route takes over
    /// when the daemon removes its own.
    pub(crate) const ROUTE_METRIC: u32 = 50;
    /// strongSwan's defaults: 4 s, ×1.8, 5 retransmits (165 s before giving up).
    pub(crate) const RETRANSMIT_TIMEOUT: Duration = Duration::from_secs(4);
    pub(crate) const RETRANSMIT_TRIES: u32 = 5;
    pub(crate) const RETRANSMIT_BASE: f64 = 1.8;
    pub(crate) const STATE_DIR: &str = "/var/lib/vpngw";
    pub(crate) const API_SOCKET: &str = "/run/vpngw/api.sock";
    pub(crate) const IKE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
    pub(crate) const CHILD_LIFETIME: Duration = Duration::from_secs(3600);
    /// strongSwan's `margintime`.
    pub(crate) const REKEY_MARGIN: Duration = Duration::from_secs(9 * 60);
    pub(crate) const DPD_INTERVAL: Duration = Duration::from_secs(10);
    pub(crate) const DPD_RETRIES: u32 = 3;
    pub(crate) const HEALTH_INTERVAL: Duration = Duration::from_secs(3);
    pub(crate) const HEALTH_RETRIES: u32 = 3;
    /// The smallest byte lifetime: less would rekey many times a second on a busy tunnel.
    pub(crate) const MIN_CHILD_BYTES: u64 = 1 << 20;
}

const ROOT_KEYS: [&str; 6] = ["gateway", "api", "fabric", "connection", "route", "bgp"];
const CONNECTION_KEYS: [&str; 26] = [
    "name",
    "local_address",
    "peer_address",
    "local_id",
    "peer_id",
    "psk_file",
    "psk_env",
    "ike_proposals",
    "esp_proposals",
    "ike_lifetime",
    "child_lifetime",
    "child_lifetime_bytes",
    "rekey_margin",
    "rand_jitter",
    "dpd_interval",
    "dpd_retries",
    "dpd_action",
    "mode",
    "tunnel_cidr",
    "local_inside",
    "peer_inside",
    "local_subnets",
    "remote_subnets",
    "on_tunnel_down",
    "initiate",
    "health_check",
];
const ROUTE_MODE_KEYS: [&str; 3] = ["tunnel_cidr", "local_inside", "peer_inside"];
const POLICY_MODE_KEYS: [&str; 2] = ["local_subnets", "remote_subnets"];

/// The file's directory, against which relative secret files are resolved, and whether
/// secrets are checked.
struct Ctx {
    base: PathBuf,
    secrets: Secrets,
}

/// A `[[connection]]` as far as it read: what the rules between sections need even when
/// some other field was wrong, and the whole connection when nothing was.
pub(super) struct ConnEntry {
    pub(super) path: String,
    pub(super) name: Option<String>,
    pub(super) local_address: Option<IpAddr>,
    pub(super) peer_address: Option<IpAddr>,
    pub(super) mode: Option<Mode>,
    /// The route mode's /30 when it read, even if the mode as a whole did not.
    pub(super) tunnel_cidr: Option<Ipv4Net>,
    /// The health check's destination when given (not defaulted) and read.
    pub(super) health_destination: Option<IpAddr>,
    pub(super) conn: Option<Connection>,
}

/// A `[[route]]` as far as it read: each field that did, and the whole route when all did.
pub(super) struct RouteEntry {
    pub(super) path: String,
    pub(super) prefix: Option<IpNet>,
    pub(super) connection: Option<String>,
    pub(super) publish: Option<bool>,
    pub(super) withdraw_when_down: Option<bool>,
    pub(super) route: Option<Route>,
}

pub(super) fn read(path: &Path, text: &str, secrets: Secrets) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let doc = parse_document(&file, text)?;
    let ctx = Ctx {
        base: path.parent().map(Path::to_owned).unwrap_or_default(),
        secrets,
    };
    let mut r = Reader::new(&file, text);
    let root = r.root(&doc);
    r.unknown_keys(&root, &ROOT_KEYS);

    let gw = match r.sub_table(&root, "gateway") {
        Ok(Some(t)) => gateway(&mut r, &t),
        Ok(None) => {
            r.err(
                "gateway",
                root.span(),
                "missing: a [gateway] section with at least `name` is required",
            );
            None
        }
        Err(Reported) => None,
    };
    let api = match r.sub_table(&root, "api") {
        Ok(Some(t)) => api(&mut r, &t, &ctx),
        Ok(None) => Some(Api {
            socket: default::API_SOCKET.into(),
            tcp: None,
        }),
        Err(Reported) => None,
    };
    let fabric = match r.sub_table(&root, "fabric") {
        Ok(Some(t)) => fabric(&mut r, &t).map(Some),
        Ok(None) => Some(None),
        Err(Reported) => None,
    };
    let conns = r.list(&root, "connection", |r, t| Some(connection(r, t, &ctx)));
    let routes = r.list(&root, "route", |r, t| Some(route(r, t)));
    let bgp = super::bgp::read(&mut r, &root, &conns, fabric.as_ref().map(Option::is_some));

    // Without a readable [fabric] its absence is not known; publish = true is then not blamed.
    rules::check(
        &mut r,
        &conns,
        &routes,
        fabric.as_ref().map(Option::is_some),
    );

    let (origin, errors) = r.finish();
    if !errors.is_empty() {
        let mut errors = ConfigErrors(errors);
        errors.sort_for(&file);
        return Err(errors);
    }
    // Every part read without error, so each is present: an absent one was reported.
    let missing = || ConfigErrors(vec![origin.error("", "internal: a section did not read")]);
    let connections = conns
        .into_iter()
        .map(|c| c.conn)
        .collect::<Option<Vec<_>>>();
    let routes = routes
        .into_iter()
        .map(|r| r.route)
        .collect::<Option<Vec<_>>>();
    Ok(Config {
        gateway: gw.ok_or_else(missing)?,
        api: api.ok_or_else(missing)?,
        fabric: fabric.ok_or_else(missing)?,
        connections: connections.ok_or_else(missing)?,
        routes: routes.ok_or_else(missing)?,
        bgp: bgp.map_err(|Reported| missing())?,
        origin,
    })
}

// ---- kinds of values ----

/// Names of the gateway and of connections: they appear in routes, metrics and the API.
fn name_kind() -> Kind<String> {
    kind::string().and_then(|s| {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(s)
        } else {
            Err(format!(
                "{s:?} is not a valid name: use 1 to 32 letters, digits, '-' or '_'"
            ))
        }
    })
}

/// A Linux interface name (`dev_valid_name` in the kernel).
fn iface_kind() -> Kind<String> {
    kind::string().and_then(|s| {
        if s.len() > 15 {
            Err(format!(
                "{s:?} is longer than 15 bytes: Linux interface names have at most 15"
            ))
        } else if s.is_empty()
            || s == "."
            || s == ".."
            || s.chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            Err(format!(
                "{s:?} is not a valid interface name: no '/', ':' or whitespace, and not \
                 empty, \".\" or \"..\""
            ))
        } else {
            Ok(s)
        }
    })
}

fn absolute_path() -> Kind<PathBuf> {
    kind::string().expecting("an absolute path").and_then(|s| {
        if s.starts_with('/') {
            Ok(PathBuf::from(s))
        } else {
            Err(format!("{s:?} is not an absolute path"))
        }
    })
}

/// A file path; a relative one is relative to the configuration file's directory.
fn file_path(base: &Path) -> Kind<PathBuf> {
    let base = base.to_owned();
    kind::string().expecting("a file path").and_then(move |s| {
        if s.is_empty() {
            Err("empty path".to_owned())
        } else {
            Ok(base.join(s))
        }
    })
}

fn env_name() -> Kind<String> {
    kind::string()
        .expecting("an environment variable name")
        .and_then(|s| {
            let ok = s.bytes().next().is_some_and(|b| !b.is_ascii_digit())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ok {
                Ok(s)
            } else {
                Err(format!(
                    "{s:?} is not an environment variable name: use letters, digits and '_', \
                     not starting with a digit"
                ))
            }
        })
}

/// An outer address: one IKE can send to and receive from.
fn outer_address() -> Kind<IpAddr> {
    kind::ip().and_then(|a| {
        let broadcast = a == IpAddr::V4(Ipv4Addr::BROADCAST);
        if a.is_unspecified() || a.is_multicast() || broadcast {
            Err(format!(
                "{a} is not a unicast address: a tunnel's end has one address of its own"
            ))
        } else {
            Ok(a)
        }
    })
}

fn identity() -> Kind<Identity> {
    kind::string()
        .expecting("an identity such as \"fqdn:vpn.example.com\"")
        .and_then(|s| Identity::parse(&s))
}

fn ipv4() -> Kind<Ipv4Addr> {
    kind::ip()
        .expecting("an IPv4 address")
        .and_then(|a| match a {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => Err(format!(
                "{a} is IPv6: inside addresses are IPv4, from the tunnel's /30"
            )),
        })
}

/// The rule for a route-based tunnel's inside CIDR, as the cloud has it.
fn tunnel_cidr() -> Kind<Ipv4Net> {
    const RULE: &str = "a route-based tunnel's inside CIDR is a /30 from 169.254.0.0/16, \
                        outside 169.254.0.0 to 169.254.6.255 and 169.254.169.252/30";
    kind::prefix()
        .expecting("a /30 from 169.254.0.0/16 such as \"169.254.10.0/30\"")
        .and_then(|net| {
            let IpNet::V4(v4) = net else {
                return Err(format!("{net} is IPv6: {RULE}"));
            };
            let o = v4.network().octets();
            if v4.prefix_len() != 30 {
                Err(format!("{v4} is not a /30: {RULE}"))
            } else if o[..2] != [169, 254] {
                Err(format!("{v4} is not in 169.254.0.0/16: {RULE}"))
            } else if o[2] <= 6 || (o[2], o[3]) == (169, 252) {
                Err(format!("{v4} is reserved: {RULE}"))
            } else {
                Ok(v4)
            }
        })
}

fn proposal(kind: ProposalKind) -> Kind<String> {
    kind::string()
        .expecting(format!("a strongSwan {kind} proposal string"))
        .and_then(move |s| match validate_proposal(kind, &s) {
            Ok(()) => Ok(s),
            Err(why) => Err(format!("{s:?} is not a valid {kind} proposal: {why}")),
        })
}

fn at_least_1s() -> Kind<Duration> {
    kind::duration().and_then(|d| {
        if d < Duration::from_secs(1) {
            Err(format!("{} is too short: at least 1s", format_duration(d)))
        } else {
            Ok(d)
        }
    })
}

// ---- sections ----

fn gateway(r: &mut Reader<'_>, t: &Table<'_>) -> Option<Gateway> {
    r.unknown_keys(
        t,
        &[
            "name",
            "tun",
            "mtu",
            "state_dir",
            "retransmit_timeout",
            "retransmit_tries",
            "retransmit_base",
            "route_metric",
        ],
    );
    let name = r.req(t, "name", &name_kind());
    let tun = r.or(t, "tun", &iface_kind(), default::TUN.to_owned());
    let mtu = r.or(t, "mtu", &kind::integer(1280u16..=9000), default::MTU);
    let state_dir = r.or(t, "state_dir", &absolute_path(), default::STATE_DIR.into());
    let timeout = r.or(
        t,
        "retransmit_timeout",
        &kind::duration(),
        default::RETRANSMIT_TIMEOUT,
    );
    let tries = r.or(
        t,
        "retransmit_tries",
        &kind::integer(1u32..=20),
        default::RETRANSMIT_TRIES,
    );
    let base = r.or(
        t,
        "retransmit_base",
        &kind::number(1.0..=4.0),
        default::RETRANSMIT_BASE,
    );
    let route_metric = r.or(
        t,
        "route_metric",
        &kind::integer(0u32..=u32::MAX),
        default::ROUTE_METRIC,
    );
    if let Some(d) = &timeout {
        if *d < Duration::from_millis(100) {
            r.err(
                &t.field("retransmit_timeout"),
                &t.span_of("retransmit_timeout"),
                "retransmit_timeout below 100ms would flood a slow peer; use at least \"100ms\"",
            );
        }
    }
    Some(Gateway {
        name: name?,
        tun: tun?,
        mtu: mtu?,
        state_dir: state_dir?,
        retransmit: Retransmit {
            timeout: timeout?,
            tries: tries?,
            base_milli: (base? * 1000.0).round() as u32,
        },
        route_metric: route_metric?,
    })
}

fn api(r: &mut Reader<'_>, t: &Table<'_>, ctx: &Ctx) -> Option<Api> {
    r.unknown_keys(t, &["socket", "listen", "token_file"]);
    let socket = r.or(t, "socket", &absolute_path(), default::API_SOCKET.into());
    let listen = r.opt(t, "listen", &kind::socket_addr());
    let token = r.opt(t, "token_file", &file_path(&ctx.base));
    let tcp = match (listen, token) {
        (Ok(Some(listen)), Ok(Some(path))) => {
            let token = SecretSource::File(path);
            check_secret(r, ctx, &t.field("token_file"), &token);
            Some(TcpApi { listen, token })
        }
        (Ok(Some(listen)), Ok(None)) => {
            r.err(
                &t.field("listen"),
                &t.span_of("listen"),
                format!(
                    "an API on TCP needs `token_file`: without a bearer token anyone who \
                     reaches {listen} controls the gateway"
                ),
            );
            return None;
        }
        (Ok(None), Ok(Some(_))) => {
            r.err(
                &t.field("token_file"),
                &t.span_of("token_file"),
                "token_file is used only with `listen` (the Unix socket is guarded by its file \
                 permissions): set listen, or remove token_file",
            );
            return None;
        }
        (Ok(None), Ok(None)) => None,
        _ => return None,
    };
    Some(Api {
        socket: socket?,
        tcp,
    })
}

fn fabric(r: &mut Reader<'_>, t: &Table<'_>) -> Option<FabricLink> {
    r.unknown_keys(t, &["socket"]);
    let socket = r.req(t, "socket", &absolute_path());
    Some(FabricLink { socket: socket? })
}

/// Reads the secret once when asked to, to prove `run` could; the bytes are dropped (zeroed)
/// at once.
fn check_secret(r: &mut Reader<'_>, ctx: &Ctx, field: &str, source: &SecretSource) {
    if ctx.secrets == Secrets::Check {
        if let Err(e) = source.load() {
            r.err_at(field, e.to_string());
        }
    }
}

fn connection(r: &mut Reader<'_>, t: &Table<'_>, ctx: &Ctx) -> ConnEntry {
    r.unknown_keys(t, &CONNECTION_KEYS);
    let name = r.req(t, "name", &name_kind());
    let local_address = r.req(t, "local_address", &outer_address());
    let peer_address = r.req(t, "peer_address", &outer_address());
    let mut addresses_ok = true;
    if let (Some(l), Some(p)) = (local_address, peer_address) {
        let problem = if l == p {
            Some(format!(
                "peer_address {p} is local_address too: a connection joins two gateways"
            ))
        } else if l.is_ipv4() != p.is_ipv4() {
            Some(format!(
                "peer_address {p} and local_address {l} are of different address families: \
                 both ends of a connection use one"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            r.err_at(&t.field("peer_address"), message);
            addresses_ok = false;
        }
    }
    let local_id = r.opt(t, "local_id", &identity());
    let peer_id = r.opt(t, "peer_id", &identity());
    let psk = psk(r, t, ctx);
    let ike_proposals = proposals(r, t, "ike_proposals", ProposalKind::Ike);
    let esp_proposals = proposals(r, t, "esp_proposals", ProposalKind::Esp);
    let lifetimes = lifetimes(r, t);
    let dpd = dpd(r, t);
    let mut tunnel_cidr = None;
    let mode = mode(r, t, &mut tunnel_cidr);
    let on_tunnel_down = r.or(
        t,
        "on_tunnel_down",
        &kind::one_of(&[
            ("fallback", OnTunnelDown::Fallback),
            ("block", OnTunnelDown::Block),
        ]),
        OnTunnelDown::Fallback,
    );
    let initiate = r.or(t, "initiate", &kind::boolean(), true);
    let mut health_destination = None;
    let health = health_check(r, t, mode.as_ref(), &mut health_destination);

    let conn = (|| {
        Some(Connection {
            name: name.clone()?,
            local_address: local_address.filter(|_| addresses_ok)?,
            peer_address: peer_address.filter(|_| addresses_ok)?,
            local_id: local_id
                .ok()?
                .or_else(|| local_address.map(Identity::from))?,
            peer_id: peer_id.ok()?.or_else(|| peer_address.map(Identity::from))?,
            psk: psk?,
            ike_proposals: ike_proposals?,
            esp_proposals: esp_proposals?,
            lifetimes: lifetimes?,
            dpd: dpd?,
            mode: mode.clone()?,
            on_tunnel_down: on_tunnel_down?,
            initiate: initiate?,
            health_check: health.clone().ok()?,
        })
    })();
    ConnEntry {
        path: t.path().to_owned(),
        name,
        local_address,
        peer_address,
        mode,
        tunnel_cidr,
        health_destination,
        conn,
    }
}

/// `psk_file` or `psk_env`: exactly one.
fn psk(r: &mut Reader<'_>, t: &Table<'_>, ctx: &Ctx) -> Option<SecretSource> {
    let file = r.opt(t, "psk_file", &file_path(&ctx.base));
    let env = r.opt(t, "psk_env", &env_name());
    let (field, source) = match (file.ok()?, env.ok()?) {
        (Some(path), None) => (t.field("psk_file"), SecretSource::File(path)),
        (None, Some(name)) => (t.field("psk_env"), SecretSource::Env(name)),
        (None, None) => {
            r.err(
                &t.field("psk_file"),
                t.span(),
                "missing: the pre-shared key's source is required: `psk_file` (a file private \
                 to its owner) or `psk_env` (an environment variable)",
            );
            return None;
        }
        (Some(_), Some(_)) => {
            r.err(
                &t.field("psk_env"),
                &t.span_of("psk_env"),
                "psk_file and psk_env are both set: give exactly one source for the \
                 pre-shared key",
            );
            return None;
        }
    };
    check_secret(r, ctx, &field, &source);
    Some(source)
}

fn proposals(
    r: &mut Reader<'_>,
    t: &Table<'_>,
    key: &str,
    kind: ProposalKind,
) -> Option<Vec<String>> {
    let list = r.req_array(t, key, &proposal(kind))?;
    if list.is_empty() {
        let example = match kind {
            ProposalKind::Ike => "aes256gcm16-prfsha256-ecp256",
            ProposalKind::Esp => "aes256gcm16-ecp256",
        };
        r.err_at(
            &t.field(key),
            format!("{key} is empty: give at least one proposal, such as [\"{example}\"]"),
        );
        return None;
    }
    Some(list)
}

fn lifetimes(r: &mut Reader<'_>, t: &Table<'_>) -> Option<Lifetimes> {
    let ike = r.or(t, "ike_lifetime", &at_least_1s(), default::IKE_LIFETIME);
    let child = r.or(t, "child_lifetime", &at_least_1s(), default::CHILD_LIFETIME);
    let bytes_kind = Kind::new(
        format!(
            "a number of bytes, at least {} (1 MiB)",
            default::MIN_CHILD_BYTES
        ),
        |v| {
            v.as_integer().map(|n| {
                u64::try_from(n)
                    .ok()
                    .filter(|n| *n >= default::MIN_CHILD_BYTES)
                    .ok_or_else(|| {
                        format!(
                            "{n} is too small: child_lifetime_bytes is at least {} (1 MiB), or \
                             absent for no byte limit",
                            default::MIN_CHILD_BYTES
                        )
                    })
            })
        },
    );
    let child_bytes = r.opt(t, "child_lifetime_bytes", &bytes_kind);
    let margin = r.or(t, "rekey_margin", &at_least_1s(), default::REKEY_MARGIN);
    // As strongSwan's rekeyfuzz of 100%: the jitter defaults to the margin.
    let jitter = match margin {
        Some(m) => r.or(t, "rand_jitter", &kind::duration(), m),
        None => None,
    };
    let (margin, jitter) = (margin?, jitter?);
    let mut ok = true;
    for (key, life) in [("ike_lifetime", ike), ("child_lifetime", child)] {
        let Some(life) = life else { continue };
        if life <= margin + jitter {
            ok = false;
            r.err_at(
                &t.field(key),
                format!(
                    "{key} {} is not longer than rekey_margin {} + rand_jitter {}: the SA \
                     would be due for rekeying before it is made; raise {key} or lower \
                     rekey_margin and rand_jitter",
                    format_duration(life),
                    format_duration(margin),
                    format_duration(jitter)
                ),
            );
        }
    }
    ok.then_some(())?;
    Some(Lifetimes {
        ike: ike?,
        child: child?,
        child_bytes: child_bytes.ok()?,
        rekey_margin: margin,
        rand_jitter: jitter,
    })
}

fn dpd(r: &mut Reader<'_>, t: &Table<'_>) -> Option<Dpd> {
    let interval = r.or(t, "dpd_interval", &kind::duration(), default::DPD_INTERVAL);
    let retries = r.or(
        t,
        "dpd_retries",
        &kind::integer(1u32..=100),
        default::DPD_RETRIES,
    );
    let action = r.or(
        t,
        "dpd_action",
        &kind::one_of(&[("restart", DpdAction::Restart), ("clear", DpdAction::Clear)]),
        DpdAction::Restart,
    );
    Some(Dpd {
        interval: interval?,
        retries: retries?,
        action: action?,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ModeName {
    Route,
    Policy,
}

/// The connection's mode; `cidr` gets the route mode's /30 whenever it reads.
fn mode(r: &mut Reader<'_>, t: &Table<'_>, cidr: &mut Option<Ipv4Net>) -> Option<Mode> {
    let name = r.req(
        t,
        "mode",
        &kind::one_of(&[("route", ModeName::Route), ("policy", ModeName::Policy)]),
    )?;
    let (this, other, foreign) = match name {
        ModeName::Route => ("route", "policy", &POLICY_MODE_KEYS[..]),
        ModeName::Policy => ("policy", "route", &ROUTE_MODE_KEYS[..]),
    };
    let mut ok = true;
    for key in foreign {
        if t.contains(key) {
            ok = false;
            r.err(
                &t.field(key),
                &t.span_of(key),
                format!("{key} is for mode = \"{other}\"; this connection has mode = \"{this}\""),
            );
        }
    }
    let mode = match name {
        ModeName::Route => route_mode(r, t, cidr),
        ModeName::Policy => policy_mode(r, t),
    };
    mode.filter(|_| ok)
}

fn route_mode(r: &mut Reader<'_>, t: &Table<'_>, cidr_out: &mut Option<Ipv4Net>) -> Option<Mode> {
    let cidr = match r.opt(t, "tunnel_cidr", &tunnel_cidr()) {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            r.err(
                &t.field("tunnel_cidr"),
                t.span(),
                "missing: mode = \"route\" needs `tunnel_cidr`, a /30 from 169.254.0.0/16 such \
                 as \"169.254.10.0/30\"",
            );
            None
        }
        Err(Reported) => None,
    };
    *cidr_out = cidr;
    let local = r.opt(t, "local_inside", &ipv4());
    let peer = r.opt(t, "peer_inside", &ipv4());
    let (cidr, local, peer) = (cidr?, local.ok()?, peer.ok()?);
    // Inside a /30, the hosts are the first and second address after the network's.
    let hosts: Vec<Ipv4Addr> = cidr.hosts().collect();
    let [first, second] = hosts[..] else {
        return None;
    };
    let mut ok = true;
    for (key, addr) in [("local_inside", local), ("peer_inside", peer)] {
        if let Some(a) = addr.filter(|a| !hosts.contains(a)) {
            ok = false;
            r.err_at(
                &t.field(key),
                format!("{a} is not a host address of {cidr}: use {first} or {second}"),
            );
        }
    }
    if !ok {
        return None;
    }
    let other = |a: Ipv4Addr| if a == first { second } else { first };
    let (local_inside, peer_inside) = match (local, peer) {
        (None, None) => (first, second),
        (Some(l), None) => (l, other(l)),
        (None, Some(p)) => (other(p), p),
        (Some(l), Some(p)) if l == p => {
            r.err_at(
                &t.field("peer_inside"),
                format!("peer_inside {p} is local_inside too: the two ends have one address each"),
            );
            return None;
        }
        (Some(l), Some(p)) => (l, p),
    };
    Some(Mode::Route {
        tunnel_cidr: cidr,
        local_inside,
        peer_inside,
    })
}

fn policy_mode(r: &mut Reader<'_>, t: &Table<'_>) -> Option<Mode> {
    let mut sides = [None, None];
    for (slot, key) in sides.iter_mut().zip(POLICY_MODE_KEYS) {
        match r.array(t, key, &kind::prefix()) {
            Ok(Some(v)) if v.is_empty() => r.err_at(
                &t.field(key),
                format!("{key} is empty: a policy-based connection needs at least one subnet"),
            ),
            Ok(Some(v)) => *slot = Some(v),
            Ok(None) => r.err(
                &t.field(key),
                t.span(),
                format!(
                    "missing: mode = \"policy\" needs `{key}`, a list of prefixes such as \
                     [\"10.1.0.0/16\"]"
                ),
            ),
            Err(Reported) => {}
        }
    }
    let [local, remote] = sides;
    let (local, remote) = (local?, remote?);
    let mut ok = true;
    for (j, rn) in remote.iter().enumerate() {
        for (i, ln) in local.iter().enumerate() {
            if ln.contains(&rn.network()) || rn.contains(&ln.network()) {
                ok = false;
                r.err_at(
                    &format!("{}[{j}]", t.field("remote_subnets")),
                    format!(
                        "{rn} overlaps local_subnets[{i}] {ln}: a policy's local and remote \
                         subnets are apart"
                    ),
                );
            }
        }
    }
    ok.then_some(Mode::Policy {
        local_subnets: local,
        remote_subnets: remote,
    })
}

/// `[connection.health_check]`; `Err` when reported. `given_destination` gets the
/// destination whenever it is given and reads, for the rules between sections.
fn health_check(
    r: &mut Reader<'_>,
    t: &Table<'_>,
    mode: Option<&Mode>,
    given_destination: &mut Option<IpAddr>,
) -> Result<Option<HealthCheck>, Reported> {
    let Some(h) = r.sub_table(t, "health_check")? else {
        return Ok(None);
    };
    r.unknown_keys(
        &h,
        &["source", "destination", "interval", "retries", "policy"],
    );
    let source = r.opt(&h, "source", &kind::ip());
    let destination = r.opt(&h, "destination", &kind::ip());
    let interval = r.or(&h, "interval", &at_least_1s(), default::HEALTH_INTERVAL);
    let retries = r.or(
        &h,
        "retries",
        &kind::integer(1u32..=100),
        default::HEALTH_RETRIES,
    );
    let policy = r.or(
        &h,
        "policy",
        &kind::one_of(&[
            ("revoke_routes", HealthPolicy::RevokeRoutes),
            ("keep_routes", HealthPolicy::KeepRoutes),
        ]),
        HealthPolicy::RevokeRoutes,
    );
    if let Ok(d) = destination {
        *given_destination = d;
    }
    let (Ok(source), Ok(destination), Some(interval), Some(retries), Some(policy), Some(mode)) =
        (source, destination, interval, retries, policy, mode)
    else {
        return Err(Reported);
    };
    let (source, dest) = match mode {
        Mode::Route {
            local_inside,
            peer_inside,
            ..
        } => (
            source.unwrap_or(IpAddr::V4(*local_inside)),
            destination.unwrap_or(IpAddr::V4(*peer_inside)),
        ),
        Mode::Policy {
            local_subnets,
            remote_subnets,
        } => {
            let mut inside = |key: &str, addr: Option<IpAddr>, nets: &[IpNet], side: &str| {
                let field = h.field(key);
                let Some(a) = addr else {
                    r.err(
                        &field,
                        h.span(),
                        format!(
                            "missing: a policy-based connection's health check needs `{key}`, \
                             an address inside {side}"
                        ),
                    );
                    return None;
                };
                if nets.iter().any(|n| n.contains(&a)) {
                    Some(a)
                } else {
                    r.err_at(
                        &field,
                        format!(
                            "{key} {a} is outside {side} ({}): the probe would not match the \
                             connection's policy",
                            list(nets)
                        ),
                    );
                    None
                }
            };
            let s = inside("source", source, local_subnets, "local_subnets");
            let d = inside("destination", destination, remote_subnets, "remote_subnets");
            let (Some(s), Some(d)) = (s, d) else {
                return Err(Reported);
            };
            (s, d)
        }
    };
    if source.is_ipv4() != dest.is_ipv4() {
        // Reported here; not to be blamed again between sections.
        *given_destination = None;
        r.err_at(
            &h.field("destination"),
            format!("destination {dest} and source {source} are of different address families"),
        );
        return Err(Reported);
    }
    Ok(Some(HealthCheck {
        source,
        destination: dest,
        interval,
        retries,
        policy,
    }))
}

fn route(r: &mut Reader<'_>, t: &Table<'_>) -> RouteEntry {
    r.unknown_keys(
        t,
        &[
            "prefix",
            "connection",
            "weight",
            "publish",
            "withdraw_when_down",
        ],
    );
    let prefix = r.req(t, "prefix", &kind::prefix());
    let connection = r.req(
        t,
        "connection",
        &kind::string().expecting("a connection name"),
    );
    let weight_kind = Kind::new("100 (active) or 0 (standby)", |v| {
        v.as_integer().map(|n| match u32::try_from(n) {
            Ok(w @ (rib::Route::ACTIVE | rib::Route::STANDBY)) => Ok(w),
            _ => Err(format!(
                "{n} is not a weight: a route's weight is 100 (active) or 0 (standby), nothing \
                 in between"
            )),
        })
    });
    let weight = r.or(t, "weight", &weight_kind, rib::Route::ACTIVE);
    let publish = r.or(t, "publish", &kind::boolean(), false);
    let withdraw_when_down = r.or(t, "withdraw_when_down", &kind::boolean(), false);
    let route = (|| {
        Some(Route {
            prefix: prefix?,
            connection: connection.clone()?,
            weight: weight?,
            publish: publish?,
            withdraw_when_down: withdraw_when_down?,
        })
    })();
    RouteEntry {
        path: t.path().to_owned(),
        prefix,
        connection,
        publish,
        withdraw_when_down,
        route,
    }
}

/// `a, b, c` of anything displayable.
pub(super) fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(ToString::to_string).collect();
    v.join(", ")
}
