//! Wire formats in the clear: the ESP header and the bits of inner IP headers the tunnel
//! needs. Zero-copy `Packet` views plus a `Repr`, as in smoltcp's `wire` module.

pub mod esp;
pub(crate) mod ip;
