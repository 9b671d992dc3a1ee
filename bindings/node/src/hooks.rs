//! Cleanup hooks run by JavaScript: the core's deferred hooks, started by the core,
//! run by `index.js`, reported back here.

use libshutdown::{HookError, HookOptions, HookOutcome};
use napi_derive::napi;

use crate::convert::ms;
use crate::events::lock;
use crate::NativeShutdown;

#[napi]
impl NativeShutdown {
    /// Registers a hook run by JavaScript: when the core starts it, the event
    /// `(1, id)` is queued; JavaScript runs it and calls [`hook_done`](Self::hook_done).
    /// Returns the hook id, or a negative code: -1 too late, -2 bad timeout, -3 bad name.
    #[napi(catch_unwind)]
    pub fn on_close(&mut self, name: String, order: i32, timeout_ms: Option<f64>) -> i32 {
        // Queued: the hook counts as called when JavaScript calls it (`hook_begin`),
        // not when the core queues the event.
        let mut opts = HookOptions::new().order(order).queued();
        if let Some(t) = timeout_ms {
            opts = opts.timeout(ms(t));
        }
        // Reserve the id first: the core starts the hook only after registration returns.
        let id = {
            let mut hooks = lock(&self.shared.hooks);
            hooks.push(None);
            hooks.len() - 1
        };
        let shared = self.shared.clone();
        let registered = self.sd.on_close_deferred(&name, opts, move |done| {
            let unclaimed = {
                let mut hooks = lock(&shared.hooks);
                match hooks.get_mut(id) {
                    Some(slot) => {
                        *slot = Some(done);
                        None
                    }
                    // The JavaScript object is gone (garbage-collected): nobody can
                    // run the hook. Dropping the completion records it as failed.
                    None => Some(done),
                }
            };
            match unclaimed {
                None => shared.push_hook_start(id as u32),
                Some(done) => drop(done),
            }
        });
        match registered {
            Ok(()) => id as i32,
            Err(e) => {
                lock(&self.shared.hooks).pop();
                match e {
                    HookError::TooLate => -1,
                    HookError::BadTimeout(_) => -2,
                    HookError::BadName => -3,
                }
            }
        }
    }

    /// JavaScript is about to call hook `id`: its own timeout starts now. `false`: it
    /// is no longer due (the close budget ran out, or the shutdown ended, before
    /// JavaScript got to it); do not call it, it is reported skipped.
    #[napi(catch_unwind)]
    pub fn hook_begin(&self, id: u32) -> bool {
        let mut hooks = lock(&self.shared.hooks);
        let Some(slot) = hooks.get_mut(id as usize) else {
            return false;
        };
        if slot.as_ref().is_some_and(|done| done.begin()) {
            return true;
        }
        // Not due: its completion is dropped unused (the core ignores it).
        let stale = slot.take();
        drop(hooks);
        drop(stale);
        false
    }

    /// A JavaScript hook ended: status 0 ok, 1 failed (rejected), 2 panicked (threw).
    /// Returns whether events are pending. A second report for the same hook is ignored,
    /// as is a report after the core timed the hook out.
    #[napi(catch_unwind)]
    pub fn hook_done(&self, id: u32, status: u32, message: Option<String>) -> bool {
        let done = lock(&self.shared.hooks)
            .get_mut(id as usize)
            .and_then(Option::take);
        if let Some(done) = done {
            let message = message.unwrap_or_default();
            done.finish_with(match status {
                0 => HookOutcome::Ok,
                2 => HookOutcome::Panicked(message),
                _ => HookOutcome::Failed(message),
            });
        }
        self.pending()
    }
}
