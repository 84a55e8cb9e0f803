//! The on-premises gateway as strongSwan: Debian's charon with its userspace ESP backend
//! (kernel-libipsec: a TUN device `ipsec0`, routes in table 220), as a customer's vendor
//! device would be, configured by the lab and driven through `swanctl`; in methods 2 and 3
//! with BIRD beside it for BGP (over the tunnel, and to the VBR in Method 3).
//!
//! charon's policy routes steer traffic into the tunnel while its child SA is up, and go
//! when DPD declares the peer dead: the lab's line route takes over. BIRD only tells the
//! cloud (and the VBR) where the data center is; it installs nothing in the kernel.
//!
//! charon runs under `ip netns exec`, which gives it a private mount namespace; a tmpfs on
//! `/run` there keeps its compiled-in PID file apart from any other charon on the host. Its
//! files therefore live outside `/run`, in a private temporary directory the lab removes on
//! `down`.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use fabric::{Fabric, GatewayTunnel};

use fabric::Method;

use super::{super::Lab, pid_path, Plan, CLOUD_AS, CLOUD_INSIDE, DC_AS, ONPREM_INSIDE};

/// charon's connection and child names.
const CONN: &str = "vpc";

fn dir(lab: &Lab) -> PathBuf {
    std::env::temp_dir().join(format!("vpngw-lab-{}-strongswan", lab.name))
}

pub(crate) fn log_path(lab: &Lab) -> PathBuf {
    dir(lab).join("charon.log")
}

fn vici(lab: &Lab) -> String {
    format!("unix://{}", dir(lab).join("charon.vici").display())
}

/// Whether the lab configured strongSwan on `node`.
pub(crate) fn configured(lab: &Lab, node: &str) -> bool {
    fs::read_to_string(dir(lab).join("node")).is_ok_and(|n| n == node)
}

/// Writes charon's configuration for the on-premises end of `plan` and starts it; charon
/// initiates, as the vpngw on-premises daemon would.
pub(crate) fn start(lab: &Lab, plan: &Plan, psk: &str) -> Result<()> {
    let d = dir(lab);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
    let (local, peer) = (plan.onprem.1, plan.cloud.1);
    let join = |v: &[ipnet::IpNet]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    // Retransmits 300 ms apart, where the vpngw daemons' are 400: charon measures the
    // silence before a DPD in whole seconds, so its DPD can leave up to a second after
    // vpngw's would; with 400 ms it declared the peer dead up to ~3.2 s after a break, and the
    // traffic came back over the line after the 3 s budget in about one demo in three.
    fs::write(
        d.join("strongswan.conf"),
        format!(
            "charon {{\n\
             \x20 load_modular = no\n\
             \x20 load = random nonce openssl aes gcm sha1 sha2 hmac pem pkcs1 x509 curve25519 gmp kdf kernel-libipsec kernel-netlink socket-default vici\n\
             \x20 install_routes = yes\n\
             \x20 retransmit_timeout = 0.3\n\
             \x20 retransmit_tries = 2\n\
             \x20 retransmit_base = 1.0\n\
             \x20 plugins {{ vici {{ socket = {vici} }} }}\n\
             \x20 filelog {{ main {{ path = {log}\n\
             \x20   time_format = %H:%M:%S\n\
             \x20   flush_line = yes\n\
             \x20   default = 1 }} }}\n\
             \x20 syslog {{ daemon {{ default = -1 }} }}\n\
             }}\n",
            vici = vici(lab),
            log = log_path(lab).display(),
        ),
    )?;
    // The inside addresses are in the selectors too: the VPN gateway's ICMP errors come from
    // its tunnel address, and BGP runs between the two.
    fs::write(
        d.join("swanctl.conf"),
        format!(
            "connections {{\n\
             \x20 {CONN} {{\n\
             \x20   version = 2\n\
             \x20   local_addrs = {local}\n\
             \x20   remote_addrs = {peer}\n\
             \x20   proposals = aes128gcm16-prfsha256-x25519\n\
             \x20   encap = yes\n\
             \x20   dpd_delay = 1s\n\
             \x20   keyingtries = 0\n\
             \x20   local {{ auth = psk\n              id = {local} }}\n\
             \x20   remote {{ auth = psk\n               id = {peer} }}\n\
             \x20   children {{\n\
             \x20     {CONN} {{\n\
             \x20       mode = tunnel\n\
             \x20       local_ts = {lts},{ONPREM_INSIDE}/32\n\
             \x20       remote_ts = {rts},{CLOUD_INSIDE}/32\n\
             \x20       esp_proposals = aes128gcm16\n\
             \x20       dpd_action = restart\n\
             \x20       close_action = start\n\
             \x20       start_action = start\n\
             \x20     }}\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n\
             secrets {{\n\
             \x20 ike-{CONN} {{\n\
             \x20   id-a = {local}\n\
             \x20   id-b = {peer}\n\
             \x20   secret = \"{psk}\"\n\
             \x20 }}\n\
             }}\n",
            lts = join(&plan.dc_cidrs),
            rts = join(&plan.vpc_cidrs),
        ),
    )?;
    if plan.method != Method::One {
        fs::write(d.join("bird.conf"), bird_conf(lab, plan))?;
    }
    fs::write(d.join("node"), &plan.onprem.0)?;
    spawn(lab, &plan.onprem.0)
}

/// BIRD's configuration: the data center's prefixes, announced over the tunnel to the VPN
/// gateway and, in Method 3, over the line to the VBR; nothing learned goes to the kernel.
fn bird_conf(lab: &Lab, plan: &Plan) -> String {
    let local = plan.onprem.1;
    let dc: Vec<String> = plan.dc_cidrs.iter().map(ToString::to_string).collect();
    let statics: String = dc
        .iter()
        .map(|p| format!("  route {p} unreachable;\n"))
        .collect();
    let mut s = format!(
        "log \"{log}\" all;\n\
         router id {local};\n\
         protocol device {{ }}\n\
         protocol static dc {{\n  ipv4;\n{statics}}}\n\
         protocol bgp tunnel {{\n\
         \x20 local {ONPREM_INSIDE} as {DC_AS};\n\
         \x20 neighbor {CLOUD_INSIDE} as {CLOUD_AS};\n\
         \x20 multihop 2;\n\
         \x20 connect delay time 1; connect retry time 1; error wait time 1, 2;\n\
         \x20 ipv4 {{ import all; export where source = RTS_STATIC; }};\n\
         }}\n",
        log = dir(lab).join("bird.log").display(),
    );
    if plan.method == Method::Three {
        if let Some(vbr) = plan.vbr_address {
            s.push_str(&format!(
                "protocol bgp vbr {{\n\
                 \x20 local {local} as {DC_AS};\n\
                 \x20 neighbor {vbr} as {CLOUD_AS};\n\
                 \x20 connect delay time 1; connect retry time 1; error wait time 1, 2;\n\
                 \x20 ipv4 {{ import none; export where source = RTS_STATIC; }};\n\
                 }}\n"
            ));
        }
    }
    s
}

fn bird_pid_path(lab: &Lab) -> PathBuf {
    dir(lab).join("bird.pid")
}

/// Starts BIRD in the node's namespace when the method runs BGP.
fn spawn_bird(lab: &Lab, node: &str) -> Result<()> {
    let d = dir(lab);
    let conf = d.join("bird.conf");
    if !conf.exists() {
        return Ok(());
    }
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node), "bird", "-f", "-c"])
        .arg(&conf)
        .arg("-s")
        .arg(d.join("bird.ctl"))
        .arg("-P")
        .arg(d.join("bird.ownpid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting BIRD (apt-get install -y bird2)")?;
    fs::write(bird_pid_path(lab), child.id().to_string())?;
    Ok(())
}

/// Stops BIRD, if the lab started it.
pub(crate) fn kill_bird(lab: &Lab, node: &str) -> Result<()> {
    super::stop_recorded(lab, node, &bird_pid_path(lab)).map(drop)
}

/// Starts charon in the node's namespace and loads its configuration.
pub(crate) fn spawn(lab: &Lab, node: &str) -> Result<()> {
    let d = dir(lab);
    let conf = d.join("strongswan.conf");
    let socket = d.join("charon.vici");
    // A killed charon leaves its socket behind; its presence is how we see the new one ready.
    let _ = fs::remove_file(&socket);
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node), "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size=8m tmpfs /run && exec env STRONGSWAN_CONF={} /usr/lib/ipsec/charon",
            conf.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting charon (apt-get install -y strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins)")?;
    // `sh` execs charon: the PID is charon's.
    fs::write(pid_path(lab, node), child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if Instant::now() > deadline {
            bail!(
                "charon did not open its vici socket within 10 s; its log: {}",
                log_path(lab).display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // kernel-libipsec's TUN device has no address; with the inside one on it, this end's ICMP
    // errors for tunnelled packets come from that address, as a vpngw end's do. Set before the
    // connection loads: an address change while the child SA is set up makes charon roam.
    crate::netns::ip(&[
        "-n",
        &lab.ns(node),
        "addr",
        "replace",
        &format!("{ONPREM_INSIDE}/32"),
        "dev",
        "ipsec0",
    ])?;
    let out = swanctl(
        lab,
        &["--load-all", "--noprompt", "--file"],
        Some(d.join("swanctl.conf")),
    )?;
    if !out.status.success() {
        bail!(
            "swanctl --load-all: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    spawn_bird(lab, node)
}

fn swanctl(lab: &Lab, args: &[&str], file: Option<PathBuf>) -> Result<std::process::Output> {
    let mut cmd = Command::new("swanctl");
    cmd.args(args);
    if let Some(f) = file {
        cmd.arg(f);
    }
    cmd.args(["--uri", &vici(lab)])
        .output()
        .context("running swanctl (apt-get install -y strongswan-swanctl)")
}

/// The strongSwan end's tunnel, for the model: up while charon has an installed child SA,
/// routing the VPC's prefixes into `ipsec0` then.
pub(crate) fn add_tunnel(lab: &Lab, fabric: &mut Fabric) -> Result<()> {
    let Ok(node) = fs::read_to_string(dir(lab).join("node")) else {
        return Ok(());
    };
    let plan = Plan::of(fabric)?;
    let up = pid_path(lab, &node).exists()
        && swanctl(lab, &["--list-sas"], None)
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("INSTALLED"));
    fabric.set_tunnel(
        &node,
        GatewayTunnel {
            connection: CONN.to_owned(),
            local: plan.onprem.1,
            peer: plan.cloud.1,
            iface: "ipsec0".to_owned(),
            inside: ONPREM_INSIDE.parse().ok(),
            up,
            routes: if up {
                plan.vpc_cidrs.clone()
            } else {
                Vec::new()
            },
        },
    )?;
    Ok(())
}

/// Removes charon's files (the process goes with the lab's namespaces).
pub(crate) fn cleanup(lab: &Lab) {
    let _ = fs::remove_dir_all(dir(lab));
}
