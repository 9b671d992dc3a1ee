'use strict';
// The core's progress: Shutdown#progress(), the 'progress' event every progressInterval
// while draining, and the logger option.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Shutdown } = require('..');

test('progress(): the core snapshot; the progress event and the logger every interval of a drain', () => {
  const lines = [];
  const sd = new Shutdown({ manualClock: true, drainTimeout: 10_000, progressInterval: 1000, logger: (l) => lines.push(l) });
  const seen = [];
  sd.on('progress', (p) => seen.push(p));
  assert.equal(sd.progress().phase, 'running');
  assert.equal(sd.progress().timeLeftMs, null);
  const g = sd.guard('http');
  sd.trigger('deploy');
  sd.advance(2500);
  assert.equal(seen.length, 2, 'at 1 s and 2 s');
  assert.equal(seen[0].phase, 'draining');
  assert.equal(seen[0].inFlight, 1);
  assert.deepEqual(seen[0].inFlightByKind, { http: 1 });
  assert.equal(seen[0].timeLeftMs, 9000);
  assert.deepEqual(lines, [`libshutdown: ${seen[0].line}`, `libshutdown: ${seen[1].line}`]);
  assert.match(lines[0], /^libshutdown: draining \(admission closed\): 1 in flight \(http 1\), 0 connections, 9\.0 s left$/);
  g.release();
  assert.equal(sd.progress().phase, 'done');
  assert.deepEqual(
    sd.progress().timeline.map((t) => t.milestone),
    ['draining', 'quiescing', 'closing', 'done'],
  );
});

test('logger: an object with info(), and a wrong logger is refused naming the option', () => {
  const lines = [];
  const sd = new Shutdown({ manualClock: true, logger: { info: (l) => lines.push(l) } });
  const g = sd.guard();
  sd.trigger('deploy');
  sd.advance(1000);
  assert.equal(lines.length, 1);
  g.release();
  assert.throws(() => new Shutdown({ manualClock: true, logger: 'stdout' }), (e) => e instanceof TypeError && e.option === 'logger');
  assert.throws(() => new Shutdown({ manualClock: true, progressInterval: 1 }), (e) => e.option === 'progressInterval' && e.field === 'progress_interval');
});
