//! The crypto suite's failure paths and invariants: SK tampering and padding, key-exchange
//! validation, IV behaviour, key lengths, redaction.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce as AeadNonce, UnboundKey, CHACHA20_POLY1305};
use hex_literal::hex;

use super::util::TestRng;
use crate::crypto::auth::{cookie, nat_detection_hash};
use crate::crypto::dh::{public_len, MODP2048_PRIME_HEX};
use crate::crypto::sk::{IvChoice, Opener, Sealer};
use crate::crypto::{Encr, IkeKeys, IkeSuite, Integ, KeyExchange, Prf, Role};
use crate::error::{Error, PeerMisbehaved};
use crate::packet::iana::{ExchangeType, KeMethod, NotifyType};
use crate::packet::{Flags, Header, IkeSpi, KePayload, NotifyPayload, Payload};
use crate::secret::Secret;

const SUITES: [(Encr, Option<Integ>); 5] = [
    (Encr::AesGcm16_128, None),
    (Encr::AesGcm16_256, None),
    (Encr::ChaCha20Poly1305, None),
    (Encr::AesCbc128, Some(Integ::HmacSha256_128)),
    (Encr::AesCbc256, Some(Integ::HmacSha512_256)),
];

fn header() -> Header {
    Header::new(
        IkeSpi::from(0x0102_0304_0506_0708),
        IkeSpi::from(0x1112_1314_1516_1718),
        ExchangeType::INFORMATIONAL,
        Flags::INITIATOR,
        3,
    )
}

fn keys(encr: Encr, integ: Option<Integ>) -> (Vec<u8>, Vec<u8>) {
    let e = (0..encr.keymat_len()).map(|i| i as u8).collect();
    let a = (0..integ.map_or(0, Integ::key_len))
        .map(|i| 0x80 | i as u8)
        .collect();
    (e, a)
}

fn payloads() -> Vec<Payload> {
    vec![
        Payload::Notify(NotifyPayload::new(NotifyType::INITIAL_CONTACT, vec![])),
        Payload::VendorId(b"some vendor id".to_vec()),
    ]
}

#[test]
fn sk_round_trip_every_suite() {
    let rng = &mut TestRng(5);
    for (encr, integ) in SUITES {
        let (e, a) = keys(encr, integ);
        let mut sealer = Sealer::new(encr, integ, &e, &a).unwrap();
        let opener = Opener::new(encr, integ, &e, &a).unwrap();
        for inner in [vec![], payloads()] {
            for unprotected in [vec![], vec![Payload::VendorId(vec![1, 2, 3])]] {
                let dgram = sealer.seal(&header(), &unprotected, &inner, rng).unwrap();
                let d = opener.open(&dgram).unwrap();
                assert_eq!(d.header, header(), "{encr:?}");
                assert_eq!(d.payloads, inner, "{encr:?}");
                assert_eq!(d.unprotected, unprotected, "{encr:?}");
                if !encr.is_aead() {
                    // IV + whole blocks + ICV.
                    let sk_body = dgram.len() - 28 - 4 - unprotected.len() * 7;
                    let icv = integ.unwrap().icv_len();
                    assert_eq!((sk_body - 16 - icv) % 16, 0, "{encr:?}");
                }
            }
        }
    }
}

#[test]
fn every_tampered_byte_is_rejected_before_parsing() {
    let rng = &mut TestRng(6);
    for (encr, integ) in SUITES {
        let (e, a) = keys(encr, integ);
        let mut sealer = Sealer::new(encr, integ, &e, &a).unwrap();
        let opener = Opener::new(encr, integ, &e, &a).unwrap();
        let dgram = sealer.seal(&header(), &[], &payloads(), rng).unwrap();
        for i in 0..dgram.len() {
            let mut bad = dgram.clone();
            bad[i] ^= 0x01;
            let r = opener.open(&bad);
            assert!(r.is_err(), "{encr:?} byte {i} accepted");
            // Past the generic header, only the integrity check can notice.
            if i >= 32 {
                assert_eq!(
                    r.unwrap_err(),
                    Error::PeerMisbehaved(PeerMisbehaved::IntegrityCheckFailed),
                    "{encr:?} byte {i}"
                );
            }
        }
        // Integrity failures are dropped, not answered.
        assert_eq!(
            Error::from(PeerMisbehaved::IntegrityCheckFailed).notify(),
            None
        );
        // Truncations never panic.
        for n in 0..dgram.len() {
            assert!(opener.open(&dgram[..n]).is_err());
        }
        // A different authenticating key (SK_e for an AEAD, SK_a for CBC) fails the check.
        let (mut e2, mut a2) = keys(encr, integ);
        if encr.is_aead() {
            e2[0] ^= 1;
        } else {
            a2[0] ^= 1;
        }
        let other = Opener::new(encr, integ, &e2, &a2).unwrap();
        assert_eq!(
            other.open(&dgram).unwrap_err(),
            Error::PeerMisbehaved(PeerMisbehaved::IntegrityCheckFailed)
        );
    }
}

#[test]
fn unencrypted_message_is_reported() {
    let (e, a) = keys(Encr::AesGcm16_128, None);
    let opener = Opener::new(Encr::AesGcm16_128, None, &e, &a).unwrap();
    let clear = crate::packet::Message {
        header: header(),
        payloads: payloads(),
    }
    .encode()
    .unwrap();
    assert_eq!(
        opener.open(&clear).unwrap_err(),
        Error::PeerMisbehaved(PeerMisbehaved::NotEncrypted)
    );
}

#[test]
fn impossible_pad_length_after_a_valid_tag() {
    // Authentic ciphertext (we hold the key) whose Pad Length exceeds the plaintext.
    let key_bytes = [7u8; 32];
    let salt = [1u8, 2, 3, 4];
    let sk_e = [&key_bytes[..], &salt[..]].concat();
    let mut msg = Vec::new();
    header().encode(
        crate::packet::iana::PayloadType::SK,
        28 + 4 + 8 + 3 + 16,
        &mut msg,
    );
    msg.extend_from_slice(&[0x29, 0, 0, 4 + 8 + 3 + 16]);
    let aad = msg.clone();
    let iv = [0u8; 8];
    msg.extend_from_slice(&iv);
    let mut plain = vec![0xaa, 0xbb, 200];
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key_bytes).unwrap());
    let nonce = AeadNonce::assume_unique_for_key([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(&aad), &mut plain)
        .unwrap();
    msg.extend_from_slice(&plain);
    msg.extend_from_slice(tag.as_ref());
    let opener = Opener::new(Encr::ChaCha20Poly1305, None, &sk_e, &[]).unwrap();
    let e = opener.open(&msg).unwrap_err();
    assert_eq!(e, Error::PeerMisbehaved(PeerMisbehaved::BadPadding));
    assert_eq!(e.notify().unwrap().notify_type, NotifyType::INVALID_SYNTAX);
}

#[test]
fn ivs_are_unique() {
    let rng = &mut TestRng(8);
    for (encr, integ) in SUITES {
        let (e, a) = keys(encr, integ);
        let mut sealer = Sealer::new(encr, integ, &e, &a).unwrap();
        let one = sealer.seal(&header(), &[], &payloads(), rng).unwrap();
        let two = sealer.seal(&header(), &[], &payloads(), rng).unwrap();
        let iv = |d: &[u8]| d[32..32 + encr.iv_len()].to_vec();
        assert_ne!(iv(&one), iv(&two), "{encr:?}");
        if encr.is_aead() {
            assert_eq!(iv(&one), 0u64.to_be_bytes());
            assert_eq!(iv(&two), 1u64.to_be_bytes());
        }
    }
    // A fixed IV of the wrong size is refused.
    let (e, a) = keys(Encr::AesCbc128, Some(Integ::HmacSha256_128));
    let mut s = Sealer::new(Encr::AesCbc128, Some(Integ::HmacSha256_128), &e, &a).unwrap();
    assert!(s
        .seal_with(&header(), &[], &[], IvChoice::Fixed(&[0; 8]))
        .is_err());
}

#[test]
fn key_lengths_are_checked() {
    for (encr, integ) in SUITES {
        let (e, a) = keys(encr, integ);
        assert!(Sealer::new(encr, integ, &e[1..], &a).is_err());
        assert!(Opener::new(encr, integ, &e, &[a.as_slice(), &[0]].concat()).is_err());
        // AEAD with an integrity algorithm, or CBC without one.
        let flipped = if integ.is_some() {
            None
        } else {
            Some(Integ::HmacSha256_128)
        };
        assert!(Sealer::new(encr, flipped, &e, &a).is_err());
    }
}

#[test]
fn ike_keys_lengths_and_roles() {
    let rng = &mut TestRng(9);
    let suite = IkeSuite {
        encr: Encr::AesCbc256,
        prf: Prf::HmacSha384,
        integ: Some(Integ::HmacSha256_128),
        ke: KeMethod::ECP256,
    };
    let a = KeyExchange::generate(KeMethod::ECP256, rng).unwrap();
    let b = KeyExchange::generate(KeMethod::ECP256, rng).unwrap();
    let pb = b.ke_payload();
    let g = a.agree(&pb).unwrap();
    let keys = IkeKeys::derive(
        suite,
        &g,
        &[1; 16],
        &[2; 16],
        IkeSpi::from(1),
        IkeSpi::from(2),
    )
    .unwrap();
    let lens: Vec<usize> = keys.all().iter().map(|k| k.len()).collect();
    assert_eq!(lens, vec![48, 32, 32, 32, 32, 48, 48]);
    assert!(keys.sk_p(Role::Initiator).ct_eq(keys.sk_pi().expose()));
    // Each side opens what the other seals.
    let (mut si, oi) = keys.sk_crypto(Role::Initiator).unwrap();
    let (mut sr, or) = keys.sk_crypto(Role::Responder).unwrap();
    let m = si.seal(&header(), &[], &payloads(), rng).unwrap();
    assert!(or.open(&m).is_ok());
    assert!(oi.open(&m).is_err());
    let m = sr.seal(&header(), &[], &payloads(), rng).unwrap();
    assert!(oi.open(&m).is_ok());
    // prf+ is limited to 255 blocks.
    assert!(Prf::HmacSha256.prf_plus(b"k", &[b"s"], 255 * 32).is_ok());
    assert!(Prf::HmacSha256
        .prf_plus(b"k", &[b"s"], 255 * 32 + 1)
        .is_err());
}

#[test]
fn debug_output_never_shows_key_material() {
    let s = Secret::new(vec![0x41; 8]);
    assert_eq!(format!("{s:?}"), "Secret(<8 bytes redacted>)");
    let rng = &mut TestRng(10);
    let kx = KeyExchange::generate(KeMethod::CURVE25519, rng).unwrap();
    let dbg = format!("{kx:?}");
    assert!(dbg.contains("CURVE25519") && !dbg.contains("private"));
    let (e, a) = keys(Encr::AesCbc128, Some(Integ::HmacSha256_128));
    let sealer = Sealer::new(Encr::AesCbc128, Some(Integ::HmacSha256_128), &e, &a).unwrap();
    assert_eq!(format!("{sealer:?}"), "Sealer { encr: AesCbc128, .. }");
}

fn modp_peer(y: &[u8]) -> KePayload {
    KePayload {
        method: KeMethod::MODP2048,
        data: y.to_vec(),
    }
}

#[test]
fn modp_peer_values_are_validated() {
    let p = super::util::unhex(MODP2048_PRIME_HEX);
    let mut p_minus_1 = p.clone();
    *p_minus_1.last_mut().unwrap() -= 1;
    let mut two = vec![0u8; 256];
    two[255] = 2;
    let mut one = vec![0u8; 256];
    one[255] = 1;
    let rng = &mut TestRng(11);
    for (y, ok) in [
        (vec![0u8; 256], false),
        (one, false),
        (p_minus_1, false),
        (p.clone(), false),
        (vec![0xff; 256], false),
        (two, true),
        (vec![0u8; 255], false),
        (vec![0u8; 257], false),
    ] {
        let kx = KeyExchange::generate(KeMethod::MODP2048, rng).unwrap();
        let r = kx.agree(&modp_peer(&y));
        assert_eq!(r.is_ok(), ok, "{:02x?}...", &y[..4.min(y.len())]);
        if let Err(e) = r {
            assert!(matches!(
                e,
                Error::PeerMisbehaved(PeerMisbehaved::InvalidKePublicValue { .. })
            ));
            assert_eq!(e.notify().unwrap().notify_type, NotifyType::INVALID_SYNTAX);
        }
    }
}

#[test]
fn ec_peer_values_are_validated() {
    let rng = &mut TestRng(12);
    for method in [
        KeMethod::ECP256,
        KeMethod::ECP384,
        KeMethod::ECP521,
        KeMethod::CURVE25519,
    ] {
        let len = public_len(method).unwrap();
        let own = KeyExchange::generate(method, rng).unwrap();
        assert_eq!(own.public_value().len(), len);
        // Wrong length.
        let kx = KeyExchange::generate(method, rng).unwrap();
        assert!(kx
            .agree(&KePayload {
                method,
                data: vec![1; len - 1]
            })
            .is_err());
        // Wrong group: INVALID_KE_PAYLOAD naming ours.
        let kx = KeyExchange::generate(method, rng).unwrap();
        let e = kx
            .agree(&KePayload {
                method: KeMethod::MODP2048,
                data: vec![1; 256],
            })
            .unwrap_err();
        let n = e.notify().unwrap();
        assert_eq!(n.notify_type, NotifyType::INVALID_KE_PAYLOAD);
        assert_eq!(n.data, method.0.to_be_bytes());
        // Not a point / a low-order point.
        let kx = KeyExchange::generate(method, rng).unwrap();
        let bad = if method == KeMethod::CURVE25519 {
            vec![0; 32] // order-1 point: the shared secret would be all zeros
        } else {
            vec![0x42; len] // (0x42.., 0x42..) is not on the curve
        };
        let e = kx.agree(&KePayload { method, data: bad }).unwrap_err();
        assert!(
            matches!(
                e,
                Error::PeerMisbehaved(PeerMisbehaved::InvalidKePublicValue { .. })
            ),
            "{method}: {e:?}"
        );
        // A fresh pair agrees.
        let a = KeyExchange::generate(method, rng).unwrap();
        let b = KeyExchange::generate(method, rng).unwrap();
        let (pa, pb) = (a.ke_payload(), b.ke_payload());
        assert!(a.agree(&pb).unwrap().ct_eq(b.agree(&pa).unwrap().expose()));
    }
    assert!(KeyExchange::generate(KeMethod::MODP1024, rng).is_err());
}

#[test]
fn nat_detection_and_cookies() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let i = IkeSpi(hex!("0102030405060708"));
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let h = nat_detection_hash(i, IkeSpi::ZERO, v4, 500);
    // SHA-1 over SPIi | SPIr | IP | port, computed independently of the helper.
    let input = hex!("0102030405060708 0000000000000000 c0000201 01f4");
    let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    assert_eq!(&h[..], expected.as_ref());
    assert_ne!(h, nat_detection_hash(i, IkeSpi::ZERO, v4, 4500));
    let v6 = nat_detection_hash(i, IkeSpi::ZERO, IpAddr::V6(Ipv6Addr::LOCALHOST), 500);
    assert_ne!(h, v6);

    let secret = Secret::new(vec![9; 32]);
    let c = cookie(7, &secret, &[1; 32], v4, i);
    assert_eq!(c.len(), 36);
    assert_eq!(&c[..4], &[0, 0, 0, 7]);
    assert_eq!(c, cookie(7, &secret, &[1; 32], v4, i));
    assert_ne!(c, cookie(7, &Secret::new(vec![8; 32]), &[1; 32], v4, i));
}
