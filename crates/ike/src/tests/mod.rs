//! Unit tests that need crate internals (fixed IVs, fixed private keys, HMAC-SHA-1 for
//! the CAVP vectors).

mod crypto;
mod kat;
mod util;
