//! The seed's world on one machine: every node of the fabric is a network namespace, every
//! link a veth pair, every node's kernel routes programmed from the fabric's tables.
//!
//! ```text
//!  vpngw lab up ──► namespaces {lab}-{node}, veths, addresses, sysctls
//!               ├─► spawns `vpngw lab controller` (owns the Fabric, programs kernel routes,
//!               │   serves publish/withdraw/routes on {state}/controller.sock; in Method 3
//!               │   the VBR's BGP speaker, `vbr`)
//!               └─► the two gateways and their tunnel (`gateways`: vpngw run, or charon+BIRD)
//!  vpngw lab trace ──► Fabric::walk with the daemons' tunnels (model)  ⇄  TTL-limited probes
//!  vpngw lab fail|heal ──► the line drops IPsec (ip rules at the VBR), or a gateway stops
//!  vpngw lab demo ──► each method: up, verify, trace, fail, measure, heal, the seed's table
//!  vpngw lab down ──► controller stopped by PID, namespaces deleted (veths go with them)
//! ```
//!
//! No namespace is ever linked to the host's own network: every veth has both ends inside
//! lab namespaces.

pub(crate) mod capture;
pub(crate) mod controller;
pub(crate) mod demo;
pub(crate) mod gateways;
pub(crate) mod probe;
pub(crate) mod trace;
mod vbr;

use std::{
    fs,
    io::ErrorKind,
    net::IpAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use fabric::{Fabric, FabricConfig, Node};

use crate::netns;

/// Marks the routes the lab installs so they can be told from the kernel's own and flushed
/// after a crash (an unassigned number in iproute2's `rt_protos`).
pub(crate) const ROUTE_PROTO: &str = "86";

/// The lab's routes sit above a gateway daemon's (`[gateway] route_metric`, 50 by default):
/// a route into the tunnel wins while the daemon has it in, the lab's route takes over when
/// the daemon takes its own out.
pub(crate) const ROUTE_METRIC: &str = "100";

/// What `up` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Up {
    /// Built from nothing.
    Created,
    /// It was up already; nothing changed.
    Unchanged,
    /// The namespaces were intact but the controller was not running; it was started again.
    ControllerRestarted,
}

/// One lab instance, named so that several (tests, a demo) can coexist.
#[derive(Debug, Clone)]
pub(crate) struct Lab {
    pub(crate) name: String,
    pub(crate) state_dir: PathBuf,
}

impl Lab {
    pub(crate) fn new(name: &str) -> Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 24
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.starts_with('-');
        if !valid {
            bail!("lab name {name:?}: use 1–24 letters, digits or '-', not starting with '-'");
        }
        Ok(Self {
            name: name.to_owned(),
            state_dir: Path::new("/run/vpngw-lab").join(name),
        })
    }

    /// The namespace of a node.
    pub(crate) fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }

    pub(crate) fn socket_path(&self) -> PathBuf {
        self.state_dir.join("controller.sock")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.state_dir.join("fabric.toml")
    }

    fn pid_path(&self) -> PathBuf {
        self.state_dir.join("controller.pid")
    }

    /// Namespaces recorded before creation, so `down` finds them even after a crash.
    fn created_path(&self) -> PathBuf {
        self.state_dir.join("namespaces")
    }

    pub(crate) fn published_path(&self) -> PathBuf {
        self.state_dir.join("published.json")
    }

    /// The data center's AS as the VPN gateways reported it, kept across controller restarts.
    pub(crate) fn dc_asn_path(&self) -> PathBuf {
        self.state_dir.join("dc-asn.json")
    }

    /// The fabric the running lab was brought up with.
    pub(crate) fn load_config(&self) -> Result<FabricConfig> {
        let path = self.config_path();
        let text = fs::read_to_string(&path)
            .with_context(|| format!("lab {} is not up ({} missing)", self.name, path.display()))?;
        FabricConfig::from_toml(&path.display().to_string(), &text)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn record_created(&self, ns: &str) -> Result<()> {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.created_path())?;
        writeln!(f, "{ns}")?;
        f.sync_all()?;
        Ok(())
    }

    /// Every namespace this lab may own: the recorded ones and the expected names, present
    /// on this machine.
    fn owned_namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_to_string(self.created_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        let nodes: Vec<String> = match self.load_config() {
            Ok(cfg) => match Fabric::new(cfg) {
                Ok(f) => f.nodes().iter().map(|n| n.name.clone()).collect(),
                Err(_) => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        let defaults = Fabric::new(FabricConfig::default())
            .map(|f| f.nodes().iter().map(|n| n.name.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        names.extend(nodes.iter().chain(&defaults).map(|n| self.ns(n)));
        names.sort();
        names.dedup();
        let present = netns::list();
        names.retain(|n| present.contains(n));
        names
    }

    pub(crate) fn controller_pid(&self) -> Option<i32> {
        let pid: i32 = fs::read_to_string(self.pid_path())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // Only a process that is really our controller for this lab: a stale PID file must
        // never make us signal an unrelated process.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_ours = args.iter().any(|a| a.ends_with(b"vpngw"))
            && args.contains(&b"controller".as_slice())
            && args.contains(&self.name.as_bytes());
        is_ours.then_some(pid)
    }

    /// Brings the lab up; on a lab that is already up it changes nothing.
    pub(crate) fn up(&self, config: FabricConfig) -> Result<Up> {
        preflight()?;
        let fabric = Fabric::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let present: Vec<String> = fabric
            .nodes()
            .iter()
            .map(|n| self.ns(&n.name))
            .filter(|ns| netns::exists(ns))
            .collect();
        if !present.is_empty() || self.config_path().exists() {
            let complete = present.len() == fabric.nodes().len() && self.config_path().exists();
            if complete && self.controller_pid().is_some() {
                return Ok(Up::Unchanged);
            }
            if complete {
                // The namespaces are intact and the controller died: start it again from its
                // saved state rather than tear down a working lab.
                self.start_controller()?;
                return Ok(Up::ControllerRestarted);
            }
            bail!(
                "lab {} is partly up (left by an interrupted `up` or a crash); run `vpngw lab --name {} down` first",
                self.name,
                self.name
            );
        }
        fs::create_dir_all(&self.state_dir)
            .with_context(|| format!("creating {}", self.state_dir.display()))?;
        let result = self.build(&fabric).and_then(|()| self.start_controller());
        if let Err(e) = result {
            // Leave nothing half-built behind; the error is what the user needs to see.
            let _ = self.down();
            return Err(e);
        }
        Ok(Up::Created)
    }

    fn build(&self, fabric: &Fabric) -> Result<()> {
        fs::write(self.config_path(), fabric.config().to_toml())?;
        for node in fabric.nodes() {
            let ns = self.ns(&node.name);
            self.record_created(&ns)?;
            netns::ip(&["netns", "add", &ns])?;
            netns::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            self.node_sysctls(node)?;
        }
        for link in fabric.links() {
            let (a, b) = (&link.a, &link.b);
            netns::ip(&[
                "link",
                "add",
                &a.iface,
                "netns",
                &self.ns(&a.node),
                "type",
                "veth",
                "peer",
                "name",
                &b.iface,
                "netns",
                &self.ns(&b.node),
            ])?;
        }
        for node in fabric.nodes() {
            let mut batch = Vec::new();
            for i in &node.interfaces {
                batch.push(format!("addr add {} dev {}", i.addr, i.name));
                batch.push(format!("link set {} up", i.name));
            }
            netns::ip_batch(Some(&self.ns(&node.name)), &batch)?;
        }
        Ok(())
    }

    fn node_sysctls(&self, node: &Node) -> Result<()> {
        let fwd = if node.kind.forwards() { "1" } else { "0" };
        netns::sysctls(
            &self.ns(&node.name),
            &[
                ("net.ipv4.ip_forward", fwd),
                ("net.ipv6.conf.all.forwarding", fwd),
                // The tunnel makes paths asymmetric on purpose (in through the line, out through
                // the tunnel, or back during failover); strict reverse-path filtering would
                // drop exactly the packets the lab exists to show.
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
                // A router's ICMP errors then name the interface the packet came in on, which
                // is what `trace` compares with the model's hop.
                ("net.ipv4.icmp_errors_use_inbound_ifaddr", "1"),
                // Probes must not be rate limited into false disagreements.
                ("net.ipv4.icmp_ratelimit", "0"),
            ],
        )
    }

    fn start_controller(&self) -> Result<()> {
        let exe = std::env::current_exe().context("locating the vpngw binary")?;
        let log = fs::File::create(self.state_dir.join("controller.log"))?;
        let mut child = Command::new(exe)
            .args(["lab", "--name", &self.name, "controller"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C aimed at `lab up` must not take the controller
            // down with it once the lab is up.
            .process_group(0)
            .spawn()
            .context("starting the fabric controller")?;
        fs::write(self.pid_path(), child.id().to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if crate::api::get::<serde_json::Value>(&self.socket_path(), "/v1/status").is_ok() {
                return Ok(());
            }
            let exited = child.try_wait()?;
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let log =
                    fs::read_to_string(self.state_dir.join("controller.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "the fabric controller {}; its log:\n{}",
                    if exited.is_some() {
                        "exited"
                    } else {
                        "did not answer within 10 s"
                    },
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Takes the lab down: the controller by PID, every process inside its namespaces, the
    /// namespaces (their veths go with them) and the state directory. Safe to run on a lab
    /// that is half up or already gone. Returns what was removed.
    pub(crate) fn down(&self) -> Result<Vec<String>> {
        preflight()?;
        let mut removed = Vec::new();
        if let Some(pid) = self.controller_pid() {
            stop_pid(pid);
            removed.push(format!("controller (pid {pid})"));
        }
        for ns in self.owned_namespaces() {
            // Processes inside a lab namespace were started there by the lab or its user.
            for pid in netns::pids(&ns) {
                stop_pid(pid);
            }
            netns::ip(&["netns", "del", &ns])?;
            removed.push(ns);
        }
        gateways::cleanup(self);
        match fs::remove_dir_all(&self.state_dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(e).context(format!("removing {}", self.state_dir.display()))
            }
            _ => {}
        }
        Ok(removed)
    }

    /// The address probes aim at when a node name is given: its first interface's.
    pub(crate) fn resolve(fabric: &Fabric, target: &str) -> Result<(IpAddr, Option<String>)> {
        if let Ok(a) = target.parse::<IpAddr>() {
            let owner = fabric.owner_of(a).map(|(n, _)| n.name.clone());
            return Ok((a, owner));
        }
        let node = fabric
            .node(target)
            .with_context(|| unknown_node(fabric, target))?;
        let iface = node
            .interfaces
            .first()
            .with_context(|| format!("node {target} has no interface"))?;
        Ok((iface.addr.addr(), Some(node.name.clone())))
    }
}

pub(crate) fn unknown_node(fabric: &Fabric, name: &str) -> String {
    let names: Vec<&str> = fabric.nodes().iter().map(|n| n.name.as_str()).collect();
    format!("no node named {name:?}; nodes are: {}", names.join(", "))
}

/// SIGTERM, then SIGKILL if it is still there after a moment.
pub(crate) fn stop_pid(pid: i32) {
    use nix::{
        sys::signal::{kill, Signal},
        unistd::Pid,
    };
    let pid = Pid::from_raw(pid);
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(10));
        if kill(pid, None).is_err() {
            return;
        }
    }
    let _ = kill(pid, Signal::SIGKILL);
}

/// What the lab needs from the machine, checked first so a missing piece is one clear line.
pub(crate) fn preflight() -> Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("the lab needs root (it creates network namespaces): run it with sudo");
    }
    match Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => bail!("`ip` (iproute2) not found: install it with `apt-get install -y iproute2`"),
    }
}
