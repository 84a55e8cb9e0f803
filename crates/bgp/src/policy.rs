//! Routing policy: prefix filters, the max-prefix limit, export rewrites, and the
//! data-center ASN consistency check.
//!
//! Filters follow [RFC 8212]: on an external (eBGP) session, a direction without a filter
//! accepts and sends nothing. Internal sessions default to everything. Use
//! [`PrefixFilter::permit_all`] to say "everything" explicitly.
//!
//! [RFC 8212]: https://www.rfc-editor.org/rfc/rfc8212

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What a filter does with a matching prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let the route through.
    Permit,
    /// Drop the route.
    Deny,
}

/// One prefix-list entry: `prefix` with optional `ge` / `le` bounds on the length, as in
/// the prefix lists of common routers.
///
/// A route matches when it lies inside `prefix` and its length is
/// * exactly `prefix`'s length, when neither bound is given;
/// * in `ge..=max` with only `ge` (max is 32 or 128);
/// * in `prefix len..=le` with only `le`;
/// * in `ge..=le` with both.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PrefixRule {
    /// The covering prefix.
    pub prefix: IpNet,
    /// Minimum length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    /// Maximum length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
    /// What to do with a match.
    pub action: Action,
}

impl PrefixRule {
    /// A rule matching exactly `prefix`.
    pub fn exact(prefix: IpNet, action: Action) -> Self {
        Self {
            prefix: prefix.trunc(),
            ge: None,
            le: None,
            action,
        }
    }

    /// A rule matching `prefix` and everything inside it (`le` = the family's maximum).
    pub fn or_longer(prefix: IpNet, action: Action) -> Self {
        Self {
            prefix: prefix.trunc(),
            ge: None,
            le: Some(prefix.max_prefix_len()),
            action,
        }
    }

    /// Whether `p` matches.
    pub fn matches(&self, p: &IpNet) -> bool {
        if !self.prefix.contains(p) {
            return false;
        }
        let len = p.prefix_len();
        let (lo, hi) = self.bounds();
        (lo..=hi).contains(&len)
    }

    fn bounds(&self) -> (u8, u8) {
        let base = self.prefix.prefix_len();
        match (self.ge, self.le) {
            (None, None) => (base, base),
            (Some(ge), None) => (ge, self.prefix.max_prefix_len()),
            (None, Some(le)) => (base, le),
            (Some(ge), Some(le)) => (ge, le),
        }
    }

    /// Checks `len ≤ ge ≤ le ≤ max`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let base = self.prefix.prefix_len();
        let max = self.prefix.max_prefix_len();
        let (lo, hi) = self.bounds();
        if base <= lo && lo <= hi && hi <= max {
            Ok(())
        } else {
            Err(ConfigError::PrefixRule(self.to_string()))
        }
    }
}

impl fmt::Display for PrefixRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = match self.action {
            Action::Permit => "permit",
            Action::Deny => "deny",
        };
        write!(f, "{a} {}", self.prefix)?;
        if let Some(ge) = self.ge {
            write!(f, " ge {ge}")?;
        }
        if let Some(le) = self.le {
            write!(f, " le {le}")?;
        }
        Ok(())
    }
}

/// An ordered prefix list: the first matching rule decides, else `default`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PrefixFilter {
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<PrefixRule>,
    /// Action when no rule matches.
    pub default: Action,
}

impl PrefixFilter {
    /// Permits everything.
    pub const fn permit_all() -> Self {
        Self {
            rules: Vec::new(),
            default: Action::Permit,
        }
    }

    /// Denies everything.
    pub const fn deny_all() -> Self {
        Self {
            rules: Vec::new(),
            default: Action::Deny,
        }
    }

    /// Permits exactly the given prefixes (and nothing else).
    pub fn permit_exact(prefixes: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            rules: prefixes
                .into_iter()
                .map(|p| PrefixRule::exact(p, Action::Permit))
                .collect(),
            default: Action::Deny,
        }
    }

    /// The action for `p`.
    pub fn evaluate(&self, p: &IpNet) -> Action {
        self.rules
            .iter()
            .find(|r| r.matches(p))
            .map_or(self.default, |r| r.action)
    }

    /// Whether `p` passes.
    pub fn permits(&self, p: &IpNet) -> bool {
        self.evaluate(p) == Action::Permit
    }

    /// Checks every rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.rules.iter().try_for_each(PrefixRule::validate)
    }
}

/// What to do when a peer sends more prefixes than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxPrefixAction {
    /// Keep the session; new prefixes past the limit are ignored (as a cloud route table with
    /// a route quota does) until the peer withdraws others.
    DropExcess,
    /// Close the session with Cease / Maximum Number of Prefixes Reached (RFC 4486) and
    /// restart it after `restart_after` seconds, or only on a manual start when `None`.
    Reset {
        /// Seconds before an automatic restart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<u16>,
    },
}

/// A limit on the prefixes accepted from one peer (all families together).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MaxPrefix {
    /// The most prefixes accepted.
    pub limit: u32,
    /// What happens past the limit.
    pub action: MaxPrefixAction,
    /// Percentage of `limit` at which a warning event is raised (once per crossing).
    #[serde(default = "default_warning")]
    pub warning_threshold: u8,
}

const fn default_warning() -> u8 {
    75
}

impl MaxPrefix {
    /// The count at which the warning fires.
    pub fn warning_at(&self) -> u32 {
        let t = u64::from(self.limit) * u64::from(self.warning_threshold.min(100)) / 100;
        u32::try_from(t).unwrap_or(self.limit)
    }
}

/// Policy applied to routes received from a peer, before the Adj-RIB-In.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportPolicy {
    /// Which prefixes are accepted. `None`: everything from internal peers, nothing from
    /// external ones (RFC 8212).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<PrefixFilter>,
    /// The max-prefix limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prefix: Option<MaxPrefix>,
    /// LOCAL_PREF given to routes from this peer (external peers' LOCAL_PREF is never
    /// used, RFC 4271 §5.1.5); `None` keeps an internal peer's value, else 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
}

impl ImportPolicy {
    /// Accept everything (internal and external peers alike).
    pub fn permit_all() -> Self {
        Self {
            filter: Some(PrefixFilter::permit_all()),
            ..Self::default()
        }
    }

    pub(crate) fn permits(&self, p: &IpNet, external: bool) -> bool {
        match &self.filter {
            Some(f) => f.permits(p),
            None => !external,
        }
    }
}

/// Policy applied to routes sent to a peer, before the Adj-RIB-Out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportPolicy {
    /// Which prefixes are sent. `None`: everything to internal peers, nothing to external
    /// ones (RFC 8212).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<PrefixFilter>,
    /// Extra copies of the local AS prepended on external sessions (AS-path prepending,
    /// to make this path less preferred).
    pub prepend: u8,
    /// MULTI_EXIT_DISC to set on every route sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Set NEXT_HOP to this speaker's address on internal sessions too (external sessions
    /// always get it).
    pub next_hop_self: bool,
}

impl ExportPolicy {
    /// Send everything.
    pub fn permit_all() -> Self {
        Self {
            filter: Some(PrefixFilter::permit_all()),
            ..Self::default()
        }
    }

    pub(crate) fn permits(&self, p: &IpNet, external: bool) -> bool {
        match &self.filter {
            Some(f) => f.permits(p),
            None => !external,
        }
    }
}

/// The data center uses different AS numbers toward the VBR and toward the VPN gateway.
///
/// The cloud then learns the data center's prefixes with two different origin ASes over the
/// leased line and over the tunnel, and the two paths replace each other as sessions come
/// and go: routes flap. The data center must use one ASN on both sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnMismatch {
    /// The ASN the data center uses on its BGP session with the VBR.
    pub toward_vbr: u32,
    /// The ASN the data center uses on its BGP session with the VPN gateway.
    pub toward_vpn_gateway: u32,
}

impl fmt::Display for AsnMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the data center uses AS {} toward the VBR but AS {} toward the VPN gateway; \
             routes learned over the line and over the tunnel will flap: configure the same ASN \
             on both sessions",
            self.toward_vbr, self.toward_vpn_gateway
        )
    }
}

/// Checks that the data center uses the same ASN toward the VBR and toward the VPN gateway;
/// returns the warning when it does not.
pub fn check_dc_asn(toward_vbr: u32, toward_vpn_gateway: u32) -> Option<AsnMismatch> {
    (toward_vbr != toward_vpn_gateway).then_some(AsnMismatch {
        toward_vbr,
        toward_vpn_gateway,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_rule_bounds() {
        let exact = PrefixRule::exact(n("10.0.0.0/8"), Action::Permit);
        assert!(exact.matches(&n("10.0.0.0/8")));
        assert!(!exact.matches(&n("10.1.0.0/16")));

        let ge = PrefixRule {
            ge: Some(24),
            ..exact.clone()
        };
        assert!(ge.matches(&n("10.1.2.0/24")));
        assert!(ge.matches(&n("10.1.2.3/32")));
        assert!(!ge.matches(&n("10.1.0.0/16")));
        assert!(!ge.matches(&n("11.1.2.0/24")));

        let le = PrefixRule {
            le: Some(16),
            ..exact.clone()
        };
        assert!(le.matches(&n("10.0.0.0/8")));
        assert!(le.matches(&n("10.1.0.0/16")));
        assert!(!le.matches(&n("10.1.2.0/24")));

        let both = PrefixRule {
            ge: Some(16),
            le: Some(24),
            ..exact
        };
        assert!(!both.matches(&n("10.0.0.0/8")));
        assert!(both.matches(&n("10.1.0.0/20")));
        assert!(!both.matches(&n("10.1.0.0/25")));
        // Families never match each other.
        assert!(!PrefixRule::or_longer(n("0.0.0.0/0"), Action::Permit).matches(&n("::/0")));
    }

    #[test]
    fn prefix_rule_validation() {
        let mut r = PrefixRule::exact(n("10.0.0.0/16"), Action::Deny);
        assert!(r.validate().is_ok());
        r.ge = Some(8);
        assert!(r.validate().is_err());
        r.ge = Some(24);
        r.le = Some(20);
        assert!(r.validate().is_err());
        r.le = Some(33);
        assert!(r.validate().is_err());
    }

    #[test]
    fn filter_first_match_wins_and_rfc8212_default() {
        let f = PrefixFilter {
            rules: vec![
                PrefixRule::exact(n("10.0.1.0/24"), Action::Deny),
                PrefixRule::or_longer(n("10.0.0.0/8"), Action::Permit),
            ],
            default: Action::Deny,
        };
        assert!(!f.permits(&n("10.0.1.0/24")));
        assert!(f.permits(&n("10.0.2.0/24")));
        assert!(!f.permits(&n("192.168.0.0/16")));

        let p = ImportPolicy::default();
        assert!(!p.permits(&n("10.0.0.0/8"), true));
        assert!(p.permits(&n("10.0.0.0/8"), false));
        assert!(ImportPolicy::permit_all().permits(&n("10.0.0.0/8"), true));
    }

    #[test]
    fn max_prefix_warning_threshold() {
        let m = MaxPrefix {
            limit: 100,
            action: MaxPrefixAction::DropExcess,
            warning_threshold: 80,
        };
        assert_eq!(m.warning_at(), 80);
    }

    #[test]
    fn asn_consistency() {
        assert_eq!(check_dc_asn(65001, 65001), None);
        let w = check_dc_asn(65001, 65002).unwrap();
        assert!(w
            .to_string()
            .contains("AS 65001 toward the VBR but AS 65002"));
    }
}
