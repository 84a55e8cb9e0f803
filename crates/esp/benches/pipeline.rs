//! The TUN → UDP per-packet work of the daemon's engine, in memory: read the inner
//! destination, look it up in a `rib::Table` (100 000 routes plus the tunnel's), map the
//! connection name to its outbound SA, seal the 1400-byte packet in place and append it to
//! the UDP GSO buffer, as `vpngw::daemon::tunnel` does for each segment of a TUN read
//! (the engine is private to the daemon binary, so the steps are mirrored here).
//!
//! `pipeline/lookup-seal-1400` is one packet with its own route lookup;
//! `pipeline/batch-45x1400` is the segments of one 64 KB TSO read (45 packets, one lookup,
//! as the engine caches the destination of a super-packet's segments), per batch.
//! `bench/criterion.sh` compares the means with `bench/baseline/criterion.txt`.

use std::{
    collections::HashMap,
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esp::{OutboundSa, SaConfig, Spi, Transform};
use ipnet::{IpNet, Ipv4Net};
use rib::{NextHop, Route, Source, Table};

const HEAD: usize = 64;
const TAIL: usize = 64;
const LEN: usize = 1400;
const SEGMENTS: usize = 45;

fn inner_destination(pkt: &[u8]) -> Option<IpAddr> {
    match pkt.first()? >> 4 {
        4 => {
            let b: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

fn routes() -> Table {
    // Distinct prefixes first: `Table::len` walks the table, too slow to ask 100 000 times.
    let mut prefixes = std::collections::BTreeMap::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while prefixes.len() < 100_000 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let len = 16 + (r >> 8) as u8 % 9;
        if let Ok(net) = Ipv4Net::new(Ipv4Addr::from((r >> 32) as u32), len) {
            prefixes.insert(net.trunc(), r % 64);
        }
    }
    let mut t = Table::new();
    for (net, conn) in prefixes {
        t.insert(Route::new(
            IpNet::V4(net),
            NextHop::Connection(format!("conn{conn}")),
            Source::Static,
        ));
    }
    // The tunnel's own prefix, more specific than any random one that may cover it.
    t.insert(Route::new(
        "10.0.1.0/24".parse().expect("literal"),
        NextHop::Connection("peer".into()),
        Source::Static,
    ));
    t
}

struct Pipeline {
    routes: Table,
    by_name: HashMap<String, usize>,
    sas: Vec<OutboundSa>,
    gso: Vec<u8>,
}

impl Pipeline {
    fn new() -> Self {
        let t = Transform::Aes128Gcm16;
        let km: Vec<u8> = (0..t.keymat_len()).map(|i| i as u8).collect();
        let sa = OutboundSa::new(&SaConfig::new(Spi(0x4242_4242), t), &km).expect("valid SA");
        Self {
            routes: routes(),
            by_name: HashMap::from([("peer".to_owned(), 0)]),
            sas: vec![sa],
            gso: Vec::with_capacity(65_536),
        }
    }

    fn connection(&self, dst: IpAddr) -> Option<usize> {
        let sel = self.routes.lookup(dst)?;
        let NextHop::Connection(name) = &sel.primary().next_hop else {
            return None;
        };
        self.by_name.get(name).copied()
    }

    /// Seals `buf[HEAD..HEAD + LEN]` for connection `conn` and appends it to the GSO buffer.
    fn seal(&mut self, conn: usize, buf: &mut [u8]) {
        let sa = &mut self.sas[conn];
        let tail = sa.tailroom(LEN);
        let sealed = sa
            .seal(&mut buf[..HEAD + LEN + tail], HEAD..HEAD + LEN)
            .expect("seal");
        self.gso.extend_from_slice(&buf[sealed.packet]);
    }
}

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; HEAD + LEN + TAIL];
    p[HEAD] = 0x45;
    p[HEAD + 2..HEAD + 4].copy_from_slice(&(LEN as u16).to_be_bytes());
    p[HEAD + 16..HEAD + 20].copy_from_slice(&[10, 0, 1, 10]);
    p
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    let mut p = Pipeline::new();
    let template = packet();
    let mut buf = template.clone();
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("lookup-seal-1400", |b| {
        b.iter(|| {
            // Sealing encrypts in place: restore the header the lookup reads.
            buf[HEAD..HEAD + 20].copy_from_slice(&template[HEAD..HEAD + 20]);
            let dst = inner_destination(&buf[HEAD..HEAD + LEN]).expect("IPv4");
            let conn = p.connection(black_box(dst)).expect("routed");
            p.seal(conn, &mut buf);
            p.gso.clear();
        });
    });
    let mut bufs = vec![template.clone(); SEGMENTS];
    g.throughput(Throughput::Bytes((LEN * SEGMENTS) as u64));
    g.bench_function("batch-45x1400", |b| {
        b.iter(|| {
            let mut last: Option<(IpAddr, usize)> = None;
            for buf in &mut bufs {
                buf[HEAD..HEAD + 20].copy_from_slice(&template[HEAD..HEAD + 20]);
                let dst = inner_destination(&buf[HEAD..HEAD + LEN]).expect("IPv4");
                let conn = match last {
                    Some((d, c)) if d == dst => c,
                    _ => {
                        let c = p.connection(black_box(dst)).expect("routed");
                        last = Some((dst, c));
                        c
                    }
                };
                p.seal(conn, buf);
            }
            black_box(p.gso.len());
            p.gso.clear();
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = pipeline
}
criterion_main!(benches);
