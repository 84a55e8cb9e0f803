//! Known-answer tests, each from a published source (cited per test). Nothing here was
//! produced by this implementation.

use aws_lc_rs::hmac;
use hex_literal::hex;

use super::util::unhex;
use crate::crypto::keys::{child_keymat, ike_keymat, rekey_skeyseed, skeyseed};
use crate::crypto::sk::{IvChoice, Opener, Sealer};
use crate::crypto::{Encr, Integ, KeyExchange, Prf};
use crate::packet::iana::{ExchangeType, KeMethod, NotifyType, ProtocolId};
use crate::packet::{Flags, Header, IkeSpi, KePayload, Message, NotifyPayload, Payload};

// ---- RFC 4231: HMAC-SHA-256/384/512 test cases 1, 3, 4, 6, 7 (the PRFs) ----

struct Rfc4231 {
    key: Vec<u8>,
    data: Vec<u8>,
    sha256: &'static str,
    sha384: &'static str,
    sha512: &'static str,
}

fn rfc4231_cases() -> Vec<Rfc4231> {
    vec![
        // Test Case 1
        Rfc4231 {
            key: vec![0x0b; 20],
            data: b"Hi There".to_vec(),
            sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            sha384: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                     faea9ea9076ede7f4af152e8b2fa9cb6",
            sha512: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                     daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        },
        // Test Case 3
        Rfc4231 {
            key: vec![0xaa; 20],
            data: vec![0xdd; 50],
            sha256: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            sha384: "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b\
                     2a5ab39dc13814b94e3ab6e101a34f27",
            sha512: "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39\
                     bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
        },
        // Test Case 4
        Rfc4231 {
            key: (1..=25).collect(),
            data: vec![0xcd; 50],
            sha256: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            sha384: "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e\
                     6801dd23c4a7d679ccf8a386c674cffb",
            sha512: "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db\
                     a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
        },
        // Test Case 6
        Rfc4231 {
            key: vec![0xaa; 131],
            data: b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            sha256: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            sha384: "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
                     0c2ef6ab4030fe8296248df163f44952",
            sha512: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
                     6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        },
        // Test Case 7
        Rfc4231 {
            key: vec![0xaa; 131],
            data: b"This is a test using a larger than block-size key and a larger than \
                    block-size data. The key needs to be hashed before being used by the \
                    HMAC algorithm."
                .to_vec(),
            sha256: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            sha384: "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5\
                     a678cc31e799176d3860e6110c46523e",
            sha512: "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944\
                     b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
        },
    ]
}

#[test]
fn prf_hmac_sha2_rfc4231() {
    for (i, case) in rfc4231_cases().iter().enumerate() {
        for (prf, expected) in [
            (Prf::HmacSha256, case.sha256),
            (Prf::HmacSha384, case.sha384),
            (Prf::HmacSha512, case.sha512),
        ] {
            // Split the data to check that `compute` concatenates its parts.
            let (a, b) = case.data.split_at(case.data.len() / 2);
            let out = prf.compute(&case.key, &[a, b]);
            assert_eq!(out.expose(), unhex(expected), "case {i} {prf:?}");
            assert_eq!(out.len(), prf.output_len());
        }
    }
}

/// RFC 4868 §2.7.2 authenticator test cases 1 and 2: HMAC-SHA-256-128, -384-192 and
/// -512-256 with keys of the full hash length (the INTEG transforms' key and ICV sizes).
#[test]
fn integ_hmac_sha2_truncated_rfc4868() {
    let cases: [(Integ, Vec<u8>, &[u8], &str); 6] = [
        (
            Integ::HmacSha256_128,
            vec![0x0b; 32],
            b"Hi There",
            "198a607eb44bfbc69903a0f1cf2bbdc5",
        ),
        (
            Integ::HmacSha384_192,
            vec![0x0b; 48],
            b"Hi There",
            "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973",
        ),
        (
            Integ::HmacSha512_256,
            vec![0x0b; 64],
            b"Hi There",
            "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8",
        ),
        (
            Integ::HmacSha256_128,
            b"JefeJefeJefeJefeJefeJefeJefeJefe".to_vec(),
            b"what do ya want for nothing?",
            "167f928588c5cc2eef8e3093caa0e87c",
        ),
        (
            Integ::HmacSha384_192,
            b"JefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefe".to_vec(),
            b"what do ya want for nothing?",
            "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d",
        ),
        (
            Integ::HmacSha512_256,
            b"JefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefeJefe".to_vec(),
            b"what do ya want for nothing?",
            "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454",
        ),
    ];
    for (integ, key, data, expected) in cases {
        assert_eq!(key.len(), integ.key_len());
        let tag = hmac::sign(&hmac::Key::new(integ.hmac(), &key), data);
        assert_eq!(
            &tag.as_ref()[..integ.icv_len()],
            unhex(expected),
            "{integ:?}"
        );
    }
}

/// NIST CAVP IKEv2 KDF (SP 800-135) vector with HMAC-SHA-1, as published in libreswan's
/// CAVS test driver (`libreswan-ikev2-cavs`, `-h 2`, DKM length 132): covers SKEYSEED
/// (§2.14), the IKE SA `prf+` seed, Child SA KEYMAT without and with PFS (§2.17) and the
/// rekey SKEYSEED (§2.18) through the same functions the SHA-2 PRFs use.
#[test]
fn ikev2_kdf_nist_cavp_sha1() {
    let alg = hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY;
    let gir = hex!("4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52");
    let gir_new = hex!("863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330");
    let ni = hex!("32b50d5f4a3763f3");
    let nr = hex!("9206a04b26564cb1");
    let spi_i = IkeSpi(hex!("34c9e7c188868785"));
    let spi_r = IkeSpi(hex!("3ff77d760d2b2199"));

    let seed = skeyseed(alg, &ni, &nr, &gir);
    assert_eq!(
        seed.expose(),
        hex!("a9a7b222b59f8f48645f28a1db5b5f5d7479cba7")
    );

    let dkm = ike_keymat(alg, seed.expose(), &ni, &nr, spi_i, spi_r, 132).unwrap();
    assert_eq!(
        dkm.expose(),
        unhex(
            "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062
             768b76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702
             c979fa280870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249
             520a441a81157435a7a56cc4"
        )
    );
    let sk_d = &dkm.expose()[..20];

    let child = child_keymat(alg, sk_d, None, &ni, &nr, 132).unwrap();
    assert_eq!(
        child.expose(),
        unhex(
            "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1cdabd95
             60b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b9545c7eb35cf
             5580b1e521a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e614296d319d41d4b50b3f51
             0b1c0a22f3e664994d234cb4"
        )
    );

    let child_pfs = child_keymat(alg, sk_d, Some(&gir_new), &ni, &nr, 132).unwrap();
    assert_eq!(
        child_pfs.expose(),
        unhex(
            "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d37301628190e38c66232ea
             b4b3ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36b0e7ef53aaed31eba4a508
             0d7d4b5666023a8bbb5ffb7857240f9a05884d1b7d2f933708450b7b3288f1fc863ab49fa901227c
             ffc06e27899c7054d56fd74c"
        )
    );

    let rekey = rekey_skeyseed(alg, sk_d, &gir_new, &ni, &nr);
    assert_eq!(
        rekey.expose(),
        hex!("63e81194946ebd05df7df5ebf5d8750056bf1f1d")
    );
}

// ---- Key exchange ----

fn check_pair(method: KeMethod, i: &[u8], gi: &[u8], r: &[u8], gr: &[u8], shared: &[u8]) {
    let ki = KeyExchange::from_private(method, i).unwrap();
    let kr = KeyExchange::from_private(method, r).unwrap();
    assert_eq!(ki.public_value(), gi, "{method} initiator public value");
    assert_eq!(kr.public_value(), gr, "{method} responder public value");
    let s1 = ki
        .agree(&KePayload {
            method,
            data: gr.to_vec(),
        })
        .unwrap();
    let s2 = kr
        .agree(&KePayload {
            method,
            data: gi.to_vec(),
        })
        .unwrap();
    assert_eq!(s1.expose(), shared, "{method} shared secret (initiator)");
    assert_eq!(s2.expose(), shared, "{method} shared secret (responder)");
}

/// RFC 7748 §6.1 (Alice and Bob), the X25519 function of group 31 (RFC 8031).
#[test]
fn x25519_rfc7748() {
    check_pair(
        KeMethod::CURVE25519,
        &hex!("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        &hex!("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
        &hex!("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
        &hex!("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
        &hex!("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
    );
}

/// RFC 8031 Appendix A: the IKEv2 Curve25519 example.
#[test]
fn x25519_rfc8031() {
    check_pair(
        KeMethod::CURVE25519,
        &hex!("751fb4308655b476b6789b7325f9ea8cddd16a58533ff6d9e60009464a5f9d94"),
        &hex!("48d5ddd4061257ba166fa3f9bbdb74f1a4e81c089384fa77f790709f0dfbc766"),
        &hex!("0a54645253290d60ddadd0e030bacd9e5501efdc220755a1e978f1b839a05688"),
        &hex!("0be7c1f5aad87d7e448662673298a443478b859745179eaf564c79c0ef6eee25"),
        &hex!("c74950607a12327f3204d94b6825bfb068b7f8319a9e3708ed3d43ce8130c950"),
    );
}

/// RFC 5903 §8.1: 256-bit random ECP group (19). KE data is `gx | gy` (no SEC1 prefix),
/// the shared secret the x-coordinate `girx` (§7, §9 errata-free form).
#[test]
fn ecp256_rfc5903() {
    check_pair(
        KeMethod::ECP256,
        &hex!("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433"),
        &hex!(
            "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180"
            "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3"
        ),
        &hex!("c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53"),
        &hex!(
            "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63"
            "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab"
        ),
        &hex!("d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"),
    );
}

/// RFC 5903 §8.2: 384-bit random ECP group (20).
#[test]
fn ecp384_rfc5903() {
    check_pair(
        KeMethod::ECP384,
        &hex!(
            "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655"
            "e35b538041e649ee3faef896783ab194"
        ),
        &hex!(
            "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6"
            "de3ac808acb4bdb4c88732aee95f41aa9482ed1fc0eeb9cafc4984625ccfc23f"
            "65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c"
        ),
        &hex!(
            "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942"
            "e0308312916b8ed2960e4bd55a7448fc"
        ),
        &hex!(
            "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d"
            "0d1ac43a0336def96fda41d0774a3571dcfbec7aacf3196472169e838430367f"
            "66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c"
        ),
        &hex!(
            "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4"
            "d603135569b9e9d09cf5d4a270f59746"
        ),
    );
}

/// RFC 5903 §8.3: 521-bit random ECP group (21); coordinates are 66 octets.
#[test]
fn ecp521_rfc5903() {
    check_pair(
        KeMethod::ECP521,
        &hex!(
            "0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a0"
            "95aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d"
            "4a52"
        ),
        &hex!(
            "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbe"
            "e1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176c"
            "ed3e017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4"
            "a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3"
            "926f9582"
        ),
        &hex!(
            "0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e"
            "9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb15168"
            "5eb9"
        ),
        &hex!(
            "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a21"
            "9b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9"
            "460f015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d985207"
            "7b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd1"
            "7f0fc56a"
        ),
        &hex!(
            "01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04"
            "d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3"
            "ddea"
        ),
    );
}

/// MODP group 14 with the vector from strongSwan's `test_vectors` plugin
/// (`src/libstrongswan/plugins/test_vectors/test_vectors/modp.c`, `modp2048`: strongSwan
/// generated it, there being no RFC vector). Interop-relevant: it is what the peer computes.
#[test]
fn modp2048_strongswan_vector() {
    check_pair(
        KeMethod::MODP2048,
        &hex!(
            "af3bfd3862caa11774ce2b74840807c1de5cd6a7619bb3a0c7af39eedaa6eb89"
            "e2e9c144b3625b2731879cb58fa3766d"
        ),
        &hex!(
            "1a27c5a7237ae8fe0a71c0af6494faeccdd4a5031d47a1a6b7162dfcdf03bb17"
            "b7bb089bd652a5f31b3661bb114d7c48d83d244f46db64870c9c8327f1a830ab"
            "f531e518dd521a2e94e7061e944209ba5331012b3dff00849eaab58c7c7af152"
            "65210fbcf0f87b9dd932f8ba4e9a9f91b63294530a1200b88b3a03e1a0c7fd34"
            "deec6fad501ede06ce7ec9e291d47b69b3a4b61bb08763b6d46bfbdab97bdece"
            "a0ff09a872221fb4b6ccca6b5c6faad8eb873b9a2f39b63e62cfadd47607e68e"
            "2c290583f7268fb43fc00a7dc8810ecdac1a59bd1b477aaf41cb4b24ada3e5f7"
            "b8cb986f1ae476afc7677aa62570a1b1838dda26be7863ee2f40b5e538a4e181"
        ),
        &hex!(
            "77a48e4772e23e284ce4af81399dcd589beb7cefbcc9d196f06dcfdfc3a88e3b"
            "4c1c82befec0e64ba495ccde329936ce"
        ),
        &hex!(
            "667282318d65cb05cd323c25091e664cc75a3a20c014b2f6389d3b27f5c1e908"
            "e0d40ff8552bd587752550302285b49f75f8ffaec937fb2e69c8150f88d6508b"
            "f0fb1f16e9676f5ecf718f874f3d8de3c8688749dbcf1affd4d62ff9ea5d9e30"
            "35b2ce4a6eae281c408fc8084ae235d998a037610a8cb48c878cd0635fa1369f"
            "c90b864c532367384597fdeefdb6742b006adedae2015bc4ce2f9c5451c9636a"
            "16ed7d10b4e40d825b50aa7633a0e8fb813bebc049f7ff6a71ecfb14e880f509"
            "d38b571a809808a496b451b5b5567a3608b01a22e4998355f181b879de262304"
            "f29de142ff5e52cc564f3a2d1e84a0c33d8f3da7bf6412b3f018e00d90fa5b94"
        ),
        &hex!(
            "26f9e8457cf2d7d56dd819c2a867d7c3a90aa2b944e20b8bded3a5bf91aa1ff8"
            "1a7ea89d524c365f3823510835cd8644c4d5dacf893e610d2c1a140616d1c8c1"
            "d35f46de2c5faad9aecec6b677acd984098142a8aa0c8542e9ac98b3bc7b577c"
            "59b8ec53346e1567a90039ac92b224635ab216731b06353925642c330a201ba4"
            "b31284a9515860f35e9308f5515a779984fbd9f5ce4177db78d1cb0384b63c73"
            "9c6d744ad7a700b95a531b29f3b744ed38e69aee67072c45a91cee6b14215e04"
            "f27c31358c86dce448d60a223bdc554edaa3e4072ef603a0f4619f8db39cec29"
            "1c860174155d8abf9e1082931df58ed9ee9c1215dd2393de02f5c1767f070e28"
        ),
    );
}

/// The RFC 3526 §3 prime: its structure (top and bottom 64 bits set), and that 2 has
/// order dividing p-1 (Fermat), through the same Montgomery code the exchange uses.
#[test]
fn modp2048_prime_rfc3526() {
    use crate::crypto::dh::MODP2048_PRIME_HEX;
    assert_eq!(MODP2048_PRIME_HEX.len(), 512);
    assert!(MODP2048_PRIME_HEX.starts_with("FFFFFFFFFFFFFFFFC90FDAA22168C234"));
    assert!(MODP2048_PRIME_HEX.ends_with("15728E5A8AACAA68FFFFFFFFFFFFFFFF"));
    // Fermat: 2^(p-1) = 1 (mod p), with the Montgomery arithmetic the exchange runs on.
    use crypto_bigint::modular::{MontyForm, MontyParams};
    use crypto_bigint::{Odd, U2048};
    let p = Odd::<U2048>::from_be_hex(MODP2048_PRIME_HEX);
    let params = MontyParams::new(p);
    let two = MontyForm::new(&U2048::from_u8(2), params);
    let p_minus_1 = p.as_ref().wrapping_sub(&U2048::ONE);
    assert_eq!(two.pow(&p_minus_1).retrieve(), U2048::ONE);
    // ...and 2 generates the subgroup of order q = (p-1)/2 (2 is a quadratic residue).
    let q = p_minus_1.shr_vartime(1);
    assert_eq!(two.pow(&q).retrieve(), U2048::ONE);
}

// ---- SK payload ----

/// RFC 7634 Appendix B: the IKEv2 example, an INFORMATIONAL request protected with
/// ChaCha20-Poly1305 holding one Notify (SET_WINDOW_SIZE 10). Opened, and re-sealed with
/// the same IV to the same bytes.
#[test]
fn sk_chacha20poly1305_rfc7634_appendix_b() {
    let sk_e = hex!(
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" // key
        "a0a1a2a3" // salt
    );
    let datagram = hex!(
        "c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e 20 25 00 00000009 00000045" // IKE header
        "29 00 0029"                                                     // SK header
        "1011121314151617"                                               // IV
        "610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2"     // ct | tag
    );
    let opener = Opener::new(Encr::ChaCha20Poly1305, None, &sk_e, &[]).unwrap();
    let d = opener.open(&datagram).unwrap();
    let notify = NotifyPayload {
        protocol: ProtocolId::NONE,
        spi: vec![],
        notify_type: NotifyType::SET_WINDOW_SIZE,
        data: hex!("0000000a").to_vec(),
    };
    assert_eq!(d.payloads, vec![Payload::Notify(notify.clone())]);
    assert!(d.unprotected.is_empty());
    let header = Header::new(
        IkeSpi(hex!("c0c1c2c3c4c5c6c7")),
        IkeSpi(hex!("d0d1d2d3d4d5d6d7")),
        ExchangeType::INFORMATIONAL,
        Flags(0),
        9,
    );
    assert_eq!(d.header, header);

    let mut sealer = Sealer::new(Encr::ChaCha20Poly1305, None, &sk_e, &[]).unwrap();
    let sealed = sealer
        .seal_with(
            &header,
            &[],
            &[Payload::Notify(notify)],
            IvChoice::Fixed(&hex!("1011121314151617")),
        )
        .unwrap();
    assert_eq!(sealed, datagram);

    // The outer message decodes with the SK payload still sealed.
    let m = Message::decode(&datagram).unwrap();
    assert!(matches!(m.payloads.as_slice(), [Payload::Encrypted(e)] if e.body.len() == 37));
}
