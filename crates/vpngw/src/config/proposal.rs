//! strongSwan proposal strings (`aes256gcm16-prfsha256-ecp256`), checked by the `ike` crate's
//! parser: the one that negotiates them, so `check` accepts exactly what `run` can use.

use std::fmt;

use ike::packet::iana::ProtocolId;

/// Which SA a proposal is for: the rules differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProposalKind {
    /// The IKE SA (`ike_proposals`).
    Ike,
    /// A child SA, ESP (`esp_proposals`).
    Esp,
}

impl fmt::Display for ProposalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ike => "IKE",
            Self::Esp => "ESP",
        })
    }
}

/// Checks one proposal string in strongSwan syntax; the error says what is wrong, without
/// repeating the string.
///
/// The rules are `ike::Proposal::parse`'s: known and implemented algorithms only; IKE needs
/// encryption, a key exchange method, and integrity unless its encryption is AEAD (its PRF
/// defaults from the integrity algorithm, so AEAD needs an explicit one); ESP needs
/// encryption and integrity unless AEAD, a DH group is optional (PFS); no PRF in ESP, no ESN
/// in IKE; AEAD and non-AEAD ciphers do not mix, and AEAD takes no integrity algorithm.
pub(crate) fn validate_proposal(kind: ProposalKind, s: &str) -> Result<(), String> {
    let protocol = match kind {
        ProposalKind::Ike => ProtocolId::IKE,
        ProposalKind::Esp => ProtocolId::ESP,
    };
    ike::Proposal::parse(protocol, s)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{validate_proposal as v, ProposalKind::*};

    #[test]
    fn good_proposals() {
        for s in [
            "aes256gcm16-prfsha256-ecp256",
            "aes128-sha256-modp2048",
            "aes256-sha512-prfsha512-x25519",
            "chacha20poly1305-prfsha256-curve25519",
        ] {
            assert_eq!(v(Ike, s), Ok(()), "{s}");
        }
        for s in [
            "aes256gcm16",
            "aes256gcm16-ecp256",
            "aes128-sha256",
            "aes256-sha384-modp2048-esn",
            "chacha20poly1305-noesn",
        ] {
            assert_eq!(v(Esp, s), Ok(()), "{s}");
        }
    }

    #[test]
    fn each_rule_has_its_message() {
        let cases = [
            (Ike, "", "empty proposal"),
            (Ike, "aes256-md5x-modp2048", "unknown algorithm 'md5x'"),
            (
                Ike,
                "aes256-md5-modp2048",
                "algorithm 'md5' is not implemented (supported: ",
            ),
            (Ike, "sha256-modp2048", "missing encryption algorithm"),
            (
                Ike,
                "aes256-aes256gcm16-sha256-modp2048",
                "AEAD and non-AEAD",
            ),
            (
                Esp,
                "aes256gcm16-sha256",
                "an AEAD cipher takes no integrity algorithm",
            ),
            (Esp, "aes256", "missing integrity algorithm"),
            (Ike, "aes256gcm16-ecp256", "missing PRF"),
            (Ike, "aes256-sha256", "missing key exchange method"),
            (Ike, "aes256-sha256-modp2048-esn", "'esn' is not valid in a"),
            (
                Esp,
                "aes256-sha256-prfsha256",
                "'prfsha256' is not valid in a",
            ),
        ];
        for (kind, s, words) in cases {
            let e = v(kind, s).unwrap_err();
            assert!(e.contains(words), "{kind} {s:?}: {e}");
        }
    }
}
