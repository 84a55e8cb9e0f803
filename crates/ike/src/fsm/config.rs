//! Configuration of the [`Endpoint`](super::Endpoint) and of its connections.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::packet::{AddrRange, Identity};
use crate::proposal::Proposal;
use crate::secret::Secret;

/// Retransmission of requests (RFC 7296 §2.1), with strongSwan's schedule: the n-th
/// retransmission (n = 1..=`tries`) goes out `timeout * base^(n-1)` after the previous
/// send, and the request is abandoned `timeout * base^tries` after the last one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitConfig {
    /// Delay before the first retransmission (strongSwan `retransmit_timeout`, 4 s).
    pub timeout: Duration,
    /// Backoff factor (strongSwan `retransmit_base`, 1.8).
    pub base: f64,
    /// Number of retransmissions before giving up (strongSwan `retransmit_tries`, 5).
    pub tries: u32,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 5,
        }
    }
}

impl RetransmitConfig {
    /// The wait after send number `attempt` (0 = the first transmission).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = self
            .base
            .max(1.0)
            .powi(i32::try_from(attempt).unwrap_or(i32::MAX));
        let secs = (self.timeout.as_secs_f64() * factor).min(3600.0);
        Duration::from_secs_f64(secs)
    }

    /// From the first transmission to giving up.
    pub fn total(&self) -> Duration {
        (0..=self.tries).map(|a| self.delay(a)).sum()
    }
}

/// Settings shared by all IKE SAs of an [`Endpoint`](super::Endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Half-open IKE SAs (all peers) beyond which IKE_SA_INIT requests must carry a valid
    /// COOKIE (RFC 7296 §2.6). Default 32.
    pub cookie_threshold: usize,
    /// Half-open IKE SAs allowed per peer IP address; further IKE_SA_INIT requests from
    /// that address are dropped. Default 8.
    pub half_open_per_peer: usize,
    /// Request retransmission schedule.
    pub retransmit: RetransmitConfig,
    /// How long a responder keeps a half-open IKE SA waiting for IKE_AUTH. Default 30 s.
    pub half_open_timeout: Duration,
    /// NAT-T keepalive interval when we are behind a NAT (RFC 3948 §4). Default 20 s.
    pub keepalive_interval: Duration,
    /// How often the cookie secret rotates. Default 120 s (the previous secret stays
    /// valid for one more period).
    pub cookie_rotation: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            cookie_threshold: 32,
            half_open_per_peer: 8,
            retransmit: RetransmitConfig::default(),
            half_open_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(20),
            cookie_rotation: Duration::from_secs(120),
        }
    }
}

/// Which traffic a connection's Child SA carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSelectorPolicy {
    /// `0.0.0.0/0` and `::/0` both ways: routes decide what enters the tunnel.
    RouteBased,
    /// Specific subnets; the responder narrows (RFC 7296 §2.9).
    Policy {
        /// Our side (TSi when we initiate).
        local: Vec<IpNet>,
        /// The peer's side.
        remote: Vec<IpNet>,
    },
}

impl TrafficSelectorPolicy {
    /// (local, remote) as address ranges.
    pub fn ranges(&self) -> (Vec<AddrRange>, Vec<AddrRange>) {
        match self {
            Self::RouteBased => {
                let any = vec![AddrRange::any_v4(), AddrRange::any_v6()];
                (any.clone(), any)
            }
            Self::Policy { local, remote } => (
                local.iter().map(|n| AddrRange::from_net(*n)).collect(),
                remote.iter().map(|n| AddrRange::from_net(*n)).collect(),
            ),
        }
    }
}

/// What to do when DPD declares the peer dead (strongSwan's `dpd_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpdAction {
    /// Delete the SAs and initiate again (also after failed re-initiations).
    Restart,
    /// Delete the SAs.
    #[default]
    Clear,
}

/// One `[[connection]]` of the daemon configuration, already validated.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Name, for logs and `sa list`.
    pub name: String,
    /// Our address (port 500 normally).
    pub local: SocketAddr,
    /// The peer's address (port 500 normally). A responder matches IKE_SA_INIT requests
    /// to connections by the IP address of this field.
    pub remote: SocketAddr,
    /// Our identity (IDi / IDr).
    pub local_id: Identity,
    /// The identity the peer must prove.
    pub remote_id: Identity,
    /// The pre-shared key.
    pub psk: Secret,
    /// IKE proposals, preferred first.
    pub ike_proposals: Vec<Proposal>,
    /// ESP proposals, preferred first; a KE transform means PFS on CREATE_CHILD_SA.
    pub esp_proposals: Vec<Proposal>,
    /// Traffic selectors.
    pub ts: TrafficSelectorPolicy,
    /// IKE SA hard lifetime; rekeyed `rekey_margin + random(0..rand_jitter)` before.
    pub ike_lifetime: Duration,
    /// Child SA hard lifetime; rekeyed `rekey_margin + random(0..rand_jitter)` before.
    pub child_lifetime: Duration,
    /// Child SA hard byte limit, enforced by the data plane (`esp::Limits`).
    pub child_lifetime_bytes: Option<u64>,
    /// How long before the hard lifetime to rekey.
    pub rekey_margin: Duration,
    /// Random extra margin (RFC 7296 §2.8.1 jitter).
    pub rand_jitter: Duration,
    /// Send an empty INFORMATIONAL when nothing was heard for this long.
    pub dpd_interval: Option<Duration>,
    /// Kept for configuration compatibility: the number of DPD tries is the
    /// retransmission schedule's (`RetransmitConfig::tries`), as in strongSwan.
    pub dpd_retries: u32,
    /// What to do with a dead peer.
    pub dpd_action: DpdAction,
    /// Initiate when added; otherwise wait as responder.
    pub initiate: bool,
}
