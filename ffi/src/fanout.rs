//! The fan-out of the core's event stream to the C notifications: milestone,
//! cancellation and event callbacks, and the Done that the waits see.

use crate::engine::*;
use crate::event::{CEvent, EventCb};
use crate::gate::*;
use crate::kinds::*;
use crate::notify::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, status, UserData};
use shutdown_core::{Event, Milestone, Shutdown};
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Called on every milestone with the `user_data` given at registration.
pub type ShutdownMilestoneFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, milestone: ShutdownMilestone)>;

/// Called once when the cancellation signal fires, with the `user_data` given at
/// registration.
pub type ShutdownCancelFn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

pub(crate) type MilestoneCb = unsafe extern "C" fn(*mut c_void, ShutdownMilestone);
pub(crate) type CancelCb = unsafe extern "C" fn(*mut c_void);
pub(crate) type DismissedCb = unsafe extern "C" fn(*mut c_void, *const u64, usize);

/// What the core's callbacks and the hook closures share with the handle. It holds no
/// `Shutdown` after `shutdown_free` (the core holds it: no cycle).
pub(crate) struct Shared {
    pub(crate) gate: Gate,
    pub(crate) fds: Mutex<Fds>,
    pub(crate) core: Mutex<Option<Shutdown>>,
    pub(crate) milestone_callbacks: Mutex<Vec<(MilestoneCb, UserData)>>,
    pub(crate) event_callbacks: Mutex<Vec<(EventCb, UserData)>>,
    pub(crate) dismissed_callbacks: Mutex<Vec<(DismissedCb, UserData)>>,
    /// The C kind ids, for the events that name a kind.
    pub(crate) kinds: Arc<KindIds>,
    /// The cancellation callbacks registered before the core's Cancelled event was
    /// delivered; the core's own flag says whether it fired (shutdown_on_cancel()).
    pub(crate) cancel: Mutex<Vec<(CancelCb, UserData)>>,
    /// Set once the Done milestone was handled (its C callbacks returned).
    pub(crate) done: Mutex<bool>,
    pub(crate) done_cv: Condvar,
}

impl Shared {
    pub(crate) fn new(kinds: Arc<KindIds>) -> std::io::Result<Self> {
        Ok(Shared {
            gate: Gate::new(),
            fds: Mutex::new(Fds {
                milestone: Some(Notifier::new()?),
                cancel: Some(Notifier::new()?),
            }),
            core: Mutex::new(None),
            milestone_callbacks: Mutex::new(Vec::new()),
            event_callbacks: Mutex::new(Vec::new()),
            dismissed_callbacks: Mutex::new(Vec::new()),
            kinds,
            cancel: Mutex::new(Vec::new()),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        })
    }

    /// The core's event callback, the one source of every C notification: the
    /// cancellation (its fd and callbacks) on Cancelled, the milestone fd and callbacks
    /// on a milestone (and the fd on Unlisten), the dismissal callbacks on Dismissed, then
    /// the event callbacks; Done is handled once they all returned.
    /// The core emits Cancelled before the milestone that causes it, so a loop woken by
    /// the milestone fd finds the cancellation fd readable already.
    pub(crate) fn on_event(&self, at: Duration, event: &Event) {
        match event {
            Event::Cancelled => self.fire_cancel(),
            Event::Milestone(m) => {
                if let Some(n) = &lock(&self.fds).milestone {
                    n.notify();
                }
                let code = ShutdownMilestone::from(*m);
                let callbacks = lock(&self.milestone_callbacks).clone();
                for (cb, ud) in callbacks {
                    // SAFETY: a C callback with its own user_data (the C contract).
                    self.gate.call(|| unsafe { cb(ud.ptr(), code) });
                }
            }
            // A loop that polls the milestone fd learns of the unlisten moment too (it
            // comes after quiescing when a listener hold delayed it).
            Event::Unlisten => {
                if let Some(n) = &lock(&self.fds).milestone {
                    n.notify();
                }
            }
            Event::Dismissed(ids) => {
                let callbacks = lock(&self.dismissed_callbacks).clone();
                for (cb, ud) in callbacks {
                    // SAFETY: a C callback with its own user_data (the C contract);
                    // `ids` lives for the call.
                    self.gate
                        .call(|| unsafe { cb(ud.ptr(), ids.as_ptr(), ids.len()) });
                }
            }
            _ => {}
        }
        let callbacks = lock(&self.event_callbacks).clone();
        if !callbacks.is_empty() {
            if let Some(core) = lock(&self.core).clone() {
                let c = CEvent::new(at, event, &self.kinds, &core);
                for (cb, ud) in callbacks {
                    // SAFETY: a C callback with its own user_data (the C contract); the
                    // event lives for the call.
                    self.gate.call(|| unsafe { cb(ud.ptr(), &c.event) });
                }
            }
        }
        if *event == Event::Milestone(Milestone::Done) {
            *lock(&self.done) = true;
            self.done_cv.notify_all();
        }
    }

    pub(crate) fn add_event_callback(&self, cb: EventCb, user_data: *mut c_void) {
        lock(&self.event_callbacks).push((cb, UserData(user_data)));
    }

    /// Waits until Done was handled (its callbacks returned), or until `deadline`.
    pub(crate) fn wait_done(&self, deadline: Option<std::time::Instant>) -> bool {
        let mut done = lock(&self.done);
        while !*done {
            match deadline {
                None => done = self.done_cv.wait(done).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return false;
                    }
                    done = self
                        .done_cv
                        .wait_timeout(done, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }

    /// The core's Cancelled event (delivered once): the fd, then the callbacks
    /// registered before it (a later registration finds the core cancelled and is
    /// called at once).
    pub(crate) fn fire_cancel(&self) {
        let callbacks = std::mem::take(&mut *lock(&self.cancel));
        if let Some(n) = &lock(&self.fds).cancel {
            n.notify();
        }
        for (cb, ud) in callbacks {
            // SAFETY: a C callback with its own user_data (the C contract).
            self.gate.call(|| unsafe { cb(ud.ptr()) });
        }
    }
}

/// Calls `callback(user_data, milestone)` on every milestone from now on, in order. It
/// must not block and must not call shutdown_wait() or shutdown_free(); it may call
/// the other functions.
///
/// Thread: any. Callbacks: `callback` runs on the thread that caused the milestone:
/// the driver thread (deadlines, the last guard released), the thread calling
/// shutdown_trigger(), shutdown_readiness_probed(), shutdown_hook_done() or
/// shutdown_advance(), a hook thread when a blocking hook returns, or (manual clock)
/// the thread releasing the last guard.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_milestone(
    engine: *const Engine,
    callback: ShutdownMilestoneFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        lock(&e.shared.milestone_callbacks).push((cb, UserData(user_data)));
        Ok(())
    })
}

/// Calls `callback(user_data)` once when the cancellation signal fires (see
/// shutdown_is_cancelled()); at once, on this thread, if it has fired already. It must
/// not block.
///
/// Thread: any. Callbacks: `callback` runs on the thread that caused the cut (the
/// driver thread at the drain deadline, the thread calling shutdown_trigger() on an
/// escalation) or that reached Done; or on this thread if already fired.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_cancel(
    engine: *const Engine,
    callback: ShutdownCancelFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        let ud = UserData(user_data);
        {
            // The core's flag, under the lock the Cancelled event takes the callbacks
            // with: the flag is set before that event is queued, so a registration
            // that finds it unset is still taken by the event, and one that finds it
            // set is called here, whether or not the event was delivered yet.
            let mut callbacks = lock(&e.shared.cancel);
            if !e.core.is_cancelled() {
                callbacks.push((cb, ud));
                return Ok(());
            }
        }
        // SAFETY: a C callback with its own user_data (the C contract).
        e.shared.gate.call(|| unsafe { cb(ud.ptr()) });
        Ok(())
    })
}
