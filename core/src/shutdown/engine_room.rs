//! The engine room: the machine's lock, feeding it one event at a time, turning the
//! actions it asks for into effects (status word, admission, connections, events,
//! hooks), and the driver's step.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::Instant;

use crate::admission::{Close, RawGuard};
use crate::connection::{Outcome, CONNECTION_KIND};
use crate::delivery::Delivery;
use crate::driver::role::step_wakes_driver;
use crate::event::Event;
use crate::machine::{Action, Machine, Phase};
use crate::report::{InFlight, Milestone};

use super::inner::{Inner, State};
use super::status::{CANCELLED, PHASE_MASK, QUIESCING};
use super::Shutdown;

#[derive(Default)]
struct Effects {
    status_changed: bool,
    reached_done: bool,
    /// The boundary reserve, released: dropped once no lock is held.
    released: Vec<RawGuard<Inner>>,
}

impl Shutdown {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this crate; the
        // state stays consistent enough to finish a shutdown, so carry on.
        self.inner().state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is in flight, for the machine: guards (the boundary reserve is not work)
    /// and connections on which a request was arriving (cut work if the drain ends now).
    fn in_flight_snapshot(&self) -> InFlight {
        let table = &self.inner().connections;
        let reserve = u64::from(table.reserve_held());
        let reading = table.reading();
        let mut by_kind = self.inner().kinds.snapshot();
        if reading > 0 {
            *by_kind.entry(CONNECTION_KIND.to_string()).or_default() += reading;
        }
        InFlight {
            total: self.handle.in_flight().saturating_sub(reserve) + reading,
            by_kind,
        }
    }

    /// Feeds one event to the machine and carries out what it asks, user code last and
    /// outside the lock.
    pub(crate) fn with_machine<R>(
        &self,
        f: impl FnOnce(&mut Machine, Instant, &mut dyn FnMut() -> InFlight) -> R,
    ) -> R {
        let mut effects = Effects::default();
        let (result, wake_driver) = {
            let mut st = self.lock();
            let now = self.inner().clock.now();
            let deadline_before = st.machine.poll_timeout();
            let window_before = st.machine.announce_window();
            let mut snap = || self.in_flight_snapshot();
            let r = f(&mut st.machine, now, &mut snap);
            self.apply_actions(&mut st, now, &mut effects);
            // The driver only needs waking when its deadline moved; waking it on every
            // event would make it wake itself in a loop.
            let deadline_after = st.machine.poll_timeout();
            if st.machine.announce_window() != window_before {
                // Readiness probes shorten the announce window: the gradual advice must
                // ramp over the window that is, not the one configured. (Compared as
                // the window itself: another deadline, such as the next progress
                // report, may be the earliest one before and after.)
                self.publish_announce_window(&st.machine);
            }
            (
                r,
                step_wakes_driver(deadline_before, deadline_after, effects.reached_done),
            )
        };
        // This thread delivers what its own step queued before the driver is woken: a
        // driver woken first could take those milestones and deliver them on its thread,
        // later (the C test_lifecycle saw that under valgrind).
        self.deliver();
        if wake_driver {
            self.inner().wake.notify(usize::MAX);
        }
        drop(effects.released);
        result
    }

    fn apply_actions(&self, st: &mut State, now: Instant, fx: &mut Effects) {
        let inner = self.inner();
        while let Some(action) = st.machine.poll_action() {
            match action {
                Action::Milestone(m) => {
                    let bits = match m {
                        Milestone::Draining => {
                            self.publish_announce_window(&st.machine);
                            Phase::Draining as u8
                        }
                        Milestone::Quiescing => QUIESCING,
                        Milestone::Closing => Phase::Closing as u8 | QUIESCING,
                        Milestone::Done => Phase::Done as u8 | QUIESCING | CANCELLED,
                    };
                    let old = inner.status.load(Ordering::Relaxed);
                    let new = (old & !PHASE_MASK)
                        | (old & PHASE_MASK).max(bits & PHASE_MASK)
                        | (bits & !PHASE_MASK);
                    inner.status.store(new, Ordering::Release);
                    if new & CANCELLED != 0 && old & CANCELLED == 0 {
                        self.emit(st, Event::Cancelled);
                    }
                    self.emit(st, Event::Milestone(m));
                    fx.reached_done |= m == Milestone::Done;
                    fx.status_changed = true;
                    if m == Milestone::Closing {
                        let out = inner.connections.end_boundary();
                        self.queue_table(st, out, fx);
                    }
                }
                Action::CloseAdmission => {
                    // The reserve is taken while admission is still open.
                    let out = inner
                        .connections
                        .begin_boundary(now, || self.handle.try_acquire());
                    st.machine.set_connection_deadline(out.next_due, true);
                    self.queue_table(st, out, fx);
                    let close = self.handle.close();
                    let out = inner.connections.admission_closed();
                    self.queue_table(st, out, fx);
                    match close {
                        Close::Drained => st.machine.drained(now),
                        Close::Waiting(n) => {
                            log::info!("shutdown: admission closed, {n} in flight")
                        }
                        Close::AlreadyClosed => {}
                    }
                }
                Action::DismissIdle => {
                    let out = inner.connections.dismiss_due(now);
                    st.machine.set_connection_deadline(out.next_due, true);
                    self.queue_table(st, out, fx);
                }
                Action::Cancel => {
                    self.handle.end_drain();
                    let old = inner.status.fetch_or(CANCELLED, Ordering::AcqRel);
                    if old & CANCELLED == 0 {
                        self.emit(st, Event::Cancelled);
                    }
                    fx.status_changed = true;
                }
                Action::StartHook(id) => inner.deliveries.push(Delivery::StartHook(id)),
                Action::Terminate => self.emit(st, Event::Terminate),
                Action::StreamsEnding(name) => {
                    if let Some(kind) = self.mark_kind(&inner.ending, &name) {
                        self.emit(st, Event::StreamsEnding(kind));
                        fx.status_changed = true;
                    }
                }
                Action::StreamsCut(name, count) => {
                    if let Some(kind) = self.mark_kind(&inner.cut, &name) {
                        self.emit(st, Event::StreamsCut { kind, count });
                        fx.status_changed = true;
                    }
                }
                Action::Progress => {
                    let p = self.progress_of(&st.machine, now);
                    log::info!(target: "libshutdown", "shutdown: {p}");
                    self.emit(st, Event::Progress(p));
                }
                Action::HookCalled(id) => {
                    if let Some(name) = st.machine.hook_name(id) {
                        let name = name.to_string();
                        self.emit(st, Event::HookStarted { name });
                    }
                }
                Action::HookEnded(id) => {
                    if let Some((name, outcome)) = st.machine.hook_outcome(id) {
                        let event = Event::HookFinished {
                            name: name.to_string(),
                            outcome: outcome.clone(),
                        };
                        self.emit(st, event);
                    }
                }
            }
        }
        if fx.status_changed {
            inner.changed.notify(usize::MAX);
        }
    }

    /// A connection-table step taken under the machine's lock: its dismissals are
    /// queued in the machine's order, its released reserve dropped after the lock.
    fn queue_table(&self, st: &State, out: Outcome, fx: &mut Effects) {
        if !out.dismissed.is_empty() {
            self.emit(st, Event::Dismissed(out.dismissed));
        }
        if out.unlisten {
            self.emit(st, Event::Unlisten);
            fx.status_changed = true;
        }
        fx.released.extend(out.released);
    }

    /// One driver step: apply a pending drain and every passed deadline; returns the
    /// next deadline, or `None` when there is none (or Done).
    pub(crate) fn tick(&self) -> Option<Instant> {
        let drained = self.inner().drained_pending.swap(false, Ordering::AcqRel);
        self.with_machine(|m, now, snap| {
            if drained {
                m.drained(now);
            }
            if m.poll_timeout().is_some_and(|d| d <= now) {
                m.handle_timeout(now, snap);
            }
            m.poll_timeout()
        })
    }
}
