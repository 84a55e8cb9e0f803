//! Whether the TUN MTU still fits the path to each peer once encrypted.
//!
//! The outer packets carry DF (UDP GSO needs it, and fragmented ESP is what every IPsec
//! deployment tries to avoid), so an ESP packet above the path MTU is refused at send
//! (EMSGSIZE) instead of being fragmented: with a TUN MTU the underlay cannot carry, every
//! full-size packet is lost while small ones pass, which looks like a broken application
//! rather than a broken tunnel. The daemon checks each connection against the kernel's route
//! to its peer at start and at each reload, and says what to set.

use std::net::IpAddr;

use esp::Transform;

use super::kernel;
use crate::config::{Config, Connection};

/// Bytes of the UDP header (ESP in UDP, RFC 3948) and of the ESP header (SPI, sequence).
const UDP_ESP_HEADERS: usize = 8 + 8;
/// Pad Length and Next Header, after the padding.
const TRAILER: usize = 2;

fn ip_header(ipv6: bool) -> usize {
    if ipv6 {
        40
    } else {
        20
    }
}

/// The size on the wire of an inner packet of `len` bytes sealed with `t`.
pub(crate) fn outer_len(len: usize, t: Transform, ipv6: bool) -> usize {
    let body = (len + TRAILER).div_ceil(t.pad_align()) * t.pad_align();
    ip_header(ipv6) + UDP_ESP_HEADERS + t.iv_len() + body + t.icv_len()
}

/// The largest inner packet that still fits `path_mtu` once sealed with `t`.
pub(crate) fn largest_inner(path_mtu: usize, t: Transform, ipv6: bool) -> usize {
    let fixed = ip_header(ipv6) + UDP_ESP_HEADERS + t.iv_len() + t.icv_len();
    let body = path_mtu.saturating_sub(fixed) / t.pad_align() * t.pad_align();
    body.saturating_sub(TRAILER)
}

/// The transforms `c` may negotiate (the peer picks one of its proposals); a proposal that
/// names none known may be any.
fn transforms(c: &Connection) -> Vec<Transform> {
    let mut v = Vec::new();
    for p in &c.esp_proposals {
        let p = p.to_ascii_lowercase();
        let named = Transform::ALL
            .into_iter()
            .filter(|t| p.starts_with(t.name()))
            .max_by_key(|t| t.name().len());
        match named {
            Some(t) => v.push(t),
            None => v.extend(Transform::ALL),
        }
    }
    v
}

/// One line for each connection whose peer cannot take a full TUN-MTU packet once
/// encrypted with the costliest of its proposals, by the kernel's route to the peer now. A
/// peer with no route yet is skipped (logged at debug level): the check runs again at the
/// next reload.
pub(crate) fn warnings(cfg: &Config) -> Vec<String> {
    let mtu = usize::from(cfg.gateway.mtu);
    let mut paths = match kernel::Paths::open() {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!("path MTU check skipped: {e:#}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for c in &cfg.connections {
        let path = match paths.to(c.peer_address) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(connection = %c.name, "path MTU check skipped: {e:#}");
                continue;
            }
        };
        let v6 = matches!(c.peer_address, IpAddr::V6(_));
        let costliest = transforms(c)
            .into_iter()
            .map(|t| (outer_len(mtu, t, v6), t))
            .max_by_key(|(outer, _)| *outer);
        let Some((outer, t)) = costliest else {
            continue;
        };
        if outer > path.mtu {
            out.push(format!(
                "connection {}: a {mtu}-byte packet from the TUN device leaves as a \
                 {outer}-byte ESP packet ({t}), above the {}-byte path MTU toward {} (dev {}); \
                 such packets are dropped (the outer packets carry DF): set [gateway] mtu = {} \
                 or lower, or raise the path's MTU",
                c.name,
                path.mtu,
                c.peer_address,
                path.dev,
                largest_inner(path.mtu, t, v6),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_inner_packet_fits_and_one_byte_more_does_not() {
        for t in Transform::ALL {
            for v6 in [false, true] {
                for mtu in 1200..1600 {
                    let l = largest_inner(mtu, t, v6);
                    assert!(outer_len(l, t, v6) <= mtu, "{t} {mtu}");
                    assert!(outer_len(l + 1, t, v6) > mtu, "{t} {mtu}");
                }
            }
        }
        // AES-GCM over IPv4: 20 + 8 + 8 + 8 (IV) + 16 (ICV) + the 4-byte-aligned body.
        assert_eq!(outer_len(1400, Transform::Aes128Gcm16, false), 1464);
        assert_eq!(largest_inner(1500, Transform::Aes128Gcm16, false), 1438);
    }
}
