//! What a value must be: a [`Kind`] pairs the words of "expected X, found Y" with the function
//! that reads a TOML value as X, so that a wrong type and a bad value are both reported with
//! the field's line, and a custom kind is as easy to write as a built-in one.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    ops::RangeInclusive,
    time::Duration,
};

use ipnet::IpNet;
use toml_edit::Value;

type ReadFn<T> = dyn Fn(&Value) -> Option<Result<T, String>>;

/// How to read one value: `read` returns `None` when the value is of the wrong TOML type
/// (reported as "expected {expected}, found {what it is}"), `Some(Err(message))` when it has
/// the right type but breaks a rule.
pub struct Kind<T> {
    expected: String,
    read: Box<ReadFn<T>>,
}

impl<T> fmt::Debug for Kind<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kind")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Kind<T> {
    /// A kind described as `expected` ("a string", "1, 2 or 3") read by `read`.
    pub fn new(
        expected: impl Into<String>,
        read: impl Fn(&Value) -> Option<Result<T, String>> + 'static,
    ) -> Self {
        Self {
            expected: expected.into(),
            read: Box::new(read),
        }
    }

    /// The words after "expected".
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// Reads `v`; see [`Kind`].
    pub fn read(&self, v: &Value) -> Option<Result<T, String>> {
        (self.read)(v)
    }

    /// The same kind described differently, say with an example:
    /// `net().expecting("an address with its prefix length, such as \"10.0.0.1/30\"")`.
    #[must_use]
    pub fn expecting(mut self, expected: impl Into<String>) -> Self {
        self.expected = expected.into();
        self
    }

    /// A kind whose values must also pass `check`, which may convert them.
    pub fn and_then<U: 'static>(self, check: impl Fn(T) -> Result<U, String> + 'static) -> Kind<U> {
        let read = self.read;
        Kind {
            expected: self.expected,
            read: Box::new(move |v| read(v).map(|r| r.and_then(&check))),
        }
    }
}

/// Any string.
pub fn string() -> Kind<String> {
    Kind::new("a string", |v| v.as_str().map(|s| Ok(s.to_owned())))
}

/// `true` or `false`.
pub fn boolean() -> Kind<bool> {
    Kind::new("true or false", |v| v.as_bool().map(Ok))
}

/// An integer within `range`, as an `I`.
pub fn integer<I>(range: RangeInclusive<I>) -> Kind<I>
where
    I: Copy + PartialOrd + fmt::Display + TryFrom<i64> + 'static,
{
    let (lo, hi) = (*range.start(), *range.end());
    Kind::new(format!("an integer from {lo} to {hi}"), move |v| {
        v.as_integer().map(|n| {
            I::try_from(n)
                .ok()
                .filter(|x| (lo..=hi).contains(x))
                .ok_or_else(|| {
                    format!("{n} is out of range: expected an integer from {lo} to {hi}")
                })
        })
    })
}

/// A number (integer or float) in `range`.
pub fn number(range: RangeInclusive<f64>) -> Kind<f64> {
    let (lo, hi) = (*range.start(), *range.end());
    Kind::new(format!("a number from {lo} to {hi}"), move |v| {
        let n = v.as_float().or_else(|| v.as_integer().map(|i| i as f64))?;
        Some(if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "{n} is out of range: expected a number from {lo} to {hi}"
            ))
        })
    })
}

/// One of a closed set of strings, each meaning a `T`.
pub fn one_of<T: Clone + 'static>(choices: &[(&'static str, T)]) -> Kind<T> {
    let names: Vec<String> = choices.iter().map(|(s, _)| format!("{s:?}")).collect();
    let listed = or_list(&names);
    let choices: Vec<(&'static str, T)> = choices.to_vec();
    Kind::new(listed.clone(), move |v| {
        v.as_str().map(|s| {
            choices
                .iter()
                .find(|(name, _)| *name == s)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| format!("{s:?} is not allowed here; expected {listed}"))
        })
    })
}

/// An IP address, v4 or v6, without a prefix length.
pub fn ip() -> Kind<IpAddr> {
    Kind::new("an IP address such as \"10.0.0.1\"", |v| {
        v.as_str().map(parse_ip)
    })
}

/// An address and port, such as `127.0.0.1:8443` or `[::1]:8443`.
pub fn socket_addr() -> Kind<SocketAddr> {
    Kind::new("an address and port such as \"127.0.0.1:8443\"", |v| {
        v.as_str().map(|s| {
            s.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "{s:?} is not an address and port such as \"127.0.0.1:8443\" or \
                     \"[::1]:8443\""
                )
            })
        })
    })
}

/// An address with its prefix length, host bits allowed (an interface address such as
/// `10.0.0.1/30`).
pub fn net() -> Kind<IpNet> {
    Kind::new(
        "an address with its prefix length, such as \"10.0.0.1/30\"",
        |v| v.as_str().map(parse_net),
    )
}

/// A prefix: an address with its prefix length and no host bits (`172.16.0.0/16`).
pub fn prefix() -> Kind<IpNet> {
    Kind::new("a prefix such as \"172.16.0.0/16\"", |v| {
        v.as_str().map(parse_prefix)
    })
}

/// A duration: an integer number of seconds, or a string of numbers with units `d`, `h`,
/// `m`, `s` (`"90s"`, `"1h30m"`); see [`parse_duration`].
pub fn duration() -> Kind<Duration> {
    Kind::new(
        "a duration such as \"90s\", \"10m\", \"1h\" or a number of seconds",
        |v| match v {
            Value::Integer(n) => Some(
                u64::try_from(*n.value())
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{} is not a duration: {DURATION_HINT}", n.value())),
            ),
            Value::String(s) => Some(parse_duration(s.value())),
            _ => None,
        },
    )
}

/// `s` as an IP address; a prefix length gets its own hint.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>().map_err(|_| {
        if s.parse::<IpNet>().is_ok() {
            format!("{s:?} is not an IP address: an address here has no prefix length")
        } else {
            format!("{s:?} is not an IP address")
        }
    })
}

/// `s` as an address with its prefix length; a missing length gets its own hint.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        if s.parse::<IpAddr>().is_ok() {
            format!("{s:?} needs a prefix length, such as \"{s}/24\"")
        } else {
            format!("{s:?} is not an address/prefix-length such as \"10.0.0.1/30\"")
        }
    })
}

/// `s` as a prefix: [`parse_net`] and no host bits.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let net = parse_net(s)?;
    match host_bits(&net) {
        Some(problem) => Err(problem),
        None => Ok(net),
    }
}

/// Why `net` is not a prefix, if it has host bits set.
pub fn host_bits(net: &IpNet) -> Option<String> {
    (net.trunc() != *net).then(|| {
        format!(
            "{net} has host bits set; a prefix is written {}",
            net.trunc()
        )
    })
}

const DURATION_HINT: &str = "write a number of seconds (90) or numbers with units d, h, m, s, \
                             ms such as \"90s\", \"10m\", \"1h\", \"1d\", \"1h30m\" or \"500ms\"";

/// A duration as written in the configuration: `"90"` or `90` (seconds), `"90s"`, `"10m"`,
/// `"24h"`, `"7d"`, `"500ms"`, or units combined largest first: `"1h30m"`, `"1s500ms"`. No
/// fractions, no sign.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: {DURATION_HINT}");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    // Units must come largest first and once each, so "10m5h" is refused as a likely typo.
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = match rest.as_bytes() {
            [b'm', b's', ..] => (1, 2),
            [b'd', ..] => (86_400_000, 1),
            [b'h', ..] => (3_600_000, 1),
            [b'm', ..] => (60_000, 1),
            [b's', ..] => (1_000, 1),
            _ => return Err(bad()),
        };
        if unit >= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        rest = &rest[len..];
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total))
}

/// A duration the way [`parse_duration`] reads it, in its largest exact units: `1h30m`,
/// `90s` stays `1m30s`, zero is `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ] {
        if ms >= unit {
            out.push_str(&(ms / unit).to_string());
            out.push_str(name);
            ms %= unit;
        }
    }
    out
}

/// `"a"`, `"a or b"`, `"a, b or c"`.
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(toml: &str) -> Value {
        toml.parse().unwrap()
    }

    #[test]
    fn durations() {
        for (s, secs) in [
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("24h", 86_400),
            ("1d", 86_400),
            ("1h30m", 5400),
            ("1d2h3m4s", 93_784),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        for (s, ms) in [("500ms", 500), ("1s500ms", 1500), ("1m5ms", 60_005)] {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
            assert_eq!(format_duration(Duration::from_millis(ms)), s);
        }
        assert!(parse_duration("500ms1s").is_err(), "units largest first");
        for s in [
            "",
            "h",
            "1x",
            "1.5h",
            "-1s",
            "10m5h",
            "1h1h",
            "1 h",
            "99999999999999999999d",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("is not a duration"), "{s}: {e}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        let d = duration();
        assert_eq!(d.read(&value("30")), Some(Ok(Duration::from_secs(30))));
        assert!(d
            .read(&value("-3"))
            .unwrap()
            .unwrap_err()
            .contains("-3 is not"));
        assert!(d.read(&value("true")).is_none());
    }

    #[test]
    fn nets_and_addresses() {
        assert!(parse_net("10.0.0.1")
            .unwrap_err()
            .contains("needs a prefix length"));
        assert!(parse_net("ten").unwrap_err().contains("is not an address"));
        assert_eq!(parse_net("10.0.0.1/30").unwrap().to_string(), "10.0.0.1/30");
        assert_eq!(
            parse_prefix("10.0.0.1/30").unwrap_err(),
            "10.0.0.1/30 has host bits set; a prefix is written 10.0.0.0/30"
        );
        assert_eq!(
            parse_ip("10.0.0.1/30").unwrap_err(),
            "\"10.0.0.1/30\" is not an IP address: an address here has no prefix length"
        );
        assert_eq!(parse_ip("x").unwrap_err(), "\"x\" is not an IP address");
        assert!(socket_addr()
            .read(&value("\"127.0.0.1\""))
            .unwrap()
            .is_err());
    }

    #[test]
    fn integers_choices_and_conversions() {
        let k = integer(1u16..=10);
        assert_eq!(k.expected(), "an integer from 1 to 10");
        assert_eq!(k.read(&value("10")), Some(Ok(10)));
        assert_eq!(
            k.read(&value("11")),
            Some(Err(
                "11 is out of range: expected an integer from 1 to 10".into()
            ))
        );
        assert_eq!(k.read(&value("\"1\"")), None);
        let c = one_of(&[("a", 1), ("b", 2), ("c", 3)]);
        assert_eq!(c.expected(), "\"a\", \"b\" or \"c\"");
        assert_eq!(c.read(&value("\"b\"")), Some(Ok(2)));
        assert_eq!(
            c.read(&value("\"d\"")),
            Some(Err(
                "\"d\" is not allowed here; expected \"a\", \"b\" or \"c\"".into()
            ))
        );
        let even = integer(0u32..=100).and_then(|n| {
            if n % 2 == 0 {
                Ok(n / 2)
            } else {
                Err("odd".into())
            }
        });
        assert_eq!(even.read(&value("8")), Some(Ok(4)));
        assert_eq!(even.read(&value("7")), Some(Err("odd".into())));
        assert_eq!(or_list(&[]), "");
        assert_eq!(
            format!("{:?}", string()),
            "Kind { expected: \"a string\", .. }"
        );
    }
}
