'use strict';
// libshutdown for Node: the JavaScript face of the `shutdown` core (a Rust N-API addon).
//
// The addon translates types; every decision (phases, deadlines, admission, escalation,
// hook timeouts, the exit code) is the core's. This file adapts Node's objects to it:
// options, events and promises, guards, hooks as JavaScript functions, signals through
// process.on (never a native signal handler: see docs/design.md), and attach() for
// http/https/http2 servers (in ./lib/attach.js).

const { EventEmitter, setMaxListeners } = require('node:events');
const os = require('node:os');
const { isNativeError } = require('node:util').types;

// The native part: this platform's prebuilt package, or a build from source (./lib/native.js).
const native = require('./lib/native.js').load();
const { attach, requestSlotOf } = require('./lib/attach.js');
const longLivedWork = require('./lib/long_lived.js');
const pm2Support = require('./lib/pm2.js');
const { normalize, millis, typeError, rangeError } = require('./lib/options.js');
const { internal, install, kInternal: kI } = require('./lib/internal.js');

const PHASES = ['running', 'draining', 'closing', 'done'];
const DRAINING = 1; // the addon's phase numbers
const DONE = 3;
// How long a signal arriving after Done lets the host exit by itself before the process
// exits with the report's exit code: the core's rule, as its own signal listener applies it.
const AFTER_DONE_GRACE_MS = native.afterDoneGraceMs();
const MILESTONES = ['draining', 'quiescing', 'closing', 'done'];
// The codes of the addon's event queue: the core's Event::code, and the addon's own 0.
const EV_HOOK_START = 0; // a JavaScript hook is due (the addon's own)
const EV_DONE = 4; // milestones are 1 (draining) to 4 (done)
const EV_CANCELLED = 5;
const EV_DISMISSED = 8;
const EV_STREAMS_ENDING = 9;
const EV_STREAMS_CUT = 10;
const EV_PROGRESS = 12;
const EV_UNLISTEN = 13;

// ----- errors -----------------------------------------------------------------------

function closedError(what) {
  const e = new Error(`libshutdown: ${what}: admission has closed, the server is shutting down`);
  e.code = 'ERR_SHUTDOWN_CLOSED';
  return e;
}

function messageOf(e) {
  try {
    if (e instanceof Error || isNativeError(e)) return String(e.message);
    return String(e);
  } catch {
    return 'a value that cannot be shown';
  }
}

const SIGNALS = os.constants.signals;

function signalNameOf(n) {
  for (const [name, num] of Object.entries(SIGNALS)) if (num === n) return name;
  return null;
}

// ----- instances and wake-ups ---------------------------------------------------------

// The addon's driver thread wakes JavaScript through one weak threadsafe function per
// instance, called with the instance id. The registry holds instances weakly, so the
// addon keeps neither the event loop nor a Shutdown alive.
const instances = new Map();
const forget = new FinalizationRegistry((id) => instances.delete(id));
let nextId = 1;

function wake(id) {
  const sd = instances.get(id)?.deref();
  if (sd !== undefined) internal(sd).drain();
}

function noop() {}

function rethrowLater(e) {
  process.nextTick(() => {
    throw e;
  });
}

// ----- guards -----------------------------------------------------------------------

const kSlot = Symbol('slot');
const kEngine = Symbol('engine'); // a Guard's engine: the internal interface (lib/internal.js)
const RELEASED = -1;

/** One unit of work in flight. Release it exactly once (more calls are no-ops). */
class Guard {
  constructor(engine, slot) {
    this[kEngine] = engine;
    this[kSlot] = slot;
  }

  /** Whether release() was called. */
  get released() {
    return this[kSlot] === RELEASED;
  }

  /** Ends this unit of work; returns false if it was already released. */
  release() {
    const slot = this[kSlot];
    if (slot === RELEASED) return false;
    this[kSlot] = RELEASED;
    const e = this[kEngine];
    if (e.releaseSlot(slot)) e.drain();
    return true;
  }

  /** A guard for work this one starts: admitted even after admission closed. */
  child() {
    const slot = this[kSlot];
    if (slot === RELEASED) throw new Error('libshutdown: child() of a released guard');
    const e = this[kEngine];
    return new Guard(e, e.native.acquireChild(slot));
  }
}

// ----- the engine -------------------------------------------------------------------

/**
 * The graceful-shutdown engine. Events: 'draining', 'quiescing', 'closing',
 * 'done' (with the report), 'streamsEnding' (a long-lived kind's name: end those
 * streams now) and 'streamsCut' ({ kind, count }: its grace ran out).
 */
class Shutdown extends EventEmitter {
  constructor(options) {
    super();
    // EventEmitter's own bookkeeping stays off Object.keys() like the engine's.
    for (const k of ['_events', '_eventsCount', '_maxListeners']) Object.defineProperty(this, k, { enumerable: false });
    const { core, manualClock, env, exitOnDone, logger } = normalize(options, native.validateOptions);
    const id = nextId++;
    // Everything that is not the documented API lives in the engine's internal
    // interface (lib/internal.js), off the instance.
    install(this, new Engine(this, core, manualClock, env, exitOnDone, logger, id));
    instances.set(id, new WeakRef(this));
    forget.register(this, id);
    /** Aborted when the core's cancellation fires: drain deadline, forced drain, or Done. */
    this.signal = this[kI].abort.signal;
    // One signal shared by all the work in flight: any number of listeners is normal.
    setMaxListeners(0, this.signal);
  }

  // ----- queries ----------------------------------------------------------------

  /** 'running' | 'draining' | 'closing' | 'done'. */
  get phase() {
    return PHASES[this[kI].native.phase];
  }

  /** Readiness: true only while running. */
  get ready() {
    return this[kI].native.ready;
  }

  /** Whether new guards are admitted (running, and the announce window). */
  get accepting() {
    return this[kI].native.accepting;
  }

  /**
   * Whether the listening sockets should stay open: false from the core's 'unlisten'
   * (admission closed and no listener hold keeps them open, or the drain is over).
   * attach() closes its servers' listeners then; a server of your own does the same.
   */
  get shouldListen() {
    return this[kI].native.shouldListen;
  }

  /** Whether the cancellation signal has fired. */
  get cancelled() {
    return this[kI].native.cancelled;
  }

  /** Guards in flight now. */
  get inFlight() {
    return this[kI].native.inFlight;
  }

  /** Time since this engine was built, on its clock (virtual or real), in ms. */
  get elapsed() {
    return this[kI].native.elapsedMs;
  }

  /** The final report once done, else null. */
  get report() {
    return this[kI].report;
  }

  /** Resolves when the drain starts. */
  get draining() {
    return this[kI].promises.draining;
  }

  /** Resolves when admission closes. */
  get quiescing() {
    return this[kI].promises.quiescing;
  }

  /** Resolves when cleanup hooks start. */
  get closing() {
    return this[kI].promises.closing;
  }

  /** Resolves with the report when the shutdown is done. */
  get done() {
    return this[kI].promises.done;
  }

  /** Whether the core told the long-lived work of `kind` to end ('streamsEnding'). */
  isEnding(kind) {
    this[kI].checkKind(kind);
    return this[kI].native.isEnding(kind);
  }

  /** Whether the grace of long-lived `kind` ran out ('streamsCut'). */
  isCut(kind) {
    this[kI].checkKind(kind);
    return this[kI].native.isCut(kind);
  }

  /**
   * A listener hold of the core: its 'unlisten' (and attach() closing its listeners)
   * waits until the returned function is called (idempotent), or the drain ends. For
   * long-lived work whose clients hear that they must end only on a new connection (a
   * long-polling transport of your own; attachSocketIo() holds one per polling
   * client). null once the core has said 'unlisten'.
   */
  holdListener() {
    const release = this[kI].holdListener();
    return release === noop ? null : release;
  }

  /** Whether a keep-alive connection should close after its current response. */
  shouldClose() {
    return this[kI].native.shouldClose();
  }

  // ----- events -----------------------------------------------------------------

  /**
   * Starts the shutdown (first call) or escalates (later calls, as configured).
   * `reason`: a string (manual), an Error (fatal) or `{ kind: 'manual' | 'fatal' |
   * 'signal', detail }`. A fatal reason ends with a non-zero exit code (the core's
   * forced exit code) even when the drain was clean.
   */
  trigger(reason = 'manual') {
    let kind = 'manual';
    let detail;
    if (typeof reason === 'string') detail = reason;
    else if (reason instanceof Error || isNativeError(reason)) {
      // An error is a fatal reason (the core then reports a non-zero exit code), from
      // this realm or another (vm contexts).
      kind = 'fatal';
      detail = messageOf(reason);
    } else if (reason !== null && typeof reason === 'object') {
      kind = reason.kind ?? 'manual';
      detail = reason.detail ?? '';
      if (kind !== 'manual' && kind !== 'fatal' && kind !== 'signal') {
        throw rangeError('reason.kind', `must be "manual", "fatal" or "signal", got ${JSON.stringify(kind)}`);
      }
      if (typeof detail !== 'string') throw typeError('reason.detail', `must be a string, got ${typeof detail}`);
    } else throw typeError('reason', `must be a string or { kind, detail }, got ${typeof reason}`);
    this[kI].triggerWith(() => this[kI].native.trigger(kind, detail));
    return this;
  }

  /** Reports a readiness probe answered "not ready" (the adaptive announce window). */
  readinessProbed() {
    if (this[kI].native.readinessProbed()) this[kI].drain();
  }

  /**
   * Listens for the configured signals (default SIGTERM and SIGINT) with process.on:
   * the first starts the drain, the second forces, the third ends the process at once
   * with the forced exit code (as configured). A signal after Done (the process is
   * still here: exitOnDone false) exits it 250 ms later with the report's exit code,
   * unless it has exited by itself meanwhile; with terminateAt: null it is only logged.
   * Returns a function that stops listening.
   */
  listenSignals() {
    // Idempotent: a second call must not make one signal count twice.
    if (this[kI].stopSignals) return this[kI].stopSignals;
    const handlers = [];
    for (const num of this[kI].native.signals) {
      const name = signalNameOf(num);
      if (name === null) continue;
      const handler = () => this[kI].onSignal(num);
      process.on(name, handler);
      handlers.push([name, handler]);
    }
    this[kI].stopSignals = () => {
      for (const [name, handler] of handlers) process.removeListener(name, handler);
      handlers.length = 0;
      this[kI].stopSignals = null;
    };
    return this[kI].stopSignals;
  }

  /**
   * systemd Type=notify, sent by the core: STOPPING=1, STATUS and EXTEND_TIMEOUT_USEC
   * on each milestone from now on. Returns whether NOTIFY_SOCKET is set (false: nothing
   * is sent, not an error). Call notifyReady() once the server listens.
   */
  notifySystemd() {
    return this[kI].native.notifySystemd();
  }

  /**
   * READY=1 to systemd, and 'ready' to PM2 after pm2(): returns whether either was sent
   * (not without NOTIFY_SOCKET / PM2, nor once stopping).
   */
  notifyReady() {
    const systemd = this[kI].native.notifyReady();
    return pm2Support.notifyReady(this) || systemd;
  }

  /** PM2 support when running under PM2 (./lib/pm2.js); returns what PM2 told it, or null. */
  pm2(options) {
    return pm2Support.pm2(this, native.validateOptions, this[kI].coreOptions, options);
  }

  // ----- work -------------------------------------------------------------------

  /**
   * Admits one unit of work: a Guard to release when the work ends, or null once
   * admission has closed. `kind` labels it for the report.
   */
  guard(kind) {
    let slot;
    if (kind === undefined) slot = this[kI].acquire();
    else {
      this[kI].checkKind(kind);
      slot = this[kI].native.acquireOf(kind);
    }
    return slot === RELEASED ? null : new Guard(this[kI], slot);
  }

  /**
   * Tracks a background job: `job` is a promise, or a function called with the
   * shutdown's AbortSignal (called only when admitted). Returns a promise settling like
   * the job. Throws ERR_SHUTDOWN_CLOSED once admission has closed, unless
   * `options.parent` admits it as a child: a live Guard, or a request (or its response)
   * of an attached server whose response is not finished yet. A request served after
   * admission closed (on a connection of the quiesce boundary) can so still start the
   * job it stands for; the job is labelled like the request.
   */
  track(job, options = {}) {
    const { parent, kind } = options ?? {};
    let g;
    if (parent instanceof Guard) {
      g = parent.child();
    } else if (parent !== undefined) {
      const slot = requestSlotOf(parent);
      const child = slot === RELEASED ? RELEASED : this[kI].native.requestChild(slot);
      if (child === RELEASED) {
        throw typeError('parent', 'must be a Guard, or a request of an attached server whose response is not finished');
      }
      g = new Guard(this[kI], child);
    } else {
      g = this.guard(kind);
    }
    if (g === null) throw closedError('track()');
    let p;
    try {
      p = typeof job === 'function' ? job(this.signal) : job;
    } catch (e) {
      g.release();
      throw e;
    }
    return Promise.resolve(p).finally(() => g.release());
  }

  // ----- hooks ------------------------------------------------------------------

  /**
   * Registers a cleanup hook run in the closing phase. `fn` may be sync or async; a
   * throw is recorded as "panicked", a rejection as "failed", and the others still run.
   * `options.order`: ascending groups (same order: concurrent); `options.timeout`: ms.
   */
  onClose(name, fn, options = {}) {
    if (typeof name !== 'string') throw typeError('name', `must be a string, got ${typeof name}`);
    if (typeof fn !== 'function') throw typeError('fn', `must be a function, got ${typeof fn}`);
    if (options === null || typeof options !== 'object') throw typeError('options', 'must be an object');
    const order = options.order ?? 0;
    if (typeof order !== 'number') throw typeError('order', `must be an integer, got ${typeof order}`);
    if (!Number.isInteger(order) || order < -0x80000000 || order > 0x7fffffff) {
      throw rangeError('order', `must be a 32-bit integer, got ${order}`);
    }
    const timeout = millis(options, 'timeout');
    const id = this[kI].native.onClose(name, order, timeout);
    if (id === -1) {
      const e = new Error('libshutdown: onClose(): cleanup hooks have already started');
      e.code = 'ERR_SHUTDOWN_TOO_LATE';
      throw e;
    }
    if (id === -2) throw rangeError('timeout', `must be greater than zero and at most closeTimeout, got ${timeout}`);
    if (id === -3) throw rangeError('name', 'must be 1 to 256 bytes');
    this[kI].hooks[id] = fn;
    return this;
  }

  // ----- virtual time -----------------------------------------------------------

  /**
   * Moves a virtual clock (manualClock: true) forward by `ms`, deadline by deadline:
   * events and hooks due at each deadline run at that instant. A hook that settles
   * asynchronously settles after this returns; use advanceAsync() to let it settle at
   * its instant.
   */
  advance(ms) {
    const to = this[kI].advanceTarget(ms);
    for (let i = 0; ; i++) {
      const r = this[kI].native.advanceStep(to);
      if (r & 2) this[kI].drain();
      if ((r & 1) === 0 || i > 1e6) break;
    }
  }

  /** Like advance(), letting promises (async hooks) settle at each deadline. */
  async advanceAsync(ms) {
    const to = this[kI].advanceTarget(ms);
    for (let i = 0; ; i++) {
      const r = this[kI].native.advanceStep(to);
      if (r & 2) this[kI].drain();
      await new Promise(setImmediate);
      if ((r & 1) === 0 || i > 1e6) break;
    }
  }

  /**
   * When a milestone ('draining', 'quiescing', 'closing', 'done') was reached, in ms since
   * this engine was built on its clock, or null if not yet.
   */
  reachedAt(milestone) {
    return this[kI].reached.get(milestone) ?? null;
  }

  // ----- servers ----------------------------------------------------------------

  /**
   * Drains an http, https or http2 server with this shutdown: a guard per request,
   * readiness route, Connection: close / GOAWAY advice, listener and socket closing.
   */
  attach(server, options) {
    const attachment = attach(this, server, options);
    pm2Support.attached(this, server);
    return attachment;
  }

  /**
   * Drains a `ws` WebSocketServer: at 'streamsEnding' for `kind` (default 'websocket')
   * every open client gets close(1001, 'going away'); at 'streamsCut' the ones left are
   * terminated. Each connection holds a long-lived guard until its socket closes (the one
   * attach() holds for its upgrade, when the server is attached).
   */
  attachWebSocketServer(wss, options) {
    return longLivedWork.attachWebSocketServer(this, wss, options);
  }

  /**
   * Drains a socket.io Server: at 'streamsEnding' for `kind` (default 'socket.io') every
   * client is told to end: its engine.io connection closed ("transport close" on the
   * client, which reconnects by itself), or with `reconnect: false` a DISCONNECT packet
   * ("io server disconnect", no reconnection); at 'streamsCut' the ones left are
   * dropped. Each engine.io connection holds a long-lived guard of `kind` while it is
   * open.
   */
  attachSocketIo(io, options) {
    return longLivedWork.attachSocketIo(this, io, options);
  }

  /**
   * Makes `res` a server-sent event stream: SSE headers, a long-lived guard of `kind`
   * (default 'sse') until the response closes, and at 'streamsEnding' for it a
   * `retry: <retry>` hint and the end of the response (the client reconnects elsewhere).
   */
  eventStream(req, res, options) {
    return longLivedWork.eventStream(this, req, res, options);
  }

  // ----- the core's events, delivered ------------------------------------------------

  /**
   * What the engine is doing now, from the core: `{ line, phase, accepting, inFlight,
   * inFlightByKind, connections, aborted, timeLeftMs, timeline }` (for a metrics
   * endpoint; `line` is the core's progress line).
   */
  progress() {
    const p = this[kI].native.progress();
    return { ...p, timeLeftMs: p.timeLeftMs ?? null, timeline: p.timeline.map(([milestone, atMs]) => ({ milestone, atMs })) };
  }

}

// ----- the engine's internals -----------------------------------------------------

// The internal interface of one Shutdown (documented member by member in
// lib/internal.js): its state and what the integrations call.
class Engine {
  constructor(sd, core, manualClock, env, exitOnDone, logger, id) {
    this.sd = sd;
    this.logger = logger;
    this.id = id;
    this.native = new native.NativeShutdown(core, manualClock, env, id, wake);
    this.coreOptions = [core, env]; // pm2(): the core's check against kill_timeout
    // The per-request path: plain functions bound to the engine (no `this` to unwrap).
    this.acquire = this.native.acquireFn();
    this.releaseSlot = this.native.releaseFn();
    // Connections (attach()): the core's connection API, as plain functions too.
    this.conn = {
      open: this.native.connOpenFn(),
      close: this.native.connCloseFn(),
      request: this.native.connRequestFn(null),
      keepAlive: this.native.requestKeepAliveFn(),
      finish: this.native.requestFinishFn(),
    };
    // Handed out as a plain function: attach() calls it after native calls.
    this.drain = this.drain.bind(this);
    // Called with each connection id the core dismisses (attach(), the conformance runner).
    this.dismissHandlers = [];
    // Called just before the first trigger, while the engine still runs (attach()).
    this.beforeTrigger = [];
    // Long-lived streams of the integrations (lib/long_lived.js), by kind.
    this.followers = new Map();
    // Called once when the core says unlisten (attach(): close the listeners).
    this.unlistenHandlers = [];
    this.unlistenedAt = null; // ms on the engine's clock, once it has
    this.manual = manualClock;
    this.exitOnDone = exitOnDone;
    this.running = true; // phase === 'running': only a trigger from here ends it
    this.kinds = new Set(); // labels checked by the core
    this.inDrain = false;
    this.hooks = [];
    this.keepAlive = null;
    this.stopSignals = null;
    this.exitAfterDone = null; // the exit a signal after Done has scheduled
    this.report = null;
    this.reached = new Map(); // milestone -> ms since the engine was built
    this.abort = new AbortController();
    this.resolvers = {};
    this.promises = {};
    for (const m of MILESTONES) {
      // Promise.withResolvers() is Node 22+; keep Node 18/20.
      this.promises[m] = new Promise((resolve) => {
        this.resolvers[m] = resolve;
      });
    }
  }

  // The rule of the core's own signal listener (Rust and C `listen_signals`), applied
  // to the signals Node owns.
  onSignal(num) {
    const wasDone = this.native.phase === DONE;
    this.triggerWith(() => this.native.triggerSignal(num));
    const json = this.native.reportJson();
    if (json === null) return;
    const report = JSON.parse(json);
    if (wasDone) this.signalAfterDone(num, report);
    else if (report.forced === 'terminated') {
      process.stderr.write(this.native.reportText() ?? '');
      process.exit(report.exit_code);
    }
  }

  // Done, yet the process is still here (exitOnDone: false, or a host that has not
  // exited yet) and the operator signals again: never swallowed. The host gets a short
  // bounded chance to exit by itself, then the process exits with the report's own exit
  // code (0 after a clean drain). With termination turned off (terminateAt: null) the
  // signal is only logged.
  signalAfterDone(num, report) {
    const name = signalNameOf(num) ?? `signal ${num}`;
    if (this.native.terminateAt === null) {
      process.stderr.write(`libshutdown: ${name} after done: not exiting (terminateAt: null)\n`);
      return;
    }
    if (this.exitAfterDone !== null) return; // already on its way
    process.stderr.write(
      `libshutdown: ${name} after done, exiting with exit code ${report.exit_code} in ${AFTER_DONE_GRACE_MS} ms\n`,
    );
    // Unref'd: a host whose loop empties meanwhile ends on its own.
    this.exitAfterDone = setTimeout(() => process.exit(report.exit_code), AFTER_DONE_GRACE_MS);
    this.exitAfterDone.unref();
  }

  checkKind(kind) {
    if (this.kinds.has(kind)) return;
    if (typeof kind !== 'string') throw typeError('kind', `must be a string, got ${typeof kind}`);
    try {
      this.native.internKind(kind);
    } catch (e) {
      throw rangeError('kind', e.message);
    }
    this.kinds.add(kind);
  }

  /**
   * Runs one trigger of the core (`fire()` returns whether events are pending). Only
   * JavaScript triggers (no native signal handler), so the first trigger is known here
   * before the core sees it: the attachments record what the response heads already
   * sent said (keep-alive) while the engine still runs.
   */
  triggerWith(fire) {
    if (this.running) for (const f of this.beforeTrigger) f();
    if (fire()) this.drain();
  }

  startHook(id) {
    const fn = this.hooks[id];
    this.hooks[id] = undefined;
    // Its timeout starts now; a hook no longer due (a listener moved the clock past the
    // close budget first) is never called and stays reported skipped.
    if (!this.native.hookBegin(id)) return;
    let result;
    try {
      result = fn();
    } catch (e) {
      this.hookDone(id, 2, messageOf(e));
      return;
    }
    if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function') {
      Promise.resolve(result).then(
        () => this.hookDone(id, 0),
        (e) => this.hookDone(id, 1, messageOf(e)),
      );
    } else {
      this.hookDone(id, 0);
    }
  }

  hookDone(id, status, message) {
    if (this.native.hookDone(id, status, message)) this.drain();
  }

  advanceTarget(ms) {
    if (typeof ms !== 'number') throw typeError('ms', `must be a number, got ${typeof ms}`);
    if (!Number.isFinite(ms) || ms < 0) throw rangeError('ms', `must be a finite number >= 0, got ${ms}`);
    if (!this.manual) {
      const e = new Error('libshutdown: advance() needs a Shutdown built with manualClock: true');
      e.code = 'ERR_SHUTDOWN_NOT_MANUAL';
      throw e;
    }
    return this.native.elapsedMs + ms;
  }

  /** Reads the events the core queued and acts on them, in order. Re-entrant calls return. */
  drain() {
    if (this.inDrain) return;
    this.inDrain = true;
    try {
      for (;;) {
        const events = this.native.takeEvents();
        if (events.length === 0) break;
        for (let i = 0; i < events.length; i += 4) {
          try {
            const code = events[i];
            const a = events[i + 1];
            if (code === EV_HOOK_START) this.startHook(a);
            else if (code <= EV_DONE) this.milestone(code - 1, events[i + 3]);
            else if (code === EV_CANCELLED) this.cancelled();
            else if (code === EV_DISMISSED) this.dismissed(a);
            else if (code === EV_STREAMS_ENDING) this.streams('ending', this.native.eventName(a));
            else if (code === EV_STREAMS_CUT) this.streams('cut', this.native.eventName(a), events[i + 2]);
            else if (code === EV_PROGRESS) this.progress();
            else if (code === EV_UNLISTEN) this.unlisten(events[i + 3]);
            // 6, 7 (hook started, finished) and 11 (terminate: see onSignal) need nothing here.
          } catch (e) {
            // A throwing listener must not lose the events after it.
            rethrowLater(e);
          }
        }
      }
    } finally {
      this.inDrain = false;
    }
  }

  // The core's periodic progress (every progressInterval while draining or closing):
  // the 'progress' event with the snapshot, and the logger's line when one was given.
  progress() {
    if (this.sd.listenerCount('progress') === 0 && this.logger === null) return;
    const p = this.sd.progress();
    if (this.logger !== null) this.logger(`libshutdown: ${p.line}`);
    this.sd.emit('progress', p);
  }

  // 'streamsEnding' / 'streamsCut' of `kind`: the integrations' streams, then the event.
  streams(what, kind, count) {
    for (const f of [...(this.followers.get(kind) ?? [])]) {
      try {
        f[what]();
      } catch (e) {
        rethrowLater(e);
      }
    }
    if (what === 'ending') this.sd.emit('streamsEnding', kind);
    else this.sd.emit('streamsCut', { kind, count });
  }

  // A listener hold of the core: its unlisten (attach() closing its listeners) waits
  // until the returned function is called (once), or the drain ends.
  holdListener() {
    const slot = this.native.holdListener();
    if (slot < 0) return noop; // the core has said unlisten already
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (this.native.releaseListener(slot)) this.drain();
    };
  }

  // The core's unlisten: the listeners close (attach()), then the public event.
  unlisten(at) {
    if (this.unlistenedAt !== null) return;
    this.unlistenedAt = at;
    for (const f of this.unlistenHandlers.splice(0)) {
      try {
        f();
      } catch (e) {
        rethrowLater(e);
      }
    }
    this.sd.emit('unlisten');
  }

  // Follows the long-lived `kind` for one stream: `{ ending, cut }`. Returns unfollow.
  follow(kind, f) {
    let set = this.followers.get(kind);
    if (set === undefined) this.followers.set(kind, (set = new Set()));
    set.add(f);
    return () => set.delete(f);
  }

  dismissed(id) {
    for (const f of this.dismissHandlers) {
      try {
        f(id);
      } catch (e) {
        rethrowLater(e);
      }
    }
  }

  // The core's cancellation fired (a cut drain, or Done).
  cancelled() {
    if (!this.sd.signal.aborted) this.abort.abort(abortReason(this.native.phase));
  }

  milestone(code, at) {
    const name = MILESTONES[code];
    if (this.reached.has(name)) return;
    this.reached.set(name, at);
    if (name === 'draining') {
      this.running = false;
      // The shutdown is in progress and bounded by its deadlines: hold the loop open
      // until Done, so a hanging hook still ends in a report, not a silent exit.
      if (!this.manual) this.keepAlive = setInterval(noop, 0x7fffffff);
    }
    let report;
    if (name === 'done') {
      report = JSON.parse(this.native.reportJson());
      this.report = report;
      if (this.keepAlive !== null) clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
    this.resolvers[name](report);
    try {
      this.sd.emit(name, report);
    } finally {
      if (name === 'done' && this.exitOnDone) {
        // After the 'done' listeners and the done promise's reactions.
        setImmediate(() => process.exit(report.exit_code));
      }
    }
  }
}

function abortReason(phase) {
  const e = new Error(
    PHASES[phase] === 'done'
      ? 'libshutdown: the shutdown is done'
      : 'libshutdown: the drain was cut short (deadline passed or forced)',
  );
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

module.exports = {
  Shutdown,
  Guard,
  signalName: native.signalName,
  /** For the tests: proves a Rust panic becomes a JavaScript exception. */
  _panicForTest() {
    const sd = new native.NativeShutdown([], true, false, 0, noop);
    sd.panicForTest();
  },
};
