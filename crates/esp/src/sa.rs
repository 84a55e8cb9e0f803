//! Security associations: one direction of a child SA each ([RFC 4301] §4.1).
//!
//! [`OutboundSa`] seals inner IP packets into ESP packets; [`InboundSa`] opens them and
//! lives in a [`crate::SadIn`], which demultiplexes by SPI and keeps the drop counters.
//!
//! # The seal buffer contract
//!
//! The caller reads an inner packet into a buffer at an offset and seals it in place:
//!
//! ```text
//!  buf: |<------- headroom ------->|<--- payload --->|<------- tailroom ------->|
//!                                  start             end
//!  out: | (free) | SPI | Seq | IV  | ciphertext ...  | pad | PL | NH |   ICV   | (free) |
//!                 ^ packet.start                                        packet.end ^
//! ```
//!
//! `start` must leave at least [`OutboundSa::headroom`] bytes (8 + IV) before the payload,
//! and `buf.len() - end` at least [`OutboundSa::tailroom`] after it (padding, Pad Length,
//! Next Header and the 16-byte ICV; [`OutboundSa::max_tailroom`] bounds it for any length).
//! More headroom is fine and is where the daemon (or the kernel) puts outer IP/UDP. A short
//! buffer is an error, never a panic.
//!
//! [RFC 4301]: https://www.rfc-editor.org/rfc/rfc4301#section-4.1

use std::ops::Range;

use crate::crypto::{Direction, IvChoice, Keys};
use crate::error::{ConfigError, RecvError, SealError};
use crate::limits::{Lifetime, LimitKind, Limits, SaEvent};
use crate::replay::ReplayWindow;
use crate::rng::{IvSource, SystemRng};
use crate::transform::{Transform, ICV_LEN};
use crate::wire::esp::{Packet, Repr, Spi, HEADER_LEN};
use crate::wire::ip::{self, IpVersion};

/// Parameters of one direction of a child SA, as IKE negotiated them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaConfig {
    /// SPI: for an inbound SA the one we chose, for an outbound SA the peer's.
    pub spi: Spi,
    /// The negotiated transform.
    pub transform: Transform,
    /// Extended (64-bit) Sequence Numbers ([RFC 4303] §2.2.1), negotiated by IKEv2's ESN
    /// transform.
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.2.1
    pub esn: bool,
    /// Anti-replay window in packets (inbound only); see [`ReplayWindow::new`].
    pub replay_window: u32,
    /// Soft and hard byte and packet limits.
    pub limits: Limits,
}

impl SaConfig {
    /// A configuration without ESN, with a 1024-packet window and no limits.
    pub fn new(spi: Spi, transform: Transform) -> Self {
        Self {
            spi,
            transform,
            esn: false,
            replay_window: ReplayWindow::DEFAULT_SIZE,
            limits: Limits::default(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.spi.is_reserved() {
            return Err(ConfigError::ReservedSpi(self.spi));
        }
        self.limits.validate()
    }
}

/// Where a sealed packet ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The ESP packet inside the buffer: SPI through ICV.
    pub packet: Range<usize>,
    /// The sequence number it carries (64-bit; only the low half is on the wire).
    pub seq: u64,
}

/// The sending half of a child SA.
pub struct OutboundSa {
    spi: Spi,
    transform: Transform,
    esn: bool,
    keys: Keys,
    /// Last sequence number used; 0 before the first packet ([RFC 4303] §3.3.3: the first
    /// packet carries 1).
    seq: u64,
    seq_soft: u64,
    seq_max: u64,
    lifetime: Lifetime,
    iv_source: Box<dyn IvSource>,
}

impl std::fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &self.spi)
            .field("transform", &self.transform)
            .field("esn", &self.esn)
            .field("seq", &self.seq)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl OutboundSa {
    /// Builds an outbound SA from one direction's KEYMAT ([`Transform::keymat_len`] bytes).
    /// CBC IVs come from [`SystemRng`].
    pub fn new(config: &SaConfig, keymat: &[u8]) -> Result<Self, ConfigError> {
        Self::with_iv_source(config, keymat, Box::new(SystemRng))
    }

    /// Like [`OutboundSa::new`] with a caller-chosen source of CBC IVs (unused by AEADs).
    pub fn with_iv_source(
        config: &SaConfig,
        keymat: &[u8],
        iv_source: Box<dyn IvSource>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let keys = Keys::new(config.transform, keymat, Direction::Seal)?;
        let seq_max = if config.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        Ok(Self {
            spi: config.spi,
            transform: config.transform,
            esn: config.esn,
            keys,
            seq: 0,
            seq_soft: seq_max - seq_max / 16,
            seq_max,
            lifetime: Lifetime::new(config.limits),
            iv_source,
        })
    }

    /// The SPI this SA puts on the wire.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// The transform.
    pub fn transform(&self) -> Transform {
        self.transform
    }

    /// Whether ESN is on.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The last sequence number sent (0 before the first packet).
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// Packets sealed.
    pub fn packets(&self) -> u64 {
        self.lifetime.packets()
    }

    /// Ciphertext bytes sealed.
    pub fn bytes(&self) -> u64 {
        self.lifetime.bytes()
    }

    /// Bytes needed before the payload: ESP header and IV.
    pub fn headroom(&self) -> usize {
        HEADER_LEN + self.transform.iv_len()
    }

    /// Bytes needed after a payload of `payload_len` bytes: padding, Pad Length, Next
    /// Header and ICV.
    pub fn tailroom(&self, payload_len: usize) -> usize {
        pad_len(self.transform, payload_len) + 2 + ICV_LEN
    }

    /// The largest [`OutboundSa::tailroom`] for any payload length.
    pub fn max_tailroom(&self) -> usize {
        self.transform.pad_align() - 1 + 2 + ICV_LEN
    }

    /// Seals the inner IPv4 or IPv6 packet at `buf[payload]` in tunnel mode; Next Header is
    /// taken from the packet's version nibble. See the module docs for the buffer contract.
    pub fn seal(&mut self, buf: &mut [u8], payload: Range<usize>) -> Result<Sealed, SealError> {
        let first_byte = buf.get(payload.start).copied().unwrap_or(0);
        let next_header = buf
            .get(payload.clone())
            .and_then(IpVersion::of)
            .ok_or(SealError::NotIp { first_byte })?
            .next_header();
        self.seal_with(buf, payload, next_header, None)
    }

    /// Seals `buf[payload]` as a dummy packet (Next Header 59, [RFC 4303] §2.6), which the
    /// peer authenticates and discards: traffic-flow cover.
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.6
    pub fn seal_dummy(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Result<Sealed, SealError> {
        self.seal_with(buf, payload, ip::NEXT_HEADER_NONE, None)
    }

    /// Pops the next limit event, if any. Poll after each batch.
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.lifetime.poll_event()
    }

    /// Seals with a given Next Header and, for known-answer tests and fuzzing, a given IV.
    pub(crate) fn seal_with(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: u8,
        fixed_iv: Option<&[u8]>,
    ) -> Result<Sealed, SealError> {
        let Range { start, end } = payload;
        let bad_range = SealError::BadRange {
            start,
            end,
            len: buf.len(),
        };
        if start > end || end > buf.len() {
            return Err(bad_range);
        }
        let headroom = self.headroom();
        let packet_start = start.checked_sub(headroom).ok_or(SealError::Headroom {
            need: headroom,
            have: start,
        })?;
        let pad = pad_len(self.transform, end - start);
        let tailroom = pad + 2 + ICV_LEN;
        if buf.len() - end < tailroom {
            return Err(SealError::Tailroom {
                need: tailroom,
                have: buf.len() - end,
            });
        }
        let seq = self.next_seq()?;

        // Trailer (RFC 4303 §2.4): the default padding 1, 2, 3, ..., then Pad Length and
        // Next Header.
        let trailer = buf.get_mut(end..end + pad + 2).ok_or(bad_range)?;
        let (padding, pl_nh) = trailer.split_at_mut_checked(pad).ok_or(bad_range)?;
        for (i, b) in padding.iter_mut().enumerate() {
            *b = (i + 1) as u8; // pad <= 15
        }
        pl_nh.copy_from_slice(&[pad as u8, next_header]);

        let packet_end = end + tailroom;
        let packet = buf.get_mut(packet_start..packet_end).ok_or(bad_range)?;
        Repr {
            spi: self.spi,
            sequence_number: seq as u32, // the low half; ESN's high half is implicit
        }
        .emit(&mut Packet::new_unchecked(&mut *packet));
        let iv = match fixed_iv {
            Some(iv) => IvChoice::Fixed(iv),
            None => IvChoice::Default(self.iv_source.as_mut()),
        };
        self.keys.seal(self.transform, packet, seq, self.esn, iv)?;
        self.lifetime.record(end - start + pad + 2);
        Ok(Sealed {
            packet: packet_start..packet_end,
            seq,
        })
    }

    /// Seals bytes already laid out as ciphertext area (payload *and* trailer) at
    /// `buf[ct]`, with a given sequence number and without touching the SA's counter: lets
    /// the fuzzing harness put any trailer behind a valid ICV.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn seal_raw(
        &mut self,
        buf: &mut [u8],
        ct: Range<usize>,
        seq: u64,
    ) -> Result<Range<usize>, SealError> {
        let packet_start = ct
            .start
            .checked_sub(self.headroom())
            .ok_or(SealError::Headroom {
                need: self.headroom(),
                have: ct.start,
            })?;
        let packet_end = ct.end + ICV_LEN;
        let len = buf.len();
        let packet = buf
            .get_mut(packet_start..packet_end)
            .ok_or(SealError::BadRange {
                start: ct.start,
                end: ct.end,
                len,
            })?;
        Repr {
            spi: self.spi,
            sequence_number: seq as u32,
        }
        .emit(&mut Packet::new_unchecked(&mut *packet));
        let iv = IvChoice::Default(self.iv_source.as_mut());
        self.keys.seal(self.transform, packet, seq, self.esn, iv)?;
        Ok(packet_start..packet_end)
    }

    /// Claims the next sequence number, refusing to wrap ([RFC 4303] §3.3.3) and refusing
    /// after a hard limit.
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-3.3.3
    fn next_seq(&mut self) -> Result<u64, SealError> {
        if self.seq >= self.seq_max {
            self.lifetime.expire(LimitKind::SequenceNumber);
            return Err(SealError::SequenceExhausted);
        }
        if let Some(kind) = self.lifetime.expired() {
            return Err(SealError::Expired(kind));
        }
        // Consumed before the cipher runs: even a failed seal never gives its nonce to
        // another packet.
        self.seq += 1;
        if self.seq >= self.seq_soft {
            self.lifetime.soften(LimitKind::SequenceNumber);
        }
        if self.seq == self.seq_max {
            self.lifetime.expire(LimitKind::SequenceNumber);
        }
        Ok(self.seq)
    }

    /// Test hook: jump the counter (sequence exhaustion and ESN wrap tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn set_last_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

/// Padding so that payload + Pad Length + Next Header ends on the transform's alignment.
fn pad_len(transform: Transform, payload_len: usize) -> usize {
    let align = transform.pad_align();
    (align - (payload_len + 2) % align) % align
}

/// What was inside an authenticated ESP packet, before tunnel-mode interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decrypted {
    /// Payload Data after the IV, without padding and trailer; relative to the packet.
    pub(crate) payload: Range<usize>,
    pub(crate) next_header: u8,
    pub(crate) seq: u64,
}

/// What an authenticated tunnel-mode packet carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inner {
    Ipv4,
    Ipv6,
    Dummy,
}

/// The receiving half of a child SA.
pub struct InboundSa {
    spi: Spi,
    transform: Transform,
    esn: bool,
    keys: Keys,
    window: ReplayWindow,
    lifetime: Lifetime,
}

impl std::fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &self.spi)
            .field("transform", &self.transform)
            .field("esn", &self.esn)
            .field("window", &self.window)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl InboundSa {
    /// Builds an inbound SA from one direction's KEYMAT ([`Transform::keymat_len`] bytes).
    pub fn new(config: &SaConfig, keymat: &[u8]) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            spi: config.spi,
            transform: config.transform,
            esn: config.esn,
            keys: Keys::new(config.transform, keymat, Direction::Open)?,
            window: ReplayWindow::new(config.replay_window)?,
            lifetime: Lifetime::new(config.limits),
        })
    }

    /// The SPI this SA receives on.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// The transform.
    pub fn transform(&self) -> Transform {
        self.transform
    }

    /// Whether ESN is on.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Authenticated packets received.
    pub fn packets(&self) -> u64 {
        self.lifetime.packets()
    }

    /// Authenticated ciphertext bytes received.
    pub fn bytes(&self) -> u64 {
        self.lifetime.bytes()
    }

    /// The anti-replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Whether a hard limit has been reached.
    pub fn is_expired(&self) -> bool {
        self.lifetime.expired().is_some()
    }

    pub(crate) fn poll_event(&mut self) -> Option<SaEvent> {
        self.lifetime.poll_event()
    }

    /// Test hook: record `seq` as received, as if the peer had sent it.
    #[cfg(test)]
    pub(crate) fn advance_window(&mut self, seq: u64) {
        let _ = self.window.accept(seq);
    }

    pub(crate) fn has_pending_event(&self) -> bool {
        self.lifetime.has_pending_event()
    }

    /// Checks, authenticates, decrypts and de-pads an ESP packet whose SPI is this SA's
    /// (RFC 4303 §3.4), in the order that spends the least on bad packets: lengths, replay
    /// window, ICV, then the trailer.
    pub(crate) fn open_esp(&mut self, packet: &mut [u8]) -> Result<Decrypted, RecvError> {
        let spi = self.spi;
        let iv_len = self.transform.iv_len();
        let min_ct = if self.transform.is_aead() { 2 } else { 16 };
        let need = HEADER_LEN + iv_len + min_ct + ICV_LEN;
        let len = packet.len();
        if len < need {
            return Err(RecvError::Short { len, need });
        }
        let ct_start = HEADER_LEN + iv_len;
        let ct_len = len - ct_start - ICV_LEN;
        if !self.transform.is_aead() && ct_len % 16 != 0 {
            return Err(RecvError::Malformed {
                offset: ct_start,
                len: ct_len,
                block: 16,
            });
        }
        if let Some(kind) = self.lifetime.expired() {
            return Err(RecvError::Expired { spi, kind });
        }
        let seq_low = Packet::new_checked(&*packet)?.sequence_number();
        let seq = if self.esn {
            self.window.infer_esn(seq_low).ok_or(RecvError::Replayed {
                spi,
                seq: 0,
                why: crate::replay::ReplayError::TooOld,
            })?
        } else {
            u64::from(seq_low)
        };
        self.window
            .check(seq)
            .map_err(|why| RecvError::Replayed { spi, seq, why })?;
        self.keys
            .open(self.transform, packet, seq, self.esn)
            .map_err(|_| RecvError::AuthFailed { spi, seq })?;
        self.window
            .accept(seq)
            .map_err(|why| RecvError::Replayed { spi, seq, why })?;
        self.lifetime.record(ct_len);

        // Trailer (RFC 4303 §2.4–2.6), now authenticated.
        let ct = packet
            .get(ct_start..ct_start + ct_len)
            .ok_or(RecvError::BadPadding { spi, seq })?;
        let (body, trailer) = ct
            .split_last_chunk::<2>()
            .ok_or(RecvError::BadPadding { spi, seq })?;
        let [pad_len, next_header] = *trailer;
        let payload_len = body
            .len()
            .checked_sub(usize::from(pad_len))
            .ok_or(RecvError::BadPadding { spi, seq })?;
        // "The receiver SHOULD inspect the Padding field" for the default 1, 2, 3, ...
        let padding = body
            .get(payload_len..)
            .ok_or(RecvError::BadPadding { spi, seq })?;
        if !padding.iter().zip(1u8..).all(|(b, want)| *b == want) {
            return Err(RecvError::BadPadding { spi, seq });
        }
        Ok(Decrypted {
            payload: ct_start..ct_start + payload_len,
            next_header,
            seq,
        })
    }

    /// Interprets a decrypted payload in tunnel mode: IPv4, IPv6 or a dummy packet, with
    /// any Traffic Flow Confidentiality padding after the inner packet stripped
    /// ([RFC 4303] §2.7). Returns the inner packet's range (relative to the packet).
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.7
    pub(crate) fn tunnel_payload(
        &self,
        packet: &[u8],
        d: &Decrypted,
    ) -> Result<(Inner, Range<usize>), RecvError> {
        let (spi, seq) = (self.spi, d.seq);
        let (inner, version) = match d.next_header {
            ip::NEXT_HEADER_NONE => return Ok((Inner::Dummy, d.payload.clone())),
            ip::NEXT_HEADER_IPV4 => (Inner::Ipv4, IpVersion::V4),
            ip::NEXT_HEADER_IPV6 => (Inner::Ipv6, IpVersion::V6),
            next_header => return Err(RecvError::BadNextHeader { spi, next_header }),
        };
        let bad = RecvError::BadInnerPacket { spi, seq };
        let payload = packet.get(d.payload.clone()).ok_or(bad)?;
        if IpVersion::of(payload) != Some(version) {
            return Err(bad);
        }
        let len = ip::claimed_len(version, payload).ok_or(bad)?;
        if len > payload.len() {
            return Err(bad);
        }
        Ok((inner, d.payload.start..d.payload.start + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_lengths() {
        // AEAD: 4-byte alignment of payload + 2.
        assert_eq!(pad_len(Transform::Aes128Gcm16, 84), 2);
        assert_eq!(pad_len(Transform::Aes128Gcm16, 62), 0);
        assert_eq!(pad_len(Transform::ChaCha20Poly1305, 73), 1);
        // CBC: 16-byte blocks.
        assert_eq!(pad_len(Transform::Aes128CbcSha256, 64), 14);
        assert_eq!(pad_len(Transform::Aes256CbcSha256, 14), 0);
        assert_eq!(pad_len(Transform::Aes256CbcSha256, 15), 15);
    }

    #[test]
    fn config_validation() {
        let c = SaConfig::new(Spi(255), Transform::Aes128Gcm16);
        assert_eq!(
            OutboundSa::new(&c, &[0; 20]).err(),
            Some(ConfigError::ReservedSpi(Spi(255)))
        );
        let c = SaConfig::new(Spi(0x1000), Transform::Aes128Gcm16);
        assert!(matches!(
            InboundSa::new(&c, &[0; 19]),
            Err(ConfigError::KeyLength {
                expected: 20,
                got: 19,
                ..
            })
        ));
        let c = SaConfig {
            replay_window: 16,
            ..c
        };
        assert!(matches!(
            InboundSa::new(&c, &[0; 20]),
            Err(ConfigError::ReplayWindow(_))
        ));
    }
}
