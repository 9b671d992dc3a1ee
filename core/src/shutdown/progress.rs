//! The progress snapshot (`Shutdown::progress`) and the periodic report of a drain.

use std::time::Instant;

use crate::machine::Machine;
use crate::progress::Progress;

use super::Shutdown;

impl Shutdown {
    /// What the engine is doing now: phase, work in flight by kind, connections, what
    /// was aborted so far, the time left before the current deadline and the
    /// milestones reached. For a metrics endpoint; see [`Progress`].
    pub fn progress(&self) -> Progress {
        let st = self.lock();
        self.progress_of(&st.machine, self.inner().clock.now())
    }

    pub(super) fn progress_of(&self, machine: &Machine, now: Instant) -> Progress {
        Progress {
            phase: machine.phase(),
            accepting: self.is_accepting(),
            in_flight: self.in_flight(),
            in_flight_by_kind: self.inner().kinds.snapshot(),
            connections: self.inner().connections.len(),
            aborted: machine.aborted(),
            time_left: machine
                .phase_deadline()
                .map(|d| d.saturating_duration_since(now)),
            timeline: machine.timeline().to_vec(),
        }
    }
}
