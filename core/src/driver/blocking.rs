//! The blocking driver: one thread parks until the next deadline or a wake-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use event_listener::Listener;

use crate::report::Report;
use crate::shutdown::{DRIVER_BLOCKING, DRIVER_NONE};
use crate::{Shutdown, StopDriver};

impl Shutdown {
    /// Drives deadlines on the current thread until Done, and returns the report. If
    /// another driver already runs, only waits for Done.
    pub fn run_blocking(&self) -> Report {
        self.drive_blocking(None)
            .expect("only a stop flag ends the loop early")
    }

    /// The blocking driver loop; returns `None` when `stop` is raised first. Without
    /// the driver role (another driver has it, or the clock is virtual) it only waits.
    pub(crate) fn drive_blocking(&self, stop: Option<&AtomicBool>) -> Option<Report> {
        let inner = self.inner();
        let claimed = inner
            .driver
            .compare_exchange(
                DRIVER_NONE,
                DRIVER_BLOCKING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        let drive = claimed && !inner.clock.is_manual();
        loop {
            // Listen before the step, so a wake-up during the step is not lost.
            let listener = if drive {
                inner.wake.listen()
            } else {
                inner.changed.listen()
            };
            if stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                return None;
            }
            let next = if drive {
                let next = self.tick();
                let queued = std::mem::take(&mut self.lock().async_hooks);
                for (id, fut) in queued {
                    self.spawn_async_hook(id, fut);
                }
                next
            } else {
                None
            };
            if let Some(report) = self.report() {
                return Some(report);
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
    pub fn spawn_driver(&self) -> JoinHandle<Report> {
        let sd = self.clone();
        std::thread::Builder::new()
            .name("shutdown-driver".into())
            .spawn(move || sd.run_blocking())
            .expect("could not spawn the shutdown driver thread")
    }

    /// Like [`spawn_driver`](Self::spawn_driver), for hosts that may drop an engine
    /// before it is Done (the C ABI's `shutdown_free`): also returns a function that
    /// stops the driver thread early. Stopping is idempotent and does not change the
    /// shutdown (no trigger, no deadline applied); the thread then ends with `None`, and
    /// no deadline of this engine fires afterwards unless another driver runs. The
    /// thread ends with `Some(report)` at Done. If another driver already runs, or the
    /// clock is virtual, the thread only waits for Done (or the stop).
    pub fn spawn_stoppable_driver(
        &self,
    ) -> std::io::Result<(JoinHandle<Option<Report>>, StopDriver)> {
        let stop = Arc::new(AtomicBool::new(false));
        let (sd, flag) = (self.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("shutdown-driver".into())
            .spawn(move || sd.drive_blocking(Some(&flag)))?;
        let sd = self.clone();
        let stopper = move || {
            stop.store(true, Ordering::Release);
            sd.inner().wake.notify(usize::MAX);
            sd.inner().changed.notify(usize::MAX);
        };
        Ok((thread, Box::new(stopper)))
    }
}
