//! `vpngw`: the private IPsec VPN gateway's binary — the gateway daemon (`vpngw run`, its
//! tunnel engine, REST API and state), the CLI that talks to it, `vpngw check`, and the seed's
//! lab with its fabric controller (`vpngw lab …`).
//!
//! This crate owns all I/O: processes, sockets, TUN, namespaces, the kernel's routes. Protocol
//! and routing logic live in the pure crates (`rib`, `fabric`, `esp`, `ike`, `bgp`), which it
//! only drives.

mod api;
mod bgpd;
mod checksum;
mod cli;
mod config;
mod daemon;
mod lab;
mod netns;
mod output;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fabric::{Fabric, FabricConfig, Method};
use ipnet::IpNet;

use crate::lab::{
    controller,
    gateways::{self, Onprem, Plan, TunnelDown},
    Lab, Up,
};

/// Private IPsec VPN gateway for encrypting a private line (data center ↔ cloud VPC).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The seed's topology in network namespaces on this machine (needs root and iproute2).
    Lab {
        /// Lab instance name; namespaces are called NAME-NODE.
        #[arg(long, global = true, env = "VPNGW_LAB", default_value = "vpngw")]
        name: String,
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Validate a gateway configuration file without running; every error names its file,
    /// line, field and rule.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the gateway daemon in the foreground (TUN device, UDP 500/4500, REST API) until
    /// SIGTERM; SIGHUP re-reads and validates the configuration.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// The running daemon's status, through its API.
    Status(cli::StatusArgs),
    /// The running daemon's connections, through its API.
    Conn(cli::ConnArgs),
    /// IPsec SAs of the running daemon.
    Sa(cli::SaArgs),
    /// The running daemon's routes and their publication into the VPC.
    Route(cli::RouteArgs),
    /// Make the running daemon re-read its configuration and apply what changed (as SIGHUP);
    /// tunnels whose settings did not change keep their SAs.
    Reload(cli::ReloadArgs),
    /// The running daemon's BGP neighbours and their routes.
    Bgp(cli::BgpArgs),
    /// The BGP driver alone, relaying routes between its neighbours (bench/bgp-relay.sh).
    #[command(hide = true)]
    BgpRelay(bgpd::relay::RelayArgs),
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Bring the lab up: namespaces, links, addresses, routes and the fabric controller.
    Up {
        /// Fabric description (TOML); defaults to the built-in lab (see `vpngw lab config`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Routing method of the seed: 1 (static/static), 2 (static VBR, BGP VPN gateway),
        /// 3 (BGP/BGP).
        #[arg(long, value_parser = parse_method)]
        method: Option<Method>,
        /// The on-premises gateway, with a tunnel to the VPN gateway's vpngw daemon: a vpngw
        /// daemon or strongSwan; or none (the seed's starting point: the line, unencrypted).
        #[arg(long, value_enum, default_value = "vpngw")]
        onprem: Onprem,
        /// What the gateways do with the tunnel's traffic while it is down.
        #[arg(long, value_enum, default_value = "fallback")]
        on_tunnel_down: TunnelDown,
    },
    /// Break the tunnel: the line drops IPsec (UDP 500 and 4500 at the VBR), or `--how kill`
    /// stops a gateway's daemon.
    Fail {
        #[arg(value_enum)]
        what: Breakable,
        #[arg(long, value_enum, default_value = "line")]
        how: How,
        /// The gateway `--how kill` stops (default: the on-premises one).
        #[arg(long)]
        gateway: Option<String>,
    },
    /// Undo `fail`: the line carries IPsec again, stopped daemons start again.
    Heal {
        #[arg(value_enum)]
        what: Breakable,
    },
    /// Take the lab down; also cleans up after a crash or an interrupted `up`.
    Down,
    /// Show whether the lab is up, its nodes and its published routes.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a node's namespace.
    Exec {
        node: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Route tables held by the fabric controller (all nodes, or one).
    Routes {
        node: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The hop-by-hop path both ways, from the tables, checked against real packets.
    Trace {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Is traffic between two nodes encrypted where it crosses the cloud? Captures at the CEN
    /// with the lab's own packet socket while probes run; exit 0 only when it is.
    Verify {
        #[arg(long, default_value = "client")]
        from: String,
        #[arg(long, default_value = "ecs")]
        to: String,
        #[arg(long, default_value_t = 10)]
        count: u16,
        #[arg(long)]
        json: bool,
    },
    /// Send ICMP echo requests from one node to another (node name or address).
    Probe {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value_t = 3)]
        count: u16,
    },
    /// Publish a route from a VPN gateway into its VPC's table.
    Publish { gateway: String, prefix: IpNet },
    /// Withdraw a route a VPN gateway published.
    Withdraw { gateway: String, prefix: IpNet },
    /// Print the built-in fabric description (a starting point for `up --config`).
    Config,
    /// Validate a fabric description without bringing anything up.
    Check { file: PathBuf },
    /// The seed's scenarios, measured: per method, the tunnel up and encrypted, the walk,
    /// the tunnel broken (traffic stops or falls back, and how fast), healed; then the seed's
    /// table beside the measurements. Exits 1 if they differ.
    Demo {
        #[arg(long, value_parser = parse_method)]
        method: Option<Method>,
        /// The on-premises gateway: a second vpngw daemon, or strongSwan.
        #[arg(long, value_enum, default_value = "vpngw")]
        onprem: Onprem,
        /// Only this on_tunnel_down; by default the seed's fallback for every method, and
        /// block too for Method 3 when both ends are vpngw.
        #[arg(long, value_enum)]
        on_tunnel_down: Option<TunnelDown>,
        #[arg(long)]
        json: bool,
    },
    /// Run the fabric controller in the foreground (started by `up`).
    #[command(hide = true)]
    Controller,
}

/// What `lab fail` breaks.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Breakable {
    Tunnel,
}

/// How `lab fail` breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum How {
    /// The line drops the tunnel's packets; both daemons keep running.
    Line,
    /// A gateway's daemon is stopped.
    Kill,
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s {
        "1" => Ok(Method::One),
        "2" => Ok(Method::Two),
        "3" => Ok(Method::Three),
        _ => Err(format!("{s:?}: the seed has methods 1, 2 and 3")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal; logs in files and journald stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vpngw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Lab { name, command } => lab_command(&Lab::new(&name)?, command),
        Command::Check { config } => Ok(config::check_command(&config)),
        Command::Run { config } => daemon::run(&config),
        Command::Status(args) => cli::status(args),
        Command::Conn(args) => cli::conn(args),
        Command::Sa(args) => cli::sa(args),
        Command::Route(args) => cli::route(args),
        Command::Reload(args) => cli::reload(args),
        Command::Bgp(args) => cli::bgp(args),
        Command::BgpRelay(args) => bgpd::relay::run(args),
    }
}

fn lab_command(lab: &Lab, command: LabCommand) -> Result<ExitCode> {
    match command {
        LabCommand::Up {
            config,
            method,
            onprem,
            on_tunnel_down,
        } => {
            let cfg = fabric_config(config.as_deref(), method)?;
            let up = lab.up(cfg)?;
            if up == Up::Created && onprem != Onprem::None {
                let mut plan = Plan::of(&running_fabric(lab)?)?;
                plan.on_tunnel_down = on_tunnel_down;
                if let Err(e) = gateways::start(lab, &plan, onprem) {
                    let _ = lab.down();
                    return Err(e);
                }
                println!(
                    "tunnel up: {} ({}) ⇄ {} ({}) over the line",
                    plan.onprem.0, plan.onprem.1, plan.cloud.0, plan.cloud.1
                );
            }
            match up {
                Up::Created => println!(
                    "lab {} is up; try `vpngw lab --name {} trace --from client --to ecs`",
                    lab.name, lab.name
                ),
                Up::Unchanged => println!("lab {} is already up; nothing changed", lab.name),
                Up::ControllerRestarted => {
                    println!(
                        "lab {} is up; its fabric controller was not running and was restarted",
                        lab.name
                    )
                }
            }
        }
        LabCommand::Fail { what, how, gateway } => fail(lab, what, how, gateway)?,
        LabCommand::Heal { what } => heal(lab, what)?,
        LabCommand::Down => {
            let removed = lab.down()?;
            if removed.is_empty() {
                println!("lab {} was not up; nothing to remove", lab.name);
            } else {
                println!("lab {} is down; removed {}", lab.name, removed.join(", "));
            }
        }
        LabCommand::Status { json } => return status(lab, json),
        LabCommand::Exec { node, cmd } => {
            lab::preflight()?;
            let fabric = running_fabric(lab)?;
            if fabric.node(&node).is_none() {
                anyhow::bail!("{}", lab::unknown_node(&fabric, &node));
            }
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &lab.ns(&node)])
                .args(&cmd)
                .status()
                .context("running ip netns exec")?;
            return Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ));
        }
        LabCommand::Routes { node, json } => routes(lab, node.as_deref(), json)?,
        LabCommand::Trace { from, to, json } => return trace(lab, &from, &to, json),
        LabCommand::Probe { from, to, count } => return probe(lab, &from, &to, count),
        LabCommand::Verify {
            from,
            to,
            count,
            json,
        } => return verify(lab, &from, &to, count, json),
        LabCommand::Publish { gateway, prefix } => publication(lab, "publish", gateway, prefix)?,
        LabCommand::Withdraw { gateway, prefix } => publication(lab, "withdraw", gateway, prefix)?,
        LabCommand::Config => print!("{}", fabric::DEFAULT_TOML),
        LabCommand::Check { file } => {
            let cfg = fabric_config(Some(&file), None)?;
            let fabric = Fabric::new(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}: ok (method {}, {} nodes, {} links)",
                file.display(),
                fabric.method(),
                fabric.nodes().len(),
                fabric.links().len()
            );
        }
        LabCommand::Demo {
            method,
            onprem,
            on_tunnel_down,
            json,
        } => return demo(lab, method, onprem, on_tunnel_down, json),
        LabCommand::Controller => controller::run(lab.clone())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn fail(lab: &Lab, Breakable::Tunnel: Breakable, how: How, gateway: Option<String>) -> Result<()> {
    lab::preflight()?;
    let fabric = running_fabric(lab)?;
    match how {
        How::Line => {
            gateways::fail_line(lab, &fabric)?;
            println!("the line drops the tunnel's packets (UDP 500 and 4500 at the VBR)");
        }
        How::Kill => {
            let node = match gateway {
                Some(g) => g,
                None => Plan::of(&fabric)?.onprem.0,
            };
            if gateways::kill(lab, &node)? {
                println!("the gateway on {node} is stopped");
            } else {
                anyhow::bail!("no gateway process of this lab runs on {node}");
            }
        }
    }
    Ok(())
}

fn heal(lab: &Lab, Breakable::Tunnel: Breakable) -> Result<()> {
    lab::preflight()?;
    let fabric = running_fabric(lab)?;
    gateways::heal_line(lab, &fabric)?;
    let restarted = gateways::restart_stopped(lab, &fabric)?;
    if restarted.is_empty() {
        println!("the line carries the tunnel's packets again");
    } else {
        println!(
            "the line carries the tunnel's packets again; restarted the gateway on {}",
            restarted.join(", ")
        );
    }
    Ok(())
}

/// `publish` or `withdraw` through the lab's fabric controller.
fn publication(lab: &Lab, verb: &str, gateway: String, prefix: IpNet) -> Result<()> {
    let p = controller::Publication { gateway, prefix };
    let a: controller::Applied = api::post(&lab.socket_path(), &format!("/v1/{verb}"), &p)?;
    let done = if verb == "publish" {
        "published"
    } else {
        "withdrawn"
    };
    if a.changed {
        println!(
            "{prefix} {done} by {}; kernels updated in {:.1} ms",
            p.gateway, a.applied_ms
        );
    } else {
        println!(
            "{prefix} was already {done} by {}; nothing changed",
            p.gateway
        );
    }
    Ok(())
}

fn fabric_config(file: Option<&std::path::Path>, method: Option<Method>) -> Result<FabricConfig> {
    let cfg = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            FabricConfig::from_toml(&path.display().to_string(), &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => FabricConfig::default(),
    };
    Ok(match method {
        Some(m) => cfg.with_method(m),
        None => cfg,
    })
}

/// The controller's fabric, rebuilt from its state: the same tables it programs.
pub(crate) fn running_fabric(lab: &Lab) -> Result<Fabric> {
    let st: controller::FabricState = api::get(&lab.socket_path(), "/v1/state")
        .with_context(|| format!("lab {} is not up (no fabric controller)", lab.name))?;
    let cfg = FabricConfig::from_toml("controller state", &st.config_toml)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut fabric = Fabric::new(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    for p in st.published {
        fabric.publish(&p.gateway, p.prefix)?;
    }
    for (node, prefix, via) in st.bgp {
        fabric.learn_bgp(&node, prefix, via)?;
    }
    Ok(fabric)
}

fn status(lab: &Lab, json: bool) -> Result<ExitCode> {
    lab::preflight()?;
    let st = api::get::<controller::Status>(&lab.socket_path(), "/v1/status").ok();
    let expected: Vec<String> = match &st {
        Some(s) => s.nodes.clone(),
        None => lab
            .load_config()
            .ok()
            .and_then(|c| Fabric::new(c).ok())
            .map(|f| f.nodes().iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default(),
    };
    let present: Vec<(String, bool)> = expected
        .iter()
        .map(|n| (n.clone(), netns::exists(&lab.ns(n))))
        .collect();
    let all_present = !present.is_empty() && present.iter().all(|(_, p)| *p);
    let state = match (&st, all_present) {
        (Some(_), true) => "up",
        (None, _) if present.iter().all(|(_, p)| !*p) && !lab.state_dir.exists() => "down",
        _ => "partial",
    };
    if json {
        let v = serde_json::json!({
            "lab": lab.name,
            "state": state,
            "controller": st,
            "namespaces": present.iter().map(|(n, p)| serde_json::json!({"node": n, "namespace": lab.ns(n), "present": p})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("lab {}: {state}", lab.name);
        if let Some(s) = &st {
            println!(
                "controller: pid {}, socket {}",
                s.pid,
                lab.socket_path().display()
            );
            println!("method: {}", s.method);
            let rows: Vec<Vec<String>> = present
                .iter()
                .map(|(n, p)| {
                    vec![
                        n.clone(),
                        lab.ns(n),
                        if *p { "present" } else { "MISSING" }.to_owned(),
                    ]
                })
                .collect();
            print!("{}", output::table(&["node", "namespace", "state"], &rows));
            if s.published.is_empty() {
                println!("published routes: none");
            } else {
                for p in &s.published {
                    println!("published: {} by {}", p.prefix, p.gateway);
                }
            }
            let d = &s.dc_asn;
            if d.vbr.is_some() || !d.gateways.is_empty() {
                let mut sessions: Vec<String> = d.vbr.iter().map(|a| format!("VBR {a}")).collect();
                sessions.extend(d.gateways.iter().map(|(k, a)| format!("{k} {a}")));
                println!("data center's AS: {}", sessions.join(", "));
            }
            for w in &d.warnings {
                println!("WARNING: {w}");
            }
        } else if state == "partial" {
            println!("run `vpngw lab --name {} down` to clean up", lab.name);
        }
    }
    Ok(match state {
        "up" => ExitCode::SUCCESS,
        "down" => ExitCode::from(3),
        _ => ExitCode::FAILURE,
    })
}

fn routes(lab: &Lab, node: Option<&str>, json: bool) -> Result<()> {
    let path = match node {
        Some(n) => format!("/v1/routes?node={n}"),
        None => "/v1/routes".to_owned(),
    };
    let tables: Vec<controller::NodeRoutes> = api::get(&lab.socket_path(), &path)
        .with_context(|| format!("reading routes from lab {}", lab.name))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tables)?);
        return Ok(());
    }
    for t in &tables {
        println!("{}:", t.node);
        let rows: Vec<Vec<String>> = t
            .routes
            .iter()
            .map(|r| {
                vec![
                    if r.selected { "*" } else { " " }.to_owned(),
                    r.route.prefix.to_string(),
                    r.route.next_hop.to_string(),
                    r.route.source.to_string(),
                    r.route.preference.to_string(),
                    r.route.weight.to_string(),
                ]
            })
            .collect();
        let table = output::table(
            &["", "prefix", "next hop", "source", "pref", "weight"],
            &rows,
        );
        for l in table.lines() {
            println!("  {l}");
        }
    }
    println!("(* = selected: lowest preference, then highest weight; ties share traffic)");
    Ok(())
}

fn trace(lab: &Lab, from: &str, to: &str, json: bool) -> Result<ExitCode> {
    lab::preflight()?;
    let mut fabric = running_fabric(lab)?;
    gateways::add_tunnels(lab, &mut fabric)?;
    let dirs = lab::trace::run(lab, &fabric, from, to)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&dirs)?);
    } else {
        print!("{}", lab::trace::render(&dirs));
    }
    Ok(if dirs.iter().all(|d| d.agrees) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn probe(lab: &Lab, from: &str, to: &str, count: u16) -> Result<ExitCode> {
    lab::preflight()?;
    let fabric = running_fabric(lab)?;
    if fabric.node(from).is_none() {
        anyhow::bail!("{}", lab::unknown_node(&fabric, from));
    }
    let (dst, _) = Lab::resolve(&fabric, to)?;
    let prober = lab::probe::Prober::open(&lab.ns(from))?;
    let answered = prober.ping(lab::probe::v4(dst)?, count, Duration::from_millis(200))?;
    println!("{from} → {to} ({dst}): {answered}/{count} echo replies");
    Ok(if answered == count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn verify(lab: &Lab, from: &str, to: &str, count: u16, json: bool) -> Result<ExitCode> {
    lab::preflight()?;
    let fabric = running_fabric(lab)?;
    let (src, _) = Lab::resolve(&fabric, from)?;
    let (dst, _) = Lab::resolve(&fabric, to)?;
    let cen = fabric
        .nodes()
        .iter()
        .find(|n| n.kind == fabric::NodeKind::Cen)
        .context("the fabric has no cen node to capture at")?;
    let v = lab::capture::verify(
        &lab.ns(&cen.name),
        &lab.ns(from),
        lab::probe::v4(src)?,
        lab::probe::v4(dst)?,
        count,
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", lab::capture::render(&v, from, to, &cen.name, dst));
    }
    Ok(if v.encrypted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn demo(
    lab: &Lab,
    method: Option<Method>,
    onprem: Onprem,
    on_tunnel_down: Option<TunnelDown>,
    json: bool,
) -> Result<ExitCode> {
    lab::preflight()?;
    if onprem == Onprem::None {
        anyhow::bail!("the demo needs an on-premises gateway: --onprem vpngw or strongswan");
    }
    let methods = match method {
        Some(m) => vec![m],
        None => vec![Method::One, Method::Two, Method::Three],
    };
    let mut scenarios = Vec::new();
    for m in methods {
        match on_tunnel_down {
            Some(d) => scenarios.push((m, d)),
            None => {
                scenarios.push((m, TunnelDown::Fallback));
                if m == Method::Three && onprem == Onprem::Vpngw {
                    scenarios.push((m, TunnelDown::Block));
                }
            }
        }
    }
    Ok(if lab::demo::run(lab, &scenarios, onprem, json)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
