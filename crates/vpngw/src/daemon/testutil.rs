//! Test helpers: a temporary directory, and a configuration whose state, socket and secrets
//! live in it.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::config::{Config, Secrets};

/// The TCP API token of [`test_config`].
pub(crate) const TOKEN: &str = "unit-test-token-0123456789";

/// A directory removed, with its content, when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "vpngw-unit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn secret_file(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Two connections (`dc1` route-based with one route, `branch` policy-based), the API on TCP
/// with [`TOKEN`], everything under `dir`.
pub(crate) fn test_config(dir: &TempDir) -> Config {
    let d = dir.path();
    secret_file(&d.join("psk"), "unit-test-psk\n");
    secret_file(&d.join("token"), &format!("{TOKEN}\n"));
    let text = format!(
        r#"
[gateway]
name = "gw-unit"
tun = "vpngwunit0"
state_dir = "{d}/state"

[api]
socket = "{d}/api.sock"
listen = "127.0.0.1:18443"
token_file = "{d}/token"

[[connection]]
name = "dc1"
local_address = "192.0.2.1"
peer_address = "198.51.100.1"
psk_file = "{d}/psk"
ike_proposals = ["aes256gcm16-prfsha256-ecp256"]
esp_proposals = ["aes256gcm16"]
mode = "route"
tunnel_cidr = "169.254.10.0/30"

[[connection]]
name = "branch"
local_address = "192.0.2.1"
peer_address = "203.0.113.20"
psk_file = "{d}/psk"
ike_proposals = ["aes256gcm16-prfsha256-ecp256"]
esp_proposals = ["aes256gcm16"]
mode = "policy"
local_subnets = ["172.16.0.0/16"]
remote_subnets = ["10.20.0.0/16"]

[[route]]
prefix = "192.168.10.0/24"
connection = "dc1"
"#,
        d = d.display()
    );
    let file = d.join("vpngw.toml");
    fs::write(&file, &text).unwrap();
    Config::from_toml(&file, &text, Secrets::Check).unwrap_or_else(|e| panic!("{e}"))
}
