//! Authentication with pre-shared keys (RFC 7296 §2.15), NAT detection (§2.23) and
//! stateless cookies (§2.6).

use std::net::IpAddr;

use aws_lc_rs::digest;

use super::Prf;
use crate::error::{Error, PeerMisbehaved};
use crate::packet::{Identity, IkeSpi};
use crate::secret::Secret;

/// The pad string of RFC 7296 §2.15.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The octets one side signs (or, with a PSK, MACs) in IKE_AUTH (RFC 7296 §2.15):
///
/// ```text
/// InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
/// ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
/// MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
/// MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
/// ```
///
/// `own_message` is the IKE_SA_INIT message this side sent, byte for byte as sent (the
/// request for the initiator, the response for the responder), `peer_nonce` the other
/// side's Nonce Data, `sk_p` SK_pi or SK_pr of this side ([`super::IkeKeys::sk_p`]).
pub fn signed_octets(
    prf: Prf,
    own_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &Secret,
    id: &Identity,
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p.expose(), &[&id.body()]);
    [own_message, peer_nonce, maced_id.expose()].concat()
}

/// The AUTH payload data for a shared key (RFC 7296 §2.15):
///
/// ```text
/// AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
/// ```
pub fn psk_auth(prf: Prf, psk: &Secret, signed_octets: &[u8]) -> Secret {
    let key = prf.compute(psk.expose(), &[KEY_PAD]);
    prf.compute(key.expose(), &[signed_octets])
}

/// Checks a received PSK AUTH payload in constant time.
pub fn verify_psk_auth(
    prf: Prf,
    psk: &Secret,
    signed_octets: &[u8],
    received: &[u8],
) -> Result<(), Error> {
    if psk_auth(prf, psk, signed_octets).ct_eq(received) {
        Ok(())
    } else {
        Err(PeerMisbehaved::AuthenticationFailed.into())
    }
}

/// The NAT_DETECTION_SOURCE_IP / NAT_DETECTION_DESTINATION_IP notification data
/// (RFC 7296 §2.23): `SHA-1(SPIi | SPIr | IP | Port)`, the address in network order (4 or
/// 16 octets) and the port as two octets. SHA-1 is what the RFC mandates here; it is a
/// fingerprint, not a security function. In the IKE_SA_INIT request SPIr is zero.
pub fn nat_detection_hash(spi_i: IkeSpi, spi_r: IkeSpi, ip: IpAddr, port: u16) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.0);
    ctx.update(&spi_r.0);
    match ip {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&port.to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref().get(..20).unwrap_or(&[0; 20]));
    out
}

/// A stateless responder cookie (RFC 7296 §2.6):
///
/// ```text
/// Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
/// ```
/// with SHA-256 as the hash and a 4-octet version: 36 octets, inside the 64-octet limit.
/// Verify by recomputing with the secret the version names, in constant time.
pub fn cookie(version: u32, secret: &Secret, ni: &[u8], ip_i: IpAddr, spi_i: IkeSpi) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(ni);
    match ip_i {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&spi_i.0);
    ctx.update(secret.expose());
    [&version.to_be_bytes()[..], ctx.finish().as_ref()].concat()
}
