//! `vpngw check --config FILE` as an operator runs it: the example passes, each bad fixture is
//! rejected whole with every one of its errors, secret files obey their rules, and no secret
//! is ever printed.
//!
//! The fixtures in `tests/config/bad-*.toml` carry their expected errors: a comment line
//! `# error: FIELD: MESSAGE` expects that error at the nearest line above it that is not such
//! a comment. `check` must print exactly those, in that order, and nothing else.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

const VPNGW: &str = env!("CARGO_BIN_EXE_vpngw");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/vpngw.toml");
/// The example's PSK variables.
const EXAMPLE_VARS: [&str; 3] = ["VPNGW_PSK_DC1", "VPNGW_PSK_DC1_BACKUP", "VPNGW_PSK_BRANCH"];
/// A key no output may show.
const PSK: &str = "correct-horse-battery-staple-42";

/// Runs `vpngw check --config FILE` in `dir` with `env` set and the fixtures' and example's
/// variables otherwise unset.
fn check(dir: &Path, file: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(VPNGW);
    cmd.args(["check", "--config", file])
        .current_dir(dir)
        .stdin(Stdio::null());
    for var in EXAMPLE_VARS
        .iter()
        .chain(&["VPNGW_FIXTURE_PSK", "VPNGW_FIXTURE_PSK_UNSET"])
    {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running vpngw check")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The expected `FILE:LINE: FIELD: MESSAGE` lines of an annotated fixture.
fn expected_errors(name: &str, content: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut target = 0;
    for (i, l) in content.lines().enumerate() {
        match l.strip_prefix("# error: ") {
            Some(e) => out.push(format!("{name}:{target}: {e}")),
            None => target = i + 1,
        }
    }
    out
}

#[test]
fn bad_fixtures_are_rejected_whole_with_every_error() {
    let mut names: Vec<String> = fs::read_dir(FIXTURES)
        .expect("the fixtures directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("bad-") && n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "fixtures: {names:?}");
    for name in &names {
        let content = fs::read_to_string(Path::new(FIXTURES).join(name)).expect("a fixture");
        let expected = expected_errors(name, &content);
        assert!(!expected.is_empty(), "{name} expects no error");
        let out = check(Path::new(FIXTURES), name, &[("VPNGW_FIXTURE_PSK", PSK)]);
        let stderr = text(&out.stderr);
        let mut lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
        let summary = lines.pop().unwrap_or_default();
        assert_eq!(lines, expected, "{name}:\n{stderr}");
        let n = expected.len();
        let s = if n == 1 { "" } else { "s" };
        assert_eq!(summary, format!("{name}: {n} error{s}"));
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(text(&out.stdout), "", "{name}");
        assert!(!stderr.contains(PSK), "{name}");
    }
}

#[test]
fn the_example_passes() {
    let env: Vec<(&str, &str)> = EXAMPLE_VARS.iter().map(|v| (*v, PSK)).collect();
    let out = check(Path::new("."), EXAMPLE, &env);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        format!("{EXAMPLE}: ok (3 connections, 3 routes)\n")
    );
    assert!(out.status.success());
}

#[test]
fn the_example_without_its_keys_names_each_variable() {
    let out = check(Path::new("."), EXAMPLE, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for (line, var) in lines.iter().zip(EXAMPLE_VARS) {
        assert!(
            line.starts_with(&format!("{EXAMPLE}:"))
                && line.ends_with(&format!(".psk_env: environment variable {var} is not set")),
            "{line}"
        );
    }
}

#[test]
fn an_unreadable_file_exits_2() {
    let out = check(Path::new("."), "/nonexistent/vpngw.toml", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "vpngw: cannot read /nonexistent/vpngw.toml: No such file or directory (os error 2)\n"
    );
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vpngw-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, content).expect("writing a temporary file");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A valid file whose one connection reads its key from `psk_file`.
fn with_psk_file(psk_file: &str) -> String {
    format!(
        r#"[gateway]
name = "gw"

[[connection]]
name = "dc1"
local_address = "172.16.1.2"
peer_address = "10.0.0.1"
psk_file = "{psk_file}"
ike_proposals = ["aes256gcm16-prfsha256-ecp256"]
esp_proposals = ["aes256gcm16"]
mode = "route"
tunnel_cidr = "169.254.10.0/30"
"#
    )
}

/// `check` of a file using `psk_file`: (exit code, stdout, stderr).
fn check_psk(dir: &TempDir, psk_file: &str) -> (Option<i32>, String, String) {
    dir.write("gw.toml", &with_psk_file(psk_file), 0o644);
    let out = check(&dir.0, "gw.toml", &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!stdout.contains(PSK) && !stderr.contains(PSK));
    (out.status.code(), stdout, stderr)
}

/// The one error line `check` prints for `psk_file`, and its summary.
fn psk_error(message: &str) -> String {
    format!("gw.toml:8: connection[0].psk_file: {message}\ngw.toml: 1 error\n")
}

#[test]
fn a_private_psk_file_is_accepted() {
    let dir = TempDir::new();
    dir.write("dc1.psk", &format!("{PSK}\n"), 0o600);
    assert_eq!(
        check_psk(&dir, "dc1.psk"),
        (
            Some(0),
            "gw.toml: ok (1 connection, 0 routes)\n".into(),
            String::new()
        )
    );
    let abs = dir.write("abs.psk", PSK, 0o400);
    assert_eq!(check_psk(&dir, &abs.display().to_string()).0, Some(0));
}

#[test]
fn a_psk_file_readable_by_others_is_refused() {
    let dir = TempDir::new();
    for mode in [0o644, 0o640, 0o604, 0o620, 0o660] {
        let p = dir.write("dc1.psk", PSK, mode);
        let shown = Path::new("dc1.psk");
        assert_eq!(
            check_psk(&dir, "dc1.psk"),
            (
                Some(1),
                String::new(),
                psk_error(&format!(
                    "{} is readable or writable by group or others (mode {mode:04o}): a \
                     secret's file must be private to its owner; run chmod 600 {}",
                    shown.display(),
                    shown.display()
                ))
            ),
            "{}",
            p.display()
        );
    }
}

#[test]
fn a_psk_file_must_exist_be_regular_and_hold_a_key() {
    let dir = TempDir::new();
    assert_eq!(
        check_psk(&dir, "missing.psk"),
        (
            Some(1),
            String::new(),
            psk_error("cannot read missing.psk: No such file or directory (os error 2)")
        )
    );
    fs::create_dir(dir.0.join("keys")).expect("mkdir");
    assert_eq!(
        check_psk(&dir, "keys"),
        (
            Some(1),
            String::new(),
            psk_error("keys is not a regular file")
        )
    );
    for empty in ["", "\n", "\r\n"] {
        dir.write("empty.psk", empty, 0o600);
        assert_eq!(
            check_psk(&dir, "empty.psk"),
            (
                Some(1),
                String::new(),
                psk_error("empty.psk is empty: it must hold the secret")
            ),
            "{empty:?}"
        );
    }
}

#[test]
fn the_api_token_file_obeys_the_same_rules() {
    let dir = TempDir::new();
    dir.write("dc1.psk", PSK, 0o600);
    let token = dir.write("api.token", PSK, 0o644);
    let config = format!(
        "{}\n[api]\nlisten = \"127.0.0.1:8443\"\ntoken_file = \"api.token\"\n",
        with_psk_file("dc1.psk")
    );
    dir.write("gw.toml", &config, 0o644);
    let out = check(&dir.0, "gw.toml", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr,
        "gw.toml:16: api.token_file: api.token is readable or writable by group or others \
         (mode 0644): a secret's file must be private to its owner; run chmod 600 api.token\n\
         gw.toml: 1 error\n"
    );
    assert!(!stderr.contains(PSK));
    fs::set_permissions(&token, fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = check(&dir.0, "gw.toml", &[]);
    assert_eq!(text(&out.stdout), "gw.toml: ok (1 connection, 0 routes)\n");
}

#[test]
fn no_secret_in_any_output() {
    let dir = TempDir::new();
    // Keys in a refused file, a good file and a variable, with other errors around them.
    dir.write("exposed.psk", PSK, 0o666);
    dir.write("good.psk", PSK, 0o600);
    let config = format!(
        "{}\n[[connection]]\nname = \"dc2\"\nlocal_address = \"172.16.1.2\"\npeer_address = \
         \"10.0.0.5\"\npsk_env = \"VPNGW_FIXTURE_PSK\"\nike_proposals = [\"aes256\"]\n\
         esp_proposals = [\"aes256gcm16\"]\nmode = \"route\"\ntunnel_cidr = \"169.254.10.0/30\"\n\
         \n[[connection]]\nname = \"dc3\"\nlocal_address = \"172.16.1.2\"\npeer_address = \
         \"10.0.0.9\"\npsk_file = \"good.psk\"\npsk_env = \"VPNGW_FIXTURE_PSK\"\n",
        with_psk_file("exposed.psk")
    );
    dir.write("gw.toml", &config, 0o644);
    let out = check(&dir.0, "gw.toml", &[("VPNGW_FIXTURE_PSK", PSK)]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1));
    assert!(all.lines().count() >= 5, "{all}");
    assert!(!all.contains(PSK), "{all}");
}
