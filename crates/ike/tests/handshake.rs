//! IKE_SA_INIT + IKE_AUTH (PSK) + CREATE_CHILD_SA keying between two sides, driven by hand
//! through the public API only: the shape the `IkeSa` state machine will take, and a check
//! that both ends derive the same keys for each of the issue's proposal pairs.

use std::net::{IpAddr, Ipv4Addr};

use ike::crypto::auth::{nat_detection_hash, psk_auth, signed_octets, verify_psk_auth};
use ike::packet::iana::*;
use ike::packet::*;
use ike::proposal::{select, verify_choice, SelectOptions};
use ike::{
    ChildSuite, Error, IkeKeys, IkeSuite, KeyExchange, PeerMisbehaved, Proposal, RandomError, Rng,
    Role, Secret,
};

struct TestRng(u64);

impl Rng for TestRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), RandomError> {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

fn find<'a, T>(payloads: &'a [Payload], f: impl Fn(&'a Payload) -> Option<&'a T>) -> &'a T {
    payloads.iter().find_map(f).expect("payload present")
}

struct Outcome {
    child_i: (Secret, Secret),
    child_r: (Secret, Secret),
    keys_i: IkeKeys,
    keys_r: IkeKeys,
}

/// Runs IKE_SA_INIT and IKE_AUTH; returns both sides' IKE and Child SA keys.
fn handshake(ike_cfg: &str, esp_cfg: &str, psk_i: &[u8], psk_r: &[u8]) -> Result<Outcome, Error> {
    let rng = &mut TestRng(7);
    let ike_props = Proposal::parse_list(ProtocolId::IKE, ike_cfg).unwrap();
    let esp_props = Proposal::parse_list(ProtocolId::ESP, esp_cfg).unwrap();
    let ip_i = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let ip_r = IpAddr::V4(Ipv4Addr::new(172, 16, 1, 2));

    // ---- initiator: IKE_SA_INIT request ----
    let spi_i = IkeSpi::from(0x1111_2222_3333_4444);
    let kx_i = KeyExchange::generate(ike_props[0].ke[0], rng)?;
    let ni = Nonce::random(rng, 32)?;
    let msg1 = MessageBuilder::new(
        spi_i,
        IkeSpi::ZERO,
        ExchangeType::IKE_SA_INIT,
        Flags::INITIATOR,
        0,
    )
    .payload(Proposal::sa_payload(&ike_props, &[]))
    .payload(kx_i.ke_payload())
    .payload(ni.clone())
    .payload(NotifyPayload::new(
        NotifyType::NAT_DETECTION_SOURCE_IP,
        nat_detection_hash(spi_i, IkeSpi::ZERO, ip_i, 500).to_vec(),
    ))
    .payload(NotifyPayload::new(
        NotifyType::NAT_DETECTION_DESTINATION_IP,
        nat_detection_hash(spi_i, IkeSpi::ZERO, ip_r, 500).to_vec(),
    ))
    .encode()?;

    // ---- responder ----
    let m1 = Message::decode(&msg1)?;
    let sa = find(&m1.payloads, |p| {
        if let Payload::Sa(s) = p {
            Some(s)
        } else {
            None
        }
    });
    let chosen = select(sa, &ike_props, SelectOptions::default())?;
    let suite = IkeSuite::from_proposal(&chosen.proposal)?;
    let ke_i = find(&m1.payloads, |p| {
        if let Payload::Ke(k) = p {
            Some(k)
        } else {
            None
        }
    });
    let ni_r = find(&m1.payloads, |p| {
        if let Payload::Nonce(n) = p {
            Some(n)
        } else {
            None
        }
    });
    // NAT detection: the responder recomputes what it sees.
    let nat_dst = m1.notify(NotifyType::NAT_DETECTION_DESTINATION_IP).unwrap();
    assert_eq!(
        nat_dst.data,
        nat_detection_hash(spi_i, IkeSpi::ZERO, ip_r, 500)
    );
    let spi_r = IkeSpi::from(0x5555_6666_7777_8888);
    let kx_r = KeyExchange::generate(suite.ke, rng)?;
    let ke_r_payload = kx_r.ke_payload();
    let shared_r = kx_r.agree(ke_i)?;
    let nr = Nonce::random(rng, 32)?;
    let msg2 = MessageBuilder::new(spi_i, spi_r, ExchangeType::IKE_SA_INIT, Flags::RESPONSE, 0)
        .payload(chosen.response(vec![]))
        .payload(ke_r_payload)
        .payload(nr.clone())
        .encode()?;
    let keys_r = IkeKeys::derive(
        suite,
        &shared_r,
        ni_r.as_bytes(),
        nr.as_bytes(),
        spi_i,
        spi_r,
    )?;

    // ---- initiator ----
    let m2 = Message::decode(&msg2)?;
    assert_eq!(m2.header.spi_r, spi_r);
    let sa = find(&m2.payloads, |p| {
        if let Payload::Sa(s) = p {
            Some(s)
        } else {
            None
        }
    });
    let chosen_i = verify_choice(&ike_props, sa, SelectOptions::default())?;
    let suite_i = IkeSuite::from_proposal(&chosen_i.proposal)?;
    assert_eq!(suite_i, suite);
    let ke_r = find(&m2.payloads, |p| {
        if let Payload::Ke(k) = p {
            Some(k)
        } else {
            None
        }
    });
    let nr_i = find(&m2.payloads, |p| {
        if let Payload::Nonce(n) = p {
            Some(n)
        } else {
            None
        }
    });
    let shared_i = kx_i.agree(ke_r)?;
    assert!(shared_i.ct_eq(shared_r.expose()));
    let keys_i = IkeKeys::derive(
        suite_i,
        &shared_i,
        ni.as_bytes(),
        nr_i.as_bytes(),
        spi_i,
        spi_r,
    )?;
    let (mut seal_i, open_i) = keys_i.sk_crypto(Role::Initiator)?;
    let (mut seal_r, open_r) = keys_r.sk_crypto(Role::Responder)?;

    // ---- initiator: IKE_AUTH request ----
    let prf = suite.prf;
    let id_i = Identity::Fqdn("onprem-gw.example".into());
    let psk_i = Secret::from_slice(psk_i);
    let octets = signed_octets(
        prf,
        &msg1,
        nr_i.as_bytes(),
        keys_i.sk_p(Role::Initiator),
        &id_i,
    );
    let auth_i = psk_auth(prf, &psk_i, &octets);
    let child_spi_i = [0xc0, 0, 0, 1];
    let ts_i = TrafficSelectors(vec![AddrRange::any_v4().into(), AddrRange::any_v6().into()]);
    let ts_r = ts_i.clone();
    let msg3 = MessageBuilder::new(spi_i, spi_r, ExchangeType::IKE_AUTH, Flags::INITIATOR, 1)
        .payload(Payload::IdI(id_i.clone()))
        .payload(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: auth_i.expose().to_vec(),
        })
        .payload(Proposal::sa_payload(&esp_props, &child_spi_i))
        .payload(Payload::TsI(ts_i.clone()))
        .payload(Payload::TsR(ts_r.clone()))
        .seal(&mut seal_i, rng)?;
    // The SK payload is opaque to a plain decode.
    let outer = Message::decode(&msg3)?;
    assert!(matches!(outer.payloads.as_slice(), [Payload::Encrypted(_)]));

    // ---- responder ----
    let d3 = open_r.open(&msg3)?;
    let id = find(&d3.payloads, |p| {
        if let Payload::IdI(i) = p {
            Some(i)
        } else {
            None
        }
    });
    let auth = find(&d3.payloads, |p| {
        if let Payload::Auth(a) = p {
            Some(a)
        } else {
            None
        }
    });
    assert_eq!(auth.method, AuthMethod::SHARED_KEY_MIC);
    let psk_r = Secret::from_slice(psk_r);
    let octets_r = signed_octets(prf, &msg1, nr.as_bytes(), keys_r.sk_p(Role::Initiator), id);
    verify_psk_auth(prf, &psk_r, &octets_r, &auth.data)?;
    let sa = find(&d3.payloads, |p| {
        if let Payload::Sa(s) = p {
            Some(s)
        } else {
            None
        }
    });
    let child = select(sa, &esp_props, SelectOptions { skip_ke: true })?;
    assert_eq!(child.spi, child_spi_i);
    let child_suite = ChildSuite::from_proposal(&child.proposal)?;
    let child_r = keys_r.child_keys(&child_suite, None, ni_r.as_bytes(), nr.as_bytes())?;
    let id_r = Identity::Ipv4(Ipv4Addr::new(172, 16, 1, 2));
    let octets = signed_octets(
        prf,
        &msg2,
        ni_r.as_bytes(),
        keys_r.sk_p(Role::Responder),
        &id_r,
    );
    let msg4 = MessageBuilder::new(spi_i, spi_r, ExchangeType::IKE_AUTH, Flags::RESPONSE, 1)
        .payload(Payload::IdR(id_r.clone()))
        .payload(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: psk_auth(prf, &psk_r, &octets).expose().to_vec(),
        })
        .payload(child.response(vec![0xc0, 0, 0, 2]))
        .payload(Payload::TsI(ts_i))
        .payload(Payload::TsR(ts_r))
        .seal(&mut seal_r, rng)?;

    // ---- initiator ----
    let d4 = open_i.open(&msg4)?;
    let id = find(&d4.payloads, |p| {
        if let Payload::IdR(i) = p {
            Some(i)
        } else {
            None
        }
    });
    assert_eq!(id, &id_r);
    let auth = find(&d4.payloads, |p| {
        if let Payload::Auth(a) = p {
            Some(a)
        } else {
            None
        }
    });
    let octets = signed_octets(prf, &msg2, ni.as_bytes(), keys_i.sk_p(Role::Responder), id);
    verify_psk_auth(prf, &psk_i, &octets, &auth.data)?;
    let sa = find(&d4.payloads, |p| {
        if let Payload::Sa(s) = p {
            Some(s)
        } else {
            None
        }
    });
    let child_i = verify_choice(&esp_props, sa, SelectOptions { skip_ke: true })?;
    assert_eq!(child_i.spi, vec![0xc0, 0, 0, 2]);
    let suite_c = ChildSuite::from_proposal(&child_i.proposal)?;
    assert_eq!(suite_c, child_suite);
    let child_keys_i = keys_i.child_keys(&suite_c, None, ni.as_bytes(), nr.as_bytes())?;
    assert_eq!(child_keys_i.i_to_r.len(), suite_c.keymat_len());

    Ok(Outcome {
        child_i: (child_keys_i.i_to_r, child_keys_i.r_to_i),
        child_r: (child_r.i_to_r, child_r.r_to_i),
        keys_i,
        keys_r,
    })
}

fn same(a: &Secret, b: &Secret) -> bool {
    a.ct_eq(b.expose())
}

#[test]
fn the_issue_proposal_pairs_key_both_ends_identically() {
    for (ike_cfg, esp_cfg) in [
        ("aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        ("aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
        ("aes256-sha256-modp2048", "aes256-sha256"),
        ("chacha20poly1305-prfsha256-x25519", "chacha20poly1305"),
        ("aes128-sha512-ecp521", "aes128-sha384-esn"),
        ("aes256gcm16-prfsha512-ecp256", "aes256gcm16-ecp256"),
    ] {
        let o = handshake(ike_cfg, esp_cfg, b"s3cret", b"s3cret")
            .unwrap_or_else(|e| panic!("{ike_cfg} / {esp_cfg}: {e}"));
        assert!(same(&o.child_i.0, &o.child_r.0), "{ike_cfg}");
        assert!(same(&o.child_i.1, &o.child_r.1), "{ike_cfg}");
        assert!(
            !same(&o.child_i.0, &o.child_i.1),
            "{ike_cfg}: directions differ"
        );
        assert!(same(o.keys_i.sk_d(), o.keys_r.sk_d()));
        assert!(same(o.keys_i.sk_pi(), o.keys_r.sk_pi()));
        assert!(same(o.keys_i.sk_pr(), o.keys_r.sk_pr()));
    }
}

#[test]
fn wrong_psk_fails_authentication() {
    let e = handshake(
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"right",
        b"wrong",
    )
    .err()
    .unwrap();
    assert_eq!(
        e,
        Error::PeerMisbehaved(PeerMisbehaved::AuthenticationFailed)
    );
    assert_eq!(
        e.notify().unwrap().notify_type,
        NotifyType::AUTHENTICATION_FAILED
    );
}

#[test]
fn invalid_ke_payload_names_the_group_to_retry_with() {
    let rng = &mut TestRng(1);
    // The initiator prefers x25519 but also offers ecp256; the responder wants ecp256.
    let offered =
        Proposal::parse_list(ProtocolId::IKE, "aes128gcm16-prfsha256-x25519-ecp256").unwrap();
    let configured = Proposal::parse_list(ProtocolId::IKE, "aes128gcm16-prfsha256-ecp256").unwrap();
    let kx = KeyExchange::generate(KeMethod::CURVE25519, rng).unwrap();
    let chosen = select(
        &Proposal::sa_payload(&offered, &[]),
        &configured,
        SelectOptions::default(),
    )
    .unwrap();
    let suite = IkeSuite::from_proposal(&chosen.proposal).unwrap();
    assert_eq!(suite.ke, KeMethod::ECP256);
    let responder = KeyExchange::generate(suite.ke, rng).unwrap();
    let e = responder.agree(&kx.ke_payload()).unwrap_err();
    let n = e.notify().unwrap();
    assert_eq!(n.notify_type, NotifyType::INVALID_KE_PAYLOAD);
    let notify = NotifyPayload::new(n.notify_type, n.data);
    assert_eq!(notify, NotifyPayload::invalid_ke_payload(KeMethod::ECP256));
    assert_eq!(notify.accepted_ke_method(), Some(KeMethod::ECP256));
}

#[test]
fn rekeying_ike_and_child_sas_with_pfs() {
    let o = handshake(
        "aes256gcm16-prfsha384-ecp384",
        "aes256gcm16-ecp384",
        b"k",
        b"k",
    )
    .unwrap();
    let rng = &mut TestRng(99);
    // CREATE_CHILD_SA rekeying the IKE SA: new nonces, new KE, new SPIs.
    let new_suite = IkeSuite::from_proposal(
        &Proposal::parse(ProtocolId::IKE, "aes128gcm16-prfsha256-x25519").unwrap(),
    )
    .unwrap();
    let a = KeyExchange::generate(KeMethod::CURVE25519, rng).unwrap();
    let b = KeyExchange::generate(KeMethod::CURVE25519, rng).unwrap();
    let (pa, pb) = (a.ke_payload(), b.ke_payload());
    let (ga, gb) = (a.agree(&pb).unwrap(), b.agree(&pa).unwrap());
    let (ni, nr) = ([1u8; 32], [2u8; 32]);
    let (si, sr) = (IkeSpi::from(1), IkeSpi::from(2));
    let new_i = o
        .keys_i
        .derive_rekeyed(new_suite, &ga, &ni, &nr, si, sr)
        .unwrap();
    let new_r = o
        .keys_r
        .derive_rekeyed(new_suite, &gb, &ni, &nr, si, sr)
        .unwrap();
    assert!(same(new_i.sk_d(), new_r.sk_d()));
    assert_eq!(new_i.sk_d().len(), 32);
    assert!(!same(new_i.sk_pi(), o.keys_i.sk_pi()));

    // CREATE_CHILD_SA for a Child SA with PFS.
    let suite =
        ChildSuite::from_proposal(&Proposal::parse(ProtocolId::ESP, "aes256gcm16-ecp384").unwrap())
            .unwrap();
    let a = KeyExchange::generate(KeMethod::ECP384, rng).unwrap();
    let b = KeyExchange::generate(KeMethod::ECP384, rng).unwrap();
    let (pa, pb) = (a.ke_payload(), b.ke_payload());
    let (ga, gb) = (a.agree(&pb).unwrap(), b.agree(&pa).unwrap());
    let ci = o.keys_i.child_keys(&suite, Some(&ga), &ni, &nr).unwrap();
    let cr = o.keys_r.child_keys(&suite, Some(&gb), &ni, &nr).unwrap();
    let plain = o.keys_i.child_keys(&suite, None, &ni, &nr).unwrap();
    assert!(same(&ci.i_to_r, &cr.i_to_r) && same(&ci.r_to_i, &cr.r_to_i));
    assert!(!same(&ci.i_to_r, &plain.i_to_r));
    let (out, inb) = ci.for_role(Role::Responder);
    assert!(same(out, &ci.r_to_i) && same(inb, &ci.i_to_r));
}
