'use strict';
// attach() in-process: https, http2 (GOAWAY), Express, the drain deadline, options.
// Servers bind 127.0.0.1 only; nothing waits on wall-clock thresholds.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const http2 = require('node:http2');
const https = require('node:https');
const path = require('node:path');

const { Shutdown } = require('..');
const { connect, until, credentials, holder, listen } = require('./helpers.js');


test('attach() validates its arguments', () => {
  const sd = new Shutdown({ manualClock: true });
  const server = http.createServer();
  assert.throws(() => sd.attach({}), TypeError);
  assert.throws(() => sd.attach(server, { readinessPath: 'readyz' }), (e) => e instanceof TypeError && e.option === 'readinessPath');
  assert.throws(() => sd.attach(server, { readinesPath: '/readyz' }), (e) => e instanceof TypeError && e.option === 'readinesPath');
  assert.throws(() => sd.attach(server, { kind: '' }), (e) => e instanceof TypeError && e.option === 'kind');
  const a = sd.attach(server, { readinessPath: '/readyz' });
  assert.notEqual(server.emit, http.Server.prototype.emit);
  a.detach();
  assert.equal(server.emit, http.Server.prototype.emit, 'detach() restores the server');
});

test('Express: guards per request, in-flight responses finish, the drain ends when they do', async (t) => {
  const express = require('express');
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const app = express();
  app.get('/hold', (req, res) => h.handler(req, res));
  app.get('/', (req, res) => res.send('hello'));
  const server = http.createServer(app);
  const att = sd.attach(server, { readinessPath: '/readyz', kind: 'http' });
  const port = await listen(t, server);

  const c = await connect(port);
  c.get('/readyz');
  assert.equal((await c.response()).status, 200);
  c.get('/');
  assert.equal((await c.response()).body, 'hello');
  c.get('/hold');
  await until(() => h.waiting.length === 1, 'the request to arrive');
  assert.equal(sd.inFlight, 1);

  const closed = new Promise((resolve) => server.on('close', resolve));
  sd.trigger('test');
  await sd.quiescing;
  h.release();
  const r = await c.response();
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.in_flight_at_trigger, 1);
  await closed; // the listener closed and every connection ended
  assert.equal(att.connections, 0);
});

test('the drain deadline destroys what is left and counts it', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 100, forcedExitCode: 3 });
  const h = holder();
  const server = http.createServer(h.handler);
  const att = sd.attach(server);
  const port = await listen(t, server);
  const conns = [await connect(port), await connect(port)];
  for (const c of conns) c.get('/hold');
  await until(() => h.waiting.length === 2, 'two requests in flight');
  const aborted = new Promise((resolve) => sd.signal.addEventListener('abort', resolve));
  sd.trigger('test');
  await aborted;
  const report = await sd.done;
  assert.equal(report.forced, 'drain_timeout');
  assert.equal(report.aborted, 2);
  assert.equal(report.exit_code, 3);
  assert.equal(att.stats.connectionsDestroyed, 2);
  assert.equal(att.stats.requestsAborted, 2);
  for (const c of conns) await c.whenClosed();
  assert.equal(conns[0].responses.length, 0);
});

test('http2: GOAWAY on the session, streams in flight finish, new streams are refused', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const server = http2.createServer(h.handler);
  const att = sd.attach(server, { readinessPath: '/readyz' });
  const port = await listen(t, server);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const goaway = new Promise((resolve) => session.on('goaway', resolve));
  session.on('error', () => {});
  const request = (p) =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':path': p });
      let body = '';
      s.setEncoding('utf8');
      s.on('response', (headers) => {
        s.on('data', (d) => {
          body += d;
        });
        s.on('end', () => resolve({ status: headers[':status'], body }));
      });
      s.on('error', reject);
      s.end();
    });
  assert.equal((await request('/readyz')).status, 200);
  const held = request('/hold');
  await until(() => h.waiting.length === 1, 'the stream to arrive');

  sd.trigger('test');
  await goaway;
  await assert.rejects(request('/'), 'no new stream after GOAWAY');
  h.release();
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'held\n');
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  session.destroy();
  assert.equal(att.stats.requestsAborted, 0);
});


test('https: idle keep-alive connections close at quiesce, busy ones after their response', async (t) => {
  const creds = credentials();
  if (creds === null) {
    t.skip('openssl is not available to make a test certificate');
    return;
  }
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const server = https.createServer(creds, h.handler);
  server.keepAliveTimeout = 600_000;
  sd.attach(server);
  const port = await listen(t, server);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: creds.cert });
  t.after(() => agent.destroy());
  // The held request goes on a connection of its own, not the idle pooled one.
  const other = new https.Agent({ keepAlive: true, ca: creds.cert });
  t.after(() => other.destroy());
  const get = (p) =>
    new Promise((resolve, reject) => {
      const a = p === '/hold' ? other : agent;
      const req = https.get({ host: '127.0.0.1', port, path: p, agent: a, ca: creds.cert }, (res) => {
        const socket = res.socket;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, socket }));
      });
      req.on('error', reject);
    });
  const first = await get('/');
  assert.equal(first.headers.connection, 'keep-alive');
  const idleSocket = first.socket;
  const idleClosed = new Promise((resolve) => idleSocket.on('close', resolve));
  const held = get('/hold');
  await until(() => h.waiting.length === 1, 'the request to arrive');

  sd.trigger('test');
  await sd.quiescing;
  await idleClosed; // closed by the server while a request is still in flight
  assert.equal(sd.phase, 'draining');
  h.release();
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  assert.equal((await sd.done).exit_code, 0);
});

test('gradual advice: during the announce window only some responses are told to close', async (t) => {
  // A day-long window: the ramp stays at its start (p ~ 1e-8 per ms) for this test.
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 86_400_000, closeStrategy: 'gradual', gracePeriod: null });
  const server = http.createServer((req, res) => res.end('ok'));
  sd.attach(server);
  const port = await listen(t, server);
  sd.trigger('test');
  const c = await connect(port);
  c.get('/');
  const r = await c.response();
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'keep-alive', 'at the very start of the ramp, keep-alive is advised');
  // End the window early (a second trigger forces): now every response closes.
  sd.trigger('again');
  await sd.done;
  await c.whenClosed();
});

test('work in flight at the trigger is handed to the core, pipelined requests included', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const server = http.createServer(h.handler);
  sd.attach(server);
  const port = await listen(t, server);
  const c = await connect(port);
  // Two pipelined requests on one connection, and a finished one before them.
  c.get('/');
  await c.response();
  c.write('GET /hold?1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hold?2 HTTP/1.1\r\nHost: x\r\n\r\n');
  const other = await connect(port);
  other.get('/hold?3');
  await until(() => h.waiting.length === 3, 'three requests in the handler');
  assert.equal(sd.inFlight, 3);
  sd.trigger('test');
  assert.equal(sd.inFlight, 3, 'now as guards of the core');
  assert.equal(sd.accepting, false);
  h.release();
  for (const conn of [c, other]) await conn.whenClosed();
  assert.deepEqual(c.responses.map((r) => r.status), [200, 200, 200]);
  assert.equal(other.responses[0].status, 200);
  const report = await sd.done;
  assert.equal(report.in_flight_at_trigger, 3);
  assert.equal(report.exit_code, 0);
});

test('the quiesce boundary: what was already sent is served, what is arriving is kept, idle connections close', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 60_000, announceProbes: 1, announceSettle: 0, drainTimeout: 10_000, gracePeriod: null });
  const h = holder();
  const server = http.createServer(h.handler);
  server.keepAliveTimeout = 600_000;
  const att = sd.attach(server);
  const port = await listen(t, server);
  const busy = await connect(port);
  busy.get('/hold');
  const idle = await connect(port);
  idle.get('/');
  assert.equal((await idle.response()).status, 200);
  const slow = await connect(port);
  const silent = await connect(port);
  await until(() => h.waiting.length === 1, 'the held request');

  sd.trigger('deploy'); // the announce window
  assert.equal(sd.inFlight, 1, 'the attachment reserve is not work in flight');
  // A request sent in the same instant admission closes: it reached the socket
  // before the close, Node reads it after. And a request still arriving.
  const late = await connect(port);
  late.get('/?late');
  slow.write('GET /?slow HTTP/1.1\r\nHost: x\r\n');
  sd.readinessProbed(); // the balancer saw "not ready": admission closes now
  assert.equal(sd.accepting, false);

  const r = await late.response();
  assert.equal(r.status, 200, 'already sent before the close: served');
  assert.equal(r.headers.connection, 'close');
  await idle.whenClosed();
  await silent.whenClosed();
  const { refused } = require('./helpers.js');
  assert.equal(await refused(port), true, 'the listener is closed');
  assert.equal(slow.closed, false);
  slow.write('\r\n');
  const rs = await slow.response();
  assert.equal(rs.status, 200, 'was arriving at the close: kept and served');
  h.release();
  assert.equal((await busy.response()).status, 200);
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
  assert.equal(att.stats.refused, 0);
});

test('a second trigger during the announce window does not count the reserve as aborted work', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 60_000, drainTimeout: 10_000, gracePeriod: null });
  const server = http.createServer((req, res) => res.end('ok'));
  sd.attach(server);
  await listen(t, server);
  sd.trigger('first');
  sd.trigger('second');
  const report = await sd.done;
  assert.equal(report.forced, 'escalation');
  assert.equal(report.aborted, 0);
});

test('a repeated trigger that does not escalate keeps the reserve: the quiesce boundary still holds', async (t) => {
  // forceAt and terminateAt off: the second trigger is counted and changes nothing.
  const sd = new Shutdown({
    exitOnDone: false,
    drainDelay: 60_000,
    announceProbes: 1,
    announceSettle: 0,
    drainTimeout: 10_000,
    gracePeriod: null,
    forceAt: null,
    terminateAt: null,
  });
  const server = http.createServer((req, res) => res.end('ok'));
  server.keepAliveTimeout = 600_000;
  const att = sd.attach(server);
  const port = await listen(t, server);
  const slow = await connect(port);

  sd.trigger('first');
  sd.trigger('second');
  assert.equal(sd.phase, 'draining', 'nothing escalated');
  assert.equal(sd.accepting, true);
  assert.equal(sd.inFlight, 0, 'the reserve is not work in flight');
  // The same boundary as above: a request sent in the instant admission closes, and
  // one still arriving.
  const late = await connect(port);
  late.get('/?late');
  slow.write('GET /?slow HTTP/1.1\r\nHost: x\r\n');
  sd.readinessProbed();
  assert.equal(sd.accepting, false);

  const r = await late.response();
  assert.equal(r.status, 200, 'already sent before the close: served');
  assert.equal(slow.closed, false, 'a request still arriving is kept');
  slow.write('\r\n');
  assert.equal((await slow.response()).status, 200);
  const report = await sd.done;
  assert.equal(report.triggers, 2);
  assert.equal(report.forced, null);
  assert.equal(report.aborted, 0);
  assert.equal(report.exit_code, 0);
  assert.equal(att.stats.refused, 0);
});

test('idle keep-alive and silent connections destroyed at the end are not aborted work', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 10_000 });
  const server = http.createServer((req, res) => res.end('ok'));
  server.keepAliveTimeout = 600_000;
  sd.attach(server);
  const port = await listen(t, server);
  const idle = await connect(port);
  idle.get('/');
  assert.equal((await idle.response()).status, 200);
  const silent = await connect(port);
  sd.trigger('deploy');
  const report = await sd.done;
  for (const c of [idle, silent]) await c.whenClosed();
  assert.equal(report.aborted, 0);
  assert.equal(report.exit_code, 0);
});

test('a drain cut at its deadline counts both the guarded requests and the requests still arriving', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 200, forcedExitCode: 4 });
  const h = holder();
  const server = http.createServer(h.handler);
  const accepted = [];
  server.on('connection', (s) => accepted.push(s));
  sd.attach(server, { kind: 'http' });
  const port = await listen(t, server);
  const busy = await connect(port);
  busy.get('/hold');
  await until(() => h.waiting.length === 1, 'the held request');
  const partial = await connect(port);
  partial.write('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le');
  await until(() => accepted.length === 2 && accepted[1].bytesRead > 0, 'the server to read the partial request');
  sd.trigger('deploy');
  const report = await sd.done;
  assert.equal(report.forced, 'drain_timeout');
  assert.equal(report.aborted, 2);
  assert.deepEqual(report.aborted_by_kind, { http: 1, connection: 1 });
  assert.equal(report.exit_code, 4);
  for (const c of [busy, partial]) await c.whenClosed();
});

test('https: a connection cut while its first request was arriving is counted; a silent one is not', async (t) => {
  const creds = credentials();
  if (creds === null) {
    t.skip('openssl is not available to make a test certificate');
    return;
  }
  const tls = require('node:tls');
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 300 });
  const server = https.createServer(creds, (req, res) => res.end('ok'));
  const accepted = [];
  server.on('secureConnection', (s) => accepted.push(s));
  sd.attach(server);
  const port = await listen(t, server);
  const open = () =>
    new Promise((resolve, reject) => {
      const c = tls.connect({ port, host: '127.0.0.1', ca: creds.cert }, () => resolve(c));
      c.on('error', reject);
    });
  const partial = await open();
  partial.on('error', () => {});
  partial.write('GET /?partial HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  await until(() => accepted.length === 1 && accepted[0].bytesRead > 0, 'the server to read the partial request');
  const silent = await open(); // handshake done, never sends a request byte
  silent.on('error', () => {});
  await until(() => accepted.length === 2, 'both connections accepted');
  const closed = (c) => new Promise((resolve) => (c.destroyed ? resolve() : c.on('close', resolve)));
  sd.trigger('deploy');
  const report = await sd.done;
  await Promise.all([closed(partial), closed(silent)]);
  assert.equal(report.aborted, 1);
  assert.deepEqual(report.aborted_by_kind, { connection: 1 });
  assert.equal(report.exit_code, 1);
});
