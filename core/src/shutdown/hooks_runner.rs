//! Cleanup hooks: registering them (`on_close*`) and running each one the machine
//! starts, on the thread its kind needs.

use std::future::Future;

use crate::hooks::{self, BoxFuture, HookBody, HookDone, HookOptions, HookResult};
use crate::machine::{HookError, HookId};
use crate::report::HookOutcome;

use super::Shutdown;

impl Shutdown {
    /// Registers a blocking cleanup hook; it runs on a thread of its own in Closing.
    ///
    /// ```
    /// # use libshutdown::{Shutdown, HookOptions};
    /// let sd = Shutdown::builder().build().unwrap();
    /// sd.on_close("flush logs", HookOptions::new().order(10), || {
    ///     // flush...
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn on_close<F>(&self, name: &str, options: HookOptions, f: F) -> Result<(), HookError>
    where
        F: FnOnce() -> HookResult + Send + 'static,
    {
        self.add_hook(name, options, HookBody::Blocking(Box::new(f)))
    }

    /// Registers an async cleanup hook. Under [`run`](Self::run) it is polled by the
    /// driver's own task, so it may use the executor's I/O; otherwise it is polled on a
    /// thread of its own.
    pub fn on_close_async<F, Fut>(
        &self,
        name: &str,
        options: HookOptions,
        f: F,
    ) -> Result<(), HookError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        let body = HookBody::Async(Box::new(move || Box::pin(f()) as BoxFuture));
        self.add_hook(name, options, body)
    }

    /// Registers a hook that completes through a [`HookDone`], from any thread. `f`
    /// is called on the thread that starts the group and must not block: it starts the
    /// work (on an event loop, another language's runtime) and returns.
    pub fn on_close_deferred<F>(
        &self,
        name: &str,
        options: HookOptions,
        f: F,
    ) -> Result<(), HookError>
    where
        F: FnOnce(HookDone) + Send + 'static,
    {
        let queued = options.queued;
        self.add_hook(name, options, HookBody::Deferred(Box::new(f), queued))
    }

    fn add_hook(&self, name: &str, options: HookOptions, body: HookBody) -> Result<(), HookError> {
        let timeout = options.timeout.unwrap_or(self.config().close_timeout);
        let mut st = self.lock();
        let id = st.machine.add_hook(name, options.order, timeout)?;
        debug_assert_eq!(id, st.hooks.len());
        st.hooks.push(Some(body));
        Ok(())
    }

    pub(crate) fn hook_begins(&self, id: HookId) -> bool {
        self.with_machine(|m, now, _| m.hook_started(now, id))
    }

    pub(crate) fn hook_finished(&self, id: HookId, outcome: HookOutcome) {
        self.with_machine(|m, now, _| m.hook_finished(now, id, outcome));
    }

    pub(super) fn start_hook(&self, id: HookId, body: HookBody) {
        let manual = self.inner().clock.is_manual();
        match body {
            HookBody::Blocking(f) if manual => self.hook_finished(id, hooks::run_blocking(f)),
            HookBody::Blocking(f) => {
                let sd = self.clone();
                self.spawn_hook_thread(id, move || sd.hook_finished(id, hooks::run_blocking(f)));
            }
            HookBody::Async(f) => {
                let fut = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                    Ok(fut) => fut,
                    Err(p) => {
                        return self
                            .hook_finished(id, HookOutcome::Panicked(hooks::panic_message(&*p)));
                    }
                };
                if manual {
                    self.hook_finished(id, hooks::block_on(fut));
                } else {
                    // Queued for whichever driver holds the role: `run()` polls it in its
                    // own task (so it sees the caller's executor context); a blocking
                    // driver gives it a thread.
                    self.lock().async_hooks.push((id, fut));
                    self.inner().wake.notify(usize::MAX);
                }
            }
            HookBody::Deferred(f, _) => {
                let done = HookDone::new(self.clone(), id);
                // A panic drops `done`, which records the hook as failed; record the
                // panic itself first so the report says what happened.
                if let Err(p) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(done)))
                {
                    self.hook_finished(id, HookOutcome::Panicked(hooks::panic_message(&*p)));
                }
            }
        }
    }

    pub(crate) fn spawn_async_hook(&self, id: HookId, fut: BoxFuture) {
        let sd = self.clone();
        self.spawn_hook_thread(id, move || sd.hook_finished(id, hooks::block_on(fut)));
    }

    fn spawn_hook_thread(&self, id: HookId, f: impl FnOnce() + Send + 'static) {
        let spawned = std::thread::Builder::new()
            .name(format!("shutdown-hook-{id}"))
            .spawn(f);
        if let Err(e) = spawned {
            self.hook_finished(
                id,
                HookOutcome::Failed(format!("could not start a thread: {e}")),
            );
        }
    }
}
