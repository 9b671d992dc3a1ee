//! The connection glue: registering connections, their dismissals, and the guards and
//! table steps of the quiesce boundary.

use crate::connection::{Connection, ListenerHold, Outcome};
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

    /// Keeps the host's listening sockets open after admission closes, until the hold
    /// is dropped: for long-lived work whose clients hear that it must end only on a
    /// new connection (a long-polling transport is told on its client's next poll).
    /// Take it when such a client is told, drop it once it has heard. `None` once the
    /// host has been told to stop listening (nothing to hold then). The drain's end
    /// stops listening whatever is held.
    ///
    /// ```
    /// use libshutdown::Shutdown;
    ///
    /// let sd = Shutdown::builder().manual_clock().build()?;
    /// let hold = sd.hold_listener().expect("still listening");
    /// let job = sd.guard().expect("admitted"); // the poll's work goes on
    /// sd.trigger("deploy"); // admission closes
    /// assert!(sd.should_listen(), "held: the client's next poll must connect");
    /// drop(hold); // the client has heard
    /// assert!(!sd.should_listen(), "unlisten: close the listening sockets");
    /// drop(job);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_listener(&self) -> Option<ListenerHold> {
        self.inner()
            .connections
            .hold_listener()
            .then(|| ListenerHold::new(self.clone()))
    }

    /// Whether the host's listening sockets should stay open: `true` until admission
    /// closes with no [`ListenerHold`] taken, the last hold is dropped after that, or
    /// the drain ends (the [`Event::Unlisten`] moment).
    pub fn should_listen(&self) -> bool {
        self.inner().connections.listening()
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
        if !out.dismissed.is_empty() || out.unlisten {
            let st = self.lock();
            if !out.dismissed.is_empty() {
                self.emit(&st, Event::Dismissed(out.dismissed));
            }
            if out.unlisten {
                self.emit(&st, Event::Unlisten);
            }
            drop(st);
            if out.unlisten {
                self.inner().changed.notify(usize::MAX);
            }
            self.deliver();
        }
        // Last: releasing the reserve may end the drain.
        drop(out.released);
    }
}
