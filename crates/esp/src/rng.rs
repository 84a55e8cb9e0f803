//! Where AES-CBC IVs come from.
//!
//! An AES-CBC IV "MUST be chosen at random" and be unpredictable to an attacker
//! ([RFC 3602] §2.1, and the BEAST-style attacks on predictable CBC IVs). The AEAD
//! transforms do not use this: their IV is the sequence number.
//!
//! [RFC 3602]: https://www.rfc-editor.org/rfc/rfc3602#section-2.1

/// The random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("random source failed")]
pub struct RandomError;

/// A source of unpredictable bytes for CBC IVs, owned by an outbound SA.
///
/// Implementations must be cryptographically secure; [`SystemRng`] is. Tests may supply a
/// fixed source to reproduce published vectors.
pub trait IvSource: Send {
    /// Fills `dest` with unpredictable bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError>;
}

/// AWS-LC's CSPRNG (`RAND_bytes`: a per-thread DRBG seeded from the OS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRng;

impl IvSource for SystemRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| RandomError)
    }
}
