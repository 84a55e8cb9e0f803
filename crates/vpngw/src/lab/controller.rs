//! The fabric controller: the one process that owns the lab's fabric state while the lab
//! runs. It keeps every node's kernel routes equal to the fabric's tables, and serves a local
//! API on a Unix socket (mode 0600, root only) through which VPN gateways publish and
//! withdraw routes and report the data center's AS on their BGP sessions, and the CLI reads
//! tables and status.
//!
//! A write is applied to a copy of the fabric, programmed into the kernels, and only then
//! committed and persisted: a rejected or failed request changes nothing, and publications
//! (and the gateways' reports of the data center's AS) survive a controller restart.

use std::{
    collections::BTreeMap,
    fs,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::{Context, Result};
use axum::{
    extract::{Query, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use fabric::{Fabric, KernelRoute};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Lab, ROUTE_METRIC, ROUTE_PROTO};
use crate::api::{self, ApiError};
use crate::netns;

/// A route publication, as the API and the state file carry it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Publication {
    pub(crate) gateway: String,
    pub(crate) prefix: IpNet,
}

/// `POST /v1/dc-asn`: a VPN gateway tells the cloud the AS the data center speaks BGP from
/// on one of its sessions (`peer_as`), or that the session ended (`None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DcSession {
    pub(crate) gateway: String,
    pub(crate) neighbor: String,
    pub(crate) peer_as: Option<u32>,
}

/// The data center's AS on each BGP session the cloud has with it while the session is up:
/// the VBR's over the line (Method 3) and the VPN gateways' over their tunnels. The seed's
/// rule: the data center uses the same AS toward both, or the cloud learns its prefixes
/// from two origin ASes and the routes flap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DcAsn {
    pub(crate) vbr: Option<u32>,
    /// By "gateway/neighbor".
    pub(crate) gateways: BTreeMap<String, u32>,
    /// Every session whose AS differs from the VBR's, one line each.
    pub(crate) warnings: Vec<String>,
}

impl DcAsn {
    /// Records one session's AS (`None`: it ended) and returns the warnings that are new.
    pub(crate) fn set(&mut self, session: DcAsnSession, peer_as: Option<u32>) -> Vec<String> {
        match (session, peer_as) {
            (DcAsnSession::Vbr, a) => self.vbr = a,
            (DcAsnSession::Gateway(k), Some(a)) => {
                self.gateways.insert(k, a);
            }
            (DcAsnSession::Gateway(k), None) => {
                self.gateways.remove(&k);
            }
        }
        let now: Vec<String> = match self.vbr {
            None => Vec::new(),
            Some(v) => self
                .gateways
                .iter()
                .filter_map(|(k, a)| Some(format!("{k}: {}", bgp::check_dc_asn(v, *a)?)))
                .collect(),
        };
        let new = now
            .iter()
            .filter(|w| !self.warnings.contains(w))
            .cloned()
            .collect();
        self.warnings = now;
        new
    }
}

/// Which of the cloud's sessions with the data center.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DcAsnSession {
    Vbr,
    /// "gateway/neighbor".
    Gateway(String),
}

/// `GET /v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Status {
    pub(crate) lab: String,
    pub(crate) method: String,
    pub(crate) nodes: Vec<String>,
    pub(crate) published: Vec<Publication>,
    pub(crate) pid: u32,
    #[serde(default)]
    pub(crate) dc_asn: DcAsn,
}

/// `GET /v1/state`: enough to rebuild the controller's fabric exactly.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FabricState {
    pub(crate) config_toml: String,
    pub(crate) published: Vec<Publication>,
    /// BGP routes the fabric's nodes learned (the VBR's, Method 3): (node, prefix, next hop).
    #[serde(default)]
    pub(crate) bgp: Vec<(String, IpNet, IpAddr)>,
}

/// One node's table in `GET /v1/routes`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NodeRoutes {
    pub(crate) node: String,
    pub(crate) routes: Vec<TableRoute>,
}

/// A candidate route and whether it is selected (forwards traffic).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TableRoute {
    #[serde(flatten)]
    pub(crate) route: rib::Route,
    pub(crate) selected: bool,
}

/// The answer to a write.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Applied {
    pub(crate) changed: bool,
    /// Time from request to every kernel reprogrammed.
    pub(crate) applied_ms: f64,
}

pub(crate) struct Inner {
    lab: Lab,
    fabric: Fabric,
    /// What is in each node's kernel now, as the controller put it there.
    installed: BTreeMap<String, Vec<KernelRoute>>,
    dc_asn: DcAsn,
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

/// Runs the controller until SIGTERM or SIGINT.
pub(crate) fn run(lab: Lab) -> Result<()> {
    let mut fabric = Fabric::new(lab.load_config()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    for p in load_published(&lab) {
        if let Err(e) = fabric.publish(&p.gateway, p.prefix) {
            tracing::warn!(gateway = %p.gateway, prefix = %p.prefix, "dropping saved publication: {e}");
        }
    }
    let mut inner = Inner {
        lab: lab.clone(),
        fabric,
        installed: BTreeMap::new(),
        // The gateways' sessions outlive a controller restart; the VBR's restarts with it.
        dc_asn: DcAsn {
            gateways: load_json(&lab.dc_asn_path()).unwrap_or_default(),
            ..DcAsn::default()
        },
    };
    inner.program_all()?;
    let vbr_fabric = inner.fabric.clone();
    let shared: Shared = Arc::new(Mutex::new(inner));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (stop_bgp, bgp_stopped) = tokio::sync::watch::channel(false);
        super::vbr::start(&lab, shared.clone(), &vbr_fabric, bgp_stopped)?;
        let sock = lab.socket_path();
        let listener = api::listen_unix(&sock)?;
        let app = Router::new()
            .route("/v1/status", get(status))
            .route("/v1/state", get(state))
            .route("/v1/routes", get(routes))
            .route("/v1/publish", post(publish))
            .route("/v1/withdraw", post(withdraw))
            .route("/v1/dc-asn", post(dc_asn))
            .with_state(shared);
        tracing::info!(lab = %lab.name, socket = %sock.display(), "fabric controller ready");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await?;
        let _ = stop_bgp.send(true);
        let _ = fs::remove_file(&sock);
        tracing::info!("fabric controller stopped");
        Ok(())
    })
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
}

fn load_published(lab: &Lab) -> Vec<Publication> {
    load_json(&lab.published_path()).unwrap_or_default()
}

/// A state file, if present and readable (an unreadable one is logged and ignored).
fn load_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!("ignoring unreadable {}: {e}", path.display()))
        .ok()
}

/// Writes a state file atomically (temporary file, then rename).
fn save_json(path: &std::path::Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    fs::rename(&tmp, path).with_context(|| format!("saving {}", path.display()))
}

impl Inner {
    /// Replaces whatever an earlier controller left with the fabric's routes, on every node.
    fn program_all(&mut self) -> Result<()> {
        for node in self.fabric.nodes() {
            let ns = self.lab.ns(&node.name);
            let want = self.fabric.kernel_routes(&node.name);
            // `ip -batch` cannot switch family per line, and a plain flush is IPv4 only.
            netns::ip(&["-6", "-n", &ns, "route", "flush", "proto", ROUTE_PROTO])?;
            let mut batch = vec![format!("route flush proto {ROUTE_PROTO}")];
            batch.extend(want.iter().map(replace_line));
            netns::ip_batch(Some(&ns), &batch)?;
            self.installed.insert(node.name.clone(), want);
        }
        Ok(())
    }

    /// Brings every node's kernel from `installed` to what `next` says; returns the new
    /// per-node sets without committing them.
    fn program(&self, next: &Fabric) -> Result<BTreeMap<String, Vec<KernelRoute>>> {
        let mut out = BTreeMap::new();
        for node in next.nodes() {
            let want = next.kernel_routes(&node.name);
            let empty = Vec::new();
            let have = self.installed.get(&node.name).unwrap_or(&empty);
            netns::ip_batch(Some(&self.lab.ns(&node.name)), &diff(have, &want))?;
            out.insert(node.name.clone(), want);
        }
        Ok(out)
    }
}

/// Writes the publications atomically.
fn save_published(lab: &Lab, fabric: &Fabric) -> Result<()> {
    save_json(&lab.published_path(), &publications(fabric))
}

fn publications(fabric: &Fabric) -> Vec<Publication> {
    fabric
        .published()
        .into_iter()
        .map(|(gateway, prefix)| Publication { gateway, prefix })
        .collect()
}

/// The `ip -batch` lines that turn `have` into `want`.
fn diff(have: &[KernelRoute], want: &[KernelRoute]) -> Vec<String> {
    let mut lines: Vec<String> = have
        .iter()
        .filter(|h| !want.iter().any(|w| w.prefix == h.prefix))
        .map(|h| {
            format!(
                "route del {} proto {ROUTE_PROTO} metric {ROUTE_METRIC}",
                h.prefix
            )
        })
        .collect();
    lines.extend(want.iter().filter(|w| !have.contains(w)).map(replace_line));
    lines
}

fn replace_line(r: &KernelRoute) -> String {
    if r.blackhole {
        return format!(
            "route replace blackhole {} proto {ROUTE_PROTO} metric {ROUTE_METRIC}",
            r.prefix
        );
    }
    match r.nexthops.as_slice() {
        [one] => format!(
            "route replace {} via {} dev {} proto {ROUTE_PROTO} metric {ROUTE_METRIC}",
            r.prefix, one.via, one.dev
        ),
        many => {
            let hops: Vec<String> = many
                .iter()
                .map(|h| format!("nexthop via {} dev {}", h.via, h.dev))
                .collect();
            format!(
                "route replace {} proto {ROUTE_PROTO} metric {ROUTE_METRIC} {}",
                r.prefix,
                hops.join(" ")
            )
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    // A panic while holding the lock would already have stopped the controller's only
    // writer; the data is still consistent because writes commit at the very end.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn status(State(shared): State<Shared>) -> Json<Status> {
    let inner = lock(&shared);
    Json(Status {
        lab: inner.lab.name.clone(),
        method: inner.fabric.method().to_string(),
        nodes: inner
            .fabric
            .nodes()
            .iter()
            .map(|n| n.name.clone())
            .collect(),
        published: publications(&inner.fabric),
        pid: std::process::id(),
        dc_asn: inner.dc_asn.clone(),
    })
}

async fn state(State(shared): State<Shared>) -> Json<FabricState> {
    let inner = lock(&shared);
    Json(FabricState {
        config_toml: inner.fabric.config().to_toml(),
        published: publications(&inner.fabric),
        bgp: inner.fabric.bgp_routes(),
    })
}

#[derive(Debug, Deserialize)]
struct RoutesQuery {
    node: Option<String>,
}

async fn routes(
    State(shared): State<Shared>,
    Query(q): Query<RoutesQuery>,
) -> Result<Json<Vec<NodeRoutes>>, ApiError> {
    let inner = lock(&shared);
    let fabric = &inner.fabric;
    if let Some(n) = &q.node {
        if fabric.node(n).is_none() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                super::unknown_node(fabric, n),
            ));
        }
    }
    let out = fabric
        .nodes()
        .iter()
        .filter(|n| q.node.as_ref().is_none_or(|want| *want == n.name))
        .map(|n| {
            let table = fabric.table(&n.name);
            let routes = table
                .map(|t| {
                    t.iter()
                        .map(|r| TableRoute {
                            selected: t.best(r.prefix).is_some_and(|s| s.routes.contains(r)),
                            route: r.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            NodeRoutes {
                node: n.name.clone(),
                routes,
            }
        })
        .collect();
    Ok(Json(out))
}

async fn publish(
    State(shared): State<Shared>,
    Json(p): Json<Publication>,
) -> Result<Json<Applied>, ApiError> {
    write(&shared, |f| f.publish(&p.gateway, p.prefix)).map(Json)
}

async fn withdraw(
    State(shared): State<Shared>,
    Json(p): Json<Publication>,
) -> Result<Json<Applied>, ApiError> {
    write(&shared, |f| f.withdraw(&p.gateway, p.prefix)).map(Json)
}

async fn dc_asn(
    State(shared): State<Shared>,
    Json(s): Json<DcSession>,
) -> Result<Json<DcAsn>, ApiError> {
    {
        let inner = lock(&shared);
        let known = inner
            .fabric
            .node(&s.gateway)
            .is_some_and(|n| n.kind == fabric::NodeKind::Gateway);
        if !known {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("{}: no such VPN gateway in the fabric", s.gateway),
            ));
        }
    }
    let session = DcAsnSession::Gateway(format!("{}/{}", s.gateway, s.neighbor));
    Ok(Json(set_dc_asn(&shared, session, s.peer_as)))
}

/// Records the data center's AS on one session (the gateways' saved, so that a restarted
/// controller still knows them); logs the mismatches this makes new.
pub(crate) fn set_dc_asn(shared: &Shared, session: DcAsnSession, peer_as: Option<u32>) -> DcAsn {
    let mut inner = lock(shared);
    for w in inner.dc_asn.set(session, peer_as) {
        tracing::warn!("data-center ASN mismatch: {w}");
    }
    let path = inner.lab.dc_asn_path();
    if let Err(e) = save_json(&path, &inner.dc_asn.gateways) {
        tracing::warn!("saving {}: {e:#}", path.display());
    }
    inner.dc_asn.clone()
}

/// A change from inside the controller (the VBR's BGP routes), as `write` applies requests.
pub(crate) fn write_fabric(
    shared: &Shared,
    change: impl FnOnce(&mut Fabric) -> Result<bool, fabric::FabricError>,
) -> Result<Applied, String> {
    write(shared, change).map_err(|e| e.1)
}

/// Validate on a copy, program the kernels and save; commit only when all of it worked.
fn write(
    shared: &Shared,
    change: impl FnOnce(&mut Fabric) -> Result<bool, fabric::FabricError>,
) -> Result<Applied, ApiError> {
    let start = Instant::now();
    let mut inner = lock(shared);
    let mut next = inner.fabric.clone();
    let changed =
        change(&mut next).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    if changed {
        let applied = inner.program(&next).and_then(|installed| {
            save_published(&inner.lab, &next)?;
            Ok(installed)
        });
        match applied {
            Ok(installed) => {
                inner.installed = installed;
                inner.fabric = next;
            }
            Err(e) => {
                // The kernels may be half way; put every node back to the unchanged fabric.
                if let Err(restore) = inner.program_all() {
                    tracing::error!("restoring kernel routes after a failed write: {restore:#}");
                }
                return Err(ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{e:#}"),
                ));
            }
        }
    }
    Ok(Applied {
        changed,
        applied_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}
