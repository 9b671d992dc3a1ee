//! The keep-alive advice: `should_close`, and the announce window it ramps over.

use std::sync::atomic::Ordering;

use crate::config::CloseStrategy;
use crate::machine::{Machine, Phase};

use super::status::{PHASE_MASK, QUIESCING};
use super::Shutdown;

impl Shutdown {
    /// Whether a keep-alive connection should close after its current response
    /// (`Connection: close`, HTTP/2 GOAWAY). One atomic load while Running.
    pub fn should_close(&self) -> bool {
        let status = self.status();
        if status & PHASE_MASK == Phase::Running as u8 {
            return false;
        }
        if status & QUIESCING != 0 || self.config().close_strategy == CloseStrategy::Immediate {
            return true;
        }
        let inner = self.inner();
        let start = inner.announce_start.load(Ordering::Relaxed);
        let end = inner.announce_end.load(Ordering::Relaxed);
        let now = inner.clock.since_epoch(inner.clock.now()).as_nanos() as u64;
        if end <= start || now >= end {
            return true;
        }
        let p = now.saturating_sub(start) as f64 / (end - start) as f64;
        let sample = splitmix64(inner.advice_seq.fetch_add(1, Ordering::Relaxed));
        (sample as f64) < p * (u64::MAX as f64)
    }

    /// Where `should_close` reads the announce window from, lock-free.
    pub(super) fn publish_announce_window(&self, machine: &Machine) {
        let inner = self.inner();
        if let Some((start, end)) = machine.announce_window() {
            let ns = |t| inner.clock.since_epoch(t).as_nanos() as u64;
            inner.announce_start.store(ns(start), Ordering::Relaxed);
            inner.announce_end.store(ns(end), Ordering::Relaxed);
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
