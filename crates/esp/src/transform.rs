//! The ESP transforms this crate implements, named as strongSwan proposals name them.

use std::fmt;
use std::str::FromStr;

/// An ESP transform: the encryption (and, for CBC, integrity) algorithm of an SA.
///
/// Every transform has a 16-byte ICV. The string forms are strongSwan's ESP proposal keywords
/// (`esp_proposals = aes128gcm16` in `swanctl.conf`), which the configuration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    /// AES-128-GCM with a 16-byte ICV ([RFC 4106]); `aes128gcm16`.
    ///
    /// [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106
    Aes128Gcm16,
    /// AES-256-GCM with a 16-byte ICV ([RFC 4106]); `aes256gcm16`.
    ///
    /// [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106
    Aes256Gcm16,
    /// ChaCha20-Poly1305 ([RFC 7634]); `chacha20poly1305`.
    ///
    /// [RFC 7634]: https://www.rfc-editor.org/rfc/rfc7634
    ChaCha20Poly1305,
    /// AES-128-CBC ([RFC 3602]) with HMAC-SHA-256-128 ([RFC 4868]); `aes128-sha256`.
    ///
    /// [RFC 3602]: https://www.rfc-editor.org/rfc/rfc3602
    /// [RFC 4868]: https://www.rfc-editor.org/rfc/rfc4868
    Aes128CbcSha256,
    /// AES-256-CBC ([RFC 3602]) with HMAC-SHA-256-128 ([RFC 4868]); `aes256-sha256`.
    ///
    /// [RFC 3602]: https://www.rfc-editor.org/rfc/rfc3602
    /// [RFC 4868]: https://www.rfc-editor.org/rfc/rfc4868
    Aes256CbcSha256,
}

/// IKEv2 transform identifiers of a [`Transform`] ([RFC 7296] §3.3.2, IANA "IKEv2 Parameters").
///
/// [RFC 7296]: https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ikev2Ids {
    /// Transform Type 1 (Encryption Algorithm) ID.
    pub encr: u16,
    /// Key Length attribute in bits, for algorithms with a variable key length.
    pub key_bits: Option<u16>,
    /// Transform Type 3 (Integrity Algorithm) ID; `None` for AEAD transforms.
    pub integ: Option<u16>,
}

/// A string that is not one of the transform names [`Transform::from_str`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ESP transform {0:?} (expected one of aes128gcm16, aes256gcm16, chacha20poly1305, aes128-sha256, aes256-sha256)")]
pub struct ParseTransformError(pub String);

impl Transform {
    /// All transforms, in the order of the enum.
    pub const ALL: [Self; 5] = [
        Self::Aes128Gcm16,
        Self::Aes256Gcm16,
        Self::ChaCha20Poly1305,
        Self::Aes128CbcSha256,
        Self::Aes256CbcSha256,
    ];

    /// The strongSwan proposal keyword, e.g. `aes128gcm16`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm16 => "aes128gcm16",
            Self::Aes256Gcm16 => "aes256gcm16",
            Self::ChaCha20Poly1305 => "chacha20poly1305",
            Self::Aes128CbcSha256 => "aes128-sha256",
            Self::Aes256CbcSha256 => "aes256-sha256",
        }
    }

    /// Whether this is a combined-mode (AEAD) transform.
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            Self::Aes128Gcm16 | Self::Aes256Gcm16 | Self::ChaCha20Poly1305
        )
    }

    /// Length of the cipher key in bytes (without salt).
    pub const fn enc_key_len(self) -> usize {
        match self {
            Self::Aes128Gcm16 | Self::Aes128CbcSha256 => 16,
            Self::Aes256Gcm16 | Self::ChaCha20Poly1305 | Self::Aes256CbcSha256 => 32,
        }
    }

    /// Length of the key material one direction of a child SA takes from IKEv2 KEYMAT.
    ///
    /// For AEAD transforms this is key || 4-byte salt ([RFC 4106] §8.1, [RFC 7634] §2); for
    /// AES-CBC it is the encryption key followed by the 32-byte HMAC key ([RFC 7296] §2.17
    /// takes encryption keys first, then integrity keys).
    ///
    /// [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106#section-8.1
    /// [RFC 7634]: https://www.rfc-editor.org/rfc/rfc7634#section-2
    /// [RFC 7296]: https://www.rfc-editor.org/rfc/rfc7296#section-2.17
    pub const fn keymat_len(self) -> usize {
        if self.is_aead() {
            self.enc_key_len() + SALT_LEN
        } else {
            self.enc_key_len() + HMAC_SHA256_KEY_LEN
        }
    }

    /// Length of the explicit IV carried in each packet: 8 for AEAD ([RFC 4106] §3.1,
    /// [RFC 7634] §2), 16 for AES-CBC ([RFC 3602] §2.1).
    ///
    /// [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106#section-3.1
    /// [RFC 7634]: https://www.rfc-editor.org/rfc/rfc7634#section-2
    /// [RFC 3602]: https://www.rfc-editor.org/rfc/rfc3602#section-2.1
    pub const fn iv_len(self) -> usize {
        if self.is_aead() {
            8
        } else {
            16
        }
    }

    /// Length of the Integrity Check Value: 16 bytes for every transform here.
    pub const fn icv_len(self) -> usize {
        ICV_LEN
    }

    /// The alignment the ciphertext (payload, padding, Pad Length, Next Header) is padded to:
    /// 4 bytes for the stream-like AEADs ([RFC 4303] §2.4), the 16-byte block for AES-CBC
    /// ([RFC 3602] §2.4).
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-2.4
    /// [RFC 3602]: https://www.rfc-editor.org/rfc/rfc3602#section-2.4
    pub const fn pad_align(self) -> usize {
        if self.is_aead() {
            4
        } else {
            16
        }
    }

    /// The IKEv2 transform IDs that negotiate this transform.
    pub const fn ikev2_ids(self) -> Ikev2Ids {
        // ENCR_AES_CBC = 12, ENCR_AES_GCM_16 = 20, ENCR_CHACHA20_POLY1305 = 28,
        // AUTH_HMAC_SHA2_256_128 = 12.
        match self {
            Self::Aes128Gcm16 => Ikev2Ids {
                encr: 20,
                key_bits: Some(128),
                integ: None,
            },
            Self::Aes256Gcm16 => Ikev2Ids {
                encr: 20,
                key_bits: Some(256),
                integ: None,
            },
            Self::ChaCha20Poly1305 => Ikev2Ids {
                encr: 28,
                key_bits: None,
                integ: None,
            },
            Self::Aes128CbcSha256 => Ikev2Ids {
                encr: 12,
                key_bits: Some(128),
                integ: Some(12),
            },
            Self::Aes256CbcSha256 => Ikev2Ids {
                encr: 12,
                key_bits: Some(256),
                integ: Some(12),
            },
        }
    }
}

/// Salt length of the AEAD transforms ([RFC 4106] §4, [RFC 7634] §2).
///
/// [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106#section-4
/// [RFC 7634]: https://www.rfc-editor.org/rfc/rfc7634#section-2
pub(crate) const SALT_LEN: usize = 4;
/// HMAC-SHA-256-128 uses a 32-byte key ([RFC 4868] §2.1.1).
///
/// [RFC 4868]: https://www.rfc-editor.org/rfc/rfc4868#section-2.1.1
pub(crate) const HMAC_SHA256_KEY_LEN: usize = 32;
/// Every transform here carries a 16-byte ICV.
pub(crate) const ICV_LEN: usize = 16;

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Transform {
    type Err = ParseTransformError;

    /// Parses a strongSwan ESP proposal keyword. `aes128gcm128`/`aes256gcm128` are accepted
    /// as the aliases strongSwan also accepts (the ICV is 128 bits either way); matching is
    /// ASCII case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = match s.to_ascii_lowercase().as_str() {
            "aes128gcm16" | "aes128gcm128" => Self::Aes128Gcm16,
            "aes256gcm16" | "aes256gcm128" => Self::Aes256Gcm16,
            "chacha20poly1305" => Self::ChaCha20Poly1305,
            "aes128-sha256" => Self::Aes128CbcSha256,
            "aes256-sha256" => Self::Aes256CbcSha256,
            _ => return Err(ParseTransformError(s.to_owned())),
        };
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Transform::ALL {
            assert_eq!(t.to_string().parse::<Transform>(), Ok(t));
        }
        assert_eq!("AES128GCM16".parse(), Ok(Transform::Aes128Gcm16));
        assert_eq!("aes256gcm128".parse(), Ok(Transform::Aes256Gcm16));
        assert!("aes128".parse::<Transform>().is_err());
        assert!("aes192gcm16".parse::<Transform>().is_err());
    }

    #[test]
    fn lengths() {
        assert_eq!(Transform::Aes128Gcm16.keymat_len(), 20);
        assert_eq!(Transform::Aes256Gcm16.keymat_len(), 36);
        assert_eq!(Transform::ChaCha20Poly1305.keymat_len(), 36);
        assert_eq!(Transform::Aes128CbcSha256.keymat_len(), 48);
        assert_eq!(Transform::Aes256CbcSha256.keymat_len(), 64);
        for t in Transform::ALL {
            assert_eq!(t.icv_len(), 16);
            assert_eq!(t.iv_len(), if t.is_aead() { 8 } else { 16 });
        }
    }
}
