//! `vpngw bgp-relay` (hidden): the daemon's BGP driver alone, relaying every route between
//! its neighbours, for `bench/bgp-relay.sh`. It is the same [`Driver`] and runtime shape as
//! `vpngw run` (one current-thread tokio runtime, one task owning the speaker), without
//! tunnels, kernel routes or API, so the benchmark measures the speaker and its driver.

use std::{net::IpAddr, process::ExitCode};

use anyhow::{bail, Context, Result};
use bgp::{
    policy::{ExportPolicy, ImportPolicy},
    PeerConfig, SpeakerConfig,
};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::watch,
};

use super::{Driver, DriverConfig, Neighbor};

/// What `vpngw bgp-relay` was given.
#[derive(Debug, clap::Args)]
pub(crate) struct RelayArgs {
    /// Local AS.
    #[arg(long)]
    asn: u32,
    /// BGP Identifier.
    #[arg(long)]
    router_id: std::net::Ipv4Addr,
    /// A neighbour as ADDRESS,AS,LOCAL_ADDRESS (repeat); its connections are accepted on
    /// LOCAL_ADDRESS port 179 and opened from it. Everything is accepted from and sent to it.
    #[arg(long = "neighbor", required = true)]
    neighbors: Vec<String>,
    /// Hold time proposed to every neighbour, seconds.
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
}

fn neighbor(spec: &str) -> Result<Neighbor> {
    let parts: Vec<&str> = spec.split(',').collect();
    let [addr, asn, local] = parts[..] else {
        bail!("--neighbor {spec}: want ADDRESS,AS,LOCAL_ADDRESS");
    };
    let addr: IpAddr = addr.parse().with_context(|| format!("--neighbor {spec}"))?;
    let asn: u32 = asn.parse().with_context(|| format!("--neighbor {spec}"))?;
    let local: IpAddr = local
        .parse()
        .with_context(|| format!("--neighbor {spec}"))?;
    let mut config = PeerConfig::new(addr.to_string(), addr, asn);
    config.import = ImportPolicy::permit_all();
    config.export = ExportPolicy::permit_all();
    config.connect_retry = 1;
    Ok(Neighbor {
        config,
        local: Some(local),
        transport: None,
    })
}

/// Runs the relay until SIGTERM or SIGINT.
pub(crate) fn run(args: RelayArgs) -> Result<ExitCode> {
    let mut neighbors = Vec::new();
    for spec in &args.neighbors {
        let mut n = neighbor(spec)?;
        n.config.hold_time = args.hold_time;
        neighbors.push(n);
    }
    let locals: Vec<IpAddr> = neighbors.iter().filter_map(|n| n.local).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (mut driver, _handle, mut notices) = Driver::new(DriverConfig {
            speaker: SpeakerConfig {
                asn: args.asn,
                router_id: args.router_id,
            },
            neighbors,
            originate: Vec::new(),
        })?;
        let mut bound = Vec::new();
        for l in locals {
            if !bound.contains(&l) {
                driver.listen(l)?;
                bound.push(l);
            }
        }
        // Nothing installs routes here: the notices are read only so they do not pile up.
        tokio::spawn(async move { while notices.recv().await.is_some() {} });
        let (stop, stopped) = watch::channel(false);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let task = tokio::spawn(driver.run(stopped));
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop.send(true);
        let _ = task.await;
        Ok(ExitCode::SUCCESS)
    })
}
