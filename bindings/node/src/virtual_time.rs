//! A virtual clock moved by JavaScript (engines built with `manualClock`).

use napi::Status;
use napi_derive::napi;

use crate::convert::clock_position;
use crate::NativeShutdown;

#[napi]
impl NativeShutdown {
    /// Moves a virtual clock forward (engines built with `manualClock` only), stopping
    /// at the next deadline on the way if there is one before `to_ms` (time since the
    /// engine was built), so JavaScript can run what that instant started (hooks) at
    /// that instant. Returns bit 0: stopped at a deadline (call again), bit 1: events
    /// are pending.
    #[napi(catch_unwind)]
    pub fn advance_step(&self, to_ms: f64) -> napi::Result<u32> {
        let target = clock_position(to_ms).map_err(|e| napi::Error::new(Status::InvalidArg, e))?;
        let now = self.sd.elapsed();
        let (to, more) = match self.sd.next_deadline() {
            Some(d) if d <= target => (d, true),
            _ => (target, false),
        };
        self.sd
            .advance(to.saturating_sub(now))
            .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
        Ok(u32::from(more) | (u32::from(self.pending()) << 1))
    }

    /// The next deadline as time since the engine was built, in ms (`null`: none).
    #[napi(getter, catch_unwind)]
    pub fn next_deadline_ms(&self) -> Option<f64> {
        self.sd.next_deadline().map(|d| d.as_secs_f64() * 1e3)
    }
}
