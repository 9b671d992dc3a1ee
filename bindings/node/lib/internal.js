'use strict';
// What the integrations (./attach.js, ./long_lived.js, ./pm2.js) reach of a Shutdown,
// and nothing more: one object per engine, filled by ../index.js, stored on the
// instance under a symbol (not enumerable, not a name a user would type), so a
// Shutdown shows only its documented API. The tests drive the engine through it too
// (test/conformance.test.js).
//
// Members (each filled by index.js; the integrations only read the functions and
// state, and push to / remove from the lists):
//
//   native            the addon's engine (NativeShutdown): phase, ready, connReading,
//                     connDismissed, requestUpgrade, connRequestFn(kind), readinessProbed, ...
//   conn              the per-connection path, plain functions bound to the engine:
//                     { open() -> id, close(id) -> pending, request(id) -> slot | -1,
//                       keepAlive(slot) -> bool, finish(slot) -> bits }
//   releaseSlot(slot) releases a guard slot; returns whether events are pending
//   drain()           reads the core's queued events and acts on them (call after any
//                     native call that says events are pending); re-entrant calls return
//   running           true until the first trigger is about to reach the core
//   reached           Map: milestone name -> ms on the engine's clock, once reached
//   checkKind(kind)   throws unless `kind` is a label the core accepts (interned once)
//   dismissHandlers   functions (id) called with each connection id the core dismisses
//   beforeTrigger     functions called just before the first trigger, engine still running
//   unlistenHandlers  functions called once when the core says unlisten (event 13)
//   unlistenedAt      ms on the engine's clock of that unlisten; null until then
//   holdListener()    takes a listener hold of the core; returns its release (idempotent)
//   follow(kind, { ending, cut })  follows one stream of long-lived `kind`; returns unfollow
//   coreOptions       [core options, env]: pm2()'s check against kill_timeout

const kInternal = Symbol('libshutdown.internal');

/** The internal interface of `sd` (a Shutdown); throws for anything else. */
function internal(sd) {
  const i = sd?.[kInternal];
  if (i === undefined) {
    const e = new TypeError('libshutdown: not a Shutdown');
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  return i;
}

/** Gives `sd` its internal interface `i` (once, from the Shutdown's constructor). */
function install(sd, i) {
  Object.defineProperty(sd, kInternal, { value: i, enumerable: false, writable: false, configurable: false });
}

module.exports = { internal, install, kInternal };
