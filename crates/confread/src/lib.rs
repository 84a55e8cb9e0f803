//! Reading a TOML configuration file so that every error names its file, line, field and the
//! rule broken, and all errors are reported at once.
//!
//! serde stops at the first error and forgets lines; this crate instead walks `toml_edit`'s
//! spanned tree by hand. It owns the generic part of every configuration reader in the
//! workspace (the fabric's lab file, the gateway daemon's file):
//!
//! ```text
//!   text ──parse_document──► Document ──Reader::root──► Table ─┬─ req / opt / or (one value, by Kind)
//!                                                              ├─ array           (values, each located)
//!                                                              ├─ sub_table, list ([t], [[t]], inline)
//!                                                              └─ unknown_keys
//!   Reader::finish ──► (Origin: field path → file:line,  Vec<ConfigError>)
//!   rules between fields, checked later ──► Origin::error(field, message)
//! ```
//!
//! A [`Kind`] says what a value must be ("an integer from 1 to 10") and reads it; the
//! [`kind`] module has the common ones: strings, booleans, integers in a range, closed sets of
//! names, IP addresses, prefixes (with hints for a missing prefix length and for host bits),
//! socket addresses and durations. Errors are [`ConfigError`]s displayed as
//! `file:line: field: message`.
//!
//! It never knows a schema (which keys exist, what they mean), never reads a file (the caller
//! does, and decides how to report that failing), and never stops at the first error.
#![warn(missing_docs)]

mod error;
pub mod kind;
mod origin;
mod reader;

pub use error::{ConfigError, ConfigErrors};
pub use kind::Kind;
pub use origin::Origin;
pub use reader::{
    join, kind_of, line_of, parse_document, value_kind, Reader, Reported, Span, Table,
};
/// The TOML library this crate reads with, for custom [`Kind`]s.
pub use toml_edit;
