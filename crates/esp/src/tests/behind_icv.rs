//! Authenticated packets whose contents break RFC 4303: each must be refused with its own
//! error and counter, and must still consume its sequence number.

use crate::error::{DropReason, RecvError};
use crate::fuzzing::{ipv4_packet, ipv6_packet, keymat, Harness, SAS};
use crate::sad::Received;
use crate::transform::Transform;

/// Sealed-mode fuzz input: SA index, sequence number, ciphertext area.
fn sealed_input(sa: usize, seq: u16, area: &[u8]) -> Vec<u8> {
    let mut v = vec![1, sa as u8];
    v.extend_from_slice(&(seq - 1).to_be_bytes());
    v.extend_from_slice(area);
    v
}

fn with_trailer(payload: &[u8], align: usize, next_header: u8) -> Vec<u8> {
    let pad = (align - (payload.len() + 2) % align) % align;
    let mut v = payload.to_vec();
    v.extend((1..=pad as u8).chain([pad as u8, next_header]));
    v
}

#[test]
fn every_sa_delivers_and_refuses_bad_trailers() {
    for (i, (_, transform, _)) in SAS.into_iter().enumerate() {
        let align = transform.pad_align();
        let mut h = Harness::new();
        let good = with_trailer(&ipv4_packet(60), align, 4);
        let r = h.run(&sealed_input(i, 1, &good)).unwrap();
        assert!(
            matches!(r, Received::Ipv4 { seq: 1, .. }),
            "{transform}: {r:?}"
        );

        let v6 = with_trailer(&ipv6_packet(77), align, 41);
        assert!(matches!(
            h.run(&sealed_input(i, 2, &v6)),
            Ok(Received::Ipv6 { .. })
        ));

        let dummy = with_trailer(&[0xab; 33], align, 59);
        assert!(matches!(
            h.run(&sealed_input(i, 3, &dummy)),
            Ok(Received::Dummy { seq: 3, .. })
        ));

        // Padding byte wrong.
        let mut bad = with_trailer(&ipv4_packet(60), align, 4);
        let n = bad.len();
        if bad[n - 2] > 0 {
            bad[n - 3] ^= 1;
            let e = h.run(&sealed_input(i, 4, &bad)).unwrap_err();
            assert_eq!(e.reason(), DropReason::BadPadding, "{transform}");
        }
        // Pad Length larger than the plaintext.
        let mut bad = vec![0u8; align * 2];
        let n = bad.len();
        bad[n - 2] = 255;
        bad[n - 1] = 4;
        let e = h.run(&sealed_input(i, 5, &bad)).unwrap_err();
        assert!(
            matches!(e, RecvError::BadPadding { seq: 5, .. }),
            "{transform}: {e:?}"
        );
        assert!(e.is_authenticated());

        // Next Header UDP (transport mode) is not tunnel mode.
        let bad = with_trailer(&ipv4_packet(60), align, 17);
        let e = h.run(&sealed_input(i, 6, &bad)).unwrap_err();
        assert!(matches!(
            e,
            RecvError::BadNextHeader {
                next_header: 17,
                ..
            }
        ));

        // IPv6 bytes under Next Header 4.
        let bad = with_trailer(&ipv6_packet(60), align, 4);
        let e = h.run(&sealed_input(i, 7, &bad)).unwrap_err();
        assert_eq!(e.reason(), DropReason::BadInnerPacket);

        // An inner header claiming more than was sent.
        let mut long = ipv4_packet(60);
        long[3] = 61;
        let bad = with_trailer(&long, align, 4);
        let e = h.run(&sealed_input(i, 8, &bad)).unwrap_err();
        assert_eq!(e.reason(), DropReason::BadInnerPacket);

        // All of those consumed their sequence numbers: replays now.
        let e = h.run(&sealed_input(i, 6, &good)).unwrap_err();
        assert_eq!(e.reason(), DropReason::Replayed, "{transform}");

        let c = h.sad().drop_counters();
        assert_eq!(c.bad_next_header, 1);
        assert_eq!(c.bad_inner_packet, 2);
        assert_eq!(c.replayed, 1);
        assert_eq!(h.sad().rx_counters().dummy, 1);
    }
}

#[test]
fn tfc_padding_after_the_inner_packet_is_stripped() {
    // RFC 4303 §2.7: the receiver finds the inner packet's end from its own header.
    let mut h = Harness::new();
    let inner = ipv4_packet(40);
    let mut payload = inner.clone();
    payload.extend_from_slice(&[0u8; 23]);
    let area = with_trailer(&payload, 4, 4);
    let r = h.run(&sealed_input(0, 1, &area)).unwrap();
    let Received::Ipv4 { range, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(range.len(), 40);
}

#[test]
fn keymat_lengths_match_the_harness() {
    for (i, (_, t, _)) in SAS.into_iter().enumerate() {
        assert_eq!(keymat(i, t).len(), t.keymat_len());
    }
    assert_eq!(Transform::ALL.len() * 2, SAS.len());
}
