//! Entry points for `cargo fuzz` targets and the tests that replay their corpora.
//!
//! Not a stable API. Every function must return normally for *any* input; a panic is a
//! finding.

use crate::packet::iana::ProtocolId;
use crate::packet::Message;
use crate::proposal::Proposal;

/// Decodes an IKE message; if that succeeds, re-encodes it and checks that the result
/// decodes to the same value and encodes to the same bytes (canonical form is a fixed
/// point). Panics only on a codec bug.
#[allow(clippy::panic)]
pub fn decode_message(data: &[u8]) {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let Ok(bytes) = msg.encode() else {
        panic!("decoded message failed to encode: {msg:?}");
    };
    match Message::decode(&bytes) {
        Ok(again) if again == msg => {}
        other => panic!("re-encoded message decodes differently: {other:?} vs {msg:?}"),
    }
    match Message::decode(&bytes).and_then(|m| m.encode()) {
        Ok(b) if b == bytes => {}
        other => panic!("encoding is not a fixed point: {other:?}"),
    }
}

/// Parses strongSwan proposal strings for both protocols; a successful parse must render
/// to a string that parses back to the same proposal.
#[allow(clippy::panic)]
pub fn parse_proposal(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for protocol in [ProtocolId::IKE, ProtocolId::ESP] {
        if let Ok(p) = Proposal::parse(protocol, s) {
            let rendered = p.to_string();
            match Proposal::parse(protocol, &rendered) {
                Ok(q) if q == p => {}
                other => panic!("{s:?} rendered as {rendered:?} parses as {other:?}"),
            }
        }
    }
}

/// The SK decrypt path *behind* the integrity check, which random datagrams never reach:
/// `data[0]` picks a suite, `data[1]` is the first inner payload type, the rest is the
/// plaintext (inner payloads | padding | Pad Length) that gets sealed with fixed keys and
/// then opened. An authentic message must never fail its integrity check, and whatever
/// opens must seal and open again to the same payloads.
#[allow(clippy::panic)]
pub fn open_sealed(data: &[u8]) {
    use crate::crypto::sk::{IvChoice, Opener, Sealer};
    use crate::crypto::{Encr, Integ};
    use crate::error::{Error, PeerMisbehaved};
    use crate::packet::iana::{ExchangeType, PayloadType};
    use crate::packet::{Flags, Header, IkeSpi};

    let [suite, first, plain @ ..] = data else {
        return;
    };
    let (encr, integ) = match suite % 5 {
        0 => (Encr::AesGcm16_128, None),
        1 => (Encr::AesGcm16_256, None),
        2 => (Encr::ChaCha20Poly1305, None),
        3 => (Encr::AesCbc128, Some(Integ::HmacSha256_128)),
        _ => (Encr::AesCbc256, Some(Integ::HmacSha384_192)),
    };
    let sk_e = vec![0x5a; encr.keymat_len()];
    let sk_a = vec![0xa5; integ.map_or(0, Integ::key_len)];
    let (Ok(mut sealer), Ok(opener)) = (
        Sealer::new(encr, integ, &sk_e, &sk_a),
        Opener::new(encr, integ, &sk_e, &sk_a),
    ) else {
        panic!("fixed keys rejected");
    };
    let header = Header::new(
        IkeSpi::from(1),
        IkeSpi::from(2),
        ExchangeType::INFORMATIONAL,
        Flags::INITIATOR,
        1,
    );
    let mut rng = CountingRng(0);
    // Fails only for CBC plaintexts that are not whole blocks.
    let Ok(datagram) = sealer.seal_plaintext(
        &header,
        &[],
        PayloadType(*first),
        plain,
        IvChoice::Default(&mut rng),
    ) else {
        return;
    };
    match opener.open(&datagram) {
        Ok(d) => {
            let again = sealer
                .seal(&header, &d.unprotected, &d.payloads, &mut rng)
                .unwrap_or_else(|e| panic!("opened payloads do not seal again: {e}"));
            match opener.open(&again) {
                Ok(d2) if d2 == d => {}
                other => panic!("re-sealed message opens differently: {other:?}"),
            }
        }
        Err(Error::PeerMisbehaved(PeerMisbehaved::IntegrityCheckFailed)) => {
            panic!("an authentic message failed its integrity check")
        }
        Err(_) => {}
    }
}

/// A predictable byte source: fuzzing wants reproducible runs, not secrecy.
struct CountingRng(u8);

impl crate::rng::Rng for CountingRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), crate::rng::RandomError> {
        for b in dest {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}
