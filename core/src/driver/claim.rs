//! Holding the driver role, and the engine's own driver.
//!
//! A [`DriverClaim`] is the role held by one driver; dropping it hands the role back,
//! whether the driver finished, was stopped, or its future was dropped mid-drain
//! (`future::or(server, sd.run())`). A drain that is under way when the role falls
//! free, or that starts with no driver at all, gets the engine's own thread
//! (`shutdown-driver`), so deadlines fire whatever the host does or forgets. A host
//! driver that starts later takes the role over from that thread.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use super::role::{Ticket, Took, Who};
use crate::machine::Phase;
use crate::Shutdown;

thread_local! {
    /// Set on the engine's own driver threads, which must not join themselves. A flag
    /// rather than `thread::current().id()`: on a thread Rust did not start (a C host's
    /// main thread calling `shutdown_free`), `current()` allocates a handle that is
    /// never freed.
    static ON_ENGINE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The driver role, held; released on drop.
pub(crate) struct DriverClaim {
    sd: Shutdown,
    ticket: Ticket,
}

impl DriverClaim {
    /// A host driver's claim (`run`, `run_blocking`, `spawn_driver`).
    pub(crate) fn host(sd: &Shutdown, who: Who) -> Option<DriverClaim> {
        let (ticket, took) = sd.inner().role.claim_host(who)?;
        if took == Took::FromEngine {
            // The engine's thread may be parked; it must see that it lost the role.
            sd.inner().wake.notify(usize::MAX);
        }
        Some(DriverClaim {
            sd: sd.clone(),
            ticket,
        })
    }

    /// Whether this claim still holds the role (the engine's may be taken over).
    pub(crate) fn holds(&self) -> bool {
        self.sd.inner().role.holds(self.ticket)
    }

    pub(crate) fn who(&self) -> Who {
        self.ticket.who()
    }
}

impl Drop for DriverClaim {
    fn drop(&mut self) {
        let inner = self.sd.inner();
        if !inner.role.release(self.ticket) {
            return; // taken over: the role is someone else's
        }
        // Waiting `run()`s may claim now; waits re-check.
        inner.wake.notify(usize::MAX);
        inner.changed.notify(usize::MAX);
        if self.ticket.who() != Who::Engine {
            self.sd.ensure_driven();
        }
    }
}

impl Shutdown {
    /// Starts the engine's own driver thread if a drain is under way and nobody drives
    /// it. Called at every trigger and whenever a host driver lets go of the role.
    pub(crate) fn ensure_driven(&self) {
        let inner = self.inner();
        if inner.clock.is_manual() || inner.retired.load(Ordering::Acquire) {
            return;
        }
        if matches!(self.phase(), Phase::Running | Phase::Done) {
            return;
        }
        let Some(ticket) = inner.role.claim_engine() else {
            return; // someone drives
        };
        let claim = DriverClaim {
            sd: self.clone(),
            ticket,
        };
        let sd = self.clone();
        let spawned = std::thread::Builder::new()
            .name("shutdown-driver".into())
            .spawn(move || {
                ON_ENGINE_THREAD.with(|on| on.set(true));
                let sd2 = claim.sd.clone();
                sd2.drive_blocking_with(&claim, None);
            });
        match spawned {
            Ok(thread) => {
                let mut slot = sd
                    .inner()
                    .engine_thread
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                // A previous engine thread has ended or is ending (it lost the role).
                *slot = Some(thread);
            }
            Err(e) => {
                // The claim went into the closure that was never run and is dropped
                // with it: the role is free again, and it does not retry (no thread can
                // be had). Deadlines then wait for a host driver.
                log::error!("shutdown: could not start the driver thread: {e}");
            }
        }
    }

    /// Ends the engine's own driving for good (the C ABI's `shutdown_free`): its thread
    /// stops and is joined (unless this is that thread), and none starts again. Host
    /// drivers may still run.
    pub(crate) fn retire_engine_driver(&self) {
        let inner = self.inner();
        inner.retired.store(true, Ordering::Release);
        inner.wake.notify(usize::MAX);
        let thread = inner
            .engine_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread {
            // An engine thread waits for none: the one in the slot may be itself, and a
            // newer one stops on its own (retired).
            if !ON_ENGINE_THREAD.with(Cell::get) {
                let _ = t.join();
            }
        }
    }
}
