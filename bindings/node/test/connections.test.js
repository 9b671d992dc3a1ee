'use strict';
// attach() on the core's connections (core/src/connection): the quiesce boundary as the
// core decides it. A keep-alive connection a client reuses in the instant admission
// closes is served, never reset; a request still arriving when admission closes is
// served; what is cut is counted by the core. Servers bind 127.0.0.1 only; nothing
// waits on wall-clock thresholds but the bounded waits of helpers.js.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');
const tls = require('node:tls');

const { Shutdown } = require('..');
const { connect, until, credentials, listen } = require('./helpers.js');


const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ----- keep-alive reuse in the instant admission closes ------------------------------

// The client reuses its pooled socket right after the trigger (drainDelay 0: admission
// has closed then; 200: the announce window), or in the instant admission closes at the
// end of the window, when the socket has been idle for the whole window: the
// connection grace must then cover the window (connectionGrace 300).
const REUSE = [
  { drainDelay: 0, at: 'trigger' },
  { drainDelay: 200, at: 'trigger' },
  { drainDelay: 200, at: 'quiescing', connectionGrace: 300 },
];

for (const proto of ['http', 'https']) {
  for (const { drainDelay, at, connectionGrace } of REUSE) {
    const name = `${proto}, drainDelay ${drainDelay}: a keep-alive socket reused at ${at}${connectionGrace ? ` (connectionGrace ${connectionGrace})` : ''} is served, not reset`;
    test(name, async (t) => {
      const c = proto === 'https' ? credentials() : {};
      if (c === null) return t.skip('openssl is not available to make a test certificate');
      const sd = new Shutdown({ exitOnDone: false, drainDelay, drainTimeout: 10_000, gracePeriod: null, ...(connectionGrace ? { connectionGrace } : {}) });
      const handler = (req, res) => res.end('ok\n');
      const server = proto === 'https' ? https.createServer(c, handler) : http.createServer(handler);
      server.keepAliveTimeout = 600_000;
      sd.attach(server);
      const port = await listen(t, server);
      const mod = proto === 'https' ? https : http;
      const agent = new mod.Agent({ keepAlive: true, maxSockets: 1, ca: c.cert });
      t.after(() => agent.destroy());
      const get = () =>
        new Promise((resolve, reject) => {
          const req = mod.get({ host: '127.0.0.1', port, path: '/', agent, ca: c.cert }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => {
              body += d;
            });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, reused: req.reusedSocket }));
          });
          req.on('error', reject);
        });
      const first = await get();
      assert.equal(first.headers.connection, 'keep-alive');
      let second = null;
      const reuse = () => {
        second = get();
        second.catch(() => {});
      };
      // At quiescing: after the attachment's own listener has run.
      if (at === 'quiescing') sd.once('quiescing', reuse);
      sd.trigger('deploy');
      if (at === 'trigger') reuse();
      await until(() => second !== null, 'admission to close');
      const r = await second;
      assert.equal(r.reused, true, 'the request went on the pooled keep-alive socket');
      assert.equal(r.status, 200);
      assert.equal(r.headers.connection, 'close');
      const report = await sd.done;
      assert.equal(report.exit_code, 0);
      assert.equal(report.aborted, 0);
    });
  }
}

// A keep-alive socket idle for longer than the connection grace is dismissed at the
// trigger; the client sends its next request in that same tick. Its bytes are in the
// kernel, not yet read by Node: attach() decides only after a poll phase has run, sees
// the request and serves it (Connection: close) instead of resetting the client.
for (const order of ['before', 'after']) {
  test(`http: a request written on an idle socket in the tick of its dismissal (${order} the trigger) is served, not reset`, async (t) => {
    const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 10_000, connectionGrace: 20 });
    const server = http.createServer((req, res) => res.end('ok\n'));
    server.keepAliveTimeout = 600_000;
    const att = sd.attach(server);
    const port = await listen(t, server);
    const clients = [];
    for (let i = 0; i < 8; i++) clients.push(await connect(port));
    for (const c of clients) c.get('/');
    for (const c of clients) assert.equal((await c.response()).status, 200);
    await sleep(60); // idle for longer than the grace: dismissed at the trigger
    if (order === 'after') sd.trigger('deploy');
    for (const c of clients) c.get('/?reused');
    if (order === 'before') sd.trigger('deploy');
    for (const c of clients) {
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(r.headers.connection, 'close');
    }
    const report = await sd.done;
    assert.equal(report.exit_code, 0);
    assert.equal(report.aborted, 0);
    assert.equal(att.stats.refused, 0);
  });
}

// ----- a request still arriving when admission closes ----------------------------------

test('http, drainDelay 0: a request half sent at the trigger is served when the rest arrives', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 10_000 });
  const server = http.createServer((req, res) => res.end('ok\n'));
  server.keepAliveTimeout = 600_000;
  const accepted = [];
  server.on('connection', (s) => accepted.push(s));
  const att = sd.attach(server);
  const port = await listen(t, server);
  const partial = await connect(port);
  partial.write('GET /?partial HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  await until(() => accepted.length === 1 && accepted[0].bytesRead > 0, 'the server to read the partial request');
  sd.trigger('deploy');
  await sleep(150); // past the connection grace (100 ms): the core has dismissed it
  assert.equal(partial.closed, false, 'a connection with a request arriving is not cut');
  partial.write('\r\n');
  const r = await partial.response();
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  await partial.whenClosed();
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
  assert.equal(att.stats.refused, 0);
});

function tlsOpen(port, c, socket) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca: c.cert, socket }, () => resolve(s));
    s.on('error', reject);
  });
}

test('https, drainDelay 200: a first request half sent on a TLS connection is served across the boundary', async (t) => {
  const c = credentials();
  if (c === null) return t.skip('openssl is not available to make a test certificate');
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 200, drainTimeout: 10_000, gracePeriod: null });
  const server = https.createServer(c, (req, res) => res.end('ok\n'));
  const secured = [];
  server.on('secureConnection', (s) => secured.push(s));
  sd.attach(server);
  const port = await listen(t, server);
  const partial = await tlsOpen(port, c);
  partial.on('error', () => {});
  let got = '';
  partial.setEncoding('latin1');
  partial.on('data', (d) => {
    got += d;
  });
  let closed = false;
  partial.on('close', () => {
    closed = true;
  });
  partial.write('GET /?partial HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  await until(() => secured.length === 1 && secured[0].bytesRead > 0, 'the server to read the partial request');
  sd.trigger('deploy');
  await sd.quiescing;
  await sleep(150); // past the boundary and the connection grace
  assert.equal(closed, false, 'a TLS connection with its first request arriving is not cut');
  partial.write('\r\n');
  await until(() => /\r\n\r\nok\n$/.test(got) || closed, 'the response');
  assert.match(got, /^HTTP\/1.1 200 /);
  assert.match(got, /\r\nConnection: close\r\n/i);
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
});

test('https, drainDelay 0: a TLS handshake begun after the trigger on a connection accepted before it is served', async (t) => {
  const c = credentials();
  if (c === null) return t.skip('openssl is not available to make a test certificate');
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 10_000 });
  const server = https.createServer(c, (req, res) => res.end('ok\n'));
  const accepted = [];
  server.on('connection', (s) => accepted.push(s));
  sd.attach(server);
  const port = await listen(t, server);
  const tcp = net.connect(port, '127.0.0.1');
  tcp.on('error', () => {});
  await until(() => accepted.length === 1, 'the server to accept the TCP connection');
  sd.trigger('deploy'); // admission closes before the handshake has begun
  const s = await tlsOpen(port, c, tcp);
  let got = '';
  s.setEncoding('latin1');
  s.on('data', (d) => {
    got += d;
  });
  s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await until(() => /\r\n\r\nok\n$/.test(got) || s.destroyed, 'the response');
  assert.match(got, /^HTTP\/1.1 200 /);
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
});

// ----- what the core counts --------------------------------------------------------

test('a request still arriving at the drain deadline is counted by the core (kind connection); idle and silent ones are not', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 300, forcedExitCode: 5 });
  const server = http.createServer((req, res) => res.end('ok'));
  server.keepAliveTimeout = 600_000;
  const accepted = [];
  server.on('connection', (s) => accepted.push(s));
  const att = sd.attach(server);
  const port = await listen(t, server);
  const partial = await connect(port);
  partial.write('GET /?partial HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  await until(() => accepted.length === 1 && accepted[0].bytesRead > 0, 'the server to read the partial request');
  const idle = await connect(port);
  idle.get('/');
  assert.equal((await idle.response()).status, 200);
  const silent = await connect(port);
  await until(() => accepted.length === 3, 'three connections accepted');

  sd.trigger('deploy');
  await idle.whenClosed();
  await silent.whenClosed();
  assert.equal(partial.closed, false, 'kept while its request arrives');
  const report = await sd.done;
  await partial.whenClosed();
  assert.equal(partial.responses.length, 0, 'cut at the deadline, not answered');
  assert.equal(report.forced, 'drain_timeout');
  assert.equal(report.aborted, 1);
  assert.deepEqual(report.aborted_by_kind, { connection: 1 });
  assert.equal(report.exit_code, 5);
  assert.deepEqual(report.hooks, [], 'attach() registers no cleanup hook of its own');
  assert.equal(att.stats.connectionsDestroyed, 1);
  assert.equal(att.stats.requestsAborted, 1);
});

test('connectionGrace: an idle keep-alive connection is dismissed once idle that long after admission closed', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 10_000, connectionGrace: 400 });
  const server = http.createServer((req, res) => res.end('ok'));
  server.keepAliveTimeout = 600_000;
  sd.attach(server);
  const port = await listen(t, server);
  const idle = await connect(port);
  idle.get('/');
  assert.equal((await idle.response()).status, 200);
  const t0 = Date.now();
  sd.trigger('deploy');
  await sleep(150);
  assert.equal(idle.closed, false, 'still within its grace');
  idle.get('/?reused');
  const r = await idle.response();
  assert.equal(r.status, 200, 'a request within the grace is served');
  assert.equal(r.headers.connection, 'close');
  await idle.whenClosed();
  assert.equal((await sd.done).exit_code, 0);
  assert.ok(Date.now() - t0 < 5000);
});

// ----- upgrades --------------------------------------------------------------------

function upgradeServer(sd, onSocket) {
  const server = http.createServer((req, res) => res.end('ok'));
  server.on('upgrade', (req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
    socket.on('data', () => {});
    socket.on('error', () => {});
    onSocket(socket);
  });
  return server;
}

test('an upgraded connection is long-lived work: the drain waits for it, the host closes it', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 10_000 });
  const sockets = [];
  const server = upgradeServer(sd, (s) => sockets.push(s));
  sd.attach(server);
  // The application closes its WebSockets when admission closes (with a close frame).
  sd.on('quiescing', () => setTimeout(() => sockets.forEach((s) => s.end()), 100));
  const port = await listen(t, server);
  const ws = await connect(port);
  ws.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
  assert.equal((await ws.response()).status, 101);
  assert.equal(sd.inFlight, 1, 'the upgrade holds a guard');
  sd.trigger('deploy');
  assert.equal(sd.phase, 'draining');
  await ws.whenClosed();
  const report = await sd.done;
  assert.equal(report.aborted, 0);
  assert.equal(report.exit_code, 0);
});

test('an upgraded connection left open at the drain deadline is destroyed and counted (kind websocket)', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainDelay: 0, drainTimeout: 200, forcedExitCode: 3 });
  const server = upgradeServer(sd, () => {});
  const att = sd.attach(server);
  const port = await listen(t, server);
  const ws = await connect(port);
  ws.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
  assert.equal((await ws.response()).status, 101);
  ws.write('frames of another protocol');
  sd.trigger('deploy');
  const report = await sd.done;
  await ws.whenClosed();
  assert.equal(report.forced, 'drain_timeout');
  assert.deepEqual(report.aborted_by_kind, { websocket: 1 });
  assert.equal(report.exit_code, 3);
  assert.equal(att.stats.connectionsDestroyed, 1);
  assert.equal(att.stats.requestsAborted, 0, 'no HTTP request was cut');
});

// Seen in the nginx e2e: a pooled upstream connection reused just after the trigger
// carried a POST whose handler queues a job. attach() serves the request (a request of
// the quiesce boundary), but a job tracked on its own is refused once admission has
// closed, so the app answered 503. As a child of its request it is admitted, and the
// drain waits for it.
test('a request served after admission closed starts its job as a child of the request (track parent: req)', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  let finishJob = null;
  const outcomes = [];
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') return res.end('hello\n');
    req.resume();
    req.on('end', () => {
      const parent = req.url === '/work?child=1' ? req : undefined;
      try {
        sd.track(new Promise((resolve) => (finishJob = resolve)), { parent, kind: 'job' });
        outcomes.push('tracked');
        res.statusCode = 202;
        res.end('queued\n');
      } catch (e) {
        outcomes.push(e.code);
        res.statusCode = 503;
        res.end('shutting down\n');
      }
    });
  });
  sd.attach(server, { kind: 'http' });
  const port = await listen(t, server);
  const post = (c, url) => c.write(`POST ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi`);
  const a = await connect(port);
  const b = await connect(port);
  a.get('/');
  b.get('/');
  assert.equal((await a.response()).status, 200);
  assert.equal((await b.response()).status, 200);
  sd.trigger('test'); // no announce window: admission closes now; both are idle, within the grace
  post(a, '/work'); // tracked on its own: refused, as any new work
  post(b, '/work?child=1'); // tracked as the request's child
  const ra = await a.response();
  const rb = await b.response();
  assert.equal(ra.status, 503);
  assert.equal(rb.status, 202, 'the job of a served request is admitted');
  assert.equal(rb.headers.connection, 'close');
  assert.deepEqual(outcomes.sort(), ['ERR_SHUTDOWN_CLOSED', 'tracked']);
  await a.whenClosed();
  await b.whenClosed();
  assert.equal(sd.phase, 'draining', 'the drain waits for the job');
  assert.equal(sd.inFlight, 1);
  finishJob();
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
  assert.throws(() => sd.track(Promise.resolve(), { parent: {} }), (e) => e instanceof TypeError);
});
