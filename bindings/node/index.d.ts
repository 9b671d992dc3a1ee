// Type definitions for libshutdown (hand-written; checked by `npm run typecheck`).

/// <reference types="node" />

import { EventEmitter } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Http2SecureServer, Http2Server } from 'node:http2';

/** The coarse phase. Monotonic: running -> draining -> closing -> done. */
export type Phase = 'running' | 'draining' | 'closing' | 'done';

/** A point on the shutdown timeline. */
export type Milestone = 'draining' | 'quiescing' | 'closing' | 'done';

/** Options of `new Shutdown()`. Durations are in milliseconds. */
export interface ShutdownOptions {
  /**
   * A platform's signals and budgets (see the README's table of presets, with their
   * sources); the other options change it. The platform's kill window becomes
   * gracePeriod, so budgets that do not fit are refused.
   */
  preset?: 'kubernetes' | 'docker' | 'pm2' | 'systemd' | 'cloud-run' | 'fly' | 'heroku';
  /**
   * Send systemd's Type=notify messages (STOPPING=1, EXTEND_TIMEOUT_USEC, STATUS=)
   * from the start, as notifySystemd() does (default false; the systemd preset turns it
   * on). Nothing is sent without NOTIFY_SOCKET. READY=1 stays notifyReady()'s.
   */
  systemdNotify?: boolean;
  /** The announce window (default 0): readiness fails, requests are still served. */
  drainDelay?: number;
  /** End the announce window after this many "not ready" readiness probes (needs drainDelay). */
  announceProbes?: number;
  /** How long admission stays open after the last of announceProbes (default 100 ms). */
  announceSettle?: number;
  /** How long in-flight work may take once admission closes (default 20000). */
  drainTimeout?: number;
  /** The budget of all cleanup hooks together (default 5000). */
  closeTimeout?: number;
  /**
   * Once admission has closed, how long a keep-alive connection must have been idle
   * before attach() closes it, in ms (default 100): a client that reused it just
   * before is served, not reset.
   */
  connectionGrace?: number;
  /** How often a drain in progress reports it (ms, default 1000; null: never): the core's `progress` event and log line. */
  progressInterval?: number | null;
  /** Where the drain's progress lines go: a function (line) or an object with info(line) (console, pino). */
  logger?: ((line: string) => void) | { info(line: string): void } | null;
  /** The orchestrator's budget (default 30000); the phase budgets must fit. null: no check. */
  gracePeriod?: number | null;
  /** The trigger number that forces the closing phase (default 2). null: never. */
  forceAt?: number | null;
  /** The trigger number that ends the process at once (default 3). null: never. */
  terminateAt?: number | null;
  /**
   * The same signal again less than this long after the previous counted one is the
   * same trigger delivered twice (one Ctrl-C under npm or pnpm run: the terminal's and
   * the relayed copy, milliseconds apart): not counted, no escalation (default 1000;
   * 0: off). A human's second Ctrl-C rarely comes within a second. Different signals
   * and manual triggers are never duplicates.
   */
  sameSignalWindow?: number;
  /** The exit code when anything was forced, aborted or failed (default 1, 1..255). */
  forcedExitCode?: number;
  /** Keep-alive advice: close at once ('immediate', default) or ramp up ('gradual'). */
  closeStrategy?: 'immediate' | 'gradual';
  /** Signals listenSignals() handles (default ['SIGTERM', 'SIGINT']): names or numbers. */
  signals?: Array<NodeJS.Signals | number>;
  /**
   * Exit the process with the report's exit code once done (default true; false with
   * manualClock). With false, a listened signal arriving after Done still exits (see
   * listenSignals()).
   */
  exitOnDone?: boolean;
  /**
   * Long-lived kinds and their drain policies (the core's Builder::long_lived), in order:
   * at `notifyAt` ('quiescing' by default, or 'draining') the kind gets 'streamsEnding';
   * `grace` ms later what is left of it gets 'streamsCut' and is counted as aborted.
   */
  longLived?: Record<string, LongLivedPolicy>;
  /** A virtual clock moved only by advance(): for simulations and tests. */
  manualClock?: boolean;
  /**
   * Apply the SHUTDOWN_* environment variables (SHUTDOWN_DRAIN_TIMEOUT_MS, ...) over
   * these options when the engine is built (default false); an invalid one throws a
   * RangeError whose `field` is the variable.
   */
  env?: boolean;
}

/** Why the shutdown started. */
export interface Reason {
  kind: 'signal' | 'manual' | 'fatal';
  detail: string;
}

/** How one cleanup hook ended. */
export type HookOutcome =
  | { status: 'ok' }
  | { status: 'failed'; message: string }
  | { status: 'panicked'; message: string }
  | { status: 'timed_out' }
  | { status: 'cancelled' }
  | { status: 'skipped' };

/** One cleanup hook's result. */
export interface HookReport {
  name: string;
  order: number;
  outcome: HookOutcome;
  duration_ms: number;
}

/** The final account of a shutdown: the core's JSON report, as is. */
export interface Report {
  reason: Reason;
  triggers: number;
  /** Signal triggers taken for a duplicate delivery of the previous one (not in triggers). */
  duplicate_triggers: number;
  /** Milestones reached, with times since the first trigger. */
  timeline: Array<{ milestone: Milestone; at_ms: number }>;
  in_flight_at_trigger: number;
  aborted: number;
  aborted_by_kind: Record<string, number>;
  hooks: HookReport[];
  forced: null | 'drain_timeout' | 'escalation' | 'terminated';
  exit_code: number;
}

/** One unit of work in flight; the drain waits for it. */
export declare class Guard {
  private constructor();
  /** Whether release() was called. */
  readonly released: boolean;
  /** Ends this unit of work; false if it was already released. */
  release(): boolean;
  /** A guard for work this one starts: admitted even after admission closed. */
  child(): Guard;
}

export interface HookOptions {
  /** Ascending groups; hooks of one order run concurrently (default 0). */
  order?: number;
  /** This hook's own limit in ms (default and maximum: closeTimeout). */
  timeout?: number;
}

export interface TrackOptions {
  /**
   * Admit the job as a child (works after admission closed): of this live guard, or of
   * the guard of this request (or its response) of an attached server, before its
   * response is finished.
   */
  parent?: Guard | import('node:http').IncomingMessage | import('node:http').ServerResponse | import('node:http2').Http2ServerRequest | import('node:http2').Http2ServerResponse;
  /** Label for the report's aborted_by_kind. */
  kind?: string;
}

export interface AttachOptions {
  /** A readiness route answered here: 200 while ready, 503 while draining. */
  readinessPath?: string;
  /** Label of the request guards, for the report's aborted_by_kind. */
  kind?: string;
  /** Called for each request refused with 503 because admission had closed (before the answer is written). */
  onRefused?: (req: import('node:http').IncomingMessage | import('node:http2').Http2ServerRequest, res: import('node:http').ServerResponse | import('node:http2').Http2ServerResponse) => void;
}

export interface AttachStats {
  /** Requests answered 503 because admission had closed. */
  refused: number;
  /** Readiness probes answered 503. */
  probesNotReady: number;
  /** Connections destroyed when the drain ended. */
  connectionsDestroyed: number;
  /** Requests still in flight, or still arriving, on those connections. */
  requestsAborted: number;
}

export interface Attachment<S> {
  readonly server: S;
  readonly stats: AttachStats;
  /** Connections open now. */
  readonly connections: number;
  /** Stops draining this server. */
  detach(): void;
}

/** The drain policy of one long-lived kind. */
export interface LongLivedPolicy {
  /** How long its streams may stay open once told to end, in ms. */
  grace: number;
  /** When they are told: 'quiescing' (admission closed, default) or 'draining'. */
  notifyAt?: 'draining' | 'quiescing';
}

/** Options of attachSocketIo(). */
export interface SocketIoOptions {
  /** The long-lived kind of its connections (default 'socket.io'). */
  kind?: string;
  /**
   * true (default): at 'streamsEnding' each engine.io connection is closed; socket.io-client
   * sees 'disconnect' with "transport close" and reconnects by itself (to the next
   * instance). false: a DISCONNECT packet; the client sees "io server disconnect" and
   * does not reconnect unless the app calls connect().
   */
  reconnect?: boolean;
}

/** The integration of a ws WebSocketServer or a socket.io Server. */
export interface LongLivedAttachment {
  /** The long-lived kind its connections are. */
  readonly kind: string;
  /** Connections open now (accepted since it was attached). */
  readonly connections: number;
  /** Stops following the engine's events. */
  detach(): void;
}

/** A server-sent event stream made by eventStream(). */
export interface EventStream {
  readonly kind: string;
  /** Whether it has ended (end(), the engine, or the client). */
  readonly ended: boolean;
  /** Sends one event; false once ended (or when the socket's buffer is full). */
  send(data: string, options?: { event?: string; id?: string }): boolean;
  /** Ends it: the retry hint (when given), then the end of the response. */
  end(): void;
}

export type AttachableServer = HttpServer | HttpsServer | Http2Server | Http2SecureServer;

export interface ShutdownEvents {
  draining: [];
  quiescing: [];
  closing: [];
  done: [report: Report];
  /** The long-lived work of this kind is to end now (its policy's milestone). */
  streamsEnding: [kind: string];
  /** The grace of this kind ran out: `count` of its guards were cut (counted as aborted). */
  streamsCut: [cut: { kind: string; count: number }];
  /**
   * Stop listening: close the listening sockets (attach() does it for its servers). When
   * admission closes, unless a listener hold of the core keeps them open (attachSocketIo()
   * holds one per polling client), and at the latest when the drain ends. Once.
   */
  unlisten: [];
}

/** The graceful-shutdown engine (the Rust core, through an N-API addon). */
/** What pm2() learned from PM2's environment. */
export interface Pm2Info {
  id: string;
  instance: string | null;
  execMode: string | null;
  /** ms; from kill_timeout, PM2_KILL_TIMEOUT, or PM2's default 1600 (killTimeoutSource 'default'). */
  killTimeout: number;
  killTimeoutSource: 'kill_timeout' | 'PM2_KILL_TIMEOUT' | 'default';
  /** Whether drain_delay + drain_timeout + close_timeout fit in killTimeout (the core's check). */
  fits: boolean;
}

/** The core's progress snapshot (Shutdown#progress(), the 'progress' event). */
export interface Progress {
  /** The core's progress line ("draining (admission closed): 2 in flight (http 1), ..."). */
  line: string;
  phase: Phase;
  accepting: boolean;
  inFlight: number;
  inFlightByKind: Record<string, number>;
  connections: number;
  aborted: number;
  /** Until the current deadline (announce window, drain, hooks' budget); null while running or done. */
  timeLeftMs: number | null;
  timeline: { milestone: string; atMs: number }[];
}

export declare class Shutdown extends EventEmitter {
  /** What the engine is doing now, from the core (for a metrics endpoint). */
  progress(): Progress;
  /** Throws TypeError / RangeError naming the bad option: `err.option` (the JavaScript name) and `err.field` (the core's). */
  constructor(options?: ShutdownOptions);

  readonly phase: Phase;
  /** Readiness: true only while running. */
  readonly ready: boolean;
  /** Whether new guards are admitted (running, and the announce window). */
  readonly accepting: boolean;
  /** Whether the listening sockets should stay open: false from the 'unlisten' event on. */
  readonly shouldListen: boolean;
  /** Whether the cancellation signal has fired. */
  readonly cancelled: boolean;
  /** Guards in flight now. */
  readonly inFlight: number;
  /** Time since this engine was built, on its clock, in ms. */
  readonly elapsed: number;
  /** The final report once done, else null. */
  readonly report: Report | null;
  /** Aborted when the drain is cut short (deadline or escalation), at the latest when done. */
  readonly signal: AbortSignal;

  /** Resolves when the drain starts. */
  readonly draining: Promise<void>;
  /** Resolves when admission closes. */
  readonly quiescing: Promise<void>;
  /** Resolves when cleanup hooks start. */
  readonly closing: Promise<void>;
  /** Resolves with the report when done. */
  readonly done: Promise<Report>;

  /** Whether a keep-alive connection should close after its current response. */
  shouldClose(): boolean;
  /**
   * A listener hold: 'unlisten' (attach() closing its listeners) waits until the returned
   * function is called (idempotent), or the drain ends. null once 'unlisten' was said.
   */
  holdListener(): (() => void) | null;
  /**
   * Starts the shutdown, or escalates. A string is a manual reason; an Error a fatal one,
   * which ends with a non-zero exit code (forcedExitCode) even after a clean drain.
   */
  trigger(reason?: string | Reason | Error): this;
  /** Reports a readiness probe answered "not ready" (the adaptive announce window). */
  readinessProbed(): void;
  /**
   * Listens for the configured signals with process.on; returns a function that stops.
   * 1st signal: drain; 2nd: force; 3rd: exit at once with forcedExitCode (as configured).
   * A signal after Done exits the process with the report's own exit_code, unless it
   * exits by itself within 250 ms; with terminateAt: null it is only logged.
   */
  listenSignals(): () => void;

  /** systemd Type=notify from now on (STOPPING=1, STATUS, EXTEND_TIMEOUT_USEC); whether NOTIFY_SOCKET is set. */
  notifySystemd(): boolean;
  /** READY=1 to systemd, and 'ready' to PM2 after pm2(); whether either was sent (not once stopping). */
  notifyReady(): boolean;
  /**
   * PM2 support when running under PM2 (pm_id set, an IPC channel), else null: the IPC
   * message 'shutdown' triggers the drain, 'ready' is sent once every attached server
   * listens (readyOnListen, default true) or at notifyReady(), and a warning is emitted
   * (code LIBSHUTDOWN_PM2_KILL_TIMEOUT) when the phase budgets do not fit in kill_timeout.
   */
  pm2(options?: { readyOnListen?: boolean; env?: Record<string, string | undefined> }): Pm2Info | null;

  /** Admits one unit of work, or null once admission has closed. */
  guard(kind?: string): Guard | null;
  /** Tracks a background job; throws (code ERR_SHUTDOWN_CLOSED) once admission has closed. */
  track<T>(job: Promise<T> | PromiseLike<T> | ((signal: AbortSignal) => T | PromiseLike<T>), options?: TrackOptions): Promise<Awaited<T>>;
  /** Registers a cleanup hook; a throw is recorded as "panicked", a rejection as "failed". */
  onClose(name: string, fn: () => void | PromiseLike<unknown>, options?: HookOptions): this;

  /** Moves a virtual clock forward (manualClock only). */
  advance(ms: number): void;
  /** Moves a virtual clock forward, letting async hooks settle at each deadline. */
  advanceAsync(ms: number): Promise<void>;
  /** When a milestone was reached, in ms since the engine was built, or null. */
  reachedAt(milestone: Milestone): number | null;

  /** Drains an http, https or http2 server with this shutdown. */
  attach<S extends AttachableServer>(server: S, options?: AttachOptions): Attachment<S>;
  /** Whether the long-lived work of `kind` was told to end ('streamsEnding'). */
  isEnding(kind: string): boolean;
  /** Whether the grace of long-lived `kind` ran out ('streamsCut'). */
  isCut(kind: string): boolean;
  /** Drains a `ws` WebSocketServer: close 1001 at 'streamsEnding', terminate at 'streamsCut'. */
  attachWebSocketServer(wss: import('node:events').EventEmitter & { clients: Set<unknown> }, options?: { kind?: string }): LongLivedAttachment;
  /** Drains a socket.io Server: at 'streamsEnding' clients are told to end ("transport close", they reconnect; reconnect: false, "io server disconnect"), each once the acks it is owed are sent. */
  attachSocketIo(io: { engine: unknown; of(name: string): unknown }, options?: SocketIoOptions): LongLivedAttachment;
  /** Makes `res` an SSE stream holding a long-lived guard of `kind` (default 'sse'). */
  eventStream(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, options?: { kind?: string; retry?: number }): EventStream;

  on<E extends keyof ShutdownEvents>(event: E, listener: (...args: ShutdownEvents[E]) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once<E extends keyof ShutdownEvents>(event: E, listener: (...args: ShutdownEvents[E]) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off<E extends keyof ShutdownEvents>(event: E, listener: (...args: ShutdownEvents[E]) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** The name of a signal number, as the core writes it in reports (15 -> "SIGTERM"). */
export declare function signalName(signal: number): string;
