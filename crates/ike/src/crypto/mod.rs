//! The cryptographic suite: the algorithms a negotiated proposal names, and everything
//! RFC 7296 computes with them.
//!
//! | what | where | RFC |
//! |---|---|---|
//! | PRF, `prf+` | [`Prf`] | 7296 §2.13, 4868 |
//! | SKEYSEED, SK_d/ai/ar/ei/er/pi/pr | [`IkeKeys::derive`] | 7296 §2.14 |
//! | rekeyed IKE SA | [`IkeKeys::derive_rekeyed`] | 7296 §2.18 |
//! | Child SA KEYMAT | [`ChildKeys::derive`] | 7296 §2.17 |
//! | PSK AUTH | [`auth`] | 7296 §2.15 |
//! | NAT detection | [`auth::nat_detection_hash`] | 7296 §2.23 |
//! | SK payload | [`sk::Sealer`], [`sk::Opener`] | 7296 §3.14, 5282, 7634 |
//! | key exchange | [`KeyExchange`] | 3526, 5903, 8031, 6989 |
//!
//! Primitives come from AWS-LC (`aws-lc-rs`), the library the `esp` crate uses, except
//! MODP group 14 exponentiation, which AWS-LC does not expose: that is `crypto-bigint`'s
//! constant-time Montgomery ladder (see [`dh`]).

pub mod auth;
pub mod dh;
pub(crate) mod keys;
pub mod sk;

use aws_lc_rs::hmac;

pub use dh::{KeyExchange, SharedSecret};
pub use keys::{ChildKeys, IkeKeys, Role};
pub use sk::{Decrypted, Opener, Sealer};

use crate::error::{Error, Unsupported};
use crate::packet::iana::{EncrId, IntegId, KeMethod, PrfId};
use crate::secret::Secret;

/// Constant-time equality of two byte strings (in their contents; lengths are public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// An implemented pseudorandom function (RFC 4868 HMAC-SHA2 PRFs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    /// PRF_HMAC_SHA2_256.
    HmacSha256,
    /// PRF_HMAC_SHA2_384.
    HmacSha384,
    /// PRF_HMAC_SHA2_512.
    HmacSha512,
}

impl Prf {
    /// The implementation of a transform ID, if there is one.
    pub fn from_id(id: PrfId) -> Option<Self> {
        match id {
            PrfId::HMAC_SHA2_256 => Some(Self::HmacSha256),
            PrfId::HMAC_SHA2_384 => Some(Self::HmacSha384),
            PrfId::HMAC_SHA2_512 => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> PrfId {
        match self {
            Self::HmacSha256 => PrfId::HMAC_SHA2_256,
            Self::HmacSha384 => PrfId::HMAC_SHA2_384,
            Self::HmacSha512 => PrfId::HMAC_SHA2_512,
        }
    }

    /// Output length in bytes; also the preferred key length used for SK_d, SK_pi and
    /// SK_pr (RFC 7296 §2.14, RFC 4868 §2.1.2).
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    pub(crate) fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256 => hmac::HMAC_SHA256,
            Self::HmacSha384 => hmac::HMAC_SHA384,
            Self::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// `prf(K, S)` with `S` the concatenation of `data`.
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Secret {
        hmac_parts(self.hmac(), key, data)
    }

    /// `prf+(K, S)` of RFC 7296 §2.13, `len` bytes, `S` the concatenation of `seed`.
    ///
    /// ```text
    /// prf+ (K,S) = T1 | T2 | T3 | T4 | ...
    /// T1 = prf (K, S | 0x01)
    /// T2 = prf (K, T1 | S | 0x02)
    /// ...
    /// ```
    /// At most 255 blocks: asking for more is [`ApiMisuse`](crate::ApiMisuse).
    pub fn prf_plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Result<Secret, Error> {
        prf_plus_with(self.hmac(), key, seed, len)
    }
}

pub(crate) fn hmac_parts(alg: hmac::Algorithm, key: &[u8], data: &[&[u8]]) -> Secret {
    let key = hmac::Key::new(alg, key);
    let mut ctx = hmac::Context::with_key(&key);
    for d in data {
        ctx.update(d);
    }
    Secret::from_slice(ctx.sign().as_ref())
}

/// `prf+` over any HMAC (the tests also run it with HMAC-SHA-1 for the NIST CAVP vector).
pub(crate) fn prf_plus_with(
    alg: hmac::Algorithm,
    key: &[u8],
    seed: &[&[u8]],
    len: usize,
) -> Result<Secret, Error> {
    let out_len = alg.digest_algorithm().output_len();
    if len > 255 * out_len {
        return Err(crate::ApiMisuse::InvalidValue {
            what: "prf+ output length (at most 255 blocks)",
            value: len,
        }
        .into());
    }
    let key = hmac::Key::new(alg, key);
    // Capacity for the whole output up front: no reallocation leaves key bytes behind.
    let mut buf = Vec::with_capacity(len + out_len);
    let mut block: Option<hmac::Tag> = None;
    let mut counter: u8 = 1;
    while buf.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        if let Some(prev) = &block {
            ctx.update(prev.as_ref());
        }
        for s in seed {
            ctx.update(s);
        }
        ctx.update(&[counter]);
        let tag = ctx.sign();
        buf.extend_from_slice(tag.as_ref());
        block = Some(tag);
        counter = counter.wrapping_add(1);
    }
    let mut out = Secret::new(buf);
    out.truncate(len);
    Ok(out)
}

/// An implemented integrity algorithm (RFC 4868 truncated HMAC-SHA2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integ {
    /// AUTH_HMAC_SHA2_256_128.
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192.
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256.
    HmacSha512_256,
}

impl Integ {
    /// The implementation of a transform ID, if there is one.
    pub fn from_id(id: IntegId) -> Option<Self> {
        match id {
            IntegId::HMAC_SHA2_256_128 => Some(Self::HmacSha256_128),
            IntegId::HMAC_SHA2_384_192 => Some(Self::HmacSha384_192),
            IntegId::HMAC_SHA2_512_256 => Some(Self::HmacSha512_256),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> IntegId {
        match self {
            Self::HmacSha256_128 => IntegId::HMAC_SHA2_256_128,
            Self::HmacSha384_192 => IntegId::HMAC_SHA2_384_192,
            Self::HmacSha512_256 => IntegId::HMAC_SHA2_512_256,
        }
    }

    /// Key length in bytes (RFC 4868 §2.1.1: the hash output length).
    pub fn key_len(self) -> usize {
        match self {
            Self::HmacSha256_128 => 32,
            Self::HmacSha384_192 => 48,
            Self::HmacSha512_256 => 64,
        }
    }

    /// ICV length in bytes (half the hash output).
    pub fn icv_len(self) -> usize {
        self.key_len() / 2
    }

    pub(crate) fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256_128 => hmac::HMAC_SHA256,
            Self::HmacSha384_192 => hmac::HMAC_SHA384,
            Self::HmacSha512_256 => hmac::HMAC_SHA512,
        }
    }
}

/// An implemented encryption algorithm with its key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encr {
    /// ENCR_AES_CBC, 128-bit key (RFC 3602); needs an integrity algorithm.
    AesCbc128,
    /// ENCR_AES_CBC, 256-bit key.
    AesCbc256,
    /// ENCR_AES_GCM_16, 128-bit key (RFC 4106 for ESP, RFC 5282 for IKE).
    AesGcm16_128,
    /// ENCR_AES_GCM_16, 256-bit key.
    AesGcm16_256,
    /// ENCR_CHACHA20_POLY1305 (RFC 7634).
    ChaCha20Poly1305,
}

impl Encr {
    /// The implementation of a transform ID and Key Length attribute, if there is one.
    /// ChaCha20-Poly1305 must come without a Key Length (RFC 7634 §2), AES with one
    /// (RFC 7296 §3.3.5).
    pub fn from_id(id: EncrId, key_bits: Option<u16>) -> Option<Self> {
        match (id, key_bits) {
            (EncrId::AES_CBC, Some(128)) => Some(Self::AesCbc128),
            (EncrId::AES_CBC, Some(256)) => Some(Self::AesCbc256),
            (EncrId::AES_GCM_16, Some(128)) => Some(Self::AesGcm16_128),
            (EncrId::AES_GCM_16, Some(256)) => Some(Self::AesGcm16_256),
            (EncrId::CHACHA20_POLY1305, None) => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> EncrId {
        match self {
            Self::AesCbc128 | Self::AesCbc256 => EncrId::AES_CBC,
            Self::AesGcm16_128 | Self::AesGcm16_256 => EncrId::AES_GCM_16,
            Self::ChaCha20Poly1305 => EncrId::CHACHA20_POLY1305,
        }
    }

    /// The Key Length attribute value to send, in bits.
    pub fn key_length_attr(self) -> Option<u16> {
        match self {
            Self::AesCbc128 | Self::AesGcm16_128 => Some(128),
            Self::AesCbc256 | Self::AesGcm16_256 => Some(256),
            Self::ChaCha20Poly1305 => None,
        }
    }

    /// Whether this is an AEAD (no integrity transform).
    pub fn is_aead(self) -> bool {
        !matches!(self, Self::AesCbc128 | Self::AesCbc256)
    }

    /// Cipher key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AesCbc128 | Self::AesGcm16_128 => 16,
            Self::AesCbc256 | Self::AesGcm16_256 | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Salt taken from the key material after the key (RFC 5282 §7.1, RFC 7634 §2).
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            4
        } else {
            0
        }
    }

    /// Bytes of key material per direction: key, then salt.
    pub fn keymat_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// IV length on the wire.
    pub fn iv_len(self) -> usize {
        if self.is_aead() {
            8
        } else {
            16
        }
    }

    /// AEAD tag length (0 for CBC: its ICV comes from the integrity transform).
    pub fn tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            0
        }
    }
}

/// The algorithms of a negotiated IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    /// Encryption.
    pub encr: Encr,
    /// PRF.
    pub prf: Prf,
    /// Integrity: `None` exactly when `encr` is an AEAD.
    pub integ: Option<Integ>,
    /// Key exchange method.
    pub ke: KeMethod,
}

impl IkeSuite {
    /// Builds the suite from a selected proposal (one transform per type).
    pub fn from_proposal(p: &crate::proposal::Proposal) -> Result<Self, Error> {
        if p.prf.len() != 1 || p.ke.len() != 1 {
            return Err(not_selected());
        }
        let (encr, integ) = encr_integ(p)?;
        let prf = p
            .prf
            .first()
            .and_then(|id| Prf::from_id(*id))
            .ok_or_else(|| unsupported(format!("PRF {:?}", p.prf)))?;
        let ke = p.ke.first().copied().unwrap_or(KeMethod::NONE);
        if !dh::is_supported(ke) {
            return Err(Unsupported::KeMethod(ke).into());
        }
        Ok(Self {
            encr,
            prf,
            integ,
            ke,
        })
    }
}

/// The algorithms of a negotiated Child SA (ESP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildSuite {
    /// Encryption.
    pub encr: Encr,
    /// Integrity: `None` exactly when `encr` is an AEAD.
    pub integ: Option<Integ>,
    /// Extended sequence numbers.
    pub esn: bool,
    /// PFS key exchange for CREATE_CHILD_SA, if any.
    pub ke: Option<KeMethod>,
}

impl ChildSuite {
    /// Builds the suite from a selected ESP proposal.
    pub fn from_proposal(p: &crate::proposal::Proposal) -> Result<Self, Error> {
        let (encr, integ) = encr_integ(p)?;
        let esn = match p.esn.as_slice() {
            [] => false,
            [e] => *e == crate::packet::iana::EsnId::ESN,
            _ => return Err(not_selected()),
        };
        let ke = p.ke.first().copied().filter(|k| *k != KeMethod::NONE);
        Ok(Self {
            encr,
            integ,
            esn,
            ke,
        })
    }

    /// KEYMAT bytes per direction: encryption key (with salt), then integrity key
    /// (RFC 7296 §2.17). This is the layout the `esp` crate takes.
    pub fn keymat_len(&self) -> usize {
        self.encr.keymat_len() + self.integ.map_or(0, Integ::key_len)
    }
}

fn not_selected() -> Error {
    crate::ApiMisuse::Other("suite needs a selected proposal (one transform per type)").into()
}

fn unsupported(what: String) -> Error {
    Unsupported::Algorithm(what).into()
}

fn encr_integ(p: &crate::proposal::Proposal) -> Result<(Encr, Option<Integ>), Error> {
    let [encr] = p.encr.as_slice() else {
        return Err(not_selected());
    };
    let encr =
        Encr::from_id(encr.id, encr.key_bits).ok_or_else(|| unsupported(format!("ENCR {encr}")))?;
    let integ = match (encr.is_aead(), p.integ.as_slice()) {
        (true, []) | (true, [IntegId::NONE]) => None,
        (false, [i]) => Some(Integ::from_id(*i).ok_or_else(|| unsupported(format!("INTEG {i}")))?),
        _ => {
            return Err(crate::ApiMisuse::Other(
                "AEAD needs no integrity transform, other ciphers exactly one",
            )
            .into())
        }
    };
    Ok((encr, integ))
}
