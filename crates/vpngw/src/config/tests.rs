//! One test per rule, each asserting the whole message: `file:line: field: rule`.

use std::{path::Path, time::Duration};

use super::bgp;
use super::*;

const FILE: &str = "gw.toml";

/// A valid file, small enough that each test's edit is the only thing wrong.
const BASE: &str = r#"[gateway]
name = "gw"

[[connection]]
name = "dc1"
local_address = "172.16.1.2"
peer_address = "10.0.0.1"
psk_env = "PSK_DC1"
ike_proposals = ["aes256gcm16-prfsha256-ecp256"]
esp_proposals = ["aes256gcm16"]
mode = "route"
tunnel_cidr = "169.254.10.0/30"

[[route]]
prefix = "192.168.10.0/24"
connection = "dc1"
"#;

/// A second, policy-based connection to append to [`BASE`].
const POLICY: &str = r#"
[[connection]]
name = "br"
local_address = "172.16.1.2"
peer_address = "203.0.113.20"
psk_env = "PSK_BR"
ike_proposals = ["aes256-sha256-modp2048"]
esp_proposals = ["aes256-sha256"]
mode = "policy"
local_subnets = ["172.16.0.0/16"]
remote_subnets = ["10.20.0.0/16"]
"#;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml(Path::new(FILE), text, Secrets::Skip)
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("rejected:\n{e}\n---\n{text}"))
}

/// Every error, displayed.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// The one error of `text`.
fn one(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got:\n{}", e.join("\n"));
    e.into_iter().next().unwrap_or_default()
}

/// [`BASE`] with `from` (which must occur once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    edit_in(BASE, from, to)
}

fn edit_in(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} is not unique");
    text.replacen(from, to, 1)
}

/// The 1-based line of the first occurrence of `needle`.
fn line(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"));
    text[..at].matches('\n').count() + 1
}

/// The 1-based line of the `n`th (from 0) occurrence of `needle`.
fn line_nth(text: &str, needle: &str, n: usize) -> usize {
    let at = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("{needle:?} not {n} times in the text"))
        .0;
    text[..at].matches('\n').count() + 1
}

/// `gw.toml:LINE: FIELD: MESSAGE` with LINE that of `needle`.
fn at(text: &str, needle: &str, field: &str, message: &str) -> String {
    format!("{FILE}:{}: {field}: {message}", line(text, needle))
}

// ---- the whole file ----

#[test]
fn retransmit_schedule_is_checked() {
    let text = BASE.replacen(
        "[gateway]",
        "[gateway]\nretransmit_timeout = \"500ms\"\nretransmit_tries = 2\nretransmit_base = 1",
        1,
    );
    assert_eq!(
        ok(&text).gateway.retransmit,
        Retransmit {
            timeout: Duration::from_millis(500),
            tries: 2,
            base_milli: 1000
        }
    );
    let text = BASE.replacen(
        "[gateway]",
        "[gateway]\nretransmit_timeout = \"10ms\"\nretransmit_base = 9",
        1,
    );
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|l| l.contains("gateway.retransmit_timeout: retransmit_timeout below 100ms")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("gateway.retransmit_base: 9 is out of range")),
        "{e:?}"
    );
}

#[test]
fn base_and_defaults() {
    let c = ok(BASE);
    assert_eq!(
        c.gateway,
        Gateway {
            name: "gw".into(),
            tun: "vpngw0".into(),
            mtu: 1400,
            state_dir: "/var/lib/vpngw".into(),
            retransmit: Retransmit {
                timeout: Duration::from_secs(4),
                tries: 5,
                base_milli: 1800,
            },
            route_metric: 50,
        }
    );
    assert_eq!(c.api.socket, Path::new("/run/vpngw/api.sock"));
    assert_eq!(c.api.tcp, None);
    assert_eq!(c.fabric, None);
    let d = &c.connections[0];
    assert_eq!(d.local_id, Identity::Ipv4("172.16.1.2".parse().unwrap()));
    assert_eq!(d.peer_id, Identity::Ipv4("10.0.0.1".parse().unwrap()));
    assert_eq!(d.psk, SecretSource::Env("PSK_DC1".into()));
    assert_eq!(
        d.lifetimes,
        Lifetimes {
            ike: Duration::from_secs(86_400),
            child: Duration::from_secs(3600),
            child_bytes: None,
            rekey_margin: Duration::from_secs(540),
            rand_jitter: Duration::from_secs(540),
        }
    );
    assert_eq!(
        d.dpd,
        Dpd {
            interval: Duration::from_secs(10),
            retries: 3,
            action: DpdAction::Restart,
        }
    );
    assert_eq!(
        d.mode,
        Mode::Route {
            tunnel_cidr: "169.254.10.0/30".parse().unwrap(),
            local_inside: "169.254.10.1".parse().unwrap(),
            peer_inside: "169.254.10.2".parse().unwrap(),
        }
    );
    assert_eq!(d.on_tunnel_down, OnTunnelDown::Fallback);
    assert_eq!(d.health_check, None);
    assert_eq!(
        c.routes,
        [Route {
            prefix: "192.168.10.0/24".parse().unwrap(),
            connection: "dc1".into(),
            weight: 100,
            publish: false,
            withdraw_when_down: false,
        }]
    );
    // Where fields are, for errors found later.
    assert_eq!(c.origin.line("connection[0].tunnel_cidr"), 12);
}

#[test]
fn the_example_file_reads() {
    let text = include_str!("../../../../examples/vpngw.toml");
    let c = Config::from_toml(Path::new("examples/vpngw.toml"), text, Secrets::Skip)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.connections.len(), 3);
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.connections[2].dpd.interval, Duration::ZERO);
    assert_eq!(
        c.connections[1].peer_id,
        Identity::Fqdn("onprem-gw.example.com".into())
    );
}

#[test]
fn syntax_error_names_file_and_line() {
    let text = edit("mode = \"route\"", "mode = = \"route\"");
    let e = one(&text);
    assert!(
        e.starts_with(&format!("{FILE}:{}: invalid TOML: ", line(&text, "mode ="))),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_errors_listing_the_known_ones() {
    let text = format!("{BASE}\n[extra]\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[extra]",
            "extra",
            "unknown key \"extra\"; expected one of: gateway, api, fabric, connection, route, bgp"
        )
    );
    let text = edit("mode = \"route\"", "mode = \"route\"\ndpd_timeout = 30");
    let e = one(&text);
    assert!(
        e.starts_with(&at(
            &text,
            "dpd_timeout",
            "connection[0].dpd_timeout",
            "unknown key \"dpd_timeout\"; expected one of: name, local_address,"
        )),
        "{e}"
    );
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    let text = edit("name = \"gw\"", "name = \"g w\"")
        .replace(
            "tunnel_cidr = \"169.254.10.0/30\"",
            "tunnel_cidr = \"169.254.1.0/30\"",
        )
        .replace("connection = \"dc1\"", "connection = \"dc2\"")
        + "weight = 50\n";
    assert_eq!(
        errors(&text),
        [
            at(
                &text,
                "name = \"g w\"",
                "gateway.name",
                "\"g w\" is not a valid name: use 1 to 32 letters, digits, '-' or '_'"
            ),
            at(
                &text,
                "tunnel_cidr",
                "connection[0].tunnel_cidr",
                "169.254.1.0/30 is reserved: a route-based tunnel's inside CIDR is a /30 from \
                 169.254.0.0/16, outside 169.254.0.0 to 169.254.6.255 and 169.254.169.252/30"
            ),
            at(
                &text,
                "connection = \"dc2\"",
                "route[0].connection",
                "unknown connection \"dc2\"; connections are: dc1"
            ),
            at(
                &text,
                "weight",
                "route[0].weight",
                "50 is not a weight: a route's weight is 100 (active) or 0 (standby), nothing in \
                 between"
            ),
        ]
    );
}

// ---- [gateway], [api], [fabric] ----

#[test]
fn gateway_is_required_with_a_name() {
    let text = edit("[gateway]\nname = \"gw\"\n", "");
    assert_eq!(
        one(&text),
        "gw.toml:1: gateway: missing: a [gateway] section with at least `name` is required"
    );
    let text = edit("name = \"gw\"\n", "");
    assert_eq!(
        one(&text),
        "gw.toml:1: gateway.name: missing: `name` (a string) is required"
    );
}

#[test]
fn tun_is_a_linux_interface_name() {
    let text = edit(
        "name = \"gw\"",
        "name = \"gw\"\ntun = \"vpngw-to-the-cloud\"",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "tun",
            "gateway.tun",
            "\"vpngw-to-the-cloud\" is longer than 15 bytes: Linux interface names have at most \
             15"
        )
    );
    let text = edit("name = \"gw\"", "name = \"gw\"\ntun = \"tun/0\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "tun",
            "gateway.tun",
            "\"tun/0\" is not a valid interface name: no '/', ':' or whitespace, and not empty, \
             \".\" or \"..\""
        )
    );
}

#[test]
fn mtu_range_and_state_dir_absolute() {
    let text = edit(
        "name = \"gw\"",
        "name = \"gw\"\nmtu = 1000\nstate_dir = \"var/vpngw\"",
    );
    assert_eq!(
        errors(&text),
        [
            at(
                &text,
                "mtu",
                "gateway.mtu",
                "1000 is out of range: expected an integer from 1280 to 9000"
            ),
            at(
                &text,
                "state_dir",
                "gateway.state_dir",
                "\"var/vpngw\" is not an absolute path"
            ),
        ]
    );
}

#[test]
fn tcp_api_requires_a_token() {
    let text = format!("{BASE}\n[api]\nlisten = \"127.0.0.1:8443\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "listen",
            "api.listen",
            "an API on TCP needs `token_file`: without a bearer token anyone who reaches \
             127.0.0.1:8443 controls the gateway"
        )
    );
    let text = format!("{BASE}\n[api]\ntoken_file = \"api.token\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "token_file",
            "api.token_file",
            "token_file is used only with `listen` (the Unix socket is guarded by its file \
             permissions): set listen, or remove token_file"
        )
    );
    let text = format!("{BASE}\n[api]\nlisten = \"127.0.0.1\"\ntoken_file = \"t\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "listen",
            "api.listen",
            "\"127.0.0.1\" is not an address and port such as \"127.0.0.1:8443\" or \
             \"[::1]:8443\""
        )
    );
    let text = format!("{BASE}\n[api]\nlisten = \"127.0.0.1:8443\"\ntoken_file = \"api.token\"\n");
    let c = ok(&text);
    let tcp = c.api.tcp.unwrap_or_else(|| panic!("no tcp"));
    assert_eq!(tcp.token, SecretSource::File("api.token".into()));
}

#[test]
fn fabric_needs_its_socket() {
    let text = format!("{BASE}\n[fabric]\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[fabric]",
            "fabric.socket",
            "missing: `socket` (an absolute path) is required"
        )
    );
}

// ---- [[connection]] ----

#[test]
fn connection_names_are_valid_and_unique() {
    let text = edit("name = \"dc1\"", "name = \"dc 1\"");
    let e = errors(&text);
    assert_eq!(
        e[0],
        at(
            &text,
            "dc 1",
            "connection[0].name",
            "\"dc 1\" is not a valid name: use 1 to 32 letters, digits, '-' or '_'"
        )
    );
    let text = format!(
        "{BASE}{}",
        POLICY.replace("name = \"br\"", "name = \"dc1\"")
    );
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: connection[1].name: duplicate connection name \"dc1\" (first defined \
             as connection[0], line 5): connection names are unique",
            line_nth(&text, "name = \"dc1\"", 1)
        )
    );
}

#[test]
fn addresses_are_unicast_of_one_family_and_different() {
    let text = edit(
        "peer_address = \"10.0.0.1\"",
        "peer_address = \"10.0.0.1/30\"",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_address",
            "connection[0].peer_address",
            "\"10.0.0.1/30\" is not an IP address: an address here has no prefix length"
        )
    );
    let text = edit(
        "local_address = \"172.16.1.2\"",
        "local_address = \"0.0.0.0\"",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "local_address",
            "connection[0].local_address",
            "0.0.0.0 is not a unicast address: a tunnel's end has one address of its own"
        )
    );
    let text = edit(
        "peer_address = \"10.0.0.1\"",
        "peer_address = \"172.16.1.2\"",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_address",
            "connection[0].peer_address",
            "peer_address 172.16.1.2 is local_address too: a connection joins two gateways"
        )
    );
    let text = edit(
        "peer_address = \"10.0.0.1\"",
        "peer_address = \"2001:db8::1\"",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_address",
            "connection[0].peer_address",
            "peer_address 2001:db8::1 and local_address 172.16.1.2 are of different address \
             families: both ends of a connection use one"
        )
    );
}

#[test]
fn one_connection_per_pair_of_addresses() {
    let text = format!(
        "{BASE}{}",
        POLICY.replace(
            "peer_address = \"203.0.113.20\"",
            "peer_address = \"10.0.0.1\""
        )
    );
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: connection[1].peer_address: local_address 172.16.1.2 with peer_address \
             10.0.0.1 is already connection[0] \"dc1\" (line {}): two gateways have one \
             connection between them",
            line_nth(&text, "peer_address", 1),
            line(&text, "peer_address")
        )
    );
}

#[test]
fn identities_in_strongswan_forms() {
    let cases: [(&str, Identity); 8] = [
        ("192.0.2.1", Identity::Ipv4("192.0.2.1".parse().unwrap())),
        (
            "2001:db8::1",
            Identity::Ipv6("2001:db8::1".parse().unwrap()),
        ),
        (
            "fqdn:vpn.example.com",
            Identity::Fqdn("vpn.example.com".into()),
        ),
        ("@vpn.example.com", Identity::Fqdn("vpn.example.com".into())),
        ("vpn.example.com", Identity::Fqdn("vpn.example.com".into())),
        ("gateway", Identity::Fqdn("gateway".into())),
        ("keyid:branch-1", Identity::KeyId(b"branch-1".to_vec())),
        ("keyid:#0a1B", Identity::KeyId(vec![0x0a, 0x1b])),
    ];
    for (s, id) in cases {
        assert_eq!(Identity::parse(s).as_ref(), Ok(&id), "{s}");
        // Display reads back.
        assert_eq!(Identity::parse(&id.to_string()), Ok(id.clone()), "{id}");
    }
    assert_eq!(
        Identity::parse("10.0.0.1").unwrap().type_name(),
        "ID_IPV4_ADDR"
    );
    assert_eq!(Identity::KeyId(vec![0xff]).to_string(), "keyid:#ff");

    let rule = "use an IP address, fqdn:vpn.example.com (or a bare host name such as \
                vpn.example.com), or keyid:TEXT (keyid:#HEX for bytes)";
    let text = edit("psk_env", "peer_id = \"bob@example.com\"\npsk_env");
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_id",
            "connection[0].peer_id",
            &format!("\"bob@example.com\" is not an identity: {rule}")
        )
    );
    let text = edit("psk_env", "local_id = \"keyid:#abc\"\npsk_env");
    assert_eq!(
        one(&text),
        at(
            &text,
            "local_id",
            "connection[0].local_id",
            &format!(
                "\"keyid:#abc\" is not an identity (keyid:# takes an even number of hex \
                 digits): {rule}"
            )
        )
    );
    for bad in ["keyid:", "fqdn:", "10.0.0", "-bad-.example.com", ""] {
        assert!(Identity::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn exactly_one_psk_source() {
    let text = edit("psk_env = \"PSK_DC1\"\n", "");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[[connection]]",
            "connection[0].psk_file",
            "missing: the pre-shared key's source is required: `psk_file` (a file private to \
             its owner) or `psk_env` (an environment variable)"
        )
    );
    let text = edit("psk_env", "psk_file = \"dc1.psk\"\npsk_env");
    assert_eq!(
        one(&text),
        at(
            &text,
            "psk_env",
            "connection[0].psk_env",
            "psk_file and psk_env are both set: give exactly one source for the pre-shared key"
        )
    );
    let text = edit("\"PSK_DC1\"", "\"1PSK\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "psk_env",
            "connection[0].psk_env",
            "\"1PSK\" is not an environment variable name: use letters, digits and '_', not \
             starting with a digit"
        )
    );
    // A relative file is relative to the configuration's directory.
    let c = Config::from_toml(
        Path::new("/etc/vpngw/gw.toml"),
        &edit("psk_env = \"PSK_DC1\"", "psk_file = \"dc1.psk\""),
        Secrets::Skip,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.connections[0].psk,
        SecretSource::File("/etc/vpngw/dc1.psk".into())
    );
}

#[test]
fn proposals_are_required_and_checked() {
    let text = edit("ike_proposals = [\"aes256gcm16-prfsha256-ecp256\"]\n", "");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[[connection]]",
            "connection[0].ike_proposals",
            "missing: `ike_proposals` (an array, each a strongSwan IKE proposal string) is \
             required"
        )
    );
    let text = edit("esp_proposals = [\"aes256gcm16\"]", "esp_proposals = []");
    assert_eq!(
        one(&text),
        at(
            &text,
            "esp_proposals",
            "connection[0].esp_proposals",
            "esp_proposals is empty: give at least one proposal, such as [\"aes256gcm16-ecp256\"]"
        )
    );
    let text = edit(
        "ike_proposals = [\"aes256gcm16-prfsha256-ecp256\"]",
        "ike_proposals = [\n  \"aes256gcm16-prfsha256-ecp256\",\n  \"aes256-sha256\",\n]",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "\"aes256-sha256\"",
            "connection[0].ike_proposals[1]",
            "\"aes256-sha256\" is not a valid IKE proposal: missing key exchange method"
        )
    );
    let text = edit("[\"aes256gcm16\"]", "[\"aes256gcm16-3des\"]");
    assert_eq!(
        one(&text),
        at(
            &text,
            "esp_proposals",
            "connection[0].esp_proposals[0]",
            "\"aes256gcm16-3des\" is not a valid ESP proposal: algorithm '3des' is not \
             implemented (supported: aes128, aes256, aes128gcm16, aes256gcm16, \
             chacha20poly1305, sha256, sha384, sha512, prfsha256, prfsha384, prfsha512, \
             modp2048, ecp256, ecp384, ecp521, x25519, esn, noesn)"
        )
    );
}

#[test]
fn lifetimes_are_durations_longer_than_margin_and_jitter() {
    let text = edit("mode", "ike_lifetime = \"1y\"\nmode");
    assert_eq!(
        one(&text),
        at(
            &text,
            "ike_lifetime",
            "connection[0].ike_lifetime",
            "\"1y\" is not a duration: write a number of seconds (90) or numbers with units d, \
             h, m, s, ms such as \"90s\", \"10m\", \"1h\", \"1d\", \"1h30m\" or \"500ms\""
        )
    );
    let text = edit("mode", "child_lifetime = \"15m\"\nmode");
    assert_eq!(
        one(&text),
        at(
            &text,
            "child_lifetime",
            "connection[0].child_lifetime",
            "child_lifetime 15m is not longer than rekey_margin 9m + rand_jitter 9m: the SA \
             would be due for rekeying before it is made; raise child_lifetime or lower \
             rekey_margin and rand_jitter"
        )
    );
    // A defaulted lifetime is blamed at its connection.
    let text = edit("mode", "rekey_margin = \"13h\"\nmode");
    assert_eq!(
        errors(&text),
        [
            at(
                &text,
                "[[connection]]",
                "connection[0].ike_lifetime",
                "ike_lifetime 1d is not longer than rekey_margin 13h + rand_jitter 13h: the SA \
                 would be due for rekeying before it is made; raise ike_lifetime or lower \
                 rekey_margin and rand_jitter"
            ),
            at(
                &text,
                "[[connection]]",
                "connection[0].child_lifetime",
                "child_lifetime 1h is not longer than rekey_margin 13h + rand_jitter 13h: the SA \
                 would be due for rekeying before it is made; raise child_lifetime or lower \
                 rekey_margin and rand_jitter"
            ),
        ]
    );
    let text = edit("mode", "rekey_margin = 0\nmode");
    assert_eq!(
        one(&text),
        at(
            &text,
            "rekey_margin",
            "connection[0].rekey_margin",
            "0s is too short: at least 1s"
        )
    );
    let text = edit("mode", "child_lifetime_bytes = 1000\nmode");
    assert_eq!(
        one(&text),
        at(
            &text,
            "child_lifetime_bytes",
            "connection[0].child_lifetime_bytes",
            "1000 is too small: child_lifetime_bytes is at least 1048576 (1 MiB), or absent for \
             no byte limit"
        )
    );
    let text = edit(
        "mode",
        "ike_lifetime = 7200\nchild_lifetime = \"30m\"\nrekey_margin = \"5m\"\nrand_jitter = 60\n\
         child_lifetime_bytes = 4_000_000_000\nmode",
    );
    assert_eq!(
        ok(&text).connections[0].lifetimes,
        Lifetimes {
            ike: Duration::from_secs(7200),
            child: Duration::from_secs(1800),
            child_bytes: Some(4_000_000_000),
            rekey_margin: Duration::from_secs(300),
            rand_jitter: Duration::from_secs(60),
        }
    );
}

#[test]
fn dpd_settings() {
    let text = edit(
        "mode",
        "dpd_interval = 0\ndpd_retries = 0\ndpd_action = \"hold\"\nmode",
    );
    assert_eq!(
        errors(&text),
        [
            at(
                &text,
                "dpd_retries",
                "connection[0].dpd_retries",
                "0 is out of range: expected an integer from 1 to 100"
            ),
            at(
                &text,
                "dpd_action",
                "connection[0].dpd_action",
                "\"hold\" is not allowed here; expected \"restart\" or \"clear\""
            ),
        ]
    );
    let text = edit("mode", "dpd_interval = 0\ndpd_action = \"clear\"\nmode");
    let dpd = ok(&text).connections[0].dpd.clone();
    assert_eq!(
        (dpd.interval, dpd.action),
        (Duration::ZERO, DpdAction::Clear)
    );
}

#[test]
fn mode_is_required_and_its_keys_belong_to_it() {
    let text = edit("mode = \"route\"\n", "");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[[connection]]",
            "connection[0].mode",
            "missing: `mode` (\"route\" or \"policy\") is required"
        )
    );
    let text = edit("mode = \"route\"", "mode = \"tunnel\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "mode",
            "connection[0].mode",
            "\"tunnel\" is not allowed here; expected \"route\" or \"policy\""
        )
    );
    let text = edit(
        "mode = \"route\"",
        "mode = \"route\"\nlocal_subnets = [\"10.0.0.0/8\"]",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "local_subnets",
            "connection[0].local_subnets",
            "local_subnets is for mode = \"policy\"; this connection has mode = \"route\""
        )
    );
    let text = format!("{BASE}{POLICY}peer_inside = \"169.254.10.2\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_inside",
            "connection[1].peer_inside",
            "peer_inside is for mode = \"route\"; this connection has mode = \"policy\""
        )
    );
}

#[test]
fn tunnel_cidr_is_a_link_local_slash_30_the_cloud_allows() {
    let rule = "a route-based tunnel's inside CIDR is a /30 from 169.254.0.0/16, outside \
                169.254.0.0 to 169.254.6.255 and 169.254.169.252/30";
    for (cidr, why) in [
        (
            "169.254.10.0/29",
            format!("169.254.10.0/29 is not a /30: {rule}"),
        ),
        (
            "10.0.0.0/30",
            format!("10.0.0.0/30 is not in 169.254.0.0/16: {rule}"),
        ),
        (
            "169.254.0.0/30",
            format!("169.254.0.0/30 is reserved: {rule}"),
        ),
        (
            "169.254.6.252/30",
            format!("169.254.6.252/30 is reserved: {rule}"),
        ),
        (
            "169.254.169.252/30",
            format!("169.254.169.252/30 is reserved: {rule}"),
        ),
        ("fd00::/126", format!("fd00::/126 is IPv6: {rule}")),
        (
            "169.254.10.1/30",
            "169.254.10.1/30 has host bits set; a prefix is written 169.254.10.0/30".to_owned(),
        ),
        (
            "169.254.10.1",
            "\"169.254.10.1\" needs a prefix length, such as \"169.254.10.1/24\"".to_owned(),
        ),
    ] {
        let text = edit("\"169.254.10.0/30\"", &format!("\"{cidr}\""));
        assert_eq!(
            one(&text),
            at(&text, "tunnel_cidr", "connection[0].tunnel_cidr", &why)
        );
    }
    for cidr in ["169.254.7.0/30", "169.254.169.248/30", "169.254.255.252/30"] {
        ok(&edit("\"169.254.10.0/30\"", &format!("\"{cidr}\"")));
    }
    let text = edit("tunnel_cidr = \"169.254.10.0/30\"\n", "");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[[connection]]",
            "connection[0].tunnel_cidr",
            "missing: mode = \"route\" needs `tunnel_cidr`, a /30 from 169.254.0.0/16 such as \
             \"169.254.10.0/30\""
        )
    );
}

#[test]
fn inside_addresses_are_the_two_hosts_of_the_slash_30() {
    let with = |extra: &str| {
        edit(
            "tunnel_cidr = \"169.254.10.0/30\"",
            &format!("tunnel_cidr = \"169.254.10.0/30\"\n{extra}"),
        )
    };
    let inside = |c: &Config| match &c.connections[0].mode {
        Mode::Route {
            local_inside,
            peer_inside,
            ..
        } => (local_inside.to_string(), peer_inside.to_string()),
        Mode::Policy { .. } => panic!("policy"),
    };
    let swapped = ("169.254.10.2".to_owned(), "169.254.10.1".to_owned());
    assert_eq!(
        inside(&ok(&with("local_inside = \"169.254.10.2\""))),
        swapped
    );
    assert_eq!(
        inside(&ok(&with("peer_inside = \"169.254.10.1\""))),
        swapped
    );

    let text = with("local_inside = \"169.254.10.3\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "local_inside",
            "connection[0].local_inside",
            "169.254.10.3 is not a host address of 169.254.10.0/30: use 169.254.10.1 or \
             169.254.10.2"
        )
    );
    let text = with("local_inside = \"169.254.10.1\"\npeer_inside = \"169.254.10.1\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_inside",
            "connection[0].peer_inside",
            "peer_inside 169.254.10.1 is local_inside too: the two ends have one address each"
        )
    );
    let text = with("peer_inside = \"fe80::2\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "peer_inside",
            "connection[0].peer_inside",
            "fe80::2 is IPv6: inside addresses are IPv4, from the tunnel's /30"
        )
    );
}

#[test]
fn tunnel_cidrs_do_not_overlap() {
    let second = BASE
        .split("[[connection]]")
        .nth(1)
        .and_then(|s| s.split("[[route]]").next())
        .unwrap_or_default()
        .replace("\"dc1\"", "\"dc2\"")
        .replace("10.0.0.1", "10.0.0.5");
    let text = format!("{BASE}\n[[connection]]{second}");
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: connection[1].tunnel_cidr: 169.254.10.0/30 is already the tunnel_cidr \
             of connection[0] \"dc1\" (line 12): each tunnel has its own inside /30",
            line_nth(&text, "tunnel_cidr", 1)
        )
    );
}

#[test]
fn policy_subnets_are_given_prefixes_apart() {
    let text = format!("{BASE}{}", POLICY.replace("[\"172.16.0.0/16\"]", "[]"));
    assert_eq!(
        one(&text),
        at(
            &text,
            "local_subnets",
            "connection[1].local_subnets",
            "local_subnets is empty: a policy-based connection needs at least one subnet"
        )
    );
    let text = format!(
        "{BASE}{}",
        POLICY.replace("remote_subnets = [\"10.20.0.0/16\"]\n", "")
    );
    // Located at the second connection's header.
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: connection[1].remote_subnets: missing: mode = \"policy\" needs \
             `remote_subnets`, a list of prefixes such as [\"10.1.0.0/16\"]",
            line(&text, "name = \"br\"") - 1
        )
    );
    let text = format!(
        "{BASE}{}",
        POLICY.replace(
            "[\"10.20.0.0/16\"]",
            "[\"10.20.0.1/16\", \"172.16.5.0/24\"]"
        )
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "remote_subnets",
            "connection[1].remote_subnets[0]",
            "10.20.0.1/16 has host bits set; a prefix is written 10.20.0.0/16"
        )
    );
    let text = format!(
        "{BASE}{}",
        POLICY.replace("[\"10.20.0.0/16\"]", "[\"172.16.5.0/24\"]")
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "remote_subnets",
            "connection[1].remote_subnets[0]",
            "172.16.5.0/24 overlaps local_subnets[0] 172.16.0.0/16: a policy's local and remote \
             subnets are apart"
        )
    );
}

#[test]
fn on_tunnel_down_is_fallback_or_block() {
    let text = edit("mode", "on_tunnel_down = \"drop\"\nmode");
    assert_eq!(
        one(&text),
        at(
            &text,
            "on_tunnel_down",
            "connection[0].on_tunnel_down",
            "\"drop\" is not allowed here; expected \"fallback\" or \"block\""
        )
    );
    let text = edit("mode", "on_tunnel_down = \"block\"\nmode");
    assert_eq!(ok(&text).connections[0].on_tunnel_down, OnTunnelDown::Block);
}

// ---- health checks ----

/// [`BASE`] with a health check on dc1 (inserted before the route).
fn with_health(body: &str) -> String {
    edit(
        "\n[[route]]",
        &format!("\n[connection.health_check]\n{body}\n[[route]]"),
    )
}

#[test]
fn health_check_defaults_in_route_mode() {
    let c = ok(&with_health(""));
    assert_eq!(
        c.connections[0].health_check,
        Some(HealthCheck {
            source: "169.254.10.1".parse().unwrap(),
            destination: "169.254.10.2".parse().unwrap(),
            interval: Duration::from_secs(3),
            retries: 3,
            policy: HealthPolicy::RevokeRoutes,
        })
    );
    // A destination inside a route of the connection goes through the tunnel too.
    let c = ok(&with_health(
        "destination = \"192.168.10.10\"\npolicy = \"keep_routes\"",
    ));
    let h = c.connections[0]
        .health_check
        .clone()
        .unwrap_or_else(|| panic!("none"));
    assert_eq!(h.destination.to_string(), "192.168.10.10");
    assert_eq!(h.policy, HealthPolicy::KeepRoutes);
}

#[test]
fn health_check_destination_goes_through_the_tunnel() {
    let text = with_health("destination = \"8.8.8.8\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "destination",
            "connection[0].health_check.destination",
            "destination 8.8.8.8 is not reached through connection \"dc1\": probe the peer's \
             inside address 169.254.10.2, or an address inside one of the connection's \
             [[route]] prefixes"
        )
    );
}

#[test]
fn health_check_values() {
    let text = with_health("interval = 0\nretries = 0\npolicy = \"ignore\"\ntimeout = 1");
    assert_eq!(
        errors(&text),
        [
            at(
                &text,
                "interval",
                "connection[0].health_check.interval",
                "0s is too short: at least 1s"
            ),
            at(
                &text,
                "retries",
                "connection[0].health_check.retries",
                "0 is out of range: expected an integer from 1 to 100"
            ),
            at(
                &text,
                "policy",
                "connection[0].health_check.policy",
                "\"ignore\" is not allowed here; expected \"revoke_routes\" or \"keep_routes\""
            ),
            at(
                &text,
                "timeout",
                "connection[0].health_check.timeout",
                "unknown key \"timeout\"; expected one of: source, destination, interval, \
                 retries, policy"
            ),
        ]
    );
    let text = with_health("source = \"169.254.10.1\"\ndestination = \"fe80::2\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "destination",
            "connection[0].health_check.destination",
            "destination fe80::2 and source 169.254.10.1 are of different address families"
        )
    );
}

#[test]
fn policy_health_check_stays_inside_the_policy() {
    let text = format!("{BASE}{POLICY}\n[connection.health_check]\nsource = \"10.0.0.9\"\n");
    assert_eq!(
        errors(&text),
        [
            at(
                &text,
                "[connection.health_check]",
                "connection[1].health_check.destination",
                "missing: a policy-based connection's health check needs `destination`, an \
                 address inside remote_subnets"
            ),
            at(
                &text,
                "source = \"10.0.0.9\"",
                "connection[1].health_check.source",
                "source 10.0.0.9 is outside local_subnets (172.16.0.0/16): the probe would not \
                 match the connection's policy"
            ),
        ]
    );
    let text = format!(
        "{BASE}{POLICY}\n[connection.health_check]\nsource = \"172.16.1.2\"\ndestination = \
         \"10.20.0.1\"\n"
    );
    let h = ok(&text).connections[1].health_check.clone();
    assert_eq!(
        h.map(|h| h.destination.to_string()),
        Some("10.20.0.1".into())
    );
}

// ---- [[route]] ----

#[test]
fn route_values() {
    let text = edit(
        "prefix = \"192.168.10.0/24\"",
        "prefix = \"192.168.10.1/24\"",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "prefix",
            "route[0].prefix",
            "192.168.10.1/24 has host bits set; a prefix is written 192.168.10.0/24"
        )
    );
    let text = edit("connection = \"dc1\"\n", "");
    assert_eq!(
        one(&text),
        at(
            &text,
            "[[route]]",
            "route[0].connection",
            "missing: `connection` (a connection name) is required"
        )
    );
    let text = format!("{BASE}weight = 0\npublish = true\n[fabric]\nsocket = \"/run/f.sock\"\n");
    let c = ok(&text);
    assert_eq!((c.routes[0].weight, c.routes[0].publish), (0, true));
}

#[test]
fn weight_is_100_or_0() {
    let text = format!("{BASE}weight = 50\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "weight",
            "route[0].weight",
            "50 is not a weight: a route's weight is 100 (active) or 0 (standby), nothing in \
             between"
        )
    );
}

#[test]
fn route_names_an_existing_connection() {
    let text = edit("connection = \"dc1\"", "connection = \"dc2\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "connection = \"dc2\"",
            "route[0].connection",
            "unknown connection \"dc2\"; connections are: dc1"
        )
    );
}

#[test]
fn a_route_is_given_once_per_connection() {
    let text = format!("{BASE}\n[[route]]\nprefix = \"192.168.10.0/24\"\nconnection = \"dc1\"\n");
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: route[1].prefix: duplicate of route[0] (line 14): the route \
             192.168.10.0/24 into connection \"dc1\" is given once",
            line_nth(&text, "prefix", 1)
        )
    );
}

#[test]
fn withdraw_when_down_needs_publish() {
    let text = format!("{BASE}withdraw_when_down = true\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "withdraw_when_down",
            "route[0].withdraw_when_down",
            "withdraw_when_down = true needs publish = true: only a published route can be \
             withdrawn"
        )
    );
}

#[test]
fn a_route_is_never_its_own_peer() {
    let text = edit("\"192.168.10.0/24\"", "\"10.0.0.1/32\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "prefix",
            "route[0].prefix",
            "10.0.0.1/32 is the peer_address 10.0.0.1 of connection \"dc1\" itself: the \
             tunnel's own packets cannot be routed into the tunnel"
        )
    );
    // A wider route may contain the peer: the daemon pins a host route to it.
    let wide = edit("\"192.168.10.0/24\"", "\"0.0.0.0/0\"");
    assert_eq!(ok(&wide).routes[0].prefix.to_string(), "0.0.0.0/0");
}

#[test]
fn a_policy_route_lies_inside_remote_subnets() {
    let text =
        format!("{BASE}{POLICY}\n[[route]]\nprefix = \"10.30.0.0/16\"\nconnection = \"br\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "10.30.0.0/16",
            "route[1].prefix",
            "10.30.0.0/16 is not inside the remote_subnets of policy-based connection \"br\" \
             (10.20.0.0/16): the tunnel carries only traffic to them"
        )
    );
}

#[test]
fn publishing_needs_a_fabric() {
    let text = format!("{BASE}publish = true\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "publish",
            "route[0].publish",
            "publish = true needs a [fabric] section: routes are published into the fabric \
             controller named there"
        )
    );
}

// ---- secrets ----

/// A key no test output may show.
const PSK: &str = "correct-horse-battery-staple-42";

// The rules of secret files (existence, kind, permissions, emptiness) are tested through the
// binary, with real files, in `tests/config.rs`.

#[test]
fn psk_env_rules() {
    // Names unique to this test: the process environment is shared by the test threads.
    let set = "VPNGW_UNIT_PSK_SET";
    let empty = "VPNGW_UNIT_PSK_EMPTY";
    let unset = "VPNGW_UNIT_PSK_UNSET";
    std::env::set_var(set, PSK);
    std::env::set_var(empty, "");
    std::env::remove_var(unset);
    let check = |name: &str| {
        let text = edit("\"PSK_DC1\"", &format!("\"{name}\""));
        let r = Config::from_toml(Path::new(FILE), &text, Secrets::Check);
        (text, r.map_err(|e| e.to_string()))
    };
    let (_, r) = check(set);
    let c = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.connections[0].psk.load().map(|s| s.expose().to_vec()),
        Ok(PSK.as_bytes().to_vec())
    );
    let (text, r) = check(unset);
    assert_eq!(
        r.unwrap_err(),
        at(
            &text,
            "psk_env",
            "connection[0].psk_env",
            "environment variable VPNGW_UNIT_PSK_UNSET is not set"
        )
    );
    let (text, r) = check(empty);
    assert_eq!(
        r.unwrap_err(),
        at(
            &text,
            "psk_env",
            "connection[0].psk_env",
            "environment variable VPNGW_UNIT_PSK_EMPTY is empty"
        )
    );
}

#[test]
fn secrets_never_show() {
    let var = "VPNGW_UNIT_PSK_SHOWN";
    std::env::set_var(var, PSK);
    let text = edit("\"PSK_DC1\"", &format!("\"{var}\""));
    let c =
        Config::from_toml(Path::new(FILE), &text, Secrets::Check).unwrap_or_else(|e| panic!("{e}"));
    let secret = c.connections[0]
        .psk
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(secret.expose(), PSK.as_bytes());
    assert_eq!(format!("{secret:?}"), "<redacted>");
    for shown in [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{:?}", Some(&secret)),
        serde_json::to_string(&c).unwrap_or_default(),
    ] {
        assert!(!shown.contains(PSK), "{shown}");
    }
}

// ---- serialization and reload ----

#[test]
fn serializes_for_the_api() {
    let text = with_health("");
    let v = serde_json::to_value(ok(&text)).unwrap_or_default();
    let c = &v["connections"][0];
    assert_eq!(c["psk"], serde_json::json!({ "env": "PSK_DC1" }));
    assert_eq!(c["peer_id"], "10.0.0.1");
    assert_eq!(c["lifetimes"]["ike"], 86_400);
    assert_eq!(c["mode"]["mode"], "route");
    assert_eq!(c["mode"]["tunnel_cidr"], "169.254.10.0/30");
    assert_eq!(c["health_check"]["policy"], "revoke_routes");
    assert_eq!(c["health_check"]["interval"], 3);
    assert_eq!(v["routes"][0]["weight"], 100);
    assert!(v.get("origin").is_none());
}

#[test]
fn diff_by_connection_name() {
    let old = ok(&format!("{BASE}{POLICY}"));
    let third = POLICY
        .replace("\"br\"", "\"br2\"")
        .replace("203.0.113.20", "203.0.113.21");
    // dc1 changes its DPD, br is removed, br2 is added; the route is untouched.
    let new = ok(&format!(
        "{}{third}",
        edit(
            "mode = \"route\"",
            "dpd_interval = \"30s\"\nmode = \"route\""
        )
    ));
    assert_eq!(
        diff(&old, &new),
        ConfigDiff {
            added: vec!["br2".into()],
            removed: vec!["br".into()],
            changed: vec!["dc1".into()],
            unchanged: vec![],
        }
    );
    // Same settings written differently (defaults spelt out, other lines) are unchanged.
    let same = ok(&format!(
        "{}{POLICY}",
        edit("mode = \"route\"", "dpd_interval = 10\n\nmode = \"route\"")
    ));
    assert_eq!(
        diff(&old, &same),
        ConfigDiff {
            unchanged: vec!["dc1".into(), "br".into()],
            ..ConfigDiff::default()
        }
    );
}

// ---- [bgp] ----

/// [`BASE`] with a BGP speaker and one neighbour over dc1's inside /30, then `extra`.
fn with_bgp(neighbor_extra: &str) -> String {
    format!(
        "{BASE}\n[bgp]\nlocal_as = 64512\nrouter_id = \"172.16.1.2\"\nannounce = [\"172.16.0.0/16\"]\n\n\
         [[bgp.neighbor]]\naddress = \"169.254.10.2\"\nremote_as = 65000\nconnection = \"dc1\"\n{neighbor_extra}"
    )
}

#[test]
fn bgp_defaults_and_a_tunnel_neighbor() {
    assert_eq!(ok(BASE).bgp, None);
    let c = ok(&with_bgp(""));
    let b = c.bgp.unwrap();
    assert_eq!(
        (b.local_as, b.router_id, b.hold_time, b.keepalive),
        (
            64512,
            "172.16.1.2".parse().unwrap(),
            Duration::from_secs(30),
            Duration::from_secs(10)
        )
    );
    assert_eq!(b.announce, vec!["172.16.0.0/16".parse::<IpNet>().unwrap()]);
    assert_eq!(
        b.neighbors,
        vec![bgp::BgpNeighbor {
            name: "dc1".into(),
            address: "169.254.10.2".parse().unwrap(),
            remote_as: 65000,
            connection: Some("dc1".into()),
            local_address: Some("169.254.10.1".parse().unwrap()),
            import: None,
            max_prefix: None,
            prepend: 0,
            publish: false,
        }]
    );
    let c = ok(&with_bgp(
        "import = [\"192.168.0.0/16\"]\nmax_prefix = 100\nprepend = 2\nname = \"onprem\"\n\n\
         [[bgp.neighbor]]\naddress = \"10.0.0.9\"\nremote_as = 64512\n",
    ));
    let n = &c.bgp.unwrap().neighbors;
    assert_eq!(n[0].name, "onprem");
    assert_eq!(
        n[0].max_prefix,
        Some(bgp::MaxPrefix {
            limit: 100,
            action: bgp::MaxPrefixAction::Drop
        })
    );
    assert_eq!(n[0].prepend, 2);
    assert_eq!((n[1].name.as_str(), n[1].local_address), ("10.0.0.9", None));
}

#[test]
fn bgp_speaker_values_are_checked() {
    let text = with_bgp("").replace("router_id = \"172.16.1.2\"", "router_id = \"0.0.0.0\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "router_id",
            "bgp.router_id",
            "0.0.0.0 is not a BGP Identifier: a non-zero IPv4 address (RFC 4271 §4.2)"
        )
    );
    let text = with_bgp("").replace(
        "local_as = 64512\n",
        "local_as = 64512\nhold_time = \"2s\"\n",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "hold_time",
            "bgp.hold_time",
            "2s is not a hold time: 0 (no hold timer) or 3s to 65535s (RFC 4271 §4.2)"
        )
    );
    let text = with_bgp("").replace(
        "local_as = 64512\n",
        "local_as = 64512\nkeepalive = \"20s\"\n",
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "keepalive",
            "bgp.keepalive",
            "keepalive 20s must be at least 1s and at most a third of hold_time 30s (RFC 4271 §10)"
        )
    );
    let text = with_bgp("").replace("local_as = 64512\n", "");
    let e = one(&text);
    assert!(e.contains("bgp.local_as: missing"), "{e}");
    let text = with_bgp("").replace("local_as = 64512", "local_as = 0");
    let e = one(&text);
    assert!(e.contains("bgp.local_as: 0 is out of range"), "{e}");
    let text = with_bgp("prepend = 11\nholdtime = 3\n");
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|l| l.contains("bgp.neighbor[0].prepend: 11 is out of range")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("bgp.neighbor[0].holdtime: unknown key \"holdtime\"")),
        "{e:?}"
    );
}

#[test]
fn a_tunnel_neighbor_peers_on_its_inside_addresses() {
    let text = with_bgp("").replace("address = \"169.254.10.2\"", "address = \"169.254.10.3\"");
    assert_eq!(
        one(&text),
        at(
            &text,
            "address = \"169.254.10.3\"",
            "bgp.neighbor[0].address",
            "169.254.10.3 is not the peer_inside of connection \"dc1\": a neighbour over a \
             tunnel peers on its inside /30 169.254.10.0/30; use 169.254.10.2"
        )
    );
    let text = with_bgp("local_address = \"169.254.10.2\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "local_address = \"169.254.10.2\"",
            "bgp.neighbor[0].local_address",
            "169.254.10.2 is not the local_inside of connection \"dc1\": the session leaves \
             from 169.254.10.1 (or leave local_address out)"
        )
    );
    let text = with_bgp("").replacen(
        "remote_as = 65000\nconnection = \"dc1\"",
        "remote_as = 65000\nconnection = \"dc9\"",
        1,
    );
    assert_eq!(
        one(&text),
        at(
            &text,
            "connection = \"dc9\"",
            "bgp.neighbor[0].connection",
            "unknown connection \"dc9\"; connections are: dc1"
        )
    );
    let text = format!("{BASE}{POLICY}\n[bgp]\nlocal_as = 64512\nrouter_id = \"172.16.1.2\"\n\n[[bgp.neighbor]]\naddress = \"10.20.0.1\"\nremote_as = 65000\nconnection = \"br\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "connection = \"br\"",
            "bgp.neighbor[0].connection",
            "connection \"br\" is policy-based: BGP runs over a route-based tunnel's inside \
             addresses (mode = \"route\")"
        )
    );
}

#[test]
fn bgp_neighbor_rules() {
    let text = with_bgp("max_prefix_action = \"reset\"\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "max_prefix_action",
            "bgp.neighbor[0].max_prefix_action",
            "max_prefix_action without max_prefix: set the limit it acts on"
        )
    );
    let text = with_bgp("max_prefix = 10\nmax_prefix_action = \"ignore\"\n");
    let e = one(&text);
    assert!(
        e.contains("\"ignore\" is not allowed here; expected \"drop\" or \"reset\""),
        "{e}"
    );
    let text = with_bgp("publish = true\n");
    assert_eq!(
        one(&text),
        at(
            &text,
            "publish",
            "bgp.neighbor[0].publish",
            "publish = true needs a [fabric] section: learned routes are published into the \
             fabric controller named there"
        )
    );
    let text = with_bgp("publish = true\n").replace(
        "[[connection]]",
        "[fabric]\nsocket = \"/run/lab/controller.sock\"\n\n[[connection]]",
    );
    assert!(ok(&text).bgp.unwrap().neighbors[0].publish);
    let text = with_bgp(
        "\n[[bgp.neighbor]]\naddress = \"169.254.10.2\"\nremote_as = 65001\nname = \"again\"\n",
    );
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: bgp.neighbor[1].address: 169.254.10.2 is the address of bgp.neighbor[0] \
             (line {}) too: one session per neighbour",
            line_nth(&text, "address = \"169.254.10.2\"", 1),
            line_nth(&text, "[[bgp.neighbor]]", 0)
        )
    );
    let text =
        with_bgp("\n[[bgp.neighbor]]\naddress = \"10.0.0.9\"\nremote_as = 65001\nname = \"dc1\"\n");
    assert_eq!(
        one(&text),
        format!(
            "{FILE}:{}: bgp.neighbor[1].name: \"dc1\" names bgp.neighbor[0] (line {}) too: give \
             each neighbour its own name",
            line_nth(&text, "name = \"dc1\"", 1),
            line_nth(&text, "[[bgp.neighbor]]", 0)
        )
    );
}
