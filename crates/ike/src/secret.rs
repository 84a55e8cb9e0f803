//! Key material that zeroizes itself and never prints.

use std::fmt;

use zeroize::Zeroize;

/// Secret bytes: keys, SKEYSEED, shared secrets, PSKs.
///
/// The buffer is overwritten with zeros when dropped, `Debug` shows only the length, and
/// equality is deliberately not implemented: compare with [`Secret::ct_eq`].
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies secret bytes.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The bytes. Callers must not copy them anywhere that outlives this value.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Shortens to `len` bytes (the cut bytes stay in the zeroized capacity).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Constant-time equality (in the contents; the lengths are not secret).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        crate::crypto::ct_eq(&self.0, other)
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}
