//! Key exchange: ECDH over Curve25519 (group 31), NIST P-256/384/521 (groups 19/20/21),
//! and finite-field Diffie-Hellman over the 2048-bit MODP group (group 14).
//!
//! The elliptic-curve groups run in AWS-LC. AWS-LC does not expose finite-field DH, so group
//! 14 uses `crypto-bigint`: `MontyForm::pow` is a constant-time fixed-window Montgomery
//! exponentiation whose running time depends only on the (public) exponent *bit length*,
//! never on the private exponent's value. Its private exponent is 512 random bits: RFC 3526
//! §8 and NIST SP 800-56A (rev. 3, §5.6.1.1.4) ask for at least twice the group's ~112-bit
//! security strength, and with a safe prime short exponents leak nothing (there is no small
//! subgroup to exploit once the peer's value passes the check below).
//!
//! Peer public values are validated before use:
//! - all groups: the KE payload's group must be the negotiated one (else
//!   `INVALID_KE_PAYLOAD`) and its length exactly the group's (RFC 7296 §3.4);
//! - MODP: `1 < y < p-1` (RFC 6989 §2.1, sufficient for safe-prime groups);
//! - ECP: the point `x | y` (RFC 5903 §7, no SEC1 prefix) must be on the curve (AWS-LC
//!   checks it; RFC 6989 §2.3);
//! - X25519: the shared secret must not be all zeros (RFC 8031 §2.2).
//!
//! Failures map to `INVALID_SYNTAX` ([`PeerMisbehaved::InvalidKePublicValue`]).
//!
//! Shared secrets (`g^ir`) are the fixed-length big-endian value for MODP (RFC 7296
//! §2.14), the x-coordinate for ECP (RFC 5903 §7) and the 32-byte X25519 output (RFC 8031).

use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Encoding, Odd, U2048, U512};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, PeerMisbehaved, Unsupported};
use crate::packet::iana::KeMethod;
use crate::packet::KePayload;
use crate::rng::Rng;
use crate::secret::Secret;

/// The 2048-bit MODP prime of RFC 3526 §3: `2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] +
/// 124476 }`; generator 2.
pub const MODP2048_PRIME_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

const MODP2048_ODD: Odd<U2048> = Odd::<U2048>::from_be_hex(MODP2048_PRIME_HEX);
const MODP2048_PRIME: U2048 = *MODP2048_ODD.as_ref();
const MODP2048_LEN: usize = 256;
const MODP_EXPONENT_BYTES: usize = 64;

fn modp2048_params() -> &'static MontyParams<{ U2048::LIMBS }> {
    static PARAMS: OnceLock<MontyParams<{ U2048::LIMBS }>> = OnceLock::new();
    PARAMS.get_or_init(|| {
        // A compile-time constant; `from_be_hex` checks oddness at compile time.
        let p: Odd<U2048> = MODP2048_ODD;
        MontyParams::new(p)
    })
}

/// Whether this crate implements a key-exchange method.
pub fn is_supported(method: KeMethod) -> bool {
    public_len(method).is_some()
}

/// Length of the KE payload data for a method (RFC 7296 §3.4, RFC 5903 §7, RFC 8031 §2).
pub fn public_len(method: KeMethod) -> Option<usize> {
    match method {
        KeMethod::MODP2048 => Some(MODP2048_LEN),
        KeMethod::ECP256 => Some(64),
        KeMethod::ECP384 => Some(96),
        KeMethod::ECP521 => Some(132),
        KeMethod::CURVE25519 => Some(32),
        _ => None,
    }
}

fn ec_alg(method: KeMethod) -> Option<&'static agreement::Algorithm> {
    match method {
        KeMethod::ECP256 => Some(&agreement::ECDH_P256),
        KeMethod::ECP384 => Some(&agreement::ECDH_P384),
        KeMethod::ECP521 => Some(&agreement::ECDH_P521),
        KeMethod::CURVE25519 => Some(&agreement::X25519),
        _ => None,
    }
}

/// `g^ir`: the raw key-exchange output fed to SKEYSEED and PFS KEYMAT.
pub type SharedSecret = Secret;

enum Private {
    Ec(PrivateKey),
    Modp(Zeroizing<U512>),
}

/// One side's key-exchange state: the private value and the public value to send.
pub struct KeyExchange {
    method: KeMethod,
    private: Private,
    public: Vec<u8>,
}

impl fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyExchange")
            .field("method", &self.method)
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

impl KeyExchange {
    /// Draws a fresh private value from `rng`.
    pub fn generate(method: KeMethod, rng: &mut dyn Rng) -> Result<Self, Error> {
        match method {
            KeMethod::MODP2048 => {
                let mut bytes = Zeroizing::new([0u8; MODP_EXPONENT_BYTES]);
                rng.fill(bytes.as_mut())?;
                Self::from_private(method, bytes.as_ref())
            }
            _ => {
                ec_alg(method).ok_or(Unsupported::KeMethod(method))?;
                let len = alg_private_len(method);
                let mut bytes = Zeroizing::new(vec![0u8; len]);
                // ECDH scalars must lie in [1, n-1]; a few draws suffice with
                // overwhelming probability (P-521: the top 7 bits are masked first).
                for _ in 0..32 {
                    rng.fill(&mut bytes)?;
                    if method == KeMethod::ECP521 {
                        if let Some(top) = bytes.first_mut() {
                            *top &= 0x01;
                        }
                    }
                    if let Ok(kx) = Self::from_private(method, &bytes) {
                        return Ok(kx);
                    }
                }
                Err(Error::Crypto("could not draw a valid ECDH private key"))
            }
        }
    }

    /// Builds the state from a given private value (big-endian scalar for ECP, the 32-byte
    /// scalar for X25519, the exponent for MODP). For known-answer tests and fuzzing;
    /// production keys come from [`KeyExchange::generate`].
    pub(crate) fn from_private(method: KeMethod, private: &[u8]) -> Result<Self, Error> {
        match method {
            KeMethod::MODP2048 => {
                if private.len() > MODP_EXPONENT_BYTES {
                    return Err(crate::ApiMisuse::KeyLength {
                        what: "MODP exponent",
                        expected: MODP_EXPONENT_BYTES,
                        got: private.len(),
                    }
                    .into());
                }
                let mut padded = Zeroizing::new([0u8; MODP_EXPONENT_BYTES]);
                if let Some(tail) = padded.get_mut(MODP_EXPONENT_BYTES - private.len()..) {
                    tail.copy_from_slice(private);
                }
                let x = Zeroizing::new(U512::from_be_slice(padded.as_ref()));
                let g = MontyForm::new(&U2048::from_u8(2), *modp2048_params());
                let public = g.pow(&*x).retrieve().to_be_bytes().to_vec();
                Ok(Self {
                    method,
                    private: Private::Modp(x),
                    public,
                })
            }
            _ => {
                let alg = ec_alg(method).ok_or(Unsupported::KeMethod(method))?;
                let key = PrivateKey::from_private_key(alg, private)
                    .map_err(|_| Error::Crypto("invalid ECDH private key"))?;
                let public = key
                    .compute_public_key()
                    .map_err(|_| Error::Crypto("ECDH public key"))?;
                let public = match method {
                    // SEC1 uncompressed 0x04 | x | y; IKEv2 sends x | y (RFC 5903 §7).
                    KeMethod::CURVE25519 => public.as_ref().to_vec(),
                    _ => public.as_ref().get(1..).unwrap_or_default().to_vec(),
                };
                Ok(Self {
                    method,
                    private: Private::Ec(key),
                    public,
                })
            }
        }
    }

    /// The method.
    pub fn method(&self) -> KeMethod {
        self.method
    }

    /// The public value: the KE payload's Key Exchange Data.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The KE payload to send.
    pub fn ke_payload(&self) -> KePayload {
        KePayload {
            method: self.method,
            data: self.public.clone(),
        }
    }

    /// Computes `g^ir` with the peer's KE payload, validating it first (see the module
    /// documentation). Consumes the private value.
    pub fn agree(self, peer: &KePayload) -> Result<SharedSecret, Error> {
        if peer.method != self.method {
            return Err(PeerMisbehaved::WrongKeMethod {
                expected: self.method,
                received: peer.method,
            }
            .into());
        }
        let invalid = |reason| {
            Error::from(PeerMisbehaved::InvalidKePublicValue {
                method: self.method,
                reason,
            })
        };
        if Some(peer.data.len()) != public_len(self.method) {
            return Err(invalid("wrong length for the group"));
        }
        match self.private {
            Private::Modp(x) => {
                let bytes: &[u8; MODP2048_LEN] = peer
                    .data
                    .as_slice()
                    .try_into()
                    .map_err(|_| invalid("wrong length for the group"))?;
                let y = U2048::from_be_bytes(*bytes);
                let p_minus_1 = MODP2048_PRIME.wrapping_sub(&U2048::ONE);
                if y <= U2048::ONE || y >= p_minus_1 {
                    return Err(invalid("not in 2..p-2 (RFC 6989 §2.1)"));
                }
                let mut shared = MontyForm::new(&y, *modp2048_params()).pow(&*x);
                let mut value = shared.retrieve();
                shared.zeroize();
                let out = Secret::from_slice(&value.to_be_bytes());
                value.zeroize();
                Ok(out)
            }
            Private::Ec(key) => {
                let peer_bytes = match self.method {
                    KeMethod::CURVE25519 => peer.data.clone(),
                    _ => [&[0x04u8][..], &peer.data].concat(),
                };
                let alg = key.algorithm();
                let shared = agreement::agree(
                    &key,
                    UnparsedPublicKey::new(alg, &peer_bytes),
                    invalid("not a valid point on the curve"),
                    |secret| Ok(Secret::from_slice(secret)),
                )?;
                if shared.expose().iter().all(|b| *b == 0) {
                    return Err(invalid("all-zero shared secret (RFC 8031 §2.2)"));
                }
                Ok(shared)
            }
        }
    }
}

fn alg_private_len(method: KeMethod) -> usize {
    match method {
        KeMethod::ECP384 => 48,
        KeMethod::ECP521 => 66,
        _ => 32,
    }
}
