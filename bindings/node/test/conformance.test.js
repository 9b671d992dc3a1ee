'use strict';
// The conformance scenarios (tests/scenarios/*.json, format in tests/scenarios/README.md)
// run through the addon: same trace, same report as the Rust core and the C ABI.

const test = require('node:test');
const assert = require('node:assert/strict');
const { internal } = require('../lib/internal.js');
const fs = require('node:fs');
const path = require('node:path');

const { Shutdown } = require('..');

const DIR = path.join(__dirname, '../../../tests/scenarios');
const FAR_FUTURE_MS = 3 * 24 * 3600 * 1000;
const MILESTONES = ['draining', 'quiescing', 'closing', 'done'];

// Lets promise reactions (async hook results) settle before the clock moves.
const settle = () => new Promise((resolve) => setImmediate(resolve));

function optionsOf(config) {
  const o = { manualClock: true };
  const map = {
    preset: 'preset', // applied first by the options' order, whatever the key order here
    drain_delay_ms: 'drainDelay',
    announce_probes: 'announceProbes',
    announce_settle_ms: 'announceSettle',
    drain_timeout_ms: 'drainTimeout',
    close_timeout_ms: 'closeTimeout',
    grace_period_ms: 'gracePeriod',
    force_at: 'forceAt',
    terminate_at: 'terminateAt',
    same_signal_window_ms: 'sameSignalWindow',
    forced_exit_code: 'forcedExitCode',
    close_strategy: 'closeStrategy',
    connection_grace_ms: 'connectionGrace',
  };
  for (const [k, v] of Object.entries(config)) {
    if (k === 'long_lived') {
      // [{ kind, grace_ms, notify_at }] -> { [kind]: { grace, notifyAt } }, in order.
      o.longLived = {};
      for (const l of v) o.longLived[l.kind] = l.notify_at === undefined ? { grace: l.grace_ms } : { grace: l.grace_ms, notifyAt: l.notify_at };
      continue;
    }
    if (!(k in map)) throw new Error(`unknown config field ${k}`);
    o[map[k]] = v; // null stays null: none
  }
  return o;
}

// JSON equality with numbers compared as numbers, within 1e-6 (as the Rust runner).
function jsonEq(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) < 1e-6;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEq(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEq(a[k], b[k]));
  }
  return a === b;
}

function hookFn(spec, manual) {
  const { name, behavior } = spec;
  switch (behavior) {
    case 'ok':
      return () => {};
    case 'fail':
      return () => Promise.reject(new Error(`${name} failed`));
    case 'panic':
      return () => {
        throw new Error(`${name} panicked`);
      };
    case 'hang':
      return () => new Promise(() => {});
    case 'manual':
      return () =>
        new Promise((resolve, reject) => {
          manual.set(name, (ok) => (ok ? resolve() : reject(new Error(`${name} failed`))));
        });
    default:
      throw new Error(`unknown hook behavior ${behavior}`);
  }
}

async function run(s) {
  const failures = [];
  let sd;
  try {
    sd = new Shutdown(optionsOf(s.config));
  } catch (e) {
    if (s.expect.config_error !== undefined && s.expect.config_error !== null) {
      assert.ok(e instanceof RangeError, `${s.name}: expected a RangeError, got ${e}`);
      assert.equal(e.field, s.expect.config_error, `${s.name}: ${e.message}`);
      assert.match(e.message, new RegExp(s.expect.config_error));
      return;
    }
    throw e;
  }
  assert.ok(!s.expect.config_error, `${s.name}: build succeeded, expected an error naming ${s.expect.config_error}`);

  const trace = [];
  for (const m of MILESTONES) sd.on(m, () => trace.push({ milestone: m, at_ms: sd.reachedAt(m) }));
  const manual = new Map();
  for (const h of s.hooks ?? []) {
    const opts = { order: h.order ?? 0 };
    if (h.timeout_ms !== undefined && h.timeout_ms !== null) opts.timeout = h.timeout_ms;
    sd.onClose(h.name, hookFn(h, manual), opts);
  }

  const guards = new Map();
  // Connections through the addon's connection API (what attach() uses): name <-> core
  // id, requests by name (their slots), the dismissals in the order they were reported.
  const I = internal(sd);
  const nat = I.native;
  const C = I.conn;
  const connIds = new Map();
  const connNames = new Map();
  const requests = new Map();
  const requestFns = new Map();
  const dismissed = [];
  const holds = new Map(); // listener holds by name: their slots
  I.dismissHandlers.push((id) => dismissed.push(connNames.get(id) ?? `#${id}`));
  const requestFn = (kind) => {
    if (kind === undefined || kind === null) return C.request;
    if (!requestFns.has(kind)) requestFns.set(kind, nat.connRequestFn(kind));
    return requestFns.get(kind);
  };
  let now = 0;
  for (const [i, step] of (s.steps ?? []).entries()) {
    assert.ok(step.at_ms >= now, `${s.name}: step ${i} goes back in time`);
    if (step.at_ms > now) {
      await sd.advanceAsync(step.at_ms - now);
      now = step.at_ms;
    }
    const where = `step ${i} (${step.op}) at ${now} ms`;
    switch (step.op) {
      case 'guard': {
        const g = sd.guard(step.kind ?? undefined);
        const want = step.admitted ?? true;
        if ((g !== null) !== want) failures.push(`${where}: guard ${step.id}: admitted ${g !== null}, expected ${want}`);
        if (g !== null) guards.set(step.id, g);
        break;
      }
      case 'child':
        guards.set(step.id, guards.get(step.parent).child());
        break;
      case 'release':
        guards.get(step.id).release();
        break;
      case 'trigger':
        sd.trigger(step.reason);
        break;
      case 'probe':
        sd.readinessProbed();
        break;
      case 'connect': {
        let id = C.open();
        connIds.set(step.conn, Math.abs(id));
        connNames.set(Math.abs(id), step.conn);
        // Accepted once the drain is over: it comes back dismissed, told to no callback.
        if (id < 0) dismissed.push(step.conn);
        id = Math.abs(id);
        break;
      }
      case 'reading':
        if (nat.connReading(connIds.get(step.conn))) I.drain();
        break;
      case 'request': {
        const slot = requestFn(step.kind)(connIds.get(step.conn));
        const want = step.admitted ?? true;
        if ((slot !== -1) !== want) failures.push(`${where}: request ${step.id}: admitted ${slot !== -1}, expected ${want}`);
        if (slot !== -1) requests.set(step.id, slot);
        break;
      }
      case 'keep_alive': {
        const got = C.keepAlive(requests.get(step.id));
        if (step.expect !== undefined && got !== step.expect) failures.push(`${where}: keep_alive ${step.id} is ${got}, expected ${step.expect}`);
        break;
      }
      case 'finish': {
        const bits = C.finish(requests.get(step.id));
        requests.delete(step.id);
        const keepOpen = (bits & 1) !== 0;
        if (step.keep_open !== undefined && keepOpen !== step.keep_open) {
          failures.push(`${where}: finish ${step.id}: keep_open ${keepOpen}, expected ${step.keep_open}`);
        }
        if (bits & 2) I.drain();
        break;
      }
      case 'upgrade': {
        const slot = nat.requestUpgrade(requests.get(step.id), step.kind ?? null);
        requests.delete(step.id);
        guards.set(step.guard, { release: () => I.releaseSlot(slot) && I.drain() });
        I.drain();
        break;
      }
      case 'request_child': {
        const slot = nat.requestChild(requests.get(step.id));
        assert.ok(slot !== -1, `${where}: request ${step.id} is not in flight`);
        guards.set(step.guard, { release: () => I.releaseSlot(slot) && I.drain() });
        break;
      }
      case 'disconnect': {
        const id = connIds.get(step.conn);
        if (C.close(id)) I.drain();
        break;
      }
      case 'hold_listener': {
        const slot = nat.holdListener();
        const want = step.held ?? true;
        if ((slot !== -1) !== want) failures.push(`${where}: listener hold ${step.hold}: held ${slot !== -1}, expected ${want}`);
        if (slot !== -1) holds.set(step.hold, slot);
        break;
      }
      case 'release_listener':
        if (nat.releaseListener(holds.get(step.hold))) I.drain();
        holds.delete(step.hold);
        break;
      case 'finish_hook': {
        const finish = manual.get(step.name);
        assert.ok(finish, `${where}: hook ${step.name} has not started`);
        finish(step.ok);
        break;
      }
      case 'expect': {
        const got = {
          phase: sd.phase,
          ready: sd.ready,
          accepting: sd.accepting,
          should_close: sd.shouldClose(),
          cancelled: sd.cancelled,
          in_flight: sd.inFlight,
          listening: sd.shouldListen,
        };
        for (const k of Object.keys(got)) {
          if (step[k] !== undefined && step[k] !== got[k]) failures.push(`${where}: ${k} is ${got[k]}, expected ${step[k]}`);
        }
        if (step.dismissed !== undefined && !jsonEq(dismissed, step.dismissed)) {
          failures.push(`${where}: dismissed ${JSON.stringify(dismissed)}, expected ${JSON.stringify(step.dismissed)}`);
        }
        got.dismissed = dismissed;
        for (const k of Object.keys(step)) {
          if (k !== 'op' && k !== 'at_ms' && !(k in got)) throw new Error(`${where}: unknown expectation ${k}`);
        }
        break;
      }
      default:
        throw new Error(`${where}: unknown op`);
    }
    await settle();
  }
  const until = s.run_until_ms ?? FAR_FUTURE_MS;
  if (until > now) {
    await sd.advanceAsync(until - now);
  }

  const want = s.expect.trace ?? [];
  const traceOk =
    trace.length === want.length &&
    trace.every((t, i) => t.milestone === want[i].milestone && Math.abs(t.at_ms - want[i].at_ms) < 1e-6);
  if (!traceOk) {
    const show = (t) => t.map((e) => `${e.milestone}@${e.at_ms}`).join(' ');
    failures.push(`trace:\n  got      ${show(trace)}\n  expected ${show(want)}`);
  }
  if (s.expect.unlisten_at_ms !== undefined && s.expect.unlisten_at_ms !== null) {
    const got = I.unlistenedAt;
    if (got === null || Math.abs(got - s.expect.unlisten_at_ms) >= 1e-6) {
      failures.push(`unlisten at ${got} ms, expected ${s.expect.unlisten_at_ms} ms`);
    }
  }
  if (s.expect.report) {
    if (sd.report === null) failures.push('no report (the engine is not done)');
    else if (!jsonEq(sd.report, s.expect.report)) {
      failures.push(`report:\n  got      ${JSON.stringify(sd.report)}\n  expected ${JSON.stringify(s.expect.report)}`);
    }
    // The done promise carries the same report.
    if (sd.report !== null) assert.deepEqual(await sd.done, sd.report);
  }
  assert.deepEqual(failures, [], `${s.name}:\n${failures.join('\n')}`);
}

const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort() : [];

test('scenarios are present', () => {
  assert.ok(files.length > 0, `no scenario in ${DIR}`);
});

for (const f of files) {
  const s = JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8'));
  const skip = (s.skip ?? []).includes('node');
  test(`scenario ${f}: ${s.name}`, { skip: skip && 'skipped for node by the scenario' }, () => run(s));
}
