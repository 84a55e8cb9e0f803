//! Network namespaces and the iproute2 calls that build and program them: the lab's nodes,
//! and the daemon's TUN addresses (its kernel routes are rtnetlink requests, in
//! `daemon::tunnel::kernel`).
//!
//! Namespaces are made with `ip netns add` so they are visible to `ip netns exec` and to the
//! operator; everything that must run *inside* one (sysctls, probe sockets) runs on a short
//! lived thread that has `setns(2)`'d into it, so the process itself never changes namespace.

use std::{
    fs::File,
    io::Write,
    path::Path,
    process::{Command, Stdio},
    thread,
};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};

/// Where `ip netns add` mounts namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Whether a named namespace exists.
pub(crate) fn exists(ns: &str) -> bool {
    Path::new(NETNS_DIR).join(ns).exists()
}

/// All named namespaces.
pub(crate) fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Runs `ip ARGS…`, failing with iproute2's own message.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    ip_output(args).map(drop)
}

/// Runs `ip ARGS…` and returns what it printed.
pub(crate) fn ip_output(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Feeds a batch of commands to `ip -n NS -batch -`: one process per namespace however many
/// routes change, which keeps reprogramming a node well inside the 100 ms budget.
pub(crate) fn ip_batch(ns: Option<&str>, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running `ip -batch` (iproute2)")?;
    {
        // The child owns stdin until we drop it; `take` cannot fail right after spawn with
        // `Stdio::piped()`.
        let mut stdin = child.stdin.take().context("ip -batch stdin")?;
        for l in lines {
            writeln!(stdin, "{l}")?;
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "ip{} -batch: {}",
            ns.map(|n| format!(" -n {n}")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `f` on a thread that has joined namespace `ns`. Sockets opened there stay in `ns`
/// after the thread ends, so this is also how probe sockets are made.
pub(crate) fn run_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = Path::new(NETNS_DIR).join(ns);
    let fd = File::open(&path).with_context(|| format!("namespace {ns} does not exist"))?;
    thread::spawn(move || {
        setns(&fd, CloneFlags::CLONE_NEWNET).context("setns")?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("thread inside namespace {ns} panicked"))?
}

/// Sets sysctls (`(key, value)`, key as under /proc/sys with dots) inside namespace `ns`.
pub(crate) fn sysctls(ns: &str, values: &[(&str, &str)]) -> Result<()> {
    let values: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    run_in(ns, move || {
        for (k, v) in &values {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).with_context(|| format!("sysctl {k}={v}"))?;
        }
        Ok(())
    })
}

/// PIDs of the processes living in namespace `ns` (as `ip netns pids` reports them).
pub(crate) fn pids(ns: &str) -> Vec<i32> {
    let Ok(out) = Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
