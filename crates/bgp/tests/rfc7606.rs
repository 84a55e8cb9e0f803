//! RFC 7606 (revised UPDATE error handling), attribute by attribute: which malformations
//! are treat-as-withdraw, which attribute-discard, which still reset the session. The
//! session-dependent cases (LOCAL_PREF from an external peer, the first AS, the next hop)
//! and what the speaker does with a treat-as-withdraw UPDATE are in `speaker.rs`.

use bgp::packet::{
    error::{AttrAction, AttrErrorReason},
    iana::{AttrType, ErrorCode},
    message::{Message, Notification, Update},
    DecodeCxt,
};

const ORIGIN: &str = "40 01 01 00";
const AS_PATH: &str = "40 02 06 02 01 0000fde9";
const NEXT_HOP: &str = "40 03 04 0a000001";
/// 10.1.0.0/24
const NLRI: &str = "18 0a0100";

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn update_bytes(withdrawn: &str, attrs: &str, nlri: &str) -> Vec<u8> {
    let (w, a, n) = (hex(withdrawn), hex(attrs), hex(nlri));
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((23 + w.len() + a.len() + n.len()) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&(w.len() as u16).to_be_bytes());
    m.extend(w);
    m.extend_from_slice(&(a.len() as u16).to_be_bytes());
    m.extend(a);
    m.extend(n);
    m
}

#[derive(Debug, PartialEq)]
enum Want {
    Clean,
    Withdraw(u8),
    Discard(u8),
    /// Session reset with UPDATE Message Error / this subcode.
    Reset(u8),
}

fn decode(attrs: &str, nlri: &str, four: bool) -> Result<Update, Notification> {
    let m = update_bytes("", attrs, nlri);
    match Message::decode(
        &m,
        &DecodeCxt {
            four_octet_as: four,
        },
    ) {
        Ok(Message::Update(u)) => Ok(u),
        Ok(other) => panic!("not an UPDATE: {other:?}"),
        Err(e) => Err(Notification::from(&e)),
    }
}

fn check(attrs: &str, nlri: &str, four: bool, want: Want) -> Option<Update> {
    match decode(attrs, nlri, four) {
        Err(n) => {
            assert_eq!(n.code, ErrorCode::UPDATE_MESSAGE, "{n}");
            assert_eq!(Want::Reset(n.subcode), want, "{attrs}");
            None
        }
        Ok(u) => {
            let got = match u.errors.as_slice() {
                [] => Want::Clean,
                [e, ..] => match e.action {
                    AttrAction::TreatAsWithdraw => Want::Withdraw(e.type_code.0),
                    AttrAction::AttributeDiscard => Want::Discard(e.type_code.0),
                },
            };
            assert_eq!(got, want, "{attrs}: {:?}", u.errors);
            match want {
                Want::Withdraw(_) => assert!(u.treat_as_withdraw()),
                _ => assert!(!u.treat_as_withdraw()),
            }
            // Whatever happened to the attributes, the NLRI are known: treat-as-withdraw
            // can withdraw them.
            assert_eq!(u.nlri.len(), usize::from(!nlri.is_empty()));
            Some(u)
        }
    }
}

fn with(parts: &[&str]) -> String {
    parts.join(" ")
}

#[test]
fn valid_update_is_clean() {
    check(&with(&[ORIGIN, AS_PATH, NEXT_HOP]), NLRI, true, Want::Clean);
}

#[test]
fn origin_malformed_is_treat_as_withdraw() {
    // §7.1: length other than 1, or an undefined value.
    check(
        &with(&["40 01 02 0000", AS_PATH, NEXT_HOP]),
        NLRI,
        true,
        Want::Withdraw(1),
    );
    check(
        &with(&["40 01 01 03", AS_PATH, NEXT_HOP]),
        NLRI,
        true,
        Want::Withdraw(1),
    );
}

#[test]
fn flags_conflict_is_treat_as_withdraw() {
    // §3 c: ORIGIN marked optional; MULTI_EXIT_DISC marked transitive.
    check(
        &with(&["c0 01 01 00", AS_PATH, NEXT_HOP]),
        NLRI,
        true,
        Want::Withdraw(1),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 04 04 00000001"]),
        NLRI,
        true,
        Want::Withdraw(4),
    );
    // The Partial bit on a well-known attribute is not a conflict.
    check(
        &with(&["60 01 01 00", AS_PATH, NEXT_HOP]),
        NLRI,
        true,
        Want::Clean,
    );
}

#[test]
fn as_path_malformed_is_treat_as_withdraw() {
    // §7.2: empty segment, undefined segment type, overrun, underrun.
    for bad in [
        "40 02 02 02 00",
        "40 02 06 07 01 0000fde9",
        "40 02 06 02 02 0000fde9",
        "40 02 07 02 01 0000fde9 02",
    ] {
        let u = check(
            &with(&[ORIGIN, bad, NEXT_HOP]),
            NLRI,
            true,
            Want::Withdraw(2),
        )
        .unwrap();
        assert!(matches!(
            u.errors[0].reason,
            AttrErrorReason::MalformedAsPath(_)
        ));
    }
}

#[test]
fn fixed_length_attributes_are_treat_as_withdraw() {
    // §7.3 NEXT_HOP, §7.4 MULTI_EXIT_DISC, §7.5 LOCAL_PREF.
    check(
        &with(&[ORIGIN, AS_PATH, "40 03 05 0a00000100"]),
        NLRI,
        true,
        Want::Withdraw(3),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "80 04 03 000001"]),
        NLRI,
        true,
        Want::Withdraw(4),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "40 05 02 0001"]),
        NLRI,
        true,
        Want::Withdraw(5),
    );
    // §7.9, §7.10: ORIGINATOR_ID and CLUSTER_LIST (kept raw, lengths checked).
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "80 09 03 010203"]),
        NLRI,
        true,
        Want::Withdraw(9),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "80 0a 06 010203040506"]),
        NLRI,
        true,
        Want::Withdraw(10),
    );
}

#[test]
fn communities_malformed_are_treat_as_withdraw() {
    // §7.8: not a non-zero multiple of 4. §7.14 extended communities: multiple of 8.
    // RFC 8092 §6 large communities: non-zero multiple of 12.
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 05 0000000001"]),
        NLRI,
        true,
        Want::Withdraw(8),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 00"]),
        NLRI,
        true,
        Want::Withdraw(8),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 10 07 00000000000000"]),
        NLRI,
        true,
        Want::Withdraw(16),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 20 08 0000000000000000"]),
        NLRI,
        true,
        Want::Withdraw(32),
    );
}

#[test]
fn atomic_aggregate_and_aggregator_are_attribute_discard() {
    // §7.6, §7.7: the rest of the UPDATE is used.
    let u = check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "40 06 01 00"]),
        NLRI,
        true,
        Want::Discard(6),
    )
    .unwrap();
    let a = u.attrs.unwrap();
    assert!(!a.atomic_aggregate);
    assert_eq!(a.next_hop, Some("10.0.0.1".parse().unwrap()));
    // 4-octet session: AGGREGATOR is 8 octets; 6 is wrong here.
    let u = check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 07 06 fde9 0a000001"]),
        NLRI,
        true,
        Want::Discard(7),
    )
    .unwrap();
    assert_eq!(u.attrs.unwrap().aggregator, None);
    // And 8 is wrong on a 2-octet one.
    check(
        &with(&[
            ORIGIN,
            "40 02 04 02 01 fde9",
            NEXT_HOP,
            "c0 07 08 0000fde9 0a000001",
        ]),
        NLRI,
        false,
        Want::Discard(7),
    );
}

#[test]
fn as4_attributes_are_attribute_discard() {
    // RFC 6793 §4.1: AS4_PATH from a 4-octet speaker is discarded.
    let u = check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 11 06 02 01 00011170"]),
        NLRI,
        true,
        Want::Discard(17),
    )
    .unwrap();
    assert_eq!(u.errors[0].reason, AttrErrorReason::NotAllowed);
    assert_eq!(u.attrs.unwrap().as_path.to_string(), "65001");
    // RFC 6793 §6: a malformed AS4_PATH or AS4_AGGREGATOR on a 2-octet session is discarded;
    // AS_PATH is used as is.
    let two_path = "40 02 04 02 01 5ba0";
    let u = check(
        &with(&[ORIGIN, two_path, NEXT_HOP, "c0 11 02 02 00"]),
        NLRI,
        false,
        Want::Discard(17),
    )
    .unwrap();
    assert_eq!(u.attrs.unwrap().as_path.to_string(), "23456");
    check(
        &with(&[ORIGIN, two_path, NEXT_HOP, "c0 12 06 00011170 0a00"]),
        NLRI,
        false,
        Want::Discard(18),
    );
    // Wrong flags on AS4_PATH: discard too, not withdraw.
    check(
        &with(&[ORIGIN, two_path, NEXT_HOP, "40 11 06 02 01 00011170"]),
        NLRI,
        false,
        Want::Discard(17),
    );
}

#[test]
fn repeated_attribute_keeps_the_first() {
    // §3 g.
    let u = check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "40 01 01 02"]),
        NLRI,
        true,
        Want::Discard(1),
    )
    .unwrap();
    assert_eq!(u.errors[0].reason, AttrErrorReason::Duplicate);
    assert_eq!(u.attrs.unwrap().origin, bgp::packet::iana::Origin::Igp);
}

#[test]
fn missing_well_known_attribute_is_treat_as_withdraw() {
    // §3 d: only when NLRI are present.
    let u = check(&with(&[AS_PATH, NEXT_HOP]), NLRI, true, Want::Withdraw(1)).unwrap();
    assert_eq!(u.errors[0].reason, AttrErrorReason::Missing);
    check(&with(&[ORIGIN, NEXT_HOP]), NLRI, true, Want::Withdraw(2));
    check(&with(&[ORIGIN, AS_PATH]), NLRI, true, Want::Withdraw(3));
    // A withdrawal needs no attributes.
    let m = update_bytes("18 0a0100", "", "");
    let Ok(Message::Update(u)) = Message::decode(
        &m,
        &DecodeCxt {
            four_octet_as: true,
        },
    ) else {
        panic!()
    };
    assert!(u.errors.is_empty() && u.withdrawn.len() == 1);
    // IPv6-only UPDATEs need no NEXT_HOP.
    let mp = "90 0e 001a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8";
    check(&with(&[mp, ORIGIN, AS_PATH]), "", true, Want::Clean);
}

#[test]
fn attribute_list_length_conflicts_are_treat_as_withdraw() {
    // §4: the last attribute overruns the list, or too few octets left for a header. The
    // NLRI are still found through the Total Path Attribute Length.
    let u = check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 63 10 0102"]),
        NLRI,
        true,
        Want::Withdraw(0),
    )
    .unwrap();
    assert_eq!(u.errors[0].reason, AttrErrorReason::ListLength);
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "c0"]),
        NLRI,
        true,
        Want::Withdraw(0),
    );
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "d0 63 00"]),
        NLRI,
        true,
        Want::Withdraw(0),
    );
}

#[test]
fn unknown_attributes() {
    // Unrecognized well-known: session reset, the attribute quoted (RFC 4271 §6.3).
    let n = decode(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "40 63 01 00"]),
        NLRI,
        true,
    )
    .unwrap_err();
    assert_eq!((n.subcode, n.data), (2, hex("40 63 01 00")));
    // Unrecognized optional (transitive or not): kept.
    let u = check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP, "80 63 01 07", "c0 64 00"]),
        NLRI,
        true,
        Want::Clean,
    )
    .unwrap();
    assert_eq!(u.attrs.unwrap().unknown.len(), 2);
}

#[test]
fn mp_attribute_errors_reset_the_session() {
    let mp = "90 0e 001a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8";
    // §3 g: MP_REACH_NLRI twice.
    check(&with(&[mp, mp, ORIGIN, AS_PATH]), "", true, Want::Reset(1));
    // §7.11: next hop length inconsistent with the family (5 octets for IPv6).
    check(
        &with(&[
            "90 0e 000d 0002 01 05 0102030405 00 20 20010db8",
            ORIGIN,
            AS_PATH,
        ]),
        "",
        true,
        Want::Reset(9),
    );
    // NLRI inside MP_REACH_NLRI that overrun it.
    check(
        &with(&[
            "90 0e 0018 0002 01 10 20010db8000000000000000000000001 00 40 2001",
            ORIGIN,
            AS_PATH,
        ]),
        "",
        true,
        Want::Reset(9),
    );
    // MP_UNREACH_NLRI with a prefix longer than 128.
    check(&with(&["80 0f 05 0002 01 81 20"]), "", true, Want::Reset(9));
    // An unsupported family is ignored (attribute discard), not fatal.
    let u = check(
        &with(&["90 0e 000a 0001 80 04 0a000001 00 00", ORIGIN, AS_PATH]),
        "",
        true,
        Want::Discard(14),
    )
    .unwrap();
    assert_eq!(u.errors[0].reason, AttrErrorReason::UnsupportedFamily);
}

#[test]
fn nlri_and_length_field_errors_reset_the_session() {
    // §5.3: NLRI prefix length 33.
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP]),
        "21 0a00000101",
        true,
        Want::Reset(10),
    );
    // NLRI overrun.
    check(
        &with(&[ORIGIN, AS_PATH, NEXT_HOP]),
        "18 0a01",
        true,
        Want::Reset(10),
    );
    // Withdrawn Routes Length past the message (RFC 4271 §6.3: Malformed Attribute List).
    let mut m = update_bytes("", "", "");
    m[19..21].copy_from_slice(&[0, 9]);
    let e = Message::decode(&m, &DecodeCxt::default()).unwrap_err();
    assert_eq!(Notification::from(&e).subcode, 1);
    // Total Path Attribute Length past the message.
    let mut m = update_bytes("", ORIGIN, "");
    m[21..23].copy_from_slice(&[0, 9]);
    let e = Message::decode(&m, &DecodeCxt::default()).unwrap_err();
    assert_eq!(Notification::from(&e).subcode, 1);
}

#[test]
fn attr_type_names() {
    assert_eq!(AttrType::AS4_PATH.to_string(), "AS4_PATH");
    assert_eq!(AttrType(200).to_string(), "unknown(200)");
}
