'use strict';
// Events are emitted once each and in the machine's order when a listener itself moves
// the shutdown on (advances the clock, releases the last guard, triggers again): the
// same rule as the core's milestone callbacks and the C ABI's (issue 13, findings 1-2).

const test = require('node:test');
const assert = require('node:assert');
const { Shutdown } = require('..');

const ALL = ['draining', 'quiescing', 'closing', 'done'];

function engine(o = {}) {
  return new Shutdown({ manualClock: true, drainTimeout: 1, closeTimeout: 2, forceAt: null, terminateAt: null, ...o });
}

function record(sd, onDraining) {
  const seen = [];
  for (const m of ALL) {
    sd.on(m, () => {
      seen.push(m);
      if (m === 'draining') onDraining();
    });
  }
  return seen;
}

test('a listener that advances the clock sees the milestones in order', () => {
  const sd = engine();
  const seen = record(sd, () => sd.advance(1000));
  const g = sd.guard();
  sd.trigger('deploy');
  assert.deepStrictEqual(seen, ALL);
  assert.strictEqual(sd.phase, 'done');
  g.release();
});

test('a listener that releases the last guard sees the milestones in order', () => {
  const sd = engine({ drainTimeout: 1000, closeTimeout: 2000 });
  const g = sd.guard();
  const seen = record(sd, () => g.release());
  sd.trigger('deploy');
  assert.deepStrictEqual(seen, ALL);
  assert.strictEqual(sd.report.exit_code, 0);
});

test('a hook never called because a listener moved the clock past the budget is skipped, not timed out', async () => {
  const sd = engine({ drainTimeout: 1000, closeTimeout: 51 });
  let called = false;
  sd.onClose('flush', () => {
    called = true;
  });
  record(sd, () => sd.advance(100));
  sd.trigger('deploy');
  const report = await sd.done;
  assert.strictEqual(report.hooks[0].outcome.status, 'skipped');
  assert.strictEqual(report.hooks[0].duration_ms, 0);
  assert.strictEqual(called, false);
});
