//! The timers of one IKE SA (quinn-proto's `TimerTable` shape).

use std::time::Instant;

/// A timer of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Retransmit the outstanding request, or give up.
    Retransmit = 0,
    /// Liveness check (DPD) when nothing was heard for `dpd_interval`.
    Dpd = 1,
    /// NAT-T keepalive (we are behind a NAT).
    Keepalive = 2,
    /// IKE SA soft lifetime: rekey.
    Rekey = 3,
    /// IKE SA hard lifetime: delete.
    Expire = 4,
    /// Half-open timeout, or the end of a closed SA's grace period in which it still
    /// answers retransmitted requests.
    Linger = 5,
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; 6],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, time: Instant) {
        if let Some(slot) = self.data.get_mut(timer as usize) {
            *slot = Some(time);
        }
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data.get(timer as usize).copied().flatten()
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.data.get_mut(timer as usize) {
            *slot = None;
        }
    }

    pub(crate) fn stop_all(&mut self) {
        self.data = Default::default();
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` is set and due at `now`; clears it if so.
    pub(crate) fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        match self.get(timer) {
            Some(t) if t <= now => {
                self.stop(timer);
                true
            }
            _ => false,
        }
    }
}
