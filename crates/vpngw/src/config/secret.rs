//! Secrets (pre-shared keys, the API's bearer token): where they come from, the rules their
//! files obey, and a type that never shows them.
//!
//! A secret is read only when needed ([`SecretSource::load`]): `check` reads it once to prove
//! it is there and drops it; the daemon reads it when it authenticates. It is never printed,
//! logged or serialized: [`Secret`]'s `Debug` says `<redacted>` and it has no `Display` and no
//! `Serialize`; its bytes are zeroed when dropped.

use std::{
    ffi::OsString,
    fmt,
    fs::{self, File},
    io::Read,
    os::unix::{ffi::OsStringExt, fs::PermissionsExt},
    path::{Path, PathBuf},
};

use serde::Serialize;
use zeroize::Zeroizing;

/// Secret bytes. Zeroed on drop; `Debug` prints `<redacted>`. Not `PartialEq`: a token is
/// compared in constant time, by whoever checks it.
#[derive(Clone)]
pub(crate) struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The bytes, for the one place that uses them (the IKE AUTH computation, the token
    /// comparison).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret is read from. Holds a path or a variable name, never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SecretSource {
    /// A file private to its owner (mode `0600` or stricter). Its content is the secret, less
    /// one trailing newline.
    File(PathBuf),
    /// An environment variable of the daemon's process.
    Env(String),
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SecretError {
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS's words.
        reason: String,
    },
    /// A directory, device or other non-regular file.
    #[error("{path} is not a regular file")]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// The group or others may read or write it.
    #[error(
        "{path} is readable or writable by group or others (mode {mode:04o}): a secret's file \
         must be private to its owner; run chmod 600 {path}"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Nothing in it, or only a newline.
    #[error("{path} is empty: it must hold the secret")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// Larger than any key: most likely the wrong file.
    #[error("{path} is {len} bytes: a secret's file holds at most {MAX_SECRET} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// The variable is not set.
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    /// The variable is set to nothing.
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
}

/// The largest secret file read; a pre-shared key or a token is far smaller.
const MAX_SECRET: u64 = 64 * 1024;

impl SecretSource {
    /// Reads the secret, checking the rules of its source.
    pub(crate) fn load(&self) -> Result<Secret, SecretError> {
        match self {
            Self::File(path) => read_file(path),
            Self::Env(name) => {
                let value =
                    std::env::var_os(name).ok_or_else(|| SecretError::EnvUnset(name.clone()))?;
                let bytes = Zeroizing::new(OsString::into_vec(value));
                if bytes.is_empty() {
                    return Err(SecretError::EnvEmpty(name.clone()));
                }
                Ok(Secret(bytes))
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Secret, SecretError> {
    let unreadable = |e: std::io::Error| SecretError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // The permission check comes before reading: an exposed secret is refused, not used.
    let meta = fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(SecretError::NotRegular {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.len() > MAX_SECRET {
        return Err(SecretError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    // One byte of room past the size lets `read_to_end` see the end without growing the
    // buffer, which would leave an unzeroed copy behind.
    let room = usize::try_from(meta.len()).map_or(0, |n| n + 1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(room));
    File::open(path)
        .and_then(|f| f.take(MAX_SECRET).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    // One trailing newline is the editor's, not the key's.
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(SecretError::EmptyFile {
            path: path.to_owned(),
        });
    }
    Ok(Secret(bytes))
}
