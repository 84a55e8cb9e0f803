//! Anti-replay properties: every sequence number is accepted once, in any order inside the
//! window, everything left of it is refused, and with ESN all of this holds across 2^32
//! boundaries.

mod common;

use std::collections::HashSet;

use common::{config, ip_packet, pair, seal};
use esp::replay::{ReplayError, ReplayWindow};
use esp::{DropReason, Received, Transform};
use proptest::prelude::*;

/// The RFC 4303 §3.4.3 semantics, stated directly.
struct Model {
    size: u64,
    top: u64,
    seen: HashSet<u64>,
}

impl Model {
    fn accept(&mut self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 || (seq <= self.top && self.top - seq >= self.size) {
            return Err(ReplayError::TooOld);
        }
        if !self.seen.insert(seq) {
            return Err(ReplayError::Duplicate);
        }
        self.top = self.top.max(seq);
        Ok(())
    }
}

fn window_size() -> impl Strategy<Value = u32> {
    prop_oneof![Just(64u32), Just(1024), Just(4096), 64u32..5000]
}

/// Bases that put the action at the start, around 2^32 boundaries, and at the very end.
fn base() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        (1u64..8).prop_map(|k| (k << 32) - 3000),
        Just(u64::MAX - 20_000),
        0u64..u64::MAX - 20_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn window_matches_model(
        size in window_size(),
        base in base(),
        offsets in prop::collection::vec(0u64..12_000, 1..400),
    ) {
        let mut w = ReplayWindow::new(size).unwrap();
        let mut m = Model { size: w.size(), top: 0, seen: HashSet::new() };
        for off in offsets {
            let seq = base + off;
            prop_assert_eq!(w.check(seq), m.accept_dry(seq));
            prop_assert_eq!(w.accept(seq), m.accept(seq), "seq {}", seq);
            prop_assert_eq!(w.top(), m.top);
        }
    }

    /// Any permutation of a window's worth of numbers is accepted once each.
    #[test]
    fn any_order_inside_the_window(
        size in window_size(),
        base in base(),
        order in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<u64> = (1..=64u64).collect();
            // Fisher-Yates with the test's RNG.
            for i in (1..v.len()).rev() {
                let j = (rng.next_u32() as usize) % (i + 1);
                v.swap(i, j);
            }
            v
        }),
    ) {
        let mut w = ReplayWindow::new(size).unwrap();
        let start = base + 1;
        // Jump to the end of the span first, then fill in out of order.
        let last = start + 63;
        prop_assert_eq!(w.accept(last), Ok(()));
        for k in order {
            let seq = start + k - 1;
            if seq == last {
                prop_assert_eq!(w.accept(seq), Err(ReplayError::Duplicate));
            } else {
                prop_assert_eq!(w.accept(seq), Ok(()));
                prop_assert_eq!(w.accept(seq), Err(ReplayError::Duplicate));
            }
        }
        if start > 1 {
            // Anything more than a window behind the top is too old.
            let old = last.saturating_sub(w.size());
            if old > 0 {
                prop_assert_eq!(w.check(old), Err(ReplayError::TooOld));
            }
        }
    }

    /// RFC 4303 A2.1: a packet inside the window or up to 2^31 ahead is given the right
    /// high half from its low 32 bits alone.
    #[test]
    fn esn_inference_recovers_nearby_numbers(
        size in window_size(),
        top in base().prop_map(|b| b + 5000),
        delta in -4999i64..(1 << 31),
    ) {
        let mut w = ReplayWindow::new(size).unwrap();
        w.accept(top).unwrap();
        let Some(seq) = top.checked_add_signed(delta) else { return Ok(()) };
        if delta < 0 && delta.unsigned_abs() >= w.size() {
            return Ok(()); // left of the window: no promise
        }
        prop_assert_eq!(w.infer_esn(seq as u32), Some(seq));
    }
}

impl Model {
    fn accept_dry(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 || (seq <= self.top && self.top - seq >= self.size) {
            return Err(ReplayError::TooOld);
        }
        if self.seen.contains(&seq) {
            return Err(ReplayError::Duplicate);
        }
        Ok(())
    }
}

/// End to end with ESN: a sender crossing 2^32 several times, packets delivered shuffled
/// within the window and some twice; each is delivered exactly once with its full 64-bit
/// number, and stale ones are refused.
#[test]
fn esn_end_to_end_across_two_boundaries() {
    for t in Transform::ALL {
        let (mut out, mut sad) = pair(&config(t, true));
        // Far enough below 2^32 that an empty window places it in subspace 0 (RFC 4303
        // A2.1 reads the top W numbers of the space as "just before the window").
        let first = (1u64 << 32) - 1100;
        esp::fuzzing::set_last_seq(&mut out, first - 1);
        let inner = ip_packet(4, 40, &[1, 2, 3]);
        // Seal 1400 packets: first .. first + 1399, which crosses 2^32.
        let packets: Vec<(u64, Vec<u8>)> = (0..1400)
            .map(|i| (first + i, seal(&mut out, &inner)))
            .collect();
        // Deliver in blocks of 64, each block reversed, every 7th packet twice.
        let mut delivered = HashSet::new();
        for chunk in packets.chunks(64) {
            for (seq, p) in chunk.iter().rev() {
                for attempt in 0..if seq % 7 == 0 { 2 } else { 1 } {
                    let mut p = p.clone();
                    match sad.handle_datagram(&mut p) {
                        Ok(Received::Ipv4 { seq: got, .. }) => {
                            assert_eq!(attempt, 0);
                            assert_eq!(got, *seq);
                            assert!(delivered.insert(got));
                        }
                        Ok(other) => panic!("{other:?}"),
                        Err(e) => {
                            assert_eq!(attempt, 1, "{t} seq {seq}: {e}");
                            assert_eq!(e.reason(), DropReason::Replayed);
                        }
                    }
                }
            }
        }
        assert_eq!(delivered.len(), 1400);
        // The first packets are now more than a window behind. Their low 32 bits lie
        // below the window's reach into subspace 0, so RFC 4303 A2.1 reads them as
        // subspace 1, far ahead, and the authenticated high bits make the ICV fail: they
        // are refused either way, and nothing is delivered twice.
        for (_, p) in &packets[..300] {
            let mut stale = p.clone();
            let reason = sad.handle_datagram(&mut stale).unwrap_err().reason();
            assert!(
                matches!(reason, DropReason::Replayed | DropReason::AuthFailed),
                "{reason:?}"
            );
        }

        // Jump to just below the next boundary, in two hops of less than 2^31 (a receiver
        // cannot place a jump of nearly 2^32: RFC 4303 A2.2), and cross it too.
        esp::fuzzing::set_last_seq(&mut out, (1u64 << 32) + (1 << 31) - 1);
        let mut p = seal(&mut out, &inner);
        assert!(sad.handle_datagram(&mut p).is_ok());
        esp::fuzzing::set_last_seq(&mut out, (2u64 << 32) - 3);
        for want in (2u64 << 32) - 2..(2u64 << 32) + 3 {
            let mut p = seal(&mut out, &inner);
            match sad.handle_datagram(&mut p) {
                Ok(Received::Ipv4 { seq, .. }) => assert_eq!(seq, want),
                other => panic!("{t}: {other:?}"),
            }
        }
    }
}

/// Without ESN the 32-bit counter never wraps: the sender refuses instead.
#[test]
fn no_esn_sequence_exhaustion_is_refused() {
    let (mut out, mut sad) = pair(&config(Transform::Aes128Gcm16, false));
    esp::fuzzing::set_last_seq(&mut out, u64::from(u32::MAX) - 1);
    let inner = ip_packet(4, 40, &[1]);
    let mut p = seal(&mut out, &inner);
    assert!(sad.handle_datagram(&mut p).is_ok());
    let (mut buf, range) = common::framed(&inner);
    assert_eq!(
        out.seal(&mut buf, range),
        Err(esp::SealError::SequenceExhausted)
    );
    assert_eq!(out.last_seq(), u64::from(u32::MAX));
}
