//! Virtual time: `advance` on a manual clock (`NotManualClock` otherwise), and the
//! clock's readings, `elapsed` and `next_deadline`.

use std::time::Duration;

use super::Shutdown;

/// [`Shutdown::advance`] was called on a system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotManualClock;

impl std::fmt::Display for NotManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("advance() needs a Shutdown built with manual_clock()")
    }
}

impl std::error::Error for NotManualClock {}

impl Shutdown {
    /// Moves a virtual clock forward, applying every deadline on the way at its exact
    /// instant. Only for engines built with
    /// [`Builder::manual_clock`](crate::Builder::manual_clock).
    pub fn advance(&self, by: Duration) -> Result<(), NotManualClock> {
        let clock = &self.inner().clock;
        if !clock.is_manual() {
            return Err(NotManualClock);
        }
        let target = clock.now() + by;
        loop {
            let next = self.lock().machine.poll_timeout();
            match next {
                Some(t) if t <= target => {
                    clock.set(t);
                    self.with_machine(|m, now, snap| m.handle_timeout(now, snap));
                }
                _ => break,
            }
        }
        clock.set(target);
        Ok(())
    }

    /// Time since this engine was built, on its clock.
    pub fn elapsed(&self) -> Duration {
        let clock = &self.inner().clock;
        clock.since_epoch(clock.now())
    }

    /// When the next deadline falls (announce window, drain, hook or close budget), as
    /// time since this engine was built on its clock; `None` when no deadline is armed.
    /// Lets a host on a virtual clock step [`advance`](Self::advance) from deadline to
    /// deadline and run its own work (hooks in another language) at each instant.
    pub fn next_deadline(&self) -> Option<Duration> {
        let next = self.lock().machine.poll_timeout()?;
        Some(self.inner().clock.since_epoch(next))
    }
}
