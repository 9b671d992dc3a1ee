'use strict';
// PM2 (https://pm2.keymetrics.io): what PM2 tells a process and what it expects of it,
// translated to the engine. Nothing here decides a budget: whether the phase budgets
// fit in PM2's kill_timeout is the core's grace-period check, asked with kill_timeout as
// the grace period (a refusal becomes a warning here, never an error).
//
// What PM2 (checked against pm2 7.0.4, lib/ProcessContainer.js, lib/God.js,
// lib/God/Methods.js, lib/God/Reload.js) does, and what this file does with it:
//
// - PM2 copies the app's whole pm2_env into process.env: `pm_id` (always),
//   `NODE_APP_INSTANCE`, `exec_mode` ('cluster_mode' | 'fork_mode'), and `kill_timeout`,
//   `listen_timeout`, `wait_ready`, `shutdown_with_message` only when the app sets them.
//   A process is under PM2 when `pm_id` is set and it has an IPC channel (process.send).
// - Stopping a process (stop, restart, the old worker of a reload): the kill_signal
//   (default SIGINT: listenSignals() listens to it by default), or with
//   `shutdown_with_message: true` (or PM2_KILL_USE_MESSAGE, and on Windows where signals
//   do not exist) the IPC message 'shutdown' instead (only to a numeric pm_id: `pm2
//   reload` parks the old worker as _old_<id> and so signals it). Either way,
//   kill_timeout ms later (default 1600, or the daemon's PM2_KILL_TIMEOUT) PM2 sends SIGKILL.
//   Here: the message 'shutdown' triggers the drain (reason "pm2: shutdown message").
// - Readiness with `wait_ready: true`: PM2 waits for process.send('ready') (at most
//   listen_timeout ms, default 3000, then goes on anyway) before it counts the new
//   process as up, and during a reload, before it stops the old one. Here: 'ready' is
//   sent once every attach()ed server is listening (readyOnListen, the default) or at
//   notifyReady(), once, and never once the shutdown has begun.

// PM2's own default kill_timeout (constants.js KILL_TIMEOUT), in ms.
const PM2_DEFAULT_KILL_TIMEOUT_MS = 1600;
const OPTIONS = new Set(['readyOnListen', 'env']);

const state = new WeakMap(); // Shutdown -> { servers, on, ready, readyOnListen, info }

function stateOf(sd) {
  let st = state.get(sd);
  if (st === undefined) {
    st = { servers: new Set(), on: false, ready: false, readyOnListen: true, info: null };
    state.set(sd, st);
  }
  return st;
}

/** Whether this process runs under PM2 (pm_id in `env`, an IPC channel to talk to). */
function underPm2(env = process.env) {
  return env.pm_id !== undefined && env.pm_id !== '' && typeof process.send === 'function';
}

/**
 * PM2's kill_timeout as this process can know it: `{ ms, source }`, source
 * 'kill_timeout' (the app's setting), 'PM2_KILL_TIMEOUT' (the daemon's variable, when it
 * reached the process) or 'default' (PM2's 1600 ms, assumed: the daemon's
 * PM2_KILL_TIMEOUT may differ and is invisible here).
 */
function killTimeoutOf(env = process.env) {
  for (const source of ['kill_timeout', 'PM2_KILL_TIMEOUT']) {
    const v = env[source];
    if (v === undefined || v === '') continue;
    const ms = Number(v);
    if (Number.isFinite(ms) && ms > 0) return { ms, source };
  }
  return { ms: PM2_DEFAULT_KILL_TIMEOUT_MS, source: 'default' };
}

function typeError(option, message) {
  const e = new TypeError(`libshutdown: pm2(): option ${option} ${message}`);
  e.code = 'ERR_INVALID_ARG_TYPE';
  e.option = option;
  return e;
}

/**
 * sd.pm2(options): PM2 support, when the process runs under PM2 (else nothing, and
 * null). `coreOptions` is [pairs, env] as the engine was built with; `validate` the
 * addon's validateOptions.
 */
function pm2(sd, validate, coreOptions, options) {
  options = options ?? {};
  if (typeof options !== 'object') throw typeError('options', 'must be an object');
  for (const k of Object.keys(options)) {
    if (!OPTIONS.has(k)) throw typeError(k, `is not an option of pm2() (known: ${[...OPTIONS].join(', ')})`);
  }
  const readyOnListen = options.readyOnListen ?? true;
  if (typeof readyOnListen !== 'boolean') throw typeError('readyOnListen', 'must be a boolean');
  const env = options.env ?? process.env;
  if (env === null || typeof env !== 'object') throw typeError('env', 'must be an object');

  const st = stateOf(sd);
  if (st.on) return st.info; // idempotent: one message listener, one warning
  if (!underPm2(env)) return null;
  st.on = true;
  st.readyOnListen = readyOnListen;

  const killTimeout = killTimeoutOf(env);
  // The core's own check: do drain_delay + drain_timeout + close_timeout fit in a grace
  // period of kill_timeout? Only that answer is used (the engine keeps its own grace period).
  const [pairs, fromEnv] = coreOptions;
  const bad = validate([...pairs.filter(([n]) => n !== 'grace_period_ms'), ['grace_period_ms', killTimeout.ms]], fromEnv);
  const fits = !(bad && bad.field === 'grace_period');
  st.info = {
    id: env.pm_id,
    instance: env.NODE_APP_INSTANCE ?? null,
    execMode: env.exec_mode ?? null,
    killTimeout: killTimeout.ms,
    killTimeoutSource: killTimeout.source,
    fits,
  };
  if (!fits) {
    const set = killTimeout.source === 'default' ? "PM2's default: kill_timeout is not set" : `from ${killTimeout.source}`;
    process.emitWarning(
      `libshutdown: PM2 will SIGKILL this process ${killTimeout.ms} ms after it asks it to stop (kill_timeout, ${set}), ` +
        `before the drain can end: ${bad.reason}. Set kill_timeout in the ecosystem file above the phase budgets ` +
        '(see the PM2 section of libshutdown\'s README).',
      { code: 'LIBSHUTDOWN_PM2_KILL_TIMEOUT' },
    );
  }

  // 'shutdown' instead of a signal (shutdown_with_message, Windows, graceful reload).
  const onMessage = (msg) => {
    if (msg === 'shutdown') sd.trigger('pm2: shutdown message');
  };
  process.on('message', onMessage);
  // The listener holds the IPC channel (and so the loop) open: not past Done.
  sd.done.then(() => process.removeListener('message', onMessage));

  if (readyOnListen) for (const server of st.servers) follow(sd, st, server);
  return st.info;
}

// Sends 'ready' once every attached server listens.
function follow(sd, st, server) {
  if (server.listening) maybeReady(sd, st);
  else server.once('listening', () => maybeReady(sd, st));
}

function maybeReady(sd, st) {
  if (st.ready || !st.readyOnListen || st.servers.size === 0) return;
  for (const s of st.servers) if (!s.listening) return;
  notifyReady(sd);
}

/** attach(server) was called: with readyOnListen, 'ready' waits for it to listen too. */
function attached(sd, server) {
  const st = stateOf(sd);
  st.servers.add(server);
  if (st.on && st.readyOnListen) follow(sd, st, server);
}

/** process.send('ready') under pm2(), once, while running: whether it was sent. */
function notifyReady(sd) {
  const st = state.get(sd);
  if (st === undefined || !st.on || st.ready || sd.phase !== 'running') return false;
  st.ready = true;
  try {
    process.send('ready');
  } catch {
    return false; // the channel closed: PM2 is gone
  }
  return true;
}

module.exports = { pm2, attached, notifyReady, underPm2, killTimeoutOf, PM2_DEFAULT_KILL_TIMEOUT_MS };
