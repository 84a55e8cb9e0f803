//! Seal and open throughput per transform at 64, 512, 1400 and 8900-byte inner packets.
//!
//! Groups are named `seal-<transform>` and `open-<transform>`, ids are the inner packet
//! size, and throughput is in inner-packet bytes, the unit `openssl speed` uses for its
//! block sizes; `bench/esp-crypto.sh` reads `target/criterion/*/*/new/estimates.json`.
//!
//! `open` goes through `SadIn::handle_datagram` (classification, SPI lookup, replay window,
//! ICV, decryption, padding and inner-header checks); every packet it opens has a fresh
//! sequence number, sealed outside the timed routine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use esp::{InboundSa, OutboundSa, SaConfig, SadIn, Spi, Transform};

const SIZES: [usize; 4] = [64, 512, 1400, 8900];
const HEAD: usize = 64;
const TAIL: usize = 64;

fn inner_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0x5au8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

fn sa_pair(t: Transform) -> (OutboundSa, SadIn) {
    let config = SaConfig::new(Spi(0x4242_4242), t);
    let km: Vec<u8> = (0..t.keymat_len()).map(|i| i as u8).collect();
    let out = OutboundSa::new(&config, &km).expect("valid SA");
    let mut sad = SadIn::new();
    sad.insert(InboundSa::new(&config, &km).expect("valid SA"))
        .expect("empty table");
    (out, sad)
}

fn seal_open(c: &mut Criterion) {
    for t in Transform::ALL {
        let mut group = c.benchmark_group(format!("seal-{t}"));
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
                let (mut out, _) = sa_pair(t);
                let mut buf = vec![0u8; HEAD + size + TAIL];
                buf[HEAD..HEAD + size].copy_from_slice(&inner_packet(size));
                b.iter(|| {
                    // Sealing encrypts in place; restore the version nibble seal reads.
                    buf[HEAD] = 0x45;
                    black_box(out.seal(&mut buf, HEAD..HEAD + size).expect("seal"))
                });
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("open-{t}"));
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
                let (mut out, mut sad) = sa_pair(t);
                let inner = inner_packet(size);
                b.iter_batched(
                    || {
                        let mut buf = vec![0u8; HEAD + size + TAIL];
                        buf[HEAD..HEAD + size].copy_from_slice(&inner);
                        let sealed = out.seal(&mut buf, HEAD..HEAD + size).expect("seal");
                        buf[sealed.packet].to_vec()
                    },
                    |mut packet| {
                        black_box(sad.handle_datagram(&mut packet).expect("open"));
                        packet
                    },
                    BatchSize::SmallInput,
                );
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal_open
}
criterion_main!(benches);
