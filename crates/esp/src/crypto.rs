//! The only module that touches the crypto library (AWS-LC through `aws-lc-rs`).
//!
//! Both halves work in place on one ESP packet, laid out as
//!
//! ```text
//! | SPI | Seq | IV (8 or 16) | ciphertext = payload, padding, Pad Length, Next Header | ICV (16) |
//! ```
//!
//! and nothing here allocates. Key schedules live in AWS-LC memory that is cleansed when
//! freed (`OPENSSL_free`, `HMAC_CTX_cleanup`, aws-lc-rs's zeroizing cipher keys); the one
//! secret this module copies, the AEAD salt, is zeroized on drop.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{constant_time, hmac};
use zeroize::Zeroizing;

use crate::error::{ConfigError, SealError};
use crate::rng::IvSource;
use crate::transform::{Transform, ICV_LEN, SALT_LEN};
use crate::wire::esp::HEADER_LEN;

/// The packet failed integrity verification (or decryption, which for an AEAD is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthFailed;

/// Keys of one direction of an SA.
pub(crate) enum Keys {
    Aead {
        key: LessSafeKey,
        salt: Zeroizing<[u8; SALT_LEN]>,
    },
    // Boxed: an HMAC context and a CBC key schedule take ~1.7 KB inline, the AEAD key 24
    // bytes, and every SA (and every slot of a table of SAs) is as large as the largest
    // variant.
    CbcSeal {
        enc: Box<EncryptingKey>,
        mac: Box<hmac::Key>,
    },
    CbcOpen {
        dec: Box<DecryptingKey>,
        mac: Box<hmac::Key>,
    },
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, not even through the library's own Debug impls.
        f.write_str("Keys(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Seal,
    Open,
}

impl Keys {
    /// Builds keys from IKEv2 KEYMAT in the order [`Transform::keymat_len`] documents.
    pub(crate) fn new(
        transform: Transform,
        keymat: &[u8],
        direction: Direction,
    ) -> Result<Self, ConfigError> {
        if keymat.len() != transform.keymat_len() {
            return Err(ConfigError::KeyLength {
                transform,
                expected: transform.keymat_len(),
                got: keymat.len(),
            });
        }
        let (enc_key, rest) = keymat
            .split_at_checked(transform.enc_key_len())
            .ok_or(ConfigError::Crypto)?;
        if transform.is_aead() {
            let alg = match transform {
                Transform::Aes128Gcm16 => &aead::AES_128_GCM,
                Transform::Aes256Gcm16 => &aead::AES_256_GCM,
                _ => &aead::CHACHA20_POLY1305,
            };
            let key = UnboundKey::new(alg, enc_key).map_err(|_| ConfigError::Crypto)?;
            let salt: [u8; SALT_LEN] = rest.try_into().map_err(|_| ConfigError::Crypto)?;
            return Ok(Self::Aead {
                key: LessSafeKey::new(key),
                salt: Zeroizing::new(salt),
            });
        }
        let alg = match transform {
            Transform::Aes128CbcSha256 => &aws_lc_rs::cipher::AES_128,
            _ => &aws_lc_rs::cipher::AES_256,
        };
        let cipher_key = UnboundCipherKey::new(alg, enc_key).map_err(|_| ConfigError::Crypto)?;
        let mac = Box::new(hmac::Key::new(hmac::HMAC_SHA256, rest));
        Ok(match direction {
            Direction::Seal => Self::CbcSeal {
                enc: Box::new(EncryptingKey::cbc(cipher_key).map_err(|_| ConfigError::Crypto)?),
                mac,
            },
            Direction::Open => Self::CbcOpen {
                dec: Box::new(DecryptingKey::cbc(cipher_key).map_err(|_| ConfigError::Crypto)?),
                mac,
            },
        })
    }
}

/// The AAD of RFC 4106 §5 / RFC 7634 §2.1: SPI || Sequence Number, where the sequence
/// number is 32 bits, or the 64-bit ESN (high half first) when ESN is on.
fn aad(spi: &[u8; 4], seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    let (s, rest) = a.split_at_mut(4);
    s.copy_from_slice(spi);
    if esn {
        rest.copy_from_slice(&seq.to_be_bytes());
        (a, 12)
    } else {
        if let Some(lo) = rest.get_mut(..4) {
            lo.copy_from_slice(&(seq as u32).to_be_bytes());
        }
        (a, 8)
    }
}

fn nonce(salt: &[u8; SALT_LEN], iv: &[u8; 8]) -> Nonce {
    let mut n = [0u8; 12];
    let (s, i) = n.split_at_mut(SALT_LEN);
    s.copy_from_slice(salt);
    i.copy_from_slice(iv);
    Nonce::assume_unique_for_key(n)
}

/// HMAC-SHA-256-128 over the authenticated part of the packet; with ESN the high 32 bits of
/// the sequence number are appended to the input without being sent (RFC 4303 §2.2.1,
/// §3.3.2.2).
fn cbc_icv(mac: &hmac::Key, header_and_iv: &[u8], ct: &[u8], seq: u64, esn: bool) -> [u8; 16] {
    let mut ctx = hmac::Context::with_key(mac);
    ctx.update(header_and_iv);
    ctx.update(ct);
    if esn {
        ctx.update(&((seq >> 32) as u32).to_be_bytes());
    }
    let tag = ctx.sign();
    let mut icv = [0u8; ICV_LEN];
    if let Some(t) = tag.as_ref().get(..ICV_LEN) {
        icv.copy_from_slice(t);
    }
    icv
}

/// Splits a packet into header+IV, ciphertext and ICV; `None` if it is shorter than the
/// header, IV and ICV.
fn split(packet: &mut [u8], iv_len: usize) -> Option<(&mut [u8], &mut [u8], &mut [u8])> {
    let (head, rest) = packet.split_at_mut_checked(HEADER_LEN + iv_len)?;
    let ct_len = rest.len().checked_sub(ICV_LEN)?;
    let (ct, icv) = rest.split_at_mut_checked(ct_len)?;
    Some((head, ct, icv))
}

/// The SPI field of a header+IV slice at least 4 bytes long.
fn spi_bytes(head: &[u8]) -> [u8; 4] {
    let mut spi = [0u8; 4];
    if let Some(s) = head.get(..4) {
        spi.copy_from_slice(s);
    }
    spi
}

/// Which IV a seal uses.
pub(crate) enum IvChoice<'a> {
    /// The normal case: for AEADs the 64-bit sequence number (RFC 4106 §3.1 allows any
    /// unique value; the counter is what Linux and strongSwan send), for CBC fresh bytes from
    /// the source.
    Default(&'a mut dyn IvSource),
    /// A given IV (known-answer tests and fuzzing only; never unique by construction).
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    Fixed(&'a [u8]),
}

impl Keys {
    /// Encrypts the ciphertext area in place and writes the IV and ICV. The SPI and
    /// Sequence Number must already be in the header.
    pub(crate) fn seal(
        &self,
        transform: Transform,
        packet: &mut [u8],
        seq: u64,
        esn: bool,
        iv: IvChoice<'_>,
    ) -> Result<(), SealError> {
        let (head, ct, icv) = split(packet, transform.iv_len()).ok_or(SealError::Crypto)?;
        let spi = spi_bytes(head);
        let iv_field = head.get_mut(HEADER_LEN..).ok_or(SealError::Crypto)?;
        match iv {
            IvChoice::Fixed(bytes) if bytes.len() == iv_field.len() => {
                iv_field.copy_from_slice(bytes)
            }
            IvChoice::Fixed(_) => return Err(SealError::Crypto),
            IvChoice::Default(_) if transform.is_aead() => {
                iv_field.copy_from_slice(&seq.to_be_bytes())
            }
            IvChoice::Default(rng) => rng.fill(iv_field).map_err(|_| SealError::Random)?,
        }
        match self {
            Self::Aead { key, salt } => {
                let iv: [u8; 8] = (&*iv_field).try_into().map_err(|_| SealError::Crypto)?;
                let (aad, n) = aad(&spi, seq, esn);
                let aad = aad.get(..n).ok_or(SealError::Crypto)?;
                let tag = key
                    .seal_in_place_separate_tag(nonce(salt, &iv), Aad::from(aad), ct)
                    .map_err(|_| SealError::Crypto)?;
                icv.copy_from_slice(tag.as_ref());
            }
            Self::CbcSeal { enc, mac } => {
                let iv: [u8; 16] = (&*iv_field).try_into().map_err(|_| SealError::Crypto)?;
                enc.less_safe_encrypt(ct, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| SealError::Crypto)?;
                icv.copy_from_slice(&cbc_icv(mac, head, ct, seq, esn));
            }
            Self::CbcOpen { .. } => return Err(SealError::Crypto),
        }
        Ok(())
    }

    /// Verifies the ICV and decrypts the ciphertext area in place. On error the ciphertext
    /// area may have been overwritten.
    pub(crate) fn open(
        &self,
        transform: Transform,
        packet: &mut [u8],
        seq: u64,
        esn: bool,
    ) -> Result<(), AuthFailed> {
        let (head, ct, icv) = split(packet, transform.iv_len()).ok_or(AuthFailed)?;
        let spi = spi_bytes(head);
        match self {
            Self::Aead { key, salt } => {
                let iv: &[u8; 8] = head
                    .get(HEADER_LEN..)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(AuthFailed)?;
                let (aad, n) = aad(&spi, seq, esn);
                let aad = aad.get(..n).ok_or(AuthFailed)?;
                key.open_in_place_separate_tag(nonce(salt, iv), Aad::from(aad), icv, ct)
                    .map_err(|_| AuthFailed)?;
            }
            Self::CbcOpen { dec, mac } => {
                // Encrypt-then-MAC: authenticate before touching the ciphertext, so no
                // padding oracle exists.
                let expected = cbc_icv(mac, head, ct, seq, esn);
                constant_time::verify_slices_are_equal(&expected, icv).map_err(|_| AuthFailed)?;
                let iv: [u8; 16] = head
                    .get(HEADER_LEN..)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(AuthFailed)?;
                dec.decrypt(ct, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| AuthFailed)?;
            }
            Self::CbcSeal { .. } => return Err(AuthFailed),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    /// RFC 4868 §2.7.2.1: HMAC-SHA-256-128 test cases 1 and 2 (32-byte keys), the
    /// authenticator is the first 128 bits of the PRF output.
    #[test]
    fn hmac_sha256_128_rfc4868() {
        let cases: [(&[u8], &[u8], [u8; 16]); 2] = [
            (
                &[0x0b; 32],
                b"Hi There",
                hex!("198a607eb44bfbc69903a0f1cf2bbdc5"),
            ),
            (
                b"JefeJefeJefeJefeJefeJefeJefeJefe",
                b"what do ya want for nothing?",
                hex!("167f928588c5cc2eef8e3093caa0e87c"),
            ),
        ];
        for (key, data, want) in cases {
            let key = hmac::Key::new(hmac::HMAC_SHA256, key);
            // Split the input where the ESP code splits it (header+IV | ciphertext).
            let (a, b) = data.split_at(3);
            assert_eq!(cbc_icv(&key, a, b, 0, false), want);
        }
    }

    #[test]
    fn aad_layout() {
        let spi = [0, 0, 0x43, 0x21];
        let (a, n) = aad(&spi, 0x8765_4321_0000_0000, true);
        assert_eq!(&a[..n], &hex!("000043218765432100000000"));
        let (a, n) = aad(&spi, 5, false);
        assert_eq!(&a[..n], &hex!("0000432100000005"));
    }

    #[test]
    fn debug_redacts() {
        let k = Keys::new(Transform::Aes128Gcm16, &[0x41; 20], Direction::Seal).unwrap();
        assert_eq!(format!("{k:?}"), "Keys(<redacted>)");
    }

    /// Tables hold SAs inline (the SAD, the daemon's connections); with a CBC key schedule
    /// inline every SA, and every free slot of such a table, took ~1.9 KB.
    #[test]
    fn sas_stay_small() {
        assert!(size_of::<Keys>() <= 64);
        assert!(size_of::<crate::InboundSa>() <= 256);
        assert!(size_of::<crate::OutboundSa>() <= 256);
    }
}
