//! The API's JSON bodies: the daemon serves them, the CLI reads them. `openapi.json` beside
//! this file describes them; change both together.
//!
//! No secret appears here, nor where one is kept (a PSK's file or variable): the configuration
//! file says that, to whoever may read it.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use crate::config;

/// Where a connection's tunnel is, as the tunnel engine reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TunnelState {
    /// No IKE SA.
    Down,
    /// IKE_SA_INIT or IKE_AUTH in flight.
    Connecting,
    /// The IKE SA and its first child SA are established.
    Up,
}

impl TunnelState {
    /// Every state, in the order reports list them.
    pub(crate) const ALL: [Self; 3] = [Self::Down, Self::Connecting, Self::Up];

    /// As the API spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Connecting => "connecting",
            Self::Up => "up",
        }
    }
}

impl fmt::Display for TunnelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator wants of a connection: `up` (establish and keep it; the default) or
/// `down` (leave it down). Persisted across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AdminState {
    /// Established and kept up.
    Up,
    /// Held down.
    Down,
}

impl AdminState {
    /// As the API and the state database spell it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdminState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "up" => Ok(Self::Up),
            "down" => Ok(Self::Down),
            _ => Err(format!("{s:?} is not an admin state (up or down)")),
        }
    }
}

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Status {
    /// `[gateway] name`.
    pub(crate) gateway: String,
    /// The daemon's version.
    pub(crate) version: String,
    /// The daemon's process id.
    pub(crate) pid: u32,
    /// Seconds since the daemon started.
    pub(crate) uptime_seconds: u64,
    /// The TUN device.
    pub(crate) tun: TunInfo,
    /// How many connections, by state.
    pub(crate) connections: ConnectionCounts,
}

/// The TUN device as the daemon set it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TunInfo {
    /// Interface name.
    pub(crate) name: String,
    /// Its MTU.
    pub(crate) mtu: u16,
    /// The route-based connections' inside addresses on it.
    pub(crate) addresses: Vec<Ipv4Net>,
}

/// Connection counts in [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionCounts {
    /// All connections.
    pub(crate) total: usize,
    /// By tunnel state; every state is present, zero or not.
    pub(crate) by_state: BTreeMap<TunnelState, usize>,
    /// How many an operator has set admin down.
    pub(crate) admin_down: usize,
}

/// `GET /v1/connections/{name}`: a connection's settings (no secret) and state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionInfo {
    /// Its name.
    pub(crate) name: String,
    /// Where the tunnel is.
    pub(crate) state: TunnelState,
    /// What the operator wants.
    pub(crate) admin_state: AdminState,
    /// This gateway's outer address.
    pub(crate) local_address: IpAddr,
    /// The peer's outer address.
    pub(crate) peer_address: IpAddr,
    /// This gateway's IKE identity.
    pub(crate) local_id: String,
    /// The identity the peer must present.
    pub(crate) peer_id: String,
    /// Route- or policy-based, with its addresses or subnets.
    #[serde(flatten)]
    pub(crate) mode: ModeInfo,
    /// IKE proposals, most preferred first.
    pub(crate) ike_proposals: Vec<String>,
    /// ESP proposals, most preferred first.
    pub(crate) esp_proposals: Vec<String>,
    /// SA lifetimes.
    pub(crate) lifetimes: LifetimesInfo,
    /// Dead peer detection.
    pub(crate) dpd: DpdInfo,
    /// `fallback` or `block`.
    pub(crate) on_tunnel_down: String,
    /// The probe through the tunnel, if any.
    pub(crate) health_check: Option<HealthCheckInfo>,
    /// The `[[route]]`s into this connection.
    pub(crate) routes: Vec<RouteInfo>,
    /// The health check's verdict now; `None` without a health check.
    pub(crate) healthy: Option<bool>,
    /// Whether the routes are in the kernel now: while a child SA is up (always with
    /// `on_tunnel_down = "block"`), unless a failed health check revoked them.
    pub(crate) routes_in: bool,
}

/// How traffic enters a tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum ModeInfo {
    /// Through the TUN device, by route.
    Route {
        /// The inside /30.
        tunnel_cidr: Ipv4Net,
        /// This end's inside address (on the TUN device).
        local_inside: Ipv4Addr,
        /// The peer's.
        peer_inside: Ipv4Addr,
    },
    /// By traffic selectors.
    Policy {
        /// This side's subnets.
        local_subnets: Vec<IpNet>,
        /// The peer's.
        remote_subnets: Vec<IpNet>,
    },
}

/// Lifetimes, in seconds (and bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LifetimesInfo {
    /// The IKE SA's.
    pub(crate) ike_seconds: u64,
    /// A child SA's.
    pub(crate) child_seconds: u64,
    /// A child SA's byte limit, if any.
    pub(crate) child_bytes: Option<u64>,
    /// How long before expiry rekeying starts.
    pub(crate) rekey_margin_seconds: u64,
    /// The random part of it.
    pub(crate) rand_jitter_seconds: u64,
}

/// Dead peer detection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DpdInfo {
    /// Zero: disabled.
    pub(crate) interval_seconds: u64,
    /// Unanswered checks before the peer is dead.
    pub(crate) retries: u32,
    /// `restart` or `clear`.
    pub(crate) action: String,
}

/// The health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HealthCheckInfo {
    /// Probe source.
    pub(crate) source: IpAddr,
    /// Probed address.
    pub(crate) destination: IpAddr,
    /// Between probes.
    pub(crate) interval_seconds: u64,
    /// Unanswered probes before unhealthy.
    pub(crate) retries: u32,
    /// `revoke_routes` or `keep_routes`.
    pub(crate) policy: String,
}

/// A route into the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RouteInfo {
    /// Destination.
    pub(crate) prefix: IpNet,
    /// 100 active, 0 standby.
    pub(crate) weight: u32,
    /// Published into the fabric.
    pub(crate) publish: bool,
}

/// The answer to `POST /v1/connections/{name}/up` and `…/down`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AdminChange {
    /// The connection.
    pub(crate) name: String,
    /// Its admin state now.
    pub(crate) admin_state: AdminState,
    /// Before the request.
    pub(crate) previous: AdminState,
    /// Whether the request changed it.
    pub(crate) changed: bool,
}

/// The snake_case name a config enum serializes to (`fallback`, `restart`, …), so the API
/// spells values exactly as the file does.
fn spelled<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        // Only unit variants come here; anything else is a bug worth seeing, not hiding.
        other => format!("{other:?}"),
    }
}

impl ConnectionInfo {
    /// The API's view of connection `c` of `cfg`.
    pub(crate) fn new(
        c: &config::Connection,
        routes: &[config::Route],
        state: TunnelState,
        admin_state: AdminState,
    ) -> Self {
        let mode = match &c.mode {
            config::Mode::Route {
                tunnel_cidr,
                local_inside,
                peer_inside,
            } => ModeInfo::Route {
                tunnel_cidr: *tunnel_cidr,
                local_inside: *local_inside,
                peer_inside: *peer_inside,
            },
            config::Mode::Policy {
                local_subnets,
                remote_subnets,
            } => ModeInfo::Policy {
                local_subnets: local_subnets.clone(),
                remote_subnets: remote_subnets.clone(),
            },
        };
        let l = &c.lifetimes;
        Self {
            name: c.name.clone(),
            state,
            admin_state,
            local_address: c.local_address,
            peer_address: c.peer_address,
            local_id: c.local_id.to_string(),
            peer_id: c.peer_id.to_string(),
            mode,
            ike_proposals: c.ike_proposals.clone(),
            esp_proposals: c.esp_proposals.clone(),
            lifetimes: LifetimesInfo {
                ike_seconds: l.ike.as_secs(),
                child_seconds: l.child.as_secs(),
                child_bytes: l.child_bytes,
                rekey_margin_seconds: l.rekey_margin.as_secs(),
                rand_jitter_seconds: l.rand_jitter.as_secs(),
            },
            dpd: DpdInfo {
                interval_seconds: c.dpd.interval.as_secs(),
                retries: c.dpd.retries,
                action: spelled(&c.dpd.action),
            },
            on_tunnel_down: spelled(&c.on_tunnel_down),
            health_check: c.health_check.as_ref().map(|h| HealthCheckInfo {
                source: h.source,
                destination: h.destination,
                interval_seconds: h.interval.as_secs(),
                retries: h.retries,
                policy: spelled(&h.policy),
            }),
            routes: routes
                .iter()
                .filter(|r| r.connection == c.name)
                .map(|r| RouteInfo {
                    prefix: r.prefix,
                    weight: r.weight,
                    publish: r.publish,
                })
                .collect(),
            healthy: None,
            routes_in: false,
        }
    }
}

/// One installed child SA, as `GET /v1/sas` and `vpngw sa list` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SaView {
    pub(crate) connection: String,
    /// The IKE SA's proposal, strongSwan syntax.
    pub(crate) ike_proposal: String,
    /// The child SA's proposal, strongSwan syntax.
    pub(crate) proposal: String,
    /// Our inbound SPI, 8 hex digits.
    pub(crate) spi_in: String,
    /// The peer's SPI we send with.
    pub(crate) spi_out: String,
    pub(crate) bytes_in: u64,
    pub(crate) packets_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) packets_out: u64,
}

/// Per-connection ESP traffic since the daemon started, across rekeys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    pub(crate) bytes_in: u64,
    pub(crate) packets_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) packets_out: u64,
}

/// What the tunnel engine last reported: its SAs, traffic and drops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) sas: Vec<SaView>,
    /// By connection name.
    pub(crate) traffic: Vec<(String, Traffic)>,
    /// ESP packets dropped on receive, by `esp::DropReason` label.
    pub(crate) esp_drops: Vec<(&'static str, u64)>,
    /// Child SAs installed since start (the first of each connection and every rekey).
    pub(crate) children_installed: u64,
}

/// One `[[route]]` and its publication into the fabric, as `GET /v1/routes` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RouteView {
    pub(crate) prefix: IpNet,
    pub(crate) connection: String,
    pub(crate) weight: u32,
    /// Published into the VPC's table now (the configuration's `publish`, or the operator's
    /// last `route publish|withdraw`, which survives restarts).
    pub(crate) published: bool,
}

/// `POST /v1/routes/publish` and `…/withdraw`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublishRequest {
    pub(crate) prefix: IpNet,
}

/// What a reload did (`POST /v1/reload`, `vpngw reload`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReloadReport {
    /// Connections added and started.
    pub(crate) added: Vec<String>,
    /// Connections deleted (DELETE sent to their peers).
    pub(crate) removed: Vec<String>,
    /// Connections rebuilt: deleted, then started with the new settings.
    pub(crate) changed: Vec<String>,
    /// Connections left alone, SAs and all.
    pub(crate) unchanged: Vec<String>,
    /// Whether the `[[route]]` list changed (routes reprogrammed, publications synced).
    pub(crate) routes_changed: bool,
}

/// The answer to a publish or withdraw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublishChange {
    pub(crate) prefix: IpNet,
    pub(crate) published: bool,
    pub(crate) changed: bool,
}
