//! Random and mutated datagrams into live endpoints never panic and never kill an
//! established SA.

#[path = "fsm/util.rs"]
mod util;

use std::time::Duration;

use ike::SaState;
use proptest::prelude::*;
use util::*;

const GCM: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");

fn established(seed: u64) -> Pair {
    let mut p = Pair::new(seed);
    let mut a = conn(Side::A, GCM.0, GCM.1);
    a.dpd_interval = Some(Duration::from_secs(30));
    setup(&mut p, a, conn(Side::B, GCM.0, GCM.1));
    p.run(Duration::from_secs(2));
    // A few exchanges to record: a child rekey and a DPD.
    let spi = p.children_up(Side::A)[0].1.spi_in;
    let now = p.now;
    p.a.handle_child_event(now, spi, ike::ChildSaSignal::SoftLimit);
    p.run(Duration::from_secs(40));
    assert_eq!(p.live_children(Side::A).len(), 1);
    p
}

#[derive(Debug, Clone)]
enum Garbage {
    Random(Vec<u8>),
    /// (index into the recorded datagrams, byte offset, xor mask)
    Flip(usize, usize, u8),
    Truncate(usize, usize),
    /// A recorded datagram delivered again, to either side.
    Replay(usize, bool),
    /// A recorded header with random payload bytes.
    Header(usize, Vec<u8>),
}

fn garbage() -> impl Strategy<Value = Garbage> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Garbage::Random),
        (any::<usize>(), any::<usize>(), 1..=255u8).prop_map(|(i, o, m)| Garbage::Flip(i, o, m)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, l)| Garbage::Truncate(i, l)),
        (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Garbage::Replay(i, b)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(i, v)| Garbage::Header(i, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics_or_kills_the_sa(inputs in proptest::collection::vec(garbage(), 1..40)) {
        let mut p = established(1);
        let recorded: Vec<_> = p.sent.iter().map(|s| (s.from, s.t.clone())).collect();
        for g in inputs {
            let pick = |i: usize| &recorded[i % recorded.len()];
            let (to_b, data) = match g {
                Garbage::Random(v) => (true, v),
                Garbage::Flip(i, o, m) => {
                    let (from, t) = pick(i);
                    let mut d = t.payload.clone();
                    let len = d.len();
                    if len > 0 { d[o % len] ^= m; }
                    (*from == Side::A, d)
                }
                Garbage::Truncate(i, l) => {
                    let (from, t) = pick(i);
                    let mut d = t.payload.clone();
                    d.truncate(l % (d.len() + 1));
                    (*from == Side::A, d)
                }
                Garbage::Replay(i, b) => (b, pick(i).1.payload.clone()),
                Garbage::Header(i, v) => {
                    let (from, t) = pick(i);
                    let mut d = t.payload.get(..28).unwrap_or_default().to_vec();
                    d.extend(v);
                    (*from == Side::A, d)
                }
            };
            let now = p.now;
            if to_b {
                p.b.handle_datagram(now, sa(B_IP, 500), sa(A_IP, 500), &data);
            } else {
                p.a.handle_datagram(now, sa(A_IP, 500), sa(B_IP, 500), &data);
            }
            p.run(Duration::from_millis(50));
        }
        p.run(Duration::from_secs(5));
        for ep in [&p.a, &p.b] {
            let sas: Vec<_> = ep.sas().filter(|s| s.state == SaState::Established).collect();
            prop_assert_eq!(sas.len(), 1);
            prop_assert_eq!(sas[0].children.len(), 1);
        }
        prop_assert!(p.ike_down(Side::A).is_empty());
        prop_assert!(p.ike_down(Side::B).is_empty());
        // The SA still works: a child rekey goes through.
        let spi = p.live_children(Side::A)[0];
        let now = p.now;
        p.a.handle_child_event(now, spi, ike::ChildSaSignal::SoftLimit);
        p.run(Duration::from_secs(5));
        prop_assert_eq!(p.live_children(Side::A).len(), 1);
        prop_assert_ne!(p.live_children(Side::A)[0], spi);
        assert_child_pair(&p, p.live_children(Side::A)[0]);
    }
}

#[test]
fn fuzz_entry_point_smoke() {
    ike::fuzzing::endpoint_datagrams(b"");
    ike::fuzzing::endpoint_datagrams(&[1; 100]);
    let mut d = vec![3u8; 40];
    d.extend([0xfe, 0xfe]);
    d.extend([0u8; 28]);
    ike::fuzzing::endpoint_datagrams(&d);
}
