//! The N-API addon behind the npm package `libshutdown`.
//!
//! It translates types and ownership between JavaScript and the `shutdown` core, and
//! nothing else: every decision (phases, deadlines, admission, escalation, hook
//! timeouts, the exit code) is the core's. The JavaScript layer (`index.js`) adapts
//! Node's objects (http servers, promises, `process.on` signals) to this class.
//!
//! - Durations cross the boundary as milliseconds (`f64`).
//! - Guards live in a slab owned by the native object; JavaScript holds slot numbers,
//!   so admitting and releasing a request is one call each, with no allocation.
//! - The core's event stream (`Shutdown::on_event`) is queued here with the core's own
//!   codes and times ([`Event::code`], 1 to 13), together with the starts of JavaScript
//!   hooks (code 0, the addon's own), and read by JavaScript with
//!   [`NativeShutdown::take_events`]: synchronously after any call that may have caused
//!   them, or after a wake-up through a weak (unref'd) threadsafe function when the
//!   core's driver thread caused them. The addon never keeps the event loop alive.
//! - Connections (`connOpenFn` and friends) live in a map owned by the native object,
//!   keyed by the core's connection id; their requests in a second slab, by slot. The
//!   core's dismissals reach JavaScript through the same queue as milestones, in order
//!   with them (code 8, one entry per connection id).
//! - Hooks are the core's deferred hooks: the core starts them, JavaScript runs them and
//!   reports back with [`NativeShutdown::hook_done`].
//! - No native signal handler is ever installed (see the design notes): JavaScript
//!   listens with `process.on` and calls [`NativeShutdown::trigger_signal`].
//!
//! Every exported function catches panics and turns them into JavaScript exceptions.
//!
//! Modules: this file holds the engine object (construction, events, triggers, guards,
//! queries); `hot` the per-request path shared with the bound functions;
//! `connections`, `hooks`, `progress`, `virtual_time` the rest of its methods by job;
//! `options` the configuration, `events` the queue, `slots` the slabs, `convert` the
//! millisecond conversions, `systemd` the notifications.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use libshutdown::{Kind, Reason, Shutdown};
use napi::bindgen_prelude::{Float64Array, Function, Unknown};
use napi::{Env, Status};
use napi_derive::napi;

mod connections;
mod convert;
mod events;
mod hooks;
mod hot;
mod listener;
mod options;
mod progress;
mod slots;
mod systemd;
mod virtual_time;

use events::{lock, Queue, Shared, Wake};
use hot::Hot;
use options::{configure, converted, env_source};
pub use options::{option_names, validate_options, NativeConfigError};
pub use progress::NativeProgress;
use slots::{Slab, Slots};

/// How long a signal arriving after Done leaves the host to exit by itself, in ms: the
/// core's rule (`AFTER_DONE_GRACE`), which `listenSignals` follows.
#[napi(catch_unwind)]
pub fn after_done_grace_ms() -> u32 {
    libshutdown::AFTER_DONE_GRACE.as_millis() as u32
}

/// The name of a signal number, as the core writes it in reports (`15` -> `"SIGTERM"`).
#[napi(catch_unwind)]
pub fn signal_name(signal: i32) -> String {
    libshutdown::signal_name(signal)
}

fn err(msg: impl Into<String>) -> napi::Error {
    napi::Error::new(Status::GenericFailure, msg.into())
}

/// The engine, as JavaScript sees it. Wrapped by the `Shutdown` class of `index.js`.
#[napi]
pub struct NativeShutdown {
    pub(crate) sd: Shutdown,
    pub(crate) shared: Arc<Shared>,
    pub(crate) hot: Rc<Hot>,
}

#[napi]
impl NativeShutdown {
    /// Builds the engine. `wake(id)` is called (weakly: it never holds the event loop
    /// open) when the core's driver thread has queued events for JavaScript.
    #[napi(constructor, catch_unwind)]
    ///
    /// `options`, `env`: as [`validate_options`], which `index.js` calls first so that a
    /// refusal reaches it as data; here one is only a message.
    pub fn new(
        options: Vec<(String, Unknown<'_>)>,
        manual_clock: bool,
        env: bool,
        id: u32,
        wake: Wake,
    ) -> napi::Result<Self> {
        let refused = |e: NativeConfigError| {
            napi::Error::new(
                Status::InvalidArg,
                format!("invalid shutdown configuration: {}: {}", e.field, e.reason),
            )
        };
        let sd = configure(converted(&options)?, manual_clock, env_source(env))
            .map_err(refused)?
            .build()
            .map_err(|e| refused(NativeConfigError::of(&e, None)))?;
        let shared = Arc::new(Shared {
            id,
            queue: Mutex::new(Queue {
                events: Vec::new(),
                names: Vec::new(),
                woken: false,
            }),
            pending: AtomicBool::new(false),
            js_thread: std::thread::current().id(),
            wake,
            hooks: Mutex::new(Vec::new()),
            engine: Mutex::new(None),
        });
        let s = shared.clone();
        sd.on_event(move |at, e| s.push_event(at, e));
        *lock(&shared.engine) = Some(sd.clone());
        let hot = Rc::new(Hot {
            sd: sd.clone(),
            slab: RefCell::new(Slab::default()),
            shared: shared.clone(),
            conns: RefCell::new(HashMap::new()),
            reqs: RefCell::new(Slots::default()),
            holds: RefCell::new(Slots::default()),
        });
        Ok(NativeShutdown { sd, shared, hot })
    }

    pub(crate) fn pending(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// The queued events as `(code, a, b, at_ms)` quadruples, `code` the core's
    /// `Event::code`: 1 to 4 a milestone (draining, quiescing, closing, done), 5
    /// cancelled, 6 hook started and 7 hook finished (`a`: the hook's name), 8 a
    /// connection dismissed (`a`: its id; close it if idle, else call `connReading`), 9
    /// streams ending (`a`: the kind), 10 streams cut (`a`: the kind, `b`: how many
    /// guards were counted), 11 terminate, 12 progress, 13 unlisten (close the
    /// listeners); and the addon's own code 0, a JavaScript hook
    /// to start (`a`: its id). Names are indexes for [`event_name`](Self::event_name).
    /// `at_ms` is the core's time of the event since the engine was built.
    ///
    /// A `Float64Array` over the queue's own buffer: no element-by-element conversion
    /// (a drain that dismisses 10,000 connections queues 40,000 numbers at once).
    #[napi(catch_unwind)]
    pub fn take_events(&self) -> Float64Array {
        let mut q = lock(&self.shared.queue);
        q.woken = false;
        self.shared.pending.store(false, Ordering::Release);
        Float64Array::new(std::mem::take(&mut q.events))
    }

    /// The string of index `i` in the events' names (`""` for an unknown index).
    #[napi(catch_unwind)]
    pub fn event_name(&self, i: u32) -> String {
        lock(&self.shared.queue)
            .names
            .get(i as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the app was told to end its long-lived work of `kind` (`Shutdown::is_ending`).
    #[napi(catch_unwind)]
    pub fn is_ending(&self, kind: String) -> napi::Result<bool> {
        Ok(self
            .kind_of(Some(kind))?
            .is_some_and(|k| self.sd.is_ending(k)))
    }

    /// Whether the grace of long-lived `kind` ran out (`Shutdown::is_cut`).
    #[napi(catch_unwind)]
    pub fn is_cut(&self, kind: String) -> napi::Result<bool> {
        Ok(self.kind_of(Some(kind))?.is_some_and(|k| self.sd.is_cut(k)))
    }

    // ----- triggers -----------------------------------------------------------------

    /// A trigger with a reason: kind `"manual"`, `"fatal"` or `"signal"`. Returns whether
    /// events are pending.
    #[napi(catch_unwind)]
    pub fn trigger(&mut self, kind: String, detail: String) -> napi::Result<bool> {
        let reason = match kind.as_str() {
            "manual" => Reason::Manual(detail),
            "fatal" => Reason::Fatal(detail),
            "signal" => Reason::Signal(detail),
            other => return Err(err(format!("unknown reason kind {other:?}"))),
        };
        // The core drives the drain on its own thread from here (no libuv handle, so
        // it never holds the event loop open).
        self.sd.trigger(reason);
        Ok(self.pending())
    }

    /// A trigger for signal number `signal` (the reason names it as the core does).
    #[napi(catch_unwind)]
    pub fn trigger_signal(&mut self, signal: i32) -> bool {
        self.sd.trigger(Reason::signal(signal));
        self.pending()
    }

    /// A readiness probe was answered "not ready" (the adaptive announce window).
    #[napi(catch_unwind)]
    pub fn readiness_probed(&self) -> bool {
        self.sd.readiness_probed();
        self.pending()
    }

    // ----- guards -------------------------------------------------------------------

    /// Admits one unit of work: a slot number, or -1 once admission has closed.
    #[napi(catch_unwind)]
    pub fn acquire(&self) -> i32 {
        self.hot.acquire()
    }

    /// Admits one unit of work labelled `kind` (see the report's `aborted_by_kind`).
    #[napi(catch_unwind)]
    pub fn acquire_of(&self, kind: String) -> napi::Result<i32> {
        let k = self
            .sd
            .kind(&kind)
            .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
        Ok(match self.sd.guard_of(k) {
            Some(g) => self.hot.slab.borrow_mut().store(g),
            None => -1,
        })
    }

    /// A child of the guard in `slot` (admitted even after admission closed).
    #[napi(catch_unwind)]
    pub fn acquire_child(&self, slot: u32) -> napi::Result<i32> {
        let mut slab = self.hot.slab.borrow_mut();
        let child = match slab.guards.get(slot as usize) {
            Some(Some(g)) => g.child(),
            _ => return Err(err("this guard has already been released")),
        };
        Ok(slab.store(child))
    }

    /// Releases the guard in `slot`; returns whether events are pending. Releasing a
    /// free slot is a no-op.
    #[napi(catch_unwind)]
    pub fn release(&self, slot: u32) -> bool {
        self.hot.release(slot)
    }

    pub(crate) fn kind_of(&self, kind: Option<String>) -> napi::Result<Option<Kind>> {
        kind.map(|k| self.sd.kind(&k))
            .transpose()
            .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))
    }

    /// Checks and interns a guard label (throws on a bad one, as acquiring would).
    #[napi(catch_unwind)]
    pub fn intern_kind(&self, kind: String) -> napi::Result<()> {
        self.kind_of(Some(kind)).map(drop)
    }

    /// `acquire()` as a plain function bound to this engine: the per-request path. A
    /// class method pays for unwrapping `this` on every call; this does not.
    #[napi(catch_unwind)]
    pub fn acquire_fn<'env>(&self, env: &'env Env) -> napi::Result<Function<'env, (), i32>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("acquire", move |_| Ok(hot.acquire()))
    }

    /// `acquireOf(kind)` as a plain function bound to this engine and kind (interned once).
    #[napi(catch_unwind)]
    pub fn acquire_of_fn<'env>(
        &self,
        env: &'env Env,
        kind: String,
    ) -> napi::Result<Function<'env, (), i32>> {
        let k = self
            .sd
            .kind(&kind)
            .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
        let hot = self.hot.clone();
        env.create_function_from_closure("acquireOf", move |_| {
            Ok(match hot.sd.guard_of(k) {
                Some(g) => hot.slab.borrow_mut().store(g),
                None => -1,
            })
        })
    }

    /// `release(slot)` as a plain function bound to this engine (see `acquireFn`).
    #[napi(catch_unwind)]
    pub fn release_fn<'env>(&self, env: &'env Env) -> napi::Result<Function<'env, u32, bool>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("release", move |ctx| {
            let slot: u32 = ctx.get(0)?;
            Ok(hot.release(slot))
        })
    }

    // ----- queries ------------------------------------------------------------------

    /// 0 running, 1 draining, 2 closing, 3 done.
    #[napi(getter, catch_unwind)]
    pub fn phase(&self) -> u32 {
        self.sd.phase() as u32
    }

    #[napi(getter, catch_unwind)]
    pub fn ready(&self) -> bool {
        self.sd.is_ready()
    }

    #[napi(getter, catch_unwind)]
    pub fn accepting(&self) -> bool {
        self.sd.is_accepting()
    }

    #[napi(getter, catch_unwind)]
    pub fn cancelled(&self) -> bool {
        self.sd.is_cancelled()
    }

    #[napi(getter, catch_unwind)]
    pub fn in_flight(&self) -> f64 {
        self.sd.in_flight() as f64
    }

    /// Whether a keep-alive connection should close after its current response.
    #[napi(catch_unwind)]
    pub fn should_close(&self) -> bool {
        self.sd.should_close()
    }

    /// Time since the engine was built, on its clock, in milliseconds.
    #[napi(getter, catch_unwind)]
    pub fn elapsed_ms(&self) -> f64 {
        self.sd.elapsed().as_secs_f64() * 1e3
    }

    /// The signal numbers configured (for `process.on`).
    #[napi(getter, catch_unwind)]
    pub fn signals(&self) -> Vec<i32> {
        self.sd.config().signals().to_vec()
    }

    /// The trigger number that terminates (`null`: termination is off).
    #[napi(getter, catch_unwind)]
    pub fn terminate_at(&self) -> Option<u32> {
        self.sd.config().escalation().terminate_at
    }

    /// The forced exit code configured.
    #[napi(getter, catch_unwind)]
    pub fn forced_exit_code(&self) -> i32 {
        self.sd.config().forced_exit_code()
    }

    /// The final report as JSON (`Report::to_json`), once Done.
    #[napi(catch_unwind)]
    pub fn report_json(&self) -> Option<String> {
        self.sd.report().map(|r| r.to_json())
    }

    /// The final report for humans (`Report`'s `Display`), once Done.
    #[napi(catch_unwind)]
    pub fn report_text(&self) -> Option<String> {
        self.sd.report().map(|r| r.to_string())
    }

    /// Panics on purpose: lets the tests prove a panic becomes a JavaScript exception.
    #[napi(catch_unwind)]
    pub fn panic_for_test(&self) {
        panic!("a deliberate panic in the addon");
    }
}

impl Drop for NativeShutdown {
    fn drop(&mut self) {
        // Break the engine <-> queue cycles (see `Shared::engine`; an unfinished hook's
        // completion holds the engine too). Dropped outside the locks: dropping a
        // completion records the hook as failed, which may queue events. A driver
        // thread that still runs keeps its own handle and ends at Done.
        let engine = lock(&self.shared.engine).take();
        let hooks = std::mem::take(&mut *lock(&self.shared.hooks));
        drop(hooks);
        drop(engine);
    }
}
