//! Configuration errors, each located where an operator can fix it.

use std::fmt;

/// One broken configuration rule, located where an operator can fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file's display name, as given to [`Reader::new`](crate::Reader::new) or
    /// [`Origin::new`](crate::Origin::new); `<in code>` for a configuration built in code.
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
    /// `file:line: field: message`, or `file:line: message` without a field.
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

/// Every error found in one configuration. Displayed one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// `Ok` when `errors` is empty, else all of them.
    pub fn check(errors: Vec<ConfigError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self(errors))
        }
    }

    /// Puts the errors in the order an operator reads the file: those in `file` first, by
    /// line, then those located elsewhere (an included default, code), each group keeping the
    /// order in which the rules were checked.
    pub fn sort_for(&mut self, file: &str) {
        self.0.sort_by_key(|e| (e.file != file, e.line));
    }

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

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}
