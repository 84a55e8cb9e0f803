//! The gateway's run-time state, shared by the API and the tunnel engine: each
//! connection's configuration, tunnel state and admin state, the store that persists what must
//! survive a restart, and the metrics.
//!
//! Every change goes one way: check the request, persist, then change memory and log the event
//! in the connection's span. A request that fails any step changes nothing.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Mutex, MutexGuard, OnceLock, PoisonError},
    time::Instant,
};

use ipnet::IpNet;
use tokio::sync::mpsc;
use tracing::Span;

use super::{
    metrics::{Exposition, Metrics},
    model::{
        AdminChange, AdminState, ConnectionCounts, ConnectionInfo, PublishChange, ReloadReport,
        RouteView, SaView, Snapshot, Status, TunInfo, TunnelState,
    },
    store::Store,
    tunnel::{Commands, EngineCommand, Reconfigure},
};
use crate::{
    bgpd::{self, BgpRoute, NeighborView, RouteDir},
    config::{self, Config},
};

/// Why a request on a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    /// No connection has that name.
    #[error("no connection named {name:?} (connections: {known})")]
    UnknownConnection {
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated, or "none".
        known: String,
    },
    /// The state database failed; nothing changed.
    #[error("{0:#}")]
    Store(anyhow::Error),
    #[error("{prefix} is not a [[route]] of this gateway (routes: {known})")]
    UnknownRoute { prefix: IpNet, known: String },
    #[error("no [fabric] section in the configuration: there is nowhere to publish routes")]
    NoFabric,
    #[error("the fabric refused: {0:#}")]
    Fabric(anyhow::Error),
    /// A reload was refused; nothing changed.
    #[error("reload refused, nothing changed:\n{}", .0.join("\n"))]
    Reload(Vec<String>),
    #[error("no BGP neighbor {name:?} (neighbors: {known})")]
    UnknownNeighbor { name: String, known: String },
}

/// A reload request: the main task answers on the channel.
pub(crate) type ReloadRequest = tokio::sync::oneshot::Sender<Result<ReloadReport, Vec<String>>>;

/// One connection at run time.
#[derive(Debug)]
struct Conn {
    config: config::Connection,
    state: TunnelState,
    admin: AdminState,
    /// The health check's verdict; `None` without one.
    healthy: Option<bool>,
    /// A failed health check (`revoke_routes`) took the routes out.
    revoked: bool,
    /// Event counts since start, for `/metrics`.
    counts: ConnCounts,
    /// `connection{name=…}`: every event about this connection is logged inside it.
    span: Span,
}

impl Conn {
    /// A connection as the configuration has it, tunnel down, with the operator's admin state.
    fn load(c: &config::Connection, admin: AdminState) -> Self {
        let span = tracing::info_span!("connection", name = %c.name);
        span.in_scope(|| {
            tracing::info!(
                local = %c.local_address,
                peer = %c.peer_address,
                mode = %mode_name(&c.mode),
                admin_state = %admin,
                state = %TunnelState::Down,
                "connection loaded"
            );
        });
        Self {
            config: c.clone(),
            state: TunnelState::Down,
            admin,
            healthy: c.health_check.as_ref().map(|_| true),
            revoked: false,
            counts: ConnCounts::default(),
            span,
        }
    }
}

/// What happened to a connection since the daemon started.
#[derive(Debug, Default, Clone, Copy)]
struct ConnCounts {
    /// Child SAs replaced by a rekey.
    child_rekeys: u64,
    /// IKE SAs declared dead by DPD.
    dpd_failures: u64,
    /// Times the tunnel went from up to down.
    tunnel_down: u64,
    /// Health check failures.
    health_failures: u64,
}

/// The gateway at run time.
#[derive(Debug)]
pub(crate) struct Gateway {
    name: String,
    started: Instant,
    tun: TunInfo,
    /// Replaced whole by a reload.
    routes: Mutex<Vec<config::Route>>,
    /// In configuration order.
    conns: Mutex<Vec<Conn>>,
    store: Store,
    metrics: Metrics,
    /// The tunnel engine's last report.
    snapshot: Mutex<Snapshot>,
    /// The fabric controller's socket, where routes are published.
    fabric: Option<PathBuf>,
    /// Whether each `[[route]]` prefix is published now.
    published: Mutex<BTreeMap<IpNet, bool>>,
    /// Admin state changes go to the tunnel engine.
    engine: Commands,
    /// Reload requests go to the main task.
    reloads: Mutex<Option<mpsc::UnboundedSender<ReloadRequest>>>,
    /// The BGP speaker, when `[bgp]` is configured (set once it runs).
    bgp: OnceLock<bgpd::Handle>,
}

impl Gateway {
    /// The gateway for `cfg`, with each connection's admin state as `store` has it (`up` when
    /// it has none) and every tunnel down.
    pub(crate) fn new(
        cfg: &Config,
        tun: TunInfo,
        store: Store,
        metrics: Metrics,
        engine: Commands,
    ) -> anyhow::Result<Self> {
        let saved = store.admin_states()?;
        let conns = cfg
            .connections
            .iter()
            .map(|c| Conn::load(c, saved.get(&c.name).copied().unwrap_or(AdminState::Up)))
            .collect();
        let stored = store.publications()?;
        let published = cfg
            .routes
            .iter()
            .map(|r| {
                (
                    r.prefix,
                    stored.get(&r.prefix).copied().unwrap_or(r.publish),
                )
            })
            .collect();
        for name in saved.keys().filter(|n| cfg.connection(n).is_none()) {
            tracing::debug!(connection = %name, "stored admin state kept for a connection not in the configuration");
        }
        Ok(Self {
            name: cfg.gateway.name.clone(),
            started: Instant::now(),
            tun,
            routes: Mutex::new(cfg.routes.clone()),
            conns: Mutex::new(conns),
            store,
            metrics,
            snapshot: Mutex::new(Snapshot::default()),
            fabric: cfg.fabric.as_ref().map(|f| f.socket.clone()),
            published: Mutex::new(published),
            engine,
            reloads: Mutex::new(None),
            bgp: OnceLock::new(),
        })
    }

    /// The `[[route]]`s now. Locks are taken connections, then routes: never hold this
    /// while asking for [`Gateway::lock`].
    fn route_list(&self) -> MutexGuard<'_, Vec<config::Route>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a reload's changes to the tunnel engine.
    pub(crate) fn reconfigure(&self, r: Reconfigure) {
        // The engine stops only with the daemon; nothing is left to change then.
        let _ = self.engine.send(EngineCommand::Reconfigure(Box::new(r)));
    }

    /// Where `POST /v1/reload` sends its requests: the daemon's main task, which owns the
    /// configuration.
    pub(crate) fn set_reloader(&self, tx: mpsc::UnboundedSender<ReloadRequest>) {
        *self.reloads.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    }

    /// `POST /v1/reload`: asks the main task and waits for its verdict.
    pub(crate) async fn request_reload(&self) -> Result<ReloadReport, GatewayError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .reloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|r| r.send(tx).is_ok());
        if !sent {
            return Err(GatewayError::Reload(vec![
                "this daemon does not take reloads".to_owned(),
            ]));
        }
        rx.await
            .map_err(|_| GatewayError::Reload(vec!["the daemon is stopping".to_owned()]))?
            .map_err(GatewayError::Reload)
    }

    /// A reload, the gateway's part: connections in the new order (unchanged ones keep
    /// their state; changed and added ones start down), the new routes, and publications
    /// brought in line with the fabric. Returns the admin state of each connection the engine
    /// is to add. Blocking (the fabric): call it off the async runtime.
    pub(crate) fn reload(&self, new: &Config, diff: &config::ConfigDiff) -> Vec<(String, bool)> {
        let saved = self.store.admin_states().unwrap_or_default();
        let mut added = Vec::new();
        {
            let mut conns = self.lock();
            let mut old: Vec<Conn> = std::mem::take(&mut *conns);
            for c in &new.connections {
                let kept = diff
                    .unchanged
                    .contains(&c.name)
                    .then(|| old.iter().position(|o| o.config.name == c.name))
                    .flatten()
                    .map(|i| old.remove(i));
                let conn = kept.unwrap_or_else(|| {
                    let admin = saved.get(&c.name).copied().unwrap_or(AdminState::Up);
                    added.push((c.name.clone(), admin == AdminState::Down));
                    Conn::load(c, admin)
                });
                conns.push(conn);
            }
            for gone in old {
                gone.span
                    .in_scope(|| tracing::info!("connection removed by a reload"));
            }
        }
        *self.routes.lock().unwrap_or_else(PoisonError::into_inner) = new.routes.clone();
        let stored = self.store.publications().unwrap_or_default();
        let (before, after) = {
            let mut published = self
                .published
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let before = published.clone();
            *published = new
                .routes
                .iter()
                .map(|r| {
                    let on = before
                        .get(&r.prefix)
                        .or_else(|| stored.get(&r.prefix))
                        .copied()
                        .unwrap_or(r.publish);
                    (r.prefix, on)
                })
                .collect();
            (before, published.clone())
        };
        if let Some(fabric) = &self.fabric {
            let was = |p: &IpNet| before.get(p) == Some(&true);
            let is = |p: &IpNet| after.get(p) == Some(&true) && self.deliverable(*p);
            for p in before.keys().chain(after.keys()) {
                if was(p) != is(p) {
                    if let Err(e) = tell_fabric(fabric, &self.name, *p, is(p)) {
                        tracing::warn!(prefix = %p, "reload: telling the fabric: {e:#}");
                    }
                }
            }
        }
        added
    }

    /// The counters the tunnel engine updates.
    pub(crate) fn counters(&self) -> &Metrics {
        &self.metrics
    }

    /// Connections an operator holds down.
    pub(crate) fn admin_down(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|c| c.admin == AdminState::Down)
            .map(|c| c.config.name.clone())
            .collect()
    }

    /// `GET /v1/routes`.
    pub(crate) fn routes(&self) -> Vec<RouteView> {
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.route_list()
            .iter()
            .map(|r| RouteView {
                prefix: r.prefix,
                connection: r.connection.clone(),
                weight: r.weight,
                published: published.get(&r.prefix).copied().unwrap_or(false),
            })
            .collect()
    }

    /// Tells the fabric what is published, at start. The seed's Method 1 publishes static
    /// routes whatever the tunnel's state: they stay until an operator withdraws them.
    /// Blocking: call it off the async runtime.
    pub(crate) fn sync_publications(&self) -> Result<(), GatewayError> {
        let Some(fabric) = &self.fabric else {
            return Ok(());
        };
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (prefix, on) in published {
            let on = on && self.deliverable(prefix);
            tell_fabric(fabric, &self.name, prefix, on).map_err(GatewayError::Fabric)?;
            tracing::info!(%prefix, published = on, "publication synced with the fabric");
        }
        Ok(())
    }

    /// `POST /v1/routes/publish|withdraw`: the fabric first (a refusal changes nothing), then
    /// the store, then memory. Blocking: call it off the async runtime.
    pub(crate) fn set_published(
        &self,
        prefix: IpNet,
        on: bool,
    ) -> Result<PublishChange, GatewayError> {
        let prefix = prefix.trunc();
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(&now) = published.get(&prefix) else {
            let known: Vec<String> = published.keys().map(ToString::to_string).collect();
            return Err(GatewayError::UnknownRoute {
                prefix,
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        };
        let fabric = self.fabric.as_ref().ok_or(GatewayError::NoFabric)?;
        // Held back while no route of it can carry traffic; it follows the tunnel from here.
        let in_fabric = on && self.deliverable(prefix);
        tell_fabric(fabric, &self.name, prefix, in_fabric).map_err(GatewayError::Fabric)?;
        if now != on {
            self.store
                .set_published(prefix, on)
                .map_err(GatewayError::Store)?;
            published.insert(prefix, on);
            tracing::info!(%prefix, published = on, "route {}", if on { "published" } else { "withdrawn" });
        }
        Ok(PublishChange {
            prefix,
            published: on,
            changed: now != on,
        })
    }

    /// Hands the running BGP speaker to the API and metrics.
    pub(crate) fn set_bgp(&self, handle: bgpd::Handle) {
        let _ = self.bgp.set(handle);
    }

    /// `GET /v1/bgp/neighbors`: empty without `[bgp]`.
    pub(crate) fn bgp_neighbors(&self) -> Vec<NeighborView> {
        self.bgp
            .get()
            .map(bgpd::Handle::neighbors)
            .unwrap_or_default()
    }

    /// `GET /v1/bgp/routes`: a neighbour's routes, by its name or address.
    pub(crate) async fn bgp_routes(
        &self,
        neighbor: &str,
        dir: RouteDir,
    ) -> Result<Vec<BgpRoute>, GatewayError> {
        let found = match self.bgp.get() {
            Some(h) => h.routes(neighbor, dir).await,
            None => None,
        };
        found.ok_or_else(|| {
            let known: Vec<String> = self
                .bgp_neighbors()
                .into_iter()
                .map(|n| format!("{} ({})", n.name, n.address))
                .collect();
            GatewayError::UnknownNeighbor {
                name: neighbor.to_owned(),
                known: if known.is_empty() {
                    "none: no [bgp] in the configuration".to_owned()
                } else {
                    known.join(", ")
                },
            }
        })
    }

    /// Takes the tunnel engine's latest report.
    pub(crate) fn set_snapshot(&self, s: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }

    /// `GET /v1/sas`: the installed child SAs with their counters.
    pub(crate) fn sas(&self) -> Vec<SaView> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sas
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Conn>> {
        // Every writer changes memory only after its last fallible step, so the data behind a
        // poisoned lock is still consistent.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET /v1/status`.
    pub(crate) fn status(&self) -> Status {
        let conns = self.lock();
        let mut by_state: BTreeMap<TunnelState, usize> =
            TunnelState::ALL.iter().map(|s| (*s, 0)).collect();
        for c in conns.iter() {
            *by_state.entry(c.state).or_default() += 1;
        }
        Status {
            gateway: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_seconds: self.started.elapsed().as_secs(),
            tun: self.tun.clone(),
            connections: ConnectionCounts {
                total: conns.len(),
                by_state,
                admin_down: conns.iter().filter(|c| c.admin == AdminState::Down).count(),
            },
        }
    }

    fn info(&self, c: &Conn) -> ConnectionInfo {
        let mut info = ConnectionInfo::new(&c.config, &self.route_list(), c.state, c.admin);
        info.healthy = c.healthy;
        let block = c.config.on_tunnel_down == config::OnTunnelDown::Block;
        info.routes_in = (c.state == TunnelState::Up || block) && !c.revoked;
        info
    }

    /// `GET /v1/connections`, in configuration order.
    pub(crate) fn connections(&self) -> Vec<ConnectionInfo> {
        self.lock().iter().map(|c| self.info(c)).collect()
    }

    /// `GET /v1/connections/{name}`.
    pub(crate) fn connection(&self, name: &str) -> Result<ConnectionInfo, GatewayError> {
        let conns = self.lock();
        let i = find(&conns, name)?;
        Ok(self.info(&conns[i]))
    }

    /// `POST /v1/connections/{name}/up|down`: persisted before it takes effect.
    pub(crate) fn set_admin(
        &self,
        name: &str,
        want: AdminState,
    ) -> Result<AdminChange, GatewayError> {
        let mut conns = self.lock();
        let i = find(&conns, name)?;
        let c = &mut conns[i];
        let previous = c.admin;
        if previous != want {
            self.store
                .set_admin(name, want)
                .map_err(GatewayError::Store)?;
            c.admin = want;
            c.span.in_scope(|| {
                tracing::info!(from = %previous, to = %want, "admin state changed");
            });
            let cmd = match want {
                AdminState::Up => EngineCommand::Up(name.to_owned()),
                AdminState::Down => EngineCommand::Down(name.to_owned()),
            };
            // The engine is gone only while the daemon stops; nothing to drive then.
            let _ = self.engine.send(cmd);
        }
        Ok(AdminChange {
            name: name.to_owned(),
            admin_state: want,
            previous,
            changed: previous != want,
        })
    }

    /// Records a tunnel state change (from the tunnel engine) and logs it as an event of the
    /// connection; returns false for an unknown name.
    pub(crate) fn set_state(&self, name: &str, state: TunnelState) -> bool {
        let mut conns = self.lock();
        let Ok(i) = find(&conns, name) else {
            return false;
        };
        let c = &mut conns[i];
        if c.state != state {
            let previous = c.state;
            c.state = state;
            if previous == TunnelState::Up && state == TunnelState::Down {
                c.counts.tunnel_down += 1;
            }
            c.span
                .in_scope(|| tracing::info!(from = %previous, to = %state, "tunnel state changed"));
        }
        true
    }

    /// A child SA replaced by a rekey, or an IKE SA declared dead by DPD.
    pub(crate) fn count(&self, name: &str, rekey: bool) {
        let mut conns = self.lock();
        if let Ok(i) = find(&conns, name) {
            let c = &mut conns[i].counts;
            if rekey {
                c.child_rekeys += 1;
            } else {
                c.dpd_failures += 1;
            }
        }
    }

    /// The health check's verdict changed; `revoked` when the engine took the routes out for
    /// it. Published routes of the connection follow the kernel's: withdrawn from the fabric
    /// while revoked (the operator's choice, in the store, is untouched), published again on
    /// recovery. Blocking: call it off the async runtime.
    pub(crate) fn set_health(&self, name: &str, healthy: bool, revoked: bool) {
        {
            let mut conns = self.lock();
            let Ok(i) = find(&conns, name) else {
                return;
            };
            let c = &mut conns[i];
            if c.healthy == Some(true) && !healthy {
                c.counts.health_failures += 1;
            }
            c.healthy = Some(healthy);
            let was = std::mem::replace(&mut c.revoked, revoked);
            if was == revoked {
                return;
            }
            c.span.in_scope(|| {
                tracing::info!(healthy, routes_revoked = revoked, "health check changed");
            });
        }
        self.follow(name);
    }

    /// Whether a published prefix belongs in the fabric now: some route of it can carry
    /// traffic, by its connection's health check and, for a `withdraw_when_down` route, by its
    /// tunnel. (A standby route keeps a prefix published while the active one's tunnel is
    /// down.)
    fn deliverable(&self, prefix: IpNet) -> bool {
        let conns = self.lock();
        self.route_list()
            .iter()
            .filter(|r| r.prefix == prefix)
            .any(|r| {
                conns.iter().any(|c| {
                    c.config.name == r.connection
                        && !c.revoked
                        && (!r.withdraw_when_down || c.state == TunnelState::Up)
                })
            })
    }

    /// Whether `conn` has `withdraw_when_down` routes, whose publication follows its tunnel.
    pub(crate) fn follows_tunnel(&self, conn: &str) -> bool {
        self.route_list()
            .iter()
            .any(|r| r.connection == conn && r.withdraw_when_down)
    }

    /// Tells the fabric, for each published route of `conn`, whether it belongs there now
    /// ([`Gateway::deliverable`]); the operator's choice, in the store, is untouched.
    /// Blocking: call it off the async runtime.
    pub(crate) fn follow(&self, conn: &str) {
        let Some(fabric) = &self.fabric else {
            return;
        };
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let prefixes: Vec<IpNet> = self
            .route_list()
            .iter()
            .filter(|r| r.connection == conn && published.get(&r.prefix) == Some(&true))
            .map(|r| r.prefix)
            .collect();
        for p in prefixes {
            let on = self.deliverable(p);
            match tell_fabric(fabric, &self.name, p, on) {
                Ok(()) => {
                    tracing::info!(connection = %conn, prefix = %p, in_fabric = on, "publication follows the tunnel")
                }
                Err(e) => tracing::warn!(prefix = %p, "telling the fabric: {e:#}"),
            }
        }
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub(crate) fn metrics(&self) -> String {
        let mut out = Exposition::default();
        out.family(
            "vpngw_build_info",
            "gauge",
            "Always 1; the daemon's version and gateway name as labels.",
        );
        out.sample(
            "vpngw_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("gateway", &self.name),
            ],
            1,
        );
        {
            let conns = self.lock();
            out.family(
                "vpngw_connection_up",
                "gauge",
                "1 when the connection's tunnel is up (IKE SA and child SA established).",
            );
            for c in conns.iter() {
                out.sample(
                    "vpngw_connection_up",
                    &[("connection", &c.config.name)],
                    u64::from(c.state == TunnelState::Up),
                );
            }
            out.family(
                "vpngw_connection_admin_up",
                "gauge",
                "1 when the operator wants the connection up, 0 when held down.",
            );
            for c in conns.iter() {
                out.sample(
                    "vpngw_connection_admin_up",
                    &[("connection", &c.config.name)],
                    u64::from(c.admin == AdminState::Up),
                );
            }
            for (name, help, get) in [
                (
                    "vpngw_child_sa_rekeys_total",
                    "Child SAs replaced by a rekey (make-before-break).",
                    (|k: &ConnCounts| k.child_rekeys) as fn(&ConnCounts) -> u64,
                ),
                (
                    "vpngw_dpd_failures_total",
                    "IKE SAs declared dead by dead peer detection.",
                    |k| k.dpd_failures,
                ),
                (
                    "vpngw_tunnel_down_total",
                    "Times the tunnel went from up to down, for any reason.",
                    |k| k.tunnel_down,
                ),
                (
                    "vpngw_health_check_failures_total",
                    "Times the health check declared the path inside the tunnel broken.",
                    |k| k.health_failures,
                ),
            ] {
                out.family(name, "counter", help);
                for c in conns.iter() {
                    out.sample(name, &[("connection", &c.config.name)], get(&c.counts));
                }
            }
            out.family(
                "vpngw_health_check_up",
                "gauge",
                "1 while the connection's health check probes are answered, 0 after it failed; \
                 absent without a health check.",
            );
            for c in conns.iter() {
                if let Some(h) = c.healthy {
                    out.sample(
                        "vpngw_health_check_up",
                        &[("connection", &c.config.name)],
                        u64::from(h),
                    );
                }
            }
        }
        out.family(
            "vpngw_route_published",
            "gauge",
            "1 while the [[route]] prefix is published into the fabric (the operator's choice, \
             and a route of it able to carry traffic), else 0.",
        );
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (prefix, on) in published {
            let p = prefix.to_string();
            out.sample(
                "vpngw_route_published",
                &[("prefix", &p)],
                u64::from(on && self.deliverable(prefix)),
            );
        }
        self.metrics.write(&mut out);
        let snap = self
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.family(
            "vpngw_child_sas",
            "gauge",
            "Child SAs installed now, per connection.",
        );
        for c in self.lock().iter() {
            let n = snap
                .sas
                .iter()
                .filter(|s| s.connection == c.config.name)
                .count();
            out.sample(
                "vpngw_child_sas",
                &[("connection", &c.config.name)],
                n as u64,
            );
        }
        out.family(
            "vpngw_child_sas_installed_total",
            "counter",
            "Child SAs installed since start: the first of each connection and every rekey.",
        );
        out.sample(
            "vpngw_child_sas_installed_total",
            &[],
            snap.children_installed,
        );
        for (family, help) in [
            (
                "vpngw_esp_bytes_total",
                "ESP payload bytes through the tunnels, across rekeys.",
            ),
            (
                "vpngw_esp_packets_total",
                "ESP packets through the tunnels, across rekeys.",
            ),
        ] {
            out.family(family, "counter", help);
            for (conn, t) in &snap.traffic {
                let (i, o) = if family == "vpngw_esp_bytes_total" {
                    (t.bytes_in, t.bytes_out)
                } else {
                    (t.packets_in, t.packets_out)
                };
                out.sample(family, &[("connection", conn), ("direction", "in")], i);
                out.sample(family, &[("connection", conn), ("direction", "out")], o);
            }
        }
        out.family(
            "vpngw_esp_dropped_total",
            "counter",
            "ESP packets dropped on receive, by reason (short, forged, replayed, unknown SPI, …).",
        );
        for (reason, n) in &snap.esp_drops {
            out.sample("vpngw_esp_dropped_total", &[("reason", reason)], *n);
        }
        if let Some(bgp) = self.bgp.get() {
            super::bgp::write_metrics(&mut out, &bgp.neighbors());
        }
        out.finish()
    }
}

fn find(conns: &[Conn], name: &str) -> Result<usize, GatewayError> {
    conns
        .iter()
        .position(|c| c.config.name == name)
        .ok_or_else(|| GatewayError::UnknownConnection {
            name: name.to_owned(),
            known: if conns.is_empty() {
                "none".to_owned()
            } else {
                conns
                    .iter()
                    .map(|c| c.config.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

fn mode_name(m: &config::Mode) -> &'static str {
    match m {
        config::Mode::Route { .. } => "route",
        config::Mode::Policy { .. } => "policy",
    }
}

/// Publishes or withdraws `prefix` by `gateway` at the fabric controller.
pub(super) fn tell_fabric(
    socket: &std::path::Path,
    gateway: &str,
    prefix: IpNet,
    on: bool,
) -> anyhow::Result<()> {
    let body = crate::lab::controller::Publication {
        gateway: gateway.to_owned(),
        prefix,
    };
    let path = if on { "/v1/publish" } else { "/v1/withdraw" };
    let _: crate::lab::controller::Applied = crate::api::post(socket, path, &body)?;
    Ok(())
}

/// Tells the fabric controller the data center's AS on `neighbor`'s session (`None`: the
/// session is down).
pub(super) fn tell_fabric_peer_as(
    socket: &std::path::Path,
    gateway: &str,
    neighbor: &str,
    peer_as: Option<u32>,
) -> anyhow::Result<()> {
    let body = crate::lab::controller::DcSession {
        gateway: gateway.to_owned(),
        neighbor: neighbor.to_owned(),
        peer_as,
    };
    let _: crate::lab::controller::DcAsn = crate::api::post(socket, "/v1/dc-asn", &body)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::testutil::{test_config, TempDir};

    fn gateway(dir: &TempDir) -> Gateway {
        let cfg = test_config(dir);
        let store = Store::open(&cfg.gateway.state_dir).unwrap();
        let tun = TunInfo {
            name: cfg.gateway.tun.clone(),
            mtu: cfg.gateway.mtu,
            addresses: Vec::new(),
        };
        Gateway::new(
            &cfg,
            tun,
            store,
            Metrics::default(),
            crate::daemon::tunnel::commands().unwrap().0,
        )
        .unwrap()
    }

    #[test]
    fn admin_state_is_persisted_and_an_unknown_name_changes_nothing() {
        let dir = TempDir::new("gateway");
        let gw = gateway(&dir);
        assert_eq!(gw.connection("dc1").unwrap().admin_state, AdminState::Up);
        let ch = gw.set_admin("dc1", AdminState::Down).unwrap();
        assert!(ch.changed);
        assert_eq!(ch.previous, AdminState::Up);
        let again = gw.set_admin("dc1", AdminState::Down).unwrap();
        assert!(!again.changed);

        let before = gw.connections();
        let e = gw.set_admin("nosuch", AdminState::Down).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no connection named \"nosuch\" (connections: dc1, branch)"
        );
        assert_eq!(gw.connections(), before);
        assert_eq!(gw.status().connections.admin_down, 1);

        drop(gw);
        let gw = gateway(&dir);
        assert_eq!(gw.connection("dc1").unwrap().admin_state, AdminState::Down);
        assert_eq!(gw.connection("branch").unwrap().admin_state, AdminState::Up);
    }

    #[test]
    fn status_counts_every_state_and_metrics_follow_the_connections() {
        let dir = TempDir::new("gateway-status");
        let gw = gateway(&dir);
        let st = gw.status();
        assert_eq!(st.connections.total, 2);
        assert_eq!(
            st.connections.by_state,
            BTreeMap::from([
                (TunnelState::Down, 2),
                (TunnelState::Connecting, 0),
                (TunnelState::Up, 0)
            ])
        );
        assert!(gw.set_state("dc1", TunnelState::Up));
        assert!(!gw.set_state("nosuch", TunnelState::Up));
        gw.set_admin("branch", AdminState::Down).unwrap();
        let m = gw.metrics();
        assert!(
            m.contains("vpngw_connection_up{connection=\"dc1\"} 1\n"),
            "{m}"
        );
        assert!(
            m.contains("vpngw_connection_up{connection=\"branch\"} 0\n"),
            "{m}"
        );
        assert!(
            m.contains("vpngw_connection_admin_up{connection=\"branch\"} 0\n"),
            "{m}"
        );
        assert!(m.contains("vpngw_build_info{version=\""), "{m}");
    }

    #[test]
    fn connection_info_has_no_secret_source() {
        let dir = TempDir::new("gateway-secret");
        let gw = gateway(&dir);
        let json = serde_json::to_string(&gw.connections()).unwrap();
        assert!(!json.contains("psk"), "{json}");
        assert!(!json.contains(".psk"), "{json}");
        let dc1 = gw.connection("dc1").unwrap();
        assert_eq!(dc1.routes.len(), 1);
        assert_eq!(dc1.on_tunnel_down, "fallback");
        assert_eq!(dc1.dpd.action, "restart");
    }
}
