//! Protection of the Encrypted and Authenticated (SK) payload, RFC 7296 §3.14.
//!
//! Two constructions:
//!
//! - AEAD: AES-GCM with a 16-octet ICV (RFC 5282) and ChaCha20-Poly1305 (RFC 7634). Nonce
//!   = 4-byte salt (the end of SK_e*) | 8-byte IV; the IV is a per-key counter, unique by
//!   construction (RFC 5282 §3.1 allows any unique value; strongSwan uses a sequence too).
//!   Additional data = the message from the first octet of the IKE header through the
//!   generic header of the SK payload (RFC 5282 §5.1, RFC 7634 §4); no padding is needed
//!   (we send a Pad Length of 0).
//! - AES-CBC with a truncated HMAC-SHA2 ICV (RFC 3602, RFC 4868): random 16-byte IV from the
//!   caller's [`Rng`], padding to the block size, the ICV over the whole message up to the
//!   ICV itself (header included, with the final Length).
//!
//! [`Opener::open`] verifies the tag or ICV *before* it decrypts or parses anything inside.

use std::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use super::{Encr, Integ};
use crate::error::{ApiMisuse, DecodeErrorKind, Error, PeerMisbehaved, Unsupported, Within};
use crate::packet::codec::{fit, Reader};
use crate::packet::iana::PayloadType;
use crate::packet::message::read_header;
use crate::packet::payload::{decode_chain, encode_chain, encode_one, GENERIC_HEADER_LEN};
use crate::packet::{Header, Payload};
use crate::rng::Rng;

const CBC_BLOCK: usize = 16;

/// A decrypted, integrity-checked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The IKE header (its Next Payload was SK, or the first unprotected payload).
    pub header: Header,
    /// Payloads that preceded the SK payload in the clear (rare; covered by the ICV).
    pub unprotected: Vec<Payload>,
    /// The payloads inside the SK payload, in order.
    pub payloads: Vec<Payload>,
}

enum SealKey {
    Aead {
        key: LessSafeKey,
        salt: Zeroizing<[u8; 4]>,
    },
    Cbc {
        key: Box<EncryptingKey>,
        mac: Box<hmac::Key>,
        icv_len: usize,
    },
}

enum OpenKey {
    Aead {
        key: LessSafeKey,
        salt: Zeroizing<[u8; 4]>,
    },
    Cbc {
        key: Box<DecryptingKey>,
        mac: Box<hmac::Key>,
        icv_len: usize,
    },
}

fn aead_key(encr: Encr, sk_e: &[u8]) -> Result<(LessSafeKey, Zeroizing<[u8; 4]>), Error> {
    let alg = match encr {
        Encr::AesGcm16_128 => &aead::AES_128_GCM,
        Encr::AesGcm16_256 => &aead::AES_256_GCM,
        _ => &aead::CHACHA20_POLY1305,
    };
    let (key, salt) = sk_e
        .split_at_checked(encr.key_len())
        .ok_or(Error::Crypto("short SK_e"))?;
    let salt: [u8; 4] = salt.try_into().map_err(|_| Error::Crypto("SK_e salt"))?;
    let key = UnboundKey::new(alg, key).map_err(|_| Error::Crypto("AEAD key"))?;
    Ok((LessSafeKey::new(key), Zeroizing::new(salt)))
}

fn cbc_key(encr: Encr, sk_e: &[u8]) -> Result<UnboundCipherKey, Error> {
    let alg = match encr {
        Encr::AesCbc128 => &aws_lc_rs::cipher::AES_128,
        _ => &aws_lc_rs::cipher::AES_256,
    };
    UnboundCipherKey::new(alg, sk_e).map_err(|_| Error::Crypto("AES key"))
}

fn check_lengths(encr: Encr, integ: Option<Integ>, sk_e: &[u8], sk_a: &[u8]) -> Result<(), Error> {
    if sk_e.len() != encr.keymat_len() {
        return Err(ApiMisuse::KeyLength {
            what: "SK_e",
            expected: encr.keymat_len(),
            got: sk_e.len(),
        }
        .into());
    }
    let a_len = integ.map_or(0, Integ::key_len);
    if sk_a.len() != a_len || encr.is_aead() == integ.is_some() {
        return Err(ApiMisuse::KeyLength {
            what: "SK_a",
            expected: a_len,
            got: sk_a.len(),
        }
        .into());
    }
    Ok(())
}

fn nonce(salt: &[u8; 4], iv: &[u8; 8]) -> Nonce {
    let mut n = [0u8; 12];
    let (s, i) = n.split_at_mut(4);
    s.copy_from_slice(salt);
    i.copy_from_slice(iv);
    Nonce::assume_unique_for_key(n)
}

/// Seals outgoing messages with our SK_e/SK_a.
pub struct Sealer {
    encr: Encr,
    key: SealKey,
    next_iv: u64,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("encr", &self.encr)
            .finish_non_exhaustive()
    }
}

/// The IV a seal uses.
pub(crate) enum IvChoice<'a> {
    /// The normal case: counter for AEAD, random for CBC.
    Default(&'a mut dyn Rng),
    /// A given IV (known-answer tests only).
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(&'a [u8]),
}

impl Sealer {
    /// Keys for one direction. `sk_e` is the cipher key followed by the AEAD salt; `sk_a`
    /// the integrity key (empty for an AEAD).
    pub fn new(encr: Encr, integ: Option<Integ>, sk_e: &[u8], sk_a: &[u8]) -> Result<Self, Error> {
        check_lengths(encr, integ, sk_e, sk_a)?;
        let key = match integ {
            None => {
                let (key, salt) = aead_key(encr, sk_e)?;
                SealKey::Aead { key, salt }
            }
            Some(integ) => SealKey::Cbc {
                key: Box::new(
                    EncryptingKey::cbc(cbc_key(encr, sk_e)?)
                        .map_err(|_| Error::Crypto("AES-CBC key"))?,
                ),
                mac: Box::new(hmac::Key::new(integ.hmac(), sk_a)),
                icv_len: integ.icv_len(),
            },
        };
        Ok(Self {
            encr,
            key,
            next_iv: 0,
        })
    }

    /// Builds the datagram: `header`, then the `unprotected` payloads in the clear (usually
    /// none), then one SK payload holding `inner`.
    pub fn seal(
        &mut self,
        header: &Header,
        unprotected: &[Payload],
        inner: &[Payload],
        rng: &mut dyn Rng,
    ) -> Result<Vec<u8>, Error> {
        self.seal_with(header, unprotected, inner, IvChoice::Default(rng))
    }

    pub(crate) fn seal_with(
        &mut self,
        header: &Header,
        unprotected: &[Payload],
        inner: &[Payload],
        iv: IvChoice<'_>,
    ) -> Result<Vec<u8>, Error> {
        if unprotected.iter().chain(inner).any(Payload::is_encrypted) {
            return Err(ApiMisuse::Other("cannot nest an Encrypted payload").into());
        }
        // Plaintext: inner payloads | padding | Pad Length.
        let mut plain = Zeroizing::new(Vec::new());
        encode_chain(inner, &mut plain)?;
        let block = if self.encr.is_aead() { 1 } else { CBC_BLOCK };
        let pad = (block - (plain.len() + 1) % block) % block;
        let padded = plain.len() + pad;
        plain.resize(padded, 0);
        plain.push(fit(pad, "padding")?);
        let first_inner = inner
            .first()
            .map_or(PayloadType::NONE, Payload::payload_type);
        self.seal_plaintext(header, unprotected, first_inner, &plain, iv)
    }

    /// Seals an already padded plaintext (inner payload bytes | padding | Pad Length).
    pub(crate) fn seal_plaintext(
        &mut self,
        header: &Header,
        unprotected: &[Payload],
        first_inner: PayloadType,
        plain: &[u8],
        iv: IvChoice<'_>,
    ) -> Result<Vec<u8>, Error> {
        let iv_len = self.encr.iv_len();
        let icv_len = match &self.key {
            SealKey::Aead { .. } => self.encr.tag_len(),
            SealKey::Cbc { icv_len, .. } => *icv_len,
        };
        let sk_len = GENERIC_HEADER_LEN + iv_len + plain.len() + icv_len;

        let mut clear = Vec::new();
        for (i, p) in unprotected.iter().enumerate() {
            let following = unprotected
                .get(i + 1)
                .map_or(PayloadType::SK, Payload::payload_type);
            encode_one(p, following, &mut clear)?;
        }
        let total = Header::LEN + clear.len() + sk_len;
        let mut out = Vec::with_capacity(total);
        let first = unprotected
            .first()
            .map_or(PayloadType::SK, Payload::payload_type);
        header.encode(first, fit(total, "message")?, &mut out);
        out.extend_from_slice(&clear);
        out.push(first_inner.0);
        out.push(0);
        out.extend_from_slice(&fit::<u16>(sk_len, "Encrypted payload")?.to_be_bytes());
        let aad_end = out.len();

        match &self.key {
            SealKey::Aead { key, salt } => {
                let iv: [u8; 8] = match iv {
                    IvChoice::Default(_) => {
                        let iv = self.next_iv.to_be_bytes();
                        self.next_iv = self
                            .next_iv
                            .checked_add(1)
                            .ok_or(Error::Crypto("AEAD IV counter exhausted"))?;
                        iv
                    }
                    IvChoice::Fixed(iv) => iv
                        .try_into()
                        .map_err(|_| ApiMisuse::Other("AEAD IV must be 8 bytes"))?,
                };
                out.extend_from_slice(&iv);
                let mut ct = plain.to_vec();
                let aad = out.get(..aad_end).unwrap_or_default();
                let tag = key
                    .seal_in_place_separate_tag(nonce(salt, &iv), Aad::from(aad), &mut ct)
                    .map_err(|_| Error::Crypto("AEAD seal"))?;
                out.extend_from_slice(&ct);
                out.extend_from_slice(tag.as_ref());
            }
            SealKey::Cbc { key, mac, icv_len } => {
                let mut iv_bytes = [0u8; CBC_BLOCK];
                match iv {
                    IvChoice::Default(rng) => rng.fill(&mut iv_bytes)?,
                    IvChoice::Fixed(f) => {
                        iv_bytes = f
                            .try_into()
                            .map_err(|_| ApiMisuse::Other("CBC IV must be 16 bytes"))?;
                    }
                }
                out.extend_from_slice(&iv_bytes);
                let mut ct = plain.to_vec();
                key.less_safe_encrypt(
                    &mut ct,
                    EncryptionContext::Iv128(FixedLength::from(iv_bytes)),
                )
                .map_err(|_| Error::Crypto("AES-CBC encrypt"))?;
                out.extend_from_slice(&ct);
                let tag = hmac::sign(mac, &out);
                out.extend_from_slice(tag.as_ref().get(..*icv_len).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// Opens incoming messages with the peer's SK_e/SK_a.
pub struct Opener {
    encr: Encr,
    key: OpenKey,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("encr", &self.encr)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Keys for one direction, as [`Sealer::new`].
    pub fn new(encr: Encr, integ: Option<Integ>, sk_e: &[u8], sk_a: &[u8]) -> Result<Self, Error> {
        check_lengths(encr, integ, sk_e, sk_a)?;
        let key = match integ {
            None => {
                let (key, salt) = aead_key(encr, sk_e)?;
                OpenKey::Aead { key, salt }
            }
            Some(integ) => OpenKey::Cbc {
                key: Box::new(
                    DecryptingKey::cbc(cbc_key(encr, sk_e)?)
                        .map_err(|_| Error::Crypto("AES-CBC key"))?,
                ),
                mac: Box::new(hmac::Key::new(integ.hmac(), sk_a)),
                icv_len: integ.icv_len(),
            },
        };
        Ok(Self { encr, key })
    }

    /// Verifies and decrypts a protected datagram, then parses the inner payloads.
    ///
    /// Order of checks: header and Length; the outer payload chain (which must end in the
    /// SK payload); the ICV or AEAD tag (failure: [`PeerMisbehaved::IntegrityCheckFailed`],
    /// to be dropped silently); decryption; Pad Length; only then the inner payloads.
    /// An SKF fragment (RFC 7383) is reported as [`Unsupported::Algorithm`] for now.
    pub fn open(&self, datagram: &[u8]) -> Result<Decrypted, Error> {
        self.open_authenticated(datagram)?
    }

    /// [`open`](Self::open), telling apart the errors found *before* the ICV or tag
    /// verified (outer `Err`: anyone could have sent the bytes, drop them silently, RFC 7296
    /// §2.21, §3.14) from those found *after* it (inner `Err`: the peer holding the keys sent
    /// a malformed message; a request gets `INVALID_SYNTAX` or
    /// `UNSUPPORTED_CRITICAL_PAYLOAD`, §2.21.2, §2.21.3, §3.10.1).
    pub(crate) fn open_authenticated(
        &self,
        datagram: &[u8],
    ) -> Result<Result<Decrypted, Error>, Error> {
        let (raw, mut r) = read_header(datagram)?;
        let (mut outer, span) = decode_chain(&mut r, raw.next_payload).within("payloads")?;
        let Some(span) = span else {
            return Err(PeerMisbehaved::NotEncrypted.into());
        };
        let first_inner = match outer.pop() {
            Some(Payload::Encrypted(e)) => e.first_inner,
            Some(Payload::EncryptedFragment(_)) => {
                return Err(Unsupported::Algorithm("IKE fragmentation (RFC 7383)".into()).into())
            }
            _ => return Err(PeerMisbehaved::NotEncrypted.into()),
        };
        let body = datagram.get(span.body_at..).unwrap_or_default();
        let malformed = |what: &'static str| {
            Error::Malformed(crate::error::DecodeError::new(
                span.header_at,
                DecodeErrorKind::InvalidLength {
                    what,
                    length: body.len(),
                },
            ))
            .within("SK")
        };
        let iv_len = self.encr.iv_len();
        let mut plain = Zeroizing::new(Vec::new());
        match &self.key {
            OpenKey::Aead { key, salt } => {
                let tag_len = self.encr.tag_len();
                // At least the Pad Length octet must be encrypted.
                if body.len() < iv_len + 1 + tag_len {
                    return Err(malformed("Encrypted payload (IV, Pad Length, ICV)"));
                }
                let (iv, rest) = body.split_at(iv_len);
                let (ct, tag) = rest.split_at(rest.len() - tag_len);
                let iv: [u8; 8] = iv.try_into().map_err(|_| malformed("IV"))?;
                let aad = datagram.get(..span.body_at).unwrap_or_default();
                plain.extend_from_slice(ct);
                key.open_in_place_separate_tag(nonce(salt, &iv), Aad::from(aad), tag, &mut plain)
                    .map_err(|_| PeerMisbehaved::IntegrityCheckFailed)?;
            }
            OpenKey::Cbc { key, mac, icv_len } => {
                let Some(ct_len) = body.len().checked_sub(iv_len + icv_len) else {
                    return Err(malformed("Encrypted payload (IV, ICV)"));
                };
                if ct_len == 0 || ct_len % CBC_BLOCK != 0 {
                    return Err(malformed("ciphertext (not whole AES blocks)"));
                }
                let signed_len = datagram.len() - icv_len;
                let (signed, icv) = datagram.split_at(signed_len);
                let expected = hmac::sign(mac, signed);
                let expected = expected.as_ref().get(..*icv_len).unwrap_or_default();
                if !super::ct_eq(expected, icv) {
                    return Err(PeerMisbehaved::IntegrityCheckFailed.into());
                }
                let (iv, rest) = body.split_at(iv_len);
                let iv: [u8; CBC_BLOCK] = iv.try_into().map_err(|_| malformed("IV"))?;
                plain.extend_from_slice(rest.get(..ct_len).unwrap_or_default());
                key.decrypt(&mut plain, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| Error::Crypto("AES-CBC decrypt"))?;
            }
        }
        // Authenticated from here on: every error below is the key holder's doing.
        Ok((|| {
            // RFC 7296 §3.14: Pad Length is the last octet; the padding content is ignored.
            let pad = usize::from(*plain.last().ok_or(PeerMisbehaved::BadPadding)?);
            let inner_len = plain
                .len()
                .checked_sub(pad + 1)
                .ok_or(PeerMisbehaved::BadPadding)?;
            let inner_bytes = plain.get(..inner_len).unwrap_or_default();
            let mut inner = Reader::at(inner_bytes, span.body_at + iv_len);
            let (payloads, nested) = decode_chain(&mut inner, first_inner).within("SK")?;
            if nested.is_some() {
                return Err(inner
                    .error(DecodeErrorKind::Invalid(
                        "Encrypted payload inside an Encrypted payload",
                    ))
                    .within("SK"));
            }
            Ok(Decrypted {
                header: raw.header,
                unprotected: outer,
                payloads,
            })
        })())
    }
}
