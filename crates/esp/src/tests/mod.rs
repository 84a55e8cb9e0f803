//! Crate-internal tests: known answers (which need a chosen IV) and the checks behind the
//! ICV (which need attacker-shaped plaintext under a valid ICV).

mod behind_icv;
mod kat;
