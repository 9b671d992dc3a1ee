//! The time source: the system's monotonic clock, or a virtual one for simulations.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Clock {
    epoch: Instant,
    /// `Some` for a virtual clock: time since `epoch`, moved only by `advance`.
    manual: Option<Mutex<Duration>>,
}

impl Clock {
    pub(crate) fn new(manual: bool) -> Self {
        Clock {
            epoch: Instant::now(),
            manual: manual.then(|| Mutex::new(Duration::ZERO)),
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    pub(crate) fn now(&self) -> Instant {
        match &self.manual {
            Some(offset) => self.epoch + *offset.lock().unwrap_or_else(|e| e.into_inner()),
            None => Instant::now(),
        }
    }

    /// Time since the clock was made.
    pub(crate) fn since_epoch(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.epoch)
    }

    /// Moves a virtual clock forward to `t` (never backwards).
    pub(crate) fn set(&self, t: Instant) {
        if let Some(offset) = &self.manual {
            let mut o = offset.lock().unwrap_or_else(|e| e.into_inner());
            *o = (*o).max(t.saturating_duration_since(self.epoch));
        }
    }
}
