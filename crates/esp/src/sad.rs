//! The inbound Security Association Database: SAs keyed by SPI, the receive path, and its
//! counters and events.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use crate::counters::{DropCounters, RxCounters};
use crate::encap::{self, Datagram};
use crate::error::{RecvError, SadError};
use crate::limits::SaEvent;
use crate::sa::{InboundSa, Inner, OutboundSa};
use crate::wire::esp::{Packet, Spi};

/// What a received datagram turned out to be, and where its bytes go. Ranges index the
/// buffer that was passed in; the inner packet is decrypted in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An inner IPv4 packet: write `buf[range]` to the tunnel interface.
    Ipv4 {
        /// SA it arrived on.
        spi: Spi,
        /// Its sequence number.
        seq: u64,
        /// The inner packet, without TFC padding.
        range: Range<usize>,
    },
    /// An inner IPv6 packet: write `buf[range]` to the tunnel interface.
    Ipv6 {
        /// SA it arrived on.
        spi: Spi,
        /// Its sequence number.
        seq: u64,
        /// The inner packet, without TFC padding.
        range: Range<usize>,
    },
    /// An authenticated dummy packet (Next Header 59): discard it ([RFC 4303] §2.6). Its
    /// sequence number is consumed like any other.
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.6
    Dummy {
        /// SA it arrived on.
        spi: Spi,
        /// Its sequence number.
        seq: u64,
    },
    /// An IKE message (UDP port 4500, after the non-ESP marker): hand `buf[range]` to IKE.
    Ike {
        /// The IKE message.
        range: Range<usize>,
    },
    /// A NAT-keepalive: nothing to do.
    NatKeepalive,
}

impl Received {
    /// The range of bytes to pass on, if any (inner packet or IKE message).
    pub fn range(&self) -> Option<Range<usize>> {
        match self {
            Self::Ipv4 { range, .. } | Self::Ipv6 { range, .. } | Self::Ike { range } => {
                Some(range.clone())
            }
            Self::Dummy { .. } | Self::NatKeepalive => None,
        }
    }

    fn offset(self, by: usize) -> Self {
        let shift = |r: Range<usize>| r.start + by..r.end + by;
        match self {
            Self::Ipv4 { spi, seq, range } => Self::Ipv4 {
                spi,
                seq,
                range: shift(range),
            },
            Self::Ipv6 { spi, seq, range } => Self::Ipv6 {
                spi,
                seq,
                range: shift(range),
            },
            Self::Ike { range } => Self::Ike {
                range: shift(range),
            },
            other => other,
        }
    }
}

/// A multiplicative hash for SPIs. SPIs are chosen at random by our own IKE, so an
/// attacker can neither insert keys nor make the table's clustering worse than random;
/// SipHash's DoS resistance would buy nothing and cost a sizable share of a small packet.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpiHasher(u64);

impl Hasher for SpiHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        let h = (u64::from(n) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The inbound SA table: demultiplexes received packets by SPI.
///
/// Call [`SadIn::handle_datagram`] (UDP port 4500) or [`SadIn::open`] (raw ESP, IP protocol
/// 50) per packet, or the batch forms; then drain [`SadIn::poll_event`] and export
/// [`SadIn::drop_counters`] / [`SadIn::rx_counters`]. Every error is counted before it is
/// returned.
#[derive(Debug, Default)]
pub struct SadIn {
    sas: HashMap<Spi, InboundSa, BuildHasherDefault<SpiHasher>>,
    drops: DropCounters,
    rx: RxCounters,
    events: VecDeque<(Spi, SaEvent)>,
}

impl SadIn {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs an SA. Its SPI must be unique in the table.
    pub fn insert(&mut self, sa: InboundSa) -> Result<(), SadError> {
        let spi = sa.spi();
        if self.sas.contains_key(&spi) {
            return Err(SadError::DuplicateSpi(spi));
        }
        // Room for this SA's soft and hard event, so the receive path never allocates.
        self.events.reserve(2);
        self.sas.insert(spi, sa);
        Ok(())
    }

    /// Removes an SA (after a rekey or DELETE), returning it.
    pub fn remove(&mut self, spi: Spi) -> Option<InboundSa> {
        self.sas.remove(&spi)
    }

    /// The SA with this SPI.
    pub fn get(&self, spi: Spi) -> Option<&InboundSa> {
        self.sas.get(&spi)
    }

    /// Installed SPIs, in no particular order.
    pub fn spis(&self) -> impl Iterator<Item = Spi> + '_ {
        self.sas.keys().copied()
    }

    /// Number of installed SAs.
    pub fn len(&self) -> usize {
        self.sas.len()
    }

    /// Whether no SA is installed.
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty()
    }

    /// Drops so far, per reason.
    pub fn drop_counters(&self) -> &DropCounters {
        &self.drops
    }

    /// Accepted datagrams so far, per kind.
    pub fn rx_counters(&self) -> &RxCounters {
        &self.rx
    }

    /// Pops the next SA limit event. Drain after each batch.
    pub fn poll_event(&mut self) -> Option<(Spi, SaEvent)> {
        self.events.pop_front()
    }

    /// Handles one UDP payload received on port 4500: IKE, NAT-keepalive or ESP
    /// ([RFC 3948]). ESP is opened in place.
    ///
    /// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
    pub fn handle_datagram(&mut self, datagram: &mut [u8]) -> Result<Received, RecvError> {
        let kind = match encap::classify(datagram) {
            Ok(kind) => kind,
            Err(e) => return Err(self.count(e.into())),
        };
        match kind {
            Datagram::NatKeepalive => {
                self.rx.nat_keepalive += 1;
                Ok(Received::NatKeepalive)
            }
            Datagram::Ike(range) => {
                self.rx.ike += 1;
                Ok(Received::Ike { range })
            }
            Datagram::Esp => self.open(datagram),
        }
    }

    /// Opens one ESP packet in place (the bytes after the outer IP header, or a UDP
    /// payload already classified as ESP).
    pub fn open(&mut self, packet: &mut [u8]) -> Result<Received, RecvError> {
        match self.open_uncounted(packet) {
            Ok(r) => {
                match &r {
                    Received::Ipv4 { range, .. } => {
                        self.rx.ipv4 += 1;
                        self.rx.inner_bytes += range.len() as u64;
                    }
                    Received::Ipv6 { range, .. } => {
                        self.rx.ipv6 += 1;
                        self.rx.inner_bytes += range.len() as u64;
                    }
                    Received::Dummy { .. } => self.rx.dummy += 1,
                    Received::Ike { .. } | Received::NatKeepalive => {}
                }
                Ok(r)
            }
            Err(e) => Err(self.count(e)),
        }
    }

    fn count(&mut self, e: RecvError) -> RecvError {
        self.drops.bump(e.reason());
        e
    }

    fn open_uncounted(&mut self, packet: &mut [u8]) -> Result<Received, RecvError> {
        let spi = Packet::new_checked(&*packet)?.spi();
        let sa = self.sas.get_mut(&spi).ok_or(RecvError::UnknownSpi(spi))?;
        let decrypted = sa.open_esp(packet);
        // Events are raised by authenticated packets whether or not their contents pass.
        if sa.has_pending_event() {
            while let Some(ev) = sa.poll_event() {
                self.events.push_back((spi, ev));
            }
        }
        let d = decrypted?;
        let (inner, range) = sa.tunnel_payload(packet, &d)?;
        let seq = d.seq;
        Ok(match inner {
            Inner::Ipv4 => Received::Ipv4 { spi, seq, range },
            Inner::Ipv6 => Received::Ipv6 { spi, seq, range },
            Inner::Dummy => Received::Dummy { spi, seq },
        })
    }

    /// [`SadIn::handle_datagram`] for each slot's `buf[range]`. On success the slot's
    /// `range` becomes the inner packet's (or IKE message's) range and its outcome
    /// [`Outcome::Received`]; on failure `range` is unchanged and the outcome is
    /// [`Outcome::Dropped`]. Returns how many slots were received.
    pub fn handle_datagram_batch(&mut self, slots: &mut [Slot<'_>]) -> usize {
        self.batch(slots, Self::handle_datagram)
    }

    /// [`SadIn::open`] for each slot, as [`SadIn::handle_datagram_batch`] does.
    pub fn open_batch(&mut self, slots: &mut [Slot<'_>]) -> usize {
        self.batch(slots, Self::open)
    }

    fn batch(
        &mut self,
        slots: &mut [Slot<'_>],
        f: fn(&mut Self, &mut [u8]) -> Result<Received, RecvError>,
    ) -> usize {
        let mut ok = 0;
        for slot in slots.iter_mut() {
            let start = slot.range.start;
            let result = match slot.buf.get_mut(slot.range.clone()) {
                Some(datagram) => f(self, datagram),
                None => Err(self.count(RecvError::Short {
                    len: slot.buf.len(),
                    need: slot.range.end,
                })),
            };
            slot.outcome = match result {
                Ok(r) => {
                    let r = r.offset(start);
                    slot.range = r.range().unwrap_or(start..start);
                    ok += 1;
                    Outcome::Received(r)
                }
                Err(e) => Outcome::Dropped(e),
            };
        }
        ok
    }
}

/// One packet of a batch: a caller-owned buffer, the range of interest, and the outcome.
///
/// For sealing, `range` is the inner packet on input and the ESP packet on output (the
/// buffer needs headroom and tailroom as [`OutboundSa::seal`] documents); for receiving,
/// the datagram on input and the inner packet or IKE message on output.
#[derive(Debug)]
pub struct Slot<'a> {
    /// The buffer.
    pub buf: &'a mut [u8],
    /// In: what to process. Out: the result, as described above.
    pub range: Range<usize>,
    /// What happened; [`Outcome::Pending`] until processed.
    pub outcome: Outcome,
}

impl<'a> Slot<'a> {
    /// A pending slot.
    pub fn new(buf: &'a mut [u8], range: Range<usize>) -> Self {
        Self {
            buf,
            range,
            outcome: Outcome::Pending,
        }
    }
}

/// What happened to a [`Slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not processed yet.
    Pending,
    /// Sealed; `range` is the ESP packet.
    Sealed {
        /// Its sequence number.
        seq: u64,
    },
    /// Sealing failed; nothing to send.
    SealFailed(crate::error::SealError),
    /// Received; see [`Received`].
    Received(Received),
    /// Dropped (and counted).
    Dropped(RecvError),
}

impl OutboundSa {
    /// [`OutboundSa::seal`] for each slot: on success `range` becomes the ESP packet and
    /// the outcome [`Outcome::Sealed`]. Returns how many were sealed. A hard limit or
    /// sequence exhaustion fails the rest of the batch with the same error.
    pub fn seal_batch(&mut self, slots: &mut [Slot<'_>]) -> usize {
        let mut ok = 0;
        for slot in slots.iter_mut() {
            slot.outcome = match self.seal(slot.buf, slot.range.clone()) {
                Ok(sealed) => {
                    slot.range = sealed.packet;
                    ok += 1;
                    Outcome::Sealed { seq: sealed.seq }
                }
                Err(e) => Outcome::SealFailed(e),
            };
        }
        ok
    }
}
