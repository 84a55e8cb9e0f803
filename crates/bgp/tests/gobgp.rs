//! Interop with a real GoBGP (`gobgpd`, Debian package) in network namespaces.
//!
//! Run as root with iproute2 and gobgpd installed:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bgp cargo test -p bgp --test gobgp -- --ignored --nocapture
//! ```
//!
//! gobgpd (AS 65003, 10.99.0.1) runs in one namespace, its gRPC API on 127.0.0.1:50051 of
//! that namespace; routes are injected with the `gobgp` CLI: 10.203.{0,1}.0/24 and
//! 2001:db8:203::/48. Our speaker (AS 65002, 10.99.0.2) runs as in `bird.rs`. Checked: the
//! session comes up, IPv4 and IPv6 both ways, withdrawals both ways, route refresh from us
//! (gobgpd cannot be made to send one), max-prefix drop-excess and reset (GoBGP sees Cease / Maximum Number of Prefixes
//! Reached). `BGP_WRITE_FIXTURES=DIR` saves what GoBGP sent.

mod interop;

use std::{fs, time::Duration};

use bgp::{Family, Input, State};
use interop::{
    established, max_prefix_drop_then_reset, sh, wait_for, Daemon, Driver, Lab, DAEMON_V4,
    DAEMON_V6, OUR_V4,
};

const GOBGP_V4: [&str; 2] = ["10.203.0.0/24", "10.203.1.0/24"];
const GOBGP_V6: &str = "2001:db8:203::/48";

fn gobgpd_conf() -> String {
    format!(
        r#"[global.config]
  as = 65003
  router-id = "{DAEMON_V4}"
  local-address-list = ["{DAEMON_V4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{OUR_V4}"
    peer-as = 65002
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#
    )
}

/// The `gobgp` CLI inside the daemon's namespace.
fn gobgp(lab: &Lab, cmd: &str) -> String {
    let mut args = vec![
        "ip",
        "netns",
        "exec",
        &lab.daemon_ns,
        "gobgp",
        "-u",
        "127.0.0.1",
        "-p",
        "50051",
    ];
    args.extend(cmd.split_whitespace());
    sh(&args)
}

fn gobgp_has(lab: &Lab, family: &str, prefix: &str) -> bool {
    gobgp(lab, &format!("neighbor {OUR_V4} adj-in -a {family}"))
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == prefix))
}

#[test]
#[ignore = "needs root, iproute2 and gobgpd"]
fn gobgp_interop() {
    let lab = Lab::new("gobgp");
    fs::write(lab.path("gobgpd.toml"), gobgpd_conf()).unwrap();
    let daemon = Daemon::spawn(
        "gobgpd",
        &lab.daemon_ns,
        &[
            "gobgpd",
            "-f",
            lab.path("gobgpd.toml").to_str().unwrap(),
            "-p",
            "--api-hosts",
            "127.0.0.1:50051",
            "--pprof-disable",
        ],
        &lab.path("gobgpd.log"),
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.daemon_ns,
                    "gobgp",
                    "-u",
                    "127.0.0.1",
                    "-p",
                    "50051",
                    "global",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        }),
        "gobgpd did not start: {}",
        fs::read_to_string(lab.path("gobgpd.log")).unwrap_or_default()
    );
    println!("gobgpd pid {}", daemon.pid());
    for p in GOBGP_V4 {
        gobgp(&lab, &format!("global rib add {p} -a ipv4"));
    }
    gobgp(
        &lab,
        &format!("global rib add {GOBGP_V6} nexthop {DAEMON_V6} -a ipv6"),
    );

    lab.run_ours(run);
    drop(daemon);
}

fn all_gobgp_routes(d: &Driver) -> bool {
    GOBGP_V4.iter().all(|p| d.has(p)) && d.has(GOBGP_V6)
}

fn run(lab: &Lab) {
    let (mut d, neg) = established("gobgp", 65003, Duration::from_secs(20), || {
        gobgp(lab, "neighbor")
    });
    assert!(neg.four_octet_as && neg.route_refresh);
    assert_eq!(neg.families, Family::ALL.to_vec());

    assert!(
        d.run_until(Duration::from_secs(10), all_gobgp_routes),
        "GoBGP's routes missing: {:?}",
        d.table
    );
    let r = d.best("10.203.0.0/24");
    assert_eq!(r.next_hop.to_string(), "via 10.99.0.1");
    assert!(
        wait_for(Duration::from_secs(5), || {
            gobgp_has(lab, "ipv4", "10.202.0.0/24")
                && gobgp_has(lab, "ipv4", "10.202.1.0/24")
                && gobgp_has(lab, "ipv6", "2001:db8:202::/48")
        }),
        "GoBGP lacks our routes:\n{}\n{}",
        gobgp(lab, &format!("neighbor {OUR_V4} adj-in -a ipv4")),
        gobgp(lab, &format!("neighbor {OUR_V4} adj-in -a ipv6"))
    );
    println!("{}", gobgp(lab, "global rib -a ipv4"));
    println!("{}", gobgp(lab, "global rib -a ipv6"));

    // Withdraw both ways.
    d.with(|s, _| s.withdraw_local("10.202.1.0/24".parse().unwrap()));
    d.with(|s, _| s.withdraw_local("2001:db8:202::/48".parse().unwrap()));
    assert!(wait_for(Duration::from_secs(5), || {
        d.poll();
        !gobgp_has(lab, "ipv4", "10.202.1.0/24") && !gobgp_has(lab, "ipv6", "2001:db8:202::/48")
    }));
    gobgp(lab, "global rib del 10.203.1.0/24 -a ipv4");
    gobgp(lab, &format!("global rib del {GOBGP_V6} -a ipv6"));
    assert!(
        d.run_until(Duration::from_secs(5), |d| !d.has("10.203.1.0/24")
            && !d.has(GOBGP_V6))
    );
    assert!(d.has("10.203.0.0/24"));
    gobgp(lab, "global rib add 10.203.1.0/24 -a ipv4");
    gobgp(
        lab,
        &format!("global rib add {GOBGP_V6} nexthop {DAEMON_V6} -a ipv6"),
    );
    assert!(d.run_until(Duration::from_secs(5), all_gobgp_routes));

    // Route refresh both ways.
    let before = d.updates_in();
    d.with(|s, p| s.request_refresh(p, Family::Ipv4Unicast));
    assert!(
        d.run_until(Duration::from_secs(5), |d| d.updates_in() > before),
        "GoBGP did not answer our ROUTE-REFRESH"
    );
    // The other direction is not exercised here: gobgpd's `softresetin` re-applies policy
    // to its own stored Adj-RIB-In and sends no ROUTE-REFRESH, and its CLI has no command
    // that does (BIRD's `reload in` does; see bird.rs).

    // Transport down.
    d.input(Input::TransportDown);
    assert_eq!(d.table.iter().count(), 0);
    assert!(d.run_until(Duration::from_secs(30), |d| d.state() == State::Established));
    assert!(d.run_until(Duration::from_secs(10), all_gobgp_routes));
    if let Some(dir) = std::env::var_os("BGP_WRITE_FIXTURES") {
        d.write_fixtures(std::path::Path::new(&dir), "gobgp");
    }
    d.input(Input::ManualStop);
    d.run_for(Duration::from_millis(300));
    drop(d);

    // Max-prefix (the daemon sends three prefixes, we take two): drop the excess, then reset.
    max_prefix_drop_then_reset("gobgp", 65003);
    let log = fs::read_to_string(lab.path("gobgpd.log")).unwrap_or_default();
    assert!(
        log.contains("maximum number of prefixes")
            || log.contains("Code:6 Subcode:1")
            || log.contains("code 6 subcode 1"),
        "GoBGP did not log our Cease/1:\n{log}"
    );
}
