//! The IKE SAs by our SPI, with the indexes the data path's hot calls need.
//!
//! A gateway with 1,000 tunnels asks [`Endpoint::poll_timeout`](super::Endpoint::poll_timeout)
//! after every input and reports inbound ESP traffic per SPI
//! ([`Endpoint::handle_child_event`](super::Endpoint::handle_child_event)); scanning every SA
//! for either made each wake-up of the engine O(SAs). Here every SA taken mutably (or
//! inserted, or removed) is marked, and [`SaTable::settle`] brings the deadline set and the
//! child-SPI index up to date for the marked ones only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use super::ike_sa::IkeSa;
use crate::packet::IkeSpi;

#[derive(Debug, Default)]
pub(crate) struct SaTable {
    /// A BTreeMap: deterministic iteration, so seeded runs replay exactly.
    map: BTreeMap<IkeSpi, IkeSa>,
    /// Each settled SA's next timeout, ordered.
    deadlines: BTreeSet<(Instant, IkeSpi)>,
    deadline_of: HashMap<IkeSpi, Instant>,
    /// The IKE SA of each installed Child SA, by its inbound SPI.
    by_child: HashMap<u32, IkeSpi>,
    children_of: HashMap<IkeSpi, Vec<u32>>,
    /// SAs changed since the last `settle`.
    dirty: Vec<IkeSpi>,
}

impl SaTable {
    pub(crate) fn get(&self, spi: &IkeSpi) -> Option<&IkeSa> {
        self.map.get(spi)
    }

    pub(crate) fn get_mut(&mut self, spi: &IkeSpi) -> Option<&mut IkeSa> {
        let sa = self.map.get_mut(spi)?;
        self.dirty.push(*spi);
        Some(sa)
    }

    /// Records inbound traffic on the SA holding the Child SA `spi_in` (after `settle`),
    /// without marking it: the time it was last heard from moves none of its timers (DPD reads
    /// it when its own timer fires) and none of its children, so the indexes stay true, and
    /// the data plane's signal costs one lookup rather than a settle.
    pub(crate) fn heard(&mut self, spi_in: u32, now: Instant) {
        if let Some(sa) = self
            .by_child
            .get(&spi_in)
            .and_then(|spi| self.map.get_mut(spi))
        {
            sa.inbound_traffic(now);
        }
    }

    pub(crate) fn insert(&mut self, spi: IkeSpi, sa: IkeSa) {
        self.dirty.push(spi);
        self.map.insert(spi, sa);
    }

    pub(crate) fn remove(&mut self, spi: &IkeSpi) -> Option<IkeSa> {
        let sa = self.map.remove(spi)?;
        self.dirty.push(*spi);
        Some(sa)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&IkeSpi, &IkeSa)> + '_ {
        self.map.iter()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &IkeSa> + '_ {
        self.map.values()
    }

    /// The earliest timeout of any SA. Exact even before `settle`: the marked SAs are asked
    /// directly.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let settled = self.deadlines.first().map(|(t, _)| *t);
        let marked = self
            .dirty
            .iter()
            .filter_map(|spi| self.map.get(spi)?.next_timeout());
        settled.into_iter().chain(marked).min()
    }

    /// SAs whose timeout is at or before `now` (after `settle`).
    pub(crate) fn due(&self, now: Instant) -> Vec<IkeSpi> {
        self.deadlines
            .range(..=(now, IkeSpi([0xff; 8])))
            .map(|(_, spi)| *spi)
            .collect()
    }

    /// The IKE SA holding the Child SA with inbound SPI `spi_in` (after `settle`).
    pub(crate) fn owner_of_child(&self, spi_in: u32) -> Option<IkeSpi> {
        self.by_child.get(&spi_in).copied()
    }

    /// Brings the indexes up to date for the SAs changed since the last call.
    pub(crate) fn settle(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for spi in dirty.drain(..) {
            if let Some(t) = self.deadline_of.remove(&spi) {
                self.deadlines.remove(&(t, spi));
            }
            for c in self.children_of.remove(&spi).unwrap_or_default() {
                if self.by_child.get(&c) == Some(&spi) {
                    self.by_child.remove(&c);
                }
            }
            let Some(sa) = self.map.get(&spi) else {
                continue;
            };
            if let Some(t) = sa.next_timeout() {
                self.deadlines.insert((t, spi));
                self.deadline_of.insert(spi, t);
            }
            let children: Vec<u32> = sa.child_spis_in().collect();
            for c in &children {
                self.by_child.insert(*c, spi);
            }
            if !children.is_empty() {
                self.children_of.insert(spi, children);
            }
        }
        // Keeps the allocation for the next round.
        self.dirty = dirty;
        #[cfg(test)]
        self.check();
    }

    /// The indexes equal a scan of every SA: an SA's timers and children change only
    /// through `get_mut`, which marks it. Run after every settle in the crate's tests.
    #[cfg(test)]
    fn check(&self) {
        let deadlines: BTreeSet<(Instant, IkeSpi)> = self
            .map
            .iter()
            .filter_map(|(spi, sa)| Some((sa.next_timeout()?, *spi)))
            .collect();
        assert_eq!(self.deadlines, deadlines, "deadline index");
        let by_child: HashMap<u32, IkeSpi> = self
            .map
            .iter()
            .flat_map(|(spi, sa)| sa.child_spis_in().map(move |c| (c, *spi)))
            .collect();
        assert_eq!(self.by_child, by_child, "child SPI index");
    }
}
