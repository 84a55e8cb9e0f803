//! The walker over `toml_edit`'s spanned tree: reads values by [`Kind`], records every
//! field's line in an [`Origin`], and collects errors instead of stopping at the first.

use std::{fmt, ops::Range};

use toml_edit::{Document, Item, TableLike, Value};

use crate::{ConfigError, ConfigErrors, Kind, Origin};

/// A byte range in the file, when the value has one.
pub type Span = Option<Range<usize>>;

/// Parses `text` as TOML. A syntax error is reported as one error with the file and line, no
/// field, and a message starting with "invalid TOML".
pub fn parse_document<'a>(file: &str, text: &'a str) -> Result<Document<&'a str>, ConfigErrors> {
    Document::parse(text).map_err(|e| {
        ConfigError {
            file: file.to_owned(),
            line: line_of(text, e.span().map_or(0, |s| s.start)),
            field: String::new(),
            message: format!("invalid TOML: {}", e.message().trim_end()),
        }
        .into()
    })
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `path.key`, or `key` at the root.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// What an item is, for "expected X, found Y".
pub fn kind_of(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => value_kind(v),
    }
}

/// What a value is, for "expected X, found Y".
pub fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

/// Marks a value already reported as an error: the caller has nothing to add, and should not
/// check rules that depend on the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported;

/// A table of the document (standard, inline, or the root), with its path and where it
/// starts, which is where a missing key is reported.
#[derive(Clone)]
pub struct Table<'t> {
    inner: &'t dyn TableLike,
    span: Span,
    path: String,
}

impl fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<'t> Table<'t> {
    /// The table's path: `""` for the root, `connection[0]`, `link[1].a`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of `key` in this table.
    pub fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Where the table starts (its header, or its inline `{`).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The item under `key`.
    pub fn get(&self, key: &str) -> Option<&'t Item> {
        self.inner.get(key)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.inner.contains_key(key)
    }

    /// Where `key`'s value is, or the table when the key is absent: where an error about
    /// `key` belongs.
    pub fn span_of(&self, key: &str) -> Span {
        self.inner
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.span.clone())
    }

    /// The underlying `toml_edit` table.
    pub fn raw(&self) -> &'t dyn TableLike {
        self.inner
    }
}

/// Reads one document, collecting every error with its file, line and field path, and the
/// line of every field it reads (see [`Reader::finish`]).
///
/// ```
/// use confread::{kind, parse_document, Reader};
///
/// let text = "[server]\nport = 99999\nname = 3\n";
/// let doc = parse_document("s.toml", text).unwrap();
/// let mut r = Reader::new("s.toml", text);
/// let root = r.root(&doc);
/// let server = r.sub_table(&root, "server").unwrap().unwrap();
/// r.unknown_keys(&server, &["port", "name", "host"]);
/// let port = r.req(&server, "port", &kind::integer(1u16..=65535));
/// let name = r.req(&server, "name", &kind::string());
/// let host = r.req(&server, "host", &kind::ip());
/// assert_eq!((port, name, host), (None, None, None));
/// let (_, errors) = r.finish();
/// let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
/// assert_eq!(shown, [
///     "s.toml:2: server.port: 99999 is out of range: expected an integer from 1 to 65535",
///     "s.toml:3: server.name: expected a string, found an integer",
///     "s.toml:1: server.host: missing: `host` (an IP address such as \"10.0.0.1\") is required",
/// ]);
/// ```
#[derive(Debug)]
pub struct Reader<'a> {
    text: &'a str,
    /// The byte offset of every newline in `text`, so that a span's line is a binary search
    /// rather than a scan of the text before it (a configuration of 1,000 connections has
    /// ~20,000 lines and ~15,000 keys).
    newlines: Vec<usize>,
    origin: Origin,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    /// A reader of `text`, shown as `file` in errors.
    pub fn new(file: &str, text: &'a str) -> Self {
        Self {
            text,
            newlines: text
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i)
                .collect(),
            origin: Origin::new(file),
            errors: Vec::new(),
        }
    }

    /// The document's root table; a missing root key is reported at line 1.
    pub fn root<'t, S>(&self, doc: &'t Document<S>) -> Table<'t> {
        Table {
            inner: doc.as_table(),
            span: Some(0..0),
            path: String::new(),
        }
    }

    /// The locations recorded so far.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The locations, to add some (a built-in default merged into the file).
    pub fn origin_mut(&mut self) -> &mut Origin {
        &mut self.origin
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The recorded locations and errors, errors in the order they were found.
    pub fn finish(self) -> (Origin, Vec<ConfigError>) {
        (self.origin, self.errors)
    }

    /// The line of a span; 0 when there is none.
    pub fn line(&self, span: &Span) -> usize {
        // As `line_of`: the newlines before the offset, plus one.
        span.as_ref().map_or(0, |s| {
            let end = s.start.min(self.text.len());
            self.newlines.partition_point(|&i| i < end) + 1
        })
    }

    /// Records where `path` is.
    pub fn at(&mut self, path: &str, span: &Span) {
        let line = self.line(span);
        let file = self.origin.file().to_owned();
        self.origin.insert(path, &file, line);
    }

    /// Records an error at `span` about `path`.
    pub fn err(&mut self, path: &str, span: &Span, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.origin.file().to_owned(),
            line: self.line(span),
            field: path.to_owned(),
            message: message.into(),
        });
    }

    /// Records an error about `path` at its recorded line (see [`Origin::error`]).
    pub fn err_at(&mut self, path: &str, message: impl Into<String>) {
        let e = self.origin.error(path, message);
        self.errors.push(e);
    }

    /// Reports each key of `t` not in `allowed`, at the key.
    pub fn unknown_keys(&mut self, t: &Table<'_>, allowed: &[&str]) {
        for (k, item) in t.inner.iter() {
            if !allowed.contains(&k) {
                let span = t
                    .inner
                    .key(k)
                    .and_then(|k| k.span())
                    .or_else(|| item.span());
                let expected = allowed.join(", ");
                self.err(
                    &t.field(k),
                    &span,
                    format!("unknown key {k:?}; expected one of: {expected}"),
                );
            }
        }
    }

    /// `item` as a table (standard or inline) at `path`.
    pub fn table<'t>(&mut self, item: &'t Item, path: &str) -> Option<Table<'t>> {
        let span = item.span();
        if let Some(t) = item.as_table_like() {
            self.at(path, &span);
            Some(Table {
                inner: t,
                span,
                path: path.to_owned(),
            })
        } else {
            self.err(
                path,
                &span,
                format!("expected a table, found {}", kind_of(item)),
            );
            None
        }
    }

    /// The table under `key` of `t`: `Ok(None)` when absent. A table written with dotted keys
    /// (`health.interval = 3`) has no span of its own; it is located at its first key.
    pub fn sub_table<'t>(
        &mut self,
        t: &Table<'t>,
        key: &str,
    ) -> Result<Option<Table<'t>>, Reported> {
        let Some(item) = t.get(key) else {
            return Ok(None);
        };
        let mut sub = self.table(item, &t.field(key)).ok_or(Reported)?;
        if sub.span.is_none() {
            sub.span = t.inner.key(key).and_then(|k| k.span());
            self.at(&sub.path, &sub.span);
        }
        Ok(Some(sub))
    }

    /// An optional value of `t`: `Ok(None)` when absent, `Err(Reported)` when present but
    /// not of `kind` (the error is recorded).
    pub fn opt<T: 'static>(
        &mut self,
        t: &Table<'_>,
        key: &str,
        kind: &Kind<T>,
    ) -> Result<Option<T>, Reported> {
        let field = t.field(key);
        let Some(item) = t.get(key) else {
            return Ok(None);
        };
        let span = item.span();
        self.at(&field, &span);
        match item.as_value().and_then(|v| kind.read(v)) {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(msg)) => {
                self.err(&field, &span, msg);
                Err(Reported)
            }
            None => {
                self.err(
                    &field,
                    &span,
                    format!("expected {}, found {}", kind.expected(), kind_of(item)),
                );
                Err(Reported)
            }
        }
    }

    /// A value of `t` with a default for when it is absent; `None` when reported.
    pub fn or<T: 'static>(
        &mut self,
        t: &Table<'_>,
        key: &str,
        kind: &Kind<T>,
        default: T,
    ) -> Option<T> {
        self.opt(t, key, kind).ok().map(|v| v.unwrap_or(default))
    }

    /// A required value of `t`; a missing one is reported at the table's start.
    pub fn req<T: 'static>(&mut self, t: &Table<'_>, key: &str, kind: &Kind<T>) -> Option<T> {
        match self.opt(t, key, kind) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.err(
                    &t.field(key),
                    t.span(),
                    format!("missing: `{key}` ({}) is required", kind.expected()),
                );
                None
            }
            Err(Reported) => None,
        }
    }

    /// An optional array of values of `t`, each of `kind` and located as `path.key[i]`:
    /// `Ok(None)` when absent, `Err(Reported)` when the array or any element was reported
    /// (each bad element is).
    pub fn array<T: 'static>(
        &mut self,
        t: &Table<'_>,
        key: &str,
        kind: &Kind<T>,
    ) -> Result<Option<Vec<T>>, Reported> {
        let field = t.field(key);
        let Some(item) = t.get(key) else {
            return Ok(None);
        };
        let span = item.span();
        self.at(&field, &span);
        let Some(arr) = item.as_array() else {
            self.err(
                &field,
                &span,
                format!(
                    "expected an array, each {}, found {}",
                    kind.expected(),
                    kind_of(item)
                ),
            );
            return Err(Reported);
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut bad = false;
        for (i, v) in arr.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let s = v.span();
            self.at(&f, &s);
            match kind.read(v) {
                Some(Ok(x)) => out.push(x),
                Some(Err(msg)) => {
                    self.err(&f, &s, msg);
                    bad = true;
                }
                None => {
                    self.err(
                        &f,
                        &s,
                        format!("expected {}, found {}", kind.expected(), value_kind(v)),
                    );
                    bad = true;
                }
            }
        }
        if bad {
            Err(Reported)
        } else {
            Ok(Some(out))
        }
    }

    /// A required array of values of `t` (see [`Reader::array`]); a missing one is reported at
    /// the table's start.
    pub fn req_array<T: 'static>(
        &mut self,
        t: &Table<'_>,
        key: &str,
        kind: &Kind<T>,
    ) -> Option<Vec<T>> {
        match self.array(t, key, kind) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.err(
                    &t.field(key),
                    t.span(),
                    format!(
                        "missing: `{key}` (an array, each {}) is required",
                        kind.expected()
                    ),
                );
                None
            }
            Err(Reported) => None,
        }
    }

    /// `[[key]]` tables of `t`, or `key = [{..}, ..]`, each read by `read` with its path
    /// `key[i]`; empty when absent. What `read` returns `None` for is left out.
    pub fn list<'t, T>(
        &mut self,
        t: &Table<'t>,
        key: &str,
        mut read: impl FnMut(&mut Self, &Table<'t>) -> Option<T>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        let field = t.field(key);
        match t.get(key) {
            None => {}
            Some(Item::ArrayOfTables(a)) => {
                for (i, at) in a.iter().enumerate() {
                    let table = Table {
                        inner: at,
                        span: at.span(),
                        path: format!("{field}[{i}]"),
                    };
                    self.at(&table.path, &table.span);
                    out.extend(read(self, &table));
                }
            }
            Some(Item::Value(Value::Array(arr))) => {
                for (i, v) in arr.iter().enumerate() {
                    let path = format!("{field}[{i}]");
                    let span = v.span();
                    self.at(&path, &span);
                    match v.as_inline_table() {
                        Some(it) => {
                            let table = Table {
                                inner: it,
                                span,
                                path,
                            };
                            out.extend(read(self, &table));
                        }
                        None => self.err(&path, &span, "expected an inline table { .. }"),
                    }
                }
            }
            Some(other) => self.err(
                &field,
                &other.span(),
                format!("expected [[{field}]] tables, found {}", kind_of(other)),
            ),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind;

    fn read(text: &str, f: impl FnOnce(&mut Reader<'_>, &Table<'_>)) -> Vec<String> {
        let doc = parse_document("t.toml", text).unwrap();
        let mut r = Reader::new("t.toml", text);
        let root = r.root(&doc);
        f(&mut r, &root);
        r.finish().1.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    #[test]
    fn reader_line_agrees_with_line_of() {
        for text in ["", "a", "\n", "a\nb\nc", "a\n\nb\n", "\n\nx"] {
            let r = Reader::new("t.toml", text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    r.line(&Some(offset..offset)),
                    line_of(text, offset),
                    "{text:?} at {offset}"
                );
            }
            assert_eq!(r.line(&None), 0);
        }
    }

    #[test]
    fn syntax_errors_have_file_and_line_only() {
        let e = parse_document("t.toml", "a = 1\nb = = 2\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!((e.0[0].line, e.0[0].field.as_str()), (2, ""));
        assert!(e.to_string().starts_with("t.toml:2: invalid TOML"), "{e}");
    }

    #[test]
    fn unknown_missing_and_mistyped() {
        let errors = read("a = 1\nb = \"x\"\n\n[t]\nc = true\n", |r, root| {
            r.unknown_keys(root, &["a", "t"]);
            assert_eq!(r.req(root, "a", &kind::integer(0u8..=9)), Some(1));
            let t = r.sub_table(root, "t").unwrap().unwrap();
            assert_eq!(r.opt(&t, "c", &kind::string()), Err(Reported));
            assert_eq!(r.req(&t, "d", &kind::boolean()), None);
            assert_eq!(r.or(&t, "e", &kind::boolean(), true), Some(true));
            assert_eq!(r.origin().line("t.c"), 5);
            assert!(r.sub_table(root, "a").is_err());
        });
        assert_eq!(
            errors,
            [
                "t.toml:2: b: unknown key \"b\"; expected one of: a, t",
                "t.toml:5: t.c: expected a string, found a boolean",
                "t.toml:4: t.d: missing: `d` (true or false) is required",
                "t.toml:1: a: expected a table, found an integer",
            ]
        );
    }

    #[test]
    fn arrays_locate_each_element() {
        let errors = read(
            "p = [\n  \"10.0.0.0/8\",\n  \"10.0.0.1/8\",\n  3,\n]\nq = 1\n",
            |r, root| {
                assert_eq!(r.array(root, "p", &kind::prefix()), Err(Reported));
                assert_eq!(r.array(root, "q", &kind::prefix()), Err(Reported));
                assert_eq!(r.array(root, "absent", &kind::prefix()), Ok(None));
                assert_eq!(r.req_array(root, "absent", &kind::ip()), None);
                assert_eq!(r.origin().line("p[1]"), 3);
            },
        );
        assert_eq!(
            errors,
            [
                "t.toml:3: p[1]: 10.0.0.1/8 has host bits set; a prefix is written 10.0.0.0/8",
                "t.toml:4: p[2]: expected a prefix such as \"172.16.0.0/16\", found an integer",
                "t.toml:6: q: expected an array, each a prefix such as \"172.16.0.0/16\", found \
                 an integer",
                "t.toml:1: absent: missing: `absent` (an array, each an IP address such as \
                 \"10.0.0.1\") is required",
            ]
        );
    }

    #[test]
    fn lists_of_tables_in_either_form() {
        let text = "m = [{ x = 3 }, 4]\nk = 5\n\n[[n]]\nx = 1\n\n[[n]]\nx = 2\n";
        let errors = read(text, |r, root| {
            let xs = r.list(root, "n", |r, t| r.req(t, "x", &kind::integer(0u8..=9)));
            assert_eq!(xs, [1, 2]);
            let paths = r.list(root, "m", |r, t| {
                r.req(t, "x", &kind::integer(0u8..=9))?;
                Some(t.path().to_owned())
            });
            assert_eq!(paths, ["m[0]"]);
            assert!(r.list(root, "k", |_, _| Some(())).is_empty());
            assert_eq!(r.origin().line("n[1]"), 7);
            assert_eq!(r.origin().line("n[1].x"), 8);
        });
        assert_eq!(
            errors,
            [
                "t.toml:1: m[1]: expected an inline table { .. }",
                "t.toml:2: k: expected [[k]] tables, found an integer",
            ]
        );
    }

    #[test]
    fn dotted_tables_are_located_at_their_key() {
        let text = "[c]\nname = \"x\"\nhealth.interval = 3\n";
        let errors = read(text, |r, root| {
            let c = r.sub_table(root, "c").unwrap().unwrap();
            let h = r.sub_table(&c, "health").unwrap().unwrap();
            r.req(&h, "source", &kind::ip());
        });
        assert_eq!(
            errors,
            ["t.toml:3: c.health.source: missing: `source` (an IP address such as \"10.0.0.1\") \
              is required"]
        );
    }
}
