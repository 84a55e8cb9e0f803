//! The tokio driver of a [`bgp::Speaker`]: it owns the TCP connections (active connects bound
//! to a local address, passive accepts on port 179), the wall clock behind the speaker's
//! timers, and nothing else. It knows no gateway, tunnel or fabric: whoever runs it feeds it
//! [`Command`]s (transport up/down for neighbours that ride a tunnel, queries) and consumes
//! its [`Notice`]s (sessions up and down, which peer's route is selected per prefix). The
//! `vpngw` daemon runs one; the lab's VBR can run another with listeners it bound itself
//! inside a namespace ([`Driver::add_listener`]).
//!
//! ```text
//!   listener(s) :179 ─ accept ─┐                       ┌─► Notice (Established, Down, Selected)
//!   connect task ── result ────┤                       │
//!   reader task per conn ──────┼─► Io ─► Driver::run ──┼─► writer task per conn (Send, Close:
//!   Command (transport, query) ┘    speaker.process    │     flush, FIN, drain, close)
//!   timer deadline (TimerTable per peer) ─────────────►┘─► status (Arc<Mutex>) for API/metrics
//! ```
//!
//! One task owns the speaker; connections are split into a reader and a writer task so that a
//! peer that stops reading cannot stall the reading of its own (or anyone's) messages.

pub(crate) mod relay;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use bgp::{
    neighbor::Direction, Event, Input, LocalRoute, Output, PeerConfig, PeerId, Speaker,
    SpeakerConfig, State, TimerTable,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpSocket, TcpStream,
    },
    sync::{mpsc, oneshot, watch},
    time::Instant as TokioInstant,
};

/// How long a closing connection waits for the peer's FIN after ours, so that the peer
/// reads our NOTIFICATION rather than a reset.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);
/// Read buffer per connection: 16 KiB (about 4 000 IPv4 prefixes) per step keeps a relay's
/// pipeline moving (the next peer gets UPDATEs sooner) at no cost per prefix.
const READ_BUF: usize = 16384;

/// One neighbour to run.
#[derive(Clone, Debug)]
pub(crate) struct Neighbor {
    /// The session's settings (address, AS, timers, policy).
    pub(crate) config: PeerConfig,
    /// Source address of active connections and where a listener accepts the peer's; `None`:
    /// the kernel picks the source, and the peer's connections are accepted only on a
    /// listener someone else bound on its address.
    pub(crate) local: Option<IpAddr>,
    /// What the session rides on (a tunnel's name), if its transport comes and goes: such a
    /// neighbour starts only on [`Command::TransportUp`].
    pub(crate) transport: Option<String>,
}

/// The speaker, its neighbours and what it originates.
#[derive(Clone, Debug)]
pub(crate) struct DriverConfig {
    pub(crate) speaker: SpeakerConfig,
    pub(crate) neighbors: Vec<Neighbor>,
    /// Prefixes this speaker originates.
    pub(crate) originate: Vec<IpNet>,
}

/// Which side of a neighbour's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RouteDir {
    /// Accepted from the neighbour (its Adj-RIB-In).
    Received,
    /// Sent to the neighbour (its Adj-RIB-Out).
    Advertised,
}

/// What the driver is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// The neighbour's transport is up: start its session.
    TransportUp(PeerId),
    /// The transport is gone: close at once, withdraw what was learned, and stay idle until
    /// it is back.
    TransportDown(PeerId),
    /// A neighbour's routes, by its name or address.
    Routes {
        neighbor: String,
        dir: RouteDir,
        reply: oneshot::Sender<Option<Vec<BgpRoute>>>,
    },
}

/// What the driver reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    Established {
        peer: PeerId,
    },
    Down {
        peer: PeerId,
        reason: String,
    },
    /// For each prefix whose selected route changed: the peer whose route is selected now,
    /// `None` when no learned route is (withdrawn, or only a local one).
    Selected(Vec<(IpNet, Option<PeerId>)>),
}

/// A neighbour as the API and metrics show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NeighborView {
    pub(crate) name: String,
    pub(crate) address: IpAddr,
    pub(crate) remote_as: u32,
    pub(crate) local_address: Option<IpAddr>,
    /// The tunnel the session rides on, if any.
    pub(crate) connection: Option<String>,
    /// Whether that tunnel is up (always true without one).
    pub(crate) transport_up: bool,
    /// RFC 4271 state name.
    pub(crate) state: String,
    /// Seconds in Established, if there.
    pub(crate) established_seconds: Option<u64>,
    pub(crate) peer_router_id: Option<String>,
    pub(crate) hold_time: Option<u64>,
    pub(crate) prefixes_received: usize,
    pub(crate) prefixes_advertised: usize,
    pub(crate) updates_in: u64,
    pub(crate) updates_out: u64,
    /// Times an Established session went down.
    pub(crate) flaps: u64,
    pub(crate) last_down: Option<String>,
}

/// One route of a neighbour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BgpRoute {
    pub(crate) prefix: IpNet,
    pub(crate) next_hop: IpAddr,
    pub(crate) as_path: String,
    pub(crate) origin: String,
    pub(crate) med: Option<u32>,
    pub(crate) local_pref: Option<u32>,
}

/// The other tasks' side of a driver: commands in, status out.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Vec<NeighborView>>>,
}

impl Handle {
    /// Sends a command; false when the driver has stopped.
    pub(crate) fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// Where commands go (for a task that only sends them).
    pub(crate) fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.commands.clone()
    }

    /// Every neighbour now, in configuration order.
    pub(crate) fn neighbors(&self) -> Vec<NeighborView> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A neighbour's routes; `None` for an unknown neighbour or a stopped driver.
    pub(crate) async fn routes(&self, neighbor: &str, dir: RouteDir) -> Option<Vec<BgpRoute>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Routes {
            neighbor: neighbor.to_owned(),
            dir,
            reply,
        });
        rx.await.ok().flatten()
    }
}

/// What a connection's tasks and the connect/accept tasks tell the driver.
enum Io {
    Connected {
        peer: PeerId,
        attempt: u64,
        stream: TcpStream,
    },
    ConnectFailed {
        peer: PeerId,
        attempt: u64,
        error: String,
    },
    Accepted {
        stream: TcpStream,
        from: SocketAddr,
    },
    Read {
        peer: PeerId,
        gen: u64,
        bytes: Vec<u8>,
    },
    Closed {
        peer: PeerId,
        gen: u64,
    },
}

enum Write {
    Bytes(Vec<u8>),
    /// Flush, send FIN, wait for the peer's (at most [`CLOSE_DRAIN`]), close.
    Close,
}

/// An open connection: its generation (bytes of an older one are ignored) and its writer.
struct Conn {
    gen: u64,
    tx: mpsc::UnboundedSender<Write>,
}

struct PeerIo {
    id: PeerId,
    local: Option<IpAddr>,
    transport: Option<String>,
    transport_up: bool,
    timers: TimerTable,
    /// Bumped to abandon a pending connect: its result no longer matches.
    attempt: u64,
    connecting: bool,
    conn: Option<Conn>,
    /// A second connection while `conn` is in OpenSent or OpenConfirm, until the speaker
    /// resolves the collision (RFC 4271 §6.8).
    collision: Option<Conn>,
    established_at: Option<Instant>,
    flaps: u64,
    last_down: Option<String>,
}

/// The driver. Build it with [`Driver::new`], run it with [`Driver::run`].
pub(crate) struct Driver {
    speaker: Speaker,
    peers: Vec<PeerIo>,
    epoch: Instant,
    gen: u64,
    io_tx: mpsc::Sender<Io>,
    io_rx: mpsc::Receiver<Io>,
    commands: mpsc::UnboundedReceiver<Command>,
    notices: mpsc::UnboundedSender<Notice>,
    status: Arc<Mutex<Vec<NeighborView>>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver with its neighbours added (none started yet) and its prefixes originated.
    pub(crate) fn new(
        cfg: DriverConfig,
    ) -> Result<(Self, Handle, mpsc::UnboundedReceiver<Notice>)> {
        let mut speaker = Speaker::new(cfg.speaker).context("BGP speaker")?;
        let mut peers = Vec::new();
        for n in cfg.neighbors {
            let name = n.config.name.clone();
            let id = speaker
                .add_peer(n.config)
                .with_context(|| format!("BGP neighbor {name}"))?;
            peers.push(PeerIo {
                id,
                local: n.local,
                transport_up: n.transport.is_none(),
                transport: n.transport,
                timers: TimerTable::new(),
                attempt: 0,
                connecting: false,
                conn: None,
                collision: None,
                established_at: None,
                flaps: 0,
                last_down: None,
            });
        }
        for p in cfg.originate {
            // Nothing to send yet: no session is up.
            let _ = speaker.originate(p, LocalRoute::default());
        }
        let (io_tx, io_rx) = mpsc::channel(1024);
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let (notices, notice_rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(Vec::new()));
        let driver = Self {
            speaker,
            peers,
            epoch: Instant::now(),
            gen: 0,
            io_tx,
            io_rx,
            commands,
            notices,
            status: status.clone(),
        };
        driver.publish_status();
        let handle = Handle {
            commands: cmd_tx,
            status,
        };
        Ok((driver, handle, notice_rx))
    }

    /// Binds a listener on `addr` port 179 (SO_REUSEADDR, so a restart does not wait for
    /// TIME_WAIT). Must run inside the runtime.
    pub(crate) fn listen(&mut self, addr: IpAddr) -> Result<()> {
        let sa = SocketAddr::new(addr, bgp::speaker::BGP_PORT);
        let sock = match addr {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }?;
        sock.set_reuseaddr(true)?;
        sock.bind(sa)
            .with_context(|| format!("binding BGP on {sa}"))?;
        let listener = sock.listen(16)?;
        self.spawn_accept(listener);
        Ok(())
    }

    /// Accepts on a listener bound elsewhere (the lab binds inside a namespace from a
    /// `setns(2)` thread). Must run inside the runtime.
    pub(crate) fn add_listener(&mut self, listener: std::net::TcpListener) -> Result<()> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        self.spawn_accept(listener);
        Ok(())
    }

    fn spawn_accept(&self, listener: TcpListener) {
        let tx = self.io_tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, from)) => {
                        if tx.send(Io::Accepted { stream, from }).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // EMFILE and the like pass; don't spin on them.
                        tracing::warn!("BGP accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    /// Runs until `shutdown` turns true; then stops every session with a Cease and gives the
    /// NOTIFICATIONs a moment to leave.
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| p.transport.is_none())
            .map(|p| p.id)
            .collect();
        for id in ids {
            self.input(id, Input::ManualStart);
        }
        self.publish_status();
        loop {
            let deadline = self
                .peers
                .iter()
                .filter_map(|p| p.timers.next_deadline())
                .min()
                .map_or_else(
                    || TokioInstant::now() + Duration::from_secs(3600),
                    |d| TokioInstant::from_std(self.epoch + d),
                );
            tokio::select! {
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                Some(cmd) = self.commands.recv() => self.command(cmd),
                Some(io) = self.io_rx.recv() => self.io(io),
                () = tokio::time::sleep_until(deadline) => self.fire_timers(),
            }
            self.publish_status();
            // Let the writers send what this step produced before the next read is
            // processed: with reads queued back to back, a peer would otherwise get nothing
            // until the whole backlog is processed (measured by bench/bgp-relay.sh).
            tokio::task::yield_now().await;
        }
        let ids: Vec<PeerId> = self.peers.iter().map(|p| p.id).collect();
        for id in ids {
            self.input(id, Input::ManualStop);
        }
        self.publish_status();
        // The writers flush and close on their own; a short wait lets the Cease go out.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn peer_mut(&mut self, id: PeerId) -> Option<&mut PeerIo> {
        self.peers.get_mut(id.0)
    }

    fn input(&mut self, id: PeerId, input: Input) {
        let out = self.speaker.process(id, input);
        self.apply(out);
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::TransportUp(id) => {
                let Some(p) = self.peer_mut(id) else { return };
                if p.transport_up {
                    return;
                }
                p.transport_up = true;
                // Both ends of a tunnel see it come up within milliseconds and connect at
                // once: collision detection (RFC 4271 §6.8) in the speaker keeps one of the
                // two connections, so neither end needs to hold back.
                self.input(id, Input::ManualStart);
            }
            Command::TransportDown(id) => {
                let Some(p) = self.peer_mut(id) else { return };
                if !p.transport_up {
                    return;
                }
                p.transport_up = false;
                // Closes without a NOTIFICATION and withdraws every route at once; the stop
                // keeps the session from retrying over a tunnel that is not there.
                self.input(id, Input::TransportDown);
                self.input(id, Input::ManualStop);
            }
            Command::Routes {
                neighbor,
                dir,
                reply,
            } => {
                let _ = reply.send(self.routes(&neighbor, dir));
            }
        }
    }

    fn find(&self, neighbor: &str) -> Option<PeerId> {
        let by_addr = neighbor
            .parse::<IpAddr>()
            .ok()
            .and_then(|a| self.speaker.peer_by_address(a));
        by_addr.or_else(|| {
            self.speaker.peers().find(|id| {
                self.speaker
                    .session(*id)
                    .is_some_and(|s| s.config().name == neighbor)
            })
        })
    }

    fn routes(&self, neighbor: &str, dir: RouteDir) -> Option<Vec<BgpRoute>> {
        let id = self.find(neighbor)?;
        let view = |prefix: &IpNet, path: &bgp::rib::Path| BgpRoute {
            prefix: *prefix,
            next_hop: path.next_hop.addr,
            as_path: path.attrs.as_path.to_string(),
            origin: path.attrs.origin.to_string(),
            med: path.attrs.med,
            local_pref: path.attrs.local_pref,
        };
        Some(match dir {
            RouteDir::Received => self
                .speaker
                .received(id)?
                .iter()
                .map(|(p, r)| view(p, &r.path))
                .collect(),
            RouteDir::Advertised => self
                .speaker
                .advertised(id)?
                .iter()
                .map(|(p, path)| view(p, path))
                .collect(),
        })
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        let mut due = Vec::new();
        for p in &mut self.peers {
            while let Some(t) = p.timers.pop_expired(now) {
                due.push((p.id, t));
            }
        }
        for (id, t) in due {
            self.input(id, Input::TimerExpired(t));
        }
    }

    fn io(&mut self, io: Io) {
        match io {
            Io::Connected {
                peer,
                attempt,
                stream,
            } => {
                let current = self
                    .peers
                    .get(peer.0)
                    .is_some_and(|p| p.attempt == attempt && p.connecting);
                if !current {
                    return;
                }
                if let Some(p) = self.peer_mut(peer) {
                    p.connecting = false;
                }
                // The peer's connection may have been taken meanwhile: ours is then the
                // collision connection, and the speaker keeps one of the two.
                self.take(peer, stream, Direction::Active);
            }
            Io::ConnectFailed {
                peer,
                attempt,
                error,
            } => {
                let Some(p) = self.peer_mut(peer) else { return };
                if p.attempt != attempt || !p.connecting {
                    return;
                }
                p.connecting = false;
                tracing::debug!(neighbor = %self.name(peer), "BGP connect failed: {error}");
                // Only the session's own attempt matters: in OpenSent or later it runs on the
                // peer's connection, which this failure says nothing about.
                if self
                    .speaker
                    .session(peer)
                    .is_some_and(|s| s.state() == State::Connect)
                {
                    self.input(peer, Input::TcpFailed);
                }
            }
            Io::Accepted { stream, from } => self.accepted(stream, from),
            Io::Read { peer, gen, bytes } => {
                if self.current_gen(peer) == Some(gen) {
                    let out = self.speaker.handle_bytes(peer, &bytes);
                    self.apply(out);
                } else if self.collision_gen(peer) == Some(gen) {
                    self.input(peer, Input::CollisionReceived(bytes));
                }
            }
            Io::Closed { peer, gen } => {
                if self.current_gen(peer) == Some(gen) {
                    if let Some(p) = self.peer_mut(peer) {
                        p.conn = None;
                    }
                    self.input(peer, Input::TcpFailed);
                } else if self.collision_gen(peer) == Some(gen) {
                    if let Some(p) = self.peer_mut(peer) {
                        p.collision = None;
                    }
                    self.input(peer, Input::CollisionFailed);
                }
            }
        }
    }

    fn current_gen(&self, peer: PeerId) -> Option<u64> {
        self.peers
            .get(peer.0)
            .and_then(|p| p.conn.as_ref())
            .map(|c| c.gen)
    }

    fn collision_gen(&self, peer: PeerId) -> Option<u64> {
        self.peers
            .get(peer.0)
            .and_then(|p| p.collision.as_ref())
            .map(|c| c.gen)
    }

    fn name(&self, peer: PeerId) -> String {
        self.speaker
            .session(peer)
            .map_or_else(|| peer.to_string(), |s| s.config().name.clone())
    }

    fn accepted(&mut self, stream: TcpStream, from: SocketAddr) {
        let Some(id) = self.speaker.peer_by_address(from.ip()) else {
            tracing::debug!(%from, "BGP connection from an unknown address refused");
            return;
        };
        let Some(p) = self.peers.get(id.0) else {
            return;
        };
        if !p.transport_up {
            return;
        }
        // A pending connect of ours goes on: if it completes too, the speaker resolves the
        // collision (RFC 4271 §6.8).
        self.take(id, stream, Direction::Passive);
    }

    /// Hands a connected stream to `peer`'s session as its connection or, while one is
    /// being opened, as the collision connection; drops it when the session takes neither
    /// (Idle, Established, or a collision already pending).
    fn take(&mut self, peer: PeerId, stream: TcpStream, direction: Direction) {
        if self.speaker.accepts_connection(peer) {
            self.open(peer, stream, direction, false);
        } else if self.speaker.accepts_collision(peer) {
            self.open(peer, stream, direction, true);
        }
    }

    /// Takes a connected stream for `peer`: starts its reader and writer, tells the FSM.
    fn open(&mut self, peer: PeerId, stream: TcpStream, direction: Direction, collision: bool) {
        let (Ok(local), Ok(remote)) = (stream.local_addr(), stream.peer_addr()) else {
            return;
        };
        let _ = stream.set_nodelay(true);
        self.gen += 1;
        let gen = self.gen;
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let (closing_tx, closing_rx) = oneshot::channel();
        tokio::spawn(reader(read, peer, gen, self.io_tx.clone(), closing_rx));
        tokio::spawn(writer(write, peer, gen, self.io_tx.clone(), rx, closing_tx));
        if let Some(p) = self.peer_mut(peer) {
            let slot = if collision {
                &mut p.collision
            } else {
                &mut p.conn
            };
            if let Some(old) = slot.replace(Conn { gen, tx }) {
                let _ = old.tx.send(Write::Close);
            }
        }
        self.input(
            peer,
            Input::TcpConnected {
                local,
                remote,
                direction,
            },
        );
    }

    fn connect(&mut self, peer: PeerId, remote: SocketAddr) {
        let timeout = self
            .speaker
            .session(peer)
            .map_or(5, |s| s.config().connect_retry.max(1));
        let Some(p) = self.peer_mut(peer) else { return };
        p.attempt += 1;
        p.connecting = true;
        let (attempt, local) = (p.attempt, p.local);
        let tx = self.io_tx.clone();
        tokio::spawn(async move {
            let r = tokio::time::timeout(
                Duration::from_secs(u64::from(timeout)),
                connect(local, remote),
            )
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
            let io = match r {
                Ok(stream) => Io::Connected {
                    peer,
                    attempt,
                    stream,
                },
                Err(e) => Io::ConnectFailed {
                    peer,
                    attempt,
                    error: format!("{e:#}"),
                },
            };
            let _ = tx.send(io).await;
        });
    }

    fn apply(&mut self, out: Vec<Output>) {
        let mut selected = Vec::new();
        for o in out {
            match o {
                Output::Connect { peer, remote } => self.connect(peer, remote),
                Output::Close { peer } => {
                    if let Some(p) = self.peer_mut(peer) {
                        p.attempt += 1;
                        p.connecting = false;
                        if let Some(c) = p.conn.take() {
                            let _ = c.tx.send(Write::Close);
                        }
                    }
                }
                Output::Send { peer, bytes } => {
                    if let Some(c) = self.peers.get(peer.0).and_then(|p| p.conn.as_ref()) {
                        let _ = c.tx.send(Write::Bytes(bytes));
                    }
                }
                Output::CollisionSend { peer, bytes } => {
                    if let Some(c) = self.peers.get(peer.0).and_then(|p| p.collision.as_ref()) {
                        let _ = c.tx.send(Write::Bytes(bytes));
                    }
                }
                Output::CollisionClose { peer } => {
                    if let Some(c) = self.peer_mut(peer).and_then(|p| p.collision.take()) {
                        let _ = c.tx.send(Write::Close);
                    }
                }
                Output::CollisionWon { peer } => {
                    if let Some(p) = self.peer_mut(peer) {
                        // The speaker closed the old one just before; anything left of it
                        // goes now.
                        if let Some(old) = std::mem::replace(&mut p.conn, p.collision.take()) {
                            let _ = old.tx.send(Write::Close);
                        }
                    }
                }
                Output::SetTimer { peer, timer, after } => {
                    let now = self.now();
                    if let Some(p) = self.peer_mut(peer) {
                        p.timers.set(timer, now, after);
                    }
                }
                Output::ClearTimer { peer, timer } => {
                    if let Some(p) = self.peer_mut(peer) {
                        p.timers.clear(timer);
                    }
                }
                Output::Event(e) => self.event(e, &mut selected),
            }
        }
        if !selected.is_empty() {
            let _ = self.notices.send(Notice::Selected(selected));
        }
    }

    fn event(&mut self, e: Event, selected: &mut Vec<(IpNet, Option<PeerId>)>) {
        match e {
            Event::Established { peer } => {
                let name = self.name(peer);
                if let Some(p) = self.peer_mut(peer) {
                    p.established_at = Some(Instant::now());
                }
                tracing::info!(neighbor = %name, "BGP session up");
                let _ = self.notices.send(Notice::Established { peer });
            }
            Event::Down { peer, reason } => {
                let name = self.name(peer);
                let reason = reason.to_string();
                if let Some(p) = self.peer_mut(peer) {
                    p.established_at = None;
                    p.flaps += 1;
                    p.last_down = Some(reason.clone());
                }
                tracing::warn!(neighbor = %name, %reason, "BGP session down");
                let _ = self.notices.send(Notice::Down { peer, reason });
            }
            Event::RoutesChanged(changes) => {
                selected.extend(changes.into_iter().map(|c| (c.prefix, c.peer)));
            }
            Event::MaxPrefixWarning { peer, count, limit } => {
                tracing::warn!(neighbor = %self.name(peer), count, limit, "BGP neighbor nears its max-prefix limit");
            }
            Event::MaxPrefixDropped {
                peer,
                dropped,
                limit,
            } => {
                tracing::warn!(neighbor = %self.name(peer), dropped, limit, "BGP prefixes past max-prefix dropped");
            }
        }
    }

    fn publish_status(&self) {
        let views: Vec<NeighborView> = self
            .peers
            .iter()
            .filter_map(|p| {
                let s = self.speaker.session(p.id)?;
                let n = s.negotiated().filter(|_| s.state() == State::Established);
                Some(NeighborView {
                    name: s.config().name.clone(),
                    address: s.config().address,
                    remote_as: s.config().remote_as,
                    local_address: p.local,
                    connection: p.transport.clone(),
                    transport_up: p.transport_up,
                    state: s.state().to_string(),
                    established_seconds: p.established_at.map(|t| t.elapsed().as_secs()),
                    peer_router_id: n.map(|n| n.peer_id.to_string()),
                    hold_time: n.map(|n| n.hold_time.as_secs()),
                    prefixes_received: self.speaker.received_count(p.id).unwrap_or(0),
                    prefixes_advertised: self.speaker.advertised_count(p.id).unwrap_or(0),
                    updates_in: s.stats().updates_in,
                    updates_out: s.stats().updates_out,
                    flaps: p.flaps,
                    last_down: p.last_down.clone(),
                })
            })
            .collect();
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = views;
    }
}

/// A TCP connection to `remote`, from `local` when given.
async fn connect(local: Option<IpAddr>, remote: SocketAddr) -> Result<TcpStream> {
    let sock = if remote.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    if let Some(l) = local {
        sock.bind(SocketAddr::new(l, 0))
            .with_context(|| format!("binding {l}"))?;
    }
    Ok(sock.connect(remote).await?)
}

/// Forwards what the peer sends until EOF, an error, or our close; after our close, reads
/// and drops until the peer's FIN (or [`CLOSE_DRAIN`]): closing a socket with unread data
/// would reset the connection and lose the NOTIFICATION just written.
async fn reader(
    mut read: OwnedReadHalf,
    peer: PeerId,
    gen: u64,
    io: mpsc::Sender<Io>,
    mut closing: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        tokio::select! {
            r = read.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = io.send(Io::Closed { peer, gen }).await;
                    return;
                }
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or_default().to_vec();
                    if io.send(Io::Read { peer, gen, bytes }).await.is_err() {
                        return;
                    }
                }
            },
            _ = &mut closing => break,
        }
    }
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Writes what the session sends; on close (or when the driver drops the connection),
/// flushes, sends FIN and tells the reader to drain.
async fn writer(
    mut write: OwnedWriteHalf,
    peer: PeerId,
    gen: u64,
    io: mpsc::Sender<Io>,
    mut rx: mpsc::UnboundedReceiver<Write>,
    closing: oneshot::Sender<()>,
) {
    while let Some(w) = rx.recv().await {
        match w {
            Write::Bytes(b) => {
                if write.write_all(&b).await.is_err() {
                    let _ = io.send(Io::Closed { peer, gen }).await;
                    break;
                }
            }
            Write::Close => break,
        }
    }
    let _ = write.shutdown().await;
    let _ = closing.send(());
}

#[cfg(test)]
mod tests {
    use std::process::Command as Process;

    use bgp::policy::{ExportPolicy, ImportPolicy};

    use super::*;

    fn neighbor(name: &str, addr: &str, asn: u32, local: &str, transport: bool) -> Neighbor {
        let mut config = PeerConfig::new(name, addr.parse().unwrap(), asn);
        config.import = ImportPolicy::permit_all();
        config.export = ExportPolicy::permit_all();
        config.connect_retry = 1;
        Neighbor {
            config,
            local: Some(local.parse().unwrap()),
            transport: transport.then(|| "t".to_owned()),
        }
    }

    fn driver(
        asn: u32,
        me: &str,
        prefix: &str,
        n: Neighbor,
    ) -> (Driver, Handle, mpsc::UnboundedReceiver<Notice>) {
        let (mut d, h, rx) = Driver::new(DriverConfig {
            speaker: SpeakerConfig {
                asn,
                router_id: me.parse().unwrap(),
            },
            neighbors: vec![n],
            originate: vec![prefix.parse().unwrap()],
        })
        .unwrap();
        let l = std::net::TcpListener::bind((me, bgp::speaker::BGP_PORT)).unwrap();
        d.add_listener(l).unwrap();
        (d, h, rx)
    }

    /// The next `Selected` notice, within `max`.
    async fn selected(
        rx: &mut mpsc::UnboundedReceiver<Notice>,
        max: Duration,
    ) -> Vec<(IpNet, Option<PeerId>)> {
        let deadline = TokioInstant::now() + max;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Notice::Selected(v))) => return v,
                Ok(Some(_)) => {}
                _ => panic!("no route change within {max:?}"),
            }
        }
    }

    /// Two drivers on loopback in a network namespace of their own: they peer, learn each
    /// other's prefix, and a transport going down withdraws at once; back up, routes return.
    #[test]
    #[ignore = "needs root (a network namespace of its own); run by scripts/test.sh"]
    fn two_drivers_peer_and_transport_down_withdraws_at_once() {
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            // Children inherit the namespace of the thread that forks them.
            let st = Process::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .unwrap();
            assert!(st.success());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (a, ha, mut na) = driver(
                    65001,
                    "127.0.0.1",
                    "10.1.0.0/24",
                    neighbor("b", "127.0.0.2", 65002, "127.0.0.1", true),
                );
                let (b, hb, mut nb) = driver(
                    65002,
                    "127.0.0.2",
                    "10.2.0.0/24",
                    neighbor("a", "127.0.0.1", 65001, "127.0.0.2", false),
                );
                let (stop, stopped) = watch::channel(false);
                tokio::spawn(a.run(stopped.clone()));
                tokio::spawn(b.run(stopped));
                let (pa, pb): (IpNet, IpNet) = (
                    "10.1.0.0/24".parse().unwrap(),
                    "10.2.0.0/24".parse().unwrap(),
                );
                // Nothing before the transport is up.
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert_eq!(ha.neighbors()[0].state, "Idle");
                ha.send(Command::TransportUp(PeerId(0)));
                let s = selected(&mut na, Duration::from_secs(10)).await;
                assert_eq!(s, vec![(pb, Some(PeerId(0)))]);
                let s = selected(&mut nb, Duration::from_secs(10)).await;
                assert_eq!(s, vec![(pa, Some(PeerId(0)))]);
                let r = ha.routes("b", RouteDir::Received).await.unwrap();
                assert_eq!(r[0].prefix, pb);
                assert_eq!(r[0].as_path, "65002");
                let r = ha.routes("127.0.0.2", RouteDir::Advertised).await.unwrap();
                assert_eq!(r[0].prefix, pa);
                assert!(ha.routes("nosuch", RouteDir::Received).await.is_none());
                let v = &ha.neighbors()[0];
                assert_eq!((v.state.as_str(), v.prefixes_received), ("Established", 1));

                let t = Instant::now();
                ha.send(Command::TransportDown(PeerId(0)));
                let s = selected(&mut na, Duration::from_secs(1)).await;
                assert_eq!(s, vec![(pb, None)]);
                assert!(
                    t.elapsed() < Duration::from_millis(100),
                    "{:?}",
                    t.elapsed()
                );
                // The far end sees the connection close and withdraws too.
                let s = selected(&mut nb, Duration::from_secs(3)).await;
                assert_eq!(s, vec![(pa, None)]);
                let v = &ha.neighbors()[0];
                assert_eq!(
                    (v.state.as_str(), v.flaps, v.transport_up),
                    ("Idle", 1, false)
                );
                // It stays down while the transport is.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                assert_eq!(ha.neighbors()[0].state, "Idle");

                ha.send(Command::TransportUp(PeerId(0)));
                let s = selected(&mut na, Duration::from_secs(10)).await;
                assert_eq!(s, vec![(pb, Some(PeerId(0)))]);
                let s = selected(&mut nb, Duration::from_secs(10)).await;
                assert_eq!(s, vec![(pa, Some(PeerId(0)))]);
                assert_eq!(hb.neighbors()[0].flaps, 1);
                let _ = stop.send(true);
            });
        })
        .join()
        .unwrap();
    }
}
