//! The injected random source.
//!
//! Everything random in IKE (nonces, SPIs, key-exchange private values, CBC IVs) comes
//! through [`Rng`], so the core never reaches for an OS facility on its own and tests can
//! replay exactly. The daemon uses [`SystemRng`].

use crate::error::Error;

/// The random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("random source failed")]
pub struct RandomError;

impl From<RandomError> for Error {
    fn from(_: RandomError) -> Self {
        Self::Crypto("random source failed")
    }
}

/// A source of unpredictable bytes.
///
/// Implementations used outside tests must be cryptographically secure: key-exchange
/// private values and CBC IVs are drawn from it.
pub trait Rng {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError>;
}

/// AWS-LC's CSPRNG (`RAND_bytes`: a DRBG seeded from the OS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| RandomError)
    }
}
