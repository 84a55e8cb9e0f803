//! `vpngw run --config FILE`: the gateway daemon, in the foreground (systemd's `Type=simple`;
//! `packaging/vpngw.service`).
//!
//! ```text
//!   start: config ─► state db (lock) ─► API socket ─► TUN ─► UDP 500/4500 ─► BGP 179 (if
//!          [bgp]) ─► TCP API ─► ready
//!
//!   main task: signals ── SIGHUP, POST /v1/reload: re-read the config, apply what changed
//!      │                │  (changed tunnels rebuilt, the others' SAs untouched)
//!      │                └ SIGTERM, SIGINT: stop (below)
//!      ├── API, Unix socket [api] socket (0600) ─┐
//!      ├── API, TCP [api] listen (bearer token) ─┴─► Gateway { connections, store, metrics }
//!      ├── tunnel engine, on a thread and epoll loop of its own: UDP 500/4500 ⇄ ike::Endpoint,
//!      │   TUN ⇄ esp SAs ──► state events (see `tunnel`)
//!      └── BGP ([bgp]): `bgpd` driver, tied to the tunnels' child SAs; learned routes into
//!          the engine and the fabric (see `bgp`)
//!
//!   stop: API servers drain (5 s at most) ─► tasks end ─► sockets closed ─► TUN closed
//!         (the kernel removes it with its addresses) ─► API socket file removed
//! ```
//!
//! Every step that fails at start stops the daemon with one line naming what failed, and
//! undoes the steps before it (the TUN device is not persistent; the socket file is removed).
//! A second daemon on the same `state_dir` or API socket is refused rather than allowed to
//! take them over.

mod bgp;
mod gateway;
mod metrics;
pub(crate) mod model;
mod outer;
mod server;
mod store;
#[cfg(test)]
pub(crate) mod testutil;
mod tun;
mod tunnel;

use std::{
    fs,
    future::IntoFuture,
    io,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use confread::ConfigErrors;
use tokio::{
    net::TcpListener,
    signal::unix::{signal, Signal, SignalKind},
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

use self::{
    gateway::Gateway,
    metrics::{Counter, Metrics},
    model::ReloadReport,
    outer::OuterSockets,
    store::Store,
    tun::Tun,
    tunnel::{Engine, Reconfigure},
};
use crate::{
    api,
    config::{self, Config},
};

/// How long in-flight API requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the daemon until SIGTERM or SIGINT. A configuration with errors prints them as
/// `vpngw check` does and returns 1; a failure to start is an error (one line, exit 1).
pub(crate) fn run(path: &Path) -> Result<ExitCode> {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            report(path, &errors);
            return Ok(ExitCode::FAILURE);
        }
    };
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(path.to_owned(), cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit on open files to the hard limit. The daemon holds two UDP sockets per
/// distinct `local_address` (2,000 for a gateway with 1,000 addresses) besides the TUN device,
/// the API's connections and the state database, and systemd's default soft limit is 1024
/// (its hard limit 524288): past it, binding fails with "Too many open files". Go's runtime
/// and nginx (`worker_rlimit_nofile`) raise it the same way. The daemon never calls
/// `select(2)`, the reason for the low default.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "open-file limit raised"),
            Err(e) => tracing::warn!(soft, hard, "raising the open-file limit: {e}"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!("reading the open-file limit: {e}"),
    }
}

/// Every error, one per line, then the count: what `vpngw check` prints.
fn report(path: &Path, errors: &ConfigErrors) {
    eprintln!("{errors}");
    let n = errors.len();
    eprintln!(
        "{}: {n} error{}",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
}

/// The signals the daemon handles, registered before anything else so that one arriving
/// during startup is held until the daemon is ready to act on it.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Removes the API socket file when dropped: at shutdown, and when startup fails after
/// binding it.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        match fs::remove_file(&self.0) {
            Ok(()) => tracing::debug!(socket = %self.0.display(), "API socket removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(socket = %self.0.display(), "removing the API socket: {e}"),
        }
    }
}

async fn serve(path: PathBuf, mut cfg: Config) -> Result<()> {
    let mut signals = Signals::new().context("installing signal handlers")?;
    let token = match &cfg.api.tcp {
        Some(t) => Some(t.token.load().context("reading [api] token_file")?),
        None => None,
    };
    let store = Store::open(&cfg.gateway.state_dir)?;
    let unix = api::listen_unix(&cfg.api.socket)?;
    let socket_file = SocketFile(cfg.api.socket.clone());
    let tun = Tun::create(&cfg)?;
    let outer = OuterSockets::bind(&cfg)?;
    warn_path_mtu(&cfg);
    let tcp = match &cfg.api.tcp {
        Some(t) => Some(
            TcpListener::bind(t.listen)
                .await
                .with_context(|| format!("binding the TCP API on {}", t.listen))?,
        ),
        None => None,
    };

    let mut metrics = Metrics::default();
    for (addr, _) in outer.iter() {
        metrics.udp_received.push((addr, Counter::default()));
    }
    let (events, mut engine_events) = mpsc::unbounded_channel();
    let (commands, inbox) = tunnel::commands().context("the tunnel engine's command queue")?;
    let listening: Vec<std::net::IpAddr> = outer.by_address.keys().copied().collect();
    let tun_name = tun.info.name.clone();
    let gw = Arc::new(Gateway::new(
        &cfg,
        tun.info,
        store,
        metrics,
        commands.clone(),
    )?);
    // The engine owns the device and the sockets: when it stops, they close, and the kernel
    // removes the device with its addresses and routes.
    let engine = Engine::new(
        &cfg,
        outer,
        tun.device,
        gw.counters(),
        &gw.admin_down(),
        events,
    )?;
    let reactor = engine
        .reactor(&inbox)
        .context("the tunnel engine's epoll set")?;
    let (reload_tx, mut reloads) = mpsc::unbounded_channel();
    gw.set_reloader(reload_tx);
    let (bgp_stop, bgp_stopped) = watch::channel(false);
    let bgp_events = match &cfg.bgp {
        Some(b) => {
            let (handle, events) = bgp::start(&cfg, b, commands.clone(), bgp_stopped)?;
            gw.set_bgp(handle);
            Some(events)
        }
        None => None,
    };
    let (engine_done, engine_finished) = oneshot::channel::<()>();
    // The engine runs on a thread of its own, in an epoll loop of its own: a packet that wakes
    // it passes through no async runtime, and the API's tasks never run on its thread.
    std::thread::Builder::new()
        .name("vpngw-engine".to_owned())
        .spawn(move || {
            engine.run(reactor, inbox);
            let _ = engine_done.send(());
        })
        .context("starting the tunnel engine's thread")?;
    let mut tasks = JoinSet::new();
    {
        // Publications reach the fabric at start, and again until it answers.
        let gw = gw.clone();
        tasks.spawn(async move {
            loop {
                let g = gw.clone();
                match tokio::task::spawn_blocking(move || g.sync_publications()).await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => tracing::warn!("publishing routes: {e}; retrying in 5 s"),
                    Err(e) => tracing::error!("publishing routes: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
    }
    {
        let gw = gw.clone();
        tasks.spawn(async move {
            while let Some(ev) = engine_events.recv().await {
                tunnel::apply_to(&gw, &ev);
                if let Some(tx) = &bgp_events {
                    let _ = tx.send(ev.clone());
                }
                if let tunnel::EngineEvent::ChildUp { conn, .. }
                | tunnel::EngineEvent::ChildDown { conn, .. }
                | tunnel::EngineEvent::IkeDown { conn, .. } = &ev
                {
                    if gw.follows_tunnel(conn) {
                        let (g, c) = (gw.clone(), conn.clone());
                        let _ = tokio::task::spawn_blocking(move || g.follow(&c)).await;
                    }
                }
                if matches!(
                    ev,
                    tunnel::EngineEvent::HealthFailed { .. }
                        | tunnel::EngineEvent::HealthRecovered { .. }
                ) {
                    let g = gw.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || tunnel::apply_health(&g, &ev)).await;
                }
            }
        });
    }

    let (stop, stopped) = watch::channel(());
    let mut servers = JoinSet::new();
    {
        let app = server::unix_router(gw.clone());
        let mut stopped = stopped.clone();
        servers.spawn(
            axum::serve(unix, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .into_future(),
        );
    }
    if let (Some(listener), Some(token)) = (tcp, token) {
        let app = server::tcp_router(gw.clone(), token);
        let mut stopped = stopped.clone();
        servers.spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .into_future(),
        );
    }
    drop(stopped);
    tracing::info!(
        gateway = %cfg.gateway.name,
        config = %path.display(),
        socket = %cfg.api.socket.display(),
        tcp = ?cfg.api.tcp.as_ref().map(|t| t.listen),
        tun = %tun_name,
        connections = cfg.connections.len(),
        "vpngw running"
    );

    let outcome = loop {
        tokio::select! {
            _ = signals.term.recv() => break Ok("SIGTERM"),
            _ = signals.int.recv() => break Ok("SIGINT"),
            _ = signals.hup.recv() => {
                let _ = reload(&path, &mut cfg, &gw, &listening).await;
            }
            Some(reply) = reloads.recv() => {
                let _ = reply.send(reload(&path, &mut cfg, &gw, &listening).await);
            }
            Some(r) = servers.join_next() => {
                // axum retries failed accepts itself; a server ends only when told to.
                break Err(match r {
                    Ok(Ok(())) => anyhow::anyhow!("an API server stopped"),
                    Ok(Err(e)) => anyhow::Error::new(e).context("an API server failed"),
                    Err(e) => anyhow::Error::new(e).context("an API server task failed"),
                });
            }
        }
    };
    match &outcome {
        Ok(why) => tracing::info!("{why}: stopping"),
        Err(e) => tracing::error!("{e:#}: stopping"),
    }
    let _ = stop.send(());
    let _ = bgp_stop.send(true);
    // The engine says goodbye to its peers (DELETE) before its sockets close.
    commands.send(tunnel::EngineCommand::Stop);
    if tokio::time::timeout(DRAIN, engine_finished).await.is_err() {
        tracing::warn!("the tunnel engine did not stop within {DRAIN:?}");
    }
    if tokio::time::timeout(DRAIN, async {
        while servers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("API requests still running after {DRAIN:?}; closing them");
    }
    servers.shutdown().await;
    tasks.shutdown().await;
    drop(gw);
    drop(socket_file);
    tracing::info!("vpngw stopped: TUN device, UDP sockets and API socket removed");
    outcome.map(|_| ())
}

/// Logs each connection whose peer cannot take a full TUN-MTU packet once encrypted
/// ([`tunnel::mtu`]).
fn warn_path_mtu(cfg: &Config) {
    for w in tunnel::mtu::warnings(cfg) {
        tracing::warn!("{w}");
    }
}

/// SIGHUP or `POST /v1/reload`: reads the file again and applies what changed. Connections
/// whose settings are equal keep their SAs; changed ones are deleted and started again;
/// routes and publications follow. What only a restart can change (`[gateway]`, `[api]`,
/// `[fabric]`, a local address with no socket) refuses the whole reload, as does any error
/// in the file: a refused reload changes nothing.
async fn reload(
    path: &Path,
    running: &mut Config,
    gw: &Arc<Gateway>,
    listening: &[std::net::IpAddr],
) -> Result<ReloadReport, Vec<String>> {
    let result = plan_reload(path, running, listening);
    let new = match result {
        Ok(new) => new,
        Err(problems) => {
            for p in &problems {
                tracing::warn!("reload: {p}");
            }
            tracing::warn!(
                "reload of {} refused; the running configuration is unchanged",
                path.display()
            );
            return Err(problems);
        }
    };
    let d = config::diff(running, &new);
    let routes_changed = running.routes != new.routes;
    let (g, n, dd) = (gw.clone(), new.clone(), d.clone());
    let added = tokio::task::spawn_blocking(move || g.reload(&n, &dd))
        .await
        .map_err(|e| vec![format!("reload: {e}")])?;
    let add = added
        .into_iter()
        .filter_map(|(name, down)| new.connection(&name).map(|c| (c.clone(), down)))
        .collect();
    gw.reconfigure(Reconfigure {
        remove: d.removed.iter().chain(&d.changed).cloned().collect(),
        add,
        routes: new.routes.clone(),
        connections: new.connections.clone(),
    });
    tracing::info!(
        added = ?d.added,
        removed = ?d.removed,
        changed = ?d.changed,
        unchanged = ?d.unchanged,
        routes_changed,
        "reload of {} applied",
        path.display()
    );
    warn_path_mtu(&new);
    *running = new;
    Ok(ReloadReport {
        added: d.added,
        removed: d.removed,
        changed: d.changed,
        unchanged: d.unchanged,
        routes_changed,
    })
}

/// The new configuration, or everything that stops it from being applied without a restart.
fn plan_reload(
    path: &Path,
    running: &Config,
    listening: &[std::net::IpAddr],
) -> Result<Config, Vec<String>> {
    let new = Config::load(path)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let mut problems = Vec::new();
    for (key, same) in [
        ("gateway", running.gateway == new.gateway),
        ("api", running.api == new.api),
        ("fabric", running.fabric == new.fabric),
        ("bgp", running.bgp == new.bgp),
    ] {
        if !same {
            let e = new.origin.error(
                key,
                format!("[{key}] changed: restart the daemon to apply it"),
            );
            problems.push(e.to_string());
        }
    }
    for (i, c) in new.connections.iter().enumerate() {
        if !listening.contains(&c.local_address) {
            let listens: Vec<String> = listening.iter().map(ToString::to_string).collect();
            let e = new.origin.error(
                &format!("connection[{i}].local_address"),
                format!(
                    "{} has no socket in this daemon (it listens on {}): restart the daemon \
                     to apply it",
                    c.local_address,
                    listens.join(", ")
                ),
            );
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        Ok(new)
    } else {
        Err(problems)
    }
}
