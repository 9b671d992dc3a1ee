'use strict';
// Real server processes (examples/node/server.js), real signals, real sockets on
// 127.0.0.1. Requests held with ms=hold end when the test says so (stdin "release"),
// so no assertion depends on how fast anything runs.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { startServer, connect, refused, until, SERVER } = require('./helpers.js');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-test-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let files = 0;
const tmpFile = (name) => path.join(tmp, `${files++}-${name}`);
const readReport = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
// A second press, not one delivered twice: the same signal again escalates only once
// the default same-signal window (1 s) since the counted one has passed.
const pastSameSignalWindow = () => new Promise((resolve) => setTimeout(resolve, 1100));

test('in-flight requests complete with 200 after SIGTERM; clean drain exits 0', async () => {
  const log = tmpFile('requests.log');
  const report = tmpFile('report.json');
  const s = await startServer(['--drain-timeout', '10000', '--log-requests', log, '--report', report]);
  const conns = await Promise.all([1, 2, 3].map(() => connect(s.port)));
  conns.forEach((c, i) => c.get('/slow?ms=hold', `r${i + 1}`));
  await until(() => s.lines.filter((l) => l === 'holding a request').length === 3, 'three requests in flight');
  s.kill('SIGTERM');
  await s.waitFor(/^event: quiescing in_flight=3/);
  s.release();
  for (const c of conns) {
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slept hold ms\n');
    assert.equal(r.headers.connection, 'close', 'advised to close: admission has closed');
  }
  const { code } = await s.exit();
  assert.equal(code, 0, s.stderr);
  const rep = readReport(report);
  assert.equal(rep.exit_code, 0);
  assert.equal(rep.forced, null);
  assert.equal(rep.in_flight_at_trigger, 3);
  assert.equal(rep.aborted, 0);
  assert.deepEqual(rep.reason, { kind: 'signal', detail: 'SIGTERM' });
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n').sort();
  assert.deepEqual(lines, ['accepted r1', 'accepted r2', 'accepted r3', 'completed r1 200', 'completed r2 200', 'completed r3 200']);
});

test('announce window: readiness 503 at once, late requests served with Connection: close, probes end the window', async () => {
  const report = tmpFile('report.json');
  const s = await startServer(['--drain-delay', '15000', '--announce-probes', '2', '--drain-timeout', '5000', '--report', report]);
  const probe = await connect(s.port);
  probe.get('/readyz');
  assert.equal((await probe.response(1)).status, 200);
  // A keep-alive connection that served one request and is idle at the trigger.
  const idle = await connect(s.port);
  idle.get('/');
  assert.equal((await idle.response(1)).headers.connection, 'keep-alive');
  // A request in flight whose headers are not sent yet at the trigger.
  const busy = await connect(s.port);
  busy.get('/slow?ms=hold');
  await s.waitFor(/^holding a request/);

  s.kill('SIGTERM');
  await s.waitFor(/^event: draining/);
  // Readiness fails at once; the late request on the idle connection is still served,
  // told to close, and the server closes that connection after the response.
  idle.get('/');
  const late = await idle.response(2);
  assert.equal(late.status, 200);
  assert.equal(late.headers.connection, 'close');
  await idle.whenClosed();
  s.release();
  const held = await busy.response(1);
  assert.equal(held.status, 200);
  assert.equal(held.headers.connection, 'close', 'in-flight response advised when the drain started');
  await busy.whenClosed();
  assert.equal(s.has(/^event: quiescing/), false, 'still in the announce window');

  // Two not-ready probes (the balancer's fall count) end the announce window early.
  const probe2 = await connect(s.port);
  probe2.get('/readyz');
  const r1 = await probe2.response(1);
  assert.equal(r1.status, 503);
  assert.equal(r1.body, 'draining\n');
  assert.equal(r1.headers.connection, 'close');
  const probe3 = await connect(s.port);
  probe3.get('/readyz');
  assert.equal((await probe3.response(1)).status, 503);
  await s.waitFor(/^event: quiescing/);
  const { code } = await s.exit();
  assert.equal(code, 0, s.stderr);
  const rep = readReport(report);
  assert.equal(rep.exit_code, 0);
  assert.deepEqual(
    rep.timeline.map((t) => t.milestone),
    ['draining', 'quiescing', 'closing', 'done'],
  );
});

test('idle keep-alive connections close without waiting for keepAliveTimeout; a client mid-request is not cut; new connections are refused', async () => {
  const report = tmpFile('report.json');
  const log = tmpFile('requests.log');
  const s = await startServer(['--drain-timeout', '15000', '--keep-alive-timeout', '600000', '--report', report, '--log-requests', log]);
  const busy = await connect(s.port);
  busy.get('/slow?ms=hold');
  await s.waitFor(/^holding a request/);
  // A client in the middle of sending its request when admission closes.
  const partial = await connect(s.port);
  partial.write('GET /?late HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  // A connection that never sent anything.
  const silent = await connect(s.port);
  // A keep-alive connection, idle after one request. Its round trip, after the partial
  // request was sent, lets the server read those bytes first.
  const idle = await connect(s.port);
  await new Promise((r) => setTimeout(r, 100));
  idle.get('/');
  assert.equal((await idle.response(1)).status, 200);

  s.kill('SIGTERM');
  await s.waitFor(/^event: quiescing/);
  // The idle connections are closed by the server now, while a request is still in flight.
  await idle.whenClosed();
  await silent.whenClosed(); // nothing was ever read from it
  assert.equal(s.proc.exitCode, null, 'the drain is still waiting for the busy request');
  assert.equal(idle.responses.length, 1);
  assert.equal(partial.closed, false, 'a connection with a request arriving is not idle');
  assert.equal(await refused(s.port), true, 'the listener is closed');

  // The late request completes: it was arriving on a connection accepted before
  // admission closed, so it is served (with Connection: close), not reset or refused.
  partial.write('X-Request-Id: late-1\r\n\r\n');
  const r = await partial.response(1);
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  await partial.whenClosed();

  s.release();
  const held = await busy.response(1);
  assert.equal(held.status, 200);
  await busy.whenClosed();
  const { code } = await s.exit();
  assert.equal(code, 0, s.stderr);
  assert.equal(readReport(report).aborted, 0);
  assert.match(fs.readFileSync(log, 'utf8'), /^completed late-1 200$/m);
});

test('a second SIGTERM forces: in-flight work is aborted and counted, exit code non-zero', async () => {
  const report = tmpFile('report.json');
  const s = await startServer(['--drain-timeout', '15000', '--report', report, '--forced-exit-code', '4']);
  const busy = await connect(s.port);
  busy.get('/slow?ms=hold');
  await s.waitFor(/^holding a request/);
  s.kill('SIGTERM');
  await s.waitFor(/^event: quiescing/);
  await pastSameSignalWindow();
  s.kill('SIGTERM');
  const { code } = await s.exit();
  assert.equal(code, 4, s.stderr);
  const rep = readReport(report);
  assert.equal(rep.forced, 'escalation');
  assert.equal(rep.triggers, 2);
  assert.equal(rep.aborted, 1);
  assert.deepEqual(rep.aborted_by_kind, { http: 1 });
  assert.ok(s.index(/^event: signal aborted/) < s.index(/^event: done/));
  await busy.whenClosed();
});

test('a third signal ends the process at once with the forced exit code', async () => {
  const s = await startServer(['--drain-timeout', '15000', '--close-timeout', '10000', '--hooks', 'stuck:hang', '--forced-exit-code', '5']);
  const busy = await connect(s.port);
  busy.get('/slow?ms=hold');
  await s.waitFor(/^holding a request/);
  s.kill('SIGINT');
  await s.waitFor(/^event: quiescing/);
  await pastSameSignalWindow();
  s.kill('SIGINT');
  await s.waitFor(/^hook: stuck hangs/);
  await pastSameSignalWindow();
  s.kill('SIGINT');
  const { code } = await s.exit();
  assert.equal(code, 5);
  assert.match(s.stderr, /terminated: repeated trigger, exit code 5/);
  assert.match(s.stderr, /reason: signal SIGINT, 3 triggers/);
});

test('the drain deadline aborts work: signal fires at the deadline, exit code non-zero', async () => {
  const report = tmpFile('report.json');
  const s = await startServer(['--drain-timeout', '300', '--report', report]);
  const busy = await connect(s.port);
  busy.get('/slow?ms=hold');
  await s.waitFor(/^holding a request/);
  s.kill('SIGTERM');
  const { code } = await s.exit();
  assert.equal(code, 1, s.stderr);
  const rep = readReport(report);
  assert.equal(rep.forced, 'drain_timeout');
  assert.equal(rep.aborted, 1);
  const q = rep.timeline.find((t) => t.milestone === 'quiescing').at_ms;
  const c = rep.timeline.find((t) => t.milestone === 'closing').at_ms;
  assert.equal(c - q >= 300, true, 'closing comes at the drain deadline, not before');
  const aborted = s.index(/^event: signal aborted/);
  assert.ok(aborted > s.index(/^event: quiescing/) && aborted < s.index(/^event: done/));
  // The handler saw the abort (the 503 it answers may not reach the client before the
  // connection is destroyed at the deadline); either way the connection ends.
  await busy.whenClosed();
});

test('cleanup hooks run in order; throws, rejections and timeouts are recorded and the others still run', async () => {
  const report = tmpFile('report.json');
  const s = await startServer([
    '--drain-timeout', '1000',
    '--close-timeout', '5000',
    '--hooks', 'first:ok:0,thrower:throw:1,rejecter:fail:1,stuck:hang:2:200,last:ok:3',
    '--report', report,
  ]);
  s.kill('SIGINT');
  const { code } = await s.exit();
  assert.equal(code, 1, s.stderr);
  const rep = readReport(report);
  assert.deepEqual(rep.reason, { kind: 'signal', detail: 'SIGINT' });
  assert.deepEqual(
    rep.hooks.map((h) => [h.name, h.outcome.status, h.outcome.message ?? null]),
    [
      ['first', 'ok', null],
      ['thrower', 'panicked', 'thrower threw'],
      ['rejecter', 'failed', 'rejecter failed'],
      ['stuck', 'timed_out', null],
      ['last', 'ok', null],
    ],
  );
  assert.equal(rep.forced, null);
  assert.ok(s.index(/^hook: first ran/) < s.index(/^hook: stuck hangs/));
  assert.ok(s.index(/^hook: stuck hangs/) < s.index(/^hook: last ran/));
});

test('a background job (track) holds the drain until it ends', async () => {
  const report = tmpFile('report.json');
  const s = await startServer(['--drain-timeout', '10000', '--report', report]);
  const c = await connect(s.port);
  c.write('POST /work?ms=hold HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello');
  const r = await c.response(1);
  assert.equal(r.status, 202);
  assert.equal(r.body, 'accepted 5 bytes\n');
  s.kill('SIGTERM');
  await s.waitFor(/^event: quiescing in_flight=1/);
  assert.equal(s.has(/^event: closing/), false);
  s.release();
  await s.waitFor(/^job: done/);
  const { code } = await s.exit();
  assert.equal(code, 0, s.stderr);
  assert.equal(readReport(report).in_flight_at_trigger, 1);
});

test('SIGTERM with a request still arriving and nothing in flight: it is served; one still arriving at the deadline is counted', async () => {
  const report = tmpFile('report.json');
  const s = await startServer(['--drain-timeout', '1000', '--keep-alive-timeout', '600000', '--report', report]);
  const served = await connect(s.port);
  served.write('GET /?late HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const cut = await connect(s.port);
  cut.write('GET /?cut HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  // A round trip on another connection, sent after the partial bytes, lets the server
  // read them first.
  const idle = await connect(s.port);
  await new Promise((r) => setTimeout(r, 100));
  idle.get('/');
  assert.equal((await idle.response(1)).status, 200);
  s.kill('SIGTERM');
  await s.waitFor(/^event: quiescing/);
  await new Promise((r) => setTimeout(r, 200)); // past the connection grace
  assert.equal(served.closed, false, 'a request arriving is not cut');
  served.write('\r\n');
  const r = await served.response(1);
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  const { code } = await s.exit();
  assert.equal(code, 1, s.stderr);
  await cut.whenClosed();
  assert.equal(cut.responses.length, 0);
  const rep = readReport(report);
  assert.equal(rep.forced, 'drain_timeout', 'the drain waited for the request still arriving');
  assert.equal(rep.aborted, 1);
  assert.deepEqual(rep.aborted_by_kind, { connection: 1 });
  assert.equal(rep.exit_code, 1);
});

test('the example server reads SHUTDOWN_* at start: an invalid variable, or a flag past the preset it set, stops it naming why', () => {
  const run = (args, env) =>
    spawnSync(process.execPath, [SERVER, '--port', '0', ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ...env },
    });
  let r = run([], { SHUTDOWN_DRAIN_TIMEOUT_MS: '5s' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /invalid option drainTimeout \(SHUTDOWN_DRAIN_TIMEOUT_MS\): must be a number of milliseconds/);
  // SHUTDOWN_PRESET=pm2: PM2's 1.6 s window is the grace period; the variables apply over
  // the flags, so SHUTDOWN_DRAIN_TIMEOUT_MS=8000 does not fit and is refused at start.
  r = run([], { SHUTDOWN_PRESET: 'pm2', SHUTDOWN_DRAIN_TIMEOUT_MS: '8000' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /invalid option gracePeriod \(grace_period\): drain_delay \+ drain_timeout \+ close_timeout = 8\.4s does not fit in the grace period of 1\.6s/);
  r = run(['--preset', 'k8s'], {});
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /invalid option preset \(preset\): must be one of kubernetes, docker, pm2/);
});
