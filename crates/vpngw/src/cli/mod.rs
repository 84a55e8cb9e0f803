//! The CLI's commands for a running daemon (`vpngw status`, `vpngw conn …`): each is one
//! request to the daemon's API on its Unix socket, printed as aligned tables for people or,
//! with `--json`, as the API's JSON for scripts. An error the API answers is printed as its
//! one line, and the command exits 1.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use ipnet::IpNet;
use serde::Serialize;

use crate::{
    api,
    bgpd::{BgpRoute, NeighborView},
    daemon::model::{
        AdminChange, ConnectionInfo, ModeInfo, PublishChange, PublishRequest, ReloadReport,
        RouteView, SaView, Status, TunnelState,
    },
    output,
};

/// The API socket when neither `--api` nor `VPNGW_API` says otherwise: the configuration's
/// default `[api] socket`.
pub(crate) const DEFAULT_API: &str = "/run/vpngw/api.sock";

/// Where the daemon is, and how to print.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The daemon's API socket (its configuration's `[api] socket`).
    #[arg(long, global = true, env = "VPNGW_API", default_value = DEFAULT_API)]
    api: PathBuf,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// `vpngw status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    target: Target,
}

/// `vpngw reload`.
#[derive(Debug, Args)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    target: Target,
}

/// `vpngw reload`: the daemon re-reads its file and applies what changed; a refusal (errors
/// in the file, a change only a restart applies) lists every reason and changes nothing.
pub(crate) fn reload(args: ReloadArgs) -> Result<ExitCode> {
    let t = &args.target;
    let r: ReloadReport = api::post(socket(t)?, "/v1/reload", &serde_json::json!({}))?;
    if t.json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = [
        ("added", &r.added),
        ("removed", &r.removed),
        ("changed (rebuilt)", &r.changed),
        ("unchanged (SAs kept)", &r.unchanged),
    ]
    .into_iter()
    .map(|(what, names)| {
        vec![
            what.to_owned(),
            if names.is_empty() {
                "-".to_owned()
            } else {
                names.join(", ")
            },
        ]
    })
    .chain([vec![
        "routes".to_owned(),
        if r.routes_changed {
            "changed"
        } else {
            "unchanged"
        }
        .to_owned(),
    ]])
    .collect();
    println!("reload applied");
    print!("{}", output::table(&["connections", ""], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `vpngw conn …`.
#[derive(Debug, Args)]
pub(crate) struct ConnArgs {
    #[command(subcommand)]
    command: ConnCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum ConnCommand {
    /// Every connection: state, admin state, addresses.
    List,
    /// One connection's settings (no secret) and state.
    Show { name: String },
    /// Set a connection's admin state to up (kept across daemon restarts).
    Up { name: String },
    /// Set a connection's admin state to down (kept across daemon restarts).
    Down { name: String },
}

/// `vpngw route …`.
#[derive(Debug, Args)]
pub(crate) struct RouteArgs {
    #[command(subcommand)]
    command: RouteCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum RouteCommand {
    /// Every `[[route]]`: prefix, connection, weight, whether it is published into the VPC.
    List,
    /// Publish a route into the VPC's table (kept across daemon restarts).
    Publish { prefix: IpNet },
    /// Withdraw a published route: the seed's manual step after a Method 1 tunnel failure.
    Withdraw { prefix: IpNet },
}

/// `vpngw route list|publish|withdraw`.
pub(crate) fn route(args: RouteArgs) -> Result<ExitCode> {
    let t = &args.target;
    let sock = socket(t)?;
    match args.command {
        RouteCommand::List => {
            let routes: Vec<RouteView> = api::get(sock, "/v1/routes")?;
            if t.json {
                print_json(&routes)?;
            } else {
                let rows: Vec<Vec<String>> = routes
                    .iter()
                    .map(|r| {
                        vec![
                            r.prefix.to_string(),
                            r.connection.clone(),
                            r.weight.to_string(),
                            if r.published { "yes" } else { "no" }.to_owned(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(&["prefix", "connection", "weight", "published"], &rows)
                );
            }
        }
        RouteCommand::Publish { prefix } | RouteCommand::Withdraw { prefix } => {
            let on = matches!(args.command, RouteCommand::Publish { .. });
            let path = if on {
                "/v1/routes/publish"
            } else {
                "/v1/routes/withdraw"
            };
            let ch: PublishChange = api::post(sock, path, &PublishRequest { prefix })?;
            let what = if on { "published" } else { "withdrawn" };
            if t.json {
                print_json(&ch)?;
            } else if ch.changed {
                println!("{} {what}", ch.prefix);
            } else {
                println!(
                    "{} was already {what}; the fabric was told again",
                    ch.prefix
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vpngw sa …`.
#[derive(Debug, Args)]
pub(crate) struct SaArgs {
    #[command(subcommand)]
    command: SaCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum SaCommand {
    /// Every installed child SA: connection, SPIs, proposals, traffic each way.
    List,
}

/// `vpngw sa list`.
pub(crate) fn sa(args: SaArgs) -> Result<ExitCode> {
    let t = &args.target;
    let sock = socket(t)?;
    match args.command {
        SaCommand::List => {
            let sas: Vec<SaView> = api::get(sock, "/v1/sas")?;
            if t.json {
                print_json(&sas)?;
            } else if sas.is_empty() {
                println!("no child SA installed");
            } else {
                let rows: Vec<Vec<String>> = sas
                    .iter()
                    .map(|s| {
                        vec![
                            s.connection.clone(),
                            s.spi_in.clone(),
                            s.spi_out.clone(),
                            s.proposal.clone(),
                            s.ike_proposal.clone(),
                            format!("{} B / {} pkts", s.bytes_in, s.packets_in),
                            format!("{} B / {} pkts", s.bytes_out, s.packets_out),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(
                        &[
                            "connection",
                            "spi in",
                            "spi out",
                            "child",
                            "ike",
                            "in",
                            "out"
                        ],
                        &rows
                    )
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vpngw bgp …`.
#[derive(Debug, Args)]
pub(crate) struct BgpArgs {
    #[command(subcommand)]
    command: BgpCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum BgpCommand {
    /// Every neighbour: state, the tunnel it rides on, prefixes each way, uptime, flaps.
    Neighbors,
    /// A neighbour's routes: received (the default) or advertised.
    Routes {
        /// The neighbour's name or address.
        neighbor: String,
        /// Routes accepted from the neighbour.
        #[arg(long, conflicts_with = "advertised")]
        received: bool,
        /// Routes sent to the neighbour.
        #[arg(long)]
        advertised: bool,
    },
}

/// `vpngw bgp neighbors|routes`.
pub(crate) fn bgp(args: BgpArgs) -> Result<ExitCode> {
    let t = &args.target;
    let sock = socket(t)?;
    match args.command {
        BgpCommand::Neighbors => {
            let list: Vec<NeighborView> = api::get(sock, "/v1/bgp/neighbors")?;
            if t.json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("no BGP neighbor (no [bgp] in the configuration)");
            } else {
                print!("{}", render_neighbors(&list));
            }
        }
        BgpCommand::Routes {
            neighbor,
            advertised,
            ..
        } => {
            let dir = if advertised { "advertised" } else { "received" };
            let path = format!(
                "/v1/bgp/routes?neighbor={}&dir={dir}",
                query_escape(&neighbor)
            );
            let routes: Vec<BgpRoute> = api::get(sock, &path)?;
            if t.json {
                print_json(&routes)?;
            } else if routes.is_empty() {
                println!("no route {dir} ({neighbor})");
            } else {
                let opt = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
                let rows: Vec<Vec<String>> = routes
                    .iter()
                    .map(|r| {
                        vec![
                            r.prefix.to_string(),
                            r.next_hop.to_string(),
                            if r.as_path.is_empty() {
                                "(local)".to_owned()
                            } else {
                                r.as_path.clone()
                            },
                            r.origin.clone(),
                            opt(r.med),
                            opt(r.local_pref),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(
                        &[
                            "prefix",
                            "next hop",
                            "as path",
                            "origin",
                            "med",
                            "local pref"
                        ],
                        &rows
                    )
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render_neighbors(list: &[NeighborView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            let over = match &n.connection {
                Some(c) if n.transport_up => c.clone(),
                Some(c) => format!("{c} (down)"),
                None => "-".to_owned(),
            };
            vec![
                n.name.clone(),
                n.address.to_string(),
                n.remote_as.to_string(),
                over,
                n.state.clone(),
                n.established_seconds
                    .map_or_else(|| "-".to_owned(), duration),
                n.prefixes_received.to_string(),
                n.prefixes_advertised.to_string(),
                n.flaps.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "neighbor",
            "address",
            "as",
            "connection",
            "state",
            "up",
            "received",
            "advertised",
            "flaps",
        ],
        &rows,
    )
}

/// Percent-encodes a query value (names are plain; an IPv6 address has ':').
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Refuses early, in one line, when no daemon socket is there.
fn socket(t: &Target) -> Result<&Path> {
    if !t.api.exists() {
        bail!(
            "no daemon API at {} (is `vpngw run` running? point --api or VPNGW_API at its \
             [api] socket)",
            t.api.display()
        );
    }
    Ok(&t.api)
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `vpngw status`.
pub(crate) fn status(args: StatusArgs) -> Result<ExitCode> {
    let t = &args.target;
    let st: Status = api::get(socket(t)?, "/v1/status")?;
    if t.json {
        print_json(&st)?;
    } else {
        print!("{}", render_status(&st));
    }
    Ok(ExitCode::SUCCESS)
}

fn render_status(st: &Status) -> String {
    let c = &st.connections;
    let by_state: Vec<String> = TunnelState::ALL
        .iter()
        .map(|s| format!("{} {s}", c.by_state.get(s).copied().unwrap_or(0)))
        .collect();
    let addresses: Vec<String> = st.tun.addresses.iter().map(ToString::to_string).collect();
    let rows = vec![
        vec!["gateway".to_owned(), st.gateway.clone()],
        vec![
            "daemon".to_owned(),
            format!(
                "vpngw {}, pid {}, up {}",
                st.version,
                st.pid,
                duration(st.uptime_seconds)
            ),
        ],
        vec![
            "tun".to_owned(),
            format!(
                "{}, mtu {}{}",
                st.tun.name,
                st.tun.mtu,
                if addresses.is_empty() {
                    String::new()
                } else {
                    format!(", {}", addresses.join(" "))
                }
            ),
        ],
        vec![
            "connections".to_owned(),
            format!(
                "{}: {}; admin down {}",
                c.total,
                by_state.join(", "),
                c.admin_down
            ),
        ],
    ];
    output::table(&["", ""], &rows)
        .split_once('\n')
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// As the configuration writes durations: `1d2h3m4s`, largest unit first, zero units left
/// out (`0s` for none).
fn duration(secs: u64) -> String {
    let parts = [
        (secs / 86400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let out: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if out.is_empty() {
        "0s".to_owned()
    } else {
        out
    }
}

/// `vpngw conn …`.
pub(crate) fn conn(args: ConnArgs) -> Result<ExitCode> {
    let t = &args.target;
    let sock = socket(t)?;
    match &args.command {
        ConnCommand::List => {
            let list: Vec<ConnectionInfo> = api::get(sock, "/v1/connections")?;
            if t.json {
                print_json(&list)?;
            } else {
                print!("{}", render_list(&list));
            }
        }
        ConnCommand::Show { name } => {
            let c: ConnectionInfo = api::get(sock, &connection_path(name))?;
            if t.json {
                print_json(&c)?;
            } else {
                print!("{}", render_show(&c));
            }
        }
        ConnCommand::Up { name } | ConnCommand::Down { name } => {
            let verb = if matches!(args.command, ConnCommand::Up { .. }) {
                "up"
            } else {
                "down"
            };
            let path = format!("{}/{verb}", connection_path(name));
            let ch: AdminChange = api::post(sock, &path, &serde_json::json!({}))?;
            if t.json {
                print_json(&ch)?;
            } else if ch.changed {
                println!(
                    "{}: admin state {} (was {})",
                    ch.name, ch.admin_state, ch.previous
                );
            } else {
                println!(
                    "{}: admin state was already {}; nothing changed",
                    ch.name, ch.admin_state
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `/v1/connections/NAME`, the name percent-encoded where a path needs it.
fn connection_path(name: &str) -> String {
    let mut p = String::from("/v1/connections/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            p.push(char::from(b));
        } else {
            let _ = write!(p, "%{b:02X}");
        }
    }
    p
}

/// The addresses inside the tunnel: the /30's two ends, or the subnets.
fn inside(c: &ConnectionInfo) -> String {
    match &c.mode {
        ModeInfo::Route {
            local_inside,
            peer_inside,
            ..
        } => format!("{local_inside} ↔ {peer_inside}"),
        ModeInfo::Policy {
            local_subnets,
            remote_subnets,
        } => format!("{} ↔ {}", join(local_subnets), join(remote_subnets)),
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mode(c: &ConnectionInfo) -> &'static str {
    match c.mode {
        ModeInfo::Route { .. } => "route",
        ModeInfo::Policy { .. } => "policy",
    }
}

fn render_list(list: &[ConnectionInfo]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.state.to_string(),
                c.admin_state.to_string(),
                mode(c).to_owned(),
                c.local_address.to_string(),
                c.peer_address.to_string(),
                inside(c),
                c.routes.len().to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "name", "state", "admin", "mode", "local", "peer", "inside", "routes",
        ],
        &rows,
    )
}

fn render_show(c: &ConnectionInfo) -> String {
    let l = &c.lifetimes;
    let mut rows = vec![
        ("name", c.name.clone()),
        ("state", c.state.to_string()),
        ("admin state", c.admin_state.to_string()),
        ("mode", mode(c).to_owned()),
        ("local", format!("{} (id {})", c.local_address, c.local_id)),
        ("peer", format!("{} (id {})", c.peer_address, c.peer_id)),
    ];
    match &c.mode {
        ModeInfo::Route { tunnel_cidr, .. } => {
            rows.push(("tunnel", format!("{tunnel_cidr}: {}", inside(c))));
        }
        ModeInfo::Policy { .. } => rows.push(("subnets", inside(c))),
    }
    rows.extend([
        ("ike proposals", c.ike_proposals.join(" ")),
        ("esp proposals", c.esp_proposals.join(" ")),
        (
            "lifetimes",
            format!(
                "ike {}, child {}{}, rekey margin {}, jitter {}",
                duration(l.ike_seconds),
                duration(l.child_seconds),
                l.child_bytes
                    .map(|b| format!(" or {b} bytes"))
                    .unwrap_or_default(),
                duration(l.rekey_margin_seconds),
                duration(l.rand_jitter_seconds)
            ),
        ),
        (
            "dpd",
            if c.dpd.interval_seconds == 0 {
                "off".to_owned()
            } else {
                format!(
                    "every {}, {} retries, then {}",
                    duration(c.dpd.interval_seconds),
                    c.dpd.retries,
                    c.dpd.action
                )
            },
        ),
        ("on tunnel down", c.on_tunnel_down.clone()),
        (
            "health check",
            c.health_check.as_ref().map_or_else(
                || "none".to_owned(),
                |h| {
                    format!(
                        "{} → {} every {}, {} retries, {}",
                        h.source,
                        h.destination,
                        duration(h.interval_seconds),
                        h.retries,
                        h.policy
                    )
                },
            ),
        ),
    ]);
    if c.routes.is_empty() {
        rows.push(("routes", "none".to_owned()));
    }
    for r in &c.routes {
        let role = if r.weight == 0 { "standby" } else { "active" };
        let publish = if r.publish { ", published" } else { "" };
        rows.push((
            "route",
            format!("{} ({role}, weight {}{publish})", r.prefix, r.weight),
        ));
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), v])
        .collect();
    output::table(&["setting", "value"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        daemon::{
            model::{AdminState, ConnectionInfo},
            testutil::{test_config, TempDir},
        },
    };

    #[test]
    fn default_api_is_the_configurations_default_socket() {
        let text = "[gateway]\nname = \"g\"\n";
        let cfg = Config::from_toml(Path::new("/x.toml"), text, crate::config::Secrets::Skip)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.api.socket, Path::new(DEFAULT_API));
    }

    #[test]
    fn durations_read_largest_unit_first() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(5400), "1h30m");
        assert_eq!(duration(90061), "1d1h1m1s");
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(connection_path("dc1"), "/v1/connections/dc1");
        assert_eq!(connection_path("a/b c"), "/v1/connections/a%2Fb%20c");
    }

    #[test]
    fn tables_for_people() {
        let dir = TempDir::new("cli");
        let cfg = test_config(&dir);
        let list: Vec<ConnectionInfo> = cfg
            .connections
            .iter()
            .map(|c| ConnectionInfo::new(c, &cfg.routes, TunnelState::Down, AdminState::Up))
            .collect();
        let t = render_list(&list);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("name    state  admin  mode"), "{t}");
        assert!(lines[1].contains("169.254.10.1 ↔ 169.254.10.2"), "{t}");
        assert!(lines[2].contains("172.16.0.0/16 ↔ 10.20.0.0/16"), "{t}");
        let s = render_show(&list[0]);
        assert!(
            s.contains("route           192.168.10.0/24 (active, weight 100)"),
            "{s}"
        );
        assert!(
            s.contains("dpd             every 10s, 3 retries, then restart"),
            "{s}"
        );
    }

    #[test]
    fn bgp_neighbors_table_shows_the_tunnel_and_its_state() {
        let n = |name: &str, conn: Option<&str>, up: bool, state: &str| NeighborView {
            name: name.into(),
            address: "169.254.10.2".parse().unwrap(),
            remote_as: 65000,
            local_address: None,
            connection: conn.map(Into::into),
            transport_up: up,
            state: state.into(),
            established_seconds: (state == "Established").then_some(61),
            peer_router_id: None,
            hold_time: None,
            prefixes_received: 2,
            prefixes_advertised: 1,
            updates_in: 3,
            updates_out: 2,
            flaps: 1,
            last_down: None,
        };
        let t = render_neighbors(&[
            n("dc1", Some("dc1"), true, "Established"),
            n("dc2", Some("dc2"), false, "Idle"),
        ]);
        assert_eq!(
            t,
            "neighbor  address       as     connection  state        up    received  advertised  flaps\n\
             dc1       169.254.10.2  65000  dc1         Established  1m1s  2         1           1\n\
             dc2       169.254.10.2  65000  dc2 (down)  Idle         -     2         1           1\n"
        );
        assert_eq!(query_escape("fd00::1"), "fd00%3A%3A1");
        assert_eq!(query_escape("dc-1.x"), "dc-1.x");
    }
}
