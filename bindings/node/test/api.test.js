'use strict';
// The JavaScript API over the addon, mostly on a virtual clock.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const lib = require('..');
const { internal } = require('../lib/internal.js');
const { Shutdown, Guard, signalName } = lib;

const manual = (o = {}) => new Shutdown({ manualClock: true, ...o });
const flush = () => new Promise((resolve) => setImmediate(resolve));

test('bad options throw a TypeError or RangeError naming the option', () => {
  const cases = [
    [{ drainTimeout: '10s' }, TypeError, 'drainTimeout'],
    [{ drainTimeout: -1 }, RangeError, 'drainTimeout'],
    [{ drainTimeout: Number.NaN }, RangeError, 'drainTimeout'],
    [{ drainTimeout: 0 }, RangeError, 'drainTimeout', 'drain_timeout'],
    [{ closeTimeout: 0 }, RangeError, 'closeTimeout', 'close_timeout'],
    [{ drainTimeout: 90_000_000 }, RangeError, 'drainTimeout', 'drain_timeout'],
    [{ drainTimeout: 29_000 }, RangeError, 'gracePeriod', 'grace_period'],
    [{ gracePeriod: 'long' }, TypeError, 'gracePeriod'],
    [{ announceProbes: 2 }, RangeError, 'announceProbes', 'announce_probes'],
    [{ announceProbes: 1.5 }, RangeError, 'announceProbes'],
    [{ drainDelay: 1000, announceProbes: 0 }, RangeError, 'announceProbes', 'announce_probes'],
    [{ forceAt: 1 }, RangeError, 'forceAt', 'escalation'],
    [{ forceAt: 3, terminateAt: 3 }, RangeError, 'terminateAt', 'escalation'],
    [{ forceAt: 'twice' }, TypeError, 'forceAt'],
    [{ sameSignalWindow: '1s' }, TypeError, 'sameSignalWindow'],
    [{ sameSignalWindow: -1 }, RangeError, 'sameSignalWindow'],
    [{ sameSignalWindow: 90_000_000 }, RangeError, 'sameSignalWindow', 'same_signal_window'],
    [{ forcedExitCode: 0 }, RangeError, 'forcedExitCode'],
    [{ forcedExitCode: 256 }, RangeError, 'forcedExitCode'],
    [{ forcedExitCode: 1.5 }, RangeError, 'forcedExitCode'],
    [{ closeStrategy: 'sometimes' }, RangeError, 'closeStrategy'],
    [{ closeStrategy: 1 }, TypeError, 'closeStrategy'],
    [{ signals: 'SIGTERM' }, TypeError, 'signals'],
    [{ signals: ['SIGNOPE'] }, RangeError, 'signals'],
    [{ signals: ['SIGKILL'] }, RangeError, 'signals', 'signals'],
    [{ exitOnDone: 'yes' }, TypeError, 'exitOnDone'],
    [{ drainTimout: 1000 }, TypeError, 'drainTimout'],
    ['fast', TypeError, 'options'],
  ];
  for (const [opts, Ctor, option, field] of cases) {
    assert.throws(
      () => new Shutdown(opts),
      (e) => {
        assert.ok(e instanceof Ctor, `${JSON.stringify(opts)}: ${e}`);
        assert.equal(e.option, option, `${JSON.stringify(opts)}: ${e.message}`);
        assert.match(e.message, new RegExp(option));
        if (field) assert.equal(e.field, field);
        return true;
      },
    );
  }
  // Valid edge cases.
  manual({ gracePeriod: null, drainTimeout: 86_400_000, closeTimeout: 1 });
  manual({ forceAt: null, terminateAt: null, signals: ['SIGTERM', 'SIGUSR2', 'HUP'], forcedExitCode: 255 });
  manual({ sameSignalWindow: 0 });
  manual({ sameSignalWindow: 86_400_000 });
});

test('phases, readiness, admission and events on a virtual clock', async () => {
  const sd = manual({ drainDelay: 100, drainTimeout: 1000, closeTimeout: 500 });
  const seen = [];
  for (const m of ['draining', 'quiescing', 'closing', 'done']) sd.on(m, () => seen.push(`${m}@${sd.reachedAt(m)}`));
  assert.equal(sd.phase, 'running');
  assert.equal(sd.ready, true);
  assert.equal(sd.accepting, true);
  assert.equal(sd.shouldClose(), false);
  const g = sd.guard();
  assert.ok(g instanceof Guard);
  assert.equal(sd.inFlight, 1);

  sd.advance(10);
  sd.trigger('deploy');
  assert.equal(sd.phase, 'draining');
  assert.equal(sd.ready, false);
  assert.equal(sd.accepting, true, 'the announce window still admits');
  assert.equal(sd.shouldClose(), true, 'immediate advice from the first instant');
  assert.deepEqual(seen, ['draining@10'], 'events are delivered synchronously');

  const late = sd.guard();
  assert.notEqual(late, null);
  sd.advance(100);
  assert.equal(sd.accepting, false);
  assert.equal(sd.guard(), null, 'admission closed');
  assert.deepEqual(seen, ['draining@10', 'quiescing@110']);

  const child = late.child();
  assert.ok(child instanceof Guard, 'a child is admitted after the close');
  assert.equal(late.release(), true);
  assert.equal(late.release(), false, 'release is idempotent');
  assert.equal(late.released, true);
  assert.throws(() => late.child(), /released/);
  sd.advance(5);
  g.release();
  assert.equal(sd.phase, 'draining', 'the child still holds the drain');
  sd.advance(5);
  child.release();
  assert.equal(sd.phase, 'done');
  assert.deepEqual(seen, ['draining@10', 'quiescing@110', 'closing@120', 'done@120']);
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.forced, null);
  assert.equal(report.in_flight_at_trigger, 1);
  assert.deepEqual(report.reason, { kind: 'manual', detail: 'deploy' });
  assert.deepEqual(
    report.timeline.map((t) => [t.milestone, t.at_ms]),
    [
      ['draining', 0],
      ['quiescing', 100],
      ['closing', 110],
      ['done', 110],
    ],
  );
  assert.deepEqual(sd.report, report);
  await sd.draining;
  await sd.quiescing;
  await sd.closing;
  assert.equal(sd.signal.aborted, true, 'the signal fires at Done at the latest');
});

test('signal aborts at the drain deadline; aborted work is counted by kind; exit code is non-zero', async () => {
  const sd = manual({ drainTimeout: 300, closeTimeout: 100, forcedExitCode: 7 });
  sd.guard('http');
  sd.guard('job');
  sd.guard('http');
  let abortedAt = null;
  sd.signal.addEventListener('abort', () => {
    abortedAt = sd.elapsed;
  });
  sd.trigger({ kind: 'signal', detail: 'SIGTERM' });
  sd.advance(299);
  assert.equal(sd.signal.aborted, false);
  assert.equal(sd.cancelled, false);
  sd.advance(1);
  assert.equal(sd.signal.aborted, true);
  assert.equal(sd.cancelled, true);
  assert.equal(abortedAt, 300);
  assert.equal(sd.signal.reason.name, 'AbortError');
  const report = await sd.done;
  assert.equal(report.forced, 'drain_timeout');
  assert.equal(report.aborted, 3);
  assert.deepEqual(report.aborted_by_kind, { http: 2, job: 1 });
  assert.equal(report.exit_code, 7);
});

test('a second trigger forces, a third terminates', async () => {
  const sd = manual({ drainTimeout: 1000 });
  sd.guard();
  sd.trigger('first');
  sd.advance(10);
  assert.equal(sd.phase, 'draining');
  sd.trigger('second');
  assert.equal(sd.phase, 'done', 'forced into closing; no hooks: done');
  assert.equal(sd.report.forced, 'escalation');
  assert.equal(sd.report.aborted, 1);
  assert.equal(sd.report.exit_code, 1);

  const sd2 = manual({ drainTimeout: 1000, closeTimeout: 1000 });
  sd2.onClose('slow', () => new Promise(() => {}));
  sd2.guard();
  sd2.trigger('a');
  sd2.trigger('b');
  assert.equal(sd2.phase, 'closing');
  sd2.trigger('c');
  assert.equal(sd2.phase, 'done');
  assert.equal(sd2.report.forced, 'terminated');
  assert.equal(sd2.report.hooks[0].outcome.status, 'timed_out');
  assert.equal(sd2.report.triggers, 3);
});

test('hooks run in order groups; throws, rejections and timeouts are recorded, the others still run', async () => {
  const sd = manual({ drainTimeout: 1000, closeTimeout: 1000 });
  const ran = [];
  sd.onClose('logs', () => ran.push('logs'), { order: 9 });
  sd.onClose('queue', () => ran.push('queue'));
  sd.onClose('cache', () => {
    ran.push('cache');
    throw new Error('cache exploded');
  });
  sd.onClose(
    'db',
    async () => {
      ran.push('db');
      throw new TypeError('db refused');
    },
    { order: 1 },
  );
  sd.onClose(
    'hang',
    () => {
      ran.push('hang');
      return new Promise(() => {});
    },
    { order: 2, timeout: 200 },
  );
  sd.onClose(
    'rejects-with-a-string',
    () => {
      ran.push('str');
      return Promise.reject('plain string');
    },
    { order: 3 },
  );
  sd.trigger('test');
  await sd.advanceAsync(0);
  assert.deepEqual(ran, ['queue', 'cache', 'db', 'hang']);
  assert.equal(sd.phase, 'closing');
  await sd.advanceAsync(200);
  assert.deepEqual(ran, ['queue', 'cache', 'db', 'hang', 'str', 'logs']);
  const report = await sd.done;
  const outcomes = Object.fromEntries(report.hooks.map((h) => [h.name, h.outcome]));
  assert.deepEqual(outcomes, {
    logs: { status: 'ok' },
    queue: { status: 'ok' },
    cache: { status: 'panicked', message: 'cache exploded' },
    db: { status: 'failed', message: 'db refused' },
    hang: { status: 'timed_out' },
    'rejects-with-a-string': { status: 'failed', message: 'plain string' },
  });
  assert.equal(report.hooks.find((h) => h.name === 'hang').duration_ms, 200);
  assert.equal(report.exit_code, 1);
  assert.equal(report.forced, null);
});

test('onClose validates its arguments', () => {
  const sd = manual({ closeTimeout: 500 });
  assert.throws(() => sd.onClose(1, () => {}), TypeError);
  assert.throws(() => sd.onClose('x', 'nope'), TypeError);
  assert.throws(() => sd.onClose('', () => {}), (e) => e instanceof RangeError && e.option === 'name');
  assert.throws(() => sd.onClose('x'.repeat(300), () => {}), RangeError);
  assert.throws(() => sd.onClose('x', () => {}, { timeout: 0 }), (e) => e instanceof RangeError && e.option === 'timeout');
  assert.throws(() => sd.onClose('x', () => {}, { timeout: 501 }), (e) => e instanceof RangeError && e.option === 'timeout');
  assert.throws(() => sd.onClose('x', () => {}, { order: 1.5 }), (e) => e instanceof RangeError && e.option === 'order');
  sd.trigger('t');
  assert.equal(sd.phase, 'done');
  assert.throws(() => sd.onClose('late', () => {}), (e) => e.code === 'ERR_SHUTDOWN_TOO_LATE');
});

test('track() holds the drain for a job, passes the signal, and refuses once closed', async () => {
  const sd = manual({ drainTimeout: 1000 });
  let release;
  let gotSignal;
  const job = sd.track((signal) => {
    gotSignal = signal;
    return new Promise((resolve) => {
      release = resolve;
    });
  });
  assert.equal(gotSignal, sd.signal);
  const p = sd.track(Promise.resolve(42), { kind: 'job' });
  assert.equal(await p, 42);
  assert.equal(sd.inFlight, 1);
  sd.trigger('t');
  assert.throws(() => sd.track(Promise.resolve()), (e) => e.code === 'ERR_SHUTDOWN_CLOSED');
  assert.equal(sd.phase, 'draining');
  release('done');
  assert.equal(await job, 'done');
  await flush();
  assert.equal(sd.phase, 'done');
  assert.equal((await sd.done).exit_code, 0);

  // A child of a live guard is admitted after the close; a sync throw releases.
  const sd2 = manual({ drainTimeout: 1000 });
  const g = sd2.guard();
  sd2.trigger('t');
  await sd2.track(Promise.resolve(), { parent: g });
  assert.throws(() => sd2.track(() => {
      throw new Error('sync');
    }, { parent: g }), /sync/);
  assert.equal(sd2.inFlight, 1);
  g.release();
  assert.equal(sd2.phase, 'done');
});

test('trigger reasons', () => {
  const a = manual();
  a.trigger({ kind: 'fatal', detail: 'out of memory' });
  assert.deepEqual(a.report.reason, { kind: 'fatal', detail: 'out of memory' });
  const b = manual();
  b.trigger(new Error('boom'));
  assert.deepEqual(b.report.reason, { kind: 'fatal', detail: 'boom' });
  const c = manual();
  c.trigger();
  assert.deepEqual(c.report.reason, { kind: 'manual', detail: 'manual' });
  assert.throws(() => manual().trigger({ kind: 'cosmic', detail: '' }), RangeError);
  assert.throws(() => manual().trigger(42), TypeError);
  assert.equal(signalName(15), 'SIGTERM');
});

test('advance() is refused on a real clock', () => {
  const sd = new Shutdown({ exitOnDone: false });
  assert.throws(() => sd.advance(1), (e) => e.code === 'ERR_SHUTDOWN_NOT_MANUAL');
});

test('a panic in the addon becomes a JavaScript exception', () => {
  assert.throws(() => lib._panicForTest(), /deliberate panic/);
});

const child = (code) =>
  spawnSync(process.execPath, ['-e', code], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, RUST_BACKTRACE: '0' },
  });

test('the addon never keeps the event loop alive by itself', () => {
  // An engine, a guard and a hook, never triggered: the process ends on its own.
  const r = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ drainTimeout: 1000 });
    sd.guard();
    sd.onClose('x', () => {});
    sd.on('done', () => {});
    console.log('end of script');
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /end of script/);
});

test('on a real clock: the drain deadline fires from the driver thread; the process exits with the report code', () => {
  const r = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ drainTimeout: 50, closeTimeout: 50, forcedExitCode: 9 });
    sd.guard();
    sd.signal.addEventListener('abort', () => console.log('aborted in', sd.phase));
    sd.onClose('hangs', () => new Promise(() => {}));
    sd.on('done', (r) => console.log(JSON.stringify(r)));
    sd.trigger('t');
  `);
  assert.equal(r.status, 9, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /aborted in closing/);
  const report = JSON.parse(lines[1]);
  assert.equal(report.forced, 'drain_timeout');
  assert.equal(report.hooks[0].outcome.status, 'timed_out');
});

test('exitOnDone: false leaves the process to end by itself with code 0', () => {
  const r = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 50 });
    sd.guard();
    sd.done.then((r) => console.log('exit code would be', r.exit_code));
    sd.trigger('t');
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /exit code would be 1/);
});

test('a listener that throws does not lose the events after it', () => {
  const r = child(`
    const { Shutdown } = require('.');
    process.on('uncaughtException', (e) => console.log('uncaught:', e.message));
    const sd = new Shutdown({ manualClock: true });
    sd.on('draining', () => { throw new Error('listener bug'); });
    sd.on('done', () => console.log('done event'));
    sd.trigger('t');
    console.log('phase', sd.phase);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['done event', 'phase done', 'uncaught: listener bug']);
});

test('listenSignals() is idempotent and uses process.on; stopping it removes the listeners', () => {
  const r = child(`
    const { Shutdown } = require('.');
    const before = process.listenerCount('SIGTERM');
    const sd = new Shutdown({ drainTimeout: 1000, exitOnDone: false });
    const stop = sd.listenSignals();
    if (sd.listenSignals() !== stop) throw new Error('not idempotent');
    console.log('listeners', process.listenerCount('SIGTERM') - before, process.listenerCount('SIGINT'));
    // Signal watchers do not hold the loop open: wait for the signal (bounded).
    const wait = setTimeout(() => {}, 20000);
    sd.on('done', (r) => {
      clearTimeout(wait);
      console.log('reason', r.reason.kind, r.reason.detail, 'triggers', r.triggers);
      stop();
      console.log('after stop', process.listenerCount('SIGTERM') - before);
    });
    process.kill(process.pid, 'SIGTERM');
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['listeners 1 1', 'reason signal SIGTERM triggers 1', 'after stop 0']);
});

test('garbage-collected engines are freed cleanly, with guards and unfinished hooks', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '-e',
      `
      const { Shutdown } = require('.');
      const rss = [];
      (async () => {
        for (let round = 0; round < 4; round++) {
          for (let i = 0; i < 3000; i++) {
            const sd = new Shutdown({ manualClock: true, closeTimeout: 1000 });
            sd.onClose('h', () => new Promise(() => {}));
            sd.guard();
            if (i % 2) sd.trigger('t');
          }
          for (let k = 0; k < 4; k++) { global.gc(); await new Promise((r) => setImmediate(r)); }
          rss.push(process.memoryUsage().rss);
        }
        // Bounded growth: the later rounds reuse what the first freed.
        console.log(rss[3] < rss[0] * 1.5 ? 'stable' : 'growing ' + rss.join(' '));
      })();
    `,
    ],
    { cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'no panic message');
  assert.equal(r.stdout.trim(), 'stable');
});

test('work admitted while running is handed to the core at the first trigger, labels and children included', async () => {
  const sd = manual({ drainTimeout: 1000 });
  const a = sd.guard();
  const b = sd.guard('job');
  const c = b.child(); // while running: a child is plain work too
  const gone = sd.guard('job');
  gone.release();
  assert.equal(sd.inFlight, 3);
  assert.throws(() => sd.guard(''), (e) => e instanceof RangeError && e.option === 'kind');
  sd.trigger('t');
  assert.equal(sd.inFlight, 3, 'the core now holds them');
  assert.equal(sd.accepting, false);
  const d = b.child(); // after the close: a child of adopted work
  assert.equal(sd.inFlight, 4);
  a.release();
  b.release();
  c.release();
  assert.equal(sd.phase, 'draining', 'the child taken after the close still holds the drain');
  sd.advance(5);
  d.release();
  assert.equal(sd.phase, 'done');
  const report = await sd.done;
  assert.equal(report.in_flight_at_trigger, 3);
  assert.equal(report.exit_code, 0);

  const cut = manual({ drainTimeout: 100 });
  cut.guard('http');
  cut.guard('http').child();
  cut.guard();
  cut.trigger('t');
  cut.advance(100);
  const r = await cut.done;
  assert.equal(r.aborted, 4);
  assert.deepEqual(r.aborted_by_kind, { http: 3 });
});

test('the shared signal takes any number of listeners without a warning', () => {
  const r = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ manualClock: true });
    for (let i = 0; i < 50; i++) sd.signal.addEventListener('abort', () => {});
    setImmediate(() => console.log('ok'));
  `);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout.trim(), 'ok');
});

test('forcedExitCode is checked by the core, 1 to 255, and the message says so', () => {
  // The messages are the core's (they were this layer's own before the options schema).
  for (const v of [0, -1, 256, 1000]) {
    assert.throws(
      () => new Shutdown({ forcedExitCode: v }),
      (e) => {
        assert.ok(e instanceof RangeError, `${v}: ${e}`);
        assert.equal(e.option, 'forcedExitCode');
        assert.equal(e.field, 'forced_exit_code');
        assert.equal(e.message, `libshutdown: invalid option forcedExitCode (forced_exit_code): ${v} is not an exit code from 1 to 255`);
        return true;
      },
    );
  }
  // Past a 32-bit integer, or not whole: refused by the schema before the range check.
  for (const v of [2 ** 31, -(2 ** 31) - 1, 1e12, 1.5]) {
    assert.throws(
      () => new Shutdown({ forcedExitCode: v }),
      (e) => {
        assert.ok(e instanceof RangeError, `${v}: ${e}`);
        assert.equal(e.option, 'forcedExitCode');
        assert.equal(e.field, 'forced_exit_code');
        assert.match(e.message, new RegExp(`^libshutdown: invalid option forcedExitCode \\(forced_exit_code\\): must be a whole number, not ${v}$`));
        return true;
      },
    );
  }
  assert.throws(() => new Shutdown({ forcedExitCode: '3' }), (e) => e instanceof TypeError && e.option === 'forcedExitCode');
  for (const v of [1, 255]) assert.equal(internal(manual({ forcedExitCode: v })).native.forcedExitCode, v);
});

test('the virtual clock keeps advancing past the longest configurable duration (24 h)', async () => {
  const day = 86_400_000;
  const sd = manual({ gracePeriod: null, drainTimeout: 1000 });
  sd.advance(day);
  sd.advance(day);
  sd.advance(3_600_000);
  assert.equal(sd.elapsed, 2 * day + 3_600_000);
  sd.guard();
  sd.trigger('after two days');
  assert.equal(sd.reachedAt('draining'), 2 * day + 3_600_000);
  sd.advance(1000);
  assert.equal(sd.phase, 'done', 'the drain deadline fires after 24 h too');
  assert.equal(sd.report.forced, 'drain_timeout');
  assert.equal(sd.reachedAt('closing'), 2 * day + 3_601_000);
  // A year on, still exact.
  const year = manual();
  await year.advanceAsync(365 * day);
  assert.equal(year.elapsed, 365 * day);
  // The addon refuses what is not a clock position, with a clear error.
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e300]) {
    assert.throws(() => internal(year).native.advanceStep(bad), /clock position/, String(bad));
  }
  assert.equal(year.elapsed, 365 * day, 'a refused position moves nothing');
});

test('a fatal trigger (an Error) ends with a non-zero exit code, even after a clean drain', async () => {
  const a = manual({ forcedExitCode: 6 });
  a.trigger(new Error('uncaught: boom'));
  assert.deepEqual(a.report.reason, { kind: 'fatal', detail: 'uncaught: boom' });
  assert.equal(a.report.forced, null, 'nothing was forced: the drain itself was clean');
  assert.equal(a.report.exit_code, 6);
  const b = manual();
  b.trigger({ kind: 'fatal', detail: 'out of memory' });
  assert.equal(b.report.exit_code, 1);
  // An Error from another realm (vm, a worker's structured clone) is an Error too.
  const c = manual();
  c.trigger(require('node:vm').runInNewContext('new TypeError("from a vm context")'));
  assert.deepEqual(c.report.reason, { kind: 'fatal', detail: 'from a vm context' });
  assert.equal(c.report.exit_code, 1);
  // On a real clock, the process exits with it.
  const r = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ forcedExitCode: 6 });
    sd.on('done', (r) => console.log('exit code', r.exit_code));
    sd.trigger(new Error('crash'));
  `);
  assert.equal(r.status, 6, r.stderr);
  assert.match(r.stdout, /exit code 6/);
});

test('a signal after Done exits with the report\'s exit code, after a short chance to exit alone', () => {
  // exitOnDone: false, a clean drain (report exit code 0, forced code 7), then SIGTERM.
  const clean = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ exitOnDone: false, forcedExitCode: 7, drainTimeout: 1000 });
    sd.listenSignals();
    setInterval(() => {}, 1000); // the host stays up
    setTimeout(() => { console.log('still alive'); process.exit(42); }, 10000);
    sd.on('done', (r) => {
      console.log('done', r.exit_code);
      setTimeout(() => { console.log('signal'); process.kill(process.pid, 'SIGTERM'); }, 10);
    });
    sd.trigger('deploy');
  `);
  assert.equal(clean.status, 0, `${clean.stdout}\n${clean.stderr}`);
  assert.deepEqual(clean.stdout.trim().split('\n'), ['done 0', 'signal']);
  assert.match(clean.stderr, /SIGTERM after done/i);

  // The report's code, not always the forced one: a forced drain exits with it.
  const forced = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ exitOnDone: false, forcedExitCode: 7, drainTimeout: 20 });
    sd.listenSignals();
    sd.guard();
    setInterval(() => {}, 1000);
    setTimeout(() => { console.log('still alive'); process.exit(42); }, 10000);
    sd.on('done', (r) => { console.log('done', r.exit_code); process.kill(process.pid, 'SIGINT'); });
    sd.trigger('deploy');
  `);
  assert.equal(forced.status, 7, `${forced.stdout}\n${forced.stderr}`);
  assert.match(forced.stderr, /SIGINT after done/i);

  // The host gets its chance: exiting by itself within the grace wins.
  const own = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 1000 });
    sd.listenSignals();
    process.on('SIGTERM', () => setTimeout(() => process.exit(3), 20));
    setInterval(() => {}, 1000);
    setTimeout(() => { console.log('still alive'); process.exit(42); }, 10000);
    sd.on('done', () => setTimeout(() => process.kill(process.pid, 'SIGTERM'), 10));
    sd.trigger('deploy');
  `);
  assert.equal(own.status, 3, `${own.stdout}\n${own.stderr}`);

  // terminateAt: null turns termination off: the signal is only logged.
  const off = child(`
    const { Shutdown } = require('.');
    const sd = new Shutdown({ exitOnDone: false, terminateAt: null, drainTimeout: 1000 });
    sd.listenSignals();
    setInterval(() => {}, 1000);
    setTimeout(() => { console.log('still alive'); process.exit(42); }, 1000);
    sd.on('done', () => setTimeout(() => process.kill(process.pid, 'SIGTERM'), 10));
    sd.trigger('deploy');
  `);
  assert.equal(off.status, 42, `${off.stdout}\n${off.stderr}`);
  assert.match(off.stdout, /still alive/);
  assert.match(off.stderr, /SIGTERM after done/i);
});

test('a Shutdown shows only its documented API: no underscore members', () => {
  const sd = new Shutdown({ manualClock: true });
  const g = sd.guard();
  const under = (o) => Object.keys(o).filter((k) => k.startsWith('_'));
  assert.deepEqual(under(sd), []);
  assert.deepEqual(under(g), []);
  const proto = (o) => Object.getOwnPropertyNames(Object.getPrototypeOf(o)).filter((k) => k.startsWith('_'));
  assert.deepEqual(proto(sd), []);
  assert.deepEqual(proto(g), []);
  // The integrations' interface is there, off the instance.
  assert.equal(typeof internal(sd).drain, 'function');
  assert.throws(() => internal({}), (e) => e instanceof TypeError);
  g.release();
});
