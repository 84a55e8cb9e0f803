//! The engine's wake-ups: one epoll set holding the TUN device, every outer socket, an
//! eventfd that says commands are queued and a timerfd for the engine's next deadline, each
//! registered for readability only and level-triggered.
//!
//! This is boringtun's loop rather than an async runtime's: a packet that wakes the engine is
//! read on return from `epoll_wait`, with no driver dispatching readiness to wakers and no
//! task being polled in between. That path (tokio's park and unpark: the I/O driver's event
//! dispatch, the time driver, the waker, all of it cold after a few milliseconds asleep) made
//! an idle round trip ~10 % longer: 1.24x boringtun's before this loop, 1.12x after, in the
//! same alternating rounds (`bench/throughput.sh`, `RTT_ROUNDS`). Readability only, because the kernel
//! finishing a send would otherwise be one more wake-up per datagram; level-triggered,
//! because the engine reads at most a bounded batch per source and wake-up and must be
//! woken again for the rest. The deadline is a timerfd set when it moves, not `epoll_wait`'s
//! timeout, which would arm and cancel a kernel timer around every sleep.

use std::{
    io,
    os::fd::AsFd,
    sync::{mpsc, Arc},
    time::Instant,
};

use nix::{
    errno::Errno,
    sys::{
        epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout},
        eventfd::{EfdFlags, EventFd},
        time::TimeSpec,
        timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
    },
};

use super::engine::EngineCommand;

/// How the rest of the daemon reaches the engine: the command queue, and its doorbell.
#[derive(Debug, Clone)]
pub(crate) struct Commands {
    tx: mpsc::Sender<EngineCommand>,
    bell: Arc<EventFd>,
}

/// The engine's end of [`Commands`].
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::Receiver<EngineCommand>,
    bell: Arc<EventFd>,
}

/// A command queue for one engine.
pub(crate) fn commands() -> io::Result<(Commands, Inbox)> {
    let bell = Arc::new(EventFd::from_flags(
        EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
    )?);
    let (tx, rx) = mpsc::channel();
    Ok((
        Commands {
            tx,
            bell: Arc::clone(&bell),
        },
        Inbox { rx, bell },
    ))
}

impl Commands {
    /// Queues `cmd` and wakes the engine; false once the engine has stopped.
    pub(crate) fn send(&self, cmd: EngineCommand) -> bool {
        if self.tx.send(cmd).is_err() {
            return false;
        }
        // Adds 1 to the eventfd's counter; it cannot overflow (the engine empties it on every
        // wake-up), and an error would leave the command for the next wake-up, not lose it.
        let _ = self.bell.write(1);
        true
    }
}

/// What [`Inbox::next`] found.
#[derive(Debug)]
pub(crate) enum Next {
    Command(EngineCommand),
    Empty,
    /// Every [`Commands`] is gone: nothing can reach the engine any more.
    Closed,
}

impl Inbox {
    /// The next queued command.
    pub(crate) fn next(&self) -> Next {
        match self.rx.try_recv() {
            Ok(cmd) => Next::Command(cmd),
            Err(mpsc::TryRecvError::Empty) => Next::Empty,
            Err(mpsc::TryRecvError::Disconnected) => Next::Closed,
        }
    }

    /// Every queued command.
    #[cfg(test)]
    pub(crate) fn drain(&self) -> Vec<EngineCommand> {
        std::iter::from_fn(|| match self.next() {
            Next::Command(cmd) => Some(cmd),
            Next::Empty | Next::Closed => None,
        })
        .collect()
    }

    /// Silences the doorbell before the queue is read: a command queued after this rings it
    /// again, so none waits for an unrelated wake-up.
    fn quiet(&self) {
        // EAGAIN when it was not rung: nothing to clear.
        let _ = self.bell.read();
    }
}

/// What woke the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ready {
    Tun,
    /// The TUN device is in error: deleted under the daemon.
    TunFailed,
    /// The outer socket at this index of the engine's list.
    Socket(usize),
    Commands,
}

const TUN: u64 = u64::MAX;
const COMMANDS: u64 = u64::MAX - 1;
const TIMER: u64 = u64::MAX - 2;

/// The epoll set and the buffer its events land in.
pub(crate) struct Reactor {
    epoll: Epoll,
    events: Vec<EpollEvent>,
    /// Fires at the engine's deadline.
    timer: TimerFd,
    /// The deadline `timer` is set for, if it has not fired yet.
    armed: Option<Instant>,
}

/// Events taken per `epoll_wait`: every source of a gateway with a few local addresses; a
/// gateway with more gets the rest on the next call (level-triggered, nothing is lost).
pub(super) const EVENTS: usize = 64;

impl Reactor {
    /// An epoll set with the TUN device, `sockets` (each with the index it is reported by, as
    /// [`Ready::Socket`]), the inbox's doorbell and the deadline's timer.
    pub(super) fn new<'a>(
        tun: impl AsFd,
        sockets: impl IntoIterator<Item = (usize, &'a std::net::UdpSocket)>,
        inbox: &Inbox,
    ) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(tun, EpollEvent::new(EpollFlags::EPOLLIN, TUN))?;
        epoll.add(
            inbox.bell.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, COMMANDS),
        )?;
        // CLOCK_MONOTONIC, as `Instant`.
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        epoll.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER))?;
        let reactor = Self {
            epoll,
            events: vec![EpollEvent::empty(); EVENTS],
            timer,
            armed: None,
        };
        for (i, s) in sockets {
            reactor.add_socket(i, s)?;
        }
        Ok(reactor)
    }

    /// Sleeps until a source is readable or `until` passes, then says which sources are
    /// ready: data first, so that a packet that woke the engine is on its way before anything
    /// else is looked at.
    pub(super) fn wait(&mut self, until: Instant, inbox: &Inbox, ready: &mut Vec<Ready>) {
        ready.clear();
        let timeout = match until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => {
                if self.armed == Some(until) || self.arm(until, left) {
                    EpollTimeout::NONE
                } else {
                    // Rounded up: a wait cut short would wake before the deadline for nothing.
                    let ms = left.as_nanos().div_ceil(1_000_000).min(1_000);
                    EpollTimeout::from(u16::try_from(ms).unwrap_or(1_000))
                }
            }
            // Due already: look at the sources without sleeping.
            _ => EpollTimeout::ZERO,
        };
        let n = match self.epoll.wait(&mut self.events, timeout) {
            Ok(n) => n,
            // A signal for another thread of the daemon: the caller checks its timers and
            // comes back.
            Err(Errno::EINTR) => 0,
            Err(e) => {
                tracing::error!("epoll_wait: {e}");
                0
            }
        };
        let mut commands = false;
        for ev in self.events.iter().take(n) {
            match ev.data() {
                TUN if ev.events().contains(EpollFlags::EPOLLERR) => ready.push(Ready::TunFailed),
                TUN => ready.push(Ready::Tun),
                COMMANDS => commands = true,
                TIMER => {
                    // Read, or it stays readable; the caller finds the deadline passed.
                    let _ = nix::unistd::read(&self.timer, &mut [0u8; 8]);
                    self.armed = None;
                }
                i => ready.push(Ready::Socket(i as usize)),
            }
        }
        if commands {
            // Last: commands can wait for the packets that woke the engine with them.
            inbox.quiet();
            ready.push(Ready::Commands);
        }
    }

    /// Sets the timer to fire `left` from now, at `until` (never before: `left` was measured
    /// before the call). False if the kernel refused, which a valid timerfd never does; the
    /// wait then has a timeout of its own.
    fn arm(&mut self, until: Instant, left: std::time::Duration) -> bool {
        let set = self.timer.set(
            Expiration::OneShot(TimeSpec::from_duration(left)),
            TimerSetTimeFlags::empty(),
        );
        self.armed = set.is_ok().then_some(until);
        if let Err(e) = set {
            tracing::debug!("setting the tunnel engine's timer: {e}");
        }
        set.is_ok()
    }

    /// Takes the TUN device out of the set: in error, it would wake the engine forever.
    pub(super) fn remove_tun(&self, tun: impl AsFd) {
        let _ = self.epoll.delete(tun);
    }

    /// Watches a socket, as [`Ready::Socket`]`(i)`.
    pub(super) fn add_socket(&self, i: usize, sock: impl AsFd) -> io::Result<()> {
        self.epoll
            .add(sock, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .map_err(io::Error::from)
    }

    /// Stops watching a socket about to close.
    pub(super) fn remove_socket(&self, sock: impl AsFd) {
        let _ = self.epoll.delete(sock);
    }
}
