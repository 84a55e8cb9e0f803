//! Endpoint-wide state an IKE SA needs while it runs: randomness, output queues,
//! counters and the SPIs in use.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use super::config::EndpointConfig;
use super::event::{Event, Stats, Transmit};
use crate::error::Error;
use crate::packet::iana::NotifyType;
use crate::packet::IkeSpi;
use crate::rng::Rng;

pub(crate) struct Ctx {
    pub(crate) cfg: EndpointConfig,
    pub(crate) rng: Box<dyn Rng + Send>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    /// Inbound Child SA SPIs in use (unique across the endpoint: one SAD).
    pub(crate) child_spis: HashSet<u32>,
    /// Our IKE SPIs in use.
    pub(crate) ike_spis: HashSet<IkeSpi>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub(crate) fn rng(&mut self) -> &mut dyn Rng {
        &mut *self.rng
    }

    pub(crate) fn random_u64(&mut self) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        self.rng.fill(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    /// A uniformly random duration in `0..=max` (millisecond granularity).
    pub(crate) fn jitter(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return Duration::ZERO;
        }
        let r = self.random_u64().unwrap_or(0);
        Duration::from_millis(r % (ms + 1))
    }

    /// A fresh inbound Child SA SPI (never 0..=255, RFC 4303 §2.1), reserved until freed.
    pub(crate) fn new_child_spi(&mut self) -> Result<u32, Error> {
        for _ in 0..64 {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b)?;
            let spi = u32::from_be_bytes(b);
            if spi >= 256 && self.child_spis.insert(spi) {
                return Ok(spi);
            }
        }
        Err(Error::Crypto("could not draw a free Child SA SPI"))
    }

    /// A fresh IKE SPI of ours (never zero), reserved until freed.
    pub(crate) fn new_ike_spi(&mut self) -> Result<IkeSpi, Error> {
        for _ in 0..64 {
            let spi = IkeSpi::from(self.random_u64()?);
            if !spi.is_zero() && self.ike_spis.insert(spi) {
                return Ok(spi);
            }
        }
        Err(Error::Crypto("could not draw a free IKE SPI"))
    }

    /// Counts an error notify sent in answer to a request, by type.
    pub(crate) fn count_error_notify(&mut self, t: NotifyType) {
        self.stats.error_notifies_sent += 1;
        match t {
            NotifyType::INVALID_SYNTAX => self.stats.invalid_syntax_sent += 1,
            NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => self.stats.unsupported_critical_sent += 1,
            NotifyType::INVALID_IKE_SPI => self.stats.invalid_ike_spi_sent += 1,
            NotifyType::INVALID_MAJOR_VERSION => self.stats.invalid_major_version_sent += 1,
            _ => {}
        }
    }

    pub(crate) fn transmit(&mut self, t: Transmit) {
        self.stats.sent += 1;
        self.transmits.push_back(t);
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }
}
