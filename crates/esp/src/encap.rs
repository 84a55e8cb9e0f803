//! UDP encapsulation of ESP ([RFC 3948]): what arrives on UDP port 4500.
//!
//! Port 4500 carries three kinds of datagram, told apart by their first bytes
//! ([RFC 3948] §2.2–2.3, [RFC 7296] §2.23):
//!
//! ```text
//! NAT-keepalive:   +-+-+-+-+-+-+-+-+
//!                  |      0xFF     |          exactly one byte
//!                  +-+-+-+-+-+-+-+-+
//! IKE:             +---------------------------------------------------------------+
//!                  |                    Non-ESP Marker (0x00000000)                |
//!                  +---------------------------------------------------------------+
//!                  |                    IKE header (RFC 7296 §3.1) ...             |
//! ESP:             +---------------------------------------------------------------+
//!                  |                    SPI (never zero)                           |
//!                  +---------------------------------------------------------------+
//!                  |                    Sequence Number ...                        |
//! ```
//!
//! The UDP header itself belongs to the socket: the daemon sends and receives the bytes
//! above as UDP payload. When sending IKE on port 4500, prefix [`NON_ESP_MARKER`].
//!
//! [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
//! [RFC 7296]: https://www.rfc-editor.org/rfc/rfc7296#section-2.23

use std::ops::Range;

use crate::wire::esp::{Truncated, HEADER_LEN};

/// The UDP port for IKE and ESP-in-UDP after NAT detection ([RFC 3948] §2).
///
/// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948#section-2
pub const PORT: u16 = 4500;

/// The four zero bytes that precede an IKE message on port 4500 ([RFC 3948] §2.2); a zero
/// SPI, which no ESP SA can have.
///
/// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948#section-2.2
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// The one byte of a NAT-keepalive packet ([RFC 3948] §2.3).
///
/// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948#section-2.3
pub const NAT_KEEPALIVE: u8 = 0xff;

/// What a datagram received on port 4500 is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// An IKE message; the range excludes the non-ESP marker. Hand it to IKE.
    Ike(Range<usize>),
    /// An ESP packet: the whole datagram.
    Esp,
    /// A NAT-keepalive: ignore it ([RFC 3948] §2.3, "ignored by the receiver").
    ///
    /// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948#section-2.3
    NatKeepalive,
}

/// Classifies a UDP payload received on port 4500.
///
/// Errors only for datagrams that can be none of the three: empty, a lone byte other than
/// 0xFF, or fewer than 8 bytes that do not start with the marker.
pub fn classify(payload: &[u8]) -> Result<Datagram, Truncated> {
    match payload {
        [NAT_KEEPALIVE] => Ok(Datagram::NatKeepalive),
        [0, 0, 0, 0, ..] => Ok(Datagram::Ike(NON_ESP_MARKER.len()..payload.len())),
        _ if payload.len() >= HEADER_LEN => Ok(Datagram::Esp),
        _ => Err(Truncated {
            len: payload.len(),
            need: HEADER_LEN,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify(&[0xff]), Ok(Datagram::NatKeepalive));
        assert_eq!(classify(&[0, 0, 0, 0]), Ok(Datagram::Ike(4..4)));
        assert_eq!(classify(&[0, 0, 0, 0, 1, 2, 3]), Ok(Datagram::Ike(4..7)));
        assert_eq!(classify(&[0, 0, 1, 0, 0, 0, 0, 1]), Ok(Datagram::Esp));
        assert!(classify(&[]).is_err());
        assert!(classify(&[0]).is_err());
        assert!(classify(&[0xfe]).is_err());
        assert!(classify(&[0xff, 0xff]).is_err());
        assert!(classify(&[0, 0, 1, 0, 0, 0, 0]).is_err());
    }
}
