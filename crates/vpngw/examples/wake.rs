//! How long a packet takes from being sent to being in a reader's hands after ~20 ms of
//! other work, by how the reader waits: `epoll_wait` then `read`/`recvmsg` (the engine's
//! loop, and boringtun's), or blocked in the `read`/`recvmsg` itself. The two cold hops of
//! an idle round trip through two gateways start this way: gw1 woken by its TUN device, gw2
//! by its UDP socket. `bench/wake.sh` runs it in a namespace of its own (it creates a TUN
//! device); see docs/performance.md.
//!
//! ```text
//! wake [PACKETS]        the reader: prints, per source and way of waiting, the latency's
//!                       p10, median and p90 over PACKETS packets each (default 600)
//! wake send ADDR N      the sender (spawned by the reader): N UDP datagrams to ADDR, 20 ms
//!                       apart, each after touching 32 MB (other work: caches and TLB
//!                       evicted), each carrying CLOCK_MONOTONIC at the send
//! ```
//!
//! The ways of waiting alternate every 50 packets, so that both see the same moments of a
//! shared machine.

use std::{
    io::IoSliceMut,
    net::{SocketAddr, UdpSocket},
    os::fd::{AsFd, AsRawFd},
    process::{Command, Stdio},
    time::Duration,
};

use nix::{
    fcntl::{fcntl, FcntlArg, OFlag},
    sys::{
        epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout},
        socket::{recvmsg, MsgFlags, SockaddrIn},
        time::TimeValLike,
    },
    time::{clock_gettime, ClockId},
};

/// Where the TUN device's traffic goes: a host behind it (nothing answers; the reader only
/// reads what the kernel routes in).
const TUN_PEER: &str = "10.77.0.2:9";
const BLOCK: usize = 50;

fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    u64::try_from(t.num_nanoseconds()).unwrap_or(0)
}

fn send(addr: &str, n: usize) {
    let to: SocketAddr = addr.parse().expect("ADDR");
    // Both readers listen on IPv4 addresses.
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    let mut junk = vec![0u8; 32 << 20];
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(20));
        for b in junk.iter_mut().step_by(64) {
            *b = b.wrapping_add(1);
        }
        std::hint::black_box(&junk);
        let _ = sock.send_to(&monotonic_ns().to_ne_bytes(), to);
    }
}

fn set_blocking(fd: impl AsFd, blocking: bool) {
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).expect("F_GETFL"));
    let flags = if blocking {
        flags - OFlag::O_NONBLOCK
    } else {
        flags | OFlag::O_NONBLOCK
    };
    fcntl(&fd, FcntlArg::F_SETFL(flags)).expect("F_SETFL");
}

/// Reads `2 * n` stamped packets through `read`, alternating the way of waiting every
/// [`BLOCK`] packets, then stops the sender and prints each way's latency percentiles.
fn measure(
    name: &str,
    fd: impl AsFd + Copy,
    n: usize,
    sender: &mut std::process::Child,
    mut read: impl FnMut(&mut [u8]) -> Option<[u8; 8]>,
) {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
    epoll
        .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, 0))
        .expect("epoll_ctl");
    let mut buf = vec![0u8; 65_536];
    let mut lat: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut i = 0;
    while i < 2 * n {
        let way = (i / BLOCK) % 2;
        set_blocking(fd, way == 1);
        if way == 0 {
            let mut ev = [EpollEvent::empty()];
            while epoll.wait(&mut ev, EpollTimeout::NONE).unwrap_or(0) == 0 {}
        }
        let Some(stamp) = read(&mut buf) else {
            continue;
        };
        lat[way].push(monotonic_ns().saturating_sub(u64::from_ne_bytes(stamp)));
        i += 1;
    }
    let _ = sender.kill();
    let _ = sender.wait();
    for (way, mut v) in ["epoll_wait, then the read", "blocked in the read"]
        .into_iter()
        .zip(lat)
    {
        v.sort_unstable();
        let us = |q: usize| v[v.len() * q / 100] as f64 / 1e3;
        println!(
            "{name:<12} {way:<28} {:>5} packets   p10 {:>6.1}   median {:>6.1}   p90 {:>6.1} us",
            v.len(),
            us(10),
            us(50),
            us(90)
        );
    }
}

fn spawn_sender(addr: &str, n: usize) -> std::process::Child {
    Command::new(std::env::current_exe().expect("own path"))
        .args(["send", addr, &(2 * n + 10).to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning the sender")
}

fn ip(args: &str) {
    let ok = Command::new("ip")
        .args(args.split(' '))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {args}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("send") {
        send(&args[1], args[2].parse().expect("N"));
        return;
    }
    let n: usize = args.first().map_or(600, |a| a.parse().expect("PACKETS"));

    // A plain TUN device, as boringtun's; the sender's datagrams are routed into it.
    let tun = tun_rs::DeviceBuilder::new()
        .name("wake0")
        .enable(false)
        .build_sync()
        .expect("creating a TUN device (root, in a namespace of its own: bench/wake.sh)");
    ip("addr add 10.77.0.1/24 dev wake0");
    ip("link set wake0 up");
    let mut sender = spawn_sender(TUN_PEER, n);
    measure("TUN device", &tun, n, &mut sender, |buf| {
        // IPv4 (20) and UDP (8) headers, then the stamp.
        let len = tun.recv(buf).ok()?;
        (len >= 36 && buf[9] == 17).then(|| buf[28..36].try_into().ok())?
    });

    // A UDP socket, read as the engine reads a quiet one: recvmsg with the source address.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = sock.local_addr().expect("local address").to_string();
    let mut sender = spawn_sender(&addr, n);
    let fd = sock.as_raw_fd();
    measure("UDP socket", &sock, n, &mut sender, |buf| {
        let mut iov = [IoSliceMut::new(buf)];
        let m = recvmsg::<SockaddrIn>(fd, &mut iov, None, MsgFlags::empty()).ok()?;
        let len = m.bytes;
        (len == 8).then(|| buf[..8].try_into().ok())?
    });
}
