//! Code points from the IANA BGP registries, as open newtypes: a value this crate does not
//! know still decodes, round-trips and prints (`unknown(N)`), and the ones it knows have
//! names.
//!
//! Closed enums are used only where an unknown value is itself an error the RFCs name
//! ([`Origin`], [`SegmentType`](crate::packet::attribute::SegmentType)) or where the crate
//! supports a fixed set ([`Family`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares an open code-point newtype with named constants and a `name()` lookup.
macro_rules! code_points {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($ty:ty);
        $( $(#[$cmeta:meta])* $konst:ident = $val:literal => $text:literal, )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $ty);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($val); )*

            /// The registry's name for this value, if this crate knows it.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown({})", self.0),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
    };
}

code_points! {
    /// BGP message type (RFC 4271 §4.1, RFC 2918 §3).
    pub struct MessageType(u8);
    /// OPEN (RFC 4271 §4.2).
    OPEN = 1 => "OPEN",
    /// UPDATE (RFC 4271 §4.3).
    UPDATE = 2 => "UPDATE",
    /// NOTIFICATION (RFC 4271 §4.5).
    NOTIFICATION = 3 => "NOTIFICATION",
    /// KEEPALIVE (RFC 4271 §4.4).
    KEEPALIVE = 4 => "KEEPALIVE",
    /// ROUTE-REFRESH (RFC 2918 §3).
    ROUTE_REFRESH = 5 => "ROUTE-REFRESH",
}

code_points! {
    /// Address Family Identifier (IANA "Address Family Numbers").
    pub struct Afi(u16);
    /// IPv4.
    IPV4 = 1 => "IPv4",
    /// IPv6.
    IPV6 = 2 => "IPv6",
}

code_points! {
    /// Subsequent Address Family Identifier (RFC 4760).
    pub struct Safi(u8);
    /// Unicast forwarding.
    UNICAST = 1 => "unicast",
    /// Multicast forwarding.
    MULTICAST = 2 => "multicast",
}

code_points! {
    /// Path attribute type code (IANA "BGP Path Attributes").
    pub struct AttrType(u8);
    /// ORIGIN, well-known mandatory (RFC 4271 §5.1.1).
    ORIGIN = 1 => "ORIGIN",
    /// AS_PATH, well-known mandatory (RFC 4271 §5.1.2).
    AS_PATH = 2 => "AS_PATH",
    /// NEXT_HOP, well-known mandatory for IPv4 NLRI (RFC 4271 §5.1.3).
    NEXT_HOP = 3 => "NEXT_HOP",
    /// MULTI_EXIT_DISC, optional non-transitive (RFC 4271 §5.1.4).
    MULTI_EXIT_DISC = 4 => "MULTI_EXIT_DISC",
    /// LOCAL_PREF, well-known, internal peers only (RFC 4271 §5.1.5).
    LOCAL_PREF = 5 => "LOCAL_PREF",
    /// ATOMIC_AGGREGATE, well-known discretionary (RFC 4271 §5.1.6).
    ATOMIC_AGGREGATE = 6 => "ATOMIC_AGGREGATE",
    /// AGGREGATOR, optional transitive (RFC 4271 §5.1.7).
    AGGREGATOR = 7 => "AGGREGATOR",
    /// COMMUNITIES, optional transitive (RFC 1997).
    COMMUNITIES = 8 => "COMMUNITIES",
    /// ORIGINATOR_ID, optional non-transitive (RFC 4456).
    ORIGINATOR_ID = 9 => "ORIGINATOR_ID",
    /// CLUSTER_LIST, optional non-transitive (RFC 4456).
    CLUSTER_LIST = 10 => "CLUSTER_LIST",
    /// MP_REACH_NLRI, optional non-transitive (RFC 4760 §3).
    MP_REACH_NLRI = 14 => "MP_REACH_NLRI",
    /// MP_UNREACH_NLRI, optional non-transitive (RFC 4760 §4).
    MP_UNREACH_NLRI = 15 => "MP_UNREACH_NLRI",
    /// EXTENDED COMMUNITIES, optional transitive (RFC 4360).
    EXTENDED_COMMUNITIES = 16 => "EXTENDED_COMMUNITIES",
    /// AS4_PATH, optional transitive (RFC 6793).
    AS4_PATH = 17 => "AS4_PATH",
    /// AS4_AGGREGATOR, optional transitive (RFC 6793).
    AS4_AGGREGATOR = 18 => "AS4_AGGREGATOR",
    /// LARGE_COMMUNITY, optional transitive (RFC 8092).
    LARGE_COMMUNITY = 32 => "LARGE_COMMUNITY",
}

code_points! {
    /// Capability code (IANA "Capability Codes", RFC 5492).
    pub struct CapabilityCode(u8);
    /// Multiprotocol Extensions (RFC 4760 §8).
    MULTIPROTOCOL = 1 => "multiprotocol",
    /// Route Refresh (RFC 2918 §2).
    ROUTE_REFRESH = 2 => "route-refresh",
    /// Extended Next Hop Encoding (RFC 8950).
    EXTENDED_NEXT_HOP = 5 => "extended-next-hop",
    /// Extended Message (RFC 8654).
    EXTENDED_MESSAGE = 6 => "extended-message",
    /// BGP Role (RFC 9234).
    ROLE = 9 => "role",
    /// Graceful Restart (RFC 4724 §3).
    GRACEFUL_RESTART = 64 => "graceful-restart",
    /// Support for 4-octet AS numbers (RFC 6793 §3).
    FOUR_OCTET_AS = 65 => "4-octet-as",
    /// ADD-PATH (RFC 7911).
    ADD_PATH = 69 => "add-path",
    /// Enhanced Route Refresh (RFC 7313).
    ENHANCED_ROUTE_REFRESH = 70 => "enhanced-route-refresh",
    /// Long-Lived Graceful Restart (RFC 9494).
    LONG_LIVED_GRACEFUL_RESTART = 71 => "llgr",
    /// FQDN (draft-walton-bgp-hostname-capability).
    FQDN = 73 => "fqdn",
    /// Pre-standard Cisco route refresh.
    ROUTE_REFRESH_CISCO = 128 => "route-refresh-cisco",
}

code_points! {
    /// NOTIFICATION error code (RFC 4271 §4.5, RFC 7313 §5).
    ///
    /// Subcodes are `u8` constants in the modules [`header_error`], [`open_error`],
    /// [`update_error`], [`fsm_error`], [`cease`] and [`route_refresh_error`].
    pub struct ErrorCode(u8);
    /// Message Header Error.
    MESSAGE_HEADER = 1 => "Message Header Error",
    /// OPEN Message Error.
    OPEN_MESSAGE = 2 => "OPEN Message Error",
    /// UPDATE Message Error.
    UPDATE_MESSAGE = 3 => "UPDATE Message Error",
    /// Hold Timer Expired.
    HOLD_TIMER_EXPIRED = 4 => "Hold Timer Expired",
    /// Finite State Machine Error.
    FSM = 5 => "Finite State Machine Error",
    /// Cease.
    CEASE = 6 => "Cease",
    /// ROUTE-REFRESH Message Error (RFC 7313).
    ROUTE_REFRESH = 7 => "ROUTE-REFRESH Message Error",
}

/// Subcodes of Message Header Error (RFC 4271 §4.5).
pub mod header_error {
    /// Connection Not Synchronized (marker not all ones).
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    /// Bad Message Length. Data: the erroneous Length field.
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    /// Bad Message Type. Data: the erroneous Type field.
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of OPEN Message Error (RFC 4271 §4.5, RFC 5492).
pub mod open_error {
    /// No specific subcode.
    pub const UNSPECIFIC: u8 = 0;
    /// Unsupported Version Number. Data: the largest supported version (2 octets).
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    /// Bad Peer AS.
    pub const BAD_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Unacceptable Hold Time.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// Unsupported Capability (RFC 5492).
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// Subcodes of UPDATE Message Error (RFC 4271 §4.5).
pub mod update_error {
    /// Malformed Attribute List.
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// Unrecognized Well-known Attribute. Data: the attribute.
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    /// Missing Well-known Attribute. Data: the type code.
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    /// Attribute Flags Error. Data: the attribute.
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    /// Attribute Length Error. Data: the attribute.
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    /// Invalid ORIGIN Attribute.
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    /// Invalid NEXT_HOP Attribute.
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    /// Optional Attribute Error.
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    /// Invalid Network Field.
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    /// Malformed AS_PATH.
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of Finite State Machine Error (RFC 6608).
pub mod fsm_error {
    /// Unspecified Error.
    pub const UNSPECIFIED: u8 = 0;
    /// Receive Unexpected Message in OpenSent State.
    pub const UNEXPECTED_IN_OPENSENT: u8 = 1;
    /// Receive Unexpected Message in OpenConfirm State.
    pub const UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    /// Receive Unexpected Message in Established State.
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Subcodes of Cease (RFC 4486).
pub mod cease {
    /// Maximum Number of Prefixes Reached. Data: AFI (2), SAFI (1), upper bound (4).
    pub const MAX_PREFIXES: u8 = 1;
    /// Administrative Shutdown.
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Administrative Reset.
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    /// Connection Rejected.
    pub const CONNECTION_REJECTED: u8 = 5;
    /// Other Configuration Change.
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    /// Connection Collision Resolution.
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    /// Out of Resources.
    pub const OUT_OF_RESOURCES: u8 = 8;
}

/// Subcodes of ROUTE-REFRESH Message Error (RFC 7313 §5).
pub mod route_refresh_error {
    /// Invalid Message Length.
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// The human name of a NOTIFICATION (code, subcode) pair, if known.
pub const fn subcode_name(code: ErrorCode, subcode: u8) -> Option<&'static str> {
    Some(match (code.0, subcode) {
        (1, 1) => "Connection Not Synchronized",
        (1, 2) => "Bad Message Length",
        (1, 3) => "Bad Message Type",
        (2, 0) | (3, 0) | (6, 0) | (7, 0) => "Unspecific",
        (2, 1) => "Unsupported Version Number",
        (2, 2) => "Bad Peer AS",
        (2, 3) => "Bad BGP Identifier",
        (2, 4) => "Unsupported Optional Parameter",
        (2, 6) => "Unacceptable Hold Time",
        (2, 7) => "Unsupported Capability",
        (3, 1) => "Malformed Attribute List",
        (3, 2) => "Unrecognized Well-known Attribute",
        (3, 3) => "Missing Well-known Attribute",
        (3, 4) => "Attribute Flags Error",
        (3, 5) => "Attribute Length Error",
        (3, 6) => "Invalid ORIGIN Attribute",
        (3, 8) => "Invalid NEXT_HOP Attribute",
        (3, 9) => "Optional Attribute Error",
        (3, 10) => "Invalid Network Field",
        (3, 11) => "Malformed AS_PATH",
        (4, 0) => "",
        (5, 0) => "Unspecified Error",
        (5, 1) => "Receive Unexpected Message in OpenSent State",
        (5, 2) => "Receive Unexpected Message in OpenConfirm State",
        (5, 3) => "Receive Unexpected Message in Established State",
        (6, 1) => "Maximum Number of Prefixes Reached",
        (6, 2) => "Administrative Shutdown",
        (6, 3) => "Peer De-configured",
        (6, 4) => "Administrative Reset",
        (6, 5) => "Connection Rejected",
        (6, 6) => "Other Configuration Change",
        (6, 7) => "Connection Collision Resolution",
        (6, 8) => "Out of Resources",
        (7, 1) => "Invalid Message Length",
        _ => return None,
    })
}

/// AS_TRANS, the 2-octet stand-in for a 4-octet AS number (RFC 6793 §9).
pub const AS_TRANS: u32 = 23456;

/// ORIGIN attribute values (RFC 4271 §4.3). Lower is preferred by the decision process.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Interior to the originating AS.
    #[default]
    Igp = 0,
    /// Learned through EGP.
    Egp = 1,
    /// Learned some other way (for example redistributed static routes).
    Incomplete = 2,
}

impl Origin {
    /// The value for a wire octet; `None` for undefined values (malformed, RFC 7606 §7.1).
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Igp),
            1 => Some(Self::Egp),
            2 => Some(Self::Incomplete),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Igp => "IGP",
            Self::Egp => "EGP",
            Self::Incomplete => "incomplete",
        })
    }
}

/// The address families this speaker exchanges routes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    /// IPv6 unicast (AFI 2, SAFI 1).
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Self; 2] = [Self::Ipv4Unicast, Self::Ipv6Unicast];

    /// The AFI.
    pub const fn afi(self) -> Afi {
        match self {
            Self::Ipv4Unicast => Afi::IPV4,
            Self::Ipv6Unicast => Afi::IPV6,
        }
    }

    /// The SAFI.
    pub const fn safi(self) -> Safi {
        Safi::UNICAST
    }

    /// The family of an (AFI, SAFI) pair, if this crate supports it.
    pub const fn from_afi_safi(afi: Afi, safi: Safi) -> Option<Self> {
        match (afi.0, safi.0) {
            (1, 1) => Some(Self::Ipv4Unicast),
            (2, 1) => Some(Self::Ipv6Unicast),
            _ => None,
        }
    }

    /// The family of a prefix.
    pub const fn of(prefix: &ipnet::IpNet) -> Self {
        match prefix {
            ipnet::IpNet::V4(_) => Self::Ipv4Unicast,
            ipnet::IpNet::V6(_) => Self::Ipv6Unicast,
        }
    }

    /// Index into per-family arrays (IPv4 0, IPv6 1).
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Ipv4Unicast => 0,
            Self::Ipv6Unicast => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ipv4Unicast => "ipv4-unicast",
            Self::Ipv6Unicast => "ipv6-unicast",
        })
    }
}
