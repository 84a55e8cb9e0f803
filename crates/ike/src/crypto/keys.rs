//! Key derivation: RFC 7296 §2.14 (IKE SA), §2.17 (Child SA) and §2.18 (IKE SA rekey).

use std::fmt;

use aws_lc_rs::hmac;

use super::dh::SharedSecret;
use super::sk::{Opener, Sealer};
use super::{ChildSuite, IkeSuite, Prf};
use crate::error::Error;
use crate::packet::IkeSpi;
use crate::secret::Secret;

/// Which end of the IKE SA we are: the original initiator or the original responder
/// (RFC 7296 §2.14 keys are named for these roles, not for who sends a given request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The original initiator (I flag set in our messages).
    Initiator,
    /// The original responder.
    Responder,
}

/// The seven keys of an IKE SA.
///
/// ```text
/// SKEYSEED = prf(Ni | Nr, g^ir)
/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
///                 = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
/// ```
/// RFC 7296 §2.14. SK_d, SK_pi and SK_pr are as long as the PRF output; SK_a* as the
/// integrity key (empty with an AEAD); SK_e* are the cipher key followed by the AEAD salt.
pub struct IkeKeys {
    suite: IkeSuite,
    sk_d: Secret,
    sk_ai: Secret,
    sk_ar: Secret,
    sk_ei: Secret,
    sk_er: Secret,
    sk_pi: Secret,
    sk_pr: Secret,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl IkeKeys {
    /// Keys of a new IKE SA from IKE_SA_INIT (§2.14). `ni`/`nr` are the Nonce Data,
    /// `spi_r` the responder's SPI from the IKE_SA_INIT response.
    pub fn derive(
        suite: IkeSuite,
        shared: &SharedSecret,
        ni: &[u8],
        nr: &[u8],
        spi_i: IkeSpi,
        spi_r: IkeSpi,
    ) -> Result<Self, Error> {
        let skeyseed = skeyseed(suite.prf.hmac(), ni, nr, shared.expose());
        Self::expand(suite, &skeyseed, ni, nr, spi_i, spi_r)
    }

    /// Keys of the IKE SA that replaces this one in a CREATE_CHILD_SA rekey (§2.18):
    ///
    /// ```text
    /// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
    /// ```
    /// with the *old* SA's PRF, then `prf+` of the new suite over the new nonces and the
    /// new SPIs (as strongSwan does: RFC 7296 §2.18 computes SKEYSEED "using SK_d from the
    /// existing IKE SA").
    pub fn derive_rekeyed(
        &self,
        new_suite: IkeSuite,
        shared: &SharedSecret,
        ni: &[u8],
        nr: &[u8],
        spi_i: IkeSpi,
        spi_r: IkeSpi,
    ) -> Result<Self, Error> {
        let skeyseed = rekey_skeyseed(
            self.suite.prf.hmac(),
            self.sk_d.expose(),
            shared.expose(),
            ni,
            nr,
        );
        Self::expand(new_suite, &skeyseed, ni, nr, spi_i, spi_r)
    }

    fn expand(
        suite: IkeSuite,
        skeyseed: &Secret,
        ni: &[u8],
        nr: &[u8],
        spi_i: IkeSpi,
        spi_r: IkeSpi,
    ) -> Result<Self, Error> {
        let prf_len = suite.prf.output_len();
        let a_len = suite.integ.map_or(0, |i| i.key_len());
        let e_len = suite.encr.keymat_len();
        let lens = [prf_len, a_len, a_len, e_len, e_len, prf_len, prf_len];
        let total = lens.iter().sum();
        let keymat = ike_keymat(
            suite.prf.hmac(),
            skeyseed.expose(),
            ni,
            nr,
            spi_i,
            spi_r,
            total,
        )?;
        let [sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr] = split(&keymat, lens);
        Ok(Self {
            suite,
            sk_d,
            sk_ai,
            sk_ar,
            sk_ei,
            sk_er,
            sk_pi,
            sk_pr,
        })
    }

    /// The suite these keys were derived for.
    pub fn suite(&self) -> IkeSuite {
        self.suite
    }

    /// SK_d: derives Child SA keys and the next IKE SA's SKEYSEED.
    pub fn sk_d(&self) -> &Secret {
        &self.sk_d
    }

    /// SK_pi: MACs the initiator's ID for AUTH (§2.15).
    pub fn sk_pi(&self) -> &Secret {
        &self.sk_pi
    }

    /// SK_pr: MACs the responder's ID for AUTH (§2.15).
    pub fn sk_pr(&self) -> &Secret {
        &self.sk_pr
    }

    /// SK_p for the given side's ID: SK_pi for the initiator, SK_pr for the responder.
    pub fn sk_p(&self, of: Role) -> &Secret {
        match of {
            Role::Initiator => &self.sk_pi,
            Role::Responder => &self.sk_pr,
        }
    }

    /// The SK payload protection for our side: we seal with our keys (SK_ei/SK_ai for the
    /// initiator) and open with the peer's.
    pub fn sk_crypto(&self, role: Role) -> Result<(Sealer, Opener), Error> {
        let (e_out, a_out, e_in, a_in) = match role {
            Role::Initiator => (&self.sk_ei, &self.sk_ai, &self.sk_er, &self.sk_ar),
            Role::Responder => (&self.sk_er, &self.sk_ar, &self.sk_ei, &self.sk_ai),
        };
        Ok((
            Sealer::new(
                self.suite.encr,
                self.suite.integ,
                e_out.expose(),
                a_out.expose(),
            )?,
            Opener::new(
                self.suite.encr,
                self.suite.integ,
                e_in.expose(),
                a_in.expose(),
            )?,
        ))
    }

    /// KEYMAT for a Child SA (§2.17), see [`ChildKeys::derive`].
    pub fn child_keys(
        &self,
        suite: &ChildSuite,
        pfs: Option<&SharedSecret>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<ChildKeys, Error> {
        ChildKeys::derive(self.suite.prf, &self.sk_d, suite.keymat_len(), pfs, ni, nr)
    }

    /// All seven keys in RFC order, for known-answer tests.
    #[cfg(test)]
    pub(crate) fn all(&self) -> [&Secret; 7] {
        [
            &self.sk_d,
            &self.sk_ai,
            &self.sk_ar,
            &self.sk_ei,
            &self.sk_er,
            &self.sk_pi,
            &self.sk_pr,
        ]
    }
}

/// Copies consecutive pieces of `keymat`; the caller's buffer is zeroized when it drops.
fn split<const N: usize>(keymat: &Secret, lens: [usize; N]) -> [Secret; N] {
    let mut at = 0;
    lens.map(|len| {
        let piece = keymat.expose().get(at..at + len).unwrap_or_default();
        at += len;
        Secret::from_slice(piece)
    })
}

/// The KEYMAT of one Child SA, split by direction.
///
/// ```text
/// KEYMAT = prf+(SK_d, Ni | Nr)                  (IKE_AUTH, CREATE_CHILD_SA without PFS)
/// KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)     (CREATE_CHILD_SA with PFS)
/// ```
/// RFC 7296 §2.17: keys for the initiator-to-responder SA come first; within a direction
/// the encryption key (and AEAD salt) precede the integrity key. Each half is exactly what
/// the `esp` crate's `SaConfig` takes as KEYMAT.
pub struct ChildKeys {
    /// KEYMAT of the SA carrying traffic from the initiator to the responder.
    pub i_to_r: Secret,
    /// KEYMAT of the SA carrying traffic from the responder to the initiator.
    pub r_to_i: Secret,
}

impl fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildKeys")
            .field("i_to_r", &self.i_to_r)
            .field("r_to_i", &self.r_to_i)
            .finish()
    }
}

impl ChildKeys {
    /// Derives `per_direction` bytes for each direction. `ni`/`nr` are the nonces of the
    /// exchange that created the Child SA (IKE_AUTH reuses those of IKE_SA_INIT).
    pub fn derive(
        prf: Prf,
        sk_d: &Secret,
        per_direction: usize,
        pfs: Option<&SharedSecret>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<Self, Error> {
        let keymat = child_keymat(
            prf.hmac(),
            sk_d.expose(),
            pfs.map(Secret::expose),
            ni,
            nr,
            2 * per_direction,
        )?;
        let [i_to_r, r_to_i] = split(&keymat, [per_direction, per_direction]);
        Ok(Self { i_to_r, r_to_i })
    }

    /// (outbound, inbound) KEYMAT for our role.
    pub fn for_role(&self, role: Role) -> (&Secret, &Secret) {
        match role {
            Role::Initiator => (&self.i_to_r, &self.r_to_i),
            Role::Responder => (&self.r_to_i, &self.i_to_r),
        }
    }
}

// The formulas, over any HMAC, so the NIST CAVP IKEv2 KDF vectors (HMAC-SHA-1) exercise
// exactly the code the SHA-2 PRFs run.

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (§2.14).
pub(crate) fn skeyseed(alg: hmac::Algorithm, ni: &[u8], nr: &[u8], gir: &[u8]) -> Secret {
    super::hmac_parts(alg, &[ni, nr].concat(), &[gir])
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` (§2.18).
pub(crate) fn rekey_skeyseed(
    alg: hmac::Algorithm,
    sk_d: &[u8],
    gir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    super::hmac_parts(alg, sk_d, &[gir_new, ni, nr])
}

/// `prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)` (§2.14).
pub(crate) fn ike_keymat(
    alg: hmac::Algorithm,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    len: usize,
) -> Result<Secret, Error> {
    super::prf_plus_with(alg, skeyseed, &[ni, nr, &spi_i.0, &spi_r.0], len)
}

/// `prf+(SK_d, [g^ir (new) |] Ni | Nr)` (§2.17).
pub(crate) fn child_keymat(
    alg: hmac::Algorithm,
    sk_d: &[u8],
    gir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<Secret, Error> {
    match gir_new {
        Some(g) => super::prf_plus_with(alg, sk_d, &[g, ni, nr], len),
        None => super::prf_plus_with(alg, sk_d, &[ni, nr], len),
    }
}
