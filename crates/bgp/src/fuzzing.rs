//! The decoding harness shared by the cargo-fuzz target and the property tests, so both
//! exercise exactly the same code. Built with the `fuzzing` feature (and in this crate's
//! tests).
//!
//! [`update_decode`] takes any bytes as the body of an UPDATE (the header is added here),
//! decodes them with both 2- and 4-octet AS contexts, and for every clean decode checks
//! that encoding and decoding again gives the same value. It must never panic.
//!
//! The fuzz target is one line:
//!
//! ```text
//! fuzz_target!(|data: &[u8]| bgp::fuzzing::update_decode(data));
//! ```

// Test infrastructure: a failed round trip is the finding, reported by panicking.
#![allow(clippy::panic)]

use crate::packet::{
    iana::MessageType,
    message::{Message, Update},
    DecodeCxt, EncodeCxt, MARKER, MAX_MESSAGE_LEN,
};

/// Wraps `body` in a message header of type `kind` (length clamped to the field).
pub fn with_header(kind: MessageType, body: &[u8]) -> Vec<u8> {
    let mut m = MARKER.to_vec();
    let len = u16::try_from(body.len() + 19).unwrap_or(u16::MAX);
    m.extend_from_slice(&len.to_be_bytes());
    m.push(kind.0);
    m.extend_from_slice(body);
    m
}

/// Decodes `body` as an UPDATE in both AS contexts; re-encodes clean decodes and checks the
/// round trip.
pub fn update_decode(body: &[u8]) {
    if body.len() + 19 > MAX_MESSAGE_LEN {
        return;
    }
    let msg = with_header(MessageType::UPDATE, body);
    for four in [false, true] {
        let d = DecodeCxt {
            four_octet_as: four,
        };
        let e = EncodeCxt {
            four_octet_as: four,
        };
        if let Ok(Message::Update(u)) = Message::decode(&msg, &d) {
            check_round_trip(&u, &d, &e);
        }
    }
}

/// Decodes any bytes as a whole message (header included); must not panic.
pub fn message_decode(data: &[u8]) {
    for four in [false, true] {
        let d = DecodeCxt {
            four_octet_as: four,
        };
        if let Ok(m) = Message::decode(data, &d) {
            let e = EncodeCxt {
                four_octet_as: four,
            };
            if let Message::Update(u) = &m {
                check_round_trip(u, &d, &e);
            } else if let Ok(bytes) = m.to_bytes(&e) {
                match Message::decode(&bytes, &d) {
                    Ok(again) if again == m => {}
                    other => panic!("round trip changed {m:?} into {other:?}"),
                }
            }
        }
    }
}

fn check_round_trip(u: &Update, d: &DecodeCxt, e: &EncodeCxt) {
    if !u.errors.is_empty() {
        // Partly discarded input: nothing to compare against.
        return;
    }
    let m = Message::Update(u.clone());
    let Ok(bytes) = m.to_bytes(e) else {
        // Re-encoding may grow past 4096 octets (AS4_PATH added, 2-octet lengths); fine.
        return;
    };
    match Message::decode(&bytes, d) {
        Ok(again) if again == m => {}
        other => panic!("UPDATE round trip changed {m:?} into {other:?}"),
    }
}
