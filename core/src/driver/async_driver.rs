//! The async driver: `async-io` timers and `event-listener` wake-ups, and the async
//! hooks polled inside the same task (so they run in the caller's executor context).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Timer;

use super::claim::DriverClaim;
use super::role::Who;
use crate::hooks::{outcome_of, panic_message, BoxFuture};
use crate::machine::HookId;
use crate::report::{HookOutcome, Report};
use crate::Shutdown;

impl Shutdown {
    /// Drives the shutdown until Done and returns the report. Runs under any executor
    /// (smol, async-std, tokio, `futures::executor`). Await it alongside the server; it
    /// sleeps until a trigger arrives. If another host driver already runs, it waits,
    /// and drives if that driver ends first.
    ///
    /// Cancel-safe: dropping the future mid-drain hands the driver role back (with any
    /// async hook it was polling), and the engine drives itself until a driver takes
    /// the role again, so a `future::or(server, sd.run())` that the server side wins
    /// loses no deadline.
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
        if inner.clock.is_manual() {
            return self.done().await;
        }
        loop {
            if let Some(claim) = DriverClaim::host(self, Who::HostAsync) {
                let mut task = AsyncDrive {
                    sd: self.clone(),
                    hooks: Vec::new(),
                    claim,
                };
                return task.drive().await;
            }
            // Another host drives. Wait for Done, or for the role to fall free.
            let listener = inner.changed.listen();
            if let Some(report) = self.report() {
                return report;
            }
            if matches!(inner.role.holder(), None | Some(Who::Engine)) {
                continue;
            }
            listener.await;
        }
    }
}

/// The async driver's state. Dropped mid-drain, it puts the async hooks it was polling
/// back in the queue before its claim (a later field) hands the role back, so the next
/// driver finishes them.
struct AsyncDrive {
    sd: Shutdown,
    hooks: Vec<(HookId, BoxFuture)>,
    claim: DriverClaim,
}

impl AsyncDrive {
    async fn drive(&mut self) -> Report {
        let sd = self.sd.clone();
        let inner = sd.inner();
        loop {
            let mut listener = inner.wake.listen();
            debug_assert!(self.claim.holds(), "a host driver is never taken over");
            let next = sd.tick();
            self.hooks.append(&mut sd.lock().async_hooks);
            if let Some(report) = sd.report() {
                return report;
            }
            let mut timer = next.map(Timer::at);
            let finished = Wait {
                listener: &mut listener,
                timer: timer.as_mut(),
                hooks: &mut self.hooks,
            }
            .await;
            for (id, outcome) in finished {
                sd.hook_finished(id, outcome);
            }
        }
    }
}

impl Drop for AsyncDrive {
    fn drop(&mut self) {
        if self.hooks.is_empty() {
            return;
        }
        self.sd.lock().async_hooks.append(&mut self.hooks);
        self.sd.inner().wake.notify(usize::MAX);
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
