//! The engine proper: one thread, one loop, every input and output of the tunnel.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use esp::{InboundSa, OutboundSa, Received, SaConfig, SadIn, Spi, Transform};
use ike::{
    packet::iana::ProtocolId, ChildSa, ChildSaSignal, ConnId, ConnectionConfig, DownReason,
    Endpoint, EndpointConfig, Event, Proposal, TrafficSelectorPolicy,
};
use rib::{NextHop, Route, Source, Table};
use tokio::sync::mpsc;
use tun_rs::SyncDevice;

use super::datapath::{self, HEADROOM, READS_PER_WAKE};
use super::{
    super::{
        metrics::{Counter, Metrics},
        model::{SaView, Snapshot, Traffic},
        outer::{self, OuterSockets, IKE_PORT, NAT_T_PORT},
    },
    health::{self, HealthCheck, Transition},
    inner,
    kernel::KernelRoutes,
    reactor::{self, Inbox, Next, Reactor, Ready},
};
use crate::config::{self, Config, HealthPolicy, Mode, OnTunnelDown};

/// After a change, a snapshot goes out at once unless one went out less than this ago; the
/// next second's tick then carries it. A snapshot costs O(SAs) to build and is queued to the
/// API whole, so one per change made 1,000 tunnels coming up cost O(n²) time and queued
/// hundreds of full snapshots (bench/tunnels.sh).
const SNAPSHOT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// IKE hears that an inbound SA carries traffic at most this often while it keeps carrying
/// it: DPD only asks whether the peer was heard from within its interval (seconds), and each
/// signal costs two of IKE's table lookups, cold on an idle tunnel's every packet.
const HEARD_EVERY: Duration = Duration::from_secs(1);

/// Sockets connected to peers per local address, at most; the rest share the address's
/// socket. Before Linux 6.13 the kernel matches a datagram for an address and port against
/// every socket bound to them in turn, so thousands would cost every packet a long scan.
const MAX_CONNECTED: usize = 64;

/// How often the API's snapshot is refreshed when nothing changes.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

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
    /// The health check's probes went unanswered `retries` times in a row; `revoked` when
    /// the connection's routes were taken out for it.
    HealthFailed { conn: String, revoked: bool },
    /// A probe was answered again; routes a failure revoked are back.
    HealthRecovered { conn: String },
    /// SAs and counters, every second and after a change (at most every
    /// [`SNAPSHOT_MIN_INTERVAL`]).
    Snapshot(Snapshot),
}

/// What the rest of the daemon asks of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineCommand {
    /// The operator set the connection's admin state up: initiate it.
    Up(String),
    /// Admin state down: delete its IKE SA and children (DELETE to the peer), and stay down.
    Down(String),
    /// A reload's changes.
    Reconfigure(Box<Reconfigure>),
    /// The prefixes BGP selected through this connection now (all of them, replacing the
    /// last set): routed into it, in the table and in the kernel.
    SetLearned {
        conn: String,
        prefixes: Vec<ipnet::IpNet>,
    },
    /// The daemon is stopping: delete every SA (DELETE to the peers) and return.
    Stop,
}

/// What a reload changes in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reconfigure {
    /// Connections to delete (removed, or changed: deleted, then added again).
    pub(crate) remove: Vec<String>,
    /// Connections to add and start (unless held down by the operator).
    pub(crate) add: Vec<(config::Connection, bool)>,
    /// The whole new `[[route]]` list.
    pub(crate) routes: Vec<config::Route>,
    /// The whole new connection list.
    pub(crate) connections: Vec<config::Connection>,
}

/// The outbound side of one connection: the SA in use, and where its packets go.
struct Outbound {
    sa: OutboundSa,
    spi_in: u32,
    proposal: String,
    local: SocketAddr,
    /// The index of `local`'s socket in the engine's list.
    socket: Option<usize>,
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
    /// `on_tunnel_down = "block"`: the kernel routes stay while the tunnel is down, so traffic
    /// reaches the engine and is dropped rather than take another way in the clear.
    block: bool,
    /// Whether `prefixes` are in the kernel now.
    routed: bool,
    /// The probe through the tunnel, with what a failure does.
    health: Option<(HealthCheck, HealthPolicy)>,
    /// A failed health check took the routes out (`revoke_routes`).
    revoked: bool,
    /// Prefixes learned by BGP over this connection ([`EngineCommand::SetLearned`]).
    learned: Vec<ipnet::IpNet>,
    ike_proposal: String,
    /// Traffic of SAs already removed, so the totals survive rekeys.
    retired: Traffic,
}

/// The tunnel engine. Build it with [`Engine::new`], run it with [`Engine::run`].
pub(crate) struct Engine {
    ike: Endpoint,
    sad: SadIn,
    /// Boxed: a hash table keeps up to twice as many slots as entries, each the size of an
    /// entry (~700 bytes inline).
    conns: HashMap<ConnId, Box<Conn>>,
    by_name: HashMap<String, ConnId>,
    /// The connection of each installed child SA whose connection runs a health check, by
    /// inbound SPI: a probe's reply is matched against the check of the SA it came through,
    /// not every connection's. Where no connection runs one, a decrypted echo reply (an idle
    /// tunnel's every ping) costs no lookup at all.
    probed_children: HashMap<u32, ConnId>,
    /// Inner destination → connection: `[[route]]` prefixes and route-based inside /30s.
    routes: Table,
    /// Every outer socket: the shared ones of each local address, then those connected to a
    /// peer ([`Engine::sync_connected`]).
    sockets: Vec<Option<Arc<datapath::Socket>>>,
    /// A local address and port's index in `sockets`: its shared socket.
    socket_of: HashMap<SocketAddr, usize>,
    /// The index of the socket connected from a local address and port to a peer's.
    connected: HashMap<(SocketAddr, SocketAddr), usize>,
    /// An outbound SA came, went or moved: the connected sockets are due a look.
    resync: bool,
    tun: SyncDevice,
    tun_name: String,
    /// The TUN device's MTU: what the tunnel carries whole, and the MSS that fits it.
    mtu: u16,
    kernel: KernelRoutes,
    events: mpsc::UnboundedSender<EngineEvent>,
    dropped_no_child_sa: Counter,
    children_installed: u64,
    /// When a change last sent a snapshot ([`SNAPSHOT_MIN_INTERVAL`]).
    last_snapshot: Option<Instant>,
    /// The last inner destination looked up and its connection, until the table or the
    /// connections change: the segments of a super-packet, and the packets of a flow, share
    /// a destination, and the lookup (prefix trie, then the connection by name) was a tenth
    /// of the engine's time on an idle ping's path.
    last_route: Option<(IpAddr, Option<ConnId>)>,
    /// The inbound SA whose traffic IKE was last told of, and when ([`HEARD_EVERY`]).
    heard: Option<(Spi, Instant)>,
    /// An input may have moved the deadline (IKE's timers, the health probes): recompute
    /// it before waiting again. IKE's contract asks for it after every input; the ESP data
    /// path's inputs (traffic seen on an SA) move none, so a packet costs no O(SAs) scan.
    rearm: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tun", &self.tun_name)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine from a validated config, with the sockets and TUN device it will
    /// own; loads every PSK.
    pub(crate) fn new(
        cfg: &Config,
        outer: OuterSockets,
        tun: SyncDevice,
        metrics: &Metrics,
        admin_down: &[String],
        events: mpsc::UnboundedSender<EngineEvent>,
    ) -> Result<Self> {
        let udp_received: HashMap<SocketAddr, Counter> =
            metrics.udp_received.iter().cloned().collect();
        let mut sockets = Vec::new();
        for (ip, s) in outer.by_address {
            for (port, sock) in [(IKE_PORT, s.ike), (NAT_T_PORT, s.nat_t)] {
                let local = SocketAddr::new(ip, port);
                let received = udp_received.get(&local).cloned();
                sockets.push(Some(Arc::new(
                    datapath::Socket::new(local, sock, None, received)
                        .with_context(|| format!("outer socket {local}"))?,
                )));
            }
        }
        let socket_of = sockets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((s.as_ref()?.local, i)))
            .collect();
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
            probed_children: HashMap::new(),
            routes: Table::new(),
            sockets,
            socket_of,
            connected: HashMap::new(),
            resync: false,
            tun,
            tun_name: cfg.gateway.tun.clone(),
            mtu: cfg.gateway.mtu,
            kernel: KernelRoutes::new(
                &cfg.gateway.tun,
                cfg.gateway.route_metric,
                cfg.connections.iter().map(|c| c.peer_address).collect(),
            ),
            events,
            dropped_no_child_sa: metrics.dropped_no_child_sa.clone(),
            children_installed: 0,
            last_snapshot: None,
            last_route: None,
            heard: None,
            rearm: true,
        };
        let now = Instant::now();
        for c in &cfg.connections {
            // An operator's `conn down` outlives restarts: such a connection does not start.
            engine.add_conn(c, admin_down.contains(&c.name), now)?;
        }
        engine.set_routes(&cfg.routes, &cfg.connections);
        Ok(engine)
    }

    /// The epoll set [`Engine::run`] waits in: made before the engine's thread starts, so
    /// that a failure stops the daemon at start.
    pub(crate) fn reactor(&self, inbox: &Inbox) -> std::io::Result<Reactor> {
        let sockets = self
            .sockets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, &s.as_ref()?.sock)));
        Reactor::new(&self.tun, sockets, inbox)
    }

    /// Runs until [`EngineCommand::Stop`] (or until it finds, on a wake-up for commands, that
    /// nothing can send any more); then deletes every SA politely (DELETE to the peers).
    /// Blocking: the engine's thread.
    pub(crate) fn run(mut self, mut reactor: Reactor, inbox: Inbox) {
        // Buffers are allocated once, here.
        let mut outbound = datapath::Outbound::new(self.mtu, self.tun.tcp_gso());
        let mut inbound = datapath::Inbound::new(self.tun.tcp_gso());
        // Both allocated here, side by side: every wake-up touches both.
        let mut ready = Vec::with_capacity(reactor::EVENTS);
        let mut last_ready = Vec::with_capacity(reactor::EVENTS);
        let mut deadline = self.deadline();
        let mut next_snapshot = Instant::now() + SNAPSHOT_INTERVAL;
        // `last_ready` is what was readable on the last pass: a source readable again is
        // busy (traffic is flowing) and is drained; one that was not gets a single read (see
        // below).
        self.flush();
        'run: loop {
            // The deadline moves only when `rearm` says an input may have moved it: computing
            // it scans every connection.
            if std::mem::take(&mut self.rearm) {
                deadline = self.deadline();
            }
            reactor.wait(deadline.min(next_snapshot), &inbox, &mut ready);
            // Each source gives at most a bounded batch per pass (`READS_PER_WAKE`), so no
            // direction starves the other (TCP's ACKs), nor the commands and timers below.
            for &source in &ready {
                // A source is drained only when it was readable on the last pass too (traffic
                // is flowing); otherwise it gets one read, for one packet, and the
                // level-triggered epoll set says if more came. A lone packet (an idle ping, a
                // keepalive) then costs neither a read that finds nothing nor the set-up of a
                // batch it does not fill.
                let busy = last_ready.contains(&source);
                match source {
                    Ready::Tun => self.handle_inner(&mut outbound, busy),
                    Ready::TunFailed => {
                        tracing::error!(tun = %self.tun_name, "the TUN device failed (deleted?); no more inside traffic");
                        reactor.remove_tun(&self.tun);
                    }
                    Ready::Socket(i) => {
                        if let Some(s) = self.sockets.get(i).cloned().flatten() {
                            self.handle_udp(&s, &mut inbound, busy);
                        }
                    }
                    Ready::Commands => loop {
                        match inbox.next() {
                            Next::Command(EngineCommand::Stop) | Next::Closed => break 'run,
                            Next::Command(cmd) => self.command(cmd),
                            Next::Empty => break,
                        }
                    },
                }
            }
            std::mem::swap(&mut last_ready, &mut ready);
            let now = Instant::now();
            if now >= deadline {
                self.ike.handle_timeout(now);
                self.health_tick(now);
                self.rearm = true;
            }
            if now >= next_snapshot {
                next_snapshot = now + SNAPSHOT_INTERVAL;
                self.emit(EngineEvent::Snapshot(self.snapshot()));
            }
            self.flush();
            self.sync_connected(&reactor, &mut inbound);
        }
        let now = Instant::now();
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for &id in &ids {
            self.ike.remove_connection(now, id);
        }
        self.flush();
        // The TUN device's routes go with it, but not the pinned host routes to peers.
        for id in ids {
            self.set_kernel_routes(id, false);
        }
    }

    fn command(&mut self, cmd: EngineCommand) {
        let now = Instant::now();
        self.rearm = true;
        match cmd {
            EngineCommand::Up(name) => {
                if let Some(&id) = self.by_name.get(&name) {
                    self.ike.initiate(now, id);
                }
            }
            EngineCommand::Down(name) => {
                if let Some(&id) = self.by_name.get(&name) {
                    self.ike.terminate(now, id);
                }
            }
            // The loop stops on it before it gets here.
            EngineCommand::Stop => {}
            EngineCommand::SetLearned { conn, prefixes } => {
                if let Some(&id) = self.by_name.get(&conn) {
                    self.set_learned(id, prefixes);
                }
            }
            EngineCommand::Reconfigure(r) => self.reconfigure(&r, now),
        }
    }

    /// Adds a connection (and starts it unless `admin_down`); its routes come with
    /// [`Engine::set_routes`].
    fn add_conn(&mut self, c: &config::Connection, admin_down: bool, now: Instant) -> Result<()> {
        let mut ike_conn = ike_connection(c)?;
        ike_conn.initiate &= !admin_down;
        let id = self.ike.add_connection(now, ike_conn);
        self.conns.insert(
            id,
            Box::new(Conn {
                name: c.name.clone(),
                out: None,
                pending_out: None,
                prefixes: Vec::new(),
                block: c.on_tunnel_down == OnTunnelDown::Block,
                routed: false,
                health: c.health_check.as_ref().map(|h| {
                    // Distinct per connection, so replies are never mistaken.
                    let ident = 0x7600 | (id.0 as u16 & 0xff);
                    (HealthCheck::new(h, ident, now), h.policy)
                }),
                revoked: false,
                learned: Vec::new(),
                ike_proposal: String::new(),
                retired: Traffic::default(),
            }),
        );
        self.by_name.insert(c.name.clone(), id);
        self.last_route = None;
        Ok(())
    }

    /// Deletes a connection: DELETE to the peer, its SAs and kernel routes gone.
    fn remove_conn(&mut self, name: &str, now: Instant) {
        let Some(&id) = self.by_name.get(name) else {
            return;
        };
        self.ike.remove_connection(now, id);
        // Its Down events now, while the connection still has its name and routes.
        while let Some(ev) = self.ike.poll_event() {
            self.apply(ev);
        }
        self.set_kernel_routes(id, false);
        self.set_learned(id, Vec::new());
        self.conns.remove(&id);
        self.by_name.remove(name);
        self.last_route = None;
        self.resync = true;
    }

    /// After outbound SAs came, went or moved: a socket connected to each peer ESP goes to
    /// (at most [`MAX_CONNECTED`] per local address), the sockets of peers gone closed (what
    /// they hold read first), and every outbound SA pointed at its peer's socket, or the
    /// shared one. Connected sockets only speed packets up; nothing depends on them: what
    /// arrives elsewhere is read from the shared socket, and a send to an address the socket
    /// is not connected to names the address.
    fn sync_connected(&mut self, reactor: &Reactor, inbound: &mut datapath::Inbound) {
        if !std::mem::take(&mut self.resync) {
            return;
        }
        let wanted: HashSet<(SocketAddr, SocketAddr)> = self
            .conns
            .values()
            .flat_map(|c| [&c.out, &c.pending_out])
            .flatten()
            .map(|o| (o.local, o.remote))
            .collect();
        let gone: Vec<_> = self
            .connected
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in gone {
            let Some(s) = self
                .connected
                .remove(&key)
                .and_then(|i| self.sockets.get_mut(i))
                .and_then(Option::take)
            else {
                continue;
            };
            reactor.remove_socket(&s.sock);
            self.handle_udp(&s, inbound, true);
        }
        let mut per_address: HashMap<SocketAddr, usize> = HashMap::new();
        for (local, _) in self.connected.keys() {
            *per_address.entry(*local).or_default() += 1;
        }
        for (local, remote) in wanted {
            let n = per_address.entry(local).or_default();
            if *n >= MAX_CONNECTED || self.connected.contains_key(&(local, remote)) {
                continue;
            }
            let received = self.shared_socket(local).and_then(|s| s.received.clone());
            let i = self
                .sockets
                .iter()
                .position(Option::is_none)
                .unwrap_or(self.sockets.len());
            let opened = outer::connect(local, remote)
                .and_then(|sock| datapath::Socket::new(local, sock, Some(remote), received))
                .and_then(|s| reactor.add_socket(i, &s.sock).map(|()| s));
            match opened {
                Ok(s) => {
                    if i == self.sockets.len() {
                        self.sockets.push(None);
                    }
                    self.sockets[i] = Some(Arc::new(s));
                    self.connected.insert((local, remote), i);
                    *n += 1;
                }
                // The shared socket serves the peer as well, a little slower.
                Err(e) => tracing::debug!(%local, %remote, "connecting a socket to the peer: {e}"),
            }
        }
        for c in self.conns.values_mut() {
            for o in [&mut c.out, &mut c.pending_out].into_iter().flatten() {
                o.socket = self
                    .connected
                    .get(&(o.local, o.remote))
                    .or_else(|| self.socket_of.get(&o.local))
                    .copied();
            }
        }
    }

    /// The forwarding table from `[[route]]`s and the route-based connections' inside /30s;
    /// kernel routes follow, prefix by prefix, for connections whose routes are in.
    fn set_routes(&mut self, routes: &[config::Route], conns: &[config::Connection]) {
        let mut table = Table::new();
        for r in routes {
            table.insert(
                Route::new(
                    r.prefix,
                    NextHop::Connection(r.connection.clone()),
                    Source::Static,
                )
                .with_weight(r.weight),
            );
        }
        for c in conns {
            if let Mode::Route { tunnel_cidr, .. } = &c.mode {
                table.insert(Route::new(
                    (*tunnel_cidr).into(),
                    NextHop::Connection(c.name.clone()),
                    Source::Connected,
                ));
            }
        }
        // BGP's routes outlive a reload; the session that learned them is not the reload's.
        for c in self.conns.values() {
            for p in &c.learned {
                table.insert(Route::new(
                    *p,
                    NextHop::Connection(c.name.clone()),
                    Source::Bgp,
                ));
            }
        }
        self.routes = table;
        self.last_route = None;
        self.kernel
            .set_peers(conns.iter().map(|c| c.peer_address).collect());
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            let want: Vec<ipnet::IpNet> = routes
                .iter()
                .filter(|r| r.connection == c.name)
                .map(|r| r.prefix)
                .collect();
            if c.routed {
                let gone: Vec<_> = c
                    .prefixes
                    .iter()
                    .filter(|p| !want.contains(p))
                    .copied()
                    .collect();
                let new: Vec<_> = want
                    .iter()
                    .filter(|p| !c.prefixes.contains(p))
                    .copied()
                    .collect();
                self.kernel.remove(&gone);
                self.kernel.add(&new);
            }
            c.prefixes = want;
            if c.block {
                self.set_kernel_routes(id, true);
            }
        }
    }

    /// A reload: removed and changed connections go (DELETE to their peers), added and
    /// changed ones come (and start), routes are reprogrammed; every other connection's SAs
    /// are left alone.
    fn reconfigure(&mut self, r: &Reconfigure, now: Instant) {
        for name in &r.remove {
            self.remove_conn(name, now);
        }
        for (c, admin_down) in &r.add {
            if let Err(e) = self.add_conn(c, *admin_down, now) {
                tracing::error!(conn = %c.name, "reload: {e:#}");
            }
        }
        self.set_routes(&r.routes, &r.connections);
    }

    /// The prefixes BGP selected through this connection now: into the forwarding table and,
    /// through the shared count of [`KernelRoutes`], into the kernel (a prefix a `[[route]]`
    /// also routes keeps its kernel route while either has it).
    fn set_learned(&mut self, conn: ConnId, prefixes: Vec<ipnet::IpNet>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut prefixes: Vec<ipnet::IpNet> = prefixes.iter().map(ipnet::IpNet::trunc).collect();
        prefixes.sort();
        prefixes.dedup();
        let old = std::mem::replace(&mut c.learned, prefixes.clone());
        let name = c.name.clone();
        let route = |p: ipnet::IpNet| Route::new(p, NextHop::Connection(name.clone()), Source::Bgp);
        let gone: Vec<ipnet::IpNet> = old
            .iter()
            .filter(|p| prefixes.binary_search(p).is_err())
            .copied()
            .collect();
        let new: Vec<ipnet::IpNet> = prefixes
            .iter()
            .filter(|p| old.binary_search(p).is_err())
            .copied()
            .collect();
        for p in &gone {
            self.routes.remove(&route(*p));
        }
        for p in &new {
            self.routes.insert(route(*p));
        }
        self.last_route = None;
        self.kernel.remove(&gone);
        self.kernel.add(&new);
        tracing::info!(conn = %name, learned = prefixes.len(), "BGP routes into the connection");
    }

    /// Reads `s`: when `busy`, until it has nothing more (or [`READS_PER_WAKE`] receives), each
    /// receive bringing up to a few hundred datagrams (recvmmsg of UDP-GRO batches); else one
    /// receive of one buffer, which a lone datagram fills without a batch's set-up, and which
    /// goes on into batches if it brought a GRO batch instead. ESP is opened in place and the
    /// inner packets go to the TUN device in GRO-coalesced writes. A receive that fills fewer
    /// buffers than it offered found the socket empty: no further receive is tried (it would
    /// find nothing; the epoll set reports what comes later).
    fn handle_udp(&mut self, s: &datapath::Socket, inbound: &mut datapath::Inbound, busy: bool) {
        // Read when first needed, after the packet that woke the engine is on its way.
        let mut now = None;
        let mut batch = busy;
        for _ in 0..READS_PER_WAKE {
            let n = match inbound.recv(s, batch) {
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
                    if let Some(c) = &s.received {
                        c.inc();
                    }
                    if tx.full() {
                        tx.write(&self.tun);
                    }
                    self.handle_datagram(&mut now, s.local, remote, data, &mut tx);
                }
            }
            // Written per receive, not per wake-up: a lone packet (a ping, a TCP ACK) must not
            // wait for the next receive; a bulk batch is already up to a few hundred packets,
            // GRO-coalesced into a few writes.
            inbound.write(&self.tun);
            if !inbound.more() {
                break;
            }
            batch = true;
        }
    }

    /// One datagram from `remote` to `local`: IKE to the endpoint, ESP opened in place and
    /// queued for the TUN device. `now` is the time of the receive, read on first use.
    fn handle_datagram(
        &mut self,
        now: &mut Option<Instant>,
        local: SocketAddr,
        remote: SocketAddr,
        data: &mut [u8],
        tx: &mut datapath::Tx<'_>,
    ) {
        if local.port() == IKE_PORT {
            let now = *now.get_or_insert_with(Instant::now);
            self.ike.handle_datagram(now, local, remote, data);
            self.rearm = true;
            return;
        }
        match self.sad.handle_datagram(data) {
            Ok(Received::Ike { range }) => {
                if let Some(msg) = data.get(range) {
                    let now = *now.get_or_insert_with(Instant::now);
                    self.ike.handle_datagram(now, local, remote, msg);
                    self.rearm = true;
                }
            }
            Ok(Received::Ipv4 { spi, range, .. } | Received::Ipv6 { spi, range, .. }) => {
                let probe = data
                    .get(range.clone())
                    .is_some_and(|p| self.health_reply(spi, p));
                if !probe {
                    tx.deliver(&self.tun, data, range);
                }
                // After the packet is on its way: a lone one does not wait for the clock.
                let now = *now.get_or_insert_with(Instant::now);
                let stale = self
                    .heard
                    .is_none_or(|(s, t)| s != spi || now.duration_since(t) >= HEARD_EVERY);
                if stale {
                    self.heard = Some((spi, now));
                    // Moves no timer (DPD looks at the time of the last traffic when it
                    // fires): no re-arm.
                    self.ike
                        .handle_child_event(now, spi.0, ChildSaSignal::InboundTraffic);
                }
            }
            Ok(Received::Dummy { .. } | Received::NatKeepalive) => {}
            // Counted per reason by SadIn; a forged or stray packet is no event.
            Err(e) => tracing::trace!(%remote, "ESP dropped: {e}"),
        }
    }

    /// Reads the TUN device until it has nothing more (or [`READS_PER_WAKE`] reads) if
    /// `drain`, else once. With offloads one read is a whole TSO super-packet, split into
    /// MTU-sized segments; each is looked up, sealed in place and queued into a UDP GSO send
    /// per destination.
    fn handle_inner(&mut self, out: &mut datapath::Outbound, drain: bool) {
        let reads = if drain { READS_PER_WAKE } else { 1 };
        for _ in 0..reads {
            let n = match out.read(&self.tun) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // A malformed super-packet from the kernel (or a read error): skip it.
                    tracing::debug!("reading {}: {e}", self.tun_name);
                    continue;
                }
            };
            for i in 0..n {
                let Some((buf, len)) = out.packet(i) else {
                    break;
                };
                let Some(dst) = buf
                    .get(HEADROOM..HEADROOM + len)
                    .and_then(inner_destination)
                else {
                    continue;
                };
                let conn = match self.last_route {
                    Some((d, c)) if d == dst => c,
                    _ => {
                        let c = self.connection_for(dst);
                        self.last_route = Some((dst, c));
                        c
                    }
                };
                let Some(conn) = conn else {
                    continue;
                };
                if let Some(pkt) = buf.get_mut(HEADROOM..HEADROOM + len) {
                    inner::clamp_mss(pkt, self.mtu);
                }
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
                let (socket, remote) = (o.socket, o.remote);
                while let Some(ev) = o.sa.poll_event() {
                    let signal = limit_signal(ev);
                    let spi_in = o.spi_in;
                    self.ike.handle_child_event(Instant::now(), spi_in, signal);
                    self.rearm = true;
                }
                if let Some(socket) = socket {
                    out.push(&self.sockets, socket, i, sealed.packet, remote);
                }
            }
            out.send(&self.sockets);
        }
    }

    /// Seals the inner packet at `buf[HEADROOM..HEADROOM + n]` into the connection's child SA
    /// and sends it to the peer on its own: for the engine's own packets (health probes),
    /// outside the batched path.
    fn seal_and_send(&mut self, id: ConnId, buf: &mut [u8], n: usize) {
        let Some(out) = self.conns.get_mut(&id).and_then(|c| c.out.as_mut()) else {
            // No child SA: the packet is dropped rather than sent anywhere unencrypted.
            self.dropped_no_child_sa.inc();
            return;
        };
        let start = HEADROOM;
        let end = HEADROOM + n;
        let tail = out.sa.tailroom(n);
        if end + tail > buf.len() {
            return;
        }
        let Ok(sealed) = out.sa.seal(&mut buf[..end + tail], start..end) else {
            return;
        };
        let remote = out.remote;
        if let (Some(pkt), Some(s)) = (
            buf.get(sealed.packet),
            out.socket.and_then(|i| datapath::socket(&self.sockets, i)),
        ) {
            if let Err(e) = s.send(pkt, remote) {
                tracing::debug!(%remote, "sending a health probe: {e}");
            }
        }
        while let Some(ev) = out.sa.poll_event() {
            let signal = limit_signal(ev);
            let spi_in = out.spi_in;
            self.ike.handle_child_event(Instant::now(), spi_in, signal);
            self.rearm = true;
        }
    }

    /// The shared socket of a local address and port.
    fn shared_socket(&self, local: SocketAddr) -> Option<&datapath::Socket> {
        datapath::socket(&self.sockets, *self.socket_of.get(&local)?)
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

    /// When the timer must fire next: IKE's timers or a health probe.
    fn deadline(&self) -> Instant {
        self.ike
            .poll_timeout()
            .into_iter()
            .chain(self.health_deadline())
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// The earliest health probe due on a connection that carries traffic.
    fn health_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter(|c| c.out.is_some())
            .filter_map(|c| c.health.as_ref().map(|(h, _)| h.deadline()))
            .min()
    }

    /// Sends the probes that are due and acts on what their silence means.
    fn health_tick(&mut self, now: Instant) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.out.is_some())
            .filter(|(_, c)| c.health.as_ref().is_some_and(|(h, _)| h.deadline() <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some((probe, change)) = self
                .conns
                .get_mut(&id)
                .and_then(|c| c.health.as_mut())
                .map(|(h, _)| h.on_timer(now))
            else {
                continue;
            };
            if let Some(t) = change {
                self.health_changed(id, t);
            }
            let mut buf = vec![0u8; HEADROOM + probe.len() + HEADROOM];
            buf[HEADROOM..HEADROOM + probe.len()].copy_from_slice(&probe);
            self.seal_and_send(id, &mut buf, probe.len());
        }
    }

    /// Whether a decrypted packet answers a health probe (then it stops here).
    fn health_reply(&mut self, spi: Spi, pkt: &[u8]) -> bool {
        // Every decrypted packet passes here: anything but an echo reply through a probed
        // SA leaves at once.
        if self.probed_children.is_empty() || !health::is_echo_reply(pkt) {
            return false;
        }
        let Some(&id) = self.probed_children.get(&spi.0) else {
            return false;
        };
        let hit = self
            .conns
            .get_mut(&id)
            .and_then(|c| c.health.as_mut())
            .and_then(|(h, _)| h.take_reply(pkt));
        match hit {
            Some(Some(t)) => {
                self.health_changed(id, t);
                self.rearm = true;
                true
            }
            Some(None) => true,
            None => false,
        }
    }

    fn health_changed(&mut self, id: ConnId, t: Transition) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let name = c.name.clone();
        let revoke = c
            .health
            .as_ref()
            .is_some_and(|(_, p)| *p == HealthPolicy::RevokeRoutes);
        match t {
            Transition::Failed => {
                tracing::warn!(conn = %name, routes_revoked = revoke, "health check failed");
                if revoke {
                    c.revoked = true;
                    self.set_kernel_routes(id, false);
                }
                self.emit(EngineEvent::HealthFailed {
                    conn: name,
                    revoked: revoke,
                });
            }
            Transition::Recovered => {
                tracing::info!(conn = %name, "health check recovered");
                if std::mem::take(&mut c.revoked) {
                    self.set_kernel_routes(id, true);
                }
                self.emit(EngineEvent::HealthRecovered { conn: name });
            }
        }
    }

    /// Sends what IKE wants sent and applies what it decided.
    fn flush(&mut self) {
        while let Some((spi, ev)) = self.sad.poll_event() {
            let signal = limit_signal(ev);
            self.ike.handle_child_event(Instant::now(), spi.0, signal);
            self.rearm = true;
        }
        while let Some(t) = self.ike.poll_transmit() {
            let Some(s) = self.shared_socket(t.local) else {
                tracing::debug!(local = %t.local, "IKE message from an address without a socket");
                continue;
            };
            let result = if t.non_esp_marker {
                let mut b = Vec::with_capacity(4 + t.payload.len());
                b.extend_from_slice(&esp::encap::NON_ESP_MARKER);
                b.extend_from_slice(&t.payload);
                outer::send(&s.sock, |s| s.send_to(&b, t.remote))
            } else {
                outer::send(&s.sock, |s| s.send_to(&t.payload, t.remote))
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
            // SAs came or went: the health probes of their connections start or stop.
            self.rearm = true;
            let now = Instant::now();
            if self
                .last_snapshot
                .is_none_or(|t| now.duration_since(t) >= SNAPSHOT_MIN_INTERVAL)
            {
                self.last_snapshot = Some(now);
                self.emit(EngineEvent::Snapshot(self.snapshot()));
            }
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
                self.probed_children.remove(&spi_in);
                self.resync = true;
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
                if last && !self.conns.get(&conn).is_some_and(|c| c.block) {
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
                self.resync = true;
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
        if c.health.is_some() {
            self.probed_children.insert(child.spi_in, conn);
        }
        // The socket pair the IKE SA floated to: ESP always goes to the peer's 4500.
        let (local, remote) = c
            .out
            .as_ref()
            .map(|o| (o.local, o.remote))
            .or_else(|| self.ike.sas_of(conn).next().map(|s| (s.local, s.remote)))
            .context("no IKE SA for the child")?;
        let local = SocketAddr::new(local.ip(), NAT_T_PORT);
        let out = Outbound {
            sa,
            spi_in: child.spi_in,
            proposal: child.proposal.clone(),
            local,
            socket: self.socket_of.get(&local).copied(),
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
        if !rekey {
            // A new tunnel starts healthy, with its routes, and probes at once.
            c.revoked = false;
            if let Some((h, _)) = &mut c.health {
                h.reset(Instant::now());
            }
        }
        self.set_kernel_routes(conn, true);
        self.children_installed += 1;
        self.resync = true;
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

    /// Puts the connection's `[[route]]` prefixes into the kernel, through the TUN device, or
    /// takes them out.
    fn set_kernel_routes(&mut self, conn: ConnId, up: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.routed == up {
            return;
        }
        c.routed = up;
        if up {
            self.kernel.add(&c.prefixes);
        } else {
            self.kernel.remove(&c.prefixes);
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
