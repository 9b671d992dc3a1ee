//! The engine handle and its lifecycle: the phase, milestone and reason types,
//! shutdown_new() and shutdown_free().

use crate::config::ConfigBuilder;
use crate::fanout::*;
use crate::gate::*;
use crate::kinds::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, boundary, out, put, status};
use shutdown_core::{Kind, Milestone, Phase, Report, Shutdown, SignalListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The coarse phase. Monotonic: RUNNING -> DRAINING -> CLOSING -> DONE.
/// cbindgen:rename-all=prefix:SHUTDOWN_PHASE_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownPhase {
    /// Normal service: ready, admitting guards.
    RUNNING = 0,
    /// Readiness fails; admission closes after the announce window; in-flight work
    /// finishes.
    DRAINING = 1,
    /// Cleanup hooks run.
    CLOSING = 2,
    /// The report is final.
    DONE = 3,
}

impl From<Phase> for ShutdownPhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Running => ShutdownPhase::RUNNING,
            Phase::Draining => ShutdownPhase::DRAINING,
            Phase::Closing => ShutdownPhase::CLOSING,
            Phase::Done => ShutdownPhase::DONE,
        }
    }
}

/// A point on the shutdown timeline, in the order they are reached.
/// cbindgen:rename-all=prefix:SHUTDOWN_MILESTONE_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShutdownMilestone {
    /// No milestone reached yet (Running).
    NONE = 0,
    /// The drain started: readiness fails (the announce stage).
    DRAINING = 1,
    /// Admission closed: new guards are refused; stop accepting connections.
    QUIESCING = 2,
    /// Cleanup hooks started.
    CLOSING = 3,
    /// The report is final.
    DONE = 4,
}

impl From<Milestone> for ShutdownMilestone {
    fn from(m: Milestone) -> Self {
        match m {
            Milestone::Draining => ShutdownMilestone::DRAINING,
            Milestone::Quiescing => ShutdownMilestone::QUIESCING,
            Milestone::Closing => ShutdownMilestone::CLOSING,
            Milestone::Done => ShutdownMilestone::DONE,
        }
    }
}

impl ShutdownMilestone {
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => ShutdownMilestone::NONE,
            1 => ShutdownMilestone::DRAINING,
            2 => ShutdownMilestone::QUIESCING,
            3 => ShutdownMilestone::CLOSING,
            4 => ShutdownMilestone::DONE,
            _ => return None,
        })
    }

    pub(crate) fn to_core(self) -> Option<Milestone> {
        Some(match self {
            ShutdownMilestone::NONE => return None,
            ShutdownMilestone::DRAINING => Milestone::Draining,
            ShutdownMilestone::QUIESCING => Milestone::Quiescing,
            ShutdownMilestone::CLOSING => Milestone::Closing,
            ShutdownMilestone::DONE => Milestone::Done,
        })
    }
}

/// Why the shutdown starts (shutdown_trigger()).
/// cbindgen:rename-all=prefix:SHUTDOWN_REASON_KIND_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReasonKind {
    /// The host asked (a deploy, an admin endpoint).
    MANUAL = 0,
    /// A signal, by name ("SIGTERM").
    SIGNAL = 1,
    /// A fatal error in the host.
    FATAL = 2,
}

// ----- the handle -------------------------------------------------------------------

pub(crate) struct Driver {
    pub(crate) thread: JoinHandle<Option<Report>>,
    pub(crate) stop: Box<dyn Fn() + Send + Sync>,
}

/// An engine: one shutdown state machine, its driver thread, its fds and callbacks.
/// Created by shutdown_new(), freed by shutdown_free().
pub struct Engine {
    pub(crate) core: Shutdown,
    pub(crate) shared: Arc<Shared>,
    pub(crate) driver: Mutex<Option<Driver>>,
    pub(crate) signals: Mutex<Option<SignalListener>>,
    pub(crate) kinds: Arc<KindIds>,
}

impl Engine {
    /// Interns a guard kind name; the index is the C `kind` id.
    pub(crate) fn intern(&self, name: &str) -> Result<u32, ShutdownStatus> {
        self.kinds.intern(&self.core, name)
    }

    pub(crate) fn kind_of(&self, id: u32) -> Option<Kind> {
        self.kinds.get(id)
    }

    pub(crate) fn close(&self) {
        // Freed from inside one of this engine's callbacks (against the documented
        // rule): that thread may be the driver or the signal thread, which cannot
        // join themselves, so they are only told to stop.
        let from_callback = self.shared.gate.inside() > 0;
        // No C callback starts from now on; those running elsewhere finish first.
        self.shared.gate.close();
        if let Some(listener) = lock(&self.signals).take() {
            if from_callback {
                drop(listener);
            } else {
                listener.stop();
            }
        }
        if let Some(driver) = lock(&self.driver).take() {
            (driver.stop)();
            if !from_callback {
                let _ = driver.thread.join();
            }
        }
        // Break the cycle core -> milestone callback -> Shared -> core.
        lock(&self.shared.core).take();
        let mut fds = lock(&self.shared.fds);
        fds.milestone = None;
        fds.cancel = None;
    }
}

/// Creates an engine in the Running phase from the configuration in `builder` (which
/// is copied: the builder stays the caller's, to free or to build more engines from),
/// and writes it to `*out_engine`. Unless the builder set a manual clock, starts its
/// driver thread ("shutdown-driver"), which applies deadlines. Returns
/// SHUTDOWN_STATUS_INVALID_CONFIG for a configuration the core refuses
/// (shutdown_config_builder_validate() names the field and says why).
///
/// Installs no signal handler: see shutdown_listen_signals().
///
/// Thread: any (not while a setter changes the builder). Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_new(
    builder: *const ConfigBuilder,
    out_engine: *mut *mut Engine,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live builder (the C contract).
        let b = unsafe { arg(builder)? };
        let out_engine = out(out_engine)?;
        let core = crate::config::validate(b)
            .and_then(|c| c.build())
            .map_err(|_| ShutdownStatus::INVALID_CONFIG)?;
        let kinds = Arc::new(KindIds::new());
        let shared = Arc::new(Shared::new(kinds.clone()).map_err(|_| ShutdownStatus::IO_ERROR)?);
        *lock(&shared.core) = Some(core.clone());
        let sh = shared.clone();
        core.on_event(move |at, event| sh.on_event(at, event));
        let driver = if b.manual_clock() {
            None
        } else {
            match shutdown_core::raw::spawn_stoppable_driver(&core) {
                Ok((thread, stop)) => Some(Driver { thread, stop }),
                Err(_) => {
                    lock(&shared.core).take();
                    return Err(ShutdownStatus::IO_ERROR);
                }
            }
        };
        let engine = Box::new(Engine {
            core,
            shared,
            driver: Mutex::new(driver),
            signals: Mutex::new(None),
            kinds,
        });
        // SAFETY: checked for NULL above.
        unsafe { put(out_engine, Box::into_raw(engine)) };
        Ok(())
    })
}

/// Frees an engine: stops its driver and signal listener, closes its fds, and waits
/// for its milestone and cancellation callbacks running on other threads; no callback
/// of this engine starts after it returns. The shutdown is abandoned where it is
/// (no trigger, no hook started). It also waits for blocking cleanup hooks running on
/// other threads, each until it returns or its timeout passes (its own `timeout_ms`,
/// or close_timeout): a hook still running after that was abandoned (reported as
/// timed out, not stopped), and its `user_data` must stay valid until it returns.
/// Guards, reports and hook completions still held stay valid and must still be
/// released. NULL does nothing.
///
/// Thread: any, once, when no other thread uses `engine` any more; not from inside one
/// of this engine's callbacks. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_free(engine: *mut Engine) {
    boundary((), || {
        if engine.is_null() {
            return;
        }
        // SAFETY: a handle from shutdown_new(), freed once (the C contract).
        let engine = unsafe { Box::from_raw(engine) };
        engine.close();
    })
}
