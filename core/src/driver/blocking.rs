//! The blocking driver: one thread parks until the next deadline or a wake-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use event_listener::Listener;

use super::claim::DriverClaim;
use super::role::Who;
use crate::raw::StopDriver;
use crate::report::Report;
use crate::Shutdown;

/// How long the engine's own thread leaves queued async hooks for a host's `run()`.
const ENGINE_HOOK_HANDOVER: Duration = Duration::from_millis(100);

/// Why a blocking drive loop returned.
pub(crate) enum DriveEnd {
    Done(Report),
    /// The host's stop flag was raised, or the engine's driving was retired.
    Stopped,
    /// Another driver took the role over (only the engine's own thread is outranked).
    Lost,
}

impl Shutdown {
    /// Drives deadlines on the current thread until Done, and returns the report. If
    /// another host driver already runs, waits for Done, and drives if that driver ends
    /// first (its future dropped, its thread stopped).
    pub fn run_blocking(&self) -> Report {
        match self.run_blocking_until(None) {
            Some(report) => report,
            None => unreachable!("only a stop flag ends the loop early"),
        }
    }

    /// The blocking driver; `None` when `stop` is raised first.
    fn run_blocking_until(&self, stop: Option<&AtomicBool>) -> Option<Report> {
        if self.inner().clock.is_manual() {
            // Nothing to drive on a virtual clock: `advance` applies every deadline.
            return self.wait_or_stop(stop);
        }
        loop {
            if let Some(claim) = DriverClaim::host(self, Who::HostBlocking) {
                match self.drive_blocking_with(&claim, stop) {
                    DriveEnd::Done(report) => return Some(report),
                    DriveEnd::Stopped => return None,
                    DriveEnd::Lost => continue,
                }
            }
            // Another host drives. Wait for Done, or for the role to fall free.
            let listener = self.inner().changed.listen();
            if stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                return None;
            }
            if let Some(report) = self.report() {
                return Some(report);
            }
            if matches!(self.inner().role.holder(), None | Some(Who::Engine)) {
                continue;
            }
            listener.wait();
        }
    }

    fn wait_or_stop(&self, stop: Option<&AtomicBool>) -> Option<Report> {
        loop {
            let listener = self.inner().changed.listen();
            if stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                return None;
            }
            if let Some(report) = self.report() {
                return Some(report);
            }
            listener.wait();
        }
    }

    /// The drive loop, for the holder of `claim`: tick, hand queued async hooks a
    /// thread each, park until the next deadline or a wake-up.
    pub(crate) fn drive_blocking_with(
        &self,
        claim: &DriverClaim,
        stop: Option<&AtomicBool>,
    ) -> DriveEnd {
        let inner = self.inner();
        let engine = claim.who() == Who::Engine;
        // The engine's thread leaves queued async hooks to a host's `run()` for a moment
        // (`trigger(); rt.block_on(sd.run())` is the usual order): polled there they see
        // the host's executor, on a thread of their own they would not.
        let adopt_hooks_at = engine.then(|| Instant::now() + ENGINE_HOOK_HANDOVER);
        loop {
            // Listen before the checks and the step: a wake-up during them (a deadline
            // moved, Done reached elsewhere, the role taken over) is not lost.
            let listener = inner.wake.listen();
            if stop.is_some_and(|s| s.load(Ordering::Acquire))
                || (engine && inner.retired.load(Ordering::Acquire))
            {
                return DriveEnd::Stopped;
            }
            if !claim.holds() {
                return DriveEnd::Lost;
            }
            let mut next = self.tick();
            let adopt_now = adopt_hooks_at.is_none_or(|t| Instant::now() >= t);
            let queued = {
                let mut st = self.lock();
                if adopt_now || st.async_hooks.is_empty() {
                    std::mem::take(&mut st.async_hooks)
                } else if let Some(t) = adopt_hooks_at {
                    next = Some(next.map_or(t, |n| n.min(t)));
                    Vec::new()
                } else {
                    Vec::new()
                }
            };
            for (id, fut) in queued {
                self.spawn_async_hook(id, fut);
            }
            if let Some(report) = self.report() {
                return DriveEnd::Done(report);
            }
            match next {
                Some(deadline) => {
                    listener.wait_deadline(deadline);
                }
                None => listener.wait(),
            }
        }
    }

    /// Starts the blocking driver on a thread of its own (`shutdown-driver`). The thread
    /// ends with the shutdown; its result is the report.
    ///
    /// Optional: an engine whose drain starts with no driver drives itself on a thread
    /// of its own. Start one to choose the thread yourself, before or after the trigger.
    pub fn spawn_driver(&self) -> JoinHandle<Report> {
        let sd = self.clone();
        std::thread::Builder::new()
            .name("shutdown-driver".into())
            .spawn(move || sd.run_blocking())
            .expect("could not spawn the shutdown driver thread")
    }

    /// [`raw::spawn_stoppable_driver`](crate::raw::spawn_stoppable_driver).
    pub(crate) fn spawn_stoppable_driver(
        &self,
    ) -> std::io::Result<(JoinHandle<Option<Report>>, StopDriver)> {
        let stop = Arc::new(AtomicBool::new(false));
        let (sd, flag) = (self.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("shutdown-driver".into())
            .spawn(move || sd.run_blocking_until(Some(&flag)))?;
        let sd = self.clone();
        let stopper = move || {
            // Retire first: the stopped driver's claim, released, must not start the
            // engine's own thread.
            sd.retire_engine_driver();
            stop.store(true, Ordering::Release);
            sd.inner().wake.notify(usize::MAX);
            sd.inner().changed.notify(usize::MAX);
        };
        Ok((thread, Box::new(stopper)))
    }
}
