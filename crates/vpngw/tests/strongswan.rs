//! Interop with strongSwan: vpngw and Debian's charon (kernel-libipsec, the userspace ESP
//! backend, since this kernel has no ESP) bring a tunnel up in two network namespaces and pass
//! traffic, with vpngw once as initiator and once as responder, for each proposal pair of
//! issue 4. The underlay capture must show only UDP 4500 between the gateways.
//!
//! Needs root, iproute2, iputils-ping and strongSwan (`strongswan-charon strongswan-swanctl
//! libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins`);
//! `#[ignore]`d in a plain `cargo test`, run by `scripts/test.sh`.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

const VPNGW: &str = env!("CARGO_BIN_EXE_vpngw");
const PSK: &str = "interop-psk-0123456789abcdef";

/// Two gateways joined by a veth: `v` runs vpngw (10.98.0.1, LAN 10.2.0.1), `s` runs charon
/// (10.98.0.2, LAN 10.1.0.1). Everything is removed on drop, pass or fail.
struct Pair {
    v: String,
    s: String,
    dir: PathBuf,
    procs: Vec<Child>,
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect(args[0]);
    assert!(st.success(), "{args:?}");
}

impl Pair {
    fn new(tag: &str) -> Self {
        let v = format!("vst-{tag}-v");
        let s = format!("vst-{tag}-s");
        let dir = std::env::temp_dir().join(format!("vpngw-sw-{tag}"));
        let pair = Self {
            v,
            s,
            dir,
            procs: Vec::new(),
        };
        pair.cleanup();
        fs::create_dir_all(&pair.dir).unwrap();
        fs::set_permissions(&pair.dir, fs::Permissions::from_mode(0o700)).unwrap();
        for ns in [&pair.v, &pair.s] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip", "link", "add", "wan", "netns", &pair.v, "type", "veth", "peer", "name", "wan",
            "netns", &pair.s,
        ]);
        for (ns, wan, lan) in [
            (&pair.v, "10.98.0.1/24", "10.2.0.1/24"),
            (&pair.s, "10.98.0.2/24", "10.1.0.1/24"),
        ] {
            sh(&["ip", "-n", ns, "addr", "add", wan, "dev", "wan"]);
            // The LAN behind each gateway is an address on its loopback (no dummy module here).
            sh(&["ip", "-n", ns, "addr", "add", lan, "dev", "lo"]);
            sh(&["ip", "-n", ns, "link", "set", "wan", "up"]);
        }
        pair
    }

    fn cleanup(&self) {
        for ns in [&self.v, &self.s] {
            if Path::new("/run/netns").join(ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// Starts charon in `s` with the given proposals; `initiate` makes it start the tunnel.
    fn charon(&mut self, ike: &str, esp: &str) {
        self.charon_with(ike, esp, "", "");
    }

    /// Starts charon with extra settings for the IKE SA (`conn_extra`) and the child
    /// (`child_extra`), e.g. rekey times.
    fn charon_with(&mut self, ike: &str, esp: &str, conn_extra: &str, child_extra: &str) {
        let d = self.dir.display().to_string();
        fs::write(
            self.dir.join("strongswan.conf"),
            format!(
                r#"charon {{
  load_modular = no
  load = random nonce openssl aes gcm sha1 sha2 hmac pem pkcs1 x509 curve25519 gmp kdf kernel-libipsec kernel-netlink socket-default vici
  install_routes = yes
  retransmit_timeout = 1.0
  retransmit_tries = 2
  retransmit_base = 1.0
  plugins {{ vici {{ socket = unix://{d}/charon.vici }} }}
  filelog {{ main {{ path = {d}/charon.log
                   time_format = %H:%M:%S
                   flush_line = yes
                   default = 1
                   ike = 2 }} }}
  syslog {{ daemon {{ default = -1 }} }}
}}
"#
            ),
        )
        .unwrap();
        fs::write(
            self.dir.join("swanctl.conf"),
            format!(
                r#"connections {{
  gw {{
    version = 2
    local_addrs = 10.98.0.2
    remote_addrs = 10.98.0.1
    proposals = {ike}
    encap = yes
    dpd_delay = 1s
    {conn_extra}
    local {{ auth = psk
             id = 10.98.0.2 }}
    remote {{ auth = psk
              id = 10.98.0.1 }}
    children {{
      net {{
        mode = tunnel
        local_ts = 10.1.0.0/24
        remote_ts = 10.2.0.0/24
        esp_proposals = {esp}
        dpd_action = clear
        start_action = none
        {child_extra}
      }}
    }}
  }}
}}
secrets {{
  ike-gw {{
    id-a = 10.98.0.1
    id-b = 10.98.0.2
    secret = "{PSK}"
  }}
}}
"#
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.s, "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size=8m tmpfs /run && exec env STRONGSWAN_CONF={d}/strongswan.conf /usr/lib/ipsec/charon"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("charon");
        self.procs.push(child);
        let vici = self.dir.join("charon.vici");
        wait_for(
            Duration::from_secs(10),
            || vici.exists(),
            "charon's vici socket",
        );
        let out = Command::new("swanctl")
            .args(["--load-all", "--noprompt", "--file"])
            .arg(self.dir.join("swanctl.conf"))
            .args(["--uri", &format!("unix://{d}/charon.vici")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "swanctl --load-all: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn swanctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("swanctl")
            .args(args)
            .args([
                "--uri",
                &format!("unix://{}/charon.vici", self.dir.display()),
            ])
            .output()
            .unwrap()
    }

    /// Starts `vpngw run` in `v`.
    fn vpngw(&mut self, ike: &str, esp: &str, initiate: bool) {
        self.vpngw_with(ike, esp, initiate, "");
    }

    /// Starts `vpngw run` in `v`, with extra `[gateway]` settings.
    fn vpngw_with(&mut self, ike: &str, esp: &str, initiate: bool, gateway_extra: &str) {
        self.vpngw_full(ike, esp, initiate, gateway_extra, "");
    }

    /// Starts `vpngw run` in `v`, with extra `[gateway]` and `[[connection]]` settings.
    fn vpngw_full(
        &mut self,
        ike: &str,
        esp: &str,
        initiate: bool,
        gateway_extra: &str,
        conn_extra: &str,
    ) {
        let d = &self.dir;
        let psk = d.join("psk");
        fs::write(&psk, PSK).unwrap();
        fs::set_permissions(&psk, fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = format!(
            r#"[gateway]
name = "vpngw"
tun = "vpngw0"
state_dir = "{d}/state"
{gateway_extra}

[api]
socket = "{d}/api.sock"

[[connection]]
name = "sw"
local_address = "10.98.0.1"
peer_address = "10.98.0.2"
psk_file = "{psk}"
ike_proposals = ["{ike}"]
esp_proposals = ["{esp}"]
dpd_interval = "1s"
mode = "route"
tunnel_cidr = "169.254.10.0/30"
initiate = {initiate}
{conn_extra}

[[route]]
prefix = "10.1.0.0/24"
connection = "sw"
"#,
            d = d.display(),
            psk = psk.display(),
        );
        let path = d.join("vpngw.toml");
        fs::write(&path, cfg).unwrap();
        let log = fs::File::create(d.join("vpngw.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.v, VPNGW, "run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("vpngw run");
        self.procs.push(child);
        let sock = d.join("api.sock");
        wait_for(
            Duration::from_secs(10),
            || sock.exists(),
            "vpngw's API socket",
        );
    }

    /// The tunnel state `vpngw conn list` reports for the connection.
    fn state(&self) -> String {
        let out = Command::new(VPNGW)
            .args(["conn", "list", "--json", "--api"])
            .arg(self.dir.join("api.sock"))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v[0]["state"].as_str().unwrap_or("?").to_owned()
    }

    /// Pings until the tunnel carries traffic, failing with both daemons' logs after `limit`.
    fn wait_for_traffic(&self, limit: Duration, what: &str) {
        let start = Instant::now();
        while !self.ping() {
            assert!(start.elapsed() < limit, "{what}\n{}", self.logs());
        }
    }

    fn ping(&self) -> bool {
        Command::new("ip")
            .args([
                "netns", "exec", &self.v, "ping", "-c", "1", "-W", "1", "-I", "10.2.0.1",
                "10.1.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Captures on vpngw's underlay interface while pinging: every packet must be UDP 4500
    /// between the two gateways, and no inner address may appear.
    fn underlay_is_encrypted(&self) {
        let pcap = self.dir.join("underlay.pcap");
        let mut dump = Command::new("ip")
            .args([
                "netns", "exec", &self.v, "tcpdump", "-nni", "wan", "-U", "-w",
            ])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump");
        wait_for(Duration::from_secs(5), || pcap.exists(), "tcpdump to start");
        thread::sleep(Duration::from_millis(300));
        let ok = Command::new("ip")
            .args([
                "netns", "exec", &self.v, "ping", "-c", "5", "-i", "0.1", "-W", "1", "-I",
                "10.2.0.1", "10.1.0.1",
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        thread::sleep(Duration::from_millis(300));
        let _ = dump.kill();
        let _ = dump.wait();
        assert!(
            ok,
            "pings through the tunnel during the capture\n{}",
            self.logs()
        );
        let out = Command::new("tcpdump")
            .args(["-nnr"])
            .arg(&pcap)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" IP ")).collect();
        assert!(
            lines.len() >= 10,
            "5 requests and 5 replies captured:\n{text}"
        );
        for l in &lines {
            let between = l.contains("10.98.0.1.4500 > 10.98.0.2.4500")
                || l.contains("10.98.0.2.4500 > 10.98.0.1.4500");
            assert!(
                between,
                "only UDP 4500 between the gateways on the underlay: {l}"
            );
            assert!(
                !l.contains("10.1.0.1") && !l.contains("10.2.0.1"),
                "inner address on the underlay: {l}"
            );
        }
    }

    fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "--- vpngw.log ---\n{}\n--- charon.log ---\n{}",
            read("vpngw.log"),
            read("charon.log")
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::env::var_os("VPNGW_TEST_KEEP").is_some() {
            eprintln!(
                "VPNGW_TEST_KEEP: leaving {} and {} up ({})",
                self.v,
                self.s,
                self.dir.display()
            );
            return;
        }
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        self.cleanup();
    }
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Brings the tunnel up with vpngw as initiator or responder and checks traffic both ways.
fn interop(tag: &str, ike: &str, esp: &str, vpngw_initiates: bool) {
    let mut p = Pair::new(tag);
    p.charon(ike, esp);
    p.vpngw(ike, esp, vpngw_initiates);
    if !vpngw_initiates {
        let out = p.swanctl(&["--initiate", "--child", "net", "--timeout", "10"]);
        assert!(
            out.status.success(),
            "strongSwan initiate failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            p.logs()
        );
    }
    p.wait_for_traffic(Duration::from_secs(15), "no traffic through the tunnel");
    let sas = p.swanctl(&["--list-sas"]);
    let sas = String::from_utf8_lossy(&sas.stdout);
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
        "{sas}"
    );
    assert!(
        sas.contains("TUNNEL-in-UDP"),
        "libipsec carries ESP in UDP: {sas}"
    );
    p.underlay_is_encrypted();
}

/// strongSwan killed: vpngw declares the peer dead within 3 × the DPD interval (1 s here),
/// and once strongSwan is back the tunnel returns without operator action (dpd_action restart).
#[test]
#[ignore = "needs root, iproute2, iputils-ping and strongSwan; run by scripts/test.sh"]
fn dead_peer_is_detected_and_the_tunnel_comes_back() {
    let (ike, esp) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");
    let mut p = Pair::new("dpd");
    p.charon(ike, esp);
    p.vpngw_with(
        ike,
        esp,
        true,
        "retransmit_timeout = \"500ms\"\nretransmit_tries = 2\nretransmit_base = 1",
    );
    p.wait_for_traffic(Duration::from_secs(15), "no tunnel");
    assert_eq!(p.state(), "up");

    // SIGKILL: no DELETE, the peer just vanishes.
    let mut charon = p.procs.remove(0);
    charon.kill().unwrap();
    charon.wait().unwrap();
    let killed = Instant::now();
    while p.state() == "up" {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "peer never declared dead\n{}",
            p.logs()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let detected = killed.elapsed();
    assert!(
        detected <= Duration::from_secs(3),
        "dead peer detected after {detected:?}, more than 3 × dpd_interval"
    );

    // strongSwan comes back; vpngw re-initiates on its own.
    let _ = fs::remove_file(p.dir.join("charon.vici"));
    p.charon(ike, esp);
    let back = Instant::now();
    p.wait_for_traffic(Duration::from_secs(20), "tunnel did not come back");
    eprintln!(
        "dead peer detected in {detected:?}; tunnel back {:?} after strongSwan restarted",
        back.elapsed()
    );
}

/// A proposal mismatch fails, and vpngw (the responder, which sees both sides) logs both in
/// strongSwan's syntax.
#[test]
#[ignore = "needs root, iproute2, iputils-ping and strongSwan; run by scripts/test.sh"]
fn proposal_mismatch_names_both_proposals() {
    let mut p = Pair::new("nopr");
    p.charon("aes256-sha256-modp2048", "aes256-sha256");
    p.vpngw("aes128gcm16-prfsha256-x25519", "aes128gcm16", false);
    let out = p.swanctl(&["--initiate", "--child", "net", "--timeout", "5"]);
    assert!(
        !out.status.success(),
        "a mismatched proposal must not establish"
    );
    let start = Instant::now();
    loop {
        let log = fs::read_to_string(p.dir.join("vpngw.log")).unwrap_or_default();
        let line = log.lines().find(|l| l.contains("no proposal chosen"));
        if let Some(l) = line {
            assert!(
                l.contains("offered IKE:aes256-sha256-prfsha256-modp2048")
                    && l.contains("configured IKE:aes128gcm16-prfsha256-x25519"),
                "both proposals in one line: {l}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no NO_PROPOSAL_CHOSEN log line\n{}",
            p.logs()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Child and IKE SAs rekeyed by both sides (so collisions happen) during a 20 packets/s ping:
/// not one ping may be lost. `VPNGW_REKEY_SECS` sets the length (40 s here; the full
/// two-minute run of issue 4 is `scripts/soak.sh`).
#[test]
#[ignore = "needs root, iproute2, iputils-ping and strongSwan; run by scripts/test.sh"]
fn rekeys_lose_no_packet() {
    let secs: u64 = std::env::var("VPNGW_REKEY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let (ike, esp) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");
    let mut p = Pair::new("rekey");
    // strongSwan: child every ~10 s, IKE every ~20 s; vpngw: child every ~12–15 s, IKE every
    // ~22–25 s. Both initiate rekeys, often at nearly the same time.
    p.charon_with(
        ike,
        esp,
        "rekey_time = 20s\n    rand_time = 2s\n    over_time = 10s",
        "rekey_time = 10s\n        rand_time = 2s\n        life_time = 30s",
    );
    p.vpngw_full(
        ike,
        esp,
        true,
        "",
        "ike_lifetime = \"30s\"\nchild_lifetime = \"20s\"\nrekey_margin = \"5s\"\nrand_jitter = \"3s\"",
    );
    p.wait_for_traffic(Duration::from_secs(15), "no tunnel");
    let count = (secs * 20).to_string();
    let out = Command::new("ip")
        .args([
            "netns", "exec", &p.v, "ping", "-q", "-c", &count, "-i", "0.05", "-W", "2", "-I",
            "10.2.0.1", "10.1.0.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let expect = format!("{count} packets transmitted, {count} received");
    assert!(
        text.contains(&expect),
        "pings lost across rekeys:\n{text}\n{}",
        p.logs()
    );
    let log = fs::read_to_string(p.dir.join("vpngw.log")).unwrap_or_default();
    let children = log.matches("child SA installed").count();
    let charon = fs::read_to_string(p.dir.join("charon.log")).unwrap_or_default();
    let ike_rekeys = charon.matches("] rekeyed between").count();
    // At least one rekey of each kind per 30 s.
    let need = usize::try_from(secs / 30).unwrap_or(1).max(1);
    assert!(
        children > need,
        "{children} child SAs installed in {secs} s\n{}",
        p.logs()
    );
    assert!(
        ike_rekeys >= need,
        "{ike_rekeys} IKE rekeys in {secs} s\n{}",
        p.logs()
    );
    eprintln!("{count} pings, none lost; {children} child SAs installed, {ike_rekeys} IKE rekeys (strongSwan's log)");
}

/// A child SA's byte lifetime: past 90 % of `child_lifetime_bytes` vpngw rekeys it, with
/// traffic flowing and nothing lost.
#[test]
#[ignore = "needs root, iproute2, iputils-ping and strongSwan; run by scripts/test.sh"]
fn byte_lifetime_rekeys_the_child() {
    let (ike, esp) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");
    let mut p = Pair::new("bytes");
    p.charon(ike, esp);
    p.vpngw_full(ike, esp, true, "", "child_lifetime_bytes = 1048576");
    p.wait_for_traffic(Duration::from_secs(15), "no tunnel");
    // 1000 × 1400-byte pings ≈ 1.4 MB each way: past the soft limit, short of twice the hard.
    let out = Command::new("ip")
        .args([
            "netns", "exec", &p.v, "ping", "-q", "-c", "1000", "-i", "0.002", "-s", "1400", "-W",
            "2", "-I", "10.2.0.1", "10.1.0.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1000 packets transmitted, 1000 received"),
        "pings lost:\n{text}\n{}",
        p.logs()
    );
    let log = fs::read_to_string(p.dir.join("vpngw.log")).unwrap_or_default();
    let children = log.matches("child SA installed").count();
    assert!(
        children >= 2,
        "the byte limit rekeyed the child ({children} installed)\n{}",
        p.logs()
    );
}

/// The proposal pairs of issue 4 (IKE / ESP), each with vpngw as initiator and as responder.
macro_rules! interop_tests {
    ($($name:ident: $tag:literal, $ike:literal, $esp:literal;)*) => {
        mod vpngw_initiates {
            $(
                #[test]
                #[ignore = "needs root, iproute2, iputils-ping and strongSwan; run by scripts/test.sh"]
                fn $name() {
                    super::interop(concat!($tag, "i"), $ike, $esp, true);
                }
            )*
        }
        mod strongswan_initiates {
            $(
                #[test]
                #[ignore = "needs root, iproute2, iputils-ping and strongSwan; run by scripts/test.sh"]
                fn $name() {
                    super::interop(concat!($tag, "r"), $ike, $esp, false);
                }
            )*
        }
    };
}

interop_tests! {
    aes128gcm16_x25519: "g1", "aes128gcm16-prfsha256-x25519", "aes128gcm16";
    aes256gcm16_ecp384: "g2", "aes256gcm16-prfsha384-ecp384", "aes256gcm16";
    aes256_sha256_modp2048: "c1", "aes256-sha256-modp2048", "aes256-sha256";
    chacha20poly1305_x25519: "p1", "chacha20poly1305-prfsha256-x25519", "chacha20poly1305";
}
