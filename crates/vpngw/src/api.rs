//! A small HTTP/1.1 client for the local APIs vpngw serves on Unix sockets (the lab's fabric
//! controller today, the daemon later). Blocking on purpose: the CLI makes one request and
//! prints the answer.

use std::path::Path;

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request};
use hyper_util::rt::TokioIo;
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::UnixStream;

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
