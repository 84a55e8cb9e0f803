//! The engine proper: one task, one loop, every input and output of the tunnel.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use esp::{InboundSa, OutboundSa, Received, SaConfig, SadIn, Spi, Transform};
use ike::{
    packet::iana::ProtocolId, ChildSa, ChildSaSignal, ConnId, ConnectionConfig, DownReason,
    Endpoint, EndpointConfig, Event, Proposal, TrafficSelectorPolicy,
};
use rib::{NextHop, Route, Source, Table};
use tokio::{net::UdpSocket, sync::mpsc, time::Instant as TokioInstant};
use tun_rs::AsyncDevice;

use super::super::{
    metrics::{Counter, Metrics},
    model::{SaView, Snapshot, Traffic},
    outer::{OuterSockets, IKE_PORT, NAT_T_PORT},
};
use super::datapath::{self, HEADROOM, READS_PER_WAKE};
use crate::config::{self, Config, Mode};

/// The outer sockets of one local address.
#[derive(Debug, Clone)]
struct Sockets {
    ike: Arc<UdpSocket>,
    nat_t: Arc<UdpSocket>,
}

/// What the engine tells the rest of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineEvent {
    /// The IKE SA of a connection is established.
    IkeUp { conn: String, proposal: String },
    /// A child SA is installed and carries traffic.
    ChildUp {
        conn: String,
        spi_in: u32,
        spi_out: u32,
        proposal: String,
    },
    /// A child SA was removed.
    ChildDown {
        conn: String,
        spi_in: u32,
        spi_out: u32,
        reason: DownReason,
    },
    /// The IKE SA is gone (or never came up).
    IkeDown { conn: String, reason: DownReason },
    /// SAs and counters, every second and after every change.
    Snapshot(Snapshot),
}

/// What the rest of the daemon asks of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineCommand {
    /// The operator set the connection's admin state up: initiate it.
    Up(String),
    /// Admin state down: delete its IKE SA and children (DELETE to the peer), and stay down.
    Down(String),
}

/// The outbound side of one connection: the SA in use, and where its packets go.
struct Outbound {
    sa: OutboundSa,
    spi_in: u32,
    proposal: String,
    local: SocketAddr,
    remote: SocketAddr,
}

struct Conn {
    name: String,
    /// The child SA that seals outbound packets.
    out: Option<Outbound>,
    /// A rekeyed child whose outbound side waits until the old one is deleted (the responder
    /// of a rekey keeps sending on the old SA until then, as strongSwan does).
    pending_out: Option<Outbound>,
    /// Inner prefixes routed into this connection (kernel routes while a child is up).
    prefixes: Vec<ipnet::IpNet>,
    ike_proposal: String,
    /// Traffic of SAs already removed, so the totals survive rekeys.
    retired: Traffic,
}

/// The tunnel engine. Build it with [`Engine::new`], run it with [`Engine::run`].
pub(crate) struct Engine {
    ike: Endpoint,
    sad: SadIn,
    conns: HashMap<ConnId, Conn>,
    by_name: HashMap<String, ConnId>,
    /// Inner destination → connection: `[[route]]` prefixes and route-based inside /30s.
    routes: Table,
    sockets: HashMap<IpAddr, Sockets>,
    tun: Arc<AsyncDevice>,
    tun_name: String,
    events: mpsc::UnboundedSender<EngineEvent>,
    udp_received: HashMap<SocketAddr, Counter>,
    dropped_no_child_sa: Counter,
    children_installed: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tun", &self.tun_name)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine from a validated config; loads every PSK.
    pub(crate) fn new(
        cfg: &Config,
        outer: &OuterSockets,
        tun: Arc<AsyncDevice>,
        metrics: &Metrics,
        admin_down: &[String],
        events: mpsc::UnboundedSender<EngineEvent>,
    ) -> Result<Self> {
        let sockets = outer
            .by_address
            .iter()
            .map(|(ip, s)| {
                (
                    *ip,
                    Sockets {
                        ike: Arc::clone(&s.ike),
                        nat_t: Arc::clone(&s.nat_t),
                    },
                )
            })
            .collect();
        let mut routes = Table::new();
        for r in &cfg.routes {
            let route = Route::new(
                r.prefix,
                NextHop::Connection(r.connection.clone()),
                Source::Static,
            )
            .with_weight(r.weight);
            routes.insert(route);
        }
        let mut engine = Self {
            ike: Endpoint::new(
                EndpointConfig {
                    retransmit: ike::RetransmitConfig {
                        timeout: cfg.gateway.retransmit.timeout,
                        base: f64::from(cfg.gateway.retransmit.base_milli) / 1000.0,
                        tries: cfg.gateway.retransmit.tries,
                    },
                    ..EndpointConfig::default()
                },
                Box::new(ike::SystemRng),
            ),
            sad: SadIn::new(),
            conns: HashMap::new(),
            by_name: HashMap::new(),
            routes,
            sockets,
            tun,
            tun_name: cfg.gateway.tun.clone(),
            events,
            udp_received: metrics.udp_received.iter().cloned().collect(),
            dropped_no_child_sa: metrics.dropped_no_child_sa.clone(),
            children_installed: 0,
        };
        let now = std::time::Instant::now();
        for c in &cfg.connections {
            if let Mode::Route { tunnel_cidr, .. } = &c.mode {
                let inside = Route::new(
                    (*tunnel_cidr).into(),
                    NextHop::Connection(c.name.clone()),
                    Source::Connected,
                );
                engine.routes.insert(inside);
            }
            let prefixes = cfg
                .routes
                .iter()
                .filter(|r| r.connection == c.name)
                .map(|r| r.prefix)
                .collect();
            let mut ike_conn = ike_connection(c)?;
            // An operator's `conn down` outlives restarts: such a connection does not start.
            ike_conn.initiate &= !admin_down.contains(&c.name);
            let id = engine.ike.add_connection(now, ike_conn);
            engine.conns.insert(
                id,
                Conn {
                    name: c.name.clone(),
                    out: None,
                    pending_out: None,
                    prefixes,
                    ike_proposal: String::new(),
                    retired: Traffic::default(),
                },
            );
            engine.by_name.insert(c.name.clone(), id);
        }
        Ok(engine)
    }

    /// Runs until `shutdown` resolves; then deletes every SA politely (DELETE to the peers).
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<EngineCommand>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let tun = Arc::clone(&self.tun);
        // Every outer socket is read here, in the engine: no task per socket, no channel, no
        // copy per datagram. Buffers are allocated once, here.
        let mut sockets = Vec::new();
        for (ip, s) in &self.sockets {
            for (port, sock) in [(IKE_PORT, &s.ike), (NAT_T_PORT, &s.nat_t)] {
                let local = SocketAddr::new(*ip, port);
                match datapath::Socket::new(local, Arc::clone(sock)) {
                    Ok(s) => sockets.push(s),
                    Err(e) => tracing::error!(%local, "outer socket: {e}"),
                }
            }
        }
        let mut outbound = datapath::Outbound::new();
        let mut inbound = datapath::Inbound::new();
        let mut next_socket = 0;
        self.flush().await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let deadline = self
                .ike
                .poll_timeout()
                .map(TokioInstant::from_std)
                .unwrap_or_else(|| TokioInstant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(cmd) = commands.recv() => self.command(cmd),
                i = datapath::readable(&sockets, next_socket) => {
                    next_socket = i + 1;
                    if let Some(s) = sockets.get(i) {
                        self.handle_udp(s, &tun, &mut inbound).await;
                    }
                }
                Ok(()) = tun.readable() => {
                    self.handle_inner(&tun, &sockets, &mut outbound).await;
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.ike.handle_timeout(std::time::Instant::now());
                }
                _ = tick.tick() => self.emit(EngineEvent::Snapshot(self.snapshot())),
            }
            self.flush().await;
        }
        let now = std::time::Instant::now();
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.ike.remove_connection(now, id);
        }
        self.flush().await;
    }

    fn command(&mut self, cmd: EngineCommand) {
        let now = std::time::Instant::now();
        let (EngineCommand::Up(name) | EngineCommand::Down(name)) = &cmd;
        let Some(&id) = self.by_name.get(name) else {
            return;
        };
        match cmd {
            EngineCommand::Up(_) => self.ike.initiate(now, id),
            EngineCommand::Down(_) => self.ike.terminate(now, id),
        }
    }

    /// Reads `s` until it has nothing more (or [`READS_PER_WAKE`] receives): each receive
    /// brings up to a few hundred datagrams (recvmmsg of UDP-GRO batches); ESP is opened in
    /// place and the inner packets go to the TUN device in GRO-coalesced writes.
    async fn handle_udp(
        &mut self,
        s: &datapath::Socket,
        tun: &AsyncDevice,
        inbound: &mut datapath::Inbound,
    ) {
        let now = std::time::Instant::now();
        let received = self.udp_received.get(&s.local).cloned();
        // DPD only needs to know that the SA carried something since the last check: one
        // signal per SA and wake-up, not one per packet.
        let mut signalled: Option<Spi> = None;
        for _ in 0..READS_PER_WAKE {
            let n = match inbound.recv(s) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(local = %s.local, "receiving: {e}");
                    break;
                }
            };
            for j in 0..n {
                let Some((remote, stride, buf, mut tx)) = inbound.split(j) else {
                    continue;
                };
                for data in buf.chunks_mut(stride) {
                    if let Some(c) = &received {
                        c.inc();
                    }
                    if tx.full() {
                        tx.write(tun).await;
                    }
                    self.handle_datagram(now, s.local, remote, data, &mut tx, &mut signalled);
                }
            }
            // Written per receive, not per wake-up: a lone packet (a ping, a TCP ACK) must not
            // wait for the next, empty, receive; a bulk batch is already up to a few hundred
            // packets, GRO-coalesced into a few writes.
            inbound.write(tun).await;
        }
    }

    /// One datagram from `remote` to `local`: IKE to the endpoint, ESP opened in place and
    /// queued for the TUN device.
    fn handle_datagram(
        &mut self,
        now: std::time::Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &mut [u8],
        tx: &mut datapath::Tx<'_>,
        signalled: &mut Option<Spi>,
    ) {
        if local.port() == IKE_PORT {
            self.ike.handle_datagram(now, local, remote, data);
            return;
        }
        match self.sad.handle_datagram(data) {
            Ok(Received::Ike { range }) => {
                if let Some(msg) = data.get(range) {
                    self.ike.handle_datagram(now, local, remote, msg);
                }
            }
            Ok(Received::Ipv4 { spi, range, .. } | Received::Ipv6 { spi, range, .. }) => {
                if *signalled != Some(spi) {
                    *signalled = Some(spi);
                    self.ike
                        .handle_child_event(now, spi.0, ChildSaSignal::InboundTraffic);
                }
                if let Some(pkt) = data.get(range) {
                    tx.push(pkt);
                }
            }
            Ok(Received::Dummy { .. } | Received::NatKeepalive) => {}
            // Counted per reason by SadIn; a forged or stray packet is no event.
            Err(e) => tracing::trace!(%remote, "ESP dropped: {e}"),
        }
    }

    /// Reads the TUN device until it has nothing more (or [`READS_PER_WAKE`] reads). With
    /// offloads one read is a whole TSO super-packet, split into MTU-sized segments; each is
    /// looked up, sealed in place and queued into a UDP GSO send per destination.
    async fn handle_inner(
        &mut self,
        tun: &AsyncDevice,
        sockets: &[datapath::Socket],
        out: &mut datapath::Outbound,
    ) {
        for _ in 0..READS_PER_WAKE {
            let n = match out.read(tun) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // A malformed super-packet from the kernel (or a read error): skip it.
                    tracing::debug!("reading {}: {e}", self.tun_name);
                    continue;
                }
            };
            // The segments of one super-packet share a destination: look it up once.
            let mut last: Option<(IpAddr, Option<ConnId>)> = None;
            for i in 0..n {
                let Some(&len) = out.sizes.get(i) else {
                    break;
                };
                let Some(buf) = out.segments.get_mut(i) else {
                    break;
                };
                let Some(dst) = buf
                    .get(HEADROOM..HEADROOM + len)
                    .and_then(inner_destination)
                else {
                    continue;
                };
                let conn = match last {
                    Some((d, c)) if d == dst => c,
                    _ => {
                        let c = self.connection_for(dst);
                        last = Some((dst, c));
                        c
                    }
                };
                let Some(conn) = conn else {
                    continue;
                };
                let Some(o) = self.conns.get_mut(&conn).and_then(|c| c.out.as_mut()) else {
                    // No child SA: the packet is dropped rather than sent anywhere unencrypted.
                    self.dropped_no_child_sa.inc();
                    continue;
                };
                let end = HEADROOM + len;
                let tail = o.sa.tailroom(len);
                let Some(area) = buf.get_mut(..end + tail) else {
                    continue;
                };
                let Ok(sealed) = o.sa.seal(area, HEADROOM..end) else {
                    continue;
                };
                let (local, remote) = (o.local.ip(), o.remote);
                while let Some(ev) = o.sa.poll_event() {
                    let signal = limit_signal(ev);
                    let spi_in = o.spi_in;
                    self.ike
                        .handle_child_event(std::time::Instant::now(), spi_in, signal);
                }
                out.push(sockets, i, sealed.packet, local, remote).await;
            }
            out.send(sockets).await;
        }
    }

    /// The connection routed to for inner destination `dst` (`[[route]]`s, route-based
    /// inside addresses).
    fn connection_for(&self, dst: IpAddr) -> Option<ConnId> {
        let sel = self.routes.lookup(dst)?;
        let NextHop::Connection(name) = &sel.primary().next_hop else {
            return None;
        };
        self.by_name.get(name).copied()
    }

    /// Sends what IKE wants sent and applies what it decided.
    async fn flush(&mut self) {
        while let Some((spi, ev)) = self.sad.poll_event() {
            let signal = limit_signal(ev);
            self.ike
                .handle_child_event(std::time::Instant::now(), spi.0, signal);
        }
        while let Some(t) = self.ike.poll_transmit() {
            let Some(s) = self.sockets.get(&t.local.ip()) else {
                continue;
            };
            let sock = if t.local.port() == 500 {
                &s.ike
            } else {
                &s.nat_t
            };
            let result = if t.non_esp_marker {
                let mut b = Vec::with_capacity(4 + t.payload.len());
                b.extend_from_slice(&esp::encap::NON_ESP_MARKER);
                b.extend_from_slice(&t.payload);
                sock.send_to(&b, t.remote).await
            } else {
                sock.send_to(&t.payload, t.remote).await
            };
            if let Err(e) = result {
                tracing::debug!(remote = %t.remote, "sending IKE: {e}");
            }
        }
        let mut changed = false;
        while let Some(ev) = self.ike.poll_event() {
            self.apply(ev);
            changed = true;
        }
        if changed {
            self.emit(EngineEvent::Snapshot(self.snapshot()));
        }
    }

    fn apply(&mut self, ev: Event) {
        match ev {
            Event::IkeUp { conn, proposal, .. } => {
                let name = self.name(conn);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.ike_proposal.clone_from(&proposal);
                }
                tracing::info!(conn = %name, %proposal, "IKE SA established");
                self.emit(EngineEvent::IkeUp {
                    conn: name,
                    proposal,
                });
            }
            Event::ChildUp {
                conn,
                child,
                replaces,
            } => {
                let name = self.name(conn);
                match self.install(conn, &child, replaces.is_some()) {
                    Ok(()) => {
                        tracing::info!(conn = %name, spi_in = format_args!("{:08x}", child.spi_in), spi_out = format_args!("{:08x}", child.spi_out), proposal = %child.proposal, "child SA installed");
                        self.emit(EngineEvent::ChildUp {
                            conn: name,
                            spi_in: child.spi_in,
                            spi_out: child.spi_out,
                            proposal: child.proposal.clone(),
                        });
                    }
                    Err(e) => tracing::error!(conn = %name, "installing child SA: {e:#}"),
                }
            }
            Event::ChildDown {
                conn,
                spi_in,
                spi_out,
                reason,
            } => {
                let name = self.name(conn);
                let inbound = self.sad.remove(Spi(spi_in));
                let last = if let Some(c) = self.conns.get_mut(&conn) {
                    if let Some(sa) = inbound {
                        c.retired.bytes_in += sa.bytes();
                        c.retired.packets_in += sa.packets();
                    }
                    if c.out.as_ref().is_some_and(|o| o.spi_in == spi_in) {
                        if let Some(o) = &c.out {
                            c.retired.bytes_out += o.sa.bytes();
                            c.retired.packets_out += o.sa.packets();
                        }
                        c.out = c.pending_out.take();
                    }
                    c.out.is_none()
                } else {
                    false
                };
                if last {
                    self.set_kernel_routes(conn, false);
                }
                tracing::info!(conn = %name, spi_in = format_args!("{spi_in:08x}"), %reason, "child SA removed");
                self.emit(EngineEvent::ChildDown {
                    conn: name,
                    spi_in,
                    spi_out,
                    reason,
                });
            }
            Event::IkeDown { conn, reason } => {
                let name = self.name(conn);
                tracing::warn!(conn = %name, %reason, "IKE SA down");
                self.emit(EngineEvent::IkeDown { conn: name, reason });
            }
            Event::PeerMoved { conn, remote } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    for o in [&mut c.out, &mut c.pending_out].into_iter().flatten() {
                        o.remote = SocketAddr::new(remote.ip(), remote.port());
                    }
                }
            }
        }
    }

    fn install(&mut self, conn: ConnId, child: &ChildSa, rekey: bool) -> Result<()> {
        let transform = transform_of(child)?;
        // A byte lifetime: rekey at 90 % (strongSwan's rekey_bytes sits below life_bytes the
        // same way), stop using the SA at 100 %.
        let limits = esp::Limits {
            soft_bytes: child.lifetime_bytes.map(|b| b - b / 10),
            hard_bytes: child.lifetime_bytes,
            ..esp::Limits::default()
        };
        let mut cfg_in = SaConfig::new(Spi(child.spi_in), transform);
        cfg_in.esn = child.esn;
        cfg_in.limits = limits;
        let mut cfg_out = SaConfig::new(Spi(child.spi_out), transform);
        cfg_out.esn = child.esn;
        cfg_out.limits = limits;
        let inbound = InboundSa::new(&cfg_in, child.keys_in.expose()).context("inbound SA")?;
        let sa = OutboundSa::new(&cfg_out, child.keys_out.expose()).context("outbound SA")?;
        self.sad.insert(inbound).context("inbound SA table")?;
        let c = self
            .conns
            .get_mut(&conn)
            .context("child SA of an unknown connection")?;
        // The socket pair the IKE SA floated to: ESP always goes to the peer's 4500.
        let (local, remote) = c
            .out
            .as_ref()
            .map(|o| (o.local, o.remote))
            .or_else(|| {
                self.ike
                    .sas()
                    .find(|s| s.conn == conn)
                    .map(|s| (s.local, s.remote))
            })
            .context("no IKE SA for the child")?;
        let out = Outbound {
            sa,
            spi_in: child.spi_in,
            proposal: child.proposal.clone(),
            local: SocketAddr::new(local.ip(), 4500),
            remote: SocketAddr::new(
                remote.ip(),
                if remote.port() == 500 {
                    4500
                } else {
                    remote.port()
                },
            ),
        };
        if rekey && child.delay_outbound && c.out.is_some() {
            c.pending_out = Some(out);
        } else {
            c.out = Some(out);
        }
        self.set_kernel_routes(conn, true);
        self.children_installed += 1;
        Ok(())
    }

    /// What the API and metrics show: installed SAs with their counters, per-connection
    /// totals across rekeys, receive drops.
    fn snapshot(&self) -> Snapshot {
        let mut sas = Vec::new();
        let mut traffic = Vec::new();
        for c in self.conns.values() {
            let mut t = c.retired.clone();
            for o in [&c.out, &c.pending_out].into_iter().flatten() {
                let inbound = self.sad.get(Spi(o.spi_in));
                let (bytes_in, packets_in) =
                    inbound.map_or((0, 0), |sa| (sa.bytes(), sa.packets()));
                t.bytes_in += bytes_in;
                t.packets_in += packets_in;
                t.bytes_out += o.sa.bytes();
                t.packets_out += o.sa.packets();
                sas.push(SaView {
                    connection: c.name.clone(),
                    ike_proposal: c.ike_proposal.clone(),
                    proposal: o.proposal.clone(),
                    spi_in: format!("{:08x}", o.spi_in),
                    spi_out: format!("{:08x}", o.sa.spi().0),
                    bytes_in,
                    packets_in,
                    bytes_out: o.sa.bytes(),
                    packets_out: o.sa.packets(),
                });
            }
            traffic.push((c.name.clone(), t));
        }
        sas.sort_by(|a, b| (&a.connection, &a.spi_in).cmp(&(&b.connection, &b.spi_in)));
        traffic.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            sas,
            traffic,
            esp_drops: self
                .sad
                .drop_counters()
                .iter()
                .map(|(r, n)| (r.as_str(), n))
                .collect(),
            children_installed: self.children_installed,
        }
    }

    /// Kernel routes for the connection's `[[route]]` prefixes through the TUN device.
    fn set_kernel_routes(&self, conn: ConnId, up: bool) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        for p in &c.prefixes {
            let p = p.to_string();
            let args: Vec<&str> = if up {
                vec![
                    "route",
                    "replace",
                    &p,
                    "dev",
                    &self.tun_name,
                    "proto",
                    KERNEL_PROTO,
                ]
            } else {
                vec![
                    "route",
                    "del",
                    &p,
                    "dev",
                    &self.tun_name,
                    "proto",
                    KERNEL_PROTO,
                ]
            };
            if let Err(e) = crate::netns::ip(&args) {
                tracing::warn!(conn = %c.name, "kernel route {p}: {e:#}");
            }
        }
    }

    fn name(&self, conn: ConnId) -> String {
        self.conns
            .get(&conn)
            .map_or_else(|| "?".to_owned(), |c| c.name.clone())
    }

    fn emit(&self, ev: EngineEvent) {
        // The daemon may have stopped listening while shutting down; nothing to do then.
        let _ = self.events.send(ev);
    }
}

/// What an ESP lifetime event asks of IKE: rekey (soft) or delete (hard).
fn limit_signal(ev: esp::SaEvent) -> ChildSaSignal {
    match ev {
        esp::SaEvent::SoftLimit(_) => ChildSaSignal::SoftLimit,
        esp::SaEvent::HardLimit(_) => ChildSaSignal::HardLimit,
    }
}

/// Marks the daemon's kernel routes (the lab uses 86).
const KERNEL_PROTO: &str = "87";

fn inner_destination(pkt: &[u8]) -> Option<IpAddr> {
    match pkt.first()? >> 4 {
        4 => {
            let b: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// The `esp` transform for a negotiated child suite.
fn transform_of(child: &ChildSa) -> Result<Transform> {
    let encr = child.suite.encr;
    let want = (
        encr.id().0,
        encr.key_length_attr(),
        child.suite.integ.map(|i| i.id().0),
    );
    Transform::ALL
        .into_iter()
        .find(|t| {
            let ids = t.ikev2_ids();
            (ids.encr, ids.key_bits, ids.integ) == want
        })
        .with_context(|| format!("no ESP transform for {}", child.proposal))
}

/// The IKE view of one `[[connection]]`.
fn ike_connection(c: &config::Connection) -> Result<ConnectionConfig> {
    let proposals = |kind: ProtocolId, list: &[String]| -> Result<Vec<Proposal>> {
        list.iter()
            .map(|p| Proposal::parse(kind, p).map_err(|e| anyhow::anyhow!("{p}: {e}")))
            .collect()
    };
    let psk = c
        .psk
        .load()
        .with_context(|| format!("connection {}: pre-shared key", c.name))?;
    Ok(ConnectionConfig {
        name: c.name.clone(),
        local: SocketAddr::new(c.local_address, IKE_PORT),
        remote: SocketAddr::new(c.peer_address, IKE_PORT),
        local_id: identity(&c.local_id),
        remote_id: identity(&c.peer_id),
        psk: ike::Secret::new(psk.expose().to_vec()),
        ike_proposals: proposals(ProtocolId::IKE, &c.ike_proposals)?,
        esp_proposals: proposals(ProtocolId::ESP, &c.esp_proposals)?,
        ts: match &c.mode {
            Mode::Route { .. } => TrafficSelectorPolicy::RouteBased,
            Mode::Policy {
                local_subnets,
                remote_subnets,
            } => TrafficSelectorPolicy::Policy {
                local: local_subnets.clone(),
                remote: remote_subnets.clone(),
            },
        },
        ike_lifetime: c.lifetimes.ike,
        child_lifetime: c.lifetimes.child,
        child_lifetime_bytes: c.lifetimes.child_bytes,
        rekey_margin: c.lifetimes.rekey_margin,
        rand_jitter: c.lifetimes.rand_jitter,
        dpd_interval: (!c.dpd.interval.is_zero()).then_some(c.dpd.interval),
        dpd_retries: c.dpd.retries,
        dpd_action: match c.dpd.action {
            config::DpdAction::Restart => ike::DpdAction::Restart,
            config::DpdAction::Clear => ike::DpdAction::Clear,
        },
        initiate: c.initiate,
    })
}

fn identity(id: &config::Identity) -> ike::packet::payload::Identity {
    use ike::packet::payload::Identity as I;
    match id {
        config::Identity::Ipv4(a) => I::Ipv4(*a),
        config::Identity::Ipv6(a) => I::Ipv6(*a),
        config::Identity::Fqdn(s) => I::Fqdn(s.clone()),
        config::Identity::KeyId(b) => I::KeyId(b.clone()),
    }
}
