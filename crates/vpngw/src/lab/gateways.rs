//! The lab's two IPsec gateways: a `vpngw run` daemon on the on-premises gateway node and on
//! the private VPN gateway node, configured from the fabric, with the line itself as the
//! tunnel's underlay (on-premises line address → vbr → cen → vpc → VPN gateway's private
//! address).
//!
//! ```text
//!   lab up ──► {state}/psk (0600), {state}/NODE/vpngw.toml ──► ip netns exec NS vpngw run
//!   trace  ──► each daemon's API: connections, routes ──► Fabric::set_tunnel (the model)
//!   fail   ──► ip rules on the vbr: forwarded UDP 500/4500 blackholed (the line drops IPsec)
//! ```
//!
//! Each daemon is a separate process with its own API socket; the lab reads them, never
//! their memory. The failover knobs are the demo's: DPD after 1 s of silence, two
//! retransmits 400 ms apart, so a dead peer is declared within about 2.2 s.

use std::{
    fmt::Write as _,
    fs,
    io::Read,
    net::IpAddr,
    os::unix::{fs::OpenOptionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use fabric::{Fabric, GatewayTunnel, Method, NodeKind};
use ipnet::IpNet;

use super::Lab;

mod strongswan;
use crate::{
    api,
    bgpd::{BgpRoute, NeighborView},
    daemon::model::{ConnectionInfo, ModeInfo, Status, TunnelState},
};

/// The tunnel's inside /30, as the MISSION's lab table has it: the cloud end takes the first
/// host, the on-premises end the second.
const TUNNEL_CIDR: &str = "169.254.10.0/30";
const CLOUD_INSIDE: &str = "169.254.10.1";
pub(super) const ONPREM_INSIDE: &str = "169.254.10.2";
/// The connection names on each side.
pub(crate) const ONPREM_CONN: &str = "to-vpc";
pub(crate) const CLOUD_CONN: &str = "to-dc";
/// The data center's AS, toward the VPN gateway and the VBR alike (the cloud warns when they
/// differ: routes would flap).
pub(crate) const DC_AS: u32 = 65001;
/// The cloud side's AS: the VPN gateway's and the VBR's (the provider's public ASN).
pub(crate) const CLOUD_AS: u32 = 45104;
/// `fail tunnel`'s ip rules carry this preference, so `heal` removes exactly them.
const FAIL_RULE_PREF: &str = "86";

/// What runs on the on-premises gateway node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Onprem {
    /// A second vpngw daemon.
    Vpngw,
    /// strongSwan's charon with its userspace ESP backend (kernel-libipsec), standing for the
    /// vendor device a customer has.
    Strongswan,
    /// Nothing: the seed's starting point, the line without a tunnel.
    None,
}

/// What the gateways do with traffic for the tunnel while it is down (the daemon's
/// `on_tunnel_down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum TunnelDown {
    /// Let it take the line, unencrypted (the seed's behaviour).
    #[default]
    Fallback,
    /// Drop it: nothing ever crosses the line in the clear. Needs vpngw at both ends.
    Block,
}

/// The two gateways of the fabric and the addresses the tunnel joins.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The on-premises gateway node and its address on the line.
    pub(crate) onprem: (String, IpAddr),
    /// The VPN gateway node and its private address in the VPC.
    pub(crate) cloud: (String, IpAddr),
    /// What the on-premises gateway routes into the tunnel: the VPC's address space.
    pub(crate) vpc_cidrs: Vec<IpNet>,
    /// What the VPN gateway routes into the tunnel and publishes: the data center's.
    pub(crate) dc_cidrs: Vec<IpNet>,
    pub(crate) method: Method,
    /// The VBR's address on the line, toward the on-premises gateway.
    pub(crate) vbr_address: Option<IpAddr>,
    /// Both daemons' `on_tunnel_down`.
    pub(crate) on_tunnel_down: TunnelDown,
}

impl Plan {
    /// The gateway linked to a VPC is the VPN gateway; the gateway linked to a VBR is the
    /// on-premises device.
    pub(crate) fn of(fabric: &Fabric) -> Result<Self> {
        let kind_of = |name: &str| fabric.node(name).map(|n| n.kind);
        let mut onprem = None;
        let mut cloud = None;
        let mut vbr_address = None;
        for link in fabric.links() {
            for (me, peer) in [(&link.a, &link.b), (&link.b, &link.a)] {
                if kind_of(&me.node) != Some(NodeKind::Gateway) {
                    continue;
                }
                match kind_of(&peer.node) {
                    Some(NodeKind::Vbr) => {
                        onprem = Some((me.node.clone(), me.addr.addr()));
                        vbr_address = Some(peer.addr.addr());
                    }
                    Some(NodeKind::Vpc) => {
                        cloud = Some(((me.node.clone(), me.addr.addr()), peer.node.clone()));
                    }
                    _ => {}
                }
            }
        }
        let onprem =
            onprem.context("no gateway node is linked to a vbr: no on-premises gateway")?;
        let (cloud, vpc) = cloud.context("no gateway node is linked to a vpc: no VPN gateway")?;
        Ok(Self {
            onprem,
            cloud,
            vpc_cidrs: fabric.vpc_cidrs(&vpc).to_vec(),
            dc_cidrs: fabric.data_center_cidrs().to_vec(),
            method: fabric.method(),
            vbr_address,
            on_tunnel_down: TunnelDown::Fallback,
        })
    }

    fn nodes(&self) -> [&str; 2] {
        [&self.onprem.0, &self.cloud.0]
    }
}

/// Where a gateway node's daemon keeps its files.
pub(crate) fn dir(lab: &Lab, node: &str) -> PathBuf {
    lab.state_dir.join(node)
}

pub(crate) fn api_socket(lab: &Lab, node: &str) -> PathBuf {
    dir(lab, node).join("api.sock")
}

pub(crate) fn pid_path(lab: &Lab, node: &str) -> PathBuf {
    dir(lab, node).join("daemon.pid")
}

/// Writes both gateways' configurations and the shared key, starts them and waits until the
/// tunnel carries traffic.
pub(crate) fn start(lab: &Lab, plan: &Plan, onprem: Onprem) -> Result<()> {
    let psk = write_psk(lab)?;
    fs::create_dir_all(dir(lab, &plan.cloud.0))?;
    fs::write(
        dir(lab, &plan.cloud.0).join("vpngw.toml"),
        config(lab, plan, &plan.cloud.0),
    )?;
    // The responder first, so the initiator's first IKE_SA_INIT finds it listening.
    spawn(lab, &plan.cloud.0)?;
    fs::create_dir_all(dir(lab, &plan.onprem.0))?;
    match onprem {
        Onprem::Vpngw => {
            fs::write(
                dir(lab, &plan.onprem.0).join("vpngw.toml"),
                config(lab, plan, &plan.onprem.0),
            )?;
            spawn(lab, &plan.onprem.0)?;
        }
        Onprem::Strongswan if plan.on_tunnel_down == TunnelDown::Block => {
            bail!(
                "on_tunnel_down = block needs vpngw at both ends: strongSwan's routes go with \
                 its tunnel, so the data center's side would fall back in the clear"
            )
        }
        Onprem::Strongswan => strongswan::start(lab, plan, &psk)?,
        Onprem::None => return Ok(()),
    }
    wait_up(lab, plan, Duration::from_secs(20))
}

/// A fresh random pre-shared key, private to root; returns it (hex) for strongSwan's file.
fn write_psk(lab: &Lab) -> Result<String> {
    let mut key = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading /dev/urandom for the PSK")?;
    let hex: String = key.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let path = lab.state_dir.join("psk");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, hex.as_bytes())?;
    Ok(hex)
}

/// The daemon configuration of one gateway node.
fn config(lab: &Lab, plan: &Plan, node: &str) -> String {
    let cloud = node == plan.cloud.0;
    let (local, peer) = if cloud {
        (plan.cloud.1, plan.onprem.1)
    } else {
        (plan.onprem.1, plan.cloud.1)
    };
    let (conn, inside, peer_inside, routes) = if cloud {
        (CLOUD_CONN, CLOUD_INSIDE, ONPREM_INSIDE, &plan.dc_cidrs)
    } else {
        (ONPREM_CONN, ONPREM_INSIDE, CLOUD_INSIDE, &plan.vpc_cidrs)
    };
    let d = dir(lab, node);
    let mut s = format!(
        "# Written by `vpngw lab up` for lab {lab}, node {node}.\n\
         [gateway]\n\
         name = \"{node}\"\n\
         state_dir = \"{state}\"\n\
         retransmit_timeout = \"400ms\"\n\
         retransmit_tries = 2\n\
         retransmit_base = 1.0\n\n\
         [api]\n\
         socket = \"{api}\"\n\n",
        lab = lab.name,
        state = d.display(),
        api = d.join("api.sock").display(),
    );
    if cloud {
        let _ = writeln!(
            s,
            "[fabric]\nsocket = \"{}\"\n",
            lab.socket_path().display()
        );
    }
    let _ = write!(
        s,
        "[[connection]]\n\
         name = \"{conn}\"\n\
         local_address = \"{local}\"\n\
         peer_address = \"{peer}\"\n\
         psk_file = \"{psk}\"\n\
         ike_proposals = [\"aes128gcm16-prfsha256-x25519\"]\n\
         esp_proposals = [\"aes128gcm16\"]\n\
         dpd_interval = \"1s\"\n\
         dpd_action = \"{dpd}\"\n\
         mode = \"route\"\n\
         tunnel_cidr = \"{TUNNEL_CIDR}\"\n\
         local_inside = \"{inside}\"\n\
         peer_inside = \"{peer_inside}\"\n\
         initiate = {initiate}\n\
         on_tunnel_down = \"{down}\"\n\n",
        psk = lab.state_dir.join("psk").display(),
        // The on-premises device initiates and keeps trying; the cloud side waits for it.
        dpd = if cloud { "clear" } else { "restart" },
        initiate = !cloud,
        down = match plan.on_tunnel_down {
            TunnelDown::Fallback => "fallback",
            TunnelDown::Block => "block",
        },
    );
    if plan.method == Method::One {
        for prefix in routes {
            let _ = write!(
                s,
                "[[route]]\nprefix = \"{prefix}\"\nconnection = \"{conn}\"\npublish = {cloud}\n\n"
            );
        }
        return s;
    }
    // Methods 2 and 3: BGP over the tunnel's inside /30; the VPN gateway publishes what it
    // learns into the VPC, and it is withdrawn the moment the tunnel goes.
    let (asn, peer_as, announce) = if cloud {
        (CLOUD_AS, DC_AS, &plan.vpc_cidrs)
    } else {
        (DC_AS, CLOUD_AS, &plan.dc_cidrs)
    };
    let list = |v: &[IpNet]| {
        v.iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = write!(
        s,
        "[bgp]\n\
         local_as = {asn}\n\
         router_id = \"{local}\"\n\
         announce = [{announce}]\n\n\
         [[bgp.neighbor]]\n\
         name = \"tunnel\"\n\
         address = \"{peer_inside}\"\n\
         remote_as = {peer_as}\n\
         connection = \"{conn}\"\n\
         import = [{import}]\n\
         publish = {cloud}\n\n",
        announce = list(announce),
        import = list(routes),
    );
    if !cloud && plan.method == Method::Three {
        // Method 3: the VBR learns the data center over the line from this gateway too.
        if let Some(vbr) = plan.vbr_address {
            let _ = write!(
                s,
                "[[bgp.neighbor]]\n\
                 name = \"vbr\"\n\
                 address = \"{vbr}\"\n\
                 remote_as = {CLOUD_AS}\n\
                 local_address = \"{local}\"\n\
                 import = []\n\n"
            );
        }
    }
    s
}

/// Starts `vpngw run` inside the node's namespace, in its own process group (a Ctrl-C aimed
/// at the CLI must not stop it), logging to `{state}/NODE/daemon.log`.
pub(crate) fn spawn(lab: &Lab, node: &str) -> Result<()> {
    let exe = std::env::current_exe().context("locating the vpngw binary")?;
    let d = dir(lab, node);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("daemon.log"))?;
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node)])
        .arg(exe)
        .args(["run", "--config"])
        .arg(d.join("vpngw.toml"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting the vpngw daemon on {node}"))?;
    // `ip netns exec` execs the daemon: the PID is the daemon's.
    fs::write(pid_path(lab, node), child.id().to_string())?;
    Ok(())
}

/// Stops the node's daemon by the PID `spawn` recorded; returns whether one was running.
pub(crate) fn kill(lab: &Lab, node: &str) -> Result<bool> {
    if !stop_recorded(lab, node, &pid_path(lab, node))? {
        return Ok(false);
    }
    strongswan::kill_bird(lab, node)?;
    Ok(true)
}

/// Stops the process whose PID `pid_file` holds, and removes the file; returns whether there
/// was one. Only if that PID is still a process inside the node's namespace: a stale file
/// must never make us signal an unrelated process.
pub(crate) fn stop_recorded(lab: &Lab, node: &str, pid_file: &Path) -> Result<bool> {
    let Some(pid) = fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return Ok(false);
    };
    if !crate::netns::pids(&lab.ns(node)).contains(&pid) {
        return Ok(false);
    }
    super::stop_pid(pid);
    fs::remove_file(pid_file)?;
    Ok(true)
}

/// Starts again every gateway daemon the lab configured that is not running; returns their
/// nodes.
pub(crate) fn restart_stopped(lab: &Lab, fabric: &Fabric) -> Result<Vec<String>> {
    let mut started = Vec::new();
    for node in fabric
        .nodes()
        .iter()
        .filter(|n| n.kind == NodeKind::Gateway)
    {
        if pid_path(lab, &node.name).exists() {
            continue;
        }
        if dir(lab, &node.name).join("vpngw.toml").exists() {
            spawn(lab, &node.name)?;
            started.push(node.name.clone());
        } else if strongswan::configured(lab, &node.name) {
            strongswan::spawn(lab, &node.name)?;
            started.push(node.name.clone());
        }
    }
    Ok(started)
}

/// Waits until every vpngw end reports a child SA (a strongSwan end has no API: the vpngw
/// end's child SA is the proof) and, with BGP, has learned its routes over the tunnel.
pub(crate) fn wait_up(lab: &Lab, plan: &Plan, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let vpngw_ends: Vec<&str> = plan
            .nodes()
            .into_iter()
            .filter(|n| dir(lab, n).join("vpngw.toml").exists())
            .collect();
        let states: Vec<Option<TunnelState>> = vpngw_ends
            .iter()
            .map(|n| connections(lab, n).ok()?.first().map(|c| c.state))
            .collect();
        let routed = plan.method == Method::One
            || (vpngw_ends
                .iter()
                .all(|n| !learned_routes(lab, n).is_empty())
                && (!vpngw_ends.contains(&plan.cloud.0.as_str()) || published(lab, plan)));
        if routed && states.iter().all(|s| *s == Some(TunnelState::Up)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = plan
                .nodes()
                .iter()
                .map(|n| {
                    let log =
                        fs::read_to_string(dir(lab, n).join("daemon.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(8).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    format!("{n}:\n{}", tail.join("\n"))
                })
                .collect();
            bail!(
                "the tunnel did not come up within {} s (states {states:?}); daemon logs:\n{}",
                timeout.as_secs(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the fabric holds the VPN gateway's publication of every data-center prefix: with
/// BGP (methods 2 and 3) it publishes them when it learns them, and until the fabric has
/// them the VPC still answers the data center over the line. A tunnel whose routes were
/// learned but not yet published let one reply cross in the clear.
fn published(lab: &Lab, plan: &Plan) -> bool {
    let Ok(state) = api::get::<super::controller::FabricState>(&lab.socket_path(), "/v1/state")
    else {
        return false;
    };
    plan.dc_cidrs.iter().all(|p| {
        state
            .published
            .iter()
            .any(|x| x.gateway == plan.cloud.0 && x.prefix == *p)
    })
}

fn connections(lab: &Lab, node: &str) -> Result<Vec<ConnectionInfo>> {
    api::get(&api_socket(lab, node), "/v1/connections")
}

/// The gateway nodes whose daemons answer.
pub(crate) fn running(lab: &Lab, fabric: &Fabric) -> Vec<String> {
    fabric
        .nodes()
        .iter()
        .filter(|n| n.kind == NodeKind::Gateway)
        .filter(|n| api_socket(lab, &n.name).exists())
        .map(|n| n.name.clone())
        .collect()
}

/// Tells the model what each running daemon has: its connections, whether a child SA is up,
/// and the prefixes in the kernel through its TUN device; and a strongSwan end's tunnel.
pub(crate) fn add_tunnels(lab: &Lab, fabric: &mut Fabric) -> Result<()> {
    strongswan::add_tunnel(lab, fabric)?;
    for node in running(lab, fabric) {
        let Ok(status) = api::get::<Status>(&api_socket(lab, &node), "/v1/status") else {
            // A daemon that is not answering (killed by `fail --how kill`) has no tunnel.
            continue;
        };
        let learned = learned_routes(lab, &node);
        for c in connections(lab, &node)? {
            let up = c.state == TunnelState::Up;
            let inside = match &c.mode {
                ModeInfo::Route { local_inside, .. } => Some(IpAddr::V4(*local_inside)),
                ModeInfo::Policy { .. } => None,
            };
            let mut routes: Vec<IpNet> = if c.routes_in {
                c.routes.iter().map(|r| r.prefix).collect()
            } else {
                Vec::new()
            };
            if up {
                routes.extend(
                    learned
                        .iter()
                        .filter(|(conn, _)| *conn == c.name)
                        .map(|(_, p)| *p),
                );
            }
            fabric.set_tunnel(
                &node,
                GatewayTunnel {
                    connection: c.name.clone(),
                    local: c.local_address,
                    peer: c.peer_address,
                    iface: status.tun.name.clone(),
                    inside,
                    up,
                    routes,
                },
            )?;
        }
    }
    Ok(())
}

/// What a daemon learned by BGP over its tunnels: (connection, prefix), from neighbours whose
/// session is established.
fn learned_routes(lab: &Lab, node: &str) -> Vec<(String, IpNet)> {
    let sock = api_socket(lab, node);
    let Ok(neighbors) = api::get::<Vec<NeighborView>>(&sock, "/v1/bgp/neighbors") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in neighbors {
        let Some(conn) = n.connection.filter(|_| n.state == "Established") else {
            continue;
        };
        let path = format!("/v1/bgp/routes?neighbor={}&dir=received", n.name);
        if let Ok(routes) = api::get::<Vec<BgpRoute>>(&sock, &path) {
            out.extend(routes.into_iter().map(|r| (conn.clone(), r.prefix)));
        }
    }
    out
}

/// Files the gateways keep outside the lab's state directory.
pub(crate) fn cleanup(lab: &Lab) {
    strongswan::cleanup(lab);
}

/// The line node whose forwarding `fail tunnel` cuts: the VBR.
fn line_node(fabric: &Fabric) -> Result<String> {
    fabric
        .nodes()
        .iter()
        .find(|n| n.kind == NodeKind::Vbr)
        .map(|n| n.name.clone())
        .context("the fabric has no vbr node")
}

/// The line drops IPsec: on the VBR, forwarded UDP 500 and 4500 meet blackhole rules (a
/// policy-routing rule per interface and port, no firewall needed). The BGP session between
/// the VBR and the on-premises gateway (Method 3) is untouched: it is not forwarded.
pub(crate) fn fail_line(lab: &Lab, fabric: &Fabric) -> Result<()> {
    let vbr = line_node(fabric)?;
    let node = fabric.node(&vbr).context("vbr")?;
    let mut lines = Vec::new();
    for iface in &node.interfaces {
        for port in ["500", "4500"] {
            lines.push(format!(
                "rule add iif {} ipproto udp dport {port} blackhole pref {FAIL_RULE_PREF}",
                iface.name
            ));
        }
    }
    heal_line(lab, fabric)?;
    crate::netns::ip_batch(Some(&lab.ns(&vbr)), &lines)
}

/// Removes `fail_line`'s rules.
pub(crate) fn heal_line(lab: &Lab, fabric: &Fabric) -> Result<()> {
    let vbr = line_node(fabric)?;
    let ns = lab.ns(&vbr);
    // `ip rule del pref N` removes one rule per call; the count is small and known.
    while crate::netns::ip_output(&["-n", &ns, "rule", "show", "pref", FAIL_RULE_PREF])
        .is_ok_and(|out| !out.trim().is_empty())
    {
        crate::netns::ip(&["-n", &ns, "rule", "del", "pref", FAIL_RULE_PREF])?;
    }
    Ok(())
}
