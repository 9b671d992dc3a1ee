//! The event stream: registering callbacks (`on_event`, `on_milestone`), queueing
//! events in the machine's order, and delivering them and hook starts outside the lock.

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::Delivery;
use crate::event::Event;
use crate::hooks::{self, HookBody};
use crate::report::Milestone;

use super::inner::State;
use super::Shutdown;

impl Shutdown {
    /// Calls `f` on every milestone from now on, once each and in order, on the thread
    /// that caused it (a trigger, the last guard, the driver) or, when another thread
    /// is delivering an earlier milestone of this engine at that moment, on that one:
    /// milestones are delivered one at a time, never nested, even when `f` itself
    /// moves the shutdown on. `f` must not block.
    pub fn on_milestone(&self, f: impl Fn(Milestone) + Send + Sync + 'static) {
        self.on_event(move |_, e| {
            if let Event::Milestone(m) = e {
                f(*m)
            }
        });
    }

    /// Calls `f` with every [`Event`] from now on, with the engine's time since it was
    /// built (on its clock), once each and in the machine's order, under the same rules
    /// as [`on_milestone`](Self::on_milestone): on the thread that caused it, never
    /// nested, and `f` must not block.
    pub fn on_event(&self, f: impl Fn(Duration, &Event) + Send + Sync + 'static) {
        self.lock().callbacks.push(Arc::new(f));
    }

    /// Queues an event for the callbacks, in the machine's order (call with the
    /// machine's lock held).
    pub(super) fn emit(&self, st: &State, event: Event) {
        if st.callbacks.is_empty() {
            return;
        }
        let clock = &self.inner().clock;
        let at = clock.since_epoch(clock.now());
        self.inner()
            .deliveries
            .push(Delivery::Event(at, event, st.callbacks.clone()));
    }

    /// Delivers queued milestone callbacks and hook calls, in the machine's order (see
    /// `delivery`), user code outside the lock.
    pub(super) fn deliver(&self) {
        self.inner().deliveries.deliver_all(|step| match step {
            Delivery::Event(at, event, callbacks) => {
                for cb in callbacks {
                    let event = &event;
                    if let Err(p) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                            cb(at, event)
                        }))
                    {
                        log::error!(
                            "shutdown: event callback panicked: {}",
                            hooks::panic_message(&*p)
                        );
                    }
                }
            }
            Delivery::StartHook(id) => {
                let queued = matches!(
                    self.lock().hooks.get(id),
                    Some(Some(HookBody::Deferred(_, true)))
                );
                // Its deadline starts now (for a queued hook: at `HookDone::begin`); the
                // machine may say it is no longer due (an earlier callback moved the
                // clock past the budget, or ended it all).
                if !queued && !self.hook_begins(id) {
                    return;
                }
                let body = self.lock().hooks.get_mut(id).and_then(Option::take);
                if let Some(body) = body {
                    self.start_hook(id, body);
                }
            }
        });
    }
}
