//! The REST API (axum, JSON): one router, served on the Unix socket and, when configured, on
//! TCP behind a bearer token.
//!
//! | listener | who may read | who may write |
//! |---|---|---|
//! | Unix socket (`[api] socket`, mode 0600) | its owner (root) | its owner |
//! | TCP (`[api] listen`) | bearer token, except `GET /metrics` | bearer token |
//!
//! `/metrics` is open on TCP so a Prometheus server can scrape it without holding the token
//! that also allows writes; it shows names, states and counters, never a secret or an address
//! of a peer. Every other read needs the token too: connection details (peers, identities,
//! subnets) are not for anyone who can reach the port. A request refused for want of a token
//! is answered 401 before any handler runs, so it changes nothing.
//!
//! The routes are declared once, in [`routes`], which also lists them so a test can hold the
//! OpenAPI document (`openapi.json`) to exactly that list.

use std::sync::Arc;

use ipnet::IpNet;

use axum::{
    extract::{Path, Query, Request, State},
    handler::Handler,
    http::{header, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Json, Router,
};
use subtle::ConstantTimeEq;

use super::{
    gateway::{Gateway, GatewayError},
    metrics,
    model::{
        AdminChange, AdminState, ConnectionInfo, PublishChange, PublishRequest, ReloadReport,
        RouteView, SaView, Status,
    },
};
use crate::{
    api::ApiError,
    bgpd::{BgpRoute, NeighborView, RouteDir},
    config::secret::Secret,
};

/// The OpenAPI 3.0 document of this API, served at `/openapi.json`.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

type Shared = Arc<Gateway>;

/// A router that remembers what was routed: `(method, path)`, lower-case method as OpenAPI
/// spells it.
struct Routes {
    router: Router<Shared>,
    list: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn get<H: Handler<T, Shared>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.list.push(("get", path));
        self.router = self.router.route(path, axum::routing::get(h));
        self
    }

    fn post<H: Handler<T, Shared>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.list.push(("post", path));
        self.router = self.router.route(path, axum::routing::post(h));
        self
    }
}

/// Every route of the API.
fn routes() -> Routes {
    Routes {
        router: Router::new(),
        list: Vec::new(),
    }
    .get("/v1/status", status)
    .get("/v1/connections", connections)
    .get("/v1/connections/{name}", connection)
    .post("/v1/connections/{name}/up", admin_up)
    .post("/v1/connections/{name}/down", admin_down)
    .get("/v1/sas", sas)
    .get("/v1/routes", routes_list)
    .post("/v1/routes/publish", publish)
    .post("/v1/routes/withdraw", withdraw)
    .post("/v1/reload", reload)
    .get("/v1/bgp/neighbors", bgp_neighbors)
    .get("/v1/bgp/routes", bgp_routes)
    .get("/metrics", metrics_text)
    .get("/openapi.json", openapi)
}

/// The API for the Unix socket: no token (the socket's mode guards it).
pub(crate) fn unix_router(gw: Shared) -> Router {
    routes().router.with_state(gw)
}

/// The API for TCP: every request but `GET /metrics` needs `Authorization: Bearer TOKEN`.
pub(crate) fn tcp_router(gw: Shared, token: Secret) -> Router {
    unix_router(gw).layer(middleware::from_fn_with_state(
        Arc::new(token),
        require_token,
    ))
}

async fn require_token(State(token): State<Arc<Secret>>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET && req.uri().path() == "/metrics" {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    // Constant time over the bytes; only the token's length can show (subtle answers a length
    // mismatch at once), and that is no help in guessing it.
    if presented.is_some_and(|t| bool::from(t.ct_eq(token.expose()))) {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), path = %req.uri().path(), "API request on TCP refused: no valid bearer token");
    let mut resp = ApiError(
        StatusCode::UNAUTHORIZED,
        "this API on TCP needs `Authorization: Bearer TOKEN`, the token in [api] token_file"
            .to_owned(),
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"vpngw\""),
    );
    resp
}

/// The token of an `Authorization: Bearer TOKEN` value (RFC 6750 §2.1; the scheme is
/// case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let status = match e {
            GatewayError::UnknownConnection { .. } => StatusCode::NOT_FOUND,
            GatewayError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::UnknownRoute { .. } => StatusCode::NOT_FOUND,
            GatewayError::NoFabric => StatusCode::CONFLICT,
            GatewayError::Fabric(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Reload(_) => StatusCode::UNPROCESSABLE_ENTITY,
            GatewayError::UnknownNeighbor { .. } => StatusCode::NOT_FOUND,
        };
        Self(status, e.to_string())
    }
}

async fn status(State(gw): State<Shared>) -> Json<Status> {
    Json(gw.status())
}

async fn connections(State(gw): State<Shared>) -> Json<Vec<ConnectionInfo>> {
    Json(gw.connections())
}

async fn connection(
    State(gw): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<ConnectionInfo>, ApiError> {
    Ok(Json(gw.connection(&name)?))
}

async fn admin_up(
    State(gw): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<AdminChange>, ApiError> {
    Ok(Json(gw.set_admin(&name, AdminState::Up)?))
}

async fn admin_down(
    State(gw): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<AdminChange>, ApiError> {
    Ok(Json(gw.set_admin(&name, AdminState::Down)?))
}

async fn routes_list(State(gw): State<Shared>) -> Json<Vec<RouteView>> {
    Json(gw.routes())
}

async fn publish(
    State(gw): State<Shared>,
    Json(r): Json<PublishRequest>,
) -> Result<Json<PublishChange>, ApiError> {
    set_published(gw, r.prefix, true).await
}

async fn withdraw(
    State(gw): State<Shared>,
    Json(r): Json<PublishRequest>,
) -> Result<Json<PublishChange>, ApiError> {
    set_published(gw, r.prefix, false).await
}

/// The fabric is another process reached with a blocking client: off the runtime.
async fn set_published(
    gw: Shared,
    prefix: IpNet,
    on: bool,
) -> Result<Json<PublishChange>, ApiError> {
    tokio::task::spawn_blocking(move || gw.set_published(prefix, on))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(Json)
        .map_err(ApiError::from)
}

async fn reload(State(gw): State<Shared>) -> Result<Json<ReloadReport>, ApiError> {
    gw.request_reload().await.map(Json).map_err(ApiError::from)
}

async fn bgp_neighbors(State(gw): State<Shared>) -> Json<Vec<NeighborView>> {
    Json(gw.bgp_neighbors())
}

/// `?neighbor=NAME|ADDRESS&dir=received|advertised` (`received` when absent).
#[derive(Debug, serde::Deserialize)]
struct BgpRoutesQuery {
    neighbor: String,
    dir: Option<RouteDir>,
}

async fn bgp_routes(
    State(gw): State<Shared>,
    Query(q): Query<BgpRoutesQuery>,
) -> Result<Json<Vec<BgpRoute>>, ApiError> {
    let dir = q.dir.unwrap_or(RouteDir::Received);
    Ok(Json(gw.bgp_routes(&q.neighbor, dir).await?))
}

async fn sas(State(gw): State<Shared>) -> Json<Vec<SaView>> {
    Json(gw.sas())
}

async fn metrics_text(State(gw): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        gw.metrics(),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeSet,
        io::{Read, Write},
        net::TcpStream,
    };

    use super::*;
    use crate::daemon::{
        metrics::Metrics,
        model::TunInfo,
        store::Store,
        testutil::{test_config, TempDir},
    };

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    documented.insert((method.clone(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<(String, String)> = routes()
            .list
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, routed);
        // Every reference resolves.
        fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        out.push(r);
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    /// One HTTP/1.1 request on a fresh connection: (status, body).
    fn http(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let code = resp[9..12].parse().unwrap();
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (code, body)
    }

    #[test]
    fn tcp_needs_the_token_for_all_but_metrics_and_a_refused_write_changes_nothing() {
        let dir = TempDir::new("server-tcp");
        let cfg = test_config(&dir);
        let store = Store::open(&cfg.gateway.state_dir).unwrap();
        let tun = TunInfo {
            name: "t".into(),
            mtu: 1400,
            addresses: Vec::new(),
        };
        let gw = Arc::new(
            Gateway::new(
                &cfg,
                tun,
                store,
                Metrics::default(),
                crate::daemon::tunnel::commands().unwrap().0,
            )
            .unwrap(),
        );
        let token = cfg.api.tcp.as_ref().unwrap().token.load().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = tcp_router(gw.clone(), token);
        std::thread::spawn(move || {
            rt.block_on(std::future::IntoFuture::into_future(axum::serve(
                listener, app,
            )))
        });

        let (code, body) = http(addr, "POST", "/v1/connections/dc1/down", None);
        assert_eq!(code, 401, "{body}");
        assert!(body.contains("Bearer"), "{body}");
        let (code, _) = http(
            addr,
            "POST",
            "/v1/connections/dc1/down",
            Some("wrong-token"),
        );
        assert_eq!(code, 401);
        assert_eq!(gw.connection("dc1").unwrap().admin_state, AdminState::Up);
        let (code, _) = http(addr, "GET", "/v1/connections", None);
        assert_eq!(code, 401);

        let (code, body) = http(addr, "GET", "/metrics", None);
        assert_eq!(code, 200);
        assert!(
            body.contains("vpngw_connection_admin_up{connection=\"dc1\"} 1"),
            "{body}"
        );

        let (code, body) = http(
            addr,
            "POST",
            "/v1/connections/dc1/down",
            Some(crate::daemon::testutil::TOKEN),
        );
        assert_eq!(code, 200, "{body}");
        assert_eq!(gw.connection("dc1").unwrap().admin_state, AdminState::Down);
        let (code, body) = http(
            addr,
            "GET",
            "/v1/connections/nosuch",
            Some(crate::daemon::testutil::TOKEN),
        );
        assert_eq!(code, 404);
        assert!(body.contains("no connection named"), "{body}");
    }
}
