//! In-memory relay of 100 000 IPv4 prefixes from one eBGP peer to another, through the
//! whole speaker (framing, decoding, import, decision, export, packing, encoding): a sanity
//! check of the design ahead of the BIRD relay benchmark. Ignored by default; run with
//! `cargo test -p bgp --release --test relay -- --ignored --nocapture`.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Instant,
};

use bgp::{
    neighbor::Direction,
    packet::{
        attribute::{AsPath, NextHop, PathAttrs},
        iana::Family,
        message::{encode_announce, Capability, Message, Open},
        DecodeCxt, EncodeCxt, Framer,
    },
    policy::{ExportPolicy, ImportPolicy},
    Input, Output, PeerConfig, Speaker, SpeakerConfig, State,
};
use ipnet::{IpNet, Ipv4Net};

fn peer(s: &mut Speaker, addr: &str, asn: u32) -> bgp::PeerId {
    let mut c = PeerConfig::new(addr, addr.parse().unwrap(), asn);
    c.import = ImportPolicy::permit_all();
    c.export = ExportPolicy::permit_all();
    let id = s.add_peer(c).unwrap();
    s.process(id, Input::ManualStart);
    s.process(
        id,
        Input::TcpConnected {
            local: "10.0.0.2:179".parse().unwrap(),
            remote: SocketAddr::new(addr.parse().unwrap(), 40000),
            direction: Direction::Passive,
        },
    );
    let e = EncodeCxt {
        four_octet_as: true,
    };
    let open = Open::new(
        asn,
        90,
        addr.parse().unwrap(),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    );
    s.handle_bytes(id, &Message::Open(open).to_bytes(&e).unwrap());
    s.handle_bytes(id, &Message::Keepalive.to_bytes(&e).unwrap());
    assert_eq!(s.session(id).unwrap().state(), State::Established);
    id
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "timing; run in release"]
fn relay_100k_prefixes() {
    const N: u32 = 100_000;
    let mut s = Speaker::new(SpeakerConfig {
        asn: 65002,
        router_id: Ipv4Addr::new(10, 0, 0, 2),
    })
    .unwrap();
    let a = peer(&mut s, "10.0.0.1", 65001);
    let b = peer(&mut s, "10.0.0.3", 65003);
    let prefixes: Vec<IpNet> = (0..N)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap()))
        .collect();
    let attrs = PathAttrs {
        as_path: AsPath::sequence([65001]),
        ..PathAttrs::default()
    };
    let mut stream = Vec::new();
    encode_announce(
        Family::Ipv4Unicast,
        &attrs,
        &NextHop::new("10.0.0.1".parse().unwrap()),
        &prefixes,
        &EncodeCxt {
            four_octet_as: true,
        },
        &mut stream,
    )
    .unwrap();
    let hwm0 = vm_hwm_kib();
    let t = Instant::now();
    let mut out_bytes = 0usize;
    let mut rx = Framer::new();
    for chunk in stream.chunks(64 * 1024) {
        for o in s.handle_bytes(a, chunk) {
            if let Output::Send { peer, bytes } = o {
                if peer == b {
                    out_bytes += bytes.len();
                    rx.push(&bytes);
                }
            }
        }
    }
    let took = t.elapsed();
    let mut got = 0;
    while let Some(m) = rx.next_message().unwrap() {
        if let Message::Update(u) = Message::decode(
            m,
            &DecodeCxt {
                four_octet_as: true,
            },
        )
        .unwrap()
        {
            got += u.nlri.len();
        }
    }
    assert_eq!(got, N as usize);
    assert_eq!(s.loc_rib().len(), N as usize);
    println!(
        "relayed {N} prefixes ({} KiB in, {} KiB out) in {took:?}; VmHWM {} -> {} MiB",
        stream.len() / 1024,
        out_bytes / 1024,
        hwm0 / 1024,
        vm_hwm_kib() / 1024
    );
}
