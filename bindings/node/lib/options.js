'use strict';
// The options of Shutdown: the JavaScript names mapped to the core's schema (its
// configuration, judged by the core through the addon), this layer's own options, and
// the core's refusals back as errors naming the JavaScript option.

// ----- errors -----------------------------------------------------------------------

function typeError(option, message) {
  const e = new TypeError(`libshutdown: option ${option} ${message}`);
  e.code = 'ERR_INVALID_ARG_TYPE';
  e.option = option;
  return e;
}

function rangeError(option, message) {
  const e = new RangeError(`libshutdown: option ${option} ${message}`);
  e.code = 'ERR_OUT_OF_RANGE';
  e.option = option;
  return e;
}

// The options that are the core's configuration: JavaScript name -> the core's schema
// name (libshutdown::OPTIONS; durations in ms on both sides). The one table both ways:
// options go to the core by it, and the core's refusals come back by it (the schema
// option it blames, else its field: a builder's field is the schema name without `_ms`).
// `preset` first: the pairs are applied in this order, so the others change the preset.
const CORE_OPTIONS = {
  preset: 'preset',
  drainDelay: 'drain_delay_ms',
  announceProbes: 'announce_probes',
  announceSettle: 'announce_settle_ms',
  drainTimeout: 'drain_timeout_ms',
  closeTimeout: 'close_timeout_ms',
  gracePeriod: 'grace_period_ms',
  forceAt: 'force_at',
  terminateAt: 'terminate_at',
  sameSignalWindow: 'same_signal_window_ms',
  forcedExitCode: 'forced_exit_code',
  closeStrategy: 'close_strategy',
  signals: 'signals',
  connectionGrace: 'connection_grace_ms',
  longLived: 'long_lived',
  progressInterval: 'progress_interval_ms',
  systemdNotify: 'systemd_notify',
};
// The options of this layer (booleans, checked here): not the core's configuration.
const JS_OPTIONS = ['exitOnDone', 'manualClock', 'env', 'logger'];

const BY_SCHEMA_NAME = new Map(Object.entries(CORE_OPTIONS).map(([js, core]) => [core, js]));

/** The JavaScript option of a core schema name or builder field, or undefined. */
function optionOf(name) {
  if (name === null || name === undefined) return undefined;
  return BY_SCHEMA_NAME.get(name) ?? BY_SCHEMA_NAME.get(`${name}_ms`);
}

/**
 * The core's refusal (the addon's NativeConfigError) as an error naming the JavaScript
 * option (`option`) and the core's field (`field`: the schema name, the builder's field
 * for a whole configuration refused, or the SHUTDOWN_* variable): a TypeError for a value
 * of a type the option does not take, else a RangeError.
 */
function configError(bad) {
  const option = optionOf(bad.option) ?? optionOf(bad.field) ?? bad.field;
  const Ctor = bad.wrongType ? TypeError : RangeError;
  const e = new Ctor(`libshutdown: invalid option ${option} (${bad.field}): ${bad.reason}`);
  e.code = bad.wrongType ? 'ERR_INVALID_ARG_TYPE' : 'ERR_SHUTDOWN_CONFIG';
  e.option = option;
  e.field = bad.field;
  return e;
}

// ----- options ----------------------------------------------------------------------

const OPTIONS = new Set([...Object.keys(CORE_OPTIONS), ...JS_OPTIONS]);

// A hook's timeout (onClose), which is not configuration of the core's schema.
function millis(options, name) {
  const v = options[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw typeError(name, `must be a number of milliseconds, got ${typeof v}`);
  if (!Number.isFinite(v) || v < 0) throw rangeError(name, `must be a finite number of milliseconds >= 0, got ${v}`);
  return v;
}

function bool(options, name) {
  const v = options[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw typeError(name, `must be a boolean, got ${typeof v}`);
  return v;
}

// longLived: { [kind]: { grace: ms, notifyAt } } in the shape of the core's schema
// (a list of [kind, grace_ms, notify_at], in order). Only the shape is this layer's:
// unknown keys are refused here, the values are judged by the core.
function longLivedList(v) {
  if (typeof v === 'boolean') return v; // a value of no type of the schema: refused as such
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw typeError('longLived', 'must be an object { [kind]: { grace, notifyAt } }');
  }
  return Object.entries(v).map(([kind, p]) => {
    if (p === null || typeof p !== 'object') return [kind, p];
    for (const k of Object.keys(p)) {
      if (k !== 'grace' && k !== 'notifyAt') throw typeError(`longLived.${kind}.${k}`, 'is not an option of a long-lived kind (known: grace, notifyAt)');
    }
    return [kind, p.grace, p.notifyAt ?? null];
  });
}

// Options of the core's schema whose JavaScript shape differs from the schema's.
const SHAPES = { longLived: longLivedList };

/**
 * The JavaScript options as the addon takes them: `[schemaName, value]` pairs for the
 * core's configuration (judged there, every value as it is: nothing checked or
 * defaulted here), this layer's own options apart. `env: true` then applies the
 * SHUTDOWN_* environment variables over them (the core's Builder::env).
 */
function normalize(options, validate) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw typeError('options', `must be an object, got ${typeof options}`);
  for (const k of Object.keys(options)) {
    if (!OPTIONS.has(k)) throw typeError(k, `is not an option of Shutdown (known: ${[...OPTIONS].join(', ')})`);
  }
  const core = [];
  for (const [js, name] of Object.entries(CORE_OPTIONS)) {
    if (options[js] !== undefined) core.push([name, SHAPES[js] ? SHAPES[js](options[js]) : options[js]]);
  }
  const manualClock = bool(options, 'manualClock') === true;
  const env = bool(options, 'env') === true;
  const exitOnDone = bool(options, 'exitOnDone');
  const logger = loggerOf(options.logger);
  const bad = validate(core, env);
  if (bad) throw configError(bad);
  // A virtual clock is a simulation: it never ends the process unless asked to.
  return { core, manualClock, env, logger, exitOnDone: exitOnDone ?? !manualClock };
}

// logger: a function (line) or an object with info(line) (console, pino, winston):
// where the drain's progress lines go. null: nowhere.
function loggerOf(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'function') return v;
  if (typeof v === 'object' && typeof v.info === 'function') return (line) => v.info(line);
  throw typeError('logger', 'must be a function (line) or an object with an info(line) method');
}

module.exports = { normalize, millis, typeError, rangeError };
