//! BGP in the daemon: the `[bgp]` speaker run by a [`bgpd::Driver`], tied to the tunnels.
//!
//! ```text
//!   engine events (ChildUp/ChildDown/IkeDown) ─► installed child SAs per connection
//!        first child up ─► Command::TransportUp ─► the neighbour's session starts
//!        last child gone / IKE SA down ─► Command::TransportDown ─► closed at once, routes
//!                                         withdrawn (no hold-timer wait)
//!   Notice::Selected(prefix → peer) ─► per connection: EngineCommand::SetLearned (table and
//!                                      kernel routes into the tunnel)
//!                                   └► publish = true: the fabric, publish / withdraw
//! ```
//!
//! A neighbour without `connection` runs from start; what it teaches is shown by the API but
//! routed nowhere: its next hop is an address, not a tunnel, and the kernel's own routing
//! reaches it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use bgp::{
    policy::{Action, ImportPolicy, MaxPrefixAction as BgpAction, PrefixFilter, PrefixRule},
    PeerConfig, PeerId, SpeakerConfig,
};
use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use super::{
    metrics::Exposition,
    tunnel::{Commands, EngineCommand, EngineEvent},
};
use crate::{
    bgpd::{self, Command, Driver, DriverConfig, Handle, NeighborView, Notice},
    config::{
        self,
        bgp::{Bgp, MaxPrefixAction},
    },
};

/// The speaker's configuration from `[bgp]`.
fn driver_config(cfg: &config::Config, b: &Bgp) -> DriverConfig {
    let neighbors = b
        .neighbors
        .iter()
        .map(|n| {
            let mut pc = PeerConfig::new(n.name.clone(), n.address, n.remote_as);
            pc.hold_time = u16::try_from(b.hold_time.as_secs()).unwrap_or(u16::MAX);
            pc.keepalive = Some(u16::try_from(b.keepalive.as_secs()).unwrap_or(u16::MAX));
            // The two ends of a tunnel start their sessions within milliseconds of each other,
            // before both have the child SA: the first SYNs are often lost or refused. Retry
            // every 2 s rather than the RFC's 120 s so the routes return promptly.
            pc.connect_retry = 2;
            pc.import = ImportPolicy {
                // Absent: everything, as a cloud VPN gateway accepts the data center's routes
                // (RFC 8212's default deny would make an unfiltered neighbour useless).
                filter: Some(match &n.import {
                    None => PrefixFilter::permit_all(),
                    Some(list) => PrefixFilter {
                        rules: list
                            .iter()
                            .map(|p| PrefixRule::or_longer(*p, Action::Permit))
                            .collect(),
                        default: Action::Deny,
                    },
                }),
                max_prefix: n.max_prefix.map(|m| bgp::policy::MaxPrefix {
                    limit: m.limit,
                    action: match m.action {
                        MaxPrefixAction::Drop => BgpAction::DropExcess,
                        MaxPrefixAction::Reset => BgpAction::Reset {
                            restart_after: Some(30),
                        },
                    },
                    warning_threshold: 75,
                }),
                local_pref: None,
            };
            // Only what this gateway originates: it is no transit between its neighbours.
            pc.export.filter = Some(PrefixFilter::permit_exact(b.announce.iter().copied()));
            pc.export.prepend = n.prepend;
            if n.connection.is_some() {
                pc.interface = Some(cfg.gateway.tun.clone());
            }
            bgpd::Neighbor {
                config: pc,
                local: n.local_address,
                transport: n.connection.clone(),
            }
        })
        .collect();
    DriverConfig {
        speaker: SpeakerConfig {
            asn: b.local_as,
            router_id: b.router_id,
        },
        neighbors,
        originate: b.announce.clone(),
    }
}

/// Starts the speaker: binds 179 on every neighbour's local address (the TUN device's inside
/// addresses are up by now), spawns the driver and the task that ties it to the tunnels.
/// Returns the driver's handle and the sender for engine events.
pub(crate) fn start(
    cfg: &config::Config,
    b: &Bgp,
    engine: Commands,
    shutdown: watch::Receiver<bool>,
) -> Result<(Handle, mpsc::UnboundedSender<EngineEvent>)> {
    let (mut driver, handle, notices) = Driver::new(driver_config(cfg, b))?;
    let locals: BTreeSet<_> = b.neighbors.iter().filter_map(|n| n.local_address).collect();
    for a in locals {
        driver.listen(a)?;
    }
    tokio::spawn(driver.run(shutdown));
    let (events_tx, events) = mpsc::unbounded_channel();
    let tie = Tie {
        commands: handle.commands(),
        names: b.neighbors.iter().map(|n| n.name.clone()).collect(),
        conn_of: b.neighbors.iter().map(|n| n.connection.clone()).collect(),
        publish: b.neighbors.iter().map(|n| n.publish).collect(),
        remote_as: b.neighbors.iter().map(|n| n.remote_as).collect(),
        children: HashMap::new(),
        selected: BTreeMap::new(),
        engine,
        fabric: cfg
            .fabric
            .as_ref()
            .map(|f| (f.socket.clone(), cfg.gateway.name.clone())),
        statics: cfg.routes.iter().map(|r| r.prefix).collect(),
        outer: cfg
            .connections
            .iter()
            .map(|c| (c.name.clone(), c.peer_address))
            .collect(),
        block: cfg
            .connections
            .iter()
            .filter(|c| c.on_tunnel_down == config::OnTunnelDown::Block)
            .map(|c| c.name.clone())
            .collect(),
        held: BTreeMap::new(),
        back_since: HashMap::new(),
    };
    tokio::spawn(tie.run(events, notices));
    Ok((handle, events_tx))
}

/// What ties the speaker to the tunnels.
struct Tie {
    commands: mpsc::UnboundedSender<Command>,
    /// Per peer id: its name, for logs.
    names: Vec<String>,
    /// Per peer id: its connection.
    conn_of: Vec<Option<String>>,
    /// Per peer id: whether what it teaches is published.
    publish: Vec<bool>,
    /// Per peer id: its AS, told to the fabric for the data-center ASN check while its
    /// session is up (published neighbours only: they are the data center's routers).
    remote_as: Vec<u32>,
    /// Installed child SAs (inbound SPIs) per connection.
    children: HashMap<String, BTreeSet<u32>>,
    /// Prefixes whose selected route is a peer's, and that peer.
    selected: BTreeMap<IpNet, PeerId>,
    engine: Commands,
    /// The fabric controller's socket and our name there.
    fabric: Option<(PathBuf, String)>,
    /// `[[route]]` prefixes: their publication is the operator's, never BGP's to withdraw.
    statics: BTreeSet<IpNet>,
    /// Each connection's peer (outer) address.
    outer: HashMap<String, IpAddr>,
    /// Connections with `on_tunnel_down = "block"`: while their tunnel is down, what BGP had
    /// learned over them stays routed into them (and published), so traffic is dropped at
    /// the gateway rather than sent another way in the clear.
    block: BTreeSet<String>,
    /// Such routes, by prefix, with the peer that taught them; released once the peer's
    /// session has been back for [`HOLD_RELEASE`] (what it still announces is selected anew).
    held: BTreeMap<IpNet, PeerId>,
    /// When each block connection's session came back.
    back_since: HashMap<String, tokio::time::Instant>,
}

/// How long a session that came back has to announce again what a block connection held.
const HOLD_RELEASE: Duration = Duration::from_secs(10);

impl Tie {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<EngineEvent>,
        mut notices: mpsc::UnboundedReceiver<Notice>,
    ) {
        let (fabric_tx, fabric_rx) = mpsc::unbounded_channel();
        if let Some((socket, name)) = self.fabric.clone() {
            tokio::spawn(publisher(socket, name, fabric_rx));
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                Some(ev) = events.recv() => self.engine_event(&ev),
                Some(n) = notices.recv() => self.notice(n, &fabric_tx),
                _ = tick.tick() => self.release_held(tokio::time::Instant::now(), &fabric_tx),
                else => return,
            }
        }
    }

    fn peers_of(&self, conn: &str) -> Vec<PeerId> {
        self.conn_of
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_deref() == Some(conn))
            .map(|(i, _)| PeerId(i))
            .collect()
    }

    fn engine_event(&mut self, ev: &EngineEvent) {
        let (conn, up) = match ev {
            EngineEvent::ChildUp { conn, spi_in, .. } => {
                let set = self.children.entry(conn.clone()).or_default();
                let first = set.is_empty();
                set.insert(*spi_in);
                if !first {
                    return;
                }
                (conn, true)
            }
            EngineEvent::ChildDown { conn, spi_in, .. } => {
                let Some(set) = self.children.get_mut(conn) else {
                    return;
                };
                if !set.remove(spi_in) || !set.is_empty() {
                    return;
                }
                (conn, false)
            }
            EngineEvent::IkeDown { conn, .. } => {
                if self.children.remove(conn).is_none_or(|s| s.is_empty()) {
                    return;
                }
                (conn, false)
            }
            // A broken path inside the tunnel ends the session as a dead tunnel does; the
            // first answered probe brings it back while child SAs are up.
            EngineEvent::HealthFailed { conn, .. } => (conn, false),
            EngineEvent::HealthRecovered { conn } => {
                if self.children.get(conn).is_none_or(BTreeSet::is_empty) {
                    return;
                }
                (conn, true)
            }
            EngineEvent::IkeUp { .. } | EngineEvent::Snapshot(_) => return,
        };
        for peer in self.peers_of(conn) {
            let name = self.names.get(peer.0).map_or("?", String::as_str);
            tracing::info!(neighbor = %name, connection = %conn, "BGP transport {}", if up { "up" } else { "down" });
            let cmd = if up {
                Command::TransportUp(peer)
            } else {
                Command::TransportDown(peer)
            };
            // The driver stops only when the daemon does.
            let _ = self.commands.send(cmd);
        }
    }

    fn notice(&mut self, n: Notice, fabric: &mpsc::UnboundedSender<ToFabric>) {
        let changes = match n {
            Notice::Selected(changes) => changes,
            Notice::Established { peer } => {
                if let Some(Some(c)) = self.conn_of.get(peer.0) {
                    if self.block.contains(c) {
                        self.back_since
                            .insert(c.clone(), tokio::time::Instant::now());
                    }
                }
                self.tell_peer_as(peer, true, fabric);
                return;
            }
            Notice::Down { peer, .. } => {
                self.tell_peer_as(peer, false, fabric);
                return;
            }
        };
        let mut touched = BTreeSet::new();
        for (prefix, owner) in changes {
            let old = match owner {
                Some(p) => self.selected.insert(prefix, p),
                None => self.selected.remove(&prefix),
            };
            if old == owner {
                continue;
            }
            match (old, owner) {
                (Some(o), None) if self.holds(o) => {
                    // Kept routed and published: nothing changes for the engine or the fabric.
                    self.held.insert(prefix, o);
                    continue;
                }
                (_, Some(_)) => {
                    self.held.remove(&prefix);
                }
                _ => {}
            }
            for p in [old, owner].into_iter().flatten() {
                if let Some(Some(c)) = self.conn_of.get(p.0) {
                    touched.insert(c.clone());
                }
            }
            let (was, is) = (self.publishes(old, &prefix), self.publishes(owner, &prefix));
            if was != is && !self.statics.contains(&prefix) {
                let _ = fabric.send(ToFabric::Route(prefix, is));
            }
        }
        for conn in touched {
            self.send_learned(conn);
        }
    }

    /// Whether `prefix`, selected from `peer`, goes into the fabric: the neighbour publishes,
    /// and the route is one the engine takes (not its tunnel's own peer).
    fn publishes(&self, peer: Option<PeerId>, prefix: &IpNet) -> bool {
        peer.is_some_and(|p| {
            self.publish.get(p.0).copied().unwrap_or(false)
                && !self
                    .conn_of
                    .get(p.0)
                    .and_then(Option::as_deref)
                    .is_some_and(|c| self.is_tunnel_peer(c, prefix))
        })
    }

    /// Whether `prefix` is the host route of `conn`'s own peer: routed into the tunnel, it
    /// would carry the tunnel's own packets.
    fn is_tunnel_peer(&self, conn: &str, prefix: &IpNet) -> bool {
        prefix.prefix_len() == prefix.max_prefix_len()
            && self.outer.get(conn).is_some_and(|o| prefix.contains(o))
    }

    /// Tells the fabric the data center's AS on `peer`'s session, or that it ended.
    fn tell_peer_as(&self, peer: PeerId, up: bool, fabric: &mpsc::UnboundedSender<ToFabric>) {
        if !self.publish.get(peer.0).copied().unwrap_or(false) {
            return;
        }
        let (Some(name), Some(asn)) = (self.names.get(peer.0), self.remote_as.get(peer.0)) else {
            return;
        };
        let _ = fabric.send(ToFabric::PeerAs {
            neighbor: name.clone(),
            peer_as: up.then_some(*asn),
        });
    }

    /// Whether a route of `peer` that BGP just withdrew is to be held: its connection blocks
    /// and its tunnel is down.
    fn holds(&self, peer: PeerId) -> bool {
        let Some(Some(conn)) = self.conn_of.get(peer.0) else {
            return false;
        };
        self.block.contains(conn) && self.children.get(conn).is_none_or(BTreeSet::is_empty)
    }

    /// Lets go of held routes whose session has been back long enough to announce them again.
    fn release_held(
        &mut self,
        now: tokio::time::Instant,
        fabric: &mpsc::UnboundedSender<ToFabric>,
    ) {
        let ready: BTreeSet<String> = self
            .back_since
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= HOLD_RELEASE)
            .map(|(c, _)| c.clone())
            .collect();
        if ready.is_empty() {
            return;
        }
        self.back_since.retain(|c, _| !ready.contains(c));
        let conn_of = |p: &PeerId| self.conn_of.get(p.0).cloned().flatten();
        let gone: Vec<(IpNet, PeerId)> = self
            .held
            .iter()
            .filter(|(_, p)| conn_of(p).is_some_and(|c| ready.contains(&c)))
            .map(|(prefix, p)| (*prefix, *p))
            .collect();
        for (prefix, p) in &gone {
            self.held.remove(prefix);
            if self.publishes(Some(*p), prefix) && !self.statics.contains(prefix) {
                let _ = fabric.send(ToFabric::Route(*prefix, false));
            }
        }
        for conn in ready {
            self.send_learned(conn);
        }
    }

    /// The engine's routes into `conn`: what BGP selected over it, and what it holds.
    fn send_learned(&self, conn: String) {
        let prefixes = self
            .selected
            .iter()
            .chain(&self.held)
            .filter(|(_, p)| self.conn_of.get(p.0).and_then(Option::as_deref) == Some(&conn))
            .map(|(prefix, _)| *prefix)
            .filter(|prefix| {
                // A wider prefix holding the tunnel's own peer is fine (the engine pins a
                // host route to the peer first); the peer's own host route into its own
                // tunnel is not, as a [[route]] may not be.
                let loops = self.is_tunnel_peer(&conn, prefix);
                if loops {
                    tracing::warn!(connection = %conn, %prefix, "BGP route not installed: it is the tunnel's peer address");
                }
                !loops
            })
            .collect();
        let _ = self
            .engine
            .send(EngineCommand::SetLearned { conn, prefixes });
    }
}

/// What the daemon tells the fabric controller about BGP.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ToFabric {
    /// Publish (`true`) or withdraw a learned prefix.
    Route(IpNet, bool),
    /// The data center's AS on a neighbour's session, `None` once the session is down: the
    /// cloud checks it against the AS the data center uses toward the VBR.
    PeerAs {
        neighbor: String,
        peer_as: Option<u32>,
    },
}

impl ToFabric {
    /// Tells the controller at `socket` as `gateway`. Blocking.
    fn tell(&self, socket: &Path, gateway: &str) -> Result<()> {
        match self {
            Self::Route(prefix, on) => super::gateway::tell_fabric(socket, gateway, *prefix, *on),
            Self::PeerAs { neighbor, peer_as } => {
                super::gateway::tell_fabric_peer_as(socket, gateway, neighbor, *peer_as)
            }
        }
    }
}

impl std::fmt::Display for ToFabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Route(prefix, true) => write!(f, "BGP route {prefix} published into"),
            Self::Route(prefix, false) => write!(f, "BGP route {prefix} withdrawn from"),
            Self::PeerAs {
                neighbor,
                peer_as: Some(a),
            } => write!(f, "neighbor {neighbor}'s AS {a} told to"),
            Self::PeerAs {
                neighbor,
                peer_as: None,
            } => write!(f, "neighbor {neighbor}'s session end told to"),
        }
    }
}

/// Tells the fabric, in order, what BGP publishes and withdraws; the client blocks, so each
/// call runs off the runtime. A refusal is logged and retried once after a second.
async fn publisher(socket: PathBuf, gateway: String, mut rx: mpsc::UnboundedReceiver<ToFabric>) {
    while let Some(msg) = rx.recv().await {
        for attempt in 0..2 {
            let (s, g, m) = (socket.clone(), gateway.clone(), msg.clone());
            match tokio::task::spawn_blocking(move || m.tell(&s, &g)).await {
                Ok(Ok(())) => {
                    tracing::info!("{msg} the fabric");
                    break;
                }
                Ok(Err(e)) if attempt == 0 => {
                    tracing::warn!("{msg} the fabric: {e:#}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(Err(e)) => tracing::error!("{msg} the fabric: {e:#}"),
                Err(e) => tracing::error!("telling the fabric: {e}"),
            }
        }
    }
}

/// The BGP families of `/metrics`.
pub(crate) fn write_metrics(out: &mut Exposition, views: &[NeighborView]) {
    const STATES: [&str; 6] = [
        "Idle",
        "Connect",
        "Active",
        "OpenSent",
        "OpenConfirm",
        "Established",
    ];
    out.family(
        "vpngw_bgp_session_state",
        "gauge",
        "1 for the neighbour's current RFC 4271 session state, 0 for the others.",
    );
    for v in views {
        for s in STATES {
            out.sample(
                "vpngw_bgp_session_state",
                &[("neighbor", &v.name), ("state", s)],
                u64::from(v.state == s),
            );
        }
    }
    type Get = fn(&NeighborView) -> u64;
    let families: [(&str, &str, &str, Get); 5] = [
        (
            "vpngw_bgp_prefixes_received",
            "gauge",
            "Prefixes accepted from the neighbour now (its Adj-RIB-In).",
            |v| v.prefixes_received as u64,
        ),
        (
            "vpngw_bgp_prefixes_advertised",
            "gauge",
            "Prefixes advertised to the neighbour now (its Adj-RIB-Out).",
            |v| v.prefixes_advertised as u64,
        ),
        (
            "vpngw_bgp_updates_received_total",
            "counter",
            "UPDATE messages received from the neighbour since start.",
            |v| v.updates_in,
        ),
        (
            "vpngw_bgp_updates_sent_total",
            "counter",
            "UPDATE messages sent to the neighbour since start.",
            |v| v.updates_out,
        ),
        (
            "vpngw_bgp_session_flaps_total",
            "counter",
            "Times the neighbour's Established session went down since start.",
            |v| v.flaps,
        ),
    ];
    for (name, kind, help, get) in families {
        out.family(name, kind, help);
        for v in views {
            out.sample(name, &[("neighbor", &v.name)], get(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tunnel::{self, Inbox};
    use super::*;

    fn tie() -> (Tie, mpsc::UnboundedReceiver<Command>, Inbox) {
        let (commands, cmd_rx) = mpsc::unbounded_channel();
        let (engine, engine_rx) = tunnel::commands().unwrap();
        let tie = Tie {
            commands,
            names: vec!["dc1".into(), "dc2".into(), "line".into()],
            conn_of: vec![Some("dc1".into()), Some("dc2".into()), None],
            publish: vec![true, false, true],
            remote_as: vec![65001, 65001, 65001],
            children: HashMap::new(),
            selected: BTreeMap::new(),
            engine,
            fabric: None,
            statics: BTreeSet::from(["192.168.10.0/24".parse().unwrap()]),
            outer: HashMap::from([("dc1".into(), "10.0.0.1".parse().unwrap())]),
            block: BTreeSet::new(),
            held: BTreeMap::new(),
            back_since: HashMap::new(),
        };
        (tie, cmd_rx, engine_rx)
    }

    #[test]
    fn a_blocking_connection_holds_its_routes_while_the_tunnel_is_down() {
        let (mut t, _, engine) = tie();
        t.block.insert("dc1".into());
        let (fabric, mut published) = mpsc::unbounded_channel();
        let p: IpNet = "10.1.0.0/16".parse().unwrap();
        t.engine_event(&EngineEvent::ChildUp {
            conn: "dc1".into(),
            spi_in: 1,
            spi_out: 2,
            proposal: String::new(),
        });
        t.notice(Notice::Selected(vec![(p, Some(PeerId(0)))]), &fabric);
        assert_eq!(routes(&mut published), [(p, true)]);
        engine.drain();

        // The tunnel goes, BGP withdraws: the route stays routed and published.
        t.engine_event(&EngineEvent::IkeDown {
            conn: "dc1".into(),
            reason: ike::DownReason::PeerDead,
        });
        t.notice(Notice::Selected(vec![(p, None)]), &fabric);
        assert!(engine.drain().is_empty());
        assert!(routes(&mut published).is_empty());

        // Back, but the peer no longer announces it: released after HOLD_RELEASE.
        t.notice(Notice::Established { peer: PeerId(0) }, &fabric);
        let now = tokio::time::Instant::now();
        t.release_held(now, &fabric);
        assert!(engine.drain().is_empty(), "not yet");
        t.release_held(now + HOLD_RELEASE, &fabric);
        assert_eq!(
            engine.drain(),
            [EngineCommand::SetLearned {
                conn: "dc1".into(),
                prefixes: vec![]
            }]
        );
        assert_eq!(routes(&mut published), [(p, false)]);
    }

    fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Vec<T> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// The publications and withdrawals sent to the fabric.
    fn routes(rx: &mut mpsc::UnboundedReceiver<ToFabric>) -> Vec<(IpNet, bool)> {
        drain(rx)
            .into_iter()
            .filter_map(|m| match m {
                ToFabric::Route(p, on) => Some((p, on)),
                ToFabric::PeerAs { .. } => None,
            })
            .collect()
    }

    fn child(up: bool, conn: &str, spi_in: u32) -> EngineEvent {
        if up {
            EngineEvent::ChildUp {
                conn: conn.into(),
                spi_in,
                spi_out: 1,
                proposal: String::new(),
            }
        } else {
            EngineEvent::ChildDown {
                conn: conn.into(),
                spi_in,
                spi_out: 1,
                reason: ike::DownReason::Rekeyed,
            }
        }
    }

    #[test]
    fn the_transport_follows_the_first_and_last_child_sa() {
        let (mut t, mut cmds, _) = tie();
        let names =
            |v: Vec<Command>| -> Vec<String> { v.iter().map(|c| format!("{c:?}")).collect() };
        t.engine_event(&child(true, "dc1", 10));
        assert_eq!(names(drain(&mut cmds)), ["TransportUp(PeerId(0))"]);
        // A rekey: the new child comes before the old one goes; the session is untouched.
        t.engine_event(&child(true, "dc1", 11));
        t.engine_event(&child(false, "dc1", 10));
        assert!(drain(&mut cmds).is_empty());
        t.engine_event(&child(false, "dc1", 11));
        assert_eq!(names(drain(&mut cmds)), ["TransportDown(PeerId(0))"]);
        // IKE SA down after its children: already down, nothing more.
        t.engine_event(&EngineEvent::IkeDown {
            conn: "dc1".into(),
            reason: ike::DownReason::DeletedLocally,
        });
        assert!(drain(&mut cmds).is_empty());
        // IKE SA down with a child still counted (no ChildDown seen): down at once.
        t.engine_event(&child(true, "dc2", 20));
        t.engine_event(&EngineEvent::IkeDown {
            conn: "dc2".into(),
            reason: ike::DownReason::DeletedLocally,
        });
        assert_eq!(
            names(drain(&mut cmds)),
            ["TransportUp(PeerId(1))", "TransportDown(PeerId(1))"]
        );
    }

    #[test]
    fn the_tunnel_peers_own_host_route_is_neither_routed_nor_published() {
        let (mut t, _, engine) = tie();
        let (fabric, mut published) = mpsc::unbounded_channel();
        let peer: IpNet = "10.0.0.1/32".parse().unwrap();
        t.notice(Notice::Selected(vec![(peer, Some(PeerId(0)))]), &fabric);
        assert_eq!(
            engine.drain(),
            [EngineCommand::SetLearned {
                conn: "dc1".into(),
                prefixes: vec![]
            }]
        );
        assert!(routes(&mut published).is_empty());
        t.notice(Notice::Selected(vec![(peer, None)]), &fabric);
        assert!(routes(&mut published).is_empty());
    }

    #[test]
    fn the_data_centers_as_goes_to_the_fabric_for_published_neighbors_only() {
        let (mut t, _, _) = tie();
        let (fabric, mut told) = mpsc::unbounded_channel();
        for peer in [PeerId(0), PeerId(1)] {
            t.notice(Notice::Established { peer }, &fabric);
        }
        t.notice(
            Notice::Down {
                peer: PeerId(0),
                reason: "hold timer expired".into(),
            },
            &fabric,
        );
        let peer_as = |a| ToFabric::PeerAs {
            neighbor: "dc1".into(),
            peer_as: a,
        };
        assert_eq!(drain(&mut told), [peer_as(Some(65001)), peer_as(None)]);
    }

    #[test]
    fn selected_routes_go_into_their_connection_and_published_ones_to_the_fabric() {
        let (mut t, _, engine) = tie();
        let (fabric, mut published) = mpsc::unbounded_channel();
        let p = |s: &str| -> IpNet { s.parse().unwrap() };
        t.notice(
            Notice::Selected(vec![
                (p("10.1.0.0/16"), Some(PeerId(0))),
                (p("10.2.0.0/16"), Some(PeerId(1))),
                (p("192.168.10.0/24"), Some(PeerId(0))),
                (p("10.9.0.0/16"), Some(PeerId(2))),
                // Holds dc1's peer address: routed into dc1 (the engine pins the peer).
                (p("10.0.0.0/8"), Some(PeerId(0))),
            ]),
            &fabric,
        );
        let mut cmds = engine.drain();
        cmds.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            cmds,
            [
                EngineCommand::SetLearned {
                    conn: "dc1".into(),
                    prefixes: vec![p("10.0.0.0/8"), p("10.1.0.0/16"), p("192.168.10.0/24")]
                },
                EngineCommand::SetLearned {
                    conn: "dc2".into(),
                    prefixes: vec![p("10.2.0.0/16")]
                },
            ]
        );
        // dc1 publishes (not the [[route]] prefix, whose publication is the operator's);
        // the line neighbour publishes too; dc2 does not.
        assert_eq!(
            routes(&mut published),
            [
                (p("10.1.0.0/16"), true),
                (p("10.9.0.0/16"), true),
                (p("10.0.0.0/8"), true)
            ]
        );
        // The dc1 session goes down: its routes leave the connection and the fabric.
        t.notice(
            Notice::Selected(vec![
                (p("10.1.0.0/16"), None),
                (p("192.168.10.0/24"), None),
                (p("10.0.0.0/8"), None),
            ]),
            &fabric,
        );
        assert_eq!(
            engine.drain(),
            [EngineCommand::SetLearned {
                conn: "dc1".into(),
                prefixes: vec![]
            }]
        );
        assert_eq!(
            routes(&mut published),
            [(p("10.1.0.0/16"), false), (p("10.0.0.0/8"), false)]
        );
        // A prefix moving from dc2 to dc1 updates both connections.
        t.notice(
            Notice::Selected(vec![(p("10.2.0.0/16"), Some(PeerId(0)))]),
            &fabric,
        );
        let mut cmds = engine.drain();
        cmds.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            cmds,
            [
                EngineCommand::SetLearned {
                    conn: "dc1".into(),
                    prefixes: vec![p("10.2.0.0/16")]
                },
                EngineCommand::SetLearned {
                    conn: "dc2".into(),
                    prefixes: vec![]
                },
            ]
        );
        assert_eq!(routes(&mut published), [(p("10.2.0.0/16"), true)]);
    }

    #[test]
    fn metrics_have_one_state_set_per_neighbor() {
        let v = NeighborView {
            name: "dc1".into(),
            address: "169.254.10.2".parse().unwrap(),
            remote_as: 65000,
            local_address: None,
            connection: Some("dc1".into()),
            transport_up: true,
            state: "Established".into(),
            established_seconds: Some(5),
            peer_router_id: None,
            hold_time: Some(30),
            prefixes_received: 3,
            prefixes_advertised: 1,
            updates_in: 4,
            updates_out: 2,
            flaps: 1,
            last_down: None,
        };
        let mut out = Exposition::default();
        write_metrics(&mut out, &[v]);
        let text = out.finish();
        for line in [
            "vpngw_bgp_session_state{neighbor=\"dc1\",state=\"Established\"} 1\n",
            "vpngw_bgp_session_state{neighbor=\"dc1\",state=\"Idle\"} 0\n",
            "vpngw_bgp_prefixes_received{neighbor=\"dc1\"} 3\n",
            "vpngw_bgp_prefixes_advertised{neighbor=\"dc1\"} 1\n",
            "vpngw_bgp_updates_received_total{neighbor=\"dc1\"} 4\n",
            "vpngw_bgp_updates_sent_total{neighbor=\"dc1\"} 2\n",
            "vpngw_bgp_session_flaps_total{neighbor=\"dc1\"} 1\n",
            "# TYPE vpngw_bgp_session_flaps_total counter\n",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
