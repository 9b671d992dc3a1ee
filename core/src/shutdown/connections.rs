//! The connection glue: registering connections, their dismissals, and the guards and
//! table steps of the quiesce boundary.

use crate::connection::{Connection, Outcome};
use crate::event::Event;
use crate::kinds::Kind;

use super::guard::Guard;
use super::Shutdown;

impl Shutdown {
    /// Registers a connection the host just accepted (see [`Connection`]). Once the
    /// drain is over it comes back already dismissed (the dismissal callbacks are not
    /// called for it): close it.
    pub fn connection(&self) -> Connection {
        let now = self.inner().clock.now();
        let (shared, out) = self
            .inner()
            .connections
            .open(now, || self.handle.try_join());
        self.apply_table(out);
        Connection::new(self.clone(), shared)
    }

    /// Connections open now (registered and not yet dropped).
    pub fn connections(&self) -> usize {
        self.inner().connections.len()
    }

    /// Calls `f` with the ids of the connections the engine dismisses, in batches, on
    /// the thread that caused it (the trigger, the driver, the host call that closed
    /// the last busy connection), one batch at a time and in order with the milestones:
    /// a host that keeps its connections in a map closes those that are idle, and calls
    /// [`Connection::reading`] on those where a request is arriving. `f` must not block.
    pub fn on_dismissed(&self, f: impl Fn(&[crate::ConnectionId]) + Send + Sync + 'static) {
        self.on_event(move |_, e| {
            if let Event::Dismissed(ids) = e {
                f(ids)
            }
        });
    }

    /// A guard for a request on a connection after admission closed, while the
    /// boundary holds (a child of its reserve).
    pub(crate) fn boundary_guard(&self, kind: Option<Kind>) -> Option<Guard> {
        let raw = self.inner().connections.boundary_guard()?;
        if let Some(k) = kind {
            raw.get().kinds.enter(k);
        }
        Some(Guard { raw, kind })
    }

    /// Carries out what a connection-table step left to do, outside the table's lock.
    pub(crate) fn apply_table(&self, out: Outcome) {
        if let Some(due) = out.next_due {
            self.with_machine(|m, _, _| m.set_connection_deadline(Some(due), false));
        }
        if !out.dismissed.is_empty() {
            let st = self.lock();
            self.emit(&st, Event::Dismissed(out.dismissed));
            drop(st);
            self.deliver();
        }
        // Last: releasing the reserve may end the drain.
        drop(out.released);
    }
}
