'use strict';
// When attach() closes its listener: at the core's 'unlisten' (admission closed with
// no listener hold; the last hold released; the drain's end). Real sockets on
// 127.0.0.1; every wait is bounded, nothing asserts a speed.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const { Shutdown } = require('..');
const { connect, refused, until, holder, listen } = require('./helpers.js');

test('with no hold the listener closes at the unlisten that follows admission closing', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const server = http.createServer((req, res) => h.handler(req, res));
  sd.attach(server);
  const port = await listen(t, server);
  const order = [];
  for (const e of ['quiescing', 'unlisten', 'done']) sd.on(e, () => order.push(e));
  const c = await connect(port);
  c.get('/hold');
  await until(() => h.waiting.length === 1, 'the request to arrive');
  assert.equal(sd.shouldListen, true);
  const closed = new Promise((resolve) => server.once('close', resolve));
  sd.trigger('test');
  assert.equal(sd.shouldListen, false, 'no announce window, no hold');
  assert.deepEqual(order, ['quiescing', 'unlisten']);
  await until(() => !server.listening, 'the listener to close');
  assert.equal(await refused(port), true);
  h.release();
  assert.equal((await c.response()).status, 200);
  c.destroy();
  await closed;
  assert.equal((await sd.done).exit_code, 0);
  assert.deepEqual(order, ['quiescing', 'unlisten', 'done'], 'once');
  assert.equal(sd.holdListener(), null, 'nothing to hold once unlistened');
});

test('a listener hold keeps the listener open after admission closes: a new client is served, then the release closes it', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const server = http.createServer((req, res) => (req.url === '/hold' ? h.handler(req, res) : res.end('late ok')));
  sd.attach(server);
  const port = await listen(t, server);
  let unlistens = 0;
  sd.on('unlisten', () => unlistens++);
  const release = sd.holdListener();
  assert.equal(typeof release, 'function');
  const c = await connect(port);
  c.get('/hold');
  await until(() => h.waiting.length === 1, 'the request to arrive');
  sd.trigger('test');
  assert.equal(sd.accepting, false);
  assert.equal(sd.shouldListen, true, 'held');
  // Several loop turns later the listener is still open, and a new connection's request
  // is served (the quiesce boundary: work is in flight), with Connection: close.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(server.listening, true);
  const late = await connect(port);
  late.get('/late');
  const r = await late.response();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'late ok');
  assert.equal(r.headers.connection, 'close');
  assert.equal(unlistens, 0);
  release();
  release(); // idempotent
  assert.equal(unlistens, 1);
  assert.equal(sd.shouldListen, false);
  await until(() => !server.listening, 'the listener to close');
  h.release();
  await c.response();
  c.destroy();
  late.destroy();
  assert.equal((await sd.done).exit_code, 0);
  assert.equal(unlistens, 1);
});

test("the drain's end closes the listener whatever is held", async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 300 });
  const server = http.createServer((req, res) => res.end('ok'));
  sd.attach(server);
  await listen(t, server);
  const release = sd.holdListener();
  const job = sd.guard(); // never released: the deadline ends the drain
  assert.ok(job);
  sd.trigger('test');
  assert.equal(server.listening, true);
  const report = await sd.done;
  assert.equal(report.forced, 'drain_timeout');
  assert.equal(sd.shouldListen, false);
  await until(() => !server.listening, 'the listener to close');
  release();
});
