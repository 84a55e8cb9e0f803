//! Helpers shared by the integration tests.
#![allow(dead_code)]

use esp::{InboundSa, OutboundSa, SaConfig, SadIn, Spi, Transform};

pub(crate) const HEADROOM: usize = 64;
pub(crate) const TAILROOM: usize = 64;

/// Deterministic key material for `transform`, different per `seed`.
pub(crate) fn keymat(transform: Transform, seed: u8) -> Vec<u8> {
    (0..transform.keymat_len())
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

/// A matching outbound SA and inbound table for one SA.
pub(crate) fn pair(config: &SaConfig) -> (OutboundSa, SadIn) {
    let km = keymat(config.transform, 7);
    let out = OutboundSa::new(config, &km).unwrap();
    let mut sad = SadIn::new();
    sad.insert(InboundSa::new(config, &km).unwrap()).unwrap();
    (out, sad)
}

pub(crate) fn config(transform: Transform, esn: bool) -> SaConfig {
    SaConfig {
        esn,
        ..SaConfig::new(Spi(0xc0ffee), transform)
    }
}

/// An IPv4 (version 4) or IPv6 (version 6) packet of exactly `len` bytes whose header
/// length fields are right; the rest is `fill`.
pub(crate) fn ip_packet(version: u8, len: usize, fill: &[u8]) -> Vec<u8> {
    let min = if version == 4 { 20 } else { 40 };
    let len = len.max(min);
    let mut p: Vec<u8> = fill.iter().copied().cycle().take(len).collect();
    p.resize(len, 0);
    if version == 4 {
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    } else {
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    }
    p
}

/// A buffer with the inner packet at HEADROOM and room after it.
pub(crate) fn framed(inner: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + inner.len()].copy_from_slice(inner);
    (buf, HEADROOM..HEADROOM + inner.len())
}

/// Seals `inner` and returns the ESP packet bytes.
pub(crate) fn seal(out: &mut OutboundSa, inner: &[u8]) -> Vec<u8> {
    let (mut buf, range) = framed(inner);
    let sealed = out.seal(&mut buf, range).unwrap();
    buf[sealed.packet].to_vec()
}
