//! Proposals: the grouped view of an SA proposal, strongSwan's proposal-string syntax
//! (which is also our configuration syntax), and the responder's selection (RFC 7296 §2.7,
//! §3.3.6).
//!
//! ```text
//! "aes128gcm16-prfsha256-x25519" ──Proposal::parse──> Proposal ──to_wire──> WireProposal
//! SA payload from the peer ──select(offered, configured)──> Selected | NoProposalChosen
//! ```
//!
//! Tokens follow strongSwan's `proposal_keywords_static.txt`: `aes128`/`aes256` (AES-CBC),
//! `aes128gcm16`/`aes256gcm16` (also `aes128gcm`, `aes128gcm128`), `chacha20poly1305`,
//! `sha256`/`sha384`/`sha512` (HMAC-SHA2 integrity, also `sha2_256`...),
//! `prfsha256`/`prfsha384`/`prfsha512`, `modp2048`, `ecp256`/`ecp384`/`ecp521`,
//! `x25519` (alias `curve25519`), `esn`/`noesn`, `none`. As in strongSwan, an IKE proposal
//! without a PRF gets the PRFs matching its integrity algorithms (`aes256-sha256-modp2048`
//! means PRF HMAC-SHA2-256), and an ESP proposal without an ESN token means `noesn`.
//! Tokens strongSwan knows but this crate does not implement (`3des`, `sha1`, `modp1024`,
//! ...) are recognized, so they render readably when a peer offers them, but rejected in
//! configuration with [`ProposalParseError::NotImplemented`].

use std::fmt;

use crate::crypto::{dh, Encr, Integ, Prf};
use crate::error::{Error, PeerMisbehaved};
use crate::packet::iana::{
    AttributeType, EncrId, EsnId, IntegId, KeMethod, PrfId, ProtocolId, TransformType,
};
use crate::packet::{AttributeValue, SaPayload, Transform, WireProposal};

/// An encryption transform: algorithm and Key Length attribute (bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncrAlg {
    /// Transform ID.
    pub id: EncrId,
    /// Key Length attribute, if sent.
    pub key_bits: Option<u16>,
}

impl EncrAlg {
    /// An algorithm with a key length.
    pub const fn new(id: EncrId, key_bits: Option<u16>) -> Self {
        Self { id, key_bits }
    }
}

impl From<Encr> for EncrAlg {
    fn from(e: Encr) -> Self {
        Self::new(e.id(), e.key_length_attr())
    }
}

impl fmt::Display for EncrAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(Kind::Encr, self.id.0, self.key_bits))
    }
}

/// A proposal grouped by transform type; a configured proposal lists acceptable transforms
/// per type in preference order, a selected one has exactly one per type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// IKE or ESP.
    pub protocol: ProtocolId,
    /// Encryption algorithms.
    pub encr: Vec<EncrAlg>,
    /// Pseudorandom functions (IKE only).
    pub prf: Vec<PrfId>,
    /// Integrity algorithms (none with an AEAD).
    pub integ: Vec<IntegId>,
    /// Key exchange methods (IKE: mandatory; ESP: PFS groups, possibly `NONE`).
    pub ke: Vec<KeMethod>,
    /// Extended sequence numbers (ESP only).
    pub esn: Vec<EsnId>,
    /// Received transforms this model cannot represent: an unknown Transform Type (the
    /// whole proposal is then unacceptable, RFC 7296 §3.3.6) or unrecognized attributes
    /// (that transform alone is unacceptable).
    pub other: Vec<Transform>,
}

impl Proposal {
    fn empty(protocol: ProtocolId) -> Self {
        Self {
            protocol,
            encr: Vec::new(),
            prf: Vec::new(),
            integ: Vec::new(),
            ke: Vec::new(),
            esn: Vec::new(),
            other: Vec::new(),
        }
    }

    /// Parses one strongSwan proposal string, e.g. `aes128gcm16-prfsha256-x25519` (IKE) or
    /// `aes256-sha256` (ESP).
    pub fn parse(protocol: ProtocolId, s: &str) -> Result<Self, ProposalParseError> {
        if protocol != ProtocolId::IKE && protocol != ProtocolId::ESP {
            return Err(ProposalParseError::Protocol(protocol));
        }
        let s = s.trim();
        if s.is_empty() {
            return Err(ProposalParseError::Empty);
        }
        let mut p = Self::empty(protocol);
        for raw in s.split('-') {
            let token = raw.trim().to_ascii_lowercase();
            if token == "default" || token.ends_with('!') {
                return Err(ProposalParseError::UnknownToken(format!(
                    "{raw} (strongSwan's 'default' and '!' are not supported)"
                )));
            }
            let (kind, id, bits) =
                lookup(&token).ok_or_else(|| ProposalParseError::UnknownToken(raw.to_owned()))?;
            if !implemented(kind, id, bits) {
                return Err(ProposalParseError::NotImplemented(raw.to_owned()));
            }
            match kind {
                Kind::Encr => push_unique(&mut p.encr, EncrAlg::new(EncrId(id), bits)),
                Kind::Integ => push_unique(&mut p.integ, IntegId(id)),
                Kind::Prf if protocol == ProtocolId::IKE => push_unique(&mut p.prf, PrfId(id)),
                Kind::Esn if protocol == ProtocolId::ESP => push_unique(&mut p.esn, EsnId(id)),
                Kind::Ke => push_unique(&mut p.ke, KeMethod(id)),
                Kind::Prf | Kind::Esn => {
                    return Err(ProposalParseError::WrongProtocol {
                        token: raw.to_owned(),
                        protocol,
                    })
                }
            }
        }
        p.complete()?;
        Ok(p)
    }

    /// Parses a comma-separated list of proposals (strongSwan's `ike=` / `esp=` value).
    pub fn parse_list(protocol: ProtocolId, s: &str) -> Result<Vec<Self>, ProposalParseError> {
        s.split(',').map(|one| Self::parse(protocol, one)).collect()
    }

    /// Applies strongSwan's defaults and checks the mandatory transform types.
    fn complete(&mut self) -> Result<(), ProposalParseError> {
        let Some(first) = self.encr.first() else {
            return Err(ProposalParseError::Missing("encryption algorithm"));
        };
        let aead = first.id.is_aead();
        if self.encr.iter().any(|e| e.id.is_aead() != aead) {
            return Err(ProposalParseError::Invalid(
                "AEAD and non-AEAD ciphers cannot share a proposal",
            ));
        }
        if aead && !self.integ.is_empty() {
            return Err(ProposalParseError::Invalid(
                "an AEAD cipher takes no integrity algorithm",
            ));
        }
        if !aead && self.integ.is_empty() {
            return Err(ProposalParseError::Missing("integrity algorithm"));
        }
        if self.protocol == ProtocolId::IKE {
            if self.prf.is_empty() {
                // strongSwan: "No explicit PRF found. We assume the same algorithm as
                // used for integrity."
                self.prf = self
                    .integ
                    .iter()
                    .filter_map(|i| prf_for_integ(*i))
                    .collect();
            }
            if self.prf.is_empty() {
                return Err(ProposalParseError::Missing("PRF (e.g. prfsha256)"));
            }
            if self.ke.is_empty() {
                return Err(ProposalParseError::Missing("key exchange method"));
            }
            if self.ke.contains(&KeMethod::NONE) {
                return Err(ProposalParseError::Invalid(
                    "IKE needs a key exchange method",
                ));
            }
        } else if self.esn.is_empty() {
            self.esn.push(EsnId::NO_ESN);
        }
        Ok(())
    }

    /// The grouped view of a received proposal (the SPI and number stay in the wire form).
    pub fn from_wire(w: &WireProposal) -> Self {
        let mut p = Self::empty(w.protocol);
        for t in &w.transforms {
            let key_bits = match t.attributes.as_slice() {
                [] => Ok(None),
                [a] if a.attr_type == AttributeType::KEY_LENGTH
                    && t.transform_type == TransformType::ENCR =>
                {
                    match a.value {
                        AttributeValue::Tv(bits) => Ok(Some(bits)),
                        AttributeValue::Tlv(_) => Err(()),
                    }
                }
                _ => Err(()),
            };
            match (t.transform_type, key_bits) {
                (TransformType::ENCR, Ok(bits)) => p.encr.push(EncrAlg::new(EncrId(t.id), bits)),
                (TransformType::PRF, Ok(None)) => p.prf.push(PrfId(t.id)),
                (TransformType::INTEG, Ok(None)) => p.integ.push(IntegId(t.id)),
                (TransformType::KE, Ok(None)) => p.ke.push(KeMethod(t.id)),
                (TransformType::ESN, Ok(None)) => p.esn.push(EsnId(t.id)),
                _ => p.other.push(t.clone()),
            }
        }
        p
    }

    /// The wire form with a proposal number and SPI.
    pub fn to_wire(&self, number: u8, spi: Vec<u8>) -> WireProposal {
        let mut transforms = Vec::new();
        for e in &self.encr {
            transforms.push(match e.key_bits {
                Some(bits) => Transform::with_key_length(TransformType::ENCR, e.id.0, bits),
                None => Transform::new(TransformType::ENCR, e.id.0),
            });
        }
        let simple = |t, ids: &mut dyn Iterator<Item = u16>| {
            ids.map(|id| Transform::new(t, id)).collect::<Vec<_>>()
        };
        transforms.extend(simple(
            TransformType::INTEG,
            &mut self.integ.iter().map(|i| i.0),
        ));
        transforms.extend(simple(
            TransformType::PRF,
            &mut self.prf.iter().map(|i| i.0),
        ));
        transforms.extend(simple(TransformType::KE, &mut self.ke.iter().map(|i| i.0)));
        transforms.extend(simple(
            TransformType::ESN,
            &mut self.esn.iter().map(|i| i.0),
        ));
        transforms.extend(self.other.iter().cloned());
        WireProposal {
            number,
            protocol: self.protocol,
            spi,
            transforms,
        }
    }

    /// An SA payload offering `proposals` in order (numbered from 1), all with `spi`.
    pub fn sa_payload(proposals: &[Self], spi: &[u8]) -> SaPayload {
        SaPayload {
            proposals: proposals
                .iter()
                .zip(1u8..)
                .map(|(p, n)| p.to_wire(n, spi.to_vec()))
                .collect(),
        }
    }

    /// The strongSwan-syntax rendering prefixed with the protocol, as in logs:
    /// `IKE:aes128gcm16-prfsha256-x25519`.
    pub fn to_log_string(&self) -> String {
        let proto = match self.protocol {
            ProtocolId::IKE => "IKE".to_owned(),
            ProtocolId::ESP => "ESP".to_owned(),
            ProtocolId::AH => "AH".to_owned(),
            other => format!("PROTO_{}", other.0),
        };
        format!("{proto}:{self}")
    }

    fn has_unknown_transform_type(&self) -> bool {
        self.other
            .iter()
            .any(|t| !(1..=5).contains(&t.transform_type.0))
    }
}

impl fmt::Display for Proposal {
    /// strongSwan proposal-string syntax: encryption, integrity, PRF, key exchange, ESN
    /// (ESN omitted when it is the `noesn` default), then unrepresentable transforms as
    /// `TRANSFORM<type>_<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tokens: Vec<String> = Vec::new();
        tokens.extend(self.encr.iter().map(ToString::to_string));
        tokens.extend(self.integ.iter().map(|i| render(Kind::Integ, i.0, None)));
        tokens.extend(self.prf.iter().map(|i| render(Kind::Prf, i.0, None)));
        tokens.extend(self.ke.iter().map(|i| render(Kind::Ke, i.0, None)));
        if self.esn.as_slice() != [EsnId::NO_ESN] {
            tokens.extend(self.esn.iter().map(|i| render(Kind::Esn, i.0, None)));
        }
        tokens.extend(self.other.iter().map(|t| {
            let mut s = format!("TRANSFORM{}_{}", t.transform_type.0, t.id);
            if !t.attributes.is_empty() {
                s.push_str("_ATTRS");
            }
            s
        }));
        f.write_str(&tokens.join("-"))
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn prf_for_integ(i: IntegId) -> Option<PrfId> {
    Some(match i {
        IntegId::HMAC_SHA1_96 => PrfId::HMAC_SHA1,
        IntegId::HMAC_SHA2_256_128 => PrfId::HMAC_SHA2_256,
        IntegId::HMAC_SHA2_384_192 => PrfId::HMAC_SHA2_384,
        IntegId::HMAC_SHA2_512_256 => PrfId::HMAC_SHA2_512,
        IntegId::HMAC_MD5_96 => PrfId::HMAC_MD5,
        IntegId::AES_XCBC_96 => PrfId::AES128_XCBC,
        IntegId::AES_CMAC_96 => PrfId::AES128_CMAC,
        _ => return None,
    })
}

/// Why a proposal string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalParseError {
    /// Nothing to parse.
    #[error("empty proposal")]
    Empty,
    /// Not a strongSwan algorithm keyword.
    #[error("unknown algorithm '{0}'")]
    UnknownToken(String),
    /// A strongSwan keyword for an algorithm this implementation does not provide.
    #[error(
        "algorithm '{0}' is not implemented (supported: aes128, aes256, aes128gcm16, \
         aes256gcm16, chacha20poly1305, sha256, sha384, sha512, prfsha256, prfsha384, \
         prfsha512, modp2048, ecp256, ecp384, ecp521, x25519, esn, noesn)"
    )]
    NotImplemented(String),
    /// A keyword that makes no sense for this protocol (a PRF in ESP, ESN in IKE).
    #[error("'{token}' is not valid in a {protocol} proposal")]
    WrongProtocol {
        /// The keyword.
        token: String,
        /// The protocol.
        protocol: ProtocolId,
    },
    /// A mandatory transform type is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An invalid combination.
    #[error("{0}")]
    Invalid(&'static str),
    /// Only IKE and ESP proposals exist here.
    #[error("unsupported protocol {0}")]
    Protocol(ProtocolId),
}

/// The responder's pick (RFC 7296 §2.7): one transform per type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The Proposal Num to echo.
    pub number: u8,
    /// The initiator's SPI from that proposal (empty in IKE_SA_INIT).
    pub spi: Vec<u8>,
    /// The chosen transforms.
    pub proposal: Proposal,
}

impl Selected {
    /// The SA payload of the response: the chosen proposal under its original number, with
    /// the responder's own SPI (RFC 7296 §3.3.1; empty in IKE_SA_INIT).
    pub fn response(&self, own_spi: Vec<u8>) -> SaPayload {
        SaPayload {
            proposals: vec![self.proposal.to_wire(self.number, own_spi)],
        }
    }
}

/// No offered proposal was acceptable; both sides rendered in strongSwan syntax for the
/// log line the issue asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoProposalChosen {
    /// What the peer offered, e.g. `["IKE:aes128-sha1-prfsha1-modp1024"]`.
    pub offered: Vec<String>,
    /// What we accept.
    pub configured: Vec<String>,
}

impl fmt::Display for NoProposalChosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no proposal chosen: received proposals: {}; configured proposals: {}",
            self.offered.join(", "),
            self.configured.join(", ")
        )
    }
}

/// Options of [`select`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectOptions {
    /// Ignore key-exchange transforms: the Child SA created inside IKE_AUTH has no KE
    /// payload of its own, so PFS groups in its proposals are disregarded (strongSwan's
    /// `PROPOSAL_SKIP_KE`, RFC 7296 §1.2).
    pub skip_ke: bool,
}

/// Responder selection (RFC 7296 §2.7, §3.3.6): the first of the initiator's proposals
/// (in its order) that one of `configured` accepts; within it, for each transform type,
/// the first of the initiator's transforms that configuration lists.
///
/// A proposal with an unknown Transform Type, or missing a mandatory type (IKE: ENCR, PRF,
/// KE, plus INTEG for non-AEAD ciphers; ESP: ENCR, ESN, plus INTEG for non-AEAD) is
/// skipped; a transform with unrecognized attributes is never chosen.
pub fn select(
    offered: &SaPayload,
    configured: &[Proposal],
    opts: SelectOptions,
) -> Result<Selected, NoProposalChosen> {
    for w in &offered.proposals {
        let o = Proposal::from_wire(w);
        if o.has_unknown_transform_type() {
            continue;
        }
        for c in configured.iter().filter(|c| c.protocol == o.protocol) {
            if let Some(proposal) = intersect(&o, c, opts) {
                return Ok(Selected {
                    number: w.number,
                    spi: w.spi.clone(),
                    proposal,
                });
            }
        }
    }
    Err(NoProposalChosen {
        offered: offered
            .proposals
            .iter()
            .map(|w| Proposal::from_wire(w).to_log_string())
            .collect(),
        configured: configured.iter().map(Proposal::to_log_string).collect(),
    })
}

/// The initiator's check of the responder's SA payload: exactly one proposal, numbered as
/// one of ours, choosing one transform per type from that proposal.
pub fn verify_choice(
    offered: &[Proposal],
    response: &SaPayload,
    opts: SelectOptions,
) -> Result<Selected, Error> {
    let [w] = response.proposals.as_slice() else {
        return Err(PeerMisbehaved::BadProposal("response must hold exactly one proposal").into());
    };
    let ours = usize::from(w.number)
        .checked_sub(1)
        .and_then(|i| offered.get(i))
        .ok_or(PeerMisbehaved::BadProposal("unknown proposal number"))?;
    let chosen = Proposal::from_wire(w);
    let single = |n: usize| n == 1;
    let optional = |n: usize| n <= 1;
    let shape_ok = chosen.protocol == ours.protocol
        && chosen.other.is_empty()
        && single(chosen.encr.len())
        && optional(chosen.integ.len())
        && if ours.protocol == ProtocolId::IKE {
            single(chosen.prf.len()) && single(chosen.ke.len()) && chosen.esn.is_empty()
        } else {
            chosen.prf.is_empty() && single(chosen.esn.len()) && optional(chosen.ke.len())
        };
    if !shape_ok {
        return Err(PeerMisbehaved::BadProposal("not one transform per type").into());
    }
    match intersect(&chosen, ours, opts) {
        Some(p) if p == chosen || opts.skip_ke => Ok(Selected {
            number: w.number,
            spi: w.spi.clone(),
            proposal: chosen,
        }),
        _ => Err(PeerMisbehaved::BadProposal("chose transforms we did not offer").into()),
    }
}

fn first_common<T: PartialEq + Copy>(offered: &[T], accepted: &[T]) -> Option<T> {
    offered.iter().copied().find(|x| accepted.contains(x))
}

fn intersect(o: &Proposal, c: &Proposal, opts: SelectOptions) -> Option<Proposal> {
    let ike = o.protocol == ProtocolId::IKE;
    let (prf, esn) = if ike {
        if !o.esn.is_empty() {
            return None;
        }
        (vec![first_common(&o.prf, &c.prf)?], Vec::new())
    } else {
        if !o.prf.is_empty() {
            return None;
        }
        let accepted = if c.esn.is_empty() {
            vec![EsnId::NO_ESN]
        } else {
            c.esn.clone()
        };
        (Vec::new(), vec![first_common(&o.esn, &accepted)?])
    };
    let ke = if opts.skip_ke && !ike {
        Vec::new()
    } else {
        let none = [KeMethod::NONE];
        let offered = if o.ke.is_empty() { &none[..] } else { &o.ke };
        let accepted = if c.ke.is_empty() { &none[..] } else { &c.ke };
        let k = first_common(offered, accepted)?;
        if ike && k == KeMethod::NONE {
            return None;
        }
        if o.ke.is_empty() {
            Vec::new()
        } else {
            vec![k]
        }
    };
    for e in o.encr.iter().filter(|e| c.encr.contains(e)) {
        let integ = if e.id.is_aead() {
            // RFC 5282 §8 / RFC 7296 §3.3: an AEAD is negotiated without integrity (an
            // explicit INTEG NONE is echoed).
            if !c.integ.iter().all(|i| *i == IntegId::NONE) {
                continue;
            }
            if o.integ.contains(&IntegId::NONE) {
                vec![IntegId::NONE]
            } else {
                Vec::new()
            }
        } else {
            let offered: Vec<IntegId> = o
                .integ
                .iter()
                .copied()
                .filter(|i| *i != IntegId::NONE)
                .collect();
            match first_common(&offered, &c.integ) {
                Some(i) => vec![i],
                None => continue,
            }
        };
        return Some(Proposal {
            protocol: o.protocol,
            encr: vec![*e],
            prf,
            integ,
            ke,
            esn,
            other: Vec::new(),
        });
    }
    None
}

// ---- strongSwan keywords ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Encr,
    Integ,
    Prf,
    Ke,
    Esn,
}

/// Fixed keywords: (name, kind, id). The first name for an (kind, id) is the canonical
/// rendering. AES and Camellia names with key sizes are handled by [`lookup_sized`].
const KEYWORDS: &[(&str, Kind, u16)] = &[
    ("null", Kind::Encr, 11),
    ("des", Kind::Encr, 2),
    ("3des", Kind::Encr, 3),
    ("cast128", Kind::Encr, 6),
    ("chacha20poly1305", Kind::Encr, 28),
    ("sha1", Kind::Integ, 2),
    ("sha", Kind::Integ, 2),
    ("sha1_160", Kind::Integ, 7),
    ("sha256", Kind::Integ, 12),
    ("sha2_256", Kind::Integ, 12),
    ("sha384", Kind::Integ, 13),
    ("sha2_384", Kind::Integ, 13),
    ("sha512", Kind::Integ, 14),
    ("sha2_512", Kind::Integ, 14),
    ("md5", Kind::Integ, 1),
    ("md5_128", Kind::Integ, 6),
    ("aesxcbc", Kind::Integ, 5),
    ("aescmac", Kind::Integ, 8),
    ("prfsha1", Kind::Prf, 2),
    ("prfsha256", Kind::Prf, 5),
    ("prfsha384", Kind::Prf, 6),
    ("prfsha512", Kind::Prf, 7),
    ("prfmd5", Kind::Prf, 1),
    ("prfaesxcbc", Kind::Prf, 4),
    ("prfaescmac", Kind::Prf, 8),
    ("none", Kind::Ke, 0),
    ("modpnone", Kind::Ke, 0),
    ("modp768", Kind::Ke, 1),
    ("modp1024", Kind::Ke, 2),
    ("modp1536", Kind::Ke, 5),
    ("modp2048", Kind::Ke, 14),
    ("modp3072", Kind::Ke, 15),
    ("modp4096", Kind::Ke, 16),
    ("modp6144", Kind::Ke, 17),
    ("modp8192", Kind::Ke, 18),
    ("ecp256", Kind::Ke, 19),
    ("ecp384", Kind::Ke, 20),
    ("ecp521", Kind::Ke, 21),
    ("modp1024s160", Kind::Ke, 22),
    ("modp2048s224", Kind::Ke, 23),
    ("modp2048s256", Kind::Ke, 24),
    ("ecp192", Kind::Ke, 25),
    ("ecp224", Kind::Ke, 26),
    ("ecp224bp", Kind::Ke, 27),
    ("ecp256bp", Kind::Ke, 28),
    ("ecp384bp", Kind::Ke, 29),
    ("ecp512bp", Kind::Ke, 30),
    ("x25519", Kind::Ke, 31),
    ("curve25519", Kind::Ke, 31),
    ("x448", Kind::Ke, 32),
    ("curve448", Kind::Ke, 32),
    ("noesn", Kind::Esn, 0),
    ("esn", Kind::Esn, 1),
];

/// Sized cipher families: (prefix, suffix → (id, canonical suffix)).
const SIZED: &[(&str, &[(&str, u16)])] = &[
    (
        "aes",
        &[
            ("", 12),
            ("ctr", 13),
            ("ccm8", 14),
            ("ccm64", 14),
            ("ccm12", 15),
            ("ccm96", 15),
            ("ccm16", 16),
            ("ccm128", 16),
            ("ccm", 16),
            ("gcm8", 18),
            ("gcm64", 18),
            ("gcm12", 19),
            ("gcm96", 19),
            ("gcm16", 20),
            ("gcm128", 20),
            ("gcm", 20),
            ("gmac", 21),
        ],
    ),
    (
        "camellia",
        &[
            ("", 23),
            ("ctr", 24),
            ("ccm8", 25),
            ("ccm64", 25),
            ("ccm12", 26),
            ("ccm96", 26),
            ("ccm16", 27),
            ("ccm128", 27),
        ],
    ),
];

fn lookup(token: &str) -> Option<(Kind, u16, Option<u16>)> {
    if let Some((_, kind, id)) = KEYWORDS.iter().find(|(n, _, _)| *n == token) {
        return Some((*kind, *id, None));
    }
    lookup_sized(token)
}

fn lookup_sized(token: &str) -> Option<(Kind, u16, Option<u16>)> {
    for (prefix, modes) in SIZED {
        let Some(rest) = token.strip_prefix(prefix) else {
            continue;
        };
        // A bare "aes" (or "camellia") means the 128-bit CBC cipher, as in strongSwan.
        let (bits, mode) = match rest.get(..3).and_then(|b| b.parse::<u16>().ok()) {
            Some(b @ (128 | 192 | 256)) => (b, rest.get(3..).unwrap_or_default()),
            _ if rest.is_empty() => (128, rest),
            _ => continue,
        };
        if let Some((_, id)) = modes.iter().find(|(m, _)| *m == mode) {
            return Some((Kind::Encr, *id, Some(bits)));
        }
    }
    None
}

fn implemented(kind: Kind, id: u16, bits: Option<u16>) -> bool {
    match kind {
        Kind::Encr => Encr::from_id(EncrId(id), bits).is_some(),
        Kind::Integ => Integ::from_id(IntegId(id)).is_some(),
        Kind::Prf => Prf::from_id(PrfId(id)).is_some(),
        // `none` is checked per protocol by `complete`.
        Kind::Ke => dh::is_supported(KeMethod(id)) || KeMethod(id) == KeMethod::NONE,
        Kind::Esn => true,
    }
}

/// The canonical keyword, or a registry-style fallback (`ENCR_99`, `AES_CBC_64`, ...).
fn render(kind: Kind, id: u16, bits: Option<u16>) -> String {
    if kind == Kind::Encr {
        if let Some(bits @ (128 | 192 | 256)) = bits {
            for (prefix, modes) in SIZED {
                if let Some((mode, _)) = modes.iter().find(|(_, m)| *m == id) {
                    return format!("{prefix}{bits}{mode}");
                }
            }
        }
    }
    if bits.is_none() {
        if let Some((name, _, _)) = KEYWORDS.iter().find(|(_, k, i)| *k == kind && *i == id) {
            return (*name).to_owned();
        }
    }
    let name = match kind {
        Kind::Encr => EncrId(id).name().map(str::to_owned),
        Kind::Integ => IntegId(id).name().map(str::to_owned),
        Kind::Prf => PrfId(id).name().map(str::to_owned),
        Kind::Ke => KeMethod(id).name().map(str::to_owned),
        Kind::Esn => EsnId(id).name().map(str::to_owned),
    };
    let prefix = match kind {
        Kind::Encr => "ENCR",
        Kind::Integ => "INTEG",
        Kind::Prf => "PRF",
        Kind::Ke => "KE",
        Kind::Esn => "ESN",
    };
    let mut s = match name {
        Some(n) => format!("{prefix}_{n}"),
        None => format!("{prefix}_{id}"),
    };
    if let Some(b) = bits {
        s.push_str(&format!("_{b}"));
    }
    s
}
