//! The daemon's configuration file: its types, reading it with every error located, its rules,
//! and what changed between two versions.
//!
//! The format is documented by example in `examples/vpngw.toml` at the repository root. One
//! gateway, many connections:
//!
//! ```text
//!   [gateway]        name (the publisher's name toward the fabric), tun, mtu, state_dir
//!   [api]            socket; listen + token_file for TCP
//!   [fabric]         socket of the fabric controller to publish routes into (optional)
//!   [[connection]]   addresses, identities, PSK source, proposals, lifetimes, DPD, mode,
//!     [connection.health_check]          on_tunnel_down
//!   [[route]]        prefix → connection, weight 100 (active) / 0 (standby), publish
//!   [bgp]            local_as, router_id, hold_time, keepalive, announce
//!     [[bgp.neighbor]]  address, remote_as, connection (its tunnel), import, max_prefix,
//!                       prepend, publish
//! ```
//!
//! Reading ([`read`]) walks the document with `confread` and checks each value where it
//! stands; the rules between fields ([`rules`]) run on whatever read cleanly, so one pass
//! reports every error it can. [`Secrets::Check`] adds the host's side: PSK and token files
//! exist and are private, PSK variables are set.
//!
//! This module never opens a socket, starts a tunnel or keeps a secret: PSKs are read when
//! needed through [`SecretSource::load`] and dropped (zeroed) after use.

pub(crate) mod bgp;
pub(crate) mod proposal;
mod read;
mod rules;
pub(crate) mod secret;
#[cfg(test)]
mod tests;

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use confread::{ConfigError, ConfigErrors, Origin};
use ipnet::{IpNet, Ipv4Net};
use serde::{Serialize, Serializer};

pub(crate) use self::{
    proposal::{validate_proposal, ProposalKind},
    secret::SecretSource,
};

/// The whole daemon configuration, as read and checked.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Config {
    /// `[gateway]`.
    pub(crate) gateway: Gateway,
    /// `[api]`.
    pub(crate) api: Api,
    /// `[fabric]`, when routes are published into a fabric controller.
    pub(crate) fabric: Option<FabricLink>,
    /// `[[connection]]`, in file order; names are unique.
    pub(crate) connections: Vec<Connection>,
    /// `[[route]]`, in file order; each names a connection of [`Config::connections`].
    pub(crate) routes: Vec<Route>,
    /// `[bgp]` with its `[[bgp.neighbor]]`s, when this gateway speaks BGP.
    pub(crate) bgp: Option<bgp::Bgp>,
    /// Where each field came from, for errors found after reading.
    #[serde(skip)]
    pub(crate) origin: Origin,
}

/// `[gateway]`: this gateway as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Gateway {
    /// Its name; also the publisher's name toward the fabric (a `gateway` node there).
    pub(crate) name: String,
    /// The TUN device carrying route-based tunnels' inside traffic.
    pub(crate) tun: String,
    /// The TUN device's MTU.
    pub(crate) mtu: u16,
    /// Where run-time state (the embedded database) lives.
    pub(crate) state_dir: PathBuf,
    /// IKE retransmission, strongSwan's `charon.retransmit_*` knobs. Also what declares a peer
    /// dead: a DPD request unanswered through this schedule.
    pub(crate) retransmit: Retransmit,
    /// The metric of the daemon's kernel routes (lower wins): below the routes that take
    /// over when the tunnel is down.
    pub(crate) route_metric: u32,
}

/// The IKE retransmission schedule: the n-th retransmit waits `timeout × base^n`; after `tries`
/// retransmits and one more wait, the exchange has failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Retransmit {
    #[serde(serialize_with = "secs")]
    pub(crate) timeout: Duration,
    pub(crate) tries: u32,
    /// The base, in thousandths (1800 = 1.8), so the config stays `Eq`.
    pub(crate) base_milli: u32,
}

/// `[api]`: the REST API's listeners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Api {
    /// The Unix socket, protected by its file permissions.
    pub(crate) socket: PathBuf,
    /// The TCP listener, which always requires a bearer token.
    pub(crate) tcp: Option<TcpApi>,
}

/// The API on TCP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct TcpApi {
    /// Address and port.
    pub(crate) listen: SocketAddr,
    /// The bearer token's file (mode 0600 or stricter).
    pub(crate) token: SecretSource,
}

/// `[fabric]`: where routes with `publish = true` are published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct FabricLink {
    /// The fabric controller's Unix socket.
    pub(crate) socket: PathBuf,
}

/// One `[[connection]]`: an IPsec tunnel to one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Connection {
    /// Unique name; routes and the API refer to it.
    pub(crate) name: String,
    /// This gateway's outer address.
    pub(crate) local_address: IpAddr,
    /// The peer's outer address.
    pub(crate) peer_address: IpAddr,
    /// This gateway's IKE identity (default: `local_address`).
    pub(crate) local_id: Identity,
    /// The identity the peer must present (default: `peer_address`).
    pub(crate) peer_id: Identity,
    /// Where the pre-shared key is.
    pub(crate) psk: SecretSource,
    /// IKE proposals in strongSwan syntax, in order of preference.
    pub(crate) ike_proposals: Vec<String>,
    /// ESP proposals in strongSwan syntax, in order of preference.
    pub(crate) esp_proposals: Vec<String>,
    /// When SAs are rekeyed and when they expire.
    pub(crate) lifetimes: Lifetimes,
    /// Dead peer detection.
    pub(crate) dpd: Dpd,
    /// Route-based or policy-based.
    pub(crate) mode: Mode,
    /// What traffic for the tunnel does while it is down.
    pub(crate) on_tunnel_down: OnTunnelDown,
    /// Start the IKE SA at once (strongSwan's `start_action = start`); `false` waits for the
    /// peer to initiate.
    pub(crate) initiate: bool,
    /// The probe through the tunnel, if any.
    pub(crate) health_check: Option<HealthCheck>,
}

/// An IKE identity (RFC 7296 §3.5), as strongSwan writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Identity {
    /// `ID_IPV4_ADDR`: `192.0.2.1`.
    Ipv4(Ipv4Addr),
    /// `ID_IPV6_ADDR`: `2001:db8::1`.
    Ipv6(Ipv6Addr),
    /// `ID_FQDN`: `fqdn:vpn.example.com`, `@vpn.example.com` or a bare host name.
    Fqdn(String),
    /// `ID_KEY_ID`: `keyid:text` (its UTF-8 bytes) or `keyid:#0a1b` (hex bytes).
    KeyId(Vec<u8>),
}

impl Identity {
    /// Reads an identity as written in the file.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{s:?} is not an identity{why}: use an IP address, fqdn:vpn.example.com (or a \
                 bare host name such as vpn.example.com), or keyid:TEXT (keyid:#HEX for bytes)"
            )
        };
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::from(ip));
        }
        if let Some(rest) = s.strip_prefix("keyid:") {
            return match rest.strip_prefix('#') {
                Some(hex) => decode_hex(hex)
                    .filter(|b| !b.is_empty())
                    .map(Self::KeyId)
                    .ok_or_else(|| bad(" (keyid:# takes an even number of hex digits)")),
                None if rest.is_empty() => Err(bad(" (keyid: is empty)")),
                None => Ok(Self::KeyId(rest.as_bytes().to_vec())),
            };
        }
        let name = s
            .strip_prefix("fqdn:")
            .or_else(|| s.strip_prefix('@'))
            .unwrap_or(s);
        if is_host_name(name) {
            Ok(Self::Fqdn(name.to_owned()))
        } else {
            Err(bad(""))
        }
    }

    /// The identity's type as RFC 7296 names it.
    #[cfg(test)]
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Ipv4(_) => "ID_IPV4_ADDR",
            Self::Ipv6(_) => "ID_IPV6_ADDR",
            Self::Fqdn(_) => "ID_FQDN",
            Self::KeyId(_) => "ID_KEY_ID",
        }
    }
}

impl From<IpAddr> for Identity {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Self::Ipv4(a),
            IpAddr::V6(a) => Self::Ipv6(a),
        }
    }
}

impl fmt::Display for Identity {
    /// The form [`Identity::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "{a}"),
            Self::Fqdn(n) => write!(f, "fqdn:{n}"),
            Self::KeyId(b) => match std::str::from_utf8(b) {
                Ok(s) if !s.starts_with('#') && !s.chars().any(char::is_control) => {
                    write!(f, "keyid:{s}")
                }
                _ => {
                    f.write_str("keyid:#")?;
                    b.iter().try_for_each(|x| write!(f, "{x:02x}"))
                }
            },
        }
    }
}

impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens, at most 253
/// characters, not all digits (that would be a mistyped address).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// SA lifetimes. An SA is rekeyed at `lifetime − rekey_margin − random(0..=rand_jitter)` and
/// expires at `lifetime`, as strongSwan's `margintime` and `rekeyfuzz` do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Lifetimes {
    /// The IKE SA's hard lifetime (seconds in JSON).
    #[serde(serialize_with = "secs")]
    pub(crate) ike: Duration,
    /// A child SA's hard lifetime (seconds in JSON).
    #[serde(serialize_with = "secs")]
    pub(crate) child: Duration,
    /// A child SA's hard lifetime in bytes, if any; its rekey comes at 90% of it.
    pub(crate) child_bytes: Option<u64>,
    /// How long before the hard lifetime rekeying starts.
    #[serde(serialize_with = "secs")]
    pub(crate) rekey_margin: Duration,
    /// The most by which rekeying starts earlier still, at random, so both ends do not
    /// rekey at once.
    #[serde(serialize_with = "secs")]
    pub(crate) rand_jitter: Duration,
}

/// Dead peer detection (RFC 7296 §2.4 liveness checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Dpd {
    /// Time without traffic from the peer before a check; zero disables DPD.
    #[serde(serialize_with = "secs")]
    pub(crate) interval: Duration,
    /// Unanswered checks before the peer is declared dead.
    pub(crate) retries: u32,
    /// What then.
    pub(crate) action: DpdAction,
}

/// What to do with a dead peer's SAs, as strongSwan's `dpd_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DpdAction {
    /// Delete them and initiate again at once.
    Restart,
    /// Delete them and wait (for the peer, or an operator).
    Clear,
}

/// How traffic enters the tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum Mode {
    /// Traffic selectors 0.0.0.0/0 and ::/0; routes decide what enters the tunnel, through
    /// the TUN device. Inside addresses come from a /30 of 169.254.0.0/16 (for BGP and the
    /// health check).
    Route {
        /// The /30.
        tunnel_cidr: Ipv4Net,
        /// This end's inside address (default: the first host of the /30).
        local_inside: Ipv4Addr,
        /// The peer's inside address (default: the second host).
        peer_inside: Ipv4Addr,
    },
    /// Traffic selectors from the subnets: only traffic between them enters the tunnel.
    Policy {
        /// This side's subnets.
        local_subnets: Vec<IpNet>,
        /// The peer's side.
        remote_subnets: Vec<IpNet>,
    },
}

/// What the tunnel's traffic does while the tunnel is down (issue 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnTunnelDown {
    /// The tunnel's routes go away and traffic takes whatever route is left, over the line,
    /// unencrypted: the seed's behaviour.
    Fallback,
    /// Traffic stops rather than leave unencrypted.
    Block,
}

/// `[connection.health_check]`: a probe through the tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct HealthCheck {
    /// The probe's source address.
    pub(crate) source: IpAddr,
    /// The address probed through the tunnel.
    pub(crate) destination: IpAddr,
    /// Time between probes.
    #[serde(serialize_with = "secs")]
    pub(crate) interval: Duration,
    /// Unanswered probes before the tunnel is declared unhealthy.
    pub(crate) retries: u32,
    /// What then.
    pub(crate) policy: HealthPolicy,
}

/// What an unhealthy tunnel does to its routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HealthPolicy {
    /// Withdraw the connection's routes (and stop publishing them).
    RevokeRoutes,
    /// Keep them; only report.
    KeepRoutes,
}

/// One `[[route]]`: a destination sent into a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Route {
    /// The destination, without host bits.
    pub(crate) prefix: IpNet,
    /// The connection's name.
    pub(crate) connection: String,
    /// [`rib::Route::ACTIVE`] (100) or [`rib::Route::STANDBY`] (0).
    pub(crate) weight: u32,
    /// Whether the route is published into the fabric (the VPC's route table).
    pub(crate) publish: bool,
    /// Withdraw the publication while the connection's tunnel is down (and publish it again
    /// when it is back); `false`, the seed's Method 1, keeps it published whatever happens.
    pub(crate) withdraw_when_down: bool,
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Whether reading also checks the secrets' sources on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Secrets {
    /// PSK and token files exist, are regular, non-empty and private to their owner; PSK
    /// variables are set and non-empty. What `check` and `run` do: `run` would fail otherwise.
    Check,
    /// The file alone, as on another host (the tests' fixtures).
    #[cfg(test)]
    Skip,
}

impl Config {
    /// Reads and checks `path`, secrets included ([`Secrets::Check`]). An unreadable file is
    /// one error at line 0.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            field: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_toml(path, &text, Secrets::Check)
    }

    /// Reads `text`, the content of `path`. `path` names the file in errors, and relative
    /// secret files are relative to its directory. Every error found is returned, in the
    /// order of the file.
    pub(crate) fn from_toml(
        path: &Path,
        text: &str,
        secrets: Secrets,
    ) -> Result<Self, ConfigErrors> {
        read::read(path, text, secrets)
    }

    /// The connection named `name`.
    pub(crate) fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }
}

/// What a reload changes, by connection name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ConfigDiff {
    /// In the new configuration only (new order).
    pub(crate) added: Vec<String>,
    /// In the old configuration only (old order).
    pub(crate) removed: Vec<String>,
    /// In both, with some setting changed (new order): the tunnel is rebuilt.
    pub(crate) changed: Vec<String>,
    /// In both, every setting equal (new order): the tunnel is left alone.
    pub(crate) unchanged: Vec<String>,
}

/// Compares the connections of two configurations by name.
///
/// Settings are compared, not secrets: a PSK changed inside the same file or variable is not
/// seen here (the daemon, which reads the key, compares it).
/// `[gateway]`, `[api]`, `[fabric]` and `[[route]]` are not connections; a reload compares
/// them as whole sections (`old.routes != new.routes`).
pub(crate) fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff::default();
    for c in &new.connections {
        match old.connection(&c.name) {
            None => d.added.push(c.name.clone()),
            Some(o) if o == c => d.unchanged.push(c.name.clone()),
            Some(_) => d.changed.push(c.name.clone()),
        }
    }
    d.removed = old
        .connections
        .iter()
        .filter(|o| new.connection(&o.name).is_none())
        .map(|o| o.name.clone())
        .collect();
    d
}

/// `vpngw check --config FILE`: "FILE: ok (N connections, M routes)" and 0, every error on
/// stderr one per line and 1, or 2 when the file cannot be read.
pub(crate) fn check_command(path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("vpngw: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match Config::from_toml(path, &text, Secrets::Check) {
        Ok(c) => {
            println!(
                "{}: ok ({} connection{}, {} route{})",
                path.display(),
                c.connections.len(),
                plural(c.connections.len()),
                c.routes.len(),
                plural(c.routes.len())
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error{}",
                path.display(),
                errors.len(),
                plural(errors.len())
            );
            ExitCode::FAILURE
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
