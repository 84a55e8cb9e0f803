//! strongSwan proposal strings (parse and print) and responder selection.

use ike::packet::iana::*;
use ike::packet::{Attribute, AttributeValue, SaPayload, Transform};
use ike::proposal::{select, verify_choice, EncrAlg, Proposal, ProposalParseError, SelectOptions};
use ike::{ChildSuite, Encr, Error, IkeSuite, Integ, Prf};

fn ike(s: &str) -> Proposal {
    Proposal::parse(ProtocolId::IKE, s).unwrap()
}

fn esp(s: &str) -> Proposal {
    Proposal::parse(ProtocolId::ESP, s).unwrap()
}

#[test]
fn the_issue_proposal_pairs() {
    let p = ike("aes128gcm16-prfsha256-x25519");
    assert_eq!(p.encr, vec![EncrAlg::new(EncrId::AES_GCM_16, Some(128))]);
    assert_eq!(p.prf, vec![PrfId::HMAC_SHA2_256]);
    assert!(p.integ.is_empty());
    assert_eq!(p.ke, vec![KeMethod::CURVE25519]);
    assert_eq!(p.to_string(), "aes128gcm16-prfsha256-x25519");

    let p = ike("aes256gcm16-prfsha384-ecp384");
    assert_eq!(p.to_string(), "aes256gcm16-prfsha384-ecp384");
    assert_eq!(
        IkeSuite::from_proposal(&p).unwrap(),
        IkeSuite {
            encr: Encr::AesGcm16_256,
            prf: Prf::HmacSha384,
            integ: None,
            ke: KeMethod::ECP384
        }
    );

    // No PRF: it follows the integrity algorithm, as in strongSwan.
    let p = ike("aes256-sha256-modp2048");
    assert_eq!(p.encr, vec![EncrAlg::new(EncrId::AES_CBC, Some(256))]);
    assert_eq!(p.integ, vec![IntegId::HMAC_SHA2_256_128]);
    assert_eq!(p.prf, vec![PrfId::HMAC_SHA2_256]);
    assert_eq!(p.ke, vec![KeMethod::MODP2048]);
    assert_eq!(p.to_string(), "aes256-sha256-prfsha256-modp2048");
    assert_eq!(
        IkeSuite::from_proposal(&p).unwrap().integ,
        Some(Integ::HmacSha256_128)
    );

    let p = ike("chacha20poly1305-prfsha256-x25519");
    assert_eq!(p.encr, vec![EncrAlg::new(EncrId::CHACHA20_POLY1305, None)]);
    assert_eq!(p.to_string(), "chacha20poly1305-prfsha256-x25519");

    // ESP sides.
    let p = esp("aes128gcm16");
    assert_eq!(p.esn, vec![EsnId::NO_ESN]);
    assert_eq!(p.to_string(), "aes128gcm16");
    assert_eq!(ChildSuite::from_proposal(&p).unwrap().keymat_len(), 20);
    let p = esp("aes256gcm16");
    assert_eq!(ChildSuite::from_proposal(&p).unwrap().keymat_len(), 36);
    let p = esp("aes256-sha256");
    assert_eq!(p.to_string(), "aes256-sha256");
    let s = ChildSuite::from_proposal(&p).unwrap();
    assert_eq!(s.keymat_len(), 64);
    assert!(!s.esn);
    let p = esp("chacha20poly1305");
    assert_eq!(ChildSuite::from_proposal(&p).unwrap().keymat_len(), 36);
}

#[test]
fn aliases_esn_and_lists() {
    assert_eq!(
        ike("aes128gcm-prfsha256-curve25519"),
        ike("aes128gcm16-prfsha256-x25519")
    );
    assert_eq!(
        ike("aes128gcm128-prfsha256-x25519"),
        ike("aes128gcm16-prfsha256-x25519")
    );
    assert_eq!(
        ike("AES256-SHA2_256-MODP2048"),
        ike("aes256-sha256-modp2048")
    );
    assert_eq!(
        ike("aes-sha256-ecp256").encr,
        vec![EncrAlg::new(EncrId::AES_CBC, Some(128))]
    );
    assert_eq!(ike("aes256-sha512-ecp521").prf, vec![PrfId::HMAC_SHA2_512]);

    let p = esp("aes128gcm16-esn");
    assert_eq!(p.esn, vec![EsnId::ESN]);
    assert_eq!(p.to_string(), "aes128gcm16-esn");
    assert!(ChildSuite::from_proposal(&p).unwrap().esn);
    assert_eq!(esp("aes128gcm16-noesn"), esp("aes128gcm16"));
    let p = esp("aes128gcm16-esn-noesn");
    assert_eq!(p.esn, vec![EsnId::ESN, EsnId::NO_ESN]);
    assert_eq!(p.to_string(), "aes128gcm16-esn-noesn");

    // PFS groups in ESP proposals.
    let p = esp("aes256-sha256-modp2048");
    assert_eq!(p.ke, vec![KeMethod::MODP2048]);
    assert_eq!(
        ChildSuite::from_proposal(&p).unwrap().ke,
        Some(KeMethod::MODP2048)
    );

    // Multiple algorithms per type, printed in order.
    let p = ike("aes128gcm16-aes256gcm16-prfsha256-prfsha384-x25519-ecp256");
    assert_eq!(
        p.to_string(),
        "aes128gcm16-aes256gcm16-prfsha256-prfsha384-x25519-ecp256"
    );

    let list = Proposal::parse_list(
        ProtocolId::IKE,
        "aes128gcm16-prfsha256-x25519, aes256-sha256-modp2048",
    )
    .unwrap();
    assert_eq!(list.len(), 2);

    // Every printed proposal parses back to itself.
    for s in [
        "aes128gcm16-prfsha256-x25519",
        "aes256-sha384-sha512-ecp384-ecp521",
        "aes128-aes256-sha256-prfsha512-modp2048",
    ] {
        let p = ike(s);
        assert_eq!(ike(&p.to_string()), p, "{s}");
    }
}

#[test]
fn parse_errors_are_clear() {
    let e = Proposal::parse(ProtocolId::IKE, "aes128gcm16-prfsha256-x2551").unwrap_err();
    assert_eq!(e, ProposalParseError::UnknownToken("x2551".into()));
    assert_eq!(e.to_string(), "unknown algorithm 'x2551'");

    let e = Proposal::parse(ProtocolId::IKE, "3des-sha1-modp1024").unwrap_err();
    assert_eq!(e, ProposalParseError::NotImplemented("3des".into()));
    assert!(e.to_string().contains("not implemented"));
    let e = Proposal::parse(ProtocolId::IKE, "aes128-sha1-x25519").unwrap_err();
    assert_eq!(e, ProposalParseError::NotImplemented("sha1".into()));
    let e = Proposal::parse(ProtocolId::IKE, "aes128-sha256-modp1024").unwrap_err();
    assert_eq!(e, ProposalParseError::NotImplemented("modp1024".into()));
    let e = Proposal::parse(ProtocolId::IKE, "aes192-sha256-x25519").unwrap_err();
    assert_eq!(e, ProposalParseError::NotImplemented("aes192".into()));

    assert_eq!(
        Proposal::parse(ProtocolId::IKE, "aes128gcm16-x25519").unwrap_err(),
        ProposalParseError::Missing("PRF (e.g. prfsha256)")
    );
    assert_eq!(
        Proposal::parse(ProtocolId::IKE, "aes128gcm16-prfsha256").unwrap_err(),
        ProposalParseError::Missing("key exchange method")
    );
    assert_eq!(
        Proposal::parse(ProtocolId::ESP, "aes128").unwrap_err(),
        ProposalParseError::Missing("integrity algorithm")
    );
    assert!(matches!(
        Proposal::parse(ProtocolId::ESP, "aes128gcm16-sha256").unwrap_err(),
        ProposalParseError::Invalid(_)
    ));
    assert!(matches!(
        Proposal::parse(ProtocolId::IKE, "aes128gcm16-aes128-sha256-x25519").unwrap_err(),
        ProposalParseError::Invalid(_)
    ));
    assert!(matches!(
        Proposal::parse(ProtocolId::ESP, "aes128gcm16-prfsha256").unwrap_err(),
        ProposalParseError::WrongProtocol { .. }
    ));
    assert!(matches!(
        Proposal::parse(ProtocolId::IKE, "aes128gcm16-prfsha256-x25519-esn").unwrap_err(),
        ProposalParseError::WrongProtocol { .. }
    ));
    assert!(matches!(
        Proposal::parse(ProtocolId::IKE, "aes128gcm16-prfsha256-none").unwrap_err(),
        ProposalParseError::Invalid(_)
    ));
    assert_eq!(
        Proposal::parse(ProtocolId::IKE, "").unwrap_err(),
        ProposalParseError::Empty
    );
    assert!(matches!(
        Proposal::parse(ProtocolId::IKE, "default").unwrap_err(),
        ProposalParseError::UnknownToken(_)
    ));
    assert!(matches!(
        Proposal::parse(ProtocolId::IKE, "aes128gcm16-prfsha256-x25519!").unwrap_err(),
        ProposalParseError::UnknownToken(_)
    ));
}

fn offer(ps: &[Proposal]) -> SaPayload {
    Proposal::sa_payload(ps, &[])
}

#[test]
fn responder_picks_first_acceptable_initiator_proposal() {
    let offered = offer(&[
        ike("aes128-sha256-modp2048"),
        ike("aes256gcm16-prfsha384-ecp384"),
        ike("aes128gcm16-prfsha256-x25519"),
    ]);
    let configured = [
        ike("aes128gcm16-prfsha256-x25519"),
        ike("aes256gcm16-prfsha384-ecp384"),
    ];
    let s = select(&offered, &configured, SelectOptions::default()).unwrap();
    // The initiator's order wins: proposal 2, even though we list it second.
    assert_eq!(s.number, 2);
    assert_eq!(s.proposal, ike("aes256gcm16-prfsha384-ecp384"));
    let resp = s.response(vec![]);
    assert_eq!(resp.proposals[0].number, 2);
    // The initiator accepts that answer.
    let ours = [
        ike("aes128-sha256-modp2048"),
        ike("aes256gcm16-prfsha384-ecp384"),
        ike("aes128gcm16-prfsha256-x25519"),
    ];
    let v = verify_choice(&ours, &resp, SelectOptions::default()).unwrap();
    assert_eq!(v.proposal, s.proposal);
}

#[test]
fn one_transform_per_type_in_initiator_order() {
    let offered = offer(&[ike(
        "aes128-aes256-sha512-sha256-prfsha384-prfsha256-ecp256-modp2048",
    )]);
    let configured = [ike(
        "aes256-sha256-sha512-prfsha256-prfsha384-modp2048-ecp256",
    )];
    let s = select(&offered, &configured, SelectOptions::default()).unwrap();
    assert_eq!(s.proposal.to_string(), "aes256-sha512-prfsha384-ecp256");
}

#[test]
fn no_proposal_chosen_renders_both_sides() {
    let offered = SaPayload {
        proposals: vec![Proposal {
            protocol: ProtocolId::IKE,
            encr: vec![EncrAlg::new(EncrId::TRIPLE_DES, None)],
            prf: vec![PrfId::HMAC_SHA1],
            integ: vec![IntegId::HMAC_SHA1_96],
            ke: vec![KeMethod::MODP1024],
            esn: vec![],
            other: vec![],
        }
        .to_wire(1, vec![])],
    };
    let configured = [ike("aes128gcm16-prfsha256-x25519")];
    let e = select(&offered, &configured, SelectOptions::default()).unwrap_err();
    assert_eq!(e.offered, vec!["IKE:3des-sha1-prfsha1-modp1024"]);
    assert_eq!(e.configured, vec!["IKE:aes128gcm16-prfsha256-x25519"]);
    assert_eq!(
        e.to_string(),
        "no proposal chosen: received proposals: IKE:3des-sha1-prfsha1-modp1024; \
         configured proposals: IKE:aes128gcm16-prfsha256-x25519"
    );
    let err = Error::from(e);
    assert_eq!(
        err.notify().unwrap().notify_type,
        NotifyType::NO_PROPOSAL_CHOSEN
    );
}

#[test]
fn unknown_types_ids_and_attributes() {
    // An unknown transform type makes the whole proposal unacceptable (§3.3.6)...
    let mut w = ike("aes128gcm16-prfsha256-x25519").to_wire(1, vec![]);
    w.transforms.push(Transform::new(TransformType(6), 1));
    let second = ike("aes256gcm16-prfsha384-ecp384").to_wire(2, vec![]);
    let offered = SaPayload {
        proposals: vec![w.clone(), second],
    };
    let configured = [
        ike("aes128gcm16-prfsha256-x25519"),
        ike("aes256gcm16-prfsha384-ecp384"),
    ];
    let s = select(&offered, &configured, SelectOptions::default()).unwrap();
    assert_eq!(s.number, 2);
    let e = select(
        &SaPayload { proposals: vec![w] },
        &configured,
        SelectOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.offered,
        vec!["IKE:aes128gcm16-prfsha256-x25519-TRANSFORM6_1"]
    );

    // ...an unknown attribute only that transform.
    let mut w = ike("aes128gcm16-aes256gcm16-prfsha256-x25519").to_wire(1, vec![]);
    w.transforms[0].attributes.push(Attribute {
        attr_type: AttributeType(99),
        value: AttributeValue::Tv(1),
    });
    let s = select(
        &SaPayload { proposals: vec![w] },
        &[ike("aes128gcm16-aes256gcm16-prfsha256-x25519")],
        SelectOptions::default(),
    )
    .unwrap();
    assert_eq!(
        s.proposal.encr,
        vec![EncrAlg::new(EncrId::AES_GCM_16, Some(256))]
    );

    // Unknown IDs and unusual key lengths render readably.
    let p = Proposal {
        protocol: ProtocolId::IKE,
        encr: vec![
            EncrAlg::new(EncrId(99), None),
            EncrAlg::new(EncrId::AES_CBC, None),
        ],
        prf: vec![PrfId(77)],
        integ: vec![],
        ke: vec![KeMethod(1234)],
        esn: vec![],
        other: vec![],
    };
    assert_eq!(p.to_string(), "ENCR_99-ENCR_AES_CBC-PRF_77-KE_1234");
}

#[test]
fn esp_selection_esn_pfs_and_ike_auth() {
    let offered = Proposal::sa_payload(
        &[esp("aes256gcm16-ecp256-esn"), esp("aes128gcm16-noesn")],
        &[1, 2, 3, 4],
    );
    // We want ESN off and PFS with ecp256: proposal 1 offers ESN only.
    let configured = [esp("aes256gcm16-aes128gcm16-ecp256-noesn")];
    let e = select(&offered, &configured, SelectOptions::default()).unwrap_err();
    assert_eq!(
        e.offered,
        vec!["ESP:aes256gcm16-ecp256-esn", "ESP:aes128gcm16"]
    );
    // In IKE_AUTH the KE transforms are ignored: proposal 2 is fine then.
    let s = select(&offered, &configured, SelectOptions { skip_ke: true }).unwrap();
    assert_eq!(s.number, 2);
    assert_eq!(s.spi, vec![1, 2, 3, 4]);
    assert_eq!(s.proposal.to_string(), "aes128gcm16");

    // PFS required by us, none offered: no match outside IKE_AUTH.
    let offered = Proposal::sa_payload(&[esp("aes128gcm16")], &[1, 2, 3, 4]);
    assert!(select(
        &offered,
        &[esp("aes128gcm16-modp2048")],
        SelectOptions::default()
    )
    .is_err());
    // PFS offered, we accept it or none.
    let offered = Proposal::sa_payload(&[esp("aes128gcm16-modp2048-none")], &[9, 9, 9, 9]);
    let s = select(&offered, &[esp("aes128gcm16")], SelectOptions::default()).unwrap();
    assert_eq!(s.proposal.ke, vec![KeMethod::NONE]);

    // An ESP proposal without ESN transform is unacceptable (§3.3.3).
    let mut w = esp("aes128gcm16").to_wire(1, vec![0; 4]);
    w.transforms
        .retain(|t| t.transform_type != TransformType::ESN);
    assert!(select(
        &SaPayload { proposals: vec![w] },
        &[esp("aes128gcm16")],
        SelectOptions::default()
    )
    .is_err());
}

#[test]
fn initiator_rejects_bad_responses() {
    let ours = [ike("aes128gcm16-aes256gcm16-prfsha256-x25519")];
    // Two transforms of one type in the answer.
    let resp = Proposal::sa_payload(&ours, &[]);
    assert!(verify_choice(&ours, &resp, SelectOptions::default()).is_err());
    // A transform we never offered.
    let resp = Proposal::sa_payload(&[ike("aes256gcm16-prfsha384-x25519")], &[]);
    assert!(verify_choice(&ours, &resp, SelectOptions::default()).is_err());
    // An unknown proposal number.
    let mut resp = Proposal::sa_payload(&[ike("aes256gcm16-prfsha256-x25519")], &[]);
    assert!(verify_choice(&ours, &resp, SelectOptions::default()).is_ok());
    resp.proposals[0].number = 2;
    assert!(verify_choice(&ours, &resp, SelectOptions::default()).is_err());
}
