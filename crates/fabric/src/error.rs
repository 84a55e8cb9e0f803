//! Errors: configuration errors located in their file, and errors of runtime operations.

use std::net::IpAddr;

use ipnet::IpNet;

/// Configuration errors are `confread`'s, shared with every configuration reader of the
/// workspace.
pub use confread::{ConfigError, ConfigErrors};

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
