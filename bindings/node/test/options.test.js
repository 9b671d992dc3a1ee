'use strict';
// The options are the core's schema (libshutdown::OPTIONS): index.js maps its names to
// the schema's by one table, the addon converts the values by their JavaScript type
// only, the core judges them. Refusals name the JavaScript option and the core's field.

const test = require('node:test');
const assert = require('node:assert/strict');
const { internal } = require('../lib/internal.js');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { inspect } = require('node:util');

const { Shutdown } = require('..');
const native = require('../lib/native.js').load();

function refused(opts, Ctor, option, field) {
  assert.throws(
    () => new Shutdown({ manualClock: true, ...opts }),
    (e) => {
      assert.ok(e instanceof Ctor, `${inspect(opts)}: ${e}`);
      assert.equal(e.option, option, `${inspect(opts)}: ${e.message}`);
      assert.equal(e.field, field, `${inspect(opts)}: ${e.message}`);
      assert.equal(e.code, Ctor === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_SHUTDOWN_CONFIG');
      assert.ok(e.message.startsWith(`libshutdown: invalid option ${option} (${field}): `), e.message);
      return true;
    },
  );
}

test('every option of the core schema has its JavaScript name', () => {
  const names = native.optionNames().map(([name]) => name);
  assert.ok(names.length >= 13);
  for (const name of names) {
    // The JavaScript name: the schema's without `_ms`, in camel case (the units stay ms).
    const option = name.replace(/_ms$/, '').replace(/_(.)/g, (_, c) => c.toUpperCase());
    // It reaches the core: a value of no type is refused there under the schema's name.
    refused({ [option]: option === 'systemdNotify' ? 'on' : true }, TypeError, option, name);
  }
});

test('a value of the wrong type names the option and the field, for each kind of option', () => {
  // Millis, OptionalMillis, Count, OptionalCount, Integer, Word, Signals.
  refused({ drainTimeout: '10s' }, TypeError, 'drainTimeout', 'drain_timeout_ms');
  refused({ drainTimeout: null }, TypeError, 'drainTimeout', 'drain_timeout_ms');
  refused({ gracePeriod: 'none' }, TypeError, 'gracePeriod', 'grace_period_ms');
  refused({ announceProbes: '2' }, TypeError, 'announceProbes', 'announce_probes');
  refused({ forceAt: 'twice' }, TypeError, 'forceAt', 'force_at');
  refused({ forcedExitCode: '3' }, TypeError, 'forcedExitCode', 'forced_exit_code');
  refused({ closeStrategy: ['gradual'] }, TypeError, 'closeStrategy', 'close_strategy');
  refused({ signals: 'SIGTERM' }, TypeError, 'signals', 'signals');
  // Types that have no value in the schema at all: refused by the addon, named the same way.
  refused({ drainTimeout: true }, TypeError, 'drainTimeout', 'drain_timeout_ms');
  refused({ gracePeriod: {} }, TypeError, 'gracePeriod', 'grace_period_ms');
  refused({ terminateAt: () => 3 }, TypeError, 'terminateAt', 'terminate_at');
  refused({ signals: ['SIGTERM', true] }, TypeError, 'signals', 'signals');
  refused({ signals: [undefined] }, TypeError, 'signals', 'signals');
  refused({ drainTimeout: 10n }, TypeError, 'drainTimeout', 'drain_timeout_ms');
  // undefined is "not given", as everywhere in JavaScript.
  new Shutdown({ manualClock: true, drainTimeout: undefined });
});

test('values out of range are refused by the core, with its reason', () => {
  refused({ drainTimeout: -1 }, RangeError, 'drainTimeout', 'drain_timeout_ms');
  refused({ drainTimeout: Number.POSITIVE_INFINITY }, RangeError, 'drainTimeout', 'drain_timeout_ms');
  refused({ announceProbes: 1.5 }, RangeError, 'announceProbes', 'announce_probes');
  refused({ signals: ['SIGNOPE'] }, RangeError, 'signals', 'signals');
  // In the schema's range, refused by the whole configuration: the builder's field.
  refused({ drainTimeout: 0 }, RangeError, 'drainTimeout', 'drain_timeout');
  refused({ sameSignalWindow: 90_000_000 }, RangeError, 'sameSignalWindow', 'same_signal_window');
  refused({ signals: ['SIGKILL'] }, RangeError, 'signals', 'signals');
});

test("closeStrategy 'slow' is refused, not taken for immediate", () => {
  refused({ closeStrategy: 'slow' }, RangeError, 'closeStrategy', 'close_strategy');
  assert.throws(() => new Shutdown({ closeStrategy: 'slow' }), /must be one of immediate, gradual, not "slow"/);
  const sd = new Shutdown({ manualClock: true, closeStrategy: 'gradual', drainDelay: 1000 });
  sd.trigger('deploy');
  assert.equal(sd.shouldClose(), false, 'gradual: no advice at the first instant of the announce window');
});

test('a configuration refused as a whole names the option the core blames', () => {
  // drain_delay + drain_timeout + close_timeout must fit in the grace period.
  refused({ drainTimeout: 29_000 }, RangeError, 'gracePeriod', 'grace_period');
  assert.throws(() => new Shutdown({ drainTimeout: 29_000 }), /does not fit in the grace period/);
  new Shutdown({ manualClock: true, drainTimeout: 29_000, gracePeriod: 40_000 });
  new Shutdown({ manualClock: true, drainTimeout: 29_000, gracePeriod: null });
  // Escalation: the core says which threshold (ConfigError::option), no message is read.
  refused({ forceAt: 1 }, RangeError, 'forceAt', 'escalation');
  refused({ forceAt: 3, terminateAt: 3 }, RangeError, 'terminateAt', 'escalation');
  refused({ forceAt: null, terminateAt: 1 }, RangeError, 'terminateAt', 'escalation');
  refused({ announceProbes: 2 }, RangeError, 'announceProbes', 'announce_probes');
});

// The drain's deadline, observed on a virtual clock: a guard held past it.
function drainDeadline(sd) {
  sd.guard();
  sd.trigger('deploy');
  let at = null;
  sd.on('closing', () => {
    at = sd.reachedAt('closing') - sd.reachedAt('quiescing');
  });
  sd.advance(90_000);
  return at;
}

function withEnv(vars, fn) {
  const saved = {};
  for (const k of Object.keys(vars)) {
    saved[k] = process.env[k];
    process.env[k] = vars[k];
  }
  try {
    return fn();
  } finally {
    for (const k of Object.keys(vars)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

test('env: true applies the SHUTDOWN_* variables over the options', () => {
  withEnv({ SHUTDOWN_DRAIN_TIMEOUT_MS: '12000', SHUTDOWN_CLOSE_STRATEGY: 'gradual' }, () => {
    assert.equal(drainDeadline(new Shutdown({ manualClock: true })), 20_000, 'without env: true, the variables are not read');
    assert.equal(drainDeadline(new Shutdown({ manualClock: true, env: true })), 12_000);
    assert.equal(drainDeadline(new Shutdown({ manualClock: true, env: true, drainTimeout: 3000 })), 12_000, 'the deployment wins');
  });
  withEnv({ SHUTDOWN_DRAIN_TIMEOUT_MS: '' }, () => {
    assert.equal(drainDeadline(new Shutdown({ manualClock: true, env: true, drainTimeout: 3000 })), 3000, 'empty is unset');
  });
  assert.throws(() => new Shutdown({ env: 'yes' }), (e) => e instanceof TypeError && e.option === 'env');
});

test('an invalid SHUTDOWN_* variable is refused naming the variable and the option', () => {
  withEnv({ SHUTDOWN_CLOSE_TIMEOUT_MS: '5s' }, () => {
    refused({ env: true }, RangeError, 'closeTimeout', 'SHUTDOWN_CLOSE_TIMEOUT_MS');
    assert.throws(() => new Shutdown({ env: true }), /SHUTDOWN_CLOSE_TIMEOUT_MS\): must be a number of milliseconds, not "5s"/);
    new Shutdown({ manualClock: true }); // not read without env: true
  });
  withEnv({ SHUTDOWN_CLOSE_STRATEGY: 'slow' }, () => {
    refused({ env: true }, RangeError, 'closeStrategy', 'SHUTDOWN_CLOSE_STRATEGY');
  });
  // Valid alone, refused with the whole configuration: the builder's field.
  withEnv({ SHUTDOWN_DRAIN_TIMEOUT_MS: '29000' }, () => {
    refused({ env: true }, RangeError, 'gracePeriod', 'grace_period');
    new Shutdown({ manualClock: true, env: true, gracePeriod: null });
  });
});

test("preset: a platform's signals and budgets, which the other options then change", () => {
  const pm2 = new Shutdown({ manualClock: true, preset: 'pm2' });
  assert.deepEqual(internal(pm2).native.signals, [2, 15], 'PM2 stops with SIGINT');
  assert.equal(drainDeadline(pm2), 1000);
  assert.equal(drainDeadline(new Shutdown({ manualClock: true, preset: 'pm2', drainTimeout: 1100 })), 1100);
  assert.equal(drainDeadline(new Shutdown({ manualClock: true, preset: 'docker' })), 7000);
  refused({ preset: 'k8s' }, RangeError, 'preset', 'preset');
  refused({ preset: 3 }, TypeError, 'preset', 'preset');
  // The platform's window is the grace period: a budget that does not fit is refused.
  refused({ preset: 'kubernetes', gracePeriod: 20_000 }, RangeError, 'gracePeriod', 'grace_period');
  withEnv({ SHUTDOWN_PRESET: 'docker', SHUTDOWN_CLOSE_TIMEOUT_MS: '1000' }, () => {
    assert.equal(drainDeadline(new Shutdown({ manualClock: true, env: true })), 7000);
  });
  withEnv({ SHUTDOWN_PRESET: 'dokcer' }, () => {
    refused({ env: true }, RangeError, 'preset', 'SHUTDOWN_PRESET');
  });
  new Shutdown({ manualClock: true, systemdNotify: true });
  refused({ systemdNotify: 1 }, TypeError, 'systemdNotify', 'systemd_notify');
});

test('a deployment sets the budgets through the environment of the process', () => {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const { Shutdown } = require('.');
       const sd = new Shutdown({ manualClock: true, env: true });
       sd.guard();
       sd.trigger('deploy');
       sd.advance(7999);
       const before = sd.phase;
       sd.advance(1);
       console.log(JSON.stringify({ before, after: sd.phase, signals: require('./lib/internal.js').internal(sd).native.signals }));`,
    ],
    {
      cwd: path.join(__dirname, '..'),
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, SHUTDOWN_DRAIN_TIMEOUT_MS: '8000', SHUTDOWN_GRACE_PERIOD_MS: 'none', SHUTDOWN_SIGNALS: 'SIGTERM' },
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.before, 'draining');
  assert.equal(out.after, 'done');
  assert.deepEqual(out.signals, [15]);
});
