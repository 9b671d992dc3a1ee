//! The engine handle: create and free, signals, triggers, queries, the pollable fds,
//! milestone and cancellation callbacks, waits and the virtual clock.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shutdown_core::{
    Event, Kind, Milestone, Phase, Reason, Report, Shutdown, SignalListener, MAX_KINDS,
};

use crate::config::ConfigBuilder;
use crate::event::{CEvent, EventCb};
use crate::status::ShutdownStatus;
use crate::util::{arg, boundary, c_str, out, put, status, UserData, MAX_NAME, MAX_TEXT};

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

/// Called on every milestone with the `user_data` given at registration.
pub type ShutdownMilestoneFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, milestone: ShutdownMilestone)>;

/// Called once when the cancellation signal fires, with the `user_data` given at
/// registration.
pub type ShutdownCancelFn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

type MilestoneCb = unsafe extern "C" fn(*mut c_void, ShutdownMilestone);
type CancelCb = unsafe extern "C" fn(*mut c_void);

// ----- the callback gate ------------------------------------------------------------

thread_local! {
    /// The gates this thread is inside of (by address; with the id of a bounded
    /// entry), innermost last.
    static INSIDE: RefCell<Vec<(usize, Option<u64>)>> = const { RefCell::new(Vec::new()) };
}

/// Lets C callbacks run until the engine is freed, and lets `shutdown_free` wait for
/// the ones running on other threads, so that no callback runs once it returns.
pub(crate) struct Gate {
    state: Mutex<GateState>,
    idle: Condvar,
}

struct GateState {
    closed: bool,
    /// Callbacks in progress that `close` waits for until they return.
    active: usize,
    /// Callbacks in progress that `close` waits for until their deadline at most
    /// (blocking hooks: one that overruns is abandoned by the core, and must not hang
    /// `shutdown_free` either), by id.
    bounded: Vec<(u64, Instant)>,
    next_id: u64,
}

struct Inside<'a> {
    gate: &'a Gate,
    bounded: Option<u64>,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        INSIDE.with(|v| {
            v.borrow_mut().pop();
        });
        let mut st = lock(&self.gate.state);
        match self.bounded {
            Some(id) => st.bounded.retain(|&(i, _)| i != id),
            None => st.active -= 1,
        }
        self.gate.idle.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    fn new() -> Self {
        Gate {
            state: Mutex::new(GateState {
                closed: false,
                active: 0,
                bounded: Vec::new(),
                next_id: 0,
            }),
            idle: Condvar::new(),
        }
    }

    fn addr(&self) -> usize {
        self as *const Gate as usize
    }

    /// Runs `f` (a call into C) unless the engine was freed; `close` waits for it.
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.enter(None, f)
    }

    /// Like [`Gate::call`], but `close` waits for `f` only until `deadline`.
    pub(crate) fn call_until<R>(&self, deadline: Instant, f: impl FnOnce() -> R) -> Option<R> {
        self.enter(Some(deadline), f)
    }

    fn enter<R>(&self, deadline: Option<Instant>, f: impl FnOnce() -> R) -> Option<R> {
        // The check and the count are one step under the lock: a `close` that has
        // begun either sees this callback or keeps it from starting.
        let bounded = {
            let mut st = lock(&self.state);
            if st.closed {
                return None;
            }
            match deadline {
                None => {
                    st.active += 1;
                    None
                }
                Some(d) => {
                    let id = st.next_id;
                    st.next_id += 1;
                    st.bounded.push((id, d));
                    Some(id)
                }
            }
        };
        INSIDE.with(|v| v.borrow_mut().push((self.addr(), bounded)));
        let _inside = Inside {
            gate: self,
            bounded,
        };
        Some(f())
    }

    /// Whether this thread is inside one of this gate's callbacks.
    fn inside(&self) -> usize {
        INSIDE.with(|v| v.borrow().iter().filter(|e| e.0 == self.addr()).count())
    }

    /// No callback starts after this; waits for those running on other threads (the
    /// bounded ones until their deadlines).
    fn close(&self) {
        let (own, own_bounded) = INSIDE.with(|v| {
            let v = v.borrow();
            let mine = v.iter().filter(|e| e.0 == self.addr());
            let own = mine.clone().filter(|e| e.1.is_none()).count();
            let own_bounded: Vec<u64> = mine.filter_map(|e| e.1).collect();
            (own, own_bounded)
        });
        let mut st = lock(&self.state);
        st.closed = true;
        loop {
            let now = Instant::now();
            let next = st
                .bounded
                .iter()
                .filter(|(id, d)| *d > now && !own_bounded.contains(id))
                .map(|&(_, d)| d)
                .min();
            st = match next {
                Some(d) => {
                    self.idle
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None if st.active > own => self.idle.wait(st).unwrap_or_else(|e| e.into_inner()),
                None => break,
            };
        }
    }
}

// ----- pollable notifications -------------------------------------------------------

/// A file descriptor that becomes readable when notified: an eventfd on Linux, a pipe
/// elsewhere.
struct Notifier {
    read: OwnedFd,
    #[cfg(not(target_os = "linux"))]
    write: OwnedFd,
}

impl Notifier {
    #[cfg(target_os = "linux")]
    fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        Ok(Notifier {
            read: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> std::io::Result<Self> {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for two descriptors; the result is checked.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors we own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in &fds {
            // SAFETY: valid descriptors.
            unsafe {
                libc::fcntl(*fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(Notifier { read, write })
    }

    fn notify(&self) {
        #[cfg(target_os = "linux")]
        let fd = self.read.as_raw_fd();
        #[cfg(not(target_os = "linux"))]
        let fd = self.write.as_raw_fd();
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor we own. A full pipe or
        // counter just means it is readable already.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }

    fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a live buffer from a non-blocking descriptor we own.
            let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), 64) };
            if n <= 0 || cfg!(target_os = "linux") {
                break;
            }
        }
    }

    fn raw(&self) -> c_int {
        self.read.as_raw_fd()
    }
}

struct Fds {
    milestone: Option<Notifier>,
    cancel: Option<Notifier>,
}

/// What the core's callbacks and the hook closures share with the handle. It holds no
/// `Shutdown` after `shutdown_free` (the core holds it: no cycle).
pub(crate) struct Shared {
    pub(crate) gate: Gate,
    fds: Mutex<Fds>,
    core: Mutex<Option<Shutdown>>,
    milestone_callbacks: Mutex<Vec<(MilestoneCb, UserData)>>,
    event_callbacks: Mutex<Vec<(EventCb, UserData)>>,
    /// The C kind ids, for the events that name a kind.
    kinds: Arc<KindIds>,
    /// The cancellation callbacks registered before the core's Cancelled event was
    /// delivered; the core's own flag says whether it fired (shutdown_on_cancel()).
    cancel: Mutex<Vec<(CancelCb, UserData)>>,
    /// Set once the Done milestone was handled (its C callbacks returned).
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl Shared {
    fn new(kinds: Arc<KindIds>) -> std::io::Result<Self> {
        Ok(Shared {
            gate: Gate::new(),
            fds: Mutex::new(Fds {
                milestone: Some(Notifier::new()?),
                cancel: Some(Notifier::new()?),
            }),
            core: Mutex::new(None),
            milestone_callbacks: Mutex::new(Vec::new()),
            event_callbacks: Mutex::new(Vec::new()),
            kinds,
            cancel: Mutex::new(Vec::new()),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        })
    }

    /// The core's event callback, the one source of every C notification: the
    /// cancellation (its fd and callbacks) on Cancelled, the milestone fd and callbacks
    /// on a milestone, then the event callbacks; Done is handled once they all returned.
    /// The core emits Cancelled before the milestone that causes it, so a loop woken by
    /// the milestone fd finds the cancellation fd readable already.
    fn on_event(&self, at: Duration, event: &Event) {
        match event {
            Event::Cancelled => self.fire_cancel(),
            Event::Milestone(m) => {
                if let Some(n) = &lock(&self.fds).milestone {
                    n.notify();
                }
                let code = ShutdownMilestone::from(*m);
                let callbacks = lock(&self.milestone_callbacks).clone();
                for (cb, ud) in callbacks {
                    // SAFETY: a C callback with its own user_data (the C contract).
                    self.gate.call(|| unsafe { cb(ud.ptr(), code) });
                }
            }
            _ => {}
        }
        let callbacks = lock(&self.event_callbacks).clone();
        if !callbacks.is_empty() {
            if let Some(core) = lock(&self.core).clone() {
                let c = CEvent::new(at, event, &self.kinds, &core);
                for (cb, ud) in callbacks {
                    // SAFETY: a C callback with its own user_data (the C contract); the
                    // event lives for the call.
                    self.gate.call(|| unsafe { cb(ud.ptr(), &c.event) });
                }
            }
        }
        if *event == Event::Milestone(Milestone::Done) {
            *lock(&self.done) = true;
            self.done_cv.notify_all();
        }
    }

    pub(crate) fn add_event_callback(&self, cb: EventCb, user_data: *mut c_void) {
        lock(&self.event_callbacks).push((cb, UserData(user_data)));
    }

    /// Waits until Done was handled (its callbacks returned), or until `deadline`.
    fn wait_done(&self, deadline: Option<std::time::Instant>) -> bool {
        let mut done = lock(&self.done);
        while !*done {
            match deadline {
                None => done = self.done_cv.wait(done).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return false;
                    }
                    done = self
                        .done_cv
                        .wait_timeout(done, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }

    /// The core's Cancelled event (delivered once): the fd, then the callbacks
    /// registered before it (a later registration finds the core cancelled and is
    /// called at once).
    fn fire_cancel(&self) {
        let callbacks = std::mem::take(&mut *lock(&self.cancel));
        if let Some(n) = &lock(&self.fds).cancel {
            n.notify();
        }
        for (cb, ud) in callbacks {
            // SAFETY: a C callback with its own user_data (the C contract).
            self.gate.call(|| unsafe { cb(ud.ptr()) });
        }
    }
}

/// The latest milestone, as the queries see it.
fn current_milestone(core: &Shutdown) -> ShutdownMilestone {
    match core.phase() {
        Phase::Running => ShutdownMilestone::NONE,
        Phase::Draining if core.is_accepting() => ShutdownMilestone::DRAINING,
        Phase::Draining => ShutdownMilestone::QUIESCING,
        Phase::Closing => ShutdownMilestone::CLOSING,
        Phase::Done => ShutdownMilestone::DONE,
    }
}

// ----- the handle -------------------------------------------------------------------

struct Driver {
    thread: JoinHandle<Option<Report>>,
    stop: Box<dyn Fn() + Send + Sync>,
}

/// An engine: one shutdown state machine, its driver thread, its fds and callbacks.
/// Created by shutdown_new(), freed by shutdown_free().
pub struct Engine {
    pub(crate) core: Shutdown,
    pub(crate) shared: Arc<Shared>,
    driver: Mutex<Option<Driver>>,
    signals: Mutex<Option<SignalListener>>,
    pub(crate) kinds: Arc<KindIds>,
}

/// The C kind ids of one engine (shutdown_kind()), shared with the handles that may
/// outlive it (connections).
pub(crate) struct KindIds {
    kinds: Mutex<Vec<Kind>>,
    slots: [OnceLock<Kind>; MAX_KINDS],
}

impl KindIds {
    fn new() -> Self {
        KindIds {
            kinds: Mutex::new(Vec::new()),
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Interns a guard kind name in `core`; the index is the C `kind` id.
    pub(crate) fn intern(&self, core: &Shutdown, name: &str) -> Result<u32, ShutdownStatus> {
        let kind = core.kind(name).map_err(|e| match e {
            shutdown_core::KindError::TooMany => ShutdownStatus::TOO_MANY_KINDS,
            _ => ShutdownStatus::INVALID_NAME,
        })?;
        self.id_of(kind)
    }

    /// The C id and the name of a kind of `core` (an event's), giving it an id if it
    /// has none yet (0 if it cannot have one).
    pub(crate) fn describe(&self, core: &Shutdown, kind: Kind) -> (u32, String) {
        (self.id_of(kind).unwrap_or(0), core.kind_name(kind))
    }

    /// The C id of a kind of the core, given one if it has none yet.
    fn id_of(&self, kind: Kind) -> Result<u32, ShutdownStatus> {
        let mut kinds = lock(&self.kinds);
        let idx = match kinds.iter().position(|k| *k == kind) {
            Some(i) => i,
            None => {
                kinds.push(kind);
                kinds.len() - 1
            }
        };
        let slot = self.slots.get(idx).ok_or(ShutdownStatus::TOO_MANY_KINDS)?;
        let _ = slot.set(kind);
        Ok(idx as u32)
    }

    /// The kind behind a C `kind` id, `None` for an id never handed out.
    pub(crate) fn get(&self, id: u32) -> Option<Kind> {
        self.slots.get(id as usize)?.get().copied()
    }

    /// A kind by name, for the functions that take one (interned, so that it has an
    /// id as shutdown_kind() would give).
    pub(crate) fn by_name(&self, core: &Shutdown, name: &str) -> Result<Kind, ShutdownStatus> {
        let id = self.intern(core, name)?;
        self.get(id).ok_or(ShutdownStatus::INVALID_ARGUMENT)
    }
}

impl Engine {
    /// Interns a guard kind name; the index is the C `kind` id.
    pub(crate) fn intern(&self, name: &str) -> Result<u32, ShutdownStatus> {
        self.kinds.intern(&self.core, name)
    }

    pub(crate) fn kind_of(&self, id: u32) -> Option<Kind> {
        self.kinds.get(id)
    }

    fn close(&self) {
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
            match core.spawn_stoppable_driver() {
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

/// Installs handlers for the configured signals (default SIGTERM and SIGINT). Each
/// signal is a trigger: the first starts the drain, a repeat escalates as configured,
/// and the terminating repeat (default: the third) prints the report to stderr and
/// exits the process with the forced exit code. Call it early, before the host starts
/// its threads. Calling it again does nothing. Hosts that own their signals call
/// shutdown_trigger() instead.
///
/// Thread: any. Callbacks: the triggers run on the library's "shutdown-signals" thread,
/// which therefore runs the milestone and cancellation callbacks they cause.
#[no_mangle]
pub unsafe extern "C" fn shutdown_listen_signals(engine: *const Engine) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let mut slot = lock(&e.signals);
        if slot.is_none() {
            *slot = Some(
                e.core
                    .listen_signals()
                    .map_err(|_| ShutdownStatus::IO_ERROR)?,
            );
        }
        Ok(())
    })
}

/// Starts the shutdown (the first call) or escalates (later calls, as configured).
/// `kind` is a shutdown_reason_kind_t; `detail` (at most 4096 bytes, UTF-8) says more:
/// the signal name, "deploy", the error.
///
/// Thread: any. Callbacks: milestone and cancellation callbacks run on this thread
/// before it returns; so do the start functions of deferred hooks when the trigger
/// forces Closing (and, with a manual clock, blocking hooks).
#[no_mangle]
pub unsafe extern "C" fn shutdown_trigger(
    engine: *const Engine,
    kind: u32,
    detail: *const c_char,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let detail = unsafe { c_str(detail, MAX_TEXT)? }.to_string();
        let reason = match kind {
            0 => Reason::Manual(detail),
            1 => Reason::Signal(detail),
            2 => Reason::Fatal(detail),
            _ => return Err(ShutdownStatus::INVALID_ARGUMENT),
        };
        e.core.trigger(reason);
        Ok(())
    })
}

/// Like shutdown_trigger() with SHUTDOWN_REASON_KIND_SIGNAL and the signal's name
/// ("SIGTERM" for 15), for hosts that receive signals themselves (signalfd, libuv).
///
/// Thread: any. Callbacks: as shutdown_trigger().
#[no_mangle]
pub unsafe extern "C" fn shutdown_trigger_signal(
    engine: *const Engine,
    signum: c_int,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.core.trigger(Reason::signal(signum));
        Ok(())
    })
}

/// Reports a readiness probe answered "not ready" (the adaptive announce window:
/// after `announce_probes` of them, admission closes). Does nothing outside the
/// announce window.
///
/// Thread: any. Callbacks: when this closes admission, milestone callbacks run on
/// this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_readiness_probed(engine: *const Engine) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.core.readiness_probed();
        Ok(())
    })
}

/// Counts work the host cut outside any guard, such as a connection closed while its
/// request was still arriving: the report's `aborted` grows by `count` (and, with a
/// non-NULL `kind_name`, its count for that kind), and the exit code is not 0.
/// SHUTDOWN_STATUS_TOO_LATE once Done (the report is final; nothing is counted).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_record_aborted(
    engine: *const Engine,
    count: u64,
    kind_name: *const c_char,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / NULL or a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let kind = if kind_name.is_null() {
            None
        } else {
            let name = unsafe { c_str(kind_name, MAX_NAME)? };
            let id = e.intern(name)?;
            Some(e.kind_of(id).ok_or(ShutdownStatus::INVALID_ARGUMENT)?)
        };
        if e.core.record_aborted(count, kind) {
            Ok(())
        } else {
            Err(ShutdownStatus::TOO_LATE)
        }
    })
}

/// Writes the current phase (a shutdown_phase_t) to `*out_phase`.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_phase(
    engine: *const Engine,
    out_phase: *mut ShutdownPhase,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_phase)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, e.core.phase().into()) };
        Ok(())
    })
}

/// Readiness: true only while Running. Answer readiness probes with it (503 when
/// false). NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_ready(engine: *const Engine) -> bool {
    // SAFETY: NULL or a live handle (the C contract).
    boundary(false, || {
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.is_ready())
    })
}

/// Whether new guards are admitted (Running, and the announce window). When it turns
/// false, stop accepting connections. NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_accepting(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.is_accepting())
    })
}

/// Whether a keep-alive connection should close after its current response
/// (`Connection: close`, HTTP/2 GOAWAY). One atomic load while Running. NULL gives
/// false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_should_close(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.should_close())
    })
}

/// Whether the cancellation signal has fired: the drain was cut short (its deadline
/// passed, or a repeated trigger forced it), or the shutdown is Done. Work that can
/// stop early should stop. NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_cancelled(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.is_cancelled())
    })
}

/// Writes to `*out_ending` whether the host was told to end its long-lived work of
/// kind `kind_name` (its policy's milestone was reached: event 9; see
/// shutdown_config_builder_set_long_lived()). False for a kind with no policy.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_ending(
    engine: *const Engine,
    kind_name: *const c_char,
    out_ending: *mut bool,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { kind_query(engine, kind_name, out_ending, Shutdown::is_ending) }
}

/// Writes to `*out_cut` whether the grace of long-lived kind `kind_name` ran out (event
/// 10): what is left of it is cut. False for a kind with no policy.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_cut(
    engine: *const Engine,
    kind_name: *const c_char,
    out_cut: *mut bool,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { kind_query(engine, kind_name, out_cut, Shutdown::is_cut) }
}

/// Answers a query of the core about one kind, by name.
///
/// # Safety
/// `engine` is NULL or a live handle; `kind_name` NULL or a C string; `o` NULL or
/// writable.
unsafe fn kind_query(
    engine: *const Engine,
    kind_name: *const c_char,
    o: *mut bool,
    query: fn(&Shutdown, Kind) -> bool,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let name = unsafe { c_str(kind_name, MAX_NAME)? };
        let o = out(o)?;
        let kind = e.kinds.by_name(&e.core, name)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, query(&e.core, kind)) };
        Ok(())
    })
}

/// Writes the number of guards in flight to `*out_count`.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_in_flight(
    engine: *const Engine,
    out_count: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_count)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, e.core.in_flight()) };
        Ok(())
    })
}

/// Writes to `*out_fd` a file descriptor that becomes readable on every milestone
/// (draining, quiescing, closing, done), for poll/epoll/kqueue/libuv loops. It is
/// level-triggered: it stays readable until shutdown_fd_clear(). Do not read, write or
/// close it; it is closed by shutdown_free(). (An eventfd on Linux, a pipe elsewhere.)
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_fd(engine: *const Engine, out_fd: *mut c_int) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { notifier_fd(engine, out_fd, |f| f.milestone.as_ref()) }
}

/// Writes the descriptor of one of the engine's notifiers to `*out_fd`.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_fd` is NULL or writable.
unsafe fn notifier_fd(
    engine: *const Engine,
    out_fd: *mut c_int,
    pick: impl FnOnce(&Fds) -> Option<&Notifier>,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_fd)?;
        let fd = pick(&lock(&e.shared.fds))
            .map(Notifier::raw)
            .ok_or(ShutdownStatus::IO_ERROR)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, fd) };
        Ok(())
    })
}

/// Makes shutdown_fd() unreadable again and writes the current milestone (the latest
/// reached, a shutdown_milestone_t; SHUTDOWN_MILESTONE_NONE while Running) to
/// `*out_milestone`. It agrees with the queries (QUIESCING once
/// shutdown_is_accepting() is false). A milestone reached after the clear makes the fd
/// readable again, so a loop that clears, then acts on what it reads, misses nothing.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_fd_clear(
    engine: *const Engine,
    out_milestone: *mut ShutdownMilestone,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_milestone)?;
        if let Some(n) = &lock(&e.shared.fds).milestone {
            n.clear();
        }
        // Read after the clear: a milestone reached from now on makes the fd readable
        // again.
        let latest = current_milestone(&e.core);
        // SAFETY: checked for NULL.
        unsafe { put(o, latest) };
        Ok(())
    })
}

/// Writes to `*out_fd` a file descriptor that becomes readable when the cancellation
/// signal fires (see shutdown_is_cancelled()) and stays readable. Do not read, write
/// or close it; it is closed by shutdown_free().
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_cancel_fd(
    engine: *const Engine,
    out_fd: *mut c_int,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { notifier_fd(engine, out_fd, |f| f.cancel.as_ref()) }
}

/// Calls `callback(user_data, milestone)` on every milestone from now on, in order. It
/// must not block and must not call shutdown_wait() or shutdown_free(); it may call
/// the other functions.
///
/// Thread: any. Callbacks: `callback` runs on the thread that caused the milestone:
/// the driver thread (deadlines, the last guard released), the thread calling
/// shutdown_trigger(), shutdown_readiness_probed(), shutdown_hook_done() or
/// shutdown_advance(), a hook thread when a blocking hook returns, or (manual clock)
/// the thread releasing the last guard.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_milestone(
    engine: *const Engine,
    callback: ShutdownMilestoneFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        lock(&e.shared.milestone_callbacks).push((cb, UserData(user_data)));
        Ok(())
    })
}

/// Calls `callback(user_data)` once when the cancellation signal fires (see
/// shutdown_is_cancelled()); at once, on this thread, if it has fired already. It must
/// not block.
///
/// Thread: any. Callbacks: `callback` runs on the thread that caused the cut (the
/// driver thread at the drain deadline, the thread calling shutdown_trigger() on an
/// escalation) or that reached Done; or on this thread if already fired.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_cancel(
    engine: *const Engine,
    callback: ShutdownCancelFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        let ud = UserData(user_data);
        {
            // The core's flag, under the lock the Cancelled event takes the callbacks
            // with: the flag is set before that event is queued, so a registration
            // that finds it unset is still taken by the event, and one that finds it
            // set is called here, whether or not the event was delivered yet.
            let mut callbacks = lock(&e.shared.cancel);
            if !e.core.is_cancelled() {
                callbacks.push((cb, ud));
                return Ok(());
            }
        }
        // SAFETY: a C callback with its own user_data (the C contract).
        e.shared.gate.call(|| unsafe { cb(ud.ptr()) });
        Ok(())
    })
}

/// Blocks until the shutdown is Done and every milestone callback for Done has
/// returned. Someone must trigger it; on a manual clock, another thread must advance
/// it.
///
/// Thread: any thread but those running this engine's callbacks. Callbacks: none on
/// this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_wait(engine: *const Engine) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.shared.wait_done(None);
        Ok(())
    })
}

/// Blocks like shutdown_wait() until the shutdown is Done (SHUTDOWN_STATUS_OK) or
/// `timeout_ms` of real time passed (SHUTDOWN_STATUS_TIMED_OUT). 0 only checks.
///
/// Thread: as shutdown_wait(). Callbacks: none on this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_wait_timeout(
    engine: *const Engine,
    timeout_ms: u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let deadline = std::time::Instant::now().checked_add(Duration::from_millis(timeout_ms));
        if e.shared.wait_done(deadline) {
            Ok(())
        } else {
            Err(ShutdownStatus::TIMED_OUT)
        }
    })
}

/// Writes the exit code the process should end with to `*out_code`: 0 when everything
/// drained and every hook succeeded, the forced exit code otherwise.
/// SHUTDOWN_STATUS_NOT_DONE before Done.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_exit_code(
    engine: *const Engine,
    out_code: *mut c_int,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_code)?;
        let r = e.core.report().ok_or(ShutdownStatus::NOT_DONE)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, r.exit_code) };
        Ok(())
    })
}

/// Moves a manual clock forward by `ms` milliseconds, applying every deadline on the
/// way at its exact instant. SHUTDOWN_STATUS_NOT_MANUAL_CLOCK unless the engine was
/// created with a manual clock (shutdown_config_builder_set_manual_clock()).
///
/// Thread: any (one at a time). Callbacks: every callback the deadlines cause runs on
/// this thread, blocking hooks included, before it returns.
#[no_mangle]
pub unsafe extern "C" fn shutdown_advance(engine: *const Engine, ms: u64) -> ShutdownStatus {
    // SAFETY: forwarded.
    unsafe { shutdown_advance_us(engine, ms.saturating_mul(1000)) }
}

/// shutdown_advance() in microseconds.
///
/// Thread: as shutdown_advance(). Callbacks: as shutdown_advance().
#[no_mangle]
pub unsafe extern "C" fn shutdown_advance_us(engine: *const Engine, us: u64) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.core
            .advance(Duration::from_micros(us))
            .map_err(|_| ShutdownStatus::NOT_MANUAL_CLOCK)
    })
}

/// Writes the time since the engine was created, on its clock (virtual or not), in
/// microseconds, to `*out_us`.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_elapsed_us(
    engine: *const Engine,
    out_us: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_us)?;
        let us = u64::try_from(e.core.elapsed().as_micros()).unwrap_or(u64::MAX);
        // SAFETY: checked for NULL.
        unsafe { put(o, us) };
        Ok(())
    })
}
