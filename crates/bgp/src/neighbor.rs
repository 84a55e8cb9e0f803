//! The per-peer session: the BGP finite state machine of [RFC 4271 §8].
//!
//! A [`Session`] owns one peer's FSM state, its stream reassembly and its negotiated codec
//! context. It is driven by [`Session::process`]: one [`Input`] in, a list of [`Output`]s
//! out. It never reads a clock or touches a socket: timers are outputs
//! ([`Output::SetTimer`]) that the driver turns back into inputs
//! ([`Input::TimerExpired`]) when they fire (see [`TimerTable`](crate::timer::TimerTable)).
//!
//! ```text
//!            ManualStart                 TcpConnected            OPEN ok
//!   Idle ───────────────► Connect ───────────────────► OpenSent ─────────► OpenConfirm
//!    ▲  (passive) └─────► Active ──────────┘               │                    │ KEEPALIVE
//!    │                                                      │                    ▼
//!    └──────── error, NOTIFICATION, TcpFailed, hold expiry, ManualStop, ◄── Established
//!              TransportDown (then IdleHold → automatic restart)
//! ```
//!
//! The driver's contract:
//! * on [`Output::Connect`], open a TCP connection to the peer's port 179 and report
//!   [`Input::TcpConnected`] or [`Input::TcpFailed`]; an attempt still pending when
//!   [`Output::Close`] arrives is abandoned;
//! * accept an incoming connection from the peer while [`Session::accepts_connection`] is
//!   true and report [`Input::TcpConnected`] with [`Direction::Passive`]; keep a pending
//!   outgoing attempt going, since the peer may be connecting at the same moment;
//! * a connection (either way) that completes while [`Session::accepts_collision`] is true is
//!   the *collision connection* of RFC 4271 §6.8: report it with [`Input::TcpConnected`] too;
//!   its bytes go in as [`Input::CollisionReceived`], its failure as
//!   [`Input::CollisionFailed`]; write [`Output::CollisionSend`] to it and close it on
//!   [`Output::CollisionClose`]. On [`Output::CollisionWon`] it replaces the session's
//!   connection (closed by the [`Output::Close`] just before): from then on `Send`, `Close`
//!   and `Received` are about it. Refuse any connection while neither is true;
//! * write [`Output::Send`] bytes in order; on [`Output::Close`], write what is queued and
//!   close; report bytes read as [`Input::Received`], and a closed or failed connection as
//!   [`Input::TcpFailed`];
//! * when the transport under the session is known dead (the IPsec tunnel went down), report
//!   [`Input::TransportDown`]: the session closes at once, without waiting for the hold
//!   timer.
//!
//! [RFC 4271 §8]: https://www.rfc-editor.org/rfc/rfc4271#section-8

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    error::{ConfigError, PeerMisbehaved, SessionError},
    packet::{
        error::{AttrAction, AttrError, AttrErrorReason},
        iana::{cease, AttrType, Family, MessageType},
        message::{
            Capability, GracefulRestartCap, Message, Notification, Open, RouteRefresh, Update,
        },
        DecodeCxt, EncodeCxt, Framer,
    },
    policy::{ExportPolicy, ImportPolicy},
    timer::Timer,
};

/// The hold time used while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// Upper bound of the automatic-restart backoff.
const MAX_IDLE_HOLD: Duration = Duration::from_secs(120);

/// FSM states, as RFC 4271 §8.2.2 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Refuses connections; waits for a (manual or automatic) start.
    Idle,
    /// Waiting for an outgoing TCP connection to complete.
    Connect,
    /// Listening for the peer's connection.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for the first KEEPALIVE.
    OpenConfirm,
    /// Exchanging routes.
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which side opened the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// We connected (RFC 4271 Event 16, Tcp_CR_Acked).
    Active,
    /// The peer connected to us (Event 17, TcpConnectionConfirmed).
    Passive,
}

/// What the driver tells the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Event 1 (ManualStart), or Event 4 (ManualStart_with_PassiveTcpEstablishment) for a
    /// passive peer. Enables automatic restarts.
    ManualStart,
    /// Event 2 (ManualStop). Disables automatic restarts.
    ManualStop,
    /// Event 16 (Tcp_CR_Acked) or 17 (TcpConnectionConfirmed).
    TcpConnected {
        /// Our address on the connection (the NEXT_HOP we advertise).
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
        /// Who opened it.
        direction: Direction,
    },
    /// Event 18 (TcpConnectionFails): the connection attempt failed, or the connection was
    /// closed or reset.
    TcpFailed,
    /// Bytes read from the connection; cut into messages here (Events 19–28).
    Received(Vec<u8>),
    /// Bytes read from the collision connection (see [`Session::accepts_collision`]).
    CollisionReceived(Vec<u8>),
    /// The collision connection closed or failed.
    CollisionFailed,
    /// A timer set with [`Output::SetTimer`] fired: Event 9 (ConnectRetryTimer_Expires),
    /// 10 (HoldTimer_Expires), 11 (KeepaliveTimer_Expires), 13 (IdleHoldTimer_Expires).
    TimerExpired(Timer),
    /// The transport under the session died (the IPsec tunnel is down): close at once, like
    /// a TCP failure but without waiting for TCP or the hold timer to notice, and without
    /// graceful-restart retention of routes.
    TransportDown,
}

/// Why an Established session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// [`Input::ManualStop`] (a Cease / Administrative Shutdown was sent).
    ManualStop,
    /// [`Input::TransportDown`].
    TransportDown,
    /// The TCP connection closed or failed without a NOTIFICATION.
    ConnectionLost,
    /// The peer sent a NOTIFICATION.
    NotificationReceived(Notification),
    /// This speaker detected an error and sent the NOTIFICATION it maps to.
    Error(SessionError),
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ManualStop => f.write_str("stopped by the operator"),
            Self::TransportDown => f.write_str("transport (tunnel) down"),
            Self::ConnectionLost => f.write_str("TCP connection lost"),
            Self::NotificationReceived(n) => write!(f, "NOTIFICATION received: {n}"),
            Self::Error(e) => write!(f, "NOTIFICATION sent: {} ({e})", e.notification()),
        }
    }
}

/// What the session asks of the driver, or tells the speaker.
// Outputs are transient (handled right away), so an UPDATE inline costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer (port 179).
    Connect,
    /// Close the connection (after writing queued bytes), or abandon a pending attempt.
    Close,
    /// Write these bytes to the connection.
    Send(Vec<u8>),
    /// (Re)arm a timer to fire after the duration.
    SetTimer(Timer, Duration),
    /// Disarm a timer.
    ClearTimer(Timer),
    /// Write these bytes to the collision connection.
    CollisionSend(Vec<u8>),
    /// Close the collision connection after writing what is queued on it.
    CollisionClose,
    /// The collision connection won (RFC 4271 §6.8): it is the session's connection from now
    /// on, in place of the one the preceding [`Output::Close`] closed.
    CollisionWon,
    /// The session reached Established.
    Established,
    /// The Established session ended.
    Down(DownReason),
    /// An UPDATE arrived in Established, checked (RFC 7606 outcomes are in its `errors`).
    Update(Update),
    /// The peer asked for our routes of a family again (RFC 2918).
    RouteRefresh(Family),
}

/// Graceful restart settings (RFC 4724), helper side only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GracefulRestartConfig {
    /// Advertise the capability and keep a restarting peer's routes.
    pub helper: bool,
    /// Restart Time advertised in our capability (seconds, at most 4095).
    pub restart_time: u16,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        Self {
            helper: true,
            restart_time: 120,
        }
    }
}

/// Per-peer configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfig {
    /// A name for logs and events.
    pub name: String,
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's AS. Equal to the local AS: an internal (iBGP) session.
    pub remote_as: u32,
    /// Never connect; wait for the peer (RFC 4271 PassiveTcpEstablishment).
    #[serde(default)]
    pub passive: bool,
    /// Hold time proposed in our OPEN, seconds (0: no keepalives, no hold timer).
    #[serde(default = "default_hold")]
    pub hold_time: u16,
    /// Keepalive interval, seconds; `None`: a third of the negotiated hold time.
    #[serde(default)]
    pub keepalive: Option<u16>,
    /// ConnectRetry time, seconds.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u16,
    /// Seconds in Idle after a failure before the automatic restart; doubles on each
    /// consecutive failure up to two minutes.
    #[serde(default = "default_idle_hold")]
    pub idle_hold: u16,
    /// Address families to negotiate.
    #[serde(default = "default_families")]
    pub families: Vec<Family>,
    /// Graceful restart (helper).
    #[serde(default)]
    pub graceful_restart: GracefulRestartConfig,
    /// Import policy.
    #[serde(default)]
    pub import: ImportPolicy,
    /// Export policy.
    #[serde(default)]
    pub export: ExportPolicy,
    /// IPv4 next hop to advertise when the session runs over IPv6.
    #[serde(default)]
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop to advertise when the session runs over IPv4 (required then to send
    /// IPv6 routes).
    #[serde(default)]
    pub next_hop_v6: Option<Ipv6Addr>,
    /// IPv6 link-local next hop to advertise beside the global one.
    #[serde(default)]
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
    /// Interface (or tunnel device) through which this peer's routes forward, for
    /// `rib::Route`s.
    #[serde(default)]
    pub interface: Option<String>,
}

const fn default_hold() -> u16 {
    30
}
const fn default_connect_retry() -> u16 {
    5
}
const fn default_idle_hold() -> u16 {
    1
}
fn default_families() -> Vec<Family> {
    Family::ALL.to_vec()
}

impl PeerConfig {
    /// A peer with default settings: hold 30 s, keepalive 10 s, connect retry 5 s, both
    /// families, graceful-restart helper on, RFC 8212 policies (nothing in or out on eBGP
    /// until filters are set).
    pub fn new(name: impl Into<String>, address: IpAddr, remote_as: u32) -> Self {
        Self {
            name: name.into(),
            address,
            remote_as,
            passive: false,
            hold_time: default_hold(),
            keepalive: None,
            connect_retry: default_connect_retry(),
            idle_hold: default_idle_hold(),
            families: default_families(),
            graceful_restart: GracefulRestartConfig::default(),
            import: ImportPolicy::default(),
            export: ExportPolicy::default(),
            next_hop_v4: None,
            next_hop_v6: None,
            next_hop_v6_link_local: None,
            interface: None,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.remote_as == 0 {
            return Err(ConfigError::ZeroAsn);
        }
        if matches!(self.hold_time, 1 | 2) {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if let Some(k) = self.keepalive {
            if k == 0 || (self.hold_time > 0 && k > self.hold_time / 3) {
                return Err(ConfigError::Keepalive {
                    keepalive: k,
                    hold: self.hold_time,
                });
            }
        }
        if self.families.is_empty() {
            return Err(ConfigError::NoFamily);
        }
        for f in [&self.import.filter, &self.export.filter]
            .into_iter()
            .flatten()
        {
            f.validate()?;
        }
        Ok(())
    }
}

/// What the two OPENs settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Negotiated {
    /// The peer's AS.
    pub peer_as: u32,
    /// The peer's BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// External session (peer AS ≠ local AS).
    pub external: bool,
    /// Negotiated hold time: the smaller of both proposals (0: none).
    pub hold_time: Duration,
    /// Interval between KEEPALIVEs (zero with a zero hold time).
    pub keepalive: Duration,
    /// Both sides sent the 4-octet AS capability.
    pub four_octet_as: bool,
    /// Families both sides announced.
    pub families: Vec<Family>,
    /// The peer accepts ROUTE-REFRESH.
    pub route_refresh: bool,
    /// The peer's Graceful Restart capability, if it sent one and we are a helper.
    pub peer_graceful_restart: Option<GracefulRestartCap>,
    /// Our address on the connection.
    pub local_addr: IpAddr,
    /// The peer's address on the connection.
    pub remote_addr: IpAddr,
}

/// Message counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent (UPDATE batches count as their number of messages).
    pub messages_out: u64,
    /// UPDATEs received.
    pub updates_in: u64,
    /// UPDATEs sent (End-of-RIB markers included).
    pub updates_out: u64,
    /// ROUTE-REFRESH requests received.
    pub refreshes_in: u64,
    /// Times the session reached Established.
    pub established: u64,
    /// UPDATEs with a treat-as-withdraw or attribute-discard outcome (RFC 7606).
    pub malformed_updates: u64,
}

/// One peer's session: FSM, framing and codec context.
#[derive(Debug)]
pub struct Session {
    local_as: u32,
    router_id: Ipv4Addr,
    config: PeerConfig,
    state: State,
    framer: Framer,
    connection: Option<(SocketAddr, SocketAddr)>,
    /// Who opened `connection` (collision resolution keeps one direction).
    direction: Direction,
    /// A second connection with the peer while `connection` is in OpenSent or OpenConfirm.
    collision: Option<Collision>,
    /// Bumped whenever `connection` is replaced or dropped, so that a loop over one
    /// connection's messages stops at once.
    conn_gen: u64,
    negotiated: Option<Negotiated>,
    decode: DecodeCxt,
    encode: EncodeCxt,
    connect_retry_counter: u32,
    auto_restart: bool,
    /// Consecutive failures since the last Established, for the IdleHold backoff.
    failures: u32,
    /// Override of the next IdleHold delay (max-prefix restart interval).
    next_idle_hold: Option<Duration>,
    stats: Stats,
    last_down: Option<DownReason>,
    last_error: Option<SessionError>,
}

impl Session {
    /// A session in Idle. `local_as` and `router_id` are this speaker's.
    pub fn new(local_as: u32, router_id: Ipv4Addr, config: PeerConfig) -> Self {
        Self {
            local_as,
            router_id,
            config,
            state: State::Idle,
            framer: Framer::new(),
            connection: None,
            direction: Direction::Active,
            collision: None,
            conn_gen: 0,
            negotiated: None,
            decode: DecodeCxt::default(),
            encode: EncodeCxt::default(),
            connect_retry_counter: 0,
            auto_restart: false,
            failures: 0,
            next_idle_hold: None,
            stats: Stats::default(),
            last_down: None,
            last_error: None,
        }
    }

    /// The current state.
    pub const fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub const fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// Replaces the policies (takes effect for routes processed from now on).
    pub(crate) fn set_policies(
        &mut self,
        import: Option<ImportPolicy>,
        export: Option<ExportPolicy>,
    ) {
        if let Some(i) = import {
            self.config.import = i;
        }
        if let Some(e) = export {
            self.config.export = e;
        }
    }

    /// What the OPENs settled; `Some` from OpenConfirm on, kept after the session goes down
    /// until the next start.
    pub const fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Message counters.
    pub const fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Why the session last left Established.
    pub const fn last_down(&self) -> Option<&DownReason> {
        self.last_down.as_ref()
    }

    /// The last error this speaker reset the session for, in any state.
    pub const fn last_error(&self) -> Option<&SessionError> {
        self.last_error.as_ref()
    }

    /// RFC 4271 ConnectRetryCounter.
    pub const fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Whether an incoming connection from the peer may be handed over now (Connect or
    /// Active).
    pub const fn accepts_connection(&self) -> bool {
        matches!(self.state, State::Connect | State::Active)
    }

    /// Whether a second connection with the peer is taken now as the collision connection
    /// of RFC 4271 §6.8: while the session's connection is in OpenSent or OpenConfirm and no
    /// other collision is pending. In Established the new connection is refused (the RFC's
    /// default, CollisionDetectEstablishedState off).
    pub const fn accepts_collision(&self) -> bool {
        matches!(self.state, State::OpenSent | State::OpenConfirm) && self.collision.is_none()
    }

    /// The encoding context for UPDATEs sent on this session.
    pub const fn encode_cxt(&self) -> &EncodeCxt {
        &self.encode
    }

    /// Feeds one input; returns what follows, in order.
    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::ManualStart => self.manual_start(&mut out),
            Input::ManualStop => self.manual_stop(&mut out),
            Input::TcpConnected {
                local,
                remote,
                direction,
            } => {
                if self.accepts_connection() {
                    self.tcp_connected(local, remote, direction, &mut out);
                } else if self.accepts_collision() {
                    self.collision_connected(local, remote, direction, &mut out);
                }
            }
            Input::TcpFailed => self.tcp_failed(&mut out),
            Input::Received(bytes) => self.received(&bytes, &mut out),
            Input::CollisionReceived(bytes) => self.collision_received(&bytes, &mut out),
            Input::CollisionFailed => {
                if self.collision.take().is_some() {
                    // The peer gave it up (it resolved the collision first); ours goes on.
                    out.push(Output::CollisionClose);
                }
            }
            Input::TimerExpired(t) => self.timer_expired(t, &mut out),
            Input::TransportDown => self.transport_down(&mut out),
        }
        out
    }

    /// Bytes read from the connection (same as [`Input::Received`], without the copy).
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        self.received(bytes, &mut out);
        out
    }

    /// Queues encoded UPDATE messages (built by the speaker's Adj-RIB-Out) for sending.
    /// Ignored unless Established.
    pub fn send_updates(&mut self, bytes: Vec<u8>, messages: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::Established || bytes.is_empty() {
            return out;
        }
        self.stats.messages_out += messages;
        self.stats.updates_out += messages;
        out.push(Output::Send(bytes));
        // RFC 4271 §10: each UPDATE or KEEPALIVE sent restarts the KeepaliveTimer.
        if let Some(n) = &self.negotiated {
            if !n.keepalive.is_zero() {
                out.push(Output::SetTimer(Timer::Keepalive, n.keepalive));
            }
        }
        out
    }

    /// Sends a ROUTE-REFRESH for `family` if the peer accepts them and the family was
    /// negotiated; returns nothing otherwise.
    pub fn request_refresh(&mut self, family: Family) -> Vec<Output> {
        let ok = self.state == State::Established
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.route_refresh && n.families.contains(&family));
        let mut out = Vec::new();
        if ok {
            self.send(&Message::RouteRefresh(RouteRefresh::new(family)), &mut out);
        }
        out
    }

    /// Resets the session for `error` (for a max-prefix violation found by the speaker):
    /// sends its NOTIFICATION and closes. `restart_after`: the automatic restart delay, or
    /// `None` to stay Idle until a [`Input::ManualStart`].
    pub fn reset(&mut self, error: SessionError, restart_after: Option<Duration>) -> Vec<Output> {
        let mut out = Vec::new();
        if matches!(self.state, State::Idle | State::Connect | State::Active) {
            return out;
        }
        match restart_after {
            Some(d) => self.next_idle_hold = Some(d),
            None => self.auto_restart = false,
        }
        self.fail_with(error, &mut out);
        out
    }

    // -- events --------------------------------------------------------------------------

    fn manual_start(&mut self, out: &mut Vec<Output>) {
        // Event 1 / 4: ignored outside Idle.
        if self.state != State::Idle {
            return;
        }
        self.auto_restart = true;
        self.connect_retry_counter = 0;
        out.push(Output::ClearTimer(Timer::IdleHold));
        self.start(out);
    }

    /// Leaves Idle (Event 1/3/4/5): arms ConnectRetry and connects, or listens if passive.
    fn start(&mut self, out: &mut Vec<Output>) {
        self.negotiated = None;
        self.framer.reset();
        out.push(Output::SetTimer(Timer::ConnectRetry, self.connect_retry()));
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Output::Connect);
        }
    }

    fn manual_stop(&mut self, out: &mut Vec<Output>) {
        self.auto_restart = false;
        out.push(Output::ClearTimer(Timer::IdleHold));
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => {
                out.push(Output::Close);
                self.enter_idle(None, out);
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                let n = Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN);
                self.send(&Message::Notification(n), out);
                out.push(Output::Close);
                self.enter_idle(Some(DownReason::ManualStop), out);
            }
        }
        self.connect_retry_counter = 0;
    }

    fn tcp_connected(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        direction: Direction,
        out: &mut Vec<Output>,
    ) {
        // Events 16 / 17, only meaningful in Connect and Active (see `accepts_connection`).
        if !self.accepts_connection() {
            return;
        }
        self.connection = Some((local, remote));
        self.direction = direction;
        self.conn_gen += 1;
        self.framer.reset();
        out.push(Output::ClearTimer(Timer::ConnectRetry));
        let open = self.open_message();
        self.send(&Message::Open(open), out);
        out.push(Output::SetTimer(Timer::Hold, OPEN_HOLD));
        self.state = State::OpenSent;
    }

    fn tcp_failed(&mut self, out: &mut Vec<Output>) {
        // Event 18.
        match self.state {
            State::Idle => {}
            State::Connect => {
                // RFC 4271 §8.2.2 sends Connect to Idle here when DelayOpen is off; like BIRD,
                // FRR and GoBGP we go to Active instead: keep listening and retry when the
                // ConnectRetryTimer (still running) fires. With both ends active, the RFC's
                // way leaves them taking turns in Idle and rarely meeting.
                self.state = State::Active;
            }
            State::Active => {
                self.connect_retry_counter += 1;
                self.enter_idle(None, out);
            }
            State::OpenSent | State::OpenConfirm if self.collision.is_some() => {
                // The peer dropped this connection (it resolved a collision before us, or
                // the connection broke): the other one carries the session on.
                out.push(Output::Close);
                self.promote_collision(out);
            }
            State::OpenSent => {
                // RFC 4271 §8.2.2 (OpenSent): close, restart ConnectRetry, go Active.
                self.connection = None;
                self.conn_gen += 1;
                self.framer.reset();
                out.push(Output::Close);
                out.push(Output::ClearTimer(Timer::Hold));
                out.push(Output::SetTimer(Timer::ConnectRetry, self.connect_retry()));
                self.state = State::Active;
            }
            State::OpenConfirm | State::Established => {
                self.connect_retry_counter += 1;
                out.push(Output::Close);
                self.enter_idle(Some(DownReason::ConnectionLost), out);
            }
        }
    }

    fn transport_down(&mut self, out: &mut Vec<Output>) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => {
                out.push(Output::Close);
                self.enter_idle(None, out);
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                // No NOTIFICATION: the path to the peer is gone.
                out.push(Output::Close);
                self.enter_idle(Some(DownReason::TransportDown), out);
            }
        }
    }

    fn timer_expired(&mut self, t: Timer, out: &mut Vec<Output>) {
        match (t, self.state) {
            // Event 9.
            (Timer::ConnectRetry, State::Connect) => {
                out.push(Output::Close);
                out.push(Output::SetTimer(Timer::ConnectRetry, self.connect_retry()));
                out.push(Output::Connect);
            }
            (Timer::ConnectRetry, State::Active) => {
                out.push(Output::SetTimer(Timer::ConnectRetry, self.connect_retry()));
                if !self.config.passive {
                    self.state = State::Connect;
                    out.push(Output::Connect);
                }
            }
            // Event 10.
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                self.fail_with(PeerMisbehaved::HoldTimerExpired.into(), out);
            }
            // Event 11.
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                self.send(&Message::Keepalive, out);
                if let Some(n) = &self.negotiated {
                    if !n.keepalive.is_zero() {
                        out.push(Output::SetTimer(Timer::Keepalive, n.keepalive));
                    }
                }
            }
            // Event 13 → Event 3 (AutomaticStart).
            (Timer::IdleHold, State::Idle) if self.auto_restart => self.start(out),
            // Stale timers (the state moved on) are ignored.
            _ => {}
        }
    }

    fn received(&mut self, bytes: &[u8], out: &mut Vec<Output>) {
        if self.connection.is_none()
            || matches!(self.state, State::Idle | State::Connect | State::Active)
        {
            return;
        }
        let gen = self.conn_gen;
        self.framer.push(bytes);
        loop {
            let msg = match self.framer.next_message() {
                Ok(Some(m)) => Message::decode(m, &self.decode),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            self.stats.messages_in += 1;
            match msg {
                Ok(m) => self.on_message(m, out),
                Err(e) if e.message == MessageType::NOTIFICATION => {
                    // RFC 4271 §6.4: never answer a NOTIFICATION with one; just close.
                    self.last_error = Some(SessionError::Malformed(e.clone()));
                    out.push(Output::Close);
                    let n = Notification::from(&e);
                    self.enter_idle(Some(DownReason::NotificationReceived(n)), out);
                }
                Err(e) => self.fail_with(SessionError::Malformed(e), out),
            }
            if self.conn_gen != gen {
                // The session ended, or the collision connection replaced this one: later
                // bytes of this connection belong to nothing.
                break;
            }
        }
    }

    fn on_message(&mut self, m: Message, out: &mut Vec<Output>) {
        let kind = m.kind();
        match (self.state, m) {
            (State::OpenSent | State::OpenConfirm, Message::Notification(n))
                if self.collision.is_some() =>
            {
                // Typically Cease / Connection Collision Resolution: the peer resolved the
                // collision before us and keeps the other connection.
                tracing::debug!(peer = %self.config.name, notification = %n, "BGP connection closed by the peer; its collision connection goes on");
                out.push(Output::Close);
                self.promote_collision(out);
            }
            (_, Message::Notification(n)) => {
                // Events 24 / 25: close, to Idle.
                self.connect_retry_counter += 1;
                out.push(Output::Close);
                self.enter_idle(Some(DownReason::NotificationReceived(n)), out);
            }
            (State::OpenSent, Message::Open(open)) => self.on_open(&open, out),
            (State::OpenConfirm, Message::Keepalive) => {
                // Event 26 in OpenConfirm. RFC 4271 §6.8: a collision with an Established
                // connection closes the newer one.
                self.close_collision(true, out);
                self.restart_hold(out);
                self.state = State::Established;
                self.failures = 0;
                self.stats.established += 1;
                out.push(Output::Established);
            }
            (State::Established, Message::Keepalive) => self.restart_hold(out),
            (State::Established, Message::Update(mut u)) => {
                // Event 27.
                self.restart_hold(out);
                self.stats.updates_in += 1;
                self.check_update(&mut u);
                if !u.errors.is_empty() {
                    self.stats.malformed_updates += 1;
                    for e in &u.errors {
                        tracing::warn!(peer = %self.config.name, error = %e, "malformed UPDATE attribute (RFC 7606)");
                    }
                }
                out.push(Output::Update(u));
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(out);
                self.stats.refreshes_in += 1;
                // RFC 2918 §4: ignore families not negotiated; RFC 7313 BoRR/EoRR subtypes
                // are ignored too (enhanced route refresh is not advertised).
                let family = Family::from_afi_safi(rr.afi, rr.safi);
                let negotiated = self.negotiated.as_ref();
                if let Some(f) = family.filter(|f| {
                    rr.subtype == 0 && negotiated.is_some_and(|n| n.families.contains(f))
                }) {
                    out.push(Output::RouteRefresh(f));
                }
            }
            (state, _) => {
                // Events 19-28 the state does not allow: FSM error (RFC 6608 subcodes).
                self.fail_with(
                    PeerMisbehaved::UnexpectedMessage {
                        state,
                        message: kind,
                    }
                    .into(),
                    out,
                );
            }
        }
    }

    /// Event 19 in OpenSent: validate the OPEN (RFC 4271 §6.2) and negotiate.
    fn on_open(&mut self, open: &Open, out: &mut Vec<Output>) {
        if let Some(c) = &self.collision {
            // RFC 4271 §6.8: the peer's BGP Identifier is known now, so the collision is
            // resolved on this OPEN.
            if self.keeps(c.direction, open) && c.direction != self.direction {
                self.send(&cease_collision(), out);
                out.push(Output::Close);
                self.promote_collision(out);
                // The OPEN on the kept connection is still to come.
                return;
            }
            self.close_collision(true, out);
        }
        let peer_as = open.asn();
        if peer_as != self.config.remote_as {
            return self.fail_with(
                PeerMisbehaved::BadPeerAs {
                    expected: self.config.remote_as,
                    received: peer_as,
                }
                .into(),
                out,
            );
        }
        if matches!(open.hold_time, 1 | 2) {
            return self.fail_with(
                PeerMisbehaved::UnacceptableHoldTime(open.hold_time).into(),
                out,
            );
        }
        let external = peer_as != self.local_as;
        if !external && open.bgp_id == self.router_id {
            return self.fail_with(PeerMisbehaved::BadBgpIdentifier(open.bgp_id).into(), out);
        }
        let Some((local, remote)) = self.connection else {
            return;
        };
        let hold = open.hold_time.min(self.config.hold_time);
        let hold_time = Duration::from_secs(u64::from(hold));
        let keepalive = if hold == 0 {
            Duration::ZERO
        } else {
            let third = hold_time / 3;
            self.config
                .keepalive
                .map_or(third, |k| Duration::from_secs(u64::from(k)).min(third))
        };
        let peer_families = open.families();
        let families: Vec<Family> = self
            .config
            .families
            .iter()
            .copied()
            .filter(|f| peer_families.contains(f))
            .collect();
        let four_octet_as = open.four_octet_as().is_some();
        let route_refresh = open.capabilities().any(|c| *c == Capability::RouteRefresh);
        let peer_graceful_restart = if self.config.graceful_restart.helper {
            open.capabilities().find_map(|c| match c {
                Capability::GracefulRestart(gr) => Some(gr.clone()),
                _ => None,
            })
        } else {
            None
        };
        self.decode = DecodeCxt { four_octet_as };
        self.encode = EncodeCxt { four_octet_as };
        self.negotiated = Some(Negotiated {
            peer_as,
            peer_id: open.bgp_id,
            external,
            hold_time,
            keepalive,
            four_octet_as,
            families,
            route_refresh,
            peer_graceful_restart,
            local_addr: local.ip(),
            remote_addr: remote.ip(),
        });
        self.send(&Message::Keepalive, out);
        if hold == 0 {
            out.push(Output::ClearTimer(Timer::Hold));
        } else {
            out.push(Output::SetTimer(Timer::Hold, hold_time));
            out.push(Output::SetTimer(Timer::Keepalive, keepalive));
        }
        self.state = State::OpenConfirm;
    }

    /// Session-dependent UPDATE checks (RFC 4271 §6.3 as revised by RFC 7606).
    fn check_update(&self, u: &mut Update) {
        let Some(n) = &self.negotiated else {
            return;
        };
        let reach = u.announced_prefixes().next().is_some();
        let mut errors = Vec::new();
        if let Some(attrs) = u.attrs.as_mut() {
            if n.external {
                if attrs.local_pref.take().is_some() {
                    // RFC 7606 §7.5.
                    errors.push(attr_error(
                        AttrType::LOCAL_PREF,
                        AttrAction::AttributeDiscard,
                        AttrErrorReason::NotAllowed,
                    ));
                }
                if reach && attrs.as_path.first_as() != Some(n.peer_as) {
                    // RFC 4271 §6.3 / RFC 7606 §7.2: the leftmost AS must be the peer's.
                    errors.push(attr_error(
                        AttrType::AS_PATH,
                        AttrAction::TreatAsWithdraw,
                        AttrErrorReason::FirstAs(attrs.as_path.first_as().unwrap_or(0)),
                    ));
                }
            }
            if reach && !u.nlri.is_empty() {
                if let Some(nh) = attrs.next_hop {
                    if !usable_next_hop(IpAddr::V4(nh), n.local_addr) {
                        errors.push(attr_error(
                            AttrType::NEXT_HOP,
                            AttrAction::TreatAsWithdraw,
                            AttrErrorReason::NextHop,
                        ));
                    }
                }
            }
        }
        if let Some(m) = &u.mp_reach {
            if !m.nlri.is_empty() && !usable_next_hop(m.next_hop.addr, n.local_addr) {
                errors.push(attr_error(
                    AttrType::MP_REACH_NLRI,
                    AttrAction::TreatAsWithdraw,
                    AttrErrorReason::NextHop,
                ));
            }
        }
        u.errors.extend(errors);
    }

    // -- helpers -------------------------------------------------------------------------

    fn open_message(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|f| Capability::multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(self.local_as));
        if self.config.graceful_restart.helper {
            // RFC 4724 §3: a helper-only speaker advertises no families.
            caps.push(Capability::GracefulRestart(GracefulRestartCap {
                restarting: false,
                notification: false,
                restart_time: self.config.graceful_restart.restart_time.min(4095),
                families: Vec::new(),
            }));
        }
        Open::new(self.local_as, self.config.hold_time, self.router_id, caps)
    }

    fn send(&mut self, m: &Message, out: &mut Vec<Output>) {
        let mut bytes = Vec::new();
        // Messages built here (OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH) always fit;
        // a NOTIFICATION whose data would not is sent without it.
        if m.encode(&self.encode, &mut bytes).is_err() {
            if let Message::Notification(n) = m {
                let short = Notification::new(n.code, n.subcode, Vec::new());
                let _ = Message::Notification(short).encode(&self.encode, &mut bytes);
            }
        }
        if !bytes.is_empty() {
            self.stats.messages_out += 1;
            out.push(Output::Send(bytes));
        }
    }

    fn restart_hold(&self, out: &mut Vec<Output>) {
        if let Some(n) = &self.negotiated {
            if !n.hold_time.is_zero() {
                out.push(Output::SetTimer(Timer::Hold, n.hold_time));
            }
        }
    }

    // -- connection collisions (RFC 4271 §6.8) --------------------------------------------

    /// A second connection while the first is in OpenSent or OpenConfirm: send our OPEN on it
    /// too and wait for the peer's, which settles which of the two survives.
    fn collision_connected(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        direction: Direction,
        out: &mut Vec<Output>,
    ) {
        tracing::debug!(peer = %self.config.name, ?direction, "BGP connection collision");
        self.collision = Some(Collision {
            local,
            remote,
            direction,
            framer: Framer::new(),
        });
        let open = Message::Open(self.open_message());
        self.send_collision(&open, out);
    }

    fn collision_received(&mut self, bytes: &[u8], out: &mut Vec<Output>) {
        let Some(c) = self.collision.as_mut() else {
            return;
        };
        c.framer.push(bytes);
        // The OPEN is the only message due on it; anything else ends it, the session's
        // connection carrying on.
        let msg = match c.framer.next_message() {
            Ok(Some(m)) => Message::decode(m, &DecodeCxt::default()),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        match msg {
            Ok(Message::Open(open)) => self.collision_open(&open, out),
            Ok(Message::Notification(n)) => {
                tracing::debug!(peer = %self.config.name, notification = %n, "BGP collision connection closed by the peer");
                self.collision = None;
                out.push(Output::CollisionClose);
            }
            Ok(m) => {
                let e = SessionError::from(PeerMisbehaved::UnexpectedMessage {
                    state: State::OpenSent,
                    message: m.kind(),
                });
                self.send_collision(&Message::Notification(e.notification()), out);
                self.collision = None;
                out.push(Output::CollisionClose);
            }
            Err(e) => {
                if e.message != MessageType::NOTIFICATION {
                    let n = SessionError::Malformed(e).notification();
                    self.send_collision(&Message::Notification(n), out);
                }
                self.collision = None;
                out.push(Output::CollisionClose);
            }
        }
    }

    /// The peer's OPEN on the collision connection: keep one of the two connections.
    fn collision_open(&mut self, open: &Open, out: &mut Vec<Output>) {
        let Some(c) = &self.collision else {
            return;
        };
        // Two connections the same way (the peer reconnected while its old connection
        // lingers): the newer one is the live one.
        let collision_wins = c.direction == self.direction || self.keeps(c.direction, open);
        if !collision_wins {
            self.close_collision(true, out);
            return;
        }
        self.send(&cease_collision(), out);
        out.push(Output::Close);
        if self.promote_collision(out) {
            self.on_open(open, out);
        }
    }

    /// Whether RFC 4271 §6.8 keeps the connection opened in `direction`, given the peer's
    /// OPEN: the one opened by the speaker with the higher BGP Identifier (compared as
    /// 32-bit unsigned integers); with equal identifiers (legal between ASes, RFC 6286
    /// §2.3), the one opened by the speaker with the larger AS number.
    fn keeps(&self, direction: Direction, open: &Open) -> bool {
        let ours = match u32::from(self.router_id).cmp(&u32::from(open.bgp_id)) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.local_as > open.asn(),
        };
        (direction == Direction::Active) == ours
    }

    /// Closes the collision connection, with a Cease / Connection Collision Resolution
    /// first when `notify`.
    fn close_collision(&mut self, notify: bool, out: &mut Vec<Output>) {
        if self.collision.is_none() {
            return;
        }
        if notify {
            self.send_collision(&cease_collision(), out);
        }
        self.collision = None;
        out.push(Output::CollisionClose);
    }

    /// The collision connection becomes the session's, in OpenSent (our OPEN went out on
    /// it when it came up). The caller has closed the old connection. False when there was
    /// none.
    fn promote_collision(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(c) = self.collision.take() else {
            return false;
        };
        self.connection = Some((c.local, c.remote));
        self.direction = c.direction;
        self.framer = c.framer;
        self.conn_gen += 1;
        self.state = State::OpenSent;
        self.negotiated = None;
        self.decode = DecodeCxt::default();
        self.encode = EncodeCxt::default();
        out.push(Output::CollisionWon);
        out.push(Output::ClearTimer(Timer::Keepalive));
        out.push(Output::SetTimer(Timer::Hold, OPEN_HOLD));
        true
    }

    fn send_collision(&self, m: &Message, out: &mut Vec<Output>) {
        let mut bytes = Vec::new();
        // OPEN and NOTIFICATION without data always fit.
        if m.encode(&EncodeCxt::default(), &mut bytes).is_ok() {
            out.push(Output::CollisionSend(bytes));
        }
    }

    /// Sends the NOTIFICATION for `e`, closes, goes Idle.
    fn fail_with(&mut self, e: SessionError, out: &mut Vec<Output>) {
        e.log(&self.config.name);
        let n = e.notification();
        self.send(&Message::Notification(n), out);
        out.push(Output::Close);
        self.connect_retry_counter += 1;
        self.last_error = Some(e.clone());
        self.enter_idle(Some(DownReason::Error(e)), out);
    }

    /// Enters Idle: clears timers and the connection, reports `Down` if we were Established,
    /// arms the automatic restart.
    fn enter_idle(&mut self, reason: Option<DownReason>, out: &mut Vec<Output>) {
        let was_established = self.state == State::Established;
        self.state = State::Idle;
        self.connection = None;
        self.conn_gen += 1;
        if self.collision.take().is_some() {
            out.push(Output::CollisionClose);
        }
        self.framer.reset();
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            out.push(Output::ClearTimer(t));
        }
        if let (true, Some(r)) = (was_established, reason) {
            self.last_down = Some(r.clone());
            out.push(Output::Down(r));
        }
        if self.auto_restart {
            let delay = self.next_idle_hold.take().unwrap_or_else(|| {
                let base = Duration::from_secs(u64::from(self.config.idle_hold.max(1)));
                let factor = 1u32 << self.failures.min(7);
                (base * factor).min(MAX_IDLE_HOLD)
            });
            self.failures = self.failures.saturating_add(1);
            out.push(Output::SetTimer(Timer::IdleHold, delay));
        }
    }

    fn connect_retry(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.connect_retry.max(1)))
    }
}

/// The second connection with the peer being resolved (RFC 4271 §6.8).
#[derive(Debug)]
struct Collision {
    local: SocketAddr,
    remote: SocketAddr,
    direction: Direction,
    framer: Framer,
}

const fn cease_collision() -> Message {
    Message::Notification(Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION))
}

const fn attr_error(type_code: AttrType, action: AttrAction, reason: AttrErrorReason) -> AttrError {
    AttrError {
        type_code,
        offset: 0,
        action,
        reason,
    }
}

/// Whether a received next hop can be used: not unspecified, multicast, broadcast, or our
/// own address (RFC 4271 §6.3 "semantically incorrect" NEXT_HOP).
fn usable_next_hop(nh: IpAddr, local: IpAddr) -> bool {
    if nh == local || nh.is_unspecified() || nh.is_multicast() {
        return false;
    }
    match nh {
        IpAddr::V4(a) => !a.is_broadcast(),
        IpAddr::V6(_) => true,
    }
}
