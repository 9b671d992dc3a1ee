//! Cleanup hooks: what runs in the Closing phase, and how each one reports back.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::time::Duration;

use crate::machine::HookId;
use crate::report::HookOutcome;
use crate::Shutdown;

/// The error type hooks return: anything that can be shown.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a hook returns.
pub type HookResult = Result<(), BoxError>;

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = HookResult> + Send + 'static>>;

/// Where and when a hook runs.
///
/// ```
/// use std::time::Duration;
/// use libshutdown::HookOptions;
/// // Flush logs last, with at most 500 ms.
/// let opts = HookOptions::new().order(10).timeout(Duration::from_millis(500));
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookOptions {
    pub(crate) order: i32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) queued: bool,
}

impl HookOptions {
    /// Order 0, timeout = the whole `close_timeout`.
    pub fn new() -> Self {
        Self::default()
    }
    /// Hooks run in ascending order groups; hooks of one order run concurrently.
    pub fn order(mut self, order: i32) -> Self {
        self.order = order;
        self
    }
    /// This hook's own limit (at most `close_timeout`; it also gets no more than what
    /// is left of `close_timeout` when it starts).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// For a deferred hook whose host queues the call (an event loop in another
    /// language): the hook counts as called, and its own timeout starts, only when the
    /// host says so with [`HookDone::begin`], not when the deferred callback runs. A
    /// hook whose `begin` never comes before the close budget ends is reported
    /// skipped.
    pub fn queued(mut self) -> Self {
        self.queued = true;
        self
    }
}

pub(crate) enum HookBody {
    Blocking(Box<dyn FnOnce() -> HookResult + Send>),
    Async(Box<dyn FnOnce() -> BoxFuture + Send>),
    /// `true`: the host says when it really calls it ([`HookOptions::queued`]).
    Deferred(Box<dyn FnOnce(HookDone) + Send>, bool),
}

/// The completion of a deferred hook (see
/// [`Shutdown::on_close_deferred`](crate::Shutdown::on_close_deferred)): call
/// [`finish`](Self::finish) once, from any thread. Dropping it unfinished records a failure.
#[must_use = "dropping a HookDone unfinished records the hook as failed"]
pub struct HookDone {
    sd: Option<Shutdown>,
    id: HookId,
}

impl std::fmt::Debug for HookDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookDone")
            .field("hook", &self.id)
            .field("finished", &self.sd.is_none())
            .finish()
    }
}

impl HookDone {
    pub(crate) fn new(sd: Shutdown, id: HookId) -> Self {
        HookDone { sd: Some(sd), id }
    }

    /// For a hook registered with [`HookOptions::queued`]: the host is about to call
    /// it, and its own timeout starts now. `false` when it must not be called any more
    /// (the close budget ran out or the shutdown ended first): it is reported skipped,
    /// and `finish` is then ignored.
    pub fn begin(&self) -> bool {
        match &self.sd {
            Some(sd) => sd.hook_begins(self.id),
            None => false,
        }
    }

    /// Reports the hook's result.
    pub fn finish(self, result: HookResult) {
        self.finish_with(outcome_of(result));
    }

    /// Reports an outcome directly (the bindings use this to report a throw as a panic).
    pub fn finish_with(mut self, outcome: HookOutcome) {
        if let Some(sd) = self.sd.take() {
            sd.hook_finished(self.id, outcome);
        }
    }
}

impl Drop for HookDone {
    fn drop(&mut self) {
        if let Some(sd) = self.sd.take() {
            sd.hook_finished(
                self.id,
                HookOutcome::Failed("the hook dropped its completion without finishing".into()),
            );
        }
    }
}

pub(crate) fn outcome_of(result: HookResult) -> HookOutcome {
    match result {
        Ok(()) => HookOutcome::Ok,
        Err(e) => HookOutcome::Failed(e.to_string()),
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs a blocking hook body, turning a panic into an outcome.
pub(crate) fn run_blocking(f: Box<dyn FnOnce() -> HookResult + Send>) -> HookOutcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => outcome_of(r),
        Err(p) => HookOutcome::Panicked(panic_message(&*p)),
    }
}

/// Polls an async hook to completion on the current thread.
pub(crate) fn block_on(fut: BoxFuture) -> HookOutcome {
    run_blocking(Box::new(move || futures_lite::future::block_on(fut)))
}
