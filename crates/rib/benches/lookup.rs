//! Longest-prefix match in a [`rib::Table`] of 100 000 routes: the daemon looks every inner
//! packet's destination up in one (`[[route]]`s and BGP routes → connection).
//!
//! Prefixes are pseudo-random (fixed seed) IPv4 /8–/32, most of them /16–/24 as in a
//! real table, plus a default route so that every lookup finds something; lookups go to
//! pseudo-random addresses (`lookup-v4/hit-random`) and to one hot address
//! (`lookup-v4/same-address`, a bulk flow). `bench/criterion.sh` compares the means with
//! `bench/baseline/criterion.txt`.

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net};
use rib::{NextHop, Route, Source, Table};

const ROUTES: usize = 100_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn table(rng: &mut Rng) -> Table {
    // Distinct prefixes first: `Table::len` walks the table, too slow to ask 100 000 times.
    let mut prefixes = std::collections::BTreeMap::new();
    while prefixes.len() < ROUTES - 1 {
        let r = rng.next();
        // 70 % /16–/24, the rest /8–/32.
        let len = if r % 10 < 7 {
            16 + (r >> 8) % 9
        } else {
            8 + (r >> 8) % 25
        } as u8;
        if let Ok(net) = Ipv4Net::new(Ipv4Addr::from((r >> 32) as u32), len) {
            prefixes.insert(net.trunc(), (r >> 16) % 64);
        }
    }
    let mut t = Table::new();
    t.insert(Route::new(
        "0.0.0.0/0".parse().expect("literal"),
        NextHop::Connection("default".into()),
        Source::Static,
    ));
    for (net, conn) in prefixes {
        t.insert(Route::new(
            IpNet::V4(net),
            NextHop::Connection(format!("conn{conn}")),
            Source::Static,
        ));
    }
    assert_eq!(t.len(), ROUTES);
    t
}

fn lookup(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t = table(&mut rng);
    let addrs: Vec<IpAddr> = (0..4096)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    let mut g = c.benchmark_group("lookup-v4");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("hit-random", |b| {
        b.iter(|| {
            i = (i + 1) % addrs.len();
            black_box(t.lookup(addrs[i]).map(|s| s.prefix))
        });
    });
    let hot = addrs[7];
    g.bench_function("same-address", |b| {
        b.iter(|| black_box(t.lookup(black_box(hot)).map(|s| s.prefix)));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = lookup
}
criterion_main!(benches);
