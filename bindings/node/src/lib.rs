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
//!   codes and times ([`Event::code`], 1 to 11), together with the starts of JavaScript
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

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{
    Connection, HookError, HookOptions, HookOutcome, Kind, Reason, Request, Shutdown, MAX_TIMEOUT,
};
use napi::bindgen_prelude::{Float64Array, Function, Unknown};
use napi::{Env, Status};
use napi_derive::napi;

mod events;
mod options;
mod slots;
mod systemd;

/// The core's `Progress` snapshot, for JavaScript (`Shutdown#progress()`).
#[napi(object)]
pub struct NativeProgress {
    /// The core's progress line.
    pub line: String,
    pub phase: String,
    pub accepting: bool,
    pub in_flight: f64,
    pub in_flight_by_kind: std::collections::HashMap<String, f64>,
    pub connections: f64,
    pub aborted: f64,
    pub time_left_ms: Option<f64>,
    /// `[milestone, ms since the trigger]`.
    pub timeline: Vec<(String, f64)>,
}

use events::{lock, Queue, Shared, Wake};
use options::{configure, converted, env_source};
pub use options::{option_names, validate_options, NativeConfigError};
use slots::{Slab, Slots};

/// Milliseconds of a hook timeout to a `Duration` (the options are the core's schema).
/// Values past the core's maximum saturate just above it, so the core refuses them and
/// names the field. Clock positions use [`clock_position`] instead.
fn ms(v: f64) -> Duration {
    let too_long = MAX_TIMEOUT + Duration::from_secs(1);
    if !v.is_finite() || v < 0.0 {
        // Refused by the JavaScript layer already; never reached from there.
        return too_long;
    }
    let nanos = (v * 1e6).round();
    if nanos >= too_long.as_nanos() as f64 {
        too_long
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

/// A position on the engine's clock (milliseconds since it was built) to a `Duration`.
/// Not a configured duration: no ceiling but `Duration`'s own (centuries), so a virtual
/// clock runs past [`MAX_TIMEOUT`]. Negative, NaN, infinite or too-large values are
/// refused with an error rather than clamped.
fn clock_position(v: f64) -> Result<Duration, String> {
    let bad = |why: &str| format!("libshutdown: {v} ms is not a clock position ({why})");
    if v.is_nan() {
        return Err(bad("not a number"));
    }
    if v < 0.0 {
        return Err(bad("negative"));
    }
    if !v.is_finite() {
        return Err(bad("infinite"));
    }
    let nanos = (v * 1e6).round();
    // u64 nanoseconds: about 584 years, far past any clock a test can mean.
    if nanos >= u64::MAX as f64 {
        return Err(bad("too far: past 584 years"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

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

/// What the per-request path needs: the engine, the slab, the queue's pending flag.
/// Shared by [`NativeShutdown`] and the closures of
/// [`NativeShutdown::acquire_fn`] / [`NativeShutdown::release_fn`].
struct Hot {
    sd: Shutdown,
    slab: RefCell<Slab>,
    shared: Arc<Shared>,
    /// The connections JavaScript registered, by the core's id.
    conns: RefCell<HashMap<u64, Connection>>,
    /// Their requests in flight, by slot.
    reqs: RefCell<Slots<Request>>,
}

impl Hot {
    #[inline]
    fn acquire(&self) -> i32 {
        match self.sd.guard() {
            Some(g) => self.slab.borrow_mut().store(g),
            None => -1,
        }
    }

    #[inline]
    fn release(&self, slot: u32) -> bool {
        // Take it out first: dropping a guard can run milestone callbacks.
        let g = self.slab.borrow_mut().take(slot);
        drop(g);
        self.pending()
    }

    #[inline]
    fn pending(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Registers an accepted connection: its id, negated when it came back dismissed
    /// (accepted once the drain is over: the core tells no callback of it).
    #[inline]
    fn open(&self) -> f64 {
        let conn = self.sd.connection();
        let id = conn.id();
        let dismissed = conn.is_dismissed();
        self.conns.borrow_mut().insert(id, conn);
        if dismissed {
            -(id as f64)
        } else {
            id as f64
        }
    }

    /// The connection was closed; returns whether events are pending.
    #[inline]
    fn close(&self, id: f64) -> bool {
        // Taken out first: dropping it can end the drain (callbacks queue events).
        let conn = self.conns.borrow_mut().remove(&(id as u64));
        drop(conn);
        self.pending()
    }

    /// A request arrived on connection `id`: a request slot, or -1 refused (also for
    /// an unknown connection).
    #[inline]
    fn request(&self, id: f64, kind: Option<Kind>) -> i32 {
        let req = {
            let conns = self.conns.borrow();
            let Some(conn) = conns.get(&(id as u64)) else {
                return -1;
            };
            match kind {
                Some(k) => conn.request_of(k),
                None => conn.request(),
            }
        };
        match req {
            Some(r) => self.reqs.borrow_mut().store(r),
            None => -1,
        }
    }

    /// Whether the response of the request in `slot` keeps its connection open
    /// (decided at the first call). `false` for a free slot.
    #[inline]
    fn keep_alive(&self, slot: u32) -> bool {
        self.reqs
            .borrow_mut()
            .get_mut(slot)
            .is_some_and(Request::keep_alive)
    }

    /// The response of the request in `slot` was sent: bit 0 the connection stays
    /// open, bit 1 events are pending.
    #[inline]
    fn finish(&self, slot: u32) -> u32 {
        let req = self.reqs.borrow_mut().take(slot);
        let keep = req.is_some_and(Request::finish);
        u32::from(keep) | (u32::from(self.pending()) << 1)
    }
}

/// The engine, as JavaScript sees it. Wrapped by the `Shutdown` class of `index.js`.
#[napi]
pub struct NativeShutdown {
    sd: Shutdown,
    shared: Arc<Shared>,
    hot: Rc<Hot>,
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
        });
        Ok(NativeShutdown { sd, shared, hot })
    }

    fn pending(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// The queued events as `(code, a, b, at_ms)` quadruples, `code` the core's
    /// `Event::code`: 1 to 4 a milestone (draining, quiescing, closing, done), 5
    /// cancelled, 6 hook started and 7 hook finished (`a`: the hook's name), 8 a
    /// connection dismissed (`a`: its id; close it if idle, else call `connReading`), 9
    /// streams ending (`a`: the kind), 10 streams cut (`a`: the kind, `b`: how many
    /// guards were counted), 11 terminate; and the addon's own code 0, a JavaScript hook
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

    fn kind_of(&self, kind: Option<String>) -> napi::Result<Option<Kind>> {
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

    // ----- connections ----------------------------------------------------------------
    // The per-connection and per-request path: plain functions bound to the engine (see
    // `acquireFn`). Connection ids are the core's (`f64`, exact below 2^53).

    /// `connOpen() -> id`: registers an accepted connection (`-id`: it came back
    /// dismissed, the drain is over: close it).
    #[napi(catch_unwind)]
    pub fn conn_open_fn<'env>(&self, env: &'env Env) -> napi::Result<Function<'env, (), f64>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("connOpen", move |_| Ok(hot.open()))
    }

    /// `connClose(id) -> pending`: the connection closed.
    #[napi(catch_unwind)]
    pub fn conn_close_fn<'env>(&self, env: &'env Env) -> napi::Result<Function<'env, f64, bool>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("connClose", move |ctx| {
            let id: f64 = ctx.get(0)?;
            Ok(hot.close(id))
        })
    }

    /// `connRequest(id) -> slot | -1`: a request arrived on connection `id` (its head is
    /// complete); -1: refuse it (503, `Connection: close`). Labelled `kind` when given
    /// (interned once, here).
    #[napi(catch_unwind)]
    pub fn conn_request_fn<'env>(
        &self,
        env: &'env Env,
        kind: Option<String>,
    ) -> napi::Result<Function<'env, f64, i32>> {
        let k = self.kind_of(kind)?;
        let hot = self.hot.clone();
        env.create_function_from_closure("connRequest", move |ctx| {
            let id: f64 = ctx.get(0)?;
            Ok(hot.request(id, k))
        })
    }

    /// `requestKeepAlive(slot) -> bool`: whether the response may keep the connection
    /// open (decided at the first call: ask when its head is written).
    #[napi(catch_unwind)]
    pub fn request_keep_alive_fn<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Function<'env, u32, bool>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("requestKeepAlive", move |ctx| {
            let slot: u32 = ctx.get(0)?;
            Ok(hot.keep_alive(slot))
        })
    }

    /// `requestFinish(slot) -> bits`: the response was sent. Bit 0: the connection stays
    /// open (0: close it after this response), bit 1: events are pending.
    #[napi(catch_unwind)]
    pub fn request_finish_fn<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Function<'env, u32, u32>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("requestFinish", move |ctx| {
            let slot: u32 = ctx.get(0)?;
            Ok(hot.finish(slot))
        })
    }

    /// A request has begun to arrive on connection `id` (its head is not complete): the
    /// drain waits for it, and counts it as cut if it ends first. Returns whether events
    /// are pending.
    #[napi(catch_unwind)]
    pub fn conn_reading(&self, id: f64) -> bool {
        if let Some(c) = self.hot.conns.borrow().get(&(id as u64)) {
            c.reading();
        }
        self.pending()
    }

    /// Whether the core dismissed connection `id` (`false` for an unknown one).
    #[napi(catch_unwind)]
    pub fn conn_dismissed(&self, id: f64) -> bool {
        self.hot
            .conns
            .borrow()
            .get(&(id as u64))
            .is_some_and(Connection::is_dismissed)
    }

    /// Connections registered and not yet closed.
    #[napi(getter, catch_unwind)]
    pub fn connections(&self) -> u32 {
        self.sd.connections() as u32
    }

    /// What the engine is doing now (`Shutdown::progress`), for a metrics endpoint.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> NativeProgress {
        let p = self.sd.progress();
        NativeProgress {
            line: p.to_string(),
            phase: p.phase.as_str().to_string(),
            accepting: p.accepting,
            in_flight: p.in_flight as f64,
            in_flight_by_kind: p
                .in_flight_by_kind
                .iter()
                .map(|(k, n)| (k.clone(), *n as f64))
                .collect(),
            connections: p.connections as f64,
            aborted: p.aborted as f64,
            time_left_ms: p.time_left.map(|d| d.as_secs_f64() * 1e3),
            timeline: p
                .timeline
                .iter()
                .map(|t| (t.milestone.as_str().to_string(), t.at.as_secs_f64() * 1e3))
                .collect(),
        }
    }

    /// The connection of the request in `slot` leaves HTTP (WebSocket, CONNECT tunnel):
    /// the request becomes a long-lived guard (labelled `kind` when given), returned as a
    /// guard slot (release it with `release`); -1 for a free request slot.
    #[napi(catch_unwind)]
    pub fn request_upgrade(&self, slot: u32, kind: Option<String>) -> napi::Result<i32> {
        let k = self.kind_of(kind)?;
        let req = self.hot.reqs.borrow_mut().take(slot);
        let Some(req) = req else {
            return Ok(-1);
        };
        let guard = req.upgrade(k);
        Ok(self.hot.slab.borrow_mut().store(guard))
    }

    /// `recordAborted(count)` as a plain function bound to this engine and `kind`
    /// (interned once, here): counts work the JavaScript layer cut outside any guard (a
    /// connection destroyed while its request was still arriving) in the report's
    /// `aborted`, and under `kind` in `aborted_by_kind`. Returns the core's answer:
    /// `false` once Done, when the report is final.
    #[napi(catch_unwind)]
    pub fn record_aborted_fn<'env>(
        &self,
        env: &'env Env,
        kind: Option<String>,
    ) -> napi::Result<Function<'env, u32, bool>> {
        let k = self.kind_of(kind)?;
        let sd = self.sd.clone();
        env.create_function_from_closure("recordAborted", move |ctx| {
            let count: u32 = ctx.get(0)?;
            Ok(sd.record_aborted(u64::from(count), k))
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

    // ----- hooks --------------------------------------------------------------------

    /// Registers a hook run by JavaScript: when the core starts it, the event
    /// `(1, id)` is queued; JavaScript runs it and calls [`hook_done`](Self::hook_done).
    /// Returns the hook id, or a negative code: -1 too late, -2 bad timeout, -3 bad name.
    #[napi(catch_unwind)]
    pub fn on_close(&mut self, name: String, order: i32, timeout_ms: Option<f64>) -> i32 {
        // Queued: the hook counts as called when JavaScript calls it (`hook_begin`),
        // not when the core queues the event.
        let mut opts = HookOptions::new().order(order).queued();
        if let Some(t) = timeout_ms {
            opts = opts.timeout(ms(t));
        }
        // Reserve the id first: the core starts the hook only after registration returns.
        let id = {
            let mut hooks = lock(&self.shared.hooks);
            hooks.push(None);
            hooks.len() - 1
        };
        let shared = self.shared.clone();
        let registered = self.sd.on_close_deferred(&name, opts, move |done| {
            let unclaimed = {
                let mut hooks = lock(&shared.hooks);
                match hooks.get_mut(id) {
                    Some(slot) => {
                        *slot = Some(done);
                        None
                    }
                    // The JavaScript object is gone (garbage-collected): nobody can
                    // run the hook. Dropping the completion records it as failed.
                    None => Some(done),
                }
            };
            match unclaimed {
                None => shared.push_hook_start(id as u32),
                Some(done) => drop(done),
            }
        });
        match registered {
            Ok(()) => id as i32,
            Err(e) => {
                lock(&self.shared.hooks).pop();
                match e {
                    HookError::TooLate => -1,
                    HookError::BadTimeout(_) => -2,
                    HookError::BadName => -3,
                }
            }
        }
    }

    /// JavaScript is about to call hook `id`: its own timeout starts now. `false`: it
    /// is no longer due (the close budget ran out, or the shutdown ended, before
    /// JavaScript got to it); do not call it, it is reported skipped.
    #[napi(catch_unwind)]
    pub fn hook_begin(&self, id: u32) -> bool {
        let mut hooks = lock(&self.shared.hooks);
        let Some(slot) = hooks.get_mut(id as usize) else {
            return false;
        };
        if slot.as_ref().is_some_and(|done| done.begin()) {
            return true;
        }
        // Not due: its completion is dropped unused (the core ignores it).
        let stale = slot.take();
        drop(hooks);
        drop(stale);
        false
    }

    /// A JavaScript hook ended: status 0 ok, 1 failed (rejected), 2 panicked (threw).
    /// Returns whether events are pending. A second report for the same hook is ignored,
    /// as is a report after the core timed the hook out.
    #[napi(catch_unwind)]
    pub fn hook_done(&self, id: u32, status: u32, message: Option<String>) -> bool {
        let done = lock(&self.shared.hooks)
            .get_mut(id as usize)
            .and_then(Option::take);
        if let Some(done) = done {
            let message = message.unwrap_or_default();
            done.finish_with(match status {
                0 => HookOutcome::Ok,
                2 => HookOutcome::Panicked(message),
                _ => HookOutcome::Failed(message),
            });
        }
        self.pending()
    }

    // ----- virtual time -------------------------------------------------------------

    /// Moves a virtual clock forward (engines built with `manualClock` only), stopping
    /// at the next deadline on the way if there is one before `to_ms` (time since the
    /// engine was built), so JavaScript can run what that instant started (hooks) at
    /// that instant. Returns bit 0: stopped at a deadline (call again), bit 1: events
    /// are pending.
    #[napi(catch_unwind)]
    pub fn advance_step(&self, to_ms: f64) -> napi::Result<u32> {
        let target = clock_position(to_ms).map_err(|e| napi::Error::new(Status::InvalidArg, e))?;
        let now = self.sd.elapsed();
        let (to, more) = match self.sd.next_deadline() {
            Some(d) if d <= target => (d, true),
            _ => (target, false),
        };
        self.sd
            .advance(to.saturating_sub(now))
            .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
        Ok(u32::from(more) | (u32::from(self.pending()) << 1))
    }

    /// The next deadline as time since the engine was built, in ms (`null`: none).
    #[napi(getter, catch_unwind)]
    pub fn next_deadline_ms(&self) -> Option<f64> {
        self.sd.next_deadline().map(|d| d.as_secs_f64() * 1e3)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_convert_exactly_and_saturate_past_the_maximum() {
        assert_eq!(ms(0.0), Duration::ZERO);
        assert_eq!(ms(1.5), Duration::from_micros(1500));
        assert_eq!(ms(0.000_001), Duration::from_nanos(1));
        assert_eq!(ms(86_400_000.0), MAX_TIMEOUT);
        assert!(ms(86_400_001.0) > MAX_TIMEOUT);
        assert!(ms(1e300) > MAX_TIMEOUT);
        assert!(ms(f64::INFINITY) > MAX_TIMEOUT);
        assert!(
            ms(-1.0) > MAX_TIMEOUT,
            "refused by the core, never silently zero"
        );
    }

    #[test]
    fn clock_positions_convert_exactly_past_the_longest_timeout() {
        assert_eq!(clock_position(0.0).unwrap(), Duration::ZERO);
        assert_eq!(clock_position(1.5).unwrap(), Duration::from_micros(1500));
        let two_days = 2.0 * 86_400_000.0;
        assert_eq!(
            clock_position(two_days).unwrap(),
            Duration::from_secs(2 * 86_400)
        );
        assert!(clock_position(two_days).unwrap() > MAX_TIMEOUT);
        for bad in [
            -1.0,
            -0.001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
        ] {
            assert!(clock_position(bad).is_err(), "{bad} is refused");
        }
    }
}
