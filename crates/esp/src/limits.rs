//! SA lifetimes counted in packets and bytes ([RFC 4301] §4.4.2.1), reported as events.
//!
//! A soft limit asks the control plane to rekey; a hard limit stops the SA. Each SA emits
//! at most one soft and one hard event. Bytes are those the cipher was applied to: the
//! ESP ciphertext (payload, padding, Pad Length, Next Header), as RFC 4301 counts them.
//!
//! [RFC 4301]: https://www.rfc-editor.org/rfc/rfc4301#section-4.4.2.1

use std::fmt;

use crate::error::ConfigError;

/// Byte and packet limits of an SA. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Packets after which a soft event asks for a rekey.
    pub soft_packets: Option<u64>,
    /// Packets after which the SA refuses more.
    pub hard_packets: Option<u64>,
    /// Bytes after which a soft event asks for a rekey.
    pub soft_bytes: Option<u64>,
    /// Bytes after which the SA refuses more.
    pub hard_bytes: Option<u64>,
}

impl Limits {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let above = |soft: Option<u64>, hard: Option<u64>| matches!((soft, hard), (Some(s), Some(h)) if s > h);
        if above(self.soft_packets, self.hard_packets) {
            return Err(ConfigError::Limits(LimitKind::Packets));
        }
        if above(self.soft_bytes, self.hard_bytes) {
            return Err(ConfigError::Limits(LimitKind::Bytes));
        }
        Ok(())
    }
}

/// Which limit an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The packet count.
    Packets,
    /// The byte count.
    Bytes,
    /// The outbound sequence number space (soft at 15/16 of it, hard when exhausted).
    SequenceNumber,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Packets => "packet",
            Self::Bytes => "byte",
            Self::SequenceNumber => "sequence number",
        })
    }
}

/// What an SA tells the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaEvent {
    /// A soft limit was reached: negotiate a replacement SA (CREATE_CHILD_SA rekey).
    SoftLimit(LimitKind),
    /// A hard limit was reached: the SA refuses further packets; delete it.
    HardLimit(LimitKind),
}

/// Counts and limit state of one SA.
#[derive(Debug, Clone)]
pub(crate) struct Lifetime {
    limits: Limits,
    packets: u64,
    bytes: u64,
    soft_fired: bool,
    hard: Option<LimitKind>,
    pending_soft: Option<LimitKind>,
    pending_hard: Option<LimitKind>,
}

impl Lifetime {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            packets: 0,
            bytes: 0,
            soft_fired: false,
            hard: None,
            pending_soft: None,
            pending_hard: None,
        }
    }

    pub(crate) fn packets(&self) -> u64 {
        self.packets
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hard limit reached, if any: the SA must refuse the next packet.
    pub(crate) fn expired(&self) -> Option<LimitKind> {
        self.hard
    }

    /// Marks the SA hard-expired (used for sequence exhaustion).
    pub(crate) fn expire(&mut self, kind: LimitKind) {
        if self.hard.is_none() {
            self.hard = Some(kind);
            self.pending_hard = Some(kind);
        }
    }

    /// Raises the soft event for `kind` unless one was already raised.
    pub(crate) fn soften(&mut self, kind: LimitKind) {
        if !self.soft_fired {
            self.soft_fired = true;
            self.pending_soft = Some(kind);
        }
    }

    /// Counts one packet of `bytes` ciphertext bytes and raises the events it causes.
    pub(crate) fn record(&mut self, bytes: usize) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes as u64);
        let reached = |count: u64, limit: Option<u64>| limit.is_some_and(|l| count >= l);
        if reached(self.packets, self.limits.soft_packets) {
            self.soften(LimitKind::Packets);
        } else if reached(self.bytes, self.limits.soft_bytes) {
            self.soften(LimitKind::Bytes);
        }
        if reached(self.packets, self.limits.hard_packets) {
            self.expire(LimitKind::Packets);
        } else if reached(self.bytes, self.limits.hard_bytes) {
            self.expire(LimitKind::Bytes);
        }
    }

    /// Pops the next pending event; a soft event always comes out before a hard one, so the
    /// control plane sees the edges in the order they were crossed.
    pub(crate) fn poll_event(&mut self) -> Option<SaEvent> {
        if let Some(kind) = self.pending_soft.take() {
            return Some(SaEvent::SoftLimit(kind));
        }
        self.pending_hard.take().map(SaEvent::HardLimit)
    }

    pub(crate) fn has_pending_event(&self) -> bool {
        self.pending_soft.is_some() || self.pending_hard.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fire_once_soft_then_hard() {
        let mut l = Lifetime::new(Limits {
            soft_packets: Some(2),
            hard_packets: Some(3),
            ..Limits::default()
        });
        l.record(10);
        assert_eq!(l.poll_event(), None);
        l.record(10);
        assert_eq!(l.poll_event(), Some(SaEvent::SoftLimit(LimitKind::Packets)));
        assert_eq!(l.poll_event(), None);
        assert_eq!(l.expired(), None);
        l.record(10);
        assert_eq!(l.expired(), Some(LimitKind::Packets));
        assert_eq!(l.poll_event(), Some(SaEvent::HardLimit(LimitKind::Packets)));
        assert_eq!(l.poll_event(), None);
        l.record(10);
        assert_eq!(l.poll_event(), None);
    }

    #[test]
    fn soft_before_hard_when_both_in_one_packet() {
        let mut l = Lifetime::new(Limits {
            soft_bytes: Some(100),
            hard_bytes: Some(100),
            ..Limits::default()
        });
        l.record(150);
        assert_eq!(l.poll_event(), Some(SaEvent::SoftLimit(LimitKind::Bytes)));
        assert_eq!(l.poll_event(), Some(SaEvent::HardLimit(LimitKind::Bytes)));
        assert_eq!(l.poll_event(), None);
    }

    #[test]
    fn validate() {
        let bad = Limits {
            soft_bytes: Some(2),
            hard_bytes: Some(1),
            ..Limits::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Limits(LimitKind::Bytes)));
        assert_eq!(Limits::default().validate(), Ok(()));
    }
}
