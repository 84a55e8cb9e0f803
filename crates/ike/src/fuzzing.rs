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

/// Arbitrary datagrams into an [`Endpoint`](crate::Endpoint) that has an established IKE
/// SA with a peer: `data` is split at `0xfe 0xfe` into datagrams; each is delivered
/// as-is, or (when its first byte is odd) with the established SA's SPIs written over
/// its first 16 bytes, so the fuzzer reaches the per-SA code. Afterwards the SA must
/// still be established, and the endpoint's outputs are drained.
#[allow(clippy::panic)]
pub fn endpoint_datagrams(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    use crate::fsm::{ConnectionConfig, DpdAction, Endpoint, EndpointConfig, SaState};
    use crate::packet::Identity;
    use crate::{Secret, TrafficSelectorPolicy};

    let a_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 500);
    let b_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 500);
    let conn = |local, remote, initiate| ConnectionConfig {
        name: "fuzz".into(),
        local,
        remote,
        local_id: Identity::Fqdn(if initiate { "a" } else { "b" }.into()),
        remote_id: Identity::Fqdn(if initiate { "b" } else { "a" }.into()),
        psk: Secret::from_slice(b"fuzz"),
        ike_proposals: Proposal::parse_list(ProtocolId::IKE, "aes128gcm16-prfsha256-x25519")
            .unwrap_or_default(),
        esp_proposals: Proposal::parse_list(ProtocolId::ESP, "aes128gcm16").unwrap_or_default(),
        ts: TrafficSelectorPolicy::RouteBased,
        ike_lifetime: Duration::from_secs(3600),
        child_lifetime: Duration::from_secs(1800),
        child_lifetime_bytes: None,
        rekey_margin: Duration::from_secs(60),
        rand_jitter: Duration::ZERO,
        dpd_interval: Some(Duration::from_secs(30)),
        dpd_retries: 3,
        dpd_action: DpdAction::Clear,
        initiate,
    };
    let now = Instant::now();
    let mut a = Endpoint::new(EndpointConfig::default(), Box::new(SplitMix(1)));
    let mut b = Endpoint::new(EndpointConfig::default(), Box::new(SplitMix(2)));
    b.add_connection(now, conn(b_addr, a_addr, false));
    a.add_connection(now, conn(a_addr, b_addr, true));
    for _ in 0..8 {
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, t.remote, t.local, &t.payload);
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.remote, t.local, &t.payload);
        }
    }
    let Some(info) = b.sas().next() else {
        panic!("the fixed pair did not establish");
    };
    let spis: Vec<u8> = [info.spi_i.0, info.spi_r.0].concat();
    for d in split_datagrams(data) {
        let mut d = d.to_vec();
        if d.first().is_some_and(|f| f % 2 == 1) && d.len() >= 16 {
            if let Some(head) = d.get_mut(..16) {
                head.copy_from_slice(&spis);
            }
        }
        b.handle_datagram(now, b_addr, a_addr, &d);
        while b.poll_transmit().is_some() {}
        while b.poll_event().is_some() {}
    }
    let later = now + Duration::from_secs(1);
    b.handle_timeout(later);
    if !b
        .sas()
        .any(|s| s.state == SaState::Established && s.children.len() == 1)
    {
        panic!("fuzz input killed the established SA");
    }
}

fn split_datagrams(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data.get(i..i + 2) == Some(&[0xfe, 0xfe][..]) {
            out.push(data.get(start..i).unwrap_or_default());
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push(data.get(start..).unwrap_or_default());
    out
}

/// splitmix64, for reproducible fuzz runs.
struct SplitMix(u64);

impl crate::rng::Rng for SplitMix {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), crate::rng::RandomError> {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let bytes = z.to_be_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
        }
        Ok(())
    }
}

/// Test hook: seals `plain` (inner payload bytes | padding | Pad Length, any bytes at
/// all) under the keys of `ep`'s IKE SA of `conn` (the established one, else one that has
/// keys), as the peer would receive it from `ep`. A request (`response == false`) takes
/// message ID `id`, or when `None` the SA's next one, which is then consumed so later
/// requests stay in step; a response answers the peer's request `id`. `first_inner` is the
/// SK payload's Next Payload. What the peer makes of an authentic but malformed message is
/// what RFC 7296 §2.21 is about, and random datagrams never get past the ICV to test it.
pub fn forge(
    ep: &mut crate::Endpoint,
    conn: crate::ConnId,
    exchange: crate::packet::iana::ExchangeType,
    response: bool,
    id: Option<u32>,
    first_inner: crate::packet::iana::PayloadType,
    plain: &[u8],
) -> Option<Vec<u8>> {
    ep.forge(conn, exchange, response, id, first_inner, plain)
}

/// Test hook: opens a datagram the peer sent to `ep`'s established IKE SA of `conn`
/// (`None`: no such SA).
pub fn open(
    ep: &crate::Endpoint,
    conn: crate::ConnId,
    datagram: &[u8],
) -> Option<Result<crate::crypto::Decrypted, crate::Error>> {
    ep.open_for_test(conn, datagram)
}
