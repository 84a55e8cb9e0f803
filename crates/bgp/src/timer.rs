//! Timers: the names the FSM uses in [`Output::SetTimer`](crate::neighbor::Output::SetTimer)
//! and [`Input::TimerExpired`](crate::neighbor::Input::TimerExpired), and a table a driver
//! can keep them in.
//!
//! The core never reads a clock. A driver keeps one [`TimerTable`] per peer, applies the
//! set/clear outputs with its own notion of "now" (a [`Duration`] since any epoch: a real
//! `Instant` difference, or virtual time in tests), sleeps until
//! [`TimerTable::next_deadline`], and feeds back what [`TimerTable::pop_expired`] returns.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The timers of one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// ConnectRetryTimer (RFC 4271 §10).
    ConnectRetry,
    /// HoldTimer (RFC 4271 §10).
    Hold,
    /// KeepaliveTimer (RFC 4271 §10).
    Keepalive,
    /// IdleHoldTimer (RFC 4271 §8.1.3): delay before an automatic restart.
    IdleHold,
    /// Graceful-restart helper: how long a restarting peer's stale routes are kept
    /// (RFC 4724 §4.2). Set and handled by the [`Speaker`](crate::Speaker).
    GracefulRestart,
}

impl Timer {
    /// Every timer.
    pub const ALL: [Self; 5] = [
        Self::ConnectRetry,
        Self::Hold,
        Self::Keepalive,
        Self::IdleHold,
        Self::GracefulRestart,
    ];

    const fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines of one peer's timers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Duration>; 5],
}

impl TimerTable {
    /// No timer armed.
    pub const fn new() -> Self {
        Self {
            deadlines: [None; 5],
        }
    }

    /// Arms `timer` to fire at `now + after`.
    pub fn set(&mut self, timer: Timer, now: Duration, after: Duration) {
        if let Some(d) = self.deadlines.get_mut(timer.index()) {
            *d = Some(now.saturating_add(after));
        }
    }

    /// Disarms `timer`.
    pub fn clear(&mut self, timer: Timer) {
        if let Some(d) = self.deadlines.get_mut(timer.index()) {
            *d = None;
        }
    }

    /// When `timer` fires, if armed.
    pub fn deadline(&self, timer: Timer) -> Option<Duration> {
        self.deadlines.get(timer.index()).copied().flatten()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The earliest timer due at `now`, disarmed; ties go in [`Timer::ALL`] order.
    pub fn pop_expired(&mut self, now: Duration) -> Option<Timer> {
        let (t, _) = Timer::ALL
            .iter()
            .filter_map(|t| Some((*t, self.deadline(*t)?)))
            .filter(|(_, d)| *d <= now)
            .min_by_key(|(_, d)| *d)?;
        self.clear(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_orders_and_clears() {
        let mut t = TimerTable::new();
        let s = Duration::from_secs;
        t.set(Timer::Hold, s(10), s(30));
        t.set(Timer::Keepalive, s(10), s(10));
        assert_eq!(t.next_deadline(), Some(s(20)));
        assert_eq!(t.pop_expired(s(19)), None);
        assert_eq!(t.pop_expired(s(40)), Some(Timer::Keepalive));
        assert_eq!(t.pop_expired(s(40)), Some(Timer::Hold));
        assert_eq!(t.pop_expired(s(40)), None);
        t.set(Timer::IdleHold, s(0), s(1));
        t.clear(Timer::IdleHold);
        assert_eq!(t.next_deadline(), None);
    }
}
