//! The `Shutdown` handle: the machine behind a lock, the admission word beside it, and
//! the glue that turns machine actions into effects.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use event_listener::Event as Notifier;

use crate::admission::{self, Close, DrainSink, RawGuard};
use crate::clock::Clock;
use crate::config::{Builder, CloseStrategy, Config, ConfigError};
use crate::connection::{Connection, Outcome, Table, CONNECTION_KIND};
use crate::delivery::{Deliveries, Delivery, EventCallback};
use crate::driver::role::{step_wakes_driver, Role};
use crate::event::Event;
use crate::hooks::{self, BoxFuture, HookBody, HookDone, HookOptions, HookResult};
use crate::kinds::{Kind, KindError, Kinds};
use crate::machine::{Action, HookError, HookId, Machine, Phase};
use crate::report::{HookOutcome, InFlight, Milestone, Reason, Report};

// The published status word: phase in the low bits, then flags.
const PHASE_MASK: u8 = 0b11;
const QUIESCING: u8 = 1 << 2;
const CANCELLED: u8 = 1 << 3;

/// Stops a driver started by [`Shutdown::spawn_stoppable_driver`].
pub type StopDriver = Box<dyn Fn() + Send + Sync>;

pub(crate) struct State {
    pub(crate) machine: Machine,
    hooks: Vec<Option<HookBody>>,
    /// The event stream's callbacks.
    callbacks: Vec<EventCallback>,
    /// Async hooks waiting for the async driver to poll them.
    pub(crate) async_hooks: Vec<(HookId, BoxFuture)>,
}

// Aligned so a guard's block address leaves 7 low bits free for its kind: that lets
// `Guard::into_raw` hand a guard to C as one tagged pointer, with no allocation.
#[repr(align(128))]
pub(crate) struct Inner {
    config: Config,
    pub(crate) clock: Clock,
    status: AtomicU8,
    kinds: Kinds,
    /// Connections and the quiesce boundary (see `connection`).
    pub(crate) connections: Table,
    state: Mutex<State>,
    /// Notified on every status change (phase, admission, cancellation).
    pub(crate) changed: Notifier,
    /// Wakes the driver: new deadline, drained, queued async hook.
    pub(crate) wake: Notifier,
    pub(crate) drained_pending: AtomicBool,
    /// Milestone callbacks and hook calls, in the machine's order.
    deliveries: Deliveries,
    /// Which one driver ticks (see `driver::role`).
    pub(crate) role: Role,
    /// The engine's own driving is over for good (`retire_engine_driver`).
    pub(crate) retired: AtomicBool,
    /// The latest engine-started driver thread, joined by `retire_engine_driver`.
    pub(crate) engine_thread: Mutex<Option<JoinHandle<()>>>,
    /// Long-lived kinds told to end (bit per kind), and those cut.
    ending: AtomicU64,
    cut: AtomicU64,
    announce_start: AtomicU64,
    announce_end: AtomicU64,
    advice_seq: AtomicU64,
}

impl DrainSink for Inner {
    fn drained(handle: &admission::Handle<Self>) {
        let inner = handle.get();
        if inner.clock.is_manual() {
            // No driver on a virtual clock: the drain ends on this thread, at this instant.
            let sd = Shutdown {
                handle: handle.clone(),
            };
            sd.with_machine(|m, now, _| m.drained(now));
        } else {
            inner.drained_pending.store(true, Ordering::Release);
            // Every listener: an engine thread that just lost the role may be one.
            inner.wake.notify(usize::MAX);
        }
    }
}

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

/// Proof that one unit of work is in flight; the drain waits for it. Released on drop.
///
/// `Send + Sync`, no allocation: it is a pointer and a label.
pub struct Guard {
    raw: RawGuard<Inner>,
    kind: Option<Kind>,
}

impl Guard {
    /// A guard for work this one starts (a job queued by a request). Admitted even
    /// after admission closed, so work begun before the close can finish.
    pub fn child(&self) -> Guard {
        let raw = self.raw.child();
        if let Some(k) = self.kind {
            raw.get().kinds.enter(k);
        }
        Guard {
            raw,
            kind: self.kind,
        }
    }

    /// A child labelled `kind` instead of this guard's own label.
    pub(crate) fn child_of(&self, kind: Option<Kind>) -> Guard {
        let raw = self.raw.child();
        if let Some(k) = kind {
            raw.get().kinds.enter(k);
        }
        Guard { raw, kind }
    }

    /// The guard's label, if it has one.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// The guard as one opaque, non-null pointer, for a foreign-language handle: no
    /// allocation (the kind rides in the low bits of the shared block's address). The
    /// guard stays in flight until [`from_raw`](Self::from_raw) takes it back.
    ///
    /// ```
    /// let sd = libshutdown::Shutdown::builder().build().unwrap();
    /// let raw = sd.guard().unwrap().into_raw();
    /// assert_eq!(sd.in_flight(), 1);
    /// drop(unsafe { libshutdown::Guard::from_raw(raw) });
    /// assert_eq!(sd.in_flight(), 0);
    /// ```
    pub fn into_raw(self) -> std::ptr::NonNull<std::ffi::c_void> {
        let tag = self.kind.map_or(0, |k| k.0 as usize + 1);
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: read once out of a value that is never dropped.
        let raw = unsafe { std::ptr::read(&this.raw) };
        let ptr = raw.into_ptr();
        debug_assert_eq!(ptr.as_ptr() as usize & RAW_TAG_MASK, 0);
        ptr.map_addr(|a| a | tag).cast()
    }

    /// Takes back a guard given out by [`into_raw`](Self::into_raw); dropping it
    /// releases the guard.
    ///
    /// # Safety
    /// `raw` came from `into_raw` and is taken back exactly once.
    pub unsafe fn from_raw(raw: std::ptr::NonNull<std::ffi::c_void>) -> Guard {
        let tag = raw.as_ptr() as usize & RAW_TAG_MASK;
        let ptr = raw.cast::<u8>().map_addr(|a| {
            std::num::NonZeroUsize::new(a.get() & !RAW_TAG_MASK).expect("block address is not null")
        });
        Guard {
            // SAFETY: the caller's contract.
            raw: unsafe { RawGuard::from_ptr(ptr) },
            kind: tag.checked_sub(1).map(|k| Kind(k as u8)),
        }
    }
}

const RAW_TAG_MASK: usize = 127;
const _: () = assert!(std::mem::align_of::<Inner>() > RAW_TAG_MASK);
const _: () = assert!(crate::kinds::MAX_KINDS < RAW_TAG_MASK);

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if let Some(k) = self.kind {
            self.raw.get().kinds.leave(k);
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("kind", &self.kind).finish()
    }
}

/// [`Shutdown::advance`] was called on a system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotManualClock;

impl std::fmt::Display for NotManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("advance() needs a Shutdown built with manual_clock()")
    }
}

impl std::error::Error for NotManualClock {}

impl Builder {
    /// The validated configuration, without building.
    pub fn config(&self) -> Result<Config, ConfigError> {
        self.validate()
    }

    /// Validates the configuration and builds the engine (in the Running phase).
    pub fn build(self) -> Result<Shutdown, ConfigError> {
        let config = self.validate()?;
        let machine = Machine::new(&config);
        let inner = Inner {
            clock: Clock::new(self.manual_clock),
            status: AtomicU8::new(Phase::Running as u8),
            kinds: Kinds::new(),
            connections: Table::new(config.connection_grace),
            state: Mutex::new(State {
                machine,
                hooks: Vec::new(),
                callbacks: Vec::new(),
                async_hooks: Vec::new(),
            }),
            changed: Notifier::new(),
            wake: Notifier::new(),
            drained_pending: AtomicBool::new(false),
            deliveries: Deliveries::default(),
            role: Role::new(),
            retired: AtomicBool::new(false),
            engine_thread: Mutex::new(None),
            ending: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            announce_start: AtomicU64::new(0),
            announce_end: AtomicU64::new(0),
            advice_seq: AtomicU64::new(0),
            config,
        };
        for (name, _) in &inner.config.long_lived {
            // Validated: a name and room for every kind.
            let _ = inner.kinds.intern(name);
        }
        Ok(Shutdown {
            handle: admission::Handle::new(inner),
        })
    }
}

#[derive(Default)]
struct Effects {
    status_changed: bool,
    reached_done: bool,
    /// The boundary reserve, released: dropped once no lock is held.
    released: Vec<RawGuard<Inner>>,
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

    // ----- connections --------------------------------------------------------------

    /// Registers a connection the host just accepted (see [`Connection`]). Once the
    /// drain is over it comes back already dismissed (the dismissal callbacks are not
    /// called for it): close it.
    pub fn connection(&self) -> Connection {
        let now = self.inner().clock.now();
        let (shared, out) = self.inner().connections.open(now);
        self.apply_table(out);
        Connection::new(self.clone(), shared)
    }

    /// Connections open now (registered and not yet dropped).
    pub fn connections(&self) -> usize {
        self.inner().connections.len()
    }

    /// Calls `f` with the ids of the connections the engine dismisses, in batches, on
    /// the thread that caused it (the trigger, the driver, the host call that closed
    /// the last busy connection), one batch at a time and in order with the milestones:
    /// a host that keeps its connections in a map closes those that are idle, and calls
    /// [`Connection::reading`] on those where a request is arriving. `f` must not block.
    pub fn on_dismissed(&self, f: impl Fn(&[crate::ConnectionId]) + Send + Sync + 'static) {
        self.on_event(move |_, e| {
            if let Event::Dismissed(ids) = e {
                f(ids)
            }
        });
    }

    // ----- long-lived work ----------------------------------------------------------

    /// Whether the app was told to end its long-lived work of `kind` (its
    /// [`LongLived`](crate::LongLived) policy's milestone was reached).
    pub fn is_ending(&self, kind: Kind) -> bool {
        self.inner().ending.load(Ordering::Acquire) & kind_bit(kind) != 0
    }

    /// Whether the grace of long-lived `kind` ran out: what is left of it is cut.
    pub fn is_cut(&self, kind: Kind) -> bool {
        self.inner().cut.load(Ordering::Acquire) & kind_bit(kind) != 0
    }

    /// Resolves once the app is told to end its long-lived work of `kind` (or the
    /// drain is over, for a kind with no policy); a stream's task selects on it.
    pub fn ending(&self, kind: Kind) -> impl Future<Output = ()> + Send + 'static {
        let sd = self.clone();
        async move {
            loop {
                if sd.is_ending(kind) || sd.status_reached(reached_closing) {
                    return;
                }
                let listener = sd.inner().changed.listen();
                if sd.is_ending(kind) || sd.status_reached(reached_closing) {
                    return;
                }
                listener.await;
            }
        }
    }

    /// A guard for a request on a connection after admission closed, while the
    /// boundary holds (a child of its reserve).
    pub(crate) fn boundary_guard(&self, kind: Option<Kind>) -> Option<Guard> {
        let raw = self.inner().connections.boundary_guard()?;
        if let Some(k) = kind {
            raw.get().kinds.enter(k);
        }
        Some(Guard { raw, kind })
    }

    /// Carries out what a connection-table step left to do, outside the table's lock.
    pub(crate) fn apply_table(&self, out: Outcome) {
        if let Some(due) = out.next_due {
            self.with_machine(|m, _, _| m.set_connection_deadline(Some(due), false));
        }
        if !out.dismissed.is_empty() {
            let st = self.lock();
            self.emit(&st, Event::Dismissed(out.dismissed));
            drop(st);
            self.deliver();
        }
        // Last: releasing the reserve may end the drain.
        drop(out.released);
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

    /// Whether a keep-alive connection should close after its current response
    /// (`Connection: close`, HTTP/2 GOAWAY). One atomic load while Running.
    pub fn should_close(&self) -> bool {
        let status = self.status();
        if status & PHASE_MASK == Phase::Running as u8 {
            return false;
        }
        if status & QUIESCING != 0 || self.config().close_strategy == CloseStrategy::Immediate {
            return true;
        }
        let inner = self.inner();
        let start = inner.announce_start.load(Ordering::Relaxed);
        let end = inner.announce_end.load(Ordering::Relaxed);
        let now = inner.clock.since_epoch(inner.clock.now()).as_nanos() as u64;
        if end <= start || now >= end {
            return true;
        }
        let p = now.saturating_sub(start) as f64 / (end - start) as f64;
        let sample = splitmix64(inner.advice_seq.fetch_add(1, Ordering::Relaxed));
        (sample as f64) < p * (u64::MAX as f64)
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

    /// Calls `f` on every milestone from now on, once each and in order, on the thread
    /// that caused it (a trigger, the last guard, the driver) or, when another thread
    /// is delivering an earlier milestone of this engine at that moment, on that one:
    /// milestones are delivered one at a time, never nested, even when `f` itself
    /// moves the shutdown on. `f` must not block.
    pub fn on_milestone(&self, f: impl Fn(Milestone) + Send + Sync + 'static) {
        self.on_event(move |_, e| {
            if let Event::Milestone(m) = e {
                f(*m)
            }
        });
    }

    /// Calls `f` with every [`Event`] from now on, with the engine's time since it was
    /// built (on its clock), once each and in the machine's order, under the same rules
    /// as [`on_milestone`](Self::on_milestone): on the thread that caused it, never
    /// nested, and `f` must not block.
    pub fn on_event(&self, f: impl Fn(Duration, &Event) + Send + Sync + 'static) {
        self.lock().callbacks.push(Arc::new(f));
    }

    pub(crate) fn hook_begins(&self, id: HookId) -> bool {
        self.with_machine(|m, now, _| m.hook_started(now, id))
    }

    pub(crate) fn hook_finished(&self, id: HookId, outcome: HookOutcome) {
        self.with_machine(|m, now, _| m.hook_finished(now, id, outcome));
    }

    // ----- virtual time -------------------------------------------------------------

    /// Moves a virtual clock forward, applying every deadline on the way at its exact
    /// instant. Only for engines built with [`Builder::manual_clock`].
    pub fn advance(&self, by: Duration) -> Result<(), NotManualClock> {
        let clock = &self.inner().clock;
        if !clock.is_manual() {
            return Err(NotManualClock);
        }
        let target = clock.now() + by;
        loop {
            let next = self.lock().machine.poll_timeout();
            match next {
                Some(t) if t <= target => {
                    clock.set(t);
                    self.with_machine(|m, now, snap| m.handle_timeout(now, snap));
                }
                _ => break,
            }
        }
        clock.set(target);
        Ok(())
    }

    /// Time since this engine was built, on its clock.
    pub fn elapsed(&self) -> Duration {
        let clock = &self.inner().clock;
        clock.since_epoch(clock.now())
    }

    /// When the next deadline falls (announce window, drain, hook or close budget), as
    /// time since this engine was built on its clock; `None` when no deadline is armed.
    /// Lets a host on a virtual clock step [`advance`](Self::advance) from deadline to
    /// deadline and run its own work (hooks in another language) at each instant.
    pub fn next_deadline(&self) -> Option<Duration> {
        let next = self.lock().machine.poll_timeout()?;
        Some(self.inner().clock.since_epoch(next))
    }

    // ----- the engine room ----------------------------------------------------------

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this crate; the
        // state stays consistent enough to finish a shutdown, so carry on.
        self.inner().state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is in flight, for the machine: guards (the boundary reserve is not work)
    /// and connections on which a request was arriving (cut work if the drain ends now).
    fn in_flight_snapshot(&self) -> InFlight {
        let table = &self.inner().connections;
        let reserve = u64::from(table.reserve_held());
        let reading = table.reading();
        let mut by_kind = self.inner().kinds.snapshot();
        if reading > 0 {
            *by_kind.entry(CONNECTION_KIND.to_string()).or_default() += reading;
        }
        InFlight {
            total: self.handle.in_flight().saturating_sub(reserve) + reading,
            by_kind,
        }
    }

    /// Feeds one event to the machine and carries out what it asks, user code last and
    /// outside the lock.
    pub(crate) fn with_machine<R>(
        &self,
        f: impl FnOnce(&mut Machine, Instant, &mut dyn FnMut() -> InFlight) -> R,
    ) -> R {
        let mut effects = Effects::default();
        let (result, wake_driver) = {
            let mut st = self.lock();
            let now = self.inner().clock.now();
            let deadline_before = st.machine.poll_timeout();
            let mut snap = || self.in_flight_snapshot();
            let r = f(&mut st.machine, now, &mut snap);
            self.apply_actions(&mut st, now, &mut effects);
            // The driver only needs waking when its deadline moved; waking it on every
            // event would make it wake itself in a loop.
            let deadline_after = st.machine.poll_timeout();
            if deadline_after != deadline_before {
                // Readiness probes shorten the announce window: the gradual advice must
                // ramp over the window that is, not the one configured.
                self.publish_announce_window(&st.machine);
            }
            (
                r,
                step_wakes_driver(deadline_before, deadline_after, effects.reached_done),
            )
        };
        if wake_driver {
            self.inner().wake.notify(usize::MAX);
        }
        self.deliver();
        drop(effects.released);
        result
    }

    fn apply_actions(&self, st: &mut State, now: Instant, fx: &mut Effects) {
        let inner = self.inner();
        while let Some(action) = st.machine.poll_action() {
            match action {
                Action::Milestone(m) => {
                    let bits = match m {
                        Milestone::Draining => {
                            self.publish_announce_window(&st.machine);
                            Phase::Draining as u8
                        }
                        Milestone::Quiescing => QUIESCING,
                        Milestone::Closing => Phase::Closing as u8 | QUIESCING,
                        Milestone::Done => Phase::Done as u8 | QUIESCING | CANCELLED,
                    };
                    let old = inner.status.load(Ordering::Relaxed);
                    let new = (old & !PHASE_MASK)
                        | (old & PHASE_MASK).max(bits & PHASE_MASK)
                        | (bits & !PHASE_MASK);
                    inner.status.store(new, Ordering::Release);
                    if new & CANCELLED != 0 && old & CANCELLED == 0 {
                        self.emit(st, Event::Cancelled);
                    }
                    self.emit(st, Event::Milestone(m));
                    fx.reached_done |= m == Milestone::Done;
                    fx.status_changed = true;
                    if m == Milestone::Closing {
                        let out = inner.connections.end_boundary();
                        self.queue_table(st, out, fx);
                    }
                }
                Action::CloseAdmission => {
                    // The reserve is taken while admission is still open.
                    let out = inner
                        .connections
                        .begin_boundary(now, || self.handle.try_acquire());
                    st.machine.set_connection_deadline(out.next_due, true);
                    self.queue_table(st, out, fx);
                    match self.handle.close() {
                        Close::Drained => st.machine.drained(now),
                        Close::Waiting(n) => {
                            log::info!("shutdown: admission closed, {n} in flight")
                        }
                        Close::AlreadyClosed => {}
                    }
                }
                Action::DismissIdle => {
                    let out = inner.connections.dismiss_due(now);
                    st.machine.set_connection_deadline(out.next_due, true);
                    self.queue_table(st, out, fx);
                }
                Action::Cancel => {
                    self.handle.end_drain();
                    let old = inner.status.fetch_or(CANCELLED, Ordering::AcqRel);
                    if old & CANCELLED == 0 {
                        self.emit(st, Event::Cancelled);
                    }
                    fx.status_changed = true;
                }
                Action::StartHook(id) => inner.deliveries.push(Delivery::StartHook(id)),
                Action::Terminate => self.emit(st, Event::Terminate),
                Action::StreamsEnding(name) => {
                    if let Some(kind) = self.mark_kind(&inner.ending, &name) {
                        self.emit(st, Event::StreamsEnding(kind));
                        fx.status_changed = true;
                    }
                }
                Action::StreamsCut(name, count) => {
                    if let Some(kind) = self.mark_kind(&inner.cut, &name) {
                        self.emit(st, Event::StreamsCut { kind, count });
                        fx.status_changed = true;
                    }
                }
                Action::HookCalled(id) => {
                    if let Some(name) = st.machine.hook_name(id) {
                        let name = name.to_string();
                        self.emit(st, Event::HookStarted { name });
                    }
                }
                Action::HookEnded(id) => {
                    if let Some((name, outcome)) = st.machine.hook_outcome(id) {
                        let event = Event::HookFinished {
                            name: name.to_string(),
                            outcome: outcome.clone(),
                        };
                        self.emit(st, event);
                    }
                }
            }
        }
        if fx.status_changed {
            inner.changed.notify(usize::MAX);
        }
    }

    /// Queues an event for the callbacks, in the machine's order (call with the
    /// machine's lock held).
    fn emit(&self, st: &State, event: Event) {
        if st.callbacks.is_empty() {
            return;
        }
        let clock = &self.inner().clock;
        let at = clock.since_epoch(clock.now());
        self.inner()
            .deliveries
            .push(Delivery::Event(at, event, st.callbacks.clone()));
    }

    /// A connection-table step taken under the machine's lock: its dismissals are
    /// queued in the machine's order, its released reserve dropped after the lock.
    fn queue_table(&self, st: &State, out: Outcome, fx: &mut Effects) {
        if !out.dismissed.is_empty() {
            self.emit(st, Event::Dismissed(out.dismissed));
        }
        fx.released.extend(out.released);
    }

    /// Marks a long-lived kind in `word` and returns it.
    fn mark_kind(&self, word: &AtomicU64, name: &str) -> Option<Kind> {
        let kind = self.inner().kinds.intern(name).ok()?;
        word.fetch_or(kind_bit(kind), Ordering::AcqRel);
        Some(kind)
    }

    /// Where `should_close` reads the announce window from, lock-free.
    fn publish_announce_window(&self, machine: &Machine) {
        let inner = self.inner();
        if let Some((start, end)) = machine.announce_window() {
            let ns = |t| inner.clock.since_epoch(t).as_nanos() as u64;
            inner.announce_start.store(ns(start), Ordering::Relaxed);
            inner.announce_end.store(ns(end), Ordering::Relaxed);
        }
    }

    /// Delivers queued milestone callbacks and hook calls, in the machine's order (see
    /// `delivery`), user code outside the lock.
    fn deliver(&self) {
        self.inner().deliveries.deliver_all(|step| match step {
            Delivery::Event(at, event, callbacks) => {
                for cb in callbacks {
                    let event = &event;
                    if let Err(p) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                            cb(at, event)
                        }))
                    {
                        log::error!(
                            "shutdown: event callback panicked: {}",
                            hooks::panic_message(&*p)
                        );
                    }
                }
            }
            Delivery::StartHook(id) => {
                let queued = matches!(
                    self.lock().hooks.get(id),
                    Some(Some(HookBody::Deferred(_, true)))
                );
                // Its deadline starts now (for a queued hook: at `HookDone::begin`); the
                // machine may say it is no longer due (an earlier callback moved the
                // clock past the budget, or ended it all).
                if !queued && !self.hook_begins(id) {
                    return;
                }
                let body = self.lock().hooks.get_mut(id).and_then(Option::take);
                if let Some(body) = body {
                    self.start_hook(id, body);
                }
            }
        });
    }

    fn start_hook(&self, id: HookId, body: HookBody) {
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

    /// One driver step: apply a pending drain and every passed deadline; returns the
    /// next deadline, or `None` when there is none (or Done).
    pub(crate) fn tick(&self) -> Option<Instant> {
        let drained = self.inner().drained_pending.swap(false, Ordering::AcqRel);
        self.with_machine(|m, now, snap| {
            if drained {
                m.drained(now);
            }
            if m.poll_timeout().is_some_and(|d| d <= now) {
                m.handle_timeout(now, snap);
            }
            m.poll_timeout()
        })
    }

    pub(crate) fn status_reached(&self, pred: fn(u8) -> bool) -> bool {
        pred(self.status())
    }
}

pub(crate) fn reached_draining(s: u8) -> bool {
    s & PHASE_MASK >= Phase::Draining as u8
}
pub(crate) fn reached_quiescing(s: u8) -> bool {
    s & QUIESCING != 0
}
pub(crate) fn reached_closing(s: u8) -> bool {
    s & PHASE_MASK >= Phase::Closing as u8
}
pub(crate) fn reached_done(s: u8) -> bool {
    s & PHASE_MASK == Phase::Done as u8
}
pub(crate) fn reached_cancelled(s: u8) -> bool {
    s & CANCELLED != 0
}

fn kind_bit(kind: Kind) -> u64 {
    1u64 << (kind.0 as u32 % 64)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
