//! The receive-path fuzzing harness, shared by the cargo-fuzz target in `fuzz/` and the
//! corpus-replay test, so that both exercise exactly the same code.
//!
//! Only built with the `fuzzing` feature (and in this crate's tests). It seals
//! attacker-shaped plaintext and uses a predictable CBC IV source: never enable the feature
//! in the daemon.
//!
//! # Input format
//!
//! Byte 0 picks the mode:
//!
//! * even: the rest is a UDP payload received on port 4500, handed to
//!   [`SadIn::handle_datagram`] as is. Reaches the classifier, the header and length
//!   checks, SPI lookup, the replay window and the ICV check;
//! * odd: byte 1 picks one of the harness's SAs, bytes 2–3 a sequence number (plus one),
//!   and the rest is a *ciphertext area* — payload, padding, Pad Length, Next Header —
//!   that the harness seals unchanged with that SA's keys (zero-extended to whole blocks
//!   for CBC) and then receives. Reaches everything behind the ICV: padding, Next Header
//!   and inner-packet checks.
//!
//! Whatever the input, [`Harness::run`] must not panic. It also asserts what must hold for
//! any input: a delivered inner packet lies inside the buffer and starts with the right
//! version nibble, and in the sealed mode it is a prefix of the plaintext the harness
//! sealed.

// Test infrastructure: panics are the oracle here, and the packet builders index fixed-size
// vectors.
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::ops::Range;

use crate::error::RecvError;
use crate::rng::{IvSource, RandomError};
use crate::sa::{InboundSa, OutboundSa, SaConfig};
use crate::sad::{Received, SadIn};
use crate::transform::Transform;
use crate::wire::esp::Spi;

/// A predictable IV source for reproducible CBC packets (tests and fuzzing only).
#[derive(Debug, Clone, Default)]
pub struct CounterIv(u64);

impl IvSource for CounterIv {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError> {
        self.0 = self.0.wrapping_add(1);
        for (i, b) in dest.iter_mut().enumerate() {
            *b = (self.0 >> ((i % 8) * 8)) as u8 ^ (i as u8);
        }
        Ok(())
    }
}

/// The harness's SAs: every transform, with and without ESN.
pub const SAS: [(Spi, Transform, bool); 10] = [
    (Spi(0x1000), Transform::Aes128Gcm16, false),
    (Spi(0x1001), Transform::Aes256Gcm16, false),
    (Spi(0x1002), Transform::ChaCha20Poly1305, false),
    (Spi(0x1003), Transform::Aes128CbcSha256, false),
    (Spi(0x1004), Transform::Aes256CbcSha256, false),
    (Spi(0x2000), Transform::Aes128Gcm16, true),
    (Spi(0x2001), Transform::Aes256Gcm16, true),
    (Spi(0x2002), Transform::ChaCha20Poly1305, true),
    (Spi(0x2003), Transform::Aes128CbcSha256, true),
    (Spi(0x2004), Transform::Aes256CbcSha256, true),
];

/// Fixed key material of harness SA `index`.
pub fn keymat(index: usize, transform: Transform) -> Vec<u8> {
    (0..transform.keymat_len())
        .map(|j| (index * 31 + j * 7 + 1) as u8)
        .collect()
}

/// Headroom the harness leaves before a sealed payload.
const HEADROOM: usize = 64;
const TAILROOM: usize = 64;

/// A fresh set of inbound and outbound SAs with fixed keys.
#[derive(Debug)]
pub struct Harness {
    sad: SadIn,
    out: Vec<OutboundSa>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// Builds the SAs of [`SAS`] in both directions.
    pub fn new() -> Self {
        let mut sad = SadIn::new();
        let mut out = Vec::with_capacity(SAS.len());
        for (i, (spi, transform, esn)) in SAS.into_iter().enumerate() {
            let config = SaConfig {
                esn,
                ..SaConfig::new(spi, transform)
            };
            let km = keymat(i, transform);
            let (Ok(inbound), Ok(outbound)) = (
                InboundSa::new(&config, &km),
                OutboundSa::with_iv_source(&config, &km, Box::new(CounterIv::default())),
            ) else {
                continue; // cannot happen: the table above is valid
            };
            let _ = sad.insert(inbound);
            out.push(outbound);
        }
        Self { sad, out }
    }

    /// The inbound table (for counters).
    pub fn sad(&self) -> &SadIn {
        &self.sad
    }

    /// Outbound SA `index` of [`SAS`], to build valid packets.
    pub fn outbound(&mut self, index: usize) -> Option<&mut OutboundSa> {
        self.out.get_mut(index)
    }

    /// Runs one fuzz input (see the module docs). Panics only if an invariant is broken.
    pub fn run(&mut self, data: &[u8]) -> Result<Received, RecvError> {
        match data {
            [mode, rest @ ..] if mode % 2 == 0 => {
                let mut buf = rest.to_vec();
                let r = self.sad.handle_datagram(&mut buf);
                check_delivery(&r, &buf);
                r
            }
            [_, sa, s0, s1, plaintext @ ..] => {
                let index = usize::from(*sa) % self.out.len().max(1);
                let seq = u64::from(u16::from_be_bytes([*s0, *s1])) + 1;
                self.run_sealed(index, seq, plaintext)
            }
            _ => {
                let mut buf = Vec::new();
                self.sad.handle_datagram(&mut buf)
            }
        }
    }

    fn run_sealed(
        &mut self,
        index: usize,
        seq: u64,
        plaintext: &[u8],
    ) -> Result<Received, RecvError> {
        let Some(sa) = self.out.get_mut(index) else {
            return Err(RecvError::UnknownSpi(Spi(0)));
        };
        let mut ct_len = plaintext.len();
        if !sa.transform().is_aead() {
            ct_len = ct_len.div_ceil(16) * 16;
        }
        let mut buf = vec![0u8; HEADROOM + ct_len + TAILROOM];
        let ct = HEADROOM..HEADROOM + ct_len;
        if let Some(area) = buf.get_mut(HEADROOM..HEADROOM + plaintext.len()) {
            area.copy_from_slice(plaintext);
        }
        let Ok(packet) = sa.seal_raw(&mut buf, ct, seq) else {
            return Err(RecvError::Short { len: 0, need: 0 });
        };
        let Some(datagram) = buf.get_mut(packet.clone()) else {
            return Err(RecvError::Short { len: 0, need: 0 });
        };
        let r = self.sad.handle_datagram(datagram);
        check_delivery(&r, datagram);
        if let Ok(Received::Ipv4 { range, .. } | Received::Ipv6 { range, .. }) = &r {
            // The inner packet is what was sealed, at the offset it was sealed at.
            let iv_len = self.out.get(index).map_or(0, |sa| sa.transform().iv_len());
            let off = 8 + iv_len;
            let got = datagram.get(range.clone());
            let want = plaintext.get(range.start - off..range.end - off);
            assert_eq!(got, want, "inner packet differs from the sealed plaintext");
        }
        r
    }

    /// Seed inputs for the corpus: valid packets on every SA (IPv4, IPv6, dummy), IKE,
    /// NAT-keepalive, and near misses; as `(file name, input)`.
    pub fn seeds() -> Vec<(String, Vec<u8>)> {
        let mut h = Self::new();
        let mut seeds = Vec::new();
        let v4 = ipv4_packet(84);
        let v6 = ipv6_packet(100);
        for (i, (_, transform, esn)) in SAS.into_iter().enumerate() {
            let tag = format!("{transform}-{}", if esn { "esn" } else { "seq32" });
            for (kind, inner) in [("v4", &v4), ("v6", &v6), ("dummy", &v4)] {
                let Some(sa) = h.outbound(i) else { continue };
                let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
                let payload = HEADROOM..HEADROOM + inner.len();
                if let Some(p) = buf.get_mut(payload.clone()) {
                    p.copy_from_slice(inner);
                }
                let sealed = if kind == "dummy" {
                    sa.seal_dummy(&mut buf, payload)
                } else {
                    sa.seal(&mut buf, payload)
                };
                if let Ok(s) = sealed {
                    let mut input = vec![0u8];
                    input.extend_from_slice(buf.get(s.packet).unwrap_or_default());
                    seeds.push((format!("valid-esp-{tag}-{kind}"), input));
                }
            }
            // Sealed mode: a valid trailer, a bad one, and a bad next header.
            let mut good = v4.clone();
            let pad = (transform.pad_align() - (good.len() + 2) % transform.pad_align())
                % transform.pad_align();
            good.extend((1..=pad as u8).chain([pad as u8, 4]));
            let mut bad_pad = good.clone();
            if let Some(b) = bad_pad.iter_mut().rev().nth(2) {
                *b ^= 0x80;
            }
            let mut bad_nh = good.clone();
            if let Some(b) = bad_nh.last_mut() {
                *b = 17;
            }
            for (kind, pt) in [("ok", good), ("badpad", bad_pad), ("badnh", bad_nh)] {
                let mut input = vec![1u8, i as u8, 0, 0];
                input.extend_from_slice(&pt);
                let prefix = if kind == "ok" {
                    "valid-sealed"
                } else {
                    "sealed"
                };
                seeds.push((format!("{prefix}-{tag}-{kind}"), input));
            }
        }
        let mut ike = vec![0u8, 0, 0, 0, 0];
        ike.extend_from_slice(&[0x11; 28]);
        seeds.push(("valid-ike".into(), ike));
        seeds.push(("valid-keepalive".into(), vec![0, 0xff]));
        seeds.push(("short".into(), vec![0, 0x10, 0, 0]));
        let mut unknown = vec![0u8, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1];
        unknown.extend_from_slice(&[0x5a; 48]);
        seeds.push(("unknown-spi".into(), unknown));
        seeds
    }
}

fn check_delivery(r: &Result<Received, RecvError>, buf: &[u8]) {
    let Ok(received) = r else { return };
    if let Some(range) = received.range() {
        assert!(
            range.start <= range.end && range.end <= buf.len(),
            "range out of buffer"
        );
    }
    let nibble = |range: &Range<usize>| buf.get(range.start).map(|b| b >> 4);
    match received {
        Received::Ipv4 { range, .. } => assert_eq!(nibble(range), Some(4)),
        Received::Ipv6 { range, .. } => assert_eq!(nibble(range), Some(6)),
        _ => {}
    }
}

/// A well-formed IPv4/ICMP packet of `len` bytes (>= 28).
pub fn ipv4_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(28)];
    let total = p.len() as u16;
    p[..20].copy_from_slice(&[
        0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
    ]);
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[20] = 8; // echo request
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// A well-formed IPv6/UDP packet of `len` bytes (>= 48).
pub fn ipv6_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(48)];
    let payload = (p.len() - 40) as u16;
    p[0] = 0x60;
    p[4..6].copy_from_slice(&payload.to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8] = 0x20;
    p[9] = 0x01;
    p[10] = 0x0d;
    p[11] = 0xb8;
    p[23] = 1;
    p[24] = 0x20;
    p[25] = 0x01;
    p[26] = 0x0d;
    p[27] = 0xb8;
    p[39] = 2;
    p[44..46].copy_from_slice(&payload.to_be_bytes());
    p
}

/// Moves an outbound SA's counter so that its next packet carries `last + 1` (tests of
/// sequence exhaustion and of ESN wrap without sending 2^32 packets first).
pub fn set_last_seq(sa: &mut OutboundSa, last: u64) {
    sa.set_last_seq(last);
}
