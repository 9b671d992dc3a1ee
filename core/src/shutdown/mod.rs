//! The `Shutdown` handle: the machine behind a lock, the admission word beside it, and
//! the glue that turns machine actions into effects.
//!
//! This file holds the handle and its everyday queries; each other job has a file:
//! `status` (the published status word), `inner` (the shared block and how it is
//! built), `guard`, `advice` (`should_close`), `connections`, `streams` (long-lived
//! work), `events` (the event stream and delivery), `hooks_runner` (cleanup hooks),
//! `virtual_time` and `engine_room` (the machine's lock and its actions' effects).

mod advice;
mod connections;
mod engine_room;
mod events;
mod guard;
mod hooks_runner;
mod inner;
mod progress;
mod status;
mod streams;
mod virtual_time;

pub use guard::Guard;
pub(crate) use inner::Inner;
pub(crate) use status::{
    reached_cancelled, reached_closing, reached_done, reached_draining, reached_quiescing,
};
pub use virtual_time::NotManualClock;

use std::sync::atomic::Ordering;

use crate::admission;
use crate::config::{Builder, Config};
use crate::kinds::{Kind, KindError};
use crate::machine::Phase;
use crate::report::{Reason, Report};

use status::{CANCELLED, PHASE_MASK, QUIESCING};

/// The graceful-shutdown engine. Cheap to clone; all clones share one state.
///
/// ```
/// use std::time::Duration;
/// use libshutdown::{Phase, Shutdown};
///
/// let sd = Shutdown::builder()
///     .drain_timeout(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// let driver = sd.spawn_driver();
///
/// let guard = sd.guard().expect("admission is open");
/// sd.trigger("deploy");
/// assert!(!sd.is_ready());
/// assert!(sd.guard().is_none(), "admission closed (no drain_delay)");
/// drop(guard); // the last request finishes: the drain is over
///
/// let report = sd.wait();
/// assert_eq!(report.exit_code, 0);
/// assert_eq!(sd.phase(), Phase::Done);
/// driver.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Shutdown {
    handle: admission::Handle<Inner>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("phase", &self.phase())
            .field("accepting", &self.is_accepting())
            .field("in_flight", &self.in_flight())
            .field("connections", &self.connections())
            .finish()
    }
}

impl Shutdown {
    /// A builder with the defaults (see [`Builder`]).
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn inner(&self) -> &Inner {
        self.handle.get()
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.inner().config
    }

    // ----- the hot path -------------------------------------------------------------

    /// Admits one unit of work, or `None` once admission has closed (the quiesce
    /// stage). One `fetch_add`; releasing is one compare-and-swap.
    #[inline]
    pub fn guard(&self) -> Option<Guard> {
        self.handle
            .try_acquire()
            .map(|raw| Guard { raw, kind: None })
    }

    /// Like [`guard`](Self::guard), labelled with a kind for the report.
    #[inline]
    pub fn guard_of(&self, kind: Kind) -> Option<Guard> {
        let raw = self.handle.try_acquire()?;
        raw.get().kinds.enter(kind);
        Some(Guard {
            raw,
            kind: Some(kind),
        })
    }

    /// Interns a guard label (`"http"`, `"job"`); call once and keep the [`Kind`].
    pub fn kind(&self, name: &str) -> Result<Kind, KindError> {
        self.inner().kinds.intern(name)
    }

    /// The name of a kind.
    pub fn kind_name(&self, kind: Kind) -> String {
        self.inner().kinds.name(kind)
    }

    /// Guards in flight now.
    pub fn in_flight(&self) -> u64 {
        let reserve = u64::from(self.inner().connections.reserve_held());
        self.handle.in_flight().saturating_sub(reserve)
    }

    // ----- queries ------------------------------------------------------------------

    fn status(&self) -> u8 {
        self.inner().status.load(Ordering::Acquire)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.status() & PHASE_MASK)
    }

    /// Readiness: `true` only while Running. Answer readiness probes with this.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// Whether new guards are admitted (Running, and the announce window).
    pub fn is_accepting(&self) -> bool {
        !self.handle.is_closed()
    }

    /// Whether the cancellation signal has fired (drain deadline, forced drain, or Done).
    pub fn is_cancelled(&self) -> bool {
        self.status() & CANCELLED != 0
    }

    pub(crate) fn status_reached(&self, pred: fn(u8) -> bool) -> bool {
        pred(self.status())
    }

    /// The final report, once Done.
    pub fn report(&self) -> Option<Report> {
        self.lock().machine.report().cloned()
    }

    // ----- events -------------------------------------------------------------------

    /// Starts the shutdown (the first call), or escalates (later calls, as configured).
    ///
    /// A drain that starts with no driver running drives itself on a thread of its own
    /// (`shutdown-driver`), so its deadlines fire even if the host never calls
    /// [`run`](Self::run) or [`spawn_driver`](Self::spawn_driver); a host driver that
    /// starts later takes over.
    pub fn trigger(&self, reason: impl Into<Reason>) {
        let reason = reason.into();
        self.with_machine(|m, now, snap| m.trigger(now, reason, snap));
        self.ensure_driven();
    }

    /// Counts work the host cut outside any guard, such as a connection destroyed while
    /// its request was still arriving: it shows in the report's `aborted` (and under
    /// `kind`, when given) and makes the exit code non-zero. Returns `false` once Done,
    /// when the report is final and nothing more is counted.
    ///
    /// ```
    /// let sd = libshutdown::Shutdown::builder().manual_clock().build().unwrap();
    /// let conn = sd.kind("connection").unwrap();
    /// let held = sd.guard().unwrap();
    /// sd.trigger("deploy");
    /// assert!(sd.record_aborted(1, Some(conn)));
    /// drop(held);
    /// let report = sd.report().unwrap();
    /// assert_eq!(report.aborted, 1);
    /// assert_ne!(report.exit_code, 0);
    /// ```
    pub fn record_aborted(&self, count: u64, kind: Option<Kind>) -> bool {
        let name = kind.map(|k| self.kind_name(k));
        self.with_machine(|m, _, _| m.record_aborted(count, name.as_deref()))
    }

    /// Reports a readiness probe answered "not ready" (the adaptive announce window).
    pub fn readiness_probed(&self) {
        let status = self.status();
        if status & PHASE_MASK == Phase::Draining as u8 && status & QUIESCING == 0 {
            self.with_machine(|m, now, _| m.readiness_probed(now));
        }
    }
}
