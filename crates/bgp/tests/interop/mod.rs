//! Shared pieces of the interop tests against real BGP daemons: a pair of network namespaces
//! joined by a veth (removed by a guard, even on panic), a daemon process killed by PID, and
//! a small blocking driver for one `bgp::Speaker` peer running on a thread that `setns(2)`ed
//! into our namespace.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    fs,
    io::{ErrorKind, Read, Write},
    net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bgp::{
    neighbor::Direction,
    neighbor::Negotiated,
    packet::MARKER,
    policy::{ExportPolicy, ImportPolicy, MaxPrefix, MaxPrefixAction, PrefixFilter},
    Event, Input, LocalRoute, Output, PeerConfig, PeerId, Speaker, SpeakerConfig, State,
    TimerTable,
};

/// The prefixes our speaker originates toward every daemon.
pub(crate) const OUR_ROUTES: [&str; 3] = ["10.202.0.0/24", "10.202.1.0/24", "2001:db8:202::/48"];

/// Runs a command, panicking with its output on failure.
pub(crate) fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces `<prefix>-d` (the daemon) and `<prefix>-s` (the speaker under test) with a
/// veth `v0` between them: 10.99.0.1/24 + fd00:99::1/64 on the daemon side, 10.99.0.2/24 +
/// fd00:99::2/64 on ours. Deleted on drop, with everything running inside.
pub(crate) struct Lab {
    pub(crate) daemon_ns: String,
    pub(crate) our_ns: String,
    pub(crate) dir: PathBuf,
}

pub(crate) const DAEMON_V4: &str = "10.99.0.1";
pub(crate) const OUR_V4: &str = "10.99.0.2";
pub(crate) const DAEMON_V6: &str = "fd00:99::1";
pub(crate) const OUR_V6: &str = "fd00:99::2";

impl Lab {
    pub(crate) fn new(tag: &str) -> Self {
        // `BGP_NETNS_PREFIX` lets concurrent runs (CI, several developers) keep apart.
        let ns = std::env::var("BGP_NETNS_PREFIX").unwrap_or_else(|_| "vbt".to_owned());
        let prefix = format!("{ns}-{tag}-{}", std::process::id());
        let lab = Self {
            daemon_ns: format!("{prefix}-d"),
            our_ns: format!("{prefix}-s"),
            dir: std::env::temp_dir().join(&prefix),
        };
        let _ = fs::remove_dir_all(&lab.dir);
        fs::create_dir_all(&lab.dir).unwrap();
        for ns in [&lab.daemon_ns, &lab.our_ns] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip",
            "link",
            "add",
            "v0",
            "netns",
            &lab.daemon_ns,
            "type",
            "veth",
            "peer",
            "name",
            "v0",
            "netns",
            &lab.our_ns,
        ]);
        for (ns, v4, v6) in [
            (&lab.daemon_ns, DAEMON_V4, DAEMON_V6),
            (&lab.our_ns, OUR_V4, OUR_V6),
        ] {
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "dev",
                "v0",
            ]);
            sh(&[
                "ip",
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "v0",
                "nodad",
            ]);
            sh(&["ip", "-n", ns, "link", "set", "v0", "up"]);
        }
        lab
    }

    /// Runs `f` on a thread inside our namespace; its panic is the caller's.
    pub(crate) fn run_ours(&self, f: fn(&Self)) {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_netns(&self.our_ns);
                f(self);
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        });
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.daemon_ns, &self.our_ns] {
            // Anything still running in the namespace (a daemon we failed to kill) first.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("BGP_KEEP_LAB_DIR").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A daemon started under `ip netns exec`, killed by PID on drop.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) name: &'static str,
}

impl Daemon {
    pub(crate) fn spawn(name: &'static str, ns: &str, args: &[&str], log: &Path) -> Self {
        let log = fs::File::create(log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { child, name }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // `ip netns exec` execs the daemon, so this PID is the daemon's.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Moves the calling thread into namespace `ns` (sockets it opens afterwards live there).
pub(crate) fn enter_netns(ns: &str) {
    let f = fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// Polls `f` every 50 ms until it returns true or `max` passes.
pub(crate) fn wait_for(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + max;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A blocking driver for one peer of a `Speaker`: std::net sockets, a `TimerTable`, an
/// `rib::Table` fed by the events. Call it only from the thread that entered our namespace.
pub(crate) struct Driver {
    pub(crate) speaker: Speaker,
    pub(crate) peer: PeerId,
    pub(crate) stream: Option<TcpStream>,
    listener: TcpListener,
    timers: TimerTable,
    start: Instant,
    pub(crate) events: Vec<(Duration, Event)>,
    pub(crate) table: rib::Table,
    /// Every message received, raw, for fixtures.
    pub(crate) received: Vec<Vec<u8>>,
    partial: Vec<u8>,
    pub(crate) established_at: Option<Duration>,
}

impl Driver {
    pub(crate) fn new(asn: u32, config: PeerConfig) -> Self {
        let mut speaker = Speaker::new(SpeakerConfig {
            asn,
            router_id: OUR_V4.parse().unwrap(),
        })
        .unwrap();
        let peer = speaker.add_peer(config).unwrap();
        let listener = TcpListener::bind((OUR_V4, 179)).unwrap();
        listener.set_nonblocking(true).unwrap();
        Self {
            speaker,
            peer,
            stream: None,
            listener,
            timers: TimerTable::new(),
            start: Instant::now(),
            events: Vec::new(),
            table: rib::Table::new(),
            received: Vec::new(),
            partial: Vec::new(),
            established_at: None,
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub(crate) fn state(&self) -> State {
        self.speaker.session(self.peer).unwrap().state()
    }

    pub(crate) fn input(&mut self, input: Input) {
        let out = self.speaker.process(self.peer, input);
        self.apply(out);
    }

    pub(crate) fn with(&mut self, f: impl FnOnce(&mut Speaker, PeerId) -> Vec<Output>) {
        let out = f(&mut self.speaker, self.peer);
        self.apply(out);
    }

    fn apply(&mut self, out: Vec<Output>) {
        let mut queue: std::collections::VecDeque<Output> = out.into();
        while let Some(o) = queue.pop_front() {
            let now = self.now();
            match o {
                Output::Connect { remote, .. } => {
                    let input = match TcpStream::connect_timeout(&remote, Duration::from_secs(2)) {
                        Ok(s) => {
                            let local = s.local_addr().unwrap();
                            s.set_nodelay(true).unwrap();
                            self.stream = Some(s);
                            Input::TcpConnected {
                                local,
                                remote,
                                direction: Direction::Active,
                            }
                        }
                        Err(_) => Input::TcpFailed,
                    };
                    queue.extend(self.speaker.process(self.peer, input));
                }
                Output::Close { .. } => {
                    if let Some(mut s) = self.stream.take() {
                        // Close gracefully: FIN after the NOTIFICATION just written, then drain
                        // what the peer still sends. Closing with unread data makes the kernel
                        // answer with a RST, which discards the NOTIFICATION unsent.
                        let _ = s.shutdown(Shutdown::Write);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                        let deadline = Instant::now() + Duration::from_secs(1);
                        let mut sink = [0u8; 4096];
                        while Instant::now() < deadline {
                            match s.read(&mut sink) {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            }
                        }
                    }
                }
                Output::Send { bytes, .. } => {
                    let failed = match self.stream.as_mut() {
                        Some(s) => s.write_all(&bytes).is_err(),
                        None => false,
                    };
                    if failed {
                        self.stream = None;
                        queue.extend(self.speaker.process(self.peer, Input::TcpFailed));
                    }
                }
                Output::SetTimer { timer, after, .. } => self.timers.set(timer, now, after),
                Output::ClearTimer { timer, .. } => self.timers.clear(timer),
                // This driver takes a connection only while the session accepts one, never a
                // second, so no collision arises.
                Output::CollisionSend { .. }
                | Output::CollisionClose { .. }
                | Output::CollisionWon { .. } => {}
                Output::Event(e) => {
                    match &e {
                        Event::RoutesChanged(changes) => {
                            for c in changes {
                                if let Some(old) = &c.old {
                                    self.table.remove(old);
                                }
                                if let Some(new) = &c.new {
                                    self.table.insert(new.clone());
                                }
                            }
                        }
                        Event::Established { .. } => {
                            self.established_at.get_or_insert(now);
                        }
                        _ => {}
                    }
                    self.events.push((now, e));
                }
            }
        }
    }

    /// Records whole messages from the byte stream (for fixtures).
    fn record(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= 19 && self.partial[..16] == MARKER {
            let len = usize::from(u16::from_be_bytes([self.partial[16], self.partial[17]]));
            if len < 19 || self.partial.len() < len {
                break;
            }
            self.received.push(self.partial.drain(..len).collect());
        }
    }

    /// One round: accept, read (up to 20 ms), fire due timers.
    pub(crate) fn poll(&mut self) {
        if let Ok((s, from)) = self.listener.accept() {
            let ours = self.speaker.session(self.peer).unwrap().config().address;
            if from.ip() == ours && self.speaker.accepts_connection(self.peer) {
                s.set_nonblocking(false).unwrap();
                s.set_nodelay(true).unwrap();
                let local = s.local_addr().unwrap();
                self.stream = Some(s);
                self.partial.clear();
                self.input(Input::TcpConnected {
                    local,
                    remote: from,
                    direction: Direction::Passive,
                });
            } else {
                drop(s);
            }
        }
        let mut buf = vec![0u8; 65536];
        let read = self.stream.as_mut().map(|s| {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            s.read(&mut buf)
        });
        match read {
            None => std::thread::sleep(Duration::from_millis(20)),
            Some(Ok(0)) => {
                self.stream = None;
                self.partial.clear();
                self.input(Input::TcpFailed);
            }
            Some(Ok(n)) => {
                self.record(&buf[..n]);
                let out = self.speaker.handle_bytes(self.peer, &buf[..n]);
                self.apply(out);
            }
            Some(Err(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Some(Err(_)) => {
                self.stream = None;
                self.partial.clear();
                self.input(Input::TcpFailed);
            }
        }
        while let Some(t) = self.timers.pop_expired(self.now()) {
            self.input(Input::TimerExpired(t));
        }
    }

    /// Polls until `pred` holds or `max` passes.
    pub(crate) fn run_until(&mut self, max: Duration, mut pred: impl FnMut(&Self) -> bool) -> bool {
        let deadline = self.now() + max;
        loop {
            if pred(self) {
                return true;
            }
            if self.now() >= deadline {
                return false;
            }
            self.poll();
        }
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let deadline = self.now() + d;
        while self.now() < deadline {
            self.poll();
        }
    }

    /// The selected route of `prefix`; panics when there is none.
    pub(crate) fn best(&self, prefix: &str) -> rib::Route {
        self.table
            .best(prefix.parse().unwrap())
            .unwrap_or_else(|| panic!("no route for {prefix}: {:?}", self.table))
            .primary()
            .clone()
    }

    pub(crate) fn has(&self, prefix: &str) -> bool {
        self.table.best(prefix.parse().unwrap()).is_some()
    }

    pub(crate) fn updates_in(&self) -> u64 {
        self.speaker.session(self.peer).unwrap().stats().updates_in
    }

    pub(crate) fn updates_out(&self) -> u64 {
        self.speaker.session(self.peer).unwrap().stats().updates_out
    }

    pub(crate) fn refreshes_in(&self) -> u64 {
        self.speaker
            .session(self.peer)
            .unwrap()
            .stats()
            .refreshes_in
    }

    /// Writes every received message of the given types as one hex file each into `dir`,
    /// named `<prefix>-<n>-<type>.hex`.
    pub(crate) fn write_fixtures(&self, dir: &Path, prefix: &str) {
        fs::create_dir_all(dir).unwrap();
        for (i, m) in self.received.iter().enumerate() {
            let kind = match m[18] {
                1 => "open",
                2 => "update",
                3 => "notification",
                4 => continue,
                5 => "route-refresh",
                _ => "unknown",
            };
            let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
            fs::write(dir.join(format!("{prefix}-{i:03}-{kind}.hex")), hex + "\n").unwrap();
        }
    }
}

/// Our side of a session with the daemon `name` (AS `peer_as`) at [`DAEMON_V4`]: short hold
/// and retry timers, everything imported and exported, our IPv6 next hop; then `tweak`.
pub(crate) fn our_config(
    name: &str,
    peer_as: u32,
    tweak: impl FnOnce(&mut PeerConfig),
) -> PeerConfig {
    let mut c = PeerConfig::new(name, peer_ip(DAEMON_V4), peer_as);
    c.hold_time = 9;
    c.connect_retry = 1;
    c.import = ImportPolicy::permit_all();
    c.export = ExportPolicy::permit_all();
    c.next_hop_v6 = Some(OUR_V6.parse().unwrap());
    tweak(&mut c);
    c
}

/// Our speaker (AS 65002) originating [`OUR_ROUTES`], started against the daemon `name`
/// (AS `peer_as`, configured by [`our_config`]) and Established within `max`, else a panic
/// with `diag`, the daemon's own view. Returns it with what the session negotiated.
pub(crate) fn established(
    name: &str,
    peer_as: u32,
    max: Duration,
    diag: impl FnOnce() -> String,
) -> (Driver, Negotiated) {
    let mut d = Driver::new(65002, our_config(name, peer_as, |_| {}));
    for p in OUR_ROUTES {
        d.with(|s, _| s.originate(p.parse().unwrap(), LocalRoute::default()));
    }
    let t0 = d.now();
    d.input(Input::ManualStart);
    if !d.run_until(max, |d| d.state() == State::Established) {
        panic!(
            "no session: state {:?}, {name} says:\n{}",
            d.state(),
            diag()
        );
    }
    println!(
        "session Established {:?} after ManualStart",
        d.established_at.unwrap() - t0
    );
    let neg = d
        .speaker
        .session(d.peer)
        .unwrap()
        .negotiated()
        .unwrap()
        .clone();
    (d, neg)
}

/// Max-prefix with a limit of two against a daemon that announces three prefixes: with
/// drop-excess we keep two and the session; with reset the session goes down and stays Idle.
/// What the daemon saw of our Cease is the caller's to check.
pub(crate) fn max_prefix_drop_then_reset(name: &str, peer_as: u32) {
    let limit = |action| {
        our_config(name, peer_as, move |c| {
            c.import = ImportPolicy {
                filter: Some(PrefixFilter::permit_all()),
                max_prefix: Some(MaxPrefix {
                    limit: 2,
                    action,
                    warning_threshold: 100,
                }),
                local_pref: None,
            };
        })
    };
    let mut d = Driver::new(65002, limit(MaxPrefixAction::DropExcess));
    d.input(Input::ManualStart);
    assert!(d.run_until(Duration::from_secs(20), |d| d.state() == State::Established));
    d.run_for(Duration::from_secs(2));
    assert_eq!(d.table.iter().count(), 2);
    assert_eq!(d.state(), State::Established);
    d.input(Input::ManualStop);
    d.run_for(Duration::from_millis(300));
    drop(d);

    let mut d = Driver::new(
        65002,
        limit(MaxPrefixAction::Reset {
            restart_after: None,
        }),
    );
    d.input(Input::ManualStart);
    assert!(d.run_until(Duration::from_secs(20), |d| d
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::Down { .. }))));
    d.run_for(Duration::from_millis(500));
    assert_eq!(d.state(), State::Idle);
}

pub(crate) fn peer_ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(peer_ip(ip), port)
}
