//! Where each field of a configuration came from, kept after reading so that rules checked
//! between fields (unique names, references, overlaps) can point at the file too.

use std::collections::BTreeMap;

use crate::ConfigError;

/// Field path → (file, line), recorded while reading. A configuration read from a file keeps
/// one; a configuration built in code has an empty one, and its errors say `<in code>:0`.
///
/// Not meant to be serialized: a configuration read back from JSON has no lines.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// The file's display name; empty when built in code.
    file: String,
    locs: BTreeMap<String, (String, usize)>,
}

impl Origin {
    /// An empty origin for the file shown as `file`.
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            locs: BTreeMap::new(),
        }
    }

    /// The file name to show for a field without a recorded location: the file's display
    /// name, or `<in code>`.
    pub fn file(&self) -> &str {
        if self.file.is_empty() {
            "<in code>"
        } else {
            &self.file
        }
    }

    /// Records that `path` is at `line` of `file` (a field may come from another file, such
    /// as a built-in default merged into the user's). Line 0 records nothing.
    pub fn insert(&mut self, path: &str, file: &str, line: usize) {
        if line > 0 {
            self.locs.insert(path.to_owned(), (file.to_owned(), line));
        }
    }

    /// Every recorded location: (path, file, line), by path.
    pub fn locations(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.locs
            .iter()
            .map(|(p, (f, l))| (p.as_str(), f.as_str(), *l))
    }

    /// The (file, line) of `path`, or of its nearest recorded parent (`link[0].a.iface` falls
    /// back to `link[0].a` when the interface name was defaulted), or (file, 0).
    pub fn locate(&self, path: &str) -> (&str, usize) {
        let mut p = path;
        loop {
            if let Some((file, line)) = self.locs.get(p) {
                return (file, *line);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (self.file(), 0),
            }
        }
    }

    /// The line of `path` (see [`Origin::locate`]).
    pub fn line(&self, path: &str) -> usize {
        self.locate(path).1
    }

    /// An error located at `field`.
    pub fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let (file, line) = self.locate(field);
        ConfigError {
            file: file.to_owned(),
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_falls_back_to_the_nearest_parent() {
        let mut o = Origin::new("a.toml");
        o.insert("link[0]", "a.toml", 7);
        o.insert("link[0].a", "a.toml", 8);
        o.insert("other", "b.toml", 0);
        assert_eq!(o.locate("link[0].a.iface"), ("a.toml", 8));
        assert_eq!(o.locate("link[0].b"), ("a.toml", 7));
        assert_eq!(o.locate("other"), ("a.toml", 0));
        assert_eq!(Origin::default().locate("x"), ("<in code>", 0));
        assert_eq!(
            o.error("link[0].b", "bad").to_string(),
            "a.toml:7: link[0].b: bad"
        );
        assert_eq!(o.locations().count(), 2);
    }
}
