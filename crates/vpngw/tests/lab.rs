//! The lab against the real kernel: namespaces, veths, routes and ICMP probes.
//!
//! These need root and iproute2, so they are `#[ignore]`d in a plain `cargo test`;
//! `scripts/test.sh` (the README's test command, run by CI as root) runs them. Each test uses
//! its own lab name, hence its own namespaces, so they run in parallel.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    thread,
    time::Duration,
};

const VPNGW: &str = env!("CARGO_BIN_EXE_vpngw");

fn vpngw(lab: &str, args: &[&str]) -> Output {
    Command::new(VPNGW)
        .args(["lab", "--name", lab])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running vpngw")
}

fn ok(lab: &str, args: &[&str]) -> String {
    let out = vpngw(lab, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vpngw lab {args:?} failed:\nstdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn err(lab: &str, args: &[&str]) -> String {
    let out = vpngw(lab, args);
    assert!(
        !out.status.success(),
        "vpngw lab {args:?} should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Namespaces of this lab still on the machine.
fn namespaces(lab: &str) -> Vec<String> {
    let prefix = format!("{lab}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Kills the lab's fabric controller (SIGKILL, as a crash would), and gives the kernel a
/// moment to close its socket.
fn kill_controller(lab: &str) {
    for pid in controller_pids(lab) {
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    thread::sleep(Duration::from_millis(100));
}

fn controller_pids(lab: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.contains(&b"controller".as_slice()) && args.contains(&lab.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

fn assert_gone(lab: &str) {
    assert_eq!(
        namespaces(lab),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    assert_eq!(
        controller_pids(lab),
        Vec::<u32>::new(),
        "controller left running"
    );
    assert!(
        !Path::new("/run/vpngw-lab").join(lab).exists(),
        "state directory left behind"
    );
}

fn kernel_route(ns: &str, prefix: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "route", "show", prefix])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `done` every 50 ms until it holds; fails naming `what` after `limit`. Returns how
/// long it took.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let t = std::time::Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "{what}: not after {limit:?}");
        thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

/// Waits until the kernel route for `prefix` in namespace `ns` says `want`.
fn wait_route(ns: &str, prefix: &str, want: &str, limit: Duration) -> Duration {
    let what = format!("{ns}'s route {prefix} to contain {want:?}");
    wait_until(limit, &what, || kernel_route(ns, prefix).contains(want))
}

/// Takes the lab down when a test ends, pass or fail.
struct Down<'a>(&'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = vpngw(self.0, &["down"]);
    }
}

/// A scratch directory of the test's own, removed when the test ends, passed or failed.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vpngw-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn up_reaches_ecs_and_down_leaves_nothing() {
    let lab = "vt-reach";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up"]);
    assert_eq!(namespaces(lab).len(), 7);
    let pids = controller_pids(lab);
    assert_eq!(pids.len(), 1);

    let out = ok(
        lab,
        &["probe", "--from", "client", "--to", "ecs", "--count", "3"],
    );
    assert!(out.contains("3/3 echo replies"), "{out}");
    ok(
        lab,
        &["probe", "--from", "ecs", "--to", "client", "--count", "3"],
    );

    // A second `up` changes nothing.
    let again = ok(lab, &["up"]);
    assert!(again.contains("already up"), "{again}");
    assert_eq!(controller_pids(lab), pids);

    ok(lab, &["status"]);
    ok(lab, &["down"]);
    assert_gone(lab);
    assert_eq!(
        vpngw(lab, &["status"]).status.code(),
        Some(3),
        "status of a down lab"
    );
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn interrupted_up_is_cleaned_by_down() {
    for (i, after_ms) in [30u64, 120, 400].into_iter().enumerate() {
        let lab = format!("vt-int{i}");
        let _down = Down(&lab);
        let _ = vpngw(&lab, &["down"]);
        let mut up = Command::new(VPNGW)
            .args(["lab", "--name", &lab, "up"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(after_ms));
        let _ = up.kill();
        let _ = up.wait();
        ok(&lab, &["down"]);
        assert_gone(&lab);
    }
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn trace_agrees_with_packets_both_ways() {
    let lab = "vt-trace";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--onprem", "none"]);
    let out = ok(lab, &["trace", "--from", "client", "--to", "ecs", "--json"]);
    let dirs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let dirs = dirs.as_array().unwrap();
    assert_eq!(dirs.len(), 2, "both directions");
    let nodes = |d: &serde_json::Value| -> Vec<String> {
        d["walk"]["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["node"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        nodes(&dirs[0]),
        ["client", "onprem-gw", "vbr", "cen", "vpc", "ecs"]
    );
    assert_eq!(
        nodes(&dirs[1]),
        ["ecs", "vpc", "cen", "vbr", "onprem-gw", "client"]
    );
    for d in dirs {
        assert_eq!(d["agrees"], true, "{d:#}");
    }
    // The human form says so too.
    let text = ok(lab, &["trace", "--from", "client", "--to", "ecs"]);
    assert!(
        text.contains("packets agree") && !text.contains("DISAGREE"),
        "{text}"
    );
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn trace_reports_a_kernel_that_disagrees_with_the_model() {
    let lab = "vt-dis";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--onprem", "none"]);
    // Behind the controller's back: the VBR loses its route toward the VPC.
    let st = Command::new("ip")
        .args(["-n", "vt-dis-vbr", "route", "del", "172.16.0.0/16"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = vpngw(lab, &["trace", "--from", "client", "--to", "ecs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("DISAGREE"), "{text}");
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn publication_reaches_the_vpc_kernel_and_survives_a_controller_restart() {
    let lab = "vt-pub";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--onprem", "none"]);
    let vpc = "vt-pub-vpc";
    assert!(
        kernel_route(vpc, "192.168.10.0/24").contains("via 100.64.0.5"),
        "CEN route before"
    );

    let out = ok(lab, &["publish", "vpngw", "192.168.10.0/24"]);
    assert!(out.contains("kernels updated"), "{out}");
    // The write returns once the kernel has it.
    assert!(kernel_route(vpc, "192.168.10.0/24").contains("via 172.16.1.2"));
    let routes = ok(lab, &["routes", "vpc"]);
    assert!(routes.contains("published by vpngw"), "{routes}");

    // A rejected request changes nothing.
    let e = err(lab, &["publish", "vpngw", "172.16.9.0/24"]);
    assert!(e.contains("172.16.0.0/16"), "{e}");
    let e = err(lab, &["publish", "nosuchgw", "10.9.0.0/16"]);
    assert!(e.contains("nosuchgw"), "{e}");
    assert!(kernel_route(vpc, "172.16.9.0/24").is_empty());

    // Kill the controller; `up` restarts it and the publication is still there.
    kill_controller(lab);
    let out = ok(lab, &["up"]);
    assert!(out.contains("restarted"), "{out}");
    let st = ok(lab, &["status"]);
    assert!(st.contains("192.168.10.0/24 by vpngw"), "{st}");
    assert!(kernel_route(vpc, "192.168.10.0/24").contains("via 172.16.1.2"));

    ok(lab, &["withdraw", "vpngw", "192.168.10.0/24"]);
    assert!(
        kernel_route(vpc, "192.168.10.0/24").contains("via 100.64.0.5"),
        "CEN route restored"
    );
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn forbidden_method_is_refused_and_creates_nothing() {
    let lab = "vt-forbid";
    let _down = Down(lab);
    let scratch = Scratch::new("forbidden");
    let file = scratch.0.join("fabric.toml");
    let cfg = ok(lab, &["config"]);
    assert!(
        cfg.contains("\nmethod = 1\n"),
        "the default file sets the method"
    );
    let cfg = cfg.replacen(
        "\nmethod = 1\n",
        "\nvbr = \"bgp\"\nvpn_gateway = \"static\"\n",
        1,
    );
    std::fs::write(&file, cfg).unwrap();
    let e = err(lab, &["up", "--config", file.to_str().unwrap()]);
    assert!(
        e.contains("routing.vbr") && e.contains("routing.vpn_gateway"),
        "{e}"
    );
    assert_gone(lab);
    let e = err(lab, &["check", file.to_str().unwrap()]);
    assert!(e.contains("fabric.toml"), "names the file: {e}");
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn missing_prerequisites_are_one_clear_line() {
    let as_nobody = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            VPNGW,
            "lab",
            "--name",
            "vt-nobody",
            "up",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let e = String::from_utf8_lossy(&as_nobody.stderr);
    assert!(!as_nobody.status.success());
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("needs root"), "{e}");

    let no_ip = Command::new(VPNGW)
        .args(["lab", "--name", "vt-noip", "up"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&no_ip.stderr);
    assert!(!no_ip.status.success());
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("apt-get install -y iproute2"), "{e}");
    assert_gone("vt-nobody");
    assert_gone("vt-noip");
}

#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn verify_sees_the_plain_line_in_the_clear() {
    let lab = "vt-verify";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--onprem", "none"]);
    // No tunnel yet: the seed's starting point, a private line that is not encrypted.
    let out = vpngw(
        lab,
        &["verify", "--from", "client", "--to", "ecs", "--count", "5"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("5/5 echo replies"), "{text}");
    assert!(
        text.contains("plaintext: 192.168.10.10 → 172.16.2.10"),
        "{text}"
    );
    assert!(
        text.contains("plaintext: 172.16.2.10 → 192.168.10.10"),
        "{text}"
    );
    assert!(text.contains("verdict: PLAINTEXT"), "{text}");
}

/// A `vpngw run` in the lab's `vpngw` node: its `publish = true` route reaches the VPC's table
/// through the fabric controller, `vpngw route withdraw` takes it out (the seed's manual step
/// of Method 1), and the operator's choice survives a daemon restart.
#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn a_daemon_publishes_into_the_vpc_and_the_withdrawal_survives_a_restart() {
    let lab = "vt-pubd";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--onprem", "none"]);
    let scratch = Scratch::new("pubd");
    let dir = &scratch.0;
    let psk = dir.join("psk");
    std::fs::write(&psk, "lab-psk").unwrap();
    std::fs::set_permissions(&psk, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let d = dir.display();
    let config = dir.join("vpngw.toml");
    std::fs::write(
        &config,
        format!(
            r#"[gateway]
name = "vpngw"
state_dir = "{d}/state"

[api]
socket = "{d}/api.sock"

[fabric]
socket = "/run/vpngw-lab/{lab}/controller.sock"

[[connection]]
name = "onprem"
local_address = "172.16.1.2"
peer_address = "10.0.0.1"
psk_file = "{d}/psk"
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
esp_proposals = ["aes128gcm16"]
mode = "route"
tunnel_cidr = "169.254.10.0/30"
initiate = false

[[route]]
prefix = "192.168.10.0/24"
connection = "onprem"
publish = true
"#
        ),
    )
    .unwrap();
    let api = dir.join("api.sock");
    let start_daemon = || -> std::process::Child {
        let child = Command::new("ip")
            .args(["netns", "exec", "vt-pubd-vpngw", VPNGW, "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(10), "the daemon's API", || api.exists());
        child
    };
    let route = |args: &[&str]| -> Output {
        Command::new(VPNGW)
            .arg("route")
            .args(args)
            .arg("--api")
            .arg(&api)
            .output()
            .unwrap()
    };
    let vpc_route = || kernel_route("vt-pubd-vpc", "192.168.10.0/24");
    let wait_vpc = |want: &str| {
        wait_route(
            "vt-pubd-vpc",
            "192.168.10.0/24",
            want,
            Duration::from_secs(10),
        );
    };

    let mut daemon = start_daemon();
    // Published at start, tunnel or not: the seed's static routes.
    wait_vpc("via 172.16.1.2");
    let list = String::from_utf8_lossy(&route(&["list"]).stdout).into_owned();
    assert!(
        list.contains("192.168.10.0/24") && list.contains("yes"),
        "{list}"
    );

    let out = route(&["withdraw", "192.168.10.0/24"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        vpc_route().contains("via 100.64.0.5"),
        "back to the CEN route: {}",
        vpc_route()
    );
    // A prefix that is no route of this gateway is refused and changes nothing.
    let bad = route(&["withdraw", "10.9.0.0/16"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a [[route]]"));

    // Restart: the withdrawal holds; the daemon does not publish again.
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let _ = std::fs::remove_file(&api);
    let mut daemon = start_daemon();
    thread::sleep(Duration::from_millis(500));
    assert!(
        vpc_route().contains("via 100.64.0.5"),
        "withdrawal survived the restart: {}",
        vpc_route()
    );
    let out = route(&["publish", "192.168.10.0/24"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(vpc_route().contains("via 172.16.1.2"));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// Runs `vpngw lab demo --json ARGS` on `lab` and returns its reports.
fn demo(lab: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let _ = vpngw(lab, &["down"]);
    let mut all = vec!["demo", "--json"];
    all.extend_from_slice(args);
    let out = vpngw(lab, &all);
    let text = String::from_utf8_lossy(&out.stdout);
    let reports: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{reports:#}");
    assert_gone(lab);
    reports.as_array().unwrap().clone()
}

/// What every scenario must show: encrypted while the tunnel is up, back in the tunnel and
/// encrypted within 3 s of healing.
fn assert_tunnel_then_back(r: &serde_json::Value) {
    assert_eq!(r["matches_seed"], true, "{r:#}");
    assert_eq!(r["encrypted_while_up"], true, "{r:#}");
    assert_eq!(r["encrypted_after_heal"], true, "{r:#}");
    assert!(r["back_in_tunnel_s"].as_f64().unwrap() < 3.0, "{r:#}");
}

/// The seed's three methods end to end with two vpngw daemons, and Method 3 with block:
/// Method 1 stops until the manual withdrawal, then crosses the line in the clear; Methods 2
/// and 3 fall back over the line by themselves within 3 s; block never lets anything cross
/// the line in the clear.
#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn demo_every_method_with_vpngw_is_the_seed() {
    let lab = "vt-demo";
    let _down = Down(lab);
    let reports = demo(lab, &[]);
    let key = |r: &serde_json::Value| {
        (
            r["method"].as_u64().unwrap(),
            r["on_tunnel_down"].as_str().unwrap().to_owned(),
        )
    };
    let got: Vec<_> = reports.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (1, "fallback".to_owned()),
            (2, "fallback".to_owned()),
            (3, "fallback".to_owned()),
            (3, "block".to_owned())
        ]
    );
    for r in &reports {
        assert_tunnel_then_back(r);
        match key(r) {
            (1, _) => {
                assert!(r["resumed_after_s"].is_null(), "traffic stops: {r:#}");
                assert!(r["after_withdraw_s"].as_f64().unwrap() < 3.0, "{r:#}");
                assert_eq!(r["fallback_plaintext"], true, "{r:#}");
            }
            (_, d) if d == "block" => {
                assert!(r["resumed_after_s"].is_null(), "traffic stops: {r:#}");
                assert_eq!(
                    r["plaintext_packets"], 0,
                    "nothing in the clear, ever: {r:#}"
                );
            }
            _ => {
                assert!(r["resumed_after_s"].as_f64().unwrap() < 3.0, "{r:#}");
                assert_eq!(r["fallback_plaintext"], true, "{r:#}");
            }
        }
    }
}

/// Method 3 with strongSwan (and BIRD) as the on-premises device.
#[test]
#[ignore = "needs root, iproute2, strongSwan and BIRD; run by scripts/test.sh"]
fn demo_method_3_with_strongswan_is_the_seed() {
    let lab = "vt-demosw";
    let _down = Down(lab);
    let reports = demo(lab, &["--method", "3", "--onprem", "strongswan"]);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_tunnel_then_back(r);
    assert!(r["resumed_after_s"].as_f64().unwrap() < 3.0, "{r:#}");
    assert_eq!(r["fallback_plaintext"], true, "{r:#}");
}

/// `withdraw_when_down = true` (beyond the seed's Method 1): a reload turns it on without
/// touching the tunnel; when the line drops IPsec the VPN gateway takes its publication out
/// of the VPC by itself, so traffic comes back over the line without the manual step, and
/// puts it back once the tunnel is up again.
#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn withdraw_when_down_follows_the_tunnel_after_a_reload() {
    let lab = "vt-wwd";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up"]);
    let vpc_route = || kernel_route("vt-wwd-vpc", "192.168.10.0/24");
    let wait_vpc =
        |want: &str, limit: Duration| wait_route("vt-wwd-vpc", "192.168.10.0/24", want, limit);
    wait_vpc("via 172.16.1.2", Duration::from_secs(5));

    let config = Path::new("/run/vpngw-lab/vt-wwd/vpngw/vpngw.toml");
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(
        config,
        text.replace(
            "publish = true\n",
            "publish = true\nwithdraw_when_down = true\n",
        ),
    )
    .unwrap();
    let api = "/run/vpngw-lab/vt-wwd/vpngw/api.sock";
    let out = Command::new(VPNGW)
        .args(["reload", "--json", "--api", api])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("\"routes_changed\": true"), "{report}");
    assert!(vpc_route().contains("via 172.16.1.2"), "still published");

    ok(lab, &["fail", "tunnel"]);
    let took = wait_vpc("via 100.64.0.5", Duration::from_secs(6));
    eprintln!("publication withdrawn {took:?} after the line dropped IPsec");
    let out = ok(
        lab,
        &["probe", "--from", "client", "--to", "ecs", "--count", "3"],
    );
    assert!(out.contains("3/3"), "back over the line: {out}");

    ok(lab, &["heal", "tunnel"]);
    wait_vpc("via 172.16.1.2", Duration::from_secs(10));
    let v = ok(lab, &["verify", "--count", "5"]);
    assert!(v.contains("verdict: ENCRYPTED"), "{v}");
}

/// Method 2: the route the VPN gateway learned by BGP over the tunnel leaves the VPC's table
/// (and kernel) within 1 s of the gateway declaring the tunnel down — not at the hold timer.
#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn method_2_bgp_routes_leave_the_vpc_within_1s_of_the_tunnel_going_down() {
    let lab = "vt-bgpw";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--method", "2"]);
    let api = "/run/vpngw-lab/vt-bgpw/vpngw/api.sock";
    let state = || -> String {
        let out = Command::new(VPNGW)
            .args(["conn", "list", "--json", "--api", api])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v[0]["state"].as_str().unwrap_or("?").to_owned()
    };
    let vpc_route = || kernel_route("vt-bgpw-vpc", "192.168.10.0/24");
    assert!(
        vpc_route().contains("via 172.16.1.2"),
        "learned, published: {}",
        vpc_route()
    );

    ok(lab, &["fail", "tunnel"]);
    let t = std::time::Instant::now();
    while state() == "up" {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the tunnel never went down"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let declared = std::time::Instant::now();
    while !vpc_route().contains("via 100.64.0.5") {
        assert!(
            declared.elapsed() < Duration::from_secs(1),
            "still published 1 s after the tunnel went down: {}",
            vpc_route()
        );
        thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "tunnel down after {:?}; VPC route gone {:?} later",
        declared - t,
        declared.elapsed()
    );
    ok(lab, &["heal", "tunnel"]);
    wait_route(
        "vt-bgpw-vpc",
        "192.168.10.0/24",
        "via 172.16.1.2",
        Duration::from_secs(10),
    );
}

/// Runs `f` on a thread inside the lab node's namespace (for sockets there).
fn in_node<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let fd = std::fs::File::open(Path::new("/run/netns").join(ns)).unwrap();
    thread::spawn(move || {
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .unwrap()
}

/// Through the tunnel, a packet too big for it with DF set is answered with "fragmentation
/// needed" at the tunnel's MTU (1400), and a TCP connection's MSS is clamped on the SYN to fit
/// it, although both hosts' links have a 1500-byte MTU.
#[test]
#[ignore = "needs root, iproute2 and iputils-ping; run by scripts/test.sh"]
fn the_tunnel_mtu_is_signalled_and_tcp_mss_clamped() {
    let lab = "vt-mtu";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up"]);
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            "vt-mtu-client",
            "ping",
            "-M",
            "do",
            "-s",
            "1472",
        ])
        .args(["-c", "1", "-W", "2", "172.16.2.10"])
        .output()
        .expect("ping (iputils-ping)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );
    assert!(!ping.status.success(), "{text}");
    assert!(
        text.contains("mtu = 1400") || text.contains("mtu=1400"),
        "{text}"
    );

    let listener = in_node("vt-mtu-ecs", || {
        std::net::TcpListener::bind("172.16.2.10:7000").unwrap()
    });
    let server = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        socket2::SockRef::from(&conn).tcp_mss().unwrap()
    });
    let client = in_node("vt-mtu-client", || {
        std::net::TcpStream::connect("172.16.2.10:7000").unwrap()
    });
    let mss = server.join().unwrap();
    drop(client);
    // 1400 - 40 = 1360 on the SYN; the kernel reports it less any options it uses.
    assert!(mss <= 1360, "MSS {mss}: not clamped to the tunnel");
    assert!(mss >= 1300, "MSS {mss}");
}

/// `POST`s `body` to the lab controller's API; returns the status code and the body.
fn post_controller(lab: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let sock = Path::new("/run/vpngw-lab")
        .join(lab)
        .join("controller.sock");
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: controller\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (code, body.to_owned())
}

/// The seed's ASN rule: the cloud learns the AS the data center uses toward the VBR (its
/// session over the line) and toward the VPN gateway (the session over the tunnel) from the
/// sessions themselves, and warns when they differ, since the routes would then flap.
#[test]
#[ignore = "needs root and iproute2; run by scripts/test.sh"]
fn method_3_checks_the_data_center_uses_one_asn_toward_the_vbr_and_the_gateway() {
    let lab = "vt-dcas";
    let _down = Down(lab);
    let _ = vpngw(lab, &["down"]);
    ok(lab, &["up", "--method", "3"]);
    let dc_asn = || -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&ok(lab, &["status", "--json"])).unwrap();
        v["controller"]["dc_asn"].clone()
    };
    wait_until(
        Duration::from_secs(30),
        "both sessions with the data center up",
        || {
            let d = dc_asn();
            d["vbr"] == 65001 && d["gateways"]["vpngw/tunnel"] == 65001
        },
    );
    assert_eq!(dc_asn()["warnings"], serde_json::json!([]));
    assert!(ok(lab, &["status"]).contains("data center's AS: VBR 65001, vpngw/tunnel 65001"));

    // A second data-center router peers with the VPN gateway from another AS.
    let second =
        |peer_as: &str| format!(r#"{{"gateway":"vpngw","neighbor":"dc-2","peer_as":{peer_as}}}"#);
    let (code, body) = post_controller(lab, "/v1/dc-asn", &second("65002"));
    assert_eq!(code, 200, "{body}");
    let w = dc_asn()["warnings"].clone();
    assert_eq!(w.as_array().map(Vec::len), Some(1), "{w}");
    let line = w[0].as_str().unwrap();
    assert!(
        line.starts_with("vpngw/dc-2: ") && line.contains("AS 65001 toward the VBR but AS 65002"),
        "{line}"
    );
    assert!(ok(lab, &["status"]).contains("WARNING: vpngw/dc-2"));

    // A node that is not a VPN gateway is refused, and changes nothing.
    let (code, _) = post_controller(
        lab,
        "/v1/dc-asn",
        r#"{"gateway":"vbr","neighbor":"x","peer_as":1}"#,
    );
    assert_eq!(code, 404);
    assert_eq!(dc_asn()["warnings"], w);

    // A restarted controller still knows what the gateways reported; the VBR's session
    // comes back by itself.
    kill_controller(lab);
    let out = ok(lab, &["up", "--method", "3"]);
    assert!(out.contains("restarted"), "{out}");
    wait_until(Duration::from_secs(30), "the VBR's session back", || {
        dc_asn()["vbr"] == 65001
    });
    assert_eq!(dc_asn()["warnings"], w);

    // That session ends: the warning goes.
    let (code, _) = post_controller(lab, "/v1/dc-asn", &second("null"));
    assert_eq!(code, 200);
    assert_eq!(dc_asn()["warnings"], serde_json::json!([]));
}
