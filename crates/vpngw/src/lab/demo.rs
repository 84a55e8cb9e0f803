//! `vpngw lab demo`: the seed's scenarios, run and measured.
//!
//! For each method: the lab with its tunnel comes up; a capture at the CEN proves the line
//! carries only ESP-in-UDP; then a continuous probe (20 echo requests a second, client → ECS)
//! runs while the line stops carrying IPsec, and the demo measures how long replies stop,
//! whether they come back, and whether what comes back crosses the cloud encrypted or not.
//! Method 1 then takes the seed's manual step (withdraw the VPN gateway's routes) and measures
//! the recovery after it. Healing the line brings the tunnel and encryption back. The demo
//! ends with the seed's "impact after the VPN connection is interrupted" beside what was
//! measured, and fails if they differ.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use fabric::{FabricConfig, Method, NodeKind};
use serde::Serialize;

use super::{
    capture::{self, Capture},
    gateways::{self, Onprem, Plan, TunnelDown},
    probe::{self, Prober},
    Lab, Up,
};
use crate::{api, output};

/// Echo requests per second while the tunnel is broken and healed.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// How long the demo watches a broken tunnel before it concludes traffic has stopped.
const WATCH: Duration = Duration::from_secs(8);
/// The failover budget of the issue: back over the line within 3 s of the break, back in the
/// tunnel within 3 s of healing.
const BUDGET: Duration = Duration::from_secs(3);

/// One method's measured outcome.
#[derive(Debug, Serialize)]
pub(crate) struct MethodReport {
    pub(crate) method: u8,
    /// The gateways' `on_tunnel_down`: "fallback" (the seed) or "block".
    pub(crate) on_tunnel_down: &'static str,
    /// Packets with the inner addresses seen in the clear at the CEN, the whole run long.
    pub(crate) plaintext_packets: u64,
    /// The seed's words for what happens when the tunnel breaks.
    pub(crate) seed_says: &'static str,
    /// While the tunnel was up: nothing crossed the cloud in the clear.
    pub(crate) encrypted_while_up: bool,
    /// Seconds from the break to the first reply, if replies came back by themselves.
    pub(crate) resumed_after_s: Option<f64>,
    /// Whether traffic that came back by itself crossed the cloud in the clear.
    pub(crate) fallback_plaintext: Option<bool>,
    /// Method 1: seconds from the manual withdrawal to the first reply.
    pub(crate) after_withdraw_s: Option<f64>,
    /// Seconds from healing the line until no more plaintext crossed the cloud and replies
    /// flowed.
    pub(crate) back_in_tunnel_s: Option<f64>,
    /// After healing: encrypted again.
    pub(crate) encrypted_after_heal: bool,
    /// The measurements agree with the seed (and the failover budget).
    pub(crate) matches_seed: bool,
    /// Why not, when they do not.
    pub(crate) problems: Vec<String>,
}

/// Runs the demo for each (method, on_tunnel_down); prints progress and the closing table
/// (or JSON).
pub(crate) fn run(
    lab: &Lab,
    scenarios: &[(Method, TunnelDown)],
    onprem: Onprem,
    json: bool,
) -> Result<bool> {
    let mut reports = Vec::new();
    for &(m, down) in scenarios {
        let report = one(lab, m, down, onprem, json);
        // Whatever happened, leave nothing behind.
        if let Err(e) = lab.down() {
            eprintln!("taking lab {} down: {e:#}", lab.name);
        }
        reports.push(report?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!("\n{}", table(&reports));
    }
    Ok(reports.iter().all(|r| r.matches_seed))
}

fn step(json: bool, text: &str) {
    if !json {
        println!("== {text}");
    }
}

fn one(
    lab: &Lab,
    method: Method,
    down: TunnelDown,
    onprem: Onprem,
    json: bool,
) -> Result<MethodReport> {
    let block = down == TunnelDown::Block;
    let m = if block {
        format!("{}, block", u8::from(method))
    } else {
        u8::from(method).to_string()
    };
    step(
        json,
        &format!("method {m}: bringing up the lab and the tunnel"),
    );
    let cfg = FabricConfig::default().with_method(method);
    if lab.up(cfg)? != Up::Created {
        anyhow::bail!(
            "lab {} was already up; take it down first (`vpngw lab --name {} down`)",
            lab.name,
            lab.name
        );
    }
    let fabric = crate::running_fabric(lab)?;
    let mut plan = Plan::of(&fabric)?;
    plan.on_tunnel_down = down;
    gateways::start(lab, &plan, onprem)?;
    let cen = fabric
        .nodes()
        .iter()
        .find(|n| n.kind == NodeKind::Cen)
        .context("no cen node")?
        .name
        .clone();
    let (client, ecs) = (
        probe::v4(Lab::resolve(&fabric, "client")?.0)?,
        probe::v4(Lab::resolve(&fabric, "ecs")?.0)?,
    );

    let mut problems = Vec::new();
    step(
        json,
        &format!("method {m}: is the line encrypted? (capture at {cen})"),
    );
    let v = capture::verify(&lab.ns(&cen), &lab.ns("client"), client, ecs, 10)?;
    let encrypted_while_up = v.encrypted();
    if !json {
        print!("{}", capture::render(&v, "client", "ecs", &cen, ecs.into()));
        step(
            json,
            &format!("method {m}: the seed's walk, checked against real packets"),
        );
        let mut model = crate::running_fabric(lab)?;
        gateways::add_tunnels(lab, &mut model)?;
        let dirs = super::trace::run(lab, &model, "client", "ecs")?;
        print!("{}", super::trace::render(&dirs));
        if !dirs.iter().all(|d| d.agrees) {
            problems.push("the walk disagreed with the packets".into());
        }
    }
    if !encrypted_while_up {
        problems.push(format!(
            "while the tunnel was up: {} plaintext packets, {}/10 replies",
            v.plaintext, v.replies
        ));
    }

    step(
        json,
        &format!("method {m}: probing client → ecs 20 times a second; the line drops IPsec"),
    );
    let capture = Capture::start(&lab.ns(&cen), client, ecs)?;
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let prober = Prober::open(&lab.ns("client"))?;
    let stream = {
        let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
        thread::spawn(move || prober.stream(ecs, PROBE_INTERVAL, &stop, &samples))
    };
    thread::sleep(Duration::from_secs(1));
    gateways::fail_line(lab, &fabric)?;
    // From the moment the line drops IPsec, not from the request: a probe sent while the
    // rules were still going in would count as traffic that survived the break.
    let broke = Instant::now();
    // Watch until replies come back by themselves, or for WATCH.
    let resumed_at = wait_for_reply(&samples, broke, WATCH);

    let mut after_withdraw_s = None;
    if method == Method::One && !block {
        step(
            json,
            &format!("method {m}: the seed's manual step: withdraw the VPN gateway's routes"),
        );
        let withdrew = Instant::now();
        set_published(lab, &plan, false)?;
        after_withdraw_s = wait_for_reply(&samples, withdrew, WATCH)
            .map(|t| t.duration_since(withdrew).as_secs_f64());
    }
    // Let the fallback run a moment so the capture sees what path it takes.
    thread::sleep(Duration::from_millis(500));
    let fallback_until = Instant::now();

    step(json, &format!("method {m}: healing the line"));
    let healed = Instant::now();
    gateways::heal_line(lab, &fabric)?;
    gateways::wait_up(lab, &plan, Duration::from_secs(15))?;
    if method == Method::One && !block {
        // The operator publishes again once the tunnel is back.
        set_published(lab, &plan, true)?;
    }
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    stream
        .join()
        .map_err(|_| anyhow::anyhow!("probe thread panicked"))??;
    let seen = capture.finish()?;
    let samples = samples.lock().unwrap_or_else(PoisonError::into_inner);

    let resumed_after_s = resumed_at.map(|t| t.duration_since(broke).as_secs_f64());
    let fallback_plaintext = (resumed_at.is_some() || after_withdraw_s.is_some()).then(|| {
        seen.plaintext_at
            .iter()
            .any(|t| *t > broke && *t < fallback_until)
    });
    if seen.plaintext_at.iter().any(|t| *t < broke) {
        problems.push("plaintext crossed the cloud while the tunnel was up".into());
    }
    // Back in the tunnel: replies flow and nothing crosses in the clear any more.
    let last_plain = seen
        .plaintext_at
        .iter()
        .copied()
        .filter(|t| *t > healed)
        .max();
    // Back in the tunnel: replies again (block: the first since the break), and nothing in the
    // clear after that.
    let first_reply = samples
        .iter()
        .find(|(t, ok)| *t > healed && *ok)
        .map(|(t, _)| *t);
    let back_in_tunnel_s = first_reply
        .map(|r| last_plain.map_or(r, |p| p.max(r)))
        .map(|t| t.duration_since(healed).as_secs_f64());
    let after = capture::verify(&lab.ns(&cen), &lab.ns("client"), client, ecs, 10)?;
    let encrypted_after_heal = after.encrypted();

    let (seed_says, want_auto) = match method {
        _ if block => (
            "beyond the seed (on_tunnel_down = block): traffic stops while the tunnel is down; \
             nothing crosses the line in the clear",
            false,
        ),
        Method::One => (
            "traffic stops until the VPN gateway's routes are withdrawn by hand; then it \
             crosses the line unencrypted",
            false,
        ),
        Method::Two | Method::Three => (
            "BGP routes are withdrawn automatically; traffic falls back to the line, \
             unencrypted",
            true,
        ),
    };
    match (want_auto, resumed_after_s) {
        (false, Some(s)) => problems.push(format!(
            "traffic resumed by itself after {s:.1} s; the seed says it stops"
        )),
        (true, None) => problems.push(format!(
            "traffic did not come back within {} s",
            WATCH.as_secs()
        )),
        (true, Some(s)) if s > BUDGET.as_secs_f64() => problems.push(format!(
            "traffic came back after {s:.1} s, over the {} s budget",
            BUDGET.as_secs()
        )),
        _ => {}
    }
    if block && seen.plaintext + v.plaintext + after.plaintext > 0 {
        problems.push(format!(
            "{} packets crossed the line in the clear; block allows none",
            seen.plaintext + v.plaintext + after.plaintext
        ));
    }
    if method == Method::One && !block && after_withdraw_s.is_none() {
        problems.push("traffic did not come back after the manual withdrawal".into());
    }
    if fallback_plaintext == Some(false) {
        problems.push("the fallback was expected over the line, unencrypted".into());
    }
    if !encrypted_after_heal {
        problems.push("not encrypted again after healing".into());
    }
    match back_in_tunnel_s {
        None => problems.push("traffic did not come back after healing".into()),
        Some(s) if s > BUDGET.as_secs_f64() => problems.push(format!(
            "back in the tunnel {s:.1} s after healing, over the {} s budget",
            BUDGET.as_secs()
        )),
        Some(_) => {}
    }
    Ok(MethodReport {
        method: u8::from(method),
        on_tunnel_down: if block { "block" } else { "fallback" },
        plaintext_packets: seen.plaintext + v.plaintext + after.plaintext,
        seed_says,
        encrypted_while_up,
        resumed_after_s,
        fallback_plaintext,
        after_withdraw_s,
        back_in_tunnel_s,
        encrypted_after_heal,
        matches_seed: problems.is_empty(),
        problems,
    })
}

/// The first answered probe sent after `since`, waiting at most `limit` for one.
fn wait_for_reply(
    samples: &Mutex<Vec<(Instant, bool)>>,
    since: Instant,
    limit: Duration,
) -> Option<Instant> {
    while since.elapsed() < limit {
        let first = samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(t, ok)| *ok && *t > since)
            .map(|(t, _)| *t);
        if first.is_some() {
            return first;
        }
        thread::sleep(PROBE_INTERVAL);
    }
    None
}

/// Publishes or withdraws every route of the VPN gateway's daemon, through its API (what an
/// operator does with `vpngw route publish|withdraw`).
fn set_published(lab: &Lab, plan: &Plan, on: bool) -> Result<()> {
    let verb = if on { "publish" } else { "withdraw" };
    for prefix in &plan.dc_cidrs {
        let _: serde_json::Value = api::post(
            &gateways::api_socket(lab, &plan.cloud.0),
            &format!("/v1/routes/{verb}"),
            &serde_json::json!({ "prefix": prefix }),
        )
        .with_context(|| format!("{verb} {prefix} on {}", plan.cloud.0))?;
    }
    Ok(())
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"))
}

/// The closing table: the seed's column beside the measurements.
fn table(reports: &[MethodReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let measured = match (r.resumed_after_s, r.after_withdraw_s) {
                (Some(s), _) => format!(
                    "back after {s:.1} s, {}",
                    if r.fallback_plaintext == Some(true) {
                        "over the line, unencrypted"
                    } else {
                        "encrypted"
                    }
                ),
                (None, Some(w)) => format!(
                    "stopped ({} s watched); {w:.1} s after the withdrawal, over the line{}",
                    WATCH.as_secs(),
                    if r.fallback_plaintext == Some(true) {
                        ", unencrypted"
                    } else {
                        ""
                    }
                ),
                (None, None) => format!("stopped ({} s watched)", WATCH.as_secs()),
            };
            vec![
                if r.on_tunnel_down == "block" {
                    format!("{} (block)", r.method)
                } else {
                    r.method.to_string()
                },
                r.seed_says.to_owned(),
                measured,
                secs(r.back_in_tunnel_s),
                if r.matches_seed {
                    "yes".to_owned()
                } else {
                    format!("NO: {}", r.problems.join("; "))
                },
            ]
        })
        .collect();
    output::table(
        &[
            "method",
            "seed: impact after the VPN connection is interrupted",
            "measured",
            "back in tunnel after healing",
            "matches",
        ],
        &rows,
    )
}
