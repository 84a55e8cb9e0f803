//! IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" code points.
//!
//! Every registry is an *open* newtype: a value this crate has no name for still decodes,
//! travels through the API and encodes back to the same bytes; only negotiation decides
//! whether it is acceptable. Names are the registry's, so logs can be grepped against RFCs.
//!
//! <https://www.iana.org/assignments/ikev2-parameters/ikev2-parameters.xhtml>

use std::fmt;

/// Defines an open code-point newtype with named constants, `Debug`/`Display` by name, and
/// lossless conversions to and from the raw integer.
macro_rules! codepoint {
    (
        $(#[$meta:meta])*
        $name:ident($ty:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $val:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $ty);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($val); )*

            /// The registry name of this value, if this crate knows it.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

codepoint! {
    /// IKEv2 Exchange Types (RFC 7296 §3.1).
    ExchangeType(u8) {
        /// RFC 7296 §1.2.
        IKE_SA_INIT = 34,
        /// RFC 7296 §1.2.
        IKE_AUTH = 35,
        /// RFC 7296 §1.3.
        CREATE_CHILD_SA = 36,
        /// RFC 7296 §1.4.
        INFORMATIONAL = 37,
        /// RFC 5723.
        IKE_SESSION_RESUME = 38,
        /// RFC 9242.
        IKE_INTERMEDIATE = 43,
        /// RFC 9370.
        IKE_FOLLOWUP_KE = 44,
    }
}

codepoint! {
    /// IKEv2 Payload Types (RFC 7296 §3.2).
    PayloadType(u8) {
        /// No Next Payload.
        NONE = 0,
        /// Security Association (§3.3).
        SA = 33,
        /// Key Exchange (§3.4).
        KE = 34,
        /// Identification - Initiator (§3.5).
        IDI = 35,
        /// Identification - Responder (§3.5).
        IDR = 36,
        /// Certificate (§3.6).
        CERT = 37,
        /// Certificate Request (§3.7).
        CERTREQ = 38,
        /// Authentication (§3.8).
        AUTH = 39,
        /// Nonce (§3.9).
        NONCE = 40,
        /// Notify (§3.10).
        NOTIFY = 41,
        /// Delete (§3.11).
        DELETE = 42,
        /// Vendor ID (§3.12).
        VENDOR_ID = 43,
        /// Traffic Selector - Initiator (§3.13).
        TSI = 44,
        /// Traffic Selector - Responder (§3.13).
        TSR = 45,
        /// Encrypted and Authenticated (§3.14).
        SK = 46,
        /// Configuration (§3.15).
        CP = 47,
        /// Extensible Authentication (§3.16).
        EAP = 48,
        /// Encrypted and Authenticated Fragment (RFC 7383).
        SKF = 53,
    }
}

codepoint! {
    /// Security Protocol Identifiers (RFC 7296 §3.3.1).
    ProtocolId(u8) {
        /// Not a protocol: used in notifications about the IKE SA itself.
        NONE = 0,
        /// IKE.
        IKE = 1,
        /// AH (RFC 4302).
        AH = 2,
        /// ESP (RFC 4303).
        ESP = 3,
    }
}

codepoint! {
    /// Transform Type Values (RFC 7296 §3.3.2).
    TransformType(u8) {
        /// Encryption Algorithm.
        ENCR = 1,
        /// Pseudorandom Function.
        PRF = 2,
        /// Integrity Algorithm.
        INTEG = 3,
        /// Diffie-Hellman Group ("Key Exchange Method" since RFC 9370).
        KE = 4,
        /// Extended Sequence Numbers.
        ESN = 5,
    }
}

codepoint! {
    /// Transform Type 1 - Encryption Algorithm Transform IDs.
    EncrId(u16) {
        /// RFC 2405.
        DES_IV64 = 1,
        /// RFC 2405.
        DES = 2,
        /// RFC 2451.
        TRIPLE_DES = 3,
        /// RFC 2451.
        RC5 = 4,
        /// RFC 2451.
        IDEA = 5,
        /// RFC 2451.
        CAST = 6,
        /// RFC 2451.
        BLOWFISH = 7,
        /// RFC 2451.
        THREE_IDEA = 8,
        /// RFC 7296.
        DES_IV32 = 9,
        /// RFC 2410 (ESP only).
        NULL = 11,
        /// RFC 3602; needs a Key Length attribute.
        AES_CBC = 12,
        /// RFC 3686.
        AES_CTR = 13,
        /// RFC 4309.
        AES_CCM_8 = 14,
        /// RFC 4309.
        AES_CCM_12 = 15,
        /// RFC 4309.
        AES_CCM_16 = 16,
        /// RFC 4106 / RFC 5282.
        AES_GCM_8 = 18,
        /// RFC 4106 / RFC 5282.
        AES_GCM_12 = 19,
        /// RFC 4106 / RFC 5282; needs a Key Length attribute.
        AES_GCM_16 = 20,
        /// RFC 4543 (ESP only).
        NULL_AUTH_AES_GMAC = 21,
        /// RFC 5529.
        CAMELLIA_CBC = 23,
        /// RFC 5529.
        CAMELLIA_CTR = 24,
        /// RFC 5529.
        CAMELLIA_CCM_8 = 25,
        /// RFC 5529.
        CAMELLIA_CCM_12 = 26,
        /// RFC 5529.
        CAMELLIA_CCM_16 = 27,
        /// RFC 7634; fixed 256-bit key, never a Key Length attribute.
        CHACHA20_POLY1305 = 28,
    }
}

codepoint! {
    /// Transform Type 2 - Pseudorandom Function Transform IDs.
    PrfId(u16) {
        /// RFC 2104.
        HMAC_MD5 = 1,
        /// RFC 2104.
        HMAC_SHA1 = 2,
        /// RFC 2104.
        HMAC_TIGER = 3,
        /// RFC 4434.
        AES128_XCBC = 4,
        /// RFC 4868.
        HMAC_SHA2_256 = 5,
        /// RFC 4868.
        HMAC_SHA2_384 = 6,
        /// RFC 4868.
        HMAC_SHA2_512 = 7,
        /// RFC 4615.
        AES128_CMAC = 8,
    }
}

codepoint! {
    /// Transform Type 3 - Integrity Algorithm Transform IDs.
    IntegId(u16) {
        /// No integrity algorithm (with AEAD ciphers).
        NONE = 0,
        /// RFC 2403.
        HMAC_MD5_96 = 1,
        /// RFC 2404.
        HMAC_SHA1_96 = 2,
        /// RFC 7296.
        DES_MAC = 3,
        /// RFC 7296.
        KPDK_MD5 = 4,
        /// RFC 3566.
        AES_XCBC_96 = 5,
        /// RFC 4595.
        HMAC_MD5_128 = 6,
        /// RFC 4595.
        HMAC_SHA1_160 = 7,
        /// RFC 4494.
        AES_CMAC_96 = 8,
        /// RFC 4543.
        AES_128_GMAC = 9,
        /// RFC 4543.
        AES_192_GMAC = 10,
        /// RFC 4543.
        AES_256_GMAC = 11,
        /// RFC 4868.
        HMAC_SHA2_256_128 = 12,
        /// RFC 4868.
        HMAC_SHA2_384_192 = 13,
        /// RFC 4868.
        HMAC_SHA2_512_256 = 14,
    }
}

codepoint! {
    /// Transform Type 4 - Key Exchange Method (Diffie-Hellman Group) Transform IDs.
    KeMethod(u16) {
        /// No key exchange (Child SAs without PFS).
        NONE = 0,
        /// RFC 2409, 768-bit MODP.
        MODP768 = 1,
        /// RFC 2409, 1024-bit MODP.
        MODP1024 = 2,
        /// RFC 3526, 1536-bit MODP.
        MODP1536 = 5,
        /// RFC 3526, 2048-bit MODP (group 14).
        MODP2048 = 14,
        /// RFC 3526, 3072-bit MODP.
        MODP3072 = 15,
        /// RFC 3526, 4096-bit MODP.
        MODP4096 = 16,
        /// RFC 3526, 6144-bit MODP.
        MODP6144 = 17,
        /// RFC 3526, 8192-bit MODP.
        MODP8192 = 18,
        /// RFC 5903, 256-bit random ECP (NIST P-256).
        ECP256 = 19,
        /// RFC 5903, 384-bit random ECP (NIST P-384).
        ECP384 = 20,
        /// RFC 5903, 521-bit random ECP (NIST P-521).
        ECP521 = 21,
        /// RFC 5114, 1024-bit MODP with 160-bit prime order subgroup.
        MODP1024S160 = 22,
        /// RFC 5114, 2048-bit MODP with 224-bit prime order subgroup.
        MODP2048S224 = 23,
        /// RFC 5114, 2048-bit MODP with 256-bit prime order subgroup.
        MODP2048S256 = 24,
        /// RFC 5114, 192-bit random ECP.
        ECP192 = 25,
        /// RFC 5114, 224-bit random ECP.
        ECP224 = 26,
        /// RFC 6954, brainpoolP224r1.
        ECP224BP = 27,
        /// RFC 6954, brainpoolP256r1.
        ECP256BP = 28,
        /// RFC 6954, brainpoolP384r1.
        ECP384BP = 29,
        /// RFC 6954, brainpoolP512r1.
        ECP512BP = 30,
        /// RFC 8031, Curve25519 (X25519).
        CURVE25519 = 31,
        /// RFC 8031, Curve448 (X448).
        CURVE448 = 32,
    }
}

codepoint! {
    /// Transform Type 5 - Extended Sequence Numbers Transform IDs.
    EsnId(u16) {
        /// 32-bit sequence numbers.
        NO_ESN = 0,
        /// 64-bit extended sequence numbers.
        ESN = 1,
    }
}

codepoint! {
    /// IKEv2 Transform Attribute Types (RFC 7296 §3.3.5), without the AF bit.
    AttributeType(u16) {
        /// Key Length in bits; always TV format.
        KEY_LENGTH = 14,
    }
}

codepoint! {
    /// IKEv2 Identification Payload ID Types (RFC 7296 §3.5).
    IdType(u8) {
        /// A single four-octet IPv4 address.
        ID_IPV4_ADDR = 1,
        /// A fully-qualified domain name string, no terminator.
        ID_FQDN = 2,
        /// A fully-qualified RFC 822 email address string.
        ID_RFC822_ADDR = 3,
        /// A single sixteen-octet IPv6 address.
        ID_IPV6_ADDR = 5,
        /// The binary DER encoding of an ASN.1 X.500 Distinguished Name.
        ID_DER_ASN1_DN = 9,
        /// The binary DER encoding of an ASN.1 X.509 GeneralName.
        ID_DER_ASN1_GN = 10,
        /// An opaque octet stream for vendor-specific information.
        ID_KEY_ID = 11,
        /// RFC 4595.
        ID_FC_NAME = 12,
        /// RFC 7619.
        ID_NULL = 13,
    }
}

codepoint! {
    /// IKEv2 Authentication Method (RFC 7296 §3.8).
    AuthMethod(u8) {
        /// RSA Digital Signature.
        RSA_SIG = 1,
        /// Shared Key Message Integrity Code (PSK, §2.15).
        SHARED_KEY_MIC = 2,
        /// DSS Digital Signature.
        DSS_SIG = 3,
        /// RFC 4754.
        ECDSA_SHA256_P256 = 9,
        /// RFC 4754.
        ECDSA_SHA384_P384 = 10,
        /// RFC 4754.
        ECDSA_SHA512_P521 = 11,
        /// RFC 6467.
        GENERIC_SECURE_PASSWORD = 12,
        /// RFC 7619.
        NULL_AUTH = 13,
        /// RFC 7427.
        DIGITAL_SIGNATURE = 14,
    }
}

codepoint! {
    /// IKEv2 Traffic Selector Types (RFC 7296 §3.13.1).
    TsType(u8) {
        /// A range of IPv4 addresses.
        TS_IPV4_ADDR_RANGE = 7,
        /// A range of IPv6 addresses.
        TS_IPV6_ADDR_RANGE = 8,
        /// RFC 4595.
        TS_FC_ADDR_RANGE = 9,
    }
}

codepoint! {
    /// IKEv2 Certificate Encodings (RFC 7296 §3.6).
    CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate.
        PKCS7_X509 = 1,
        /// PGP Certificate.
        PGP = 2,
        /// DNS Signed Key.
        DNS_SIGNED_KEY = 3,
        /// X.509 Certificate - Signature.
        X509_SIGNATURE = 4,
        /// Kerberos Token.
        KERBEROS = 6,
        /// Certificate Revocation List (CRL).
        CRL = 7,
        /// Authority Revocation List (ARL).
        ARL = 8,
        /// SPKI Certificate.
        SPKI = 9,
        /// X.509 Certificate - Attribute.
        X509_ATTRIBUTE = 10,
        /// Raw RSA Key (deprecated).
        RAW_RSA_KEY = 11,
        /// Hash and URL of X.509 certificate.
        HASH_URL_X509_CERT = 12,
        /// Hash and URL of X.509 bundle.
        HASH_URL_X509_BUNDLE = 13,
        /// RFC 7670.
        RAW_PUBLIC_KEY = 15,
    }
}

codepoint! {
    /// IKEv2 Notify Message Types (RFC 7296 §3.10.1). Values below 16384 are errors,
    /// values from 16384 are status notifications.
    NotifyType(u16) {
        // ---- Error types, RFC 7296 §3.10.1 ----
        /// The payload type is carried as one octet of notification data.
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        /// A message arrived for an IKE SA we do not know.
        INVALID_IKE_SPI = 4,
        /// The peer's major version is higher than ours.
        INVALID_MAJOR_VERSION = 5,
        /// The message was malformed or failed a sanity check.
        INVALID_SYNTAX = 7,
        /// The message ID was outside the window (rarely sent; see §2.3).
        INVALID_MESSAGE_ID = 9,
        /// An ESP/AH packet arrived for an SPI we do not know.
        INVALID_SPI = 11,
        /// None of the proposed SAs were acceptable.
        NO_PROPOSAL_CHOSEN = 14,
        /// The KE group is not the one we chose; data: the accepted group (2 octets).
        INVALID_KE_PAYLOAD = 17,
        /// The AUTH payload did not verify, or the peer is not authorized.
        AUTHENTICATION_FAILED = 24,
        /// Only a single pair of traffic selectors is acceptable.
        SINGLE_PAIR_REQUIRED = 34,
        /// No more Child SAs are accepted on this IKE SA.
        NO_ADDITIONAL_SAS = 35,
        /// No internal address could be assigned.
        INTERNAL_ADDRESS_FAILURE = 36,
        /// A CP payload was required but missing.
        FAILED_CP_REQUIRED = 37,
        /// The traffic selectors were not acceptable.
        TS_UNACCEPTABLE = 38,
        /// A packet's selectors did not match its SA.
        INVALID_SELECTORS = 39,
        /// RFC 4555 (MOBIKE).
        UNACCEPTABLE_ADDRESSES = 40,
        /// RFC 4555 (MOBIKE).
        UNEXPECTED_NAT_DETECTED = 41,
        /// RFC 5026.
        USE_ASSIGNED_HOA = 42,
        /// A collision or transient condition; try again later (§2.25).
        TEMPORARY_FAILURE = 43,
        /// The Child SA to rekey does not exist (§2.25).
        CHILD_SA_NOT_FOUND = 44,

        // ---- Status types, RFC 7296 §3.10.1 ----
        /// This is the only IKE SA between the two identities (§2.4).
        INITIAL_CONTACT = 16384,
        /// Data: the window size, 4 octets (§2.3).
        SET_WINDOW_SIZE = 16385,
        /// Further traffic selectors would have been acceptable (§2.9).
        ADDITIONAL_TS_POSSIBLE = 16386,
        /// Data: CPI and IPComp transform ID (§2.22).
        IPCOMP_SUPPORTED = 16387,
        /// Data: SHA-1(SPIi | SPIr | source IP | source port) (§2.23).
        NAT_DETECTION_SOURCE_IP = 16388,
        /// Data: SHA-1(SPIi | SPIr | destination IP | destination port) (§2.23).
        NAT_DETECTION_DESTINATION_IP = 16389,
        /// Data: the responder's cookie, 1..=64 octets (§2.6).
        COOKIE = 16390,
        /// Request or accept a transport-mode Child SA (§1.3.1).
        USE_TRANSPORT_MODE = 16391,
        /// Hash-and-URL certificate lookup supported (§3.6).
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        /// In CREATE_CHILD_SA: the SPI of the Child SA being rekeyed (§1.3.3).
        REKEY_SA = 16393,
        /// The sender will not accept TFC padding (§1.3.1).
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        /// Non-first fragments are sent on this SA too (§1.3.1).
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        /// RFC 4555.
        MOBIKE_SUPPORTED = 16396,
        /// RFC 4555.
        ADDITIONAL_IP4_ADDRESS = 16397,
        /// RFC 4555.
        ADDITIONAL_IP6_ADDRESS = 16398,
        /// RFC 4555.
        NO_ADDITIONAL_ADDRESSES = 16399,
        /// RFC 4555.
        UPDATE_SA_ADDRESSES = 16400,
        /// RFC 4555.
        COOKIE2 = 16401,
        /// RFC 4555.
        NO_NATS_ALLOWED = 16402,
        /// RFC 4478.
        AUTH_LIFETIME = 16403,
        /// RFC 4739.
        MULTIPLE_AUTH_SUPPORTED = 16404,
        /// RFC 4739.
        ANOTHER_AUTH_FOLLOWS = 16405,
        /// RFC 5685.
        REDIRECT_SUPPORTED = 16406,
        /// RFC 5685.
        REDIRECT = 16407,
        /// RFC 5685.
        REDIRECTED_FROM = 16408,
        /// RFC 6023.
        CHILDLESS_IKEV2_SUPPORTED = 16418,
        /// RFC 7383.
        IKEV2_FRAGMENTATION_SUPPORTED = 16430,
        /// RFC 7427.
        SIGNATURE_HASH_ALGORITHMS = 16431,
        /// RFC 9242.
        INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
    }
}

impl NotifyType {
    /// Whether this is an error type (RFC 7296 §3.10.1: values below 16384).
    pub const fn is_error(self) -> bool {
        self.0 < 16384
    }
}

impl EncrId {
    /// Whether this is an AEAD cipher (combined mode; no separate integrity transform).
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            Self::AES_CCM_8
                | Self::AES_CCM_12
                | Self::AES_CCM_16
                | Self::AES_GCM_8
                | Self::AES_GCM_12
                | Self::AES_GCM_16
                | Self::CAMELLIA_CCM_8
                | Self::CAMELLIA_CCM_12
                | Self::CAMELLIA_CCM_16
                | Self::CHACHA20_POLY1305
        )
    }
}
