//! IKE message decode and encode: the codec work of every IKE datagram in and out (the
//! cryptography of SK payloads is not included). Fixtures are the two of `tests/codec.rs`:
//! an IKE_SA_INIT request (SA, KE, Nonce, NAT detection, Vendor ID; 182 bytes) and IKE_AUTH
//! content as it sits inside SK (IDi, AUTH, SA, TSi with IPv4 and IPv6, TSr, Delete,
//! Notify; 246 bytes). `bench/criterion.sh` compares the means with
//! `bench/baseline/criterion.txt`.

use std::{hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hex_literal::hex;
use ike::Message;

const SA_INIT: [u8; 182] = hex!(
    "0102030405060708 0000000000000000 21 20 22 08 00000000 000000b6"
    "22 00 0028"
    "00 00 0024 01 01 00 03"
    "03 00 000c 01 00 0014 800e 0080"
    "03 00 0008 02 00 0005"
    "00 00 0008 04 00 001f"
    "28 00 0028 001f 0000"
    "1111111111111111111111111111111111111111111111111111111111111111"
    "29 00 0024"
    "2222222222222222222222222222222222222222222222222222222222222222"
    "2b 00 001c 00 00 4004 3333333333333333333333333333333333333333"
    "00 00 000a 766770677721"
);

const IKE_AUTH_CONTENT: [u8; 246] = hex!(
    "0102030405060708 1112131415161718 23 20 23 08 00000001 000000f6"
    "27 00 0012 02 000000 67772e6578616d706c65"
    "21 00 0028 02 000000"
    "5555555555555555555555555555555555555555555555555555555555555555"
    "2c 00 002c"
    "00 00 0028 01 03 04 03 deadbeef"
    "03 00 000c 01 00 000c 800e 0100"
    "03 00 0008 03 00 000c"
    "00 00 0008 05 00 0000"
    "2d 00 0040 02 000000"
    "07 00 0010 0000 ffff 00000000 ffffffff"
    "08 00 0028 0000 ffff"
    "00000000000000000000000000000000 ffffffffffffffffffffffffffffffff"
    "2a 00 0018 01 000000"
    "07 06 0010 01bb 01bb 0a000000 0a0000ff"
    "29 00 0010 03 04 0002 cafebabe 01020304"
    "00 00 000c 03 04 4009 deadbeef"
);

fn codec(c: &mut Criterion) {
    for (name, bytes) in [
        ("ike_sa_init", &SA_INIT[..]),
        ("ike_auth_content", &IKE_AUTH_CONTENT[..]),
    ] {
        let msg = Message::decode(bytes).expect("fixture decodes");
        assert_eq!(msg.encode().expect("fixture encodes"), bytes);
        let mut g = c.benchmark_group(format!("ike-{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("decode", |b| {
            b.iter(|| black_box(Message::decode(black_box(bytes))));
        });
        g.bench_function("encode", |b| {
            b.iter(|| black_box(black_box(&msg).encode()));
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec
}
criterion_main!(benches);
