//! Interop with a real FRR `bgpd` (Debian package `frr`) in network namespaces.
//!
//! Run as root with iproute2 and frr installed:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bgp cargo test -p bgp --test frr -- --ignored --nocapture
//! ```
//!
//! FRR's `bgpd` (AS 65004, 10.99.0.1) runs alone in one namespace, isolated from any FRR the
//! host may run: no zebra (`-Z`, so it touches no kernel table and NHT takes every next hop
//! as reachable), its configuration, PID file and vty socket in the test's own directory
//! (`-f`, `-i`, `--vty_socket`), no TCP vty (`-P 0`), no privilege switch (`-S`); `vtysh`
//! reaches it through that socket. It originates 10.204.{0,1}.0/24 and 2001:db8:204::/48
//! (`network`, with `no bgp network import-check` since there is no RIB to check against,
//! and a route-map setting the IPv6 next hop it cannot learn from interfaces without zebra).
//! Our speaker (AS 65002, 10.99.0.2) runs as in `bird.rs`. Checked: the session comes up,
//! IPv4 and IPv6 both ways, withdrawals both ways, route refresh both ways (FRR's
//! `clear bgp ... soft in` sends a ROUTE-REFRESH), max-prefix drop-excess and reset (FRR
//! shows our Cease / Maximum Number of Prefixes Reached as the neighbour's last reset). `BGP_WRITE_FIXTURES=DIR` saves what
//! FRR sent.

mod interop;

use std::{fs, path::Path, process::Command, time::Duration};

use bgp::{Family, Input, State};
use interop::{
    established, max_prefix_drop_then_reset, sh, wait_for, Daemon, Driver, Lab, DAEMON_V4,
    DAEMON_V6, OUR_V4,
};

const FRR_V4: [&str; 2] = ["10.204.0.0/24", "10.204.1.0/24"];
const FRR_V6: &str = "2001:db8:204::/48";
const BGPD: &str = "/usr/lib/frr/bgpd";

fn bgpd_conf(log: &Path) -> String {
    format!(
        r"frr defaults traditional
hostname frr-test
log file {log} debugging
!
route-map NH6 permit 10
 set ipv6 next-hop global {DAEMON_V6}
exit
!
router bgp 65004
 bgp router-id {DAEMON_V4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 bgp log-neighbor-changes
 neighbor {OUR_V4} remote-as 65002
 neighbor {OUR_V4} timers 3 9
 neighbor {OUR_V4} timers connect 1
 neighbor {OUR_V4} advertisement-interval 0
 !
 address-family ipv4 unicast
  network {v4a}
  network {v4b}
  neighbor {OUR_V4} activate
 exit-address-family
 !
 address-family ipv6 unicast
  network {FRR_V6}
  neighbor {OUR_V4} activate
  neighbor {OUR_V4} route-map NH6 out
 exit-address-family
exit
!
",
        log = log.display(),
        v4a = FRR_V4[0],
        v4b = FRR_V4[1],
    )
}

/// `vtysh` against the test's bgpd, inside its namespace; each string is one `-c` line.
fn vtysh(lab: &Lab, lines: &[&str]) -> String {
    let dir = lab.dir.to_str().unwrap().to_owned();
    let mut args = vec![
        "ip",
        "netns",
        "exec",
        &lab.daemon_ns,
        "vtysh",
        "--vty_socket",
        &dir,
        "-d",
        "bgpd",
    ];
    for l in lines {
        args.push("-c");
        args.push(l);
    }
    sh(&args)
}

/// Whether FRR's RIB for `afi` (`ipv4`/`ipv6`) holds `prefix` learned from us.
fn frr_has(lab: &Lab, afi: &str, prefix: &str) -> bool {
    let out = vtysh(
        lab,
        &[&format!(
            "show bgp {afi} unicast neighbors {OUR_V4} routes json"
        )],
    );
    out.contains(&format!("\"{prefix}\""))
}

fn frr_config(lab: &Lab, lines: &[&str]) {
    let mut all = vec!["configure terminal", "router bgp 65004"];
    all.extend_from_slice(lines);
    vtysh(lab, &all);
}

#[test]
#[ignore = "needs root, iproute2 and frr"]
fn frr_interop() {
    let lab = Lab::new("frr");
    let log = lab.path("bgpd.log");
    fs::write(lab.path("bgpd.conf"), bgpd_conf(&log)).unwrap();
    let daemon = Daemon::spawn(
        "bgpd",
        &lab.daemon_ns,
        &[
            BGPD,
            "-Z",
            "-S",
            "-P",
            "0",
            "-f",
            lab.path("bgpd.conf").to_str().unwrap(),
            "-i",
            lab.path("bgpd.pid").to_str().unwrap(),
            "--vty_socket",
            lab.dir.to_str().unwrap(),
        ],
        &lab.path("bgpd.out"),
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            Command::new("ip")
                .args(["netns", "exec", &lab.daemon_ns, "vtysh", "--vty_socket"])
                .arg(&lab.dir)
                .args(["-d", "bgpd", "-c", "show bgp summary"])
                .output()
                .is_ok_and(|o| o.status.success())
        }),
        "bgpd did not start: {}{}",
        fs::read_to_string(lab.path("bgpd.out")).unwrap_or_default(),
        fs::read_to_string(&log).unwrap_or_default()
    );
    println!("FRR bgpd pid {}", daemon.pid());

    lab.run_ours(run);
    drop(daemon);
}

fn all_frr_routes(d: &Driver) -> bool {
    FRR_V4.iter().all(|p| d.has(p)) && d.has(FRR_V6)
}

fn run(lab: &Lab) {
    let (mut d, neg) = established("frr", 65004, Duration::from_secs(20), || {
        vtysh(lab, &["show bgp summary"])
    });
    assert!(neg.four_octet_as && neg.route_refresh);
    assert_eq!(neg.families, Family::ALL.to_vec());

    assert!(
        d.run_until(Duration::from_secs(10), all_frr_routes),
        "FRR's routes missing: {:?}",
        d.table
    );
    let r = d.best("10.204.0.0/24");
    assert_eq!(r.next_hop.to_string(), "via 10.99.0.1");
    let r = d.best(FRR_V6);
    assert_eq!(r.next_hop.to_string(), format!("via {DAEMON_V6}"));
    assert!(
        wait_for(Duration::from_secs(5), || {
            d.poll();
            frr_has(lab, "ipv4", "10.202.0.0/24")
                && frr_has(lab, "ipv4", "10.202.1.0/24")
                && frr_has(lab, "ipv6", "2001:db8:202::/48")
        }),
        "FRR lacks our routes:\n{}\n{}",
        vtysh(lab, &["show bgp ipv4 unicast"]),
        vtysh(lab, &["show bgp ipv6 unicast"])
    );
    println!("{}", vtysh(lab, &["show bgp ipv4 unicast"]));
    println!("{}", vtysh(lab, &["show bgp ipv6 unicast"]));

    // Withdraw both ways.
    d.with(|s, _| s.withdraw_local("10.202.1.0/24".parse().unwrap()));
    d.with(|s, _| s.withdraw_local("2001:db8:202::/48".parse().unwrap()));
    assert!(
        wait_for(Duration::from_secs(5), || {
            d.poll();
            !frr_has(lab, "ipv4", "10.202.1.0/24") && !frr_has(lab, "ipv6", "2001:db8:202::/48")
        }),
        "FRR kept our withdrawn routes"
    );
    assert!(frr_has(lab, "ipv4", "10.202.0.0/24"));
    frr_config(
        lab,
        &[
            "address-family ipv4 unicast",
            &format!("no network {}", FRR_V4[1]),
            "exit-address-family",
            "address-family ipv6 unicast",
            &format!("no network {FRR_V6}"),
        ],
    );
    assert!(
        d.run_until(Duration::from_secs(5), |d| !d.has(FRR_V4[1])
            && !d.has(FRR_V6)),
        "FRR's withdrawals did not arrive"
    );
    assert!(d.has(FRR_V4[0]));
    frr_config(
        lab,
        &[
            "address-family ipv4 unicast",
            &format!("network {}", FRR_V4[1]),
            "exit-address-family",
            "address-family ipv6 unicast",
            &format!("network {FRR_V6}"),
        ],
    );
    assert!(d.run_until(Duration::from_secs(5), all_frr_routes));

    // Route refresh: ours answered by FRR, FRR's (`soft in`) answered by us.
    let before = d.updates_in();
    d.with(|s, p| s.request_refresh(p, Family::Ipv4Unicast));
    assert!(
        d.run_until(Duration::from_secs(5), |d| d.updates_in() > before),
        "FRR did not answer our ROUTE-REFRESH"
    );
    let (refreshes, out) = (d.refreshes_in(), d.updates_out());
    vtysh(lab, &[&format!("clear bgp ipv4 unicast {OUR_V4} soft in")]);
    assert!(
        d.run_until(Duration::from_secs(5), |d| d.refreshes_in() > refreshes
            && d.updates_out() > out),
        "no ROUTE-REFRESH from FRR, or no answer"
    );

    // Transport down: everything learned goes at once; the session comes back.
    d.input(Input::TransportDown);
    assert_eq!(d.table.iter().count(), 0);
    assert!(d.run_until(Duration::from_secs(30), |d| d.state() == State::Established));
    assert!(d.run_until(Duration::from_secs(10), all_frr_routes));
    if let Some(dir) = std::env::var_os("BGP_WRITE_FIXTURES") {
        d.write_fixtures(Path::new(&dir), "frr");
    }
    d.input(Input::ManualStop);
    d.run_for(Duration::from_millis(300));
    drop(d);

    // Max-prefix (the daemon sends three prefixes, we take two): drop the excess, then reset.
    max_prefix_drop_then_reset("frr", 65004);
    let neighbor = vtysh(lab, &[&format!("show bgp neighbors {OUR_V4}")]);
    assert!(
        neighbor.contains("Cease/Maximum Number of Prefixes Reached"),
        "FRR did not see our Cease/1:\n{neighbor}"
    );
}
