//! Prometheus metrics: the counters the daemon's tasks bump, and the text exposition format
//! (version 0.0.4) written by hand — a few families do not need a metrics library.
//!
//! Gauges that mirror state (tunnel up, admin up) are not stored here: they are read from the
//! connections when `/metrics` is scraped, so they cannot disagree with `/v1/connections`.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

/// The exposition format's content type.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A monotonically increasing count, shared between the task that bumps it and the scraper.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count now.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a packet was dropped (`vpngw_packets_dropped_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// An inside packet from the TUN device with no child SA to carry it.
    NoChildSa,
}

impl DropReason {
    const ALL: [Self; 1] = [Self::NoChildSa];

    fn as_str(self) -> &'static str {
        match self {
            Self::NoChildSa => "no_child_sa",
        }
    }
}

/// The daemon's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Datagrams received per outer UDP socket, by its local address.
    pub(crate) udp_received: Vec<(SocketAddr, Counter)>,
    /// Inside packets dropped for lack of a child SA.
    pub(crate) dropped_no_child_sa: Counter,
}

impl Metrics {
    fn dropped(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::NoChildSa => self.dropped_no_child_sa.get(),
        }
    }

    /// Writes the counters' families.
    pub(crate) fn write(&self, out: &mut Exposition) {
        out.family(
            "vpngw_udp_datagrams_received_total",
            "counter",
            "UDP datagrams received on the outer sockets (IKE on 500, IKE and ESP on 4500).",
        );
        for (addr, c) in &self.udp_received {
            out.sample(
                "vpngw_udp_datagrams_received_total",
                &[
                    ("address", &addr.ip().to_string()),
                    ("port", &addr.port().to_string()),
                ],
                c.get(),
            );
        }
        out.family(
            "vpngw_packets_dropped_total",
            "counter",
            "Packets dropped, by reason.",
        );
        for r in DropReason::ALL {
            out.sample(
                "vpngw_packets_dropped_total",
                &[("reason", r.as_str())],
                self.dropped(r),
            );
        }
    }
}

/// A text exposition being written: `# HELP` and `# TYPE` once per family, then its samples.
#[derive(Debug, Default)]
pub(crate) struct Exposition(String);

impl Exposition {
    /// Starts a family.
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.0
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_escapes_and_orders_families() {
        let mut e = Exposition::default();
        e.family("vpngw_x", "gauge", "Help with a \\ and\na newline.");
        e.sample("vpngw_x", &[("a", "q\"uo\\te\n")], 1);
        e.sample("vpngw_x", &[], 0);
        assert_eq!(
            e.finish(),
            "# HELP vpngw_x Help with a \\\\ and\\na newline.\n# TYPE vpngw_x gauge\n\
             vpngw_x{a=\"q\\\"uo\\\\te\\n\"} 1\nvpngw_x 0\n"
        );
    }

    #[test]
    fn counters_are_written_with_their_labels() {
        let c = Counter::default();
        c.inc();
        c.inc();
        let m = Metrics {
            udp_received: vec![("192.0.2.1:4500".parse().unwrap(), c)],
            dropped_no_child_sa: Counter::default(),
        };
        let mut e = Exposition::default();
        m.write(&mut e);
        let text = e.finish();
        assert!(
            text.contains(
                "vpngw_udp_datagrams_received_total{address=\"192.0.2.1\",port=\"4500\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("vpngw_packets_dropped_total{reason=\"no_child_sa\"} 0\n"));
    }
}
