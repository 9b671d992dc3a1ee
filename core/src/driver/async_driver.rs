//! The async driver: `async-io` timers and `event-listener` wake-ups, and the async
//! hooks polled inside the same task (so they run in the caller's executor context).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use async_io::Timer;

use crate::hooks::{outcome_of, panic_message, BoxFuture};
use crate::machine::HookId;
use crate::report::{HookOutcome, Report};
use crate::shutdown::{DRIVER_ASYNC, DRIVER_NONE};
use crate::Shutdown;

impl Shutdown {
    /// Drives the shutdown until Done and returns the report. Runs under any executor
    /// (smol, async-std, tokio, `futures::executor`). Await it alongside the server; it
    /// sleeps until a trigger arrives. If another driver already runs, only waits.
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let sd = libshutdown::Shutdown::builder().build().unwrap();
    /// sd.trigger("test");
    /// let report = sd.run().await;
    /// assert_eq!(report.exit_code, 0);
    /// # });
    /// ```
    pub async fn run(&self) -> Report {
        let inner = self.inner();
        let claimed = inner
            .driver
            .compare_exchange(
                DRIVER_NONE,
                DRIVER_ASYNC,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if !claimed || inner.clock.is_manual() {
            return self.done().await;
        }
        let mut hooks: Vec<(HookId, BoxFuture)> = Vec::new();
        loop {
            let mut listener = inner.wake.listen();
            let next = self.tick();
            hooks.append(&mut self.lock().async_hooks);
            if let Some(report) = self.report() {
                return report;
            }
            let mut timer = next.map(Timer::at);
            let finished = Wait {
                listener: &mut listener,
                timer: timer.as_mut(),
                hooks: &mut hooks,
            }
            .await;
            for (id, outcome) in finished {
                self.hook_finished(id, outcome);
            }
        }
    }
}

/// Resolves when the listener fires, the timer fires, or any hook finishes (with the
/// finished hooks' outcomes).
struct Wait<'a, L> {
    listener: &'a mut L,
    timer: Option<&'a mut Timer>,
    hooks: &'a mut Vec<(HookId, BoxFuture)>,
}

impl<L: Future<Output = ()> + Unpin> Future for Wait<'_, L> {
    type Output = Vec<(HookId, HookOutcome)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut finished = Vec::new();
        this.hooks.retain_mut(|(id, fut)| {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                Ok(Poll::Ready(r)) => {
                    finished.push((*id, outcome_of(r)));
                    false
                }
                Ok(Poll::Pending) => true,
                Err(p) => {
                    finished.push((*id, HookOutcome::Panicked(panic_message(&*p))));
                    false
                }
            }
        });
        if !finished.is_empty() {
            return Poll::Ready(finished);
        }
        if Pin::new(&mut *this.listener).poll(cx).is_ready() {
            return Poll::Ready(finished);
        }
        if let Some(timer) = this.timer.as_mut() {
            if Pin::new(&mut **timer).poll(cx).is_ready() {
                return Poll::Ready(finished);
            }
        }
        Poll::Pending
    }
}
