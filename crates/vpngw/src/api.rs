//! The local APIs vpngw serves on Unix sockets (the lab's fabric controller, the gateway
//! daemon): the pieces both servers share — binding the socket privately, the JSON error
//! answer — and a small HTTP/1.1 client for the CLI. The client is blocking on purpose: the CLI
//! makes one request and prints the answer.

use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    path::Path,
};

use anyhow::{bail, Context, Result};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request};
use hyper_util::rt::TokioIo;
use nix::sys::stat::{umask, Mode};
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::{UnixListener, UnixStream};

/// An error answer: `{"error": "…"}` with its status. The client below turns it back into
/// one line.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Binds a local API's Unix socket at `path`, private to its owner (mode 0600, so only root —
/// or the daemon's user — may talk to it).
///
/// Creates the parent directory, mode 0700, when it is missing (an existing one is left as it
/// is). A socket file left by a server that died is replaced; one that a live server still
/// answers on, or a path that is not a socket, is refused rather than taken over.
pub(crate) fn listen_unix(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            bail!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            )
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "{}: another server is already listening there (is one already running?)",
                    path.display()
                );
            }
            fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    // The socket is created 0600 under this umask, so no one else can connect in the window
    // before the chmod below (which only makes the mode independent of umask semantics). The
    // umask is process-wide: this runs at startup, before anything else creates files.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(old);
    let listener = bound.with_context(|| format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(listener)?)
}

/// `GET path`, decoding a JSON answer.
pub(crate) fn get<T: DeserializeOwned>(socket: &Path, path: &str) -> Result<T> {
    request(socket, Method::GET, path, None::<&()>)
}

/// `POST path` with a JSON body, decoding a JSON answer.
pub(crate) fn post<B: Serialize, T: DeserializeOwned>(
    socket: &Path,
    path: &str,
    body: &B,
) -> Result<T> {
    request(socket, Method::POST, path, Some(body))
}

fn request<B: Serialize, T: DeserializeOwned>(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("connecting to {}", socket.display()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = match body {
            Some(b) => Full::new(Bytes::from(serde_json::to_vec(b)?)),
            None => Full::new(Bytes::new()),
        };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(body)?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            bail!("{msg}");
        }
        serde_json::from_slice(&bytes).with_context(|| format!("decoding the answer to {path}"))
    })
}
