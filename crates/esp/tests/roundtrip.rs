//! Properties of seal and open across every transform, with and without ESN: round trips
//! for random sizes, and rejection of any single flipped bit.

mod common;

use common::{config, framed, ip_packet, pair, seal};
use esp::{DropReason, Received, RecvError, Transform};
use proptest::prelude::*;

fn transform() -> impl Strategy<Value = Transform> {
    prop::sample::select(Transform::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_open_round_trip(
        t in transform(),
        esn in any::<bool>(),
        v6 in any::<bool>(),
        len in 0usize..9000,
        fill in prop::collection::vec(any::<u8>(), 1..64),
        packets in 1usize..4,
    ) {
        let (mut out, mut sad) = pair(&config(t, esn));
        let inner = ip_packet(if v6 { 6 } else { 4 }, len, &fill);
        for n in 1..=packets as u64 {
            let (mut buf, range) = framed(&inner);
            let sealed = out.seal(&mut buf, range.clone()).unwrap();
            prop_assert_eq!(sealed.seq, n);
            let packet = &mut buf[sealed.packet.clone()];
            // Overhead is exactly header + IV + padding + trailer + ICV.
            prop_assert_eq!(packet.len(), out.headroom() + inner.len() + out.tailroom(inner.len()));
            prop_assert_eq!((packet.len() - 8 - t.iv_len() - 16) % t.pad_align(), 0);
            let r = sad.handle_datagram(packet).unwrap();
            let range = match r {
                Received::Ipv4 { range, seq, .. } if !v6 => { prop_assert_eq!(seq, n); range }
                Received::Ipv6 { range, seq, .. } if v6 => { prop_assert_eq!(seq, n); range }
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            prop_assert_eq!(&packet[range], &inner[..]);
        }
        prop_assert_eq!(sad.drop_counters().total(), 0);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        t in transform(),
        esn in any::<bool>(),
        len in 20usize..300,
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut out, mut sad) = pair(&config(t, esn));
        let mut packet = seal(&mut out, &ip_packet(4, len, &[0x5a, 0xa5]));
        let bit = bit.index(packet.len() * 8);
        packet[bit / 8] ^= 1 << (bit % 8);
        let e = sad.handle_datagram(&mut packet).unwrap_err();
        // Which error depends on the field hit; none may let the packet through.
        prop_assert!(matches!(
            e.reason(),
            DropReason::AuthFailed | DropReason::UnknownSpi | DropReason::Replayed
        ), "{:?}", e);
        prop_assert_eq!(sad.drop_counters().total(), 1);
        // The genuine packet is still accepted afterwards: a forgery consumes nothing.
        packet[bit / 8] ^= 1 << (bit % 8);
        // (In place decryption may have scribbled on a failed CBC/AEAD ciphertext; reseal.)
        let mut fresh = seal(&mut out, &ip_packet(4, len, &[0x5a, 0xa5]));
        prop_assert!(sad.handle_datagram(&mut fresh).is_ok());
    }

    #[test]
    fn short_buffers_are_errors_not_panics(
        t in transform(),
        len in 0usize..200,
        head in 0usize..40,
        tail in 0usize..48,
    ) {
        let (mut out, _) = pair(&config(t, false));
        let inner = ip_packet(4, len, &[1]);
        let mut buf = vec![0u8; head + inner.len() + tail];
        buf[head..head + inner.len()].copy_from_slice(&inner);
        let r = out.seal(&mut buf, head..head + inner.len());
        let fits = head >= out.headroom() && tail >= out.tailroom(inner.len());
        prop_assert_eq!(r.is_ok(), fits, "{:?}", r);
    }

    #[test]
    fn truncated_packets_are_rejected(t in transform(), cut in 0usize..200) {
        let (mut out, mut sad) = pair(&config(t, false));
        let mut packet = seal(&mut out, &ip_packet(4, 100, &[3]));
        let cut = cut.min(packet.len() - 1);
        packet.truncate(cut);
        prop_assert!(sad.handle_datagram(&mut packet).is_err());
    }
}

#[test]
fn cbc_ivs_differ_per_packet() {
    for t in [Transform::Aes128CbcSha256, Transform::Aes256CbcSha256] {
        let (mut out, _) = pair(&config(t, false));
        let inner = ip_packet(4, 64, &[9]);
        let a = seal(&mut out, &inner);
        let b = seal(&mut out, &inner);
        assert_ne!(a[8..24], b[8..24]);
    }
}

#[test]
fn aead_iv_is_the_sequence_number() {
    for t in [
        Transform::Aes128Gcm16,
        Transform::Aes256Gcm16,
        Transform::ChaCha20Poly1305,
    ] {
        let (mut out, _) = pair(&config(t, true));
        let inner = ip_packet(6, 64, &[9]);
        let _ = seal(&mut out, &inner);
        let b = seal(&mut out, &inner);
        assert_eq!(b[8..16], 2u64.to_be_bytes());
    }
}

#[test]
fn malformed_cbc_length_is_counted() {
    let (mut out, mut sad) = pair(&config(Transform::Aes128CbcSha256, false));
    let mut packet = seal(&mut out, &ip_packet(4, 64, &[1]));
    packet.insert(30, 0);
    let e = sad.handle_datagram(&mut packet).unwrap_err();
    assert!(matches!(e, RecvError::Malformed { block: 16, .. }), "{e:?}");
    assert_eq!(sad.drop_counters().malformed, 1);
}
