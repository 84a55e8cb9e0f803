//! Interop with a real BIRD 2 in network namespaces.
//!
//! Run as root with iproute2 and bird2 installed:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bgp cargo test -p bgp --test bird -- --ignored --nocapture
//! ```
//!
//! BIRD (AS 65001, 10.99.0.1 / fd00:99::1) runs in one namespace with static routes
//! 10.201.{0,1,2}.0/24 and 2001:db8:201::/48 exported; our speaker (AS 65002, 10.99.0.2 /
//! fd00:99::2) runs in a thread that entered the other namespace, originating
//! 10.202.{0,1}.0/24 and 2001:db8:202::/48. The test checks: the session comes up, both
//! families flow both ways (BIRD's `show route` lists ours; our table lists BIRD's),
//! withdrawals both ways, route refresh both ways, max-prefix drop-excess and reset, and
//! that a transport failure withdraws everything at once. `BGP_WRITE_FIXTURES=DIR` also
//! saves every message BIRD sent as hex files (the codec fixtures come from there).

mod interop;

use std::{
    fs,
    time::{Duration, Instant},
};

use bgp::{
    neighbor::DownReason,
    packet::iana::cease,
    policy::{ImportPolicy, MaxPrefix, MaxPrefixAction, PrefixFilter},
    Event, Family, Input, State,
};
use interop::{
    established, our_config, sh, wait_for, Daemon, Driver, Lab, DAEMON_V4, OUR_ROUTES, OUR_V4,
    OUR_V6,
};

const BIRD_ROUTES_V4: [&str; 3] = ["10.201.0.0/24", "10.201.1.0/24", "10.201.2.0/24"];
const BIRD_ROUTE_V6: &str = "2001:db8:201::/48";

fn bird_conf(lab: &Lab) -> String {
    format!(
        r#"log "{log}" all;
router id {DAEMON_V4};
protocol device {{ }}
protocol static st4 {{
  ipv4;
  route 10.201.0.0/24 blackhole;
  route 10.201.1.0/24 blackhole;
  route 10.201.2.0/24 blackhole;
}}
protocol static st6 {{
  ipv6;
  route 2001:db8:201::/48 blackhole;
}}
protocol bgp peer {{
  local {DAEMON_V4} as 65001;
  neighbor {OUR_V4} as 65002;
  hold time 9; keepalive time 3;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  graceful restart on;
  ipv4 {{ import all; export where source = RTS_STATIC; }};
  ipv6 {{ import all; export where source = RTS_STATIC; next hop address fd00:99::1; }};
}}
"#,
        log = lab.path("bird.log").display()
    )
}

fn birdc(lab: &Lab, cmd: &str) -> String {
    let sock = lab.path("bird.ctl");
    let mut args = vec!["birdc", "-s", sock.to_str().unwrap()];
    args.extend(cmd.split_whitespace());
    sh(&args)
}

/// Prefixes BIRD has from our speaker (protocol `peer`), from `show route protocol peer`.
fn bird_has(lab: &Lab, prefix: &str) -> bool {
    birdc(lab, "show route protocol peer")
        .lines()
        .any(|l| l.split_whitespace().next() == Some(prefix))
}

fn wait_all_bird_routes(d: &mut Driver) -> bool {
    d.run_until(Duration::from_secs(10), |d| {
        BIRD_ROUTES_V4.iter().all(|p| d.has(p)) && d.has(BIRD_ROUTE_V6)
    })
}

#[test]
#[ignore = "needs root, iproute2 and bird2"]
fn bird2_interop() {
    let lab = Lab::new("bird");
    fs::write(lab.path("bird.conf"), bird_conf(&lab)).unwrap();
    let ctl = lab.path("bird.ctl");
    let t_bird = Instant::now();
    let bird = Daemon::spawn(
        "bird",
        &lab.daemon_ns,
        &[
            "bird",
            "-f",
            "-c",
            lab.path("bird.conf").to_str().unwrap(),
            "-s",
            ctl.to_str().unwrap(),
        ],
        &lab.path("bird.stdout"),
    );
    assert!(
        wait_for(Duration::from_secs(5), || ctl.exists()),
        "BIRD did not start: {}",
        fs::read_to_string(lab.path("bird.stdout")).unwrap_or_default()
    );
    println!("BIRD pid {} up after {:?}", bird.pid(), t_bird.elapsed());

    lab.run_ours(run);

    // For comparison, in the same lab: a second BIRD in our place (same AS and address),
    // timed from its start to Established as seen by the first.
    let conf2 = format!(
        r#"log "{log}" all;
router id {OUR_V4};
protocol device {{ }}
protocol bgp peer {{
  local {OUR_V4} as 65002;
  neighbor {DAEMON_V4} as 65001;
  hold time 9; keepalive time 3;
  connect delay time 0; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; next hop address {OUR_V6}; }};
}}
"#,
        log = lab.path("bird2.log").display()
    );
    fs::write(lab.path("bird2.conf"), conf2).unwrap();
    birdc(&lab, "restart peer");
    let ctl2 = lab.path("bird2.ctl");
    let t = Instant::now();
    let bird2 = Daemon::spawn(
        "bird",
        &lab.our_ns,
        &[
            "bird",
            "-f",
            "-c",
            lab.path("bird2.conf").to_str().unwrap(),
            "-s",
            ctl2.to_str().unwrap(),
        ],
        &lab.path("bird2.stdout"),
    );
    let up = wait_for(Duration::from_secs(30), || {
        birdc(&lab, "show protocols peer").contains("Established")
    });
    let bird_up = t.elapsed();
    assert!(up, "BIRD <-> BIRD did not come up");
    println!(
        "BIRD <-> BIRD: Established {bird_up:?} after starting the second BIRD \
         (process start included; its connect delay is 0)"
    );
    drop(bird2);
    drop(bird);
}

fn run(lab: &Lab) {
    // ---- session up, routes both ways -------------------------------------------------
    let (mut d, neg) = established("bird", 65001, Duration::from_secs(15), || {
        birdc(lab, "show protocols all peer")
    });
    assert!(neg.four_octet_as && neg.route_refresh);
    assert_eq!(neg.families, Family::ALL.to_vec());
    assert_eq!(neg.hold_time, Duration::from_secs(9));
    assert!(neg.peer_graceful_restart.is_some(), "BIRD sent GR");

    assert!(
        wait_all_bird_routes(&mut d),
        "BIRD's routes missing: {:?}",
        d.table
    );
    let r = d.best("10.201.0.0/24");
    assert_eq!(r.next_hop.to_string(), "via 10.99.0.1");
    let r6 = d.best(BIRD_ROUTE_V6);
    assert_eq!(r6.next_hop.to_string(), "via fd00:99::1");
    assert!(
        wait_for(Duration::from_secs(5), || OUR_ROUTES
            .iter()
            .all(|p| bird_has(lab, p))),
        "BIRD lacks our routes:\n{}",
        birdc(lab, "show route protocol peer all")
    );
    let shown = birdc(lab, "show route protocol peer all");
    println!("BIRD: show route protocol peer all\n{shown}");
    assert!(shown.contains("BGP.as_path: 65002"));
    assert!(shown.contains("10.99.0.2") && shown.contains("fd00:99::2"));

    // ---- withdraw, both directions ----------------------------------------------------
    d.with(|s, _| s.withdraw_local("10.202.1.0/24".parse().unwrap()));
    d.with(|s, _| s.withdraw_local("2001:db8:202::/48".parse().unwrap()));
    assert!(wait_for(Duration::from_secs(5), || {
        d.poll();
        !bird_has(lab, "10.202.1.0/24") && !bird_has(lab, "2001:db8:202::/48")
    }));
    assert!(bird_has(lab, "10.202.0.0/24"));
    birdc(lab, "disable st4");
    assert!(d.run_until(Duration::from_secs(5), |d| BIRD_ROUTES_V4
        .iter()
        .all(|p| !d.has(p))));
    assert!(d.has(BIRD_ROUTE_V6));
    birdc(lab, "enable st4");
    assert!(wait_all_bird_routes(&mut d));

    // ---- route refresh, both directions ---------------------------------------------
    let before = d.updates_in();
    d.with(|s, p| s.request_refresh(p, Family::Ipv4Unicast));
    assert!(
        d.run_until(Duration::from_secs(5), |d| d.updates_in() > before),
        "BIRD did not answer our ROUTE-REFRESH"
    );
    let (rr_before, out_before) = (d.refreshes_in(), d.updates_out());
    birdc(lab, "reload in peer");
    assert!(
        d.run_until(Duration::from_secs(5), |d| d.refreshes_in() > rr_before
            && d.updates_out() > out_before),
        "no ROUTE-REFRESH received, or no re-send after it"
    );
    assert!(bird_has(lab, "10.202.0.0/24"));

    // ---- transport down: everything withdrawn in one call -------------------------------
    let n_routes = d.table.iter().count();
    assert_eq!(n_routes, 4);
    let t = Instant::now();
    d.input(Input::TransportDown);
    let took = t.elapsed();
    assert_eq!(d.table.iter().count(), 0);
    println!("TransportDown: {n_routes} routes withdrawn in {took:?}");
    assert!(
        matches!(
            d.events.last().map(|e| &e.1),
            Some(Event::Down {
                reason: DownReason::TransportDown,
                ..
            })
        ) || d.events.iter().rev().take(3).any(|e| matches!(
            e.1,
            Event::Down {
                reason: DownReason::TransportDown,
                ..
            }
        ))
    );
    // The session comes back by itself (automatic restart).
    assert!(d.run_until(Duration::from_secs(20), |d| d.state() == State::Established));
    assert!(wait_all_bird_routes(&mut d));

    if let Some(dir) = std::env::var_os("BGP_WRITE_FIXTURES") {
        d.write_fixtures(std::path::Path::new(&dir), "bird");
    }
    // Stop: BIRD sees Cease / Administrative Shutdown and drops our routes.
    d.input(Input::ManualStop);
    assert!(wait_for(Duration::from_secs(5), || !bird_has(
        lab,
        "10.202.0.0/24"
    )));
    drop(d);

    // ---- max-prefix: drop the excess ------------------------------------------------------
    let mut d = Driver::new(
        65002,
        our_config("bird", 65001, |c| {
            c.import = ImportPolicy {
                filter: Some(PrefixFilter::permit_all()),
                max_prefix: Some(MaxPrefix {
                    limit: 2,
                    action: MaxPrefixAction::DropExcess,
                    warning_threshold: 50,
                }),
                local_pref: None,
            };
        }),
    );
    d.input(Input::ManualStart);
    assert!(d.run_until(Duration::from_secs(15), |d| d.state() == State::Established));
    d.run_for(Duration::from_secs(2));
    assert_eq!(d.table.iter().count(), 2, "limit 2 of BIRD's 4 prefixes");
    assert_eq!(d.state(), State::Established);
    assert!(d
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::MaxPrefixDropped { limit: 2, .. })));
    d.input(Input::ManualStop);
    d.run_for(Duration::from_millis(300));
    drop(d);

    // ---- max-prefix: reset ------------------------------------------------------------
    let mut d = Driver::new(
        65002,
        our_config("bird", 65001, |c| {
            c.import = ImportPolicy {
                filter: Some(PrefixFilter::permit_all()),
                max_prefix: Some(MaxPrefix {
                    limit: 2,
                    action: MaxPrefixAction::Reset {
                        restart_after: None,
                    },
                    warning_threshold: 100,
                }),
                local_pref: None,
            };
        }),
    );
    d.input(Input::ManualStart);
    assert!(d.run_until(Duration::from_secs(15), |d| d
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::Down { .. }))));
    d.run_for(Duration::from_millis(500));
    assert_eq!(
        d.state(),
        State::Idle,
        "no automatic restart after the reset"
    );
    assert_eq!(d.table.iter().count(), 0);
    // BIRD's "Last error" is overwritten by its own reconnect attempts, so read its log,
    // which keeps the NOTIFICATION it received.
    let log = fs::read_to_string(lab.path("bird.log")).unwrap_or_default();
    println!(
        "BIRD after our max-prefix reset:\n{}",
        birdc(lab, "show protocols all peer")
    );
    assert!(
        log.contains("Maximum number of prefixes reached"),
        "BIRD did not see Cease/{}:\n{log}",
        cease::MAX_PREFIXES
    );
}
