//! The ESP header ([RFC 4303] §2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! |               Security Parameters Index (SPI)                 | ^Int.
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//! |                      Sequence Number                          | |ered
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ----
//! |                    Payload Data* (variable)                   | |   ^
//! ~                                                               ~ |   |
//! |                                                               | |Conf.
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//! |               |     Padding (0-255 bytes)                     | |ered*
//! +-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//! |                               |  Pad Length   | Next Header   | v   v
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
//! |         Integrity Check Value-ICV   (variable)                |
//! ~                                                               ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Only SPI and Sequence Number are in the clear; the IV (part of Payload Data), the
//! trailer and the ICV depend on the SA's transform and are handled by the SA.
//!
//! [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2

use std::fmt;

/// A Security Parameters Index ([RFC 4303] §2.1).
///
/// Values 1–255 are reserved by IANA and 0 is reserved for local use; neither is ever
/// assigned to an SA. On UDP port 4500 a zero SPI field is the non-ESP marker (RFC 3948).
///
/// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.1
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spi(pub u32);

impl Spi {
    /// Whether the value is reserved (0–255) and therefore never names an SA.
    pub const fn is_reserved(self) -> bool {
        self.0 < 256
    }
}

impl fmt::Debug for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spi({:#010x})", self.0)
    }
}

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

impl From<u32> for Spi {
    fn from(v: u32) -> Self {
        Self(v)
    }
}

/// A buffer too short for the header it should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated: {len} bytes, need {need}")]
pub struct Truncated {
    /// Bytes available.
    pub len: usize,
    /// Bytes needed.
    pub need: usize,
}

/// Length of the ESP header in the clear: SPI and Sequence Number.
pub const HEADER_LEN: usize = 8;

mod field {
    pub(super) const SPI: core::ops::Range<usize> = 0..4;
    pub(super) const SEQUENCE_NUMBER: core::ops::Range<usize> = 4..8;
}

/// A read/write view of an ESP packet buffer (smoltcp's two-layer wire style).
///
/// Accessors index the buffer directly: build it with [`Packet::new_checked`] (every
/// receive path does) so that they cannot panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

// Accessors index a buffer that `new_checked`/`check_len` proved long enough; the only way to
// reach them on a short buffer is `new_unchecked`, which emitters use on buffers they sized.
#[allow(clippy::indexing_slicing)]
impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after checking it holds at least the header.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that no accessor can panic.
    pub fn check_len(&self) -> Result<(), Truncated> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(Truncated {
                len,
                need: HEADER_LEN,
            })
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Security Parameters Index.
    pub fn spi(&self) -> Spi {
        let b = &self.buffer.as_ref()[field::SPI];
        Spi(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The (low 32 bits of the) Sequence Number.
    pub fn sequence_number(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SEQUENCE_NUMBER];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Everything after the header: IV, ciphertext and ICV.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

#[allow(clippy::indexing_slicing)]
impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Security Parameters Index.
    pub fn set_spi(&mut self, spi: Spi) {
        self.buffer.as_mut()[field::SPI].copy_from_slice(&spi.0.to_be_bytes());
    }

    /// Sets the Sequence Number field (the low 32 bits with ESN).
    pub fn set_sequence_number(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQUENCE_NUMBER].copy_from_slice(&seq.to_be_bytes());
    }

    /// Everything after the header, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The clear-text header fields of an ESP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Security Parameters Index.
    pub spi: Spi,
    /// Sequence Number field (low 32 bits of the ESN when ESN is on).
    pub sequence_number: u32,
}

impl Repr {
    /// Parses the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, Truncated> {
        packet.check_len()?;
        Ok(Self {
            spi: packet.spi(),
            sequence_number: packet.sequence_number(),
        })
    }

    /// Length of the emitted header.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a packet at least [`HEADER_LEN`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_spi(self.spi);
        packet.set_sequence_number(self.sequence_number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Header of draft-mcgrew-gcm-test-01 case 2 (SPI 0x0000a5f8, sequence number 10).
    const BYTES: [u8; 12] = [
        0x00, 0x00, 0xa5, 0xf8, 0x00, 0x00, 0x00, 0x0a, 0xfa, 0xce, 0xdb, 0xad,
    ];

    fn repr() -> Repr {
        Repr {
            spi: Spi(0xa5f8),
            sequence_number: 10,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.spi(), Spi(0xa5f8));
        assert_eq!(p.sequence_number(), 10);
        assert_eq!(p.payload(), &BYTES[8..]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 12];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_spi(Spi(0xa5f8));
        p.set_sequence_number(10);
        p.payload_mut().copy_from_slice(&BYTES[8..]);
        assert_eq!(bytes, BYTES);
    }

    #[test]
    fn check_len() {
        assert_eq!(
            Packet::new_checked(&BYTES[..7]),
            Err(Truncated { len: 7, need: 8 })
        );
        assert!(Packet::new_checked(&BYTES[..8]).is_ok());
    }

    #[test]
    fn parse_emit_buffer_len() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr()));
        let mut out = [0u8; 8];
        let mut q = Packet::new_unchecked(&mut out[..]);
        repr().emit(&mut q);
        assert_eq!(out, BYTES[..8]);
        assert_eq!(repr().buffer_len(), 8);
    }

    #[test]
    fn spi_display() {
        assert_eq!(Spi(0xa5f8).to_string(), "0x0000a5f8");
        assert!(Spi(255).is_reserved());
        assert!(!Spi(256).is_reserved());
    }
}
