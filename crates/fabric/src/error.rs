//! Errors: configuration errors located in their file, and errors of runtime operations.

use std::{fmt, net::IpAddr};

use ipnet::IpNet;

/// One broken configuration rule, located where an operator can fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file's display name, as given to [`FabricConfig::from_toml`](crate::FabricConfig::from_toml);
    /// `<in code>` for a configuration built in code.
    pub file: String,
    /// 1-based line; 0 when unknown (a configuration built in code).
    pub line: usize,
    /// The field, as a path into the file: `routing.vbr`, `link[2].a.addr`, `route[0].via`.
    /// Indexes count from 0 in the order of the file. Empty for a TOML syntax error.
    pub field: String,
    /// What is wrong, and the rule broken.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one configuration, in file order where the file gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none (never true for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why an operation on a running [`Fabric`](crate::Fabric) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FabricError {
    /// No node has this name.
    #[error("no node named {0:?}")]
    UnknownNode(String),
    /// Only a node of kind `gateway` publishes routes.
    #[error("{0:?} is not a gateway: only a VPN gateway publishes routes into a VPC")]
    NotAGateway(String),
    /// The gateway has no link to a `vpc` node, so there is no VPC table to publish into.
    #[error(
        "gateway {0:?} is not linked to any vpc node: there is no VPC route table to publish into"
    )]
    NoVpcAttachment(String),
    /// A publication inside the VPC's own address space would hijack the VPC's vSwitches.
    #[error(
        "{prefix} lies inside the VPC's cidr {cidr}: a VPN gateway publishes remote prefixes, \
         never the VPC's own address space"
    )]
    InsideVpcCidr {
        /// The refused prefix.
        prefix: IpNet,
        /// The VPC CIDR it falls in.
        cidr: IpNet,
    },
    /// `learn_bgp` on a VBR whose routing is static (methods 1 and 2).
    #[error(
        "{node:?} does not run BGP: routing.vbr = \"static\" (methods 1 and 2); \
         BGP on the VBR is method 3"
    )]
    BgpDisabled {
        /// The VBR.
        node: String,
    },
    /// A BGP next hop that is not a neighbour's address on one of the node's links.
    #[error("{via} is not a neighbour's address on any link of {node:?}")]
    ViaOffLink {
        /// The node.
        node: String,
        /// The next hop.
        via: IpAddr,
    },
    /// A prefix and next hop of different address families.
    #[error("{prefix} and next hop {via} are of different address families")]
    FamilyMismatch {
        /// The prefix.
        prefix: IpNet,
        /// The next hop.
        via: IpAddr,
    },
    /// The node's table has no route for this prefix.
    #[error("{node:?} has no route for {prefix}")]
    NotFound {
        /// The node.
        node: String,
        /// The prefix asked about.
        prefix: IpNet,
    },
}
