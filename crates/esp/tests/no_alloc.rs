//! "No per-packet allocation": sealing and opening, one at a time and in batches, on every
//! transform, allocates nothing on the Rust heap once the SAs and buffers exist.
//!
//! (AWS-LC's own C allocations are not visible here; its AEAD, AES-CBC and HMAC paths used
//! per packet work on preallocated contexts and the caller's buffer.)

mod common;

use common::{config, ip_packet, pair, HEADROOM, TAILROOM};
use esp::{Slot, Transform};

#[test]
fn seal_and_open_do_not_allocate() {
    // The counter is live in this binary.
    let probe = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 3]);
    });
    assert_eq!(probe.count_total, 1);
    for t in Transform::ALL {
        for esn in [false, true] {
            let (mut out, mut sad) = pair(&config(t, esn));
            let inner = ip_packet(4, 1400, &[1, 2, 3]);
            let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
            let mut bufs = vec![vec![0u8; HEADROOM + inner.len() + TAILROOM]; 16];
            // Warm up anything lazily initialised (CPU feature detection, RNG state).
            let mut warm = buf.clone();
            warm[HEADROOM..HEADROOM + inner.len()].copy_from_slice(&inner);
            let s = out
                .seal(&mut warm, HEADROOM..HEADROOM + inner.len())
                .unwrap();
            sad.handle_datagram(&mut warm[s.packet]).unwrap();

            let info = allocation_counter::measure(|| {
                for _ in 0..64 {
                    buf[HEADROOM..HEADROOM + inner.len()].copy_from_slice(&inner);
                    let s = out
                        .seal(&mut buf, HEADROOM..HEADROOM + inner.len())
                        .unwrap();
                    let r = sad.handle_datagram(&mut buf[s.packet]).unwrap();
                    std::hint::black_box(r);
                }
            });
            assert_eq!(
                info.count_total, 0,
                "{t} esn={esn}: single packets allocated"
            );

            for b in &mut bufs {
                b[HEADROOM..HEADROOM + inner.len()].copy_from_slice(&inner);
            }
            let mut slots: Vec<Slot<'_>> = bufs
                .iter_mut()
                .map(|b| Slot::new(b, HEADROOM..HEADROOM + inner.len()))
                .collect();
            let info = allocation_counter::measure(|| {
                assert_eq!(out.seal_batch(&mut slots), 16);
                assert_eq!(sad.handle_datagram_batch(&mut slots), 16);
            });
            assert_eq!(info.count_total, 0, "{t} esn={esn}: batches allocated");
        }
    }
}
