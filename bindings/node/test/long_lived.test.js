'use strict';
// Long-lived work (the core's long_lived policies): WebSockets (ws), Socket.io, event
// streams (SSE), and the HTTP/2 two-phase GOAWAY. Real clients, 127.0.0.1 only; nothing
// waits on wall-clock thresholds beyond the bounds of the waits.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const http2 = require('node:http2');

const { Shutdown } = require('..');
const { until, listen } = require('./helpers.js');

test('longLived: validated, and its refusals name the option', () => {
  assert.throws(() => new Shutdown({ manualClock: true, longLived: [] }), (e) => e instanceof TypeError && e.option === 'longLived');
  assert.throws(
    () => new Shutdown({ manualClock: true, longLived: { websocket: {} } }),
    (e) => e instanceof TypeError && e.option === 'longLived' && e.field === 'long_lived',
  );
  // Judged by the core's schema (long_lived), which names the field; the reason says how.
  assert.throws(
    () => new Shutdown({ manualClock: true, longLived: { websocket: { grace: -1 } } }),
    (e) => e instanceof RangeError && e.option === 'longLived' && e.field === 'long_lived',
  );
  assert.throws(
    () => new Shutdown({ manualClock: true, longLived: { websocket: { grace: 1, notifyAt: 'later' } } }),
    (e) => e instanceof RangeError && e.option === 'longLived' && /notify_at/.test(e.message),
  );
  assert.throws(
    () => new Shutdown({ manualClock: true, longLived: { websocket: { grace: 1, notifyAt: 'closing' } } }),
    (e) => e.code === 'ERR_SHUTDOWN_CONFIG' && e.field === 'long_lived' && e.option === 'longLived',
  );
  assert.throws(() => new Shutdown({ manualClock: true, longLived: { websocket: { grace: 1, graceMs: 1 } } }), TypeError);
});

test('the core event stream: streamsEnding at its milestone, streamsCut after the grace, cancelled from the core', () => {
  const sd = new Shutdown({ manualClock: true, drainTimeout: 10_000, longLived: { websocket: { grace: 1000 }, sse: { grace: 200, notifyAt: 'draining' } } });
  const seen = [];
  for (const e of ['draining', 'quiescing', 'closing', 'done']) sd.on(e, () => seen.push(`${e}@${sd.reachedAt(e)}`));
  sd.on('streamsEnding', (kind) => seen.push(`ending ${kind}@${sd.elapsed}`));
  sd.on('streamsCut', (c) => seen.push(`cut ${c.kind} ${c.count}@${sd.elapsed}`));
  sd.signal.addEventListener('abort', () => seen.push('abort'));
  const ws = sd.guard('websocket');
  const sse = sd.guard('sse');
  sd.advance(10);
  sd.trigger('test');
  assert.equal(sd.isEnding('sse'), true);
  assert.equal(sd.isEnding('websocket'), true);
  sd.advance(200);
  assert.equal(sd.isCut('sse'), true);
  sse.release();
  sd.advance(800);
  assert.equal(sd.isCut('websocket'), true);
  ws.release();
  assert.deepEqual(seen, [
    'draining@10',
    'ending sse@10',
    'quiescing@10',
    'ending websocket@10',
    'cut sse 1@210',
    'cut websocket 1@1010',
    'closing@1010',
    'abort',
    'done@1010',
  ]);
  assert.equal(sd.report.aborted, 2);
  assert.deepEqual(sd.report.aborted_by_kind, { sse: 1, websocket: 1 });
});

// ----- WebSocket (ws) -----------------------------------------------------------------

async function wsServer(t, sd) {
  const { WebSocketServer } = require('ws');
  const server = http.createServer((req, res) => res.end('hello\n'));
  sd.attach(server);
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
  const integration = sd.attachWebSocketServer(wss);
  const port = await listen(t, server);
  t.after(() => wss.close());
  return { server, wss, port, integration };
}

function wsClient(port) {
  const WebSocket = require('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const state = { ws, code: null, reason: null, closedAt: null, error: null };
  ws.on('close', (code, reason) => {
    state.code = code;
    state.reason = reason.toString();
  });
  ws.on('error', (e) => {
    state.error = e;
  });
  state.open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return state;
}

test('ws: an open WebSocket gets close 1001 "going away" at streamsEnding; the drain ends clean, exit 0', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, longLived: { websocket: { grace: 5000 } } });
  const { port } = await wsServer(t, sd);
  const c = wsClient(port);
  await c.open;
  await until(() => sd.inFlight === 1, 'the WebSocket to hold its guard');
  sd.trigger('test');
  const report = await sd.done;
  await until(() => c.code !== null, 'the client to see the close');
  assert.equal(c.code, 1001, 'a close frame, not 1006');
  assert.equal(c.reason, 'going away');
  // The guard is released only once the client answered the close frame (the socket
  // closes after the handshake): the client had its 1001 before the engine was done.
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
});

test('ws: a client that never answers the close is cut after the grace (aborted 1, kind websocket), exit non-zero', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, longLived: { websocket: { grace: 300 } } });
  const { port } = await wsServer(t, sd);
  const c = wsClient(port);
  await c.open;
  await until(() => sd.inFlight === 1, 'the WebSocket to hold its guard');
  c.ws._socket.pause(); // never reads the close frame, never answers it
  const cuts = [];
  sd.on('streamsCut', (e) => cuts.push(e));
  sd.trigger('test');
  const report = await sd.done;
  assert.deepEqual(cuts, [{ kind: 'websocket', count: 1 }]);
  assert.equal(report.aborted, 1);
  assert.deepEqual(report.aborted_by_kind, { websocket: 1 });
  assert.notEqual(report.exit_code, 0);
  c.ws.terminate();
});

test('ws without attach(): each connection holds its own long-lived guard until it closes', async (t) => {
  const { WebSocketServer } = require('ws');
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, longLived: { websocket: { grace: 5000 } } });
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => wss.close());
  await new Promise((resolve) => wss.once('listening', resolve));
  sd.attachWebSocketServer(wss);
  const c = wsClient(wss.address().port);
  await c.open;
  await until(() => sd.inFlight === 1, 'the WebSocket to hold its guard');
  sd.trigger('test');
  const report = await sd.done;
  await until(() => c.code !== null, 'the client to see the close');
  assert.equal(c.code, 1001);
  assert.equal(report.exit_code, 0);
});

// ----- Socket.io ------------------------------------------------------------------

// A socket.io server on `port` (0: any), attached to `sd` when given.
async function sioServer(t, sd, port, options) {
  const { Server } = require('socket.io');
  const server = http.createServer();
  const att = sd?.attach(server) ?? null;
  const io = new Server(server);
  if (sd) sd.attachSocketIo(io, options);
  t.after(() => io.close());
  const p = await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
  t.after(() => {
    server.closeAllConnections?.();
    server.close();
  });
  return { server, io, att, port: p };
}

// `att`: the attachment whose refusals are read when the client sees its disconnect
// (a refused poll comes before it; a reconnection attempt after it is not the drain's).
function sioClient(t, port, transports, att) {
  const { io: connectIo } = require('socket.io-client');
  // Stock reconnection, with a short fixed backoff (the wait is bounded by until()).
  const client = connectIo(`http://127.0.0.1:${port}`, { transports, reconnectionDelay: 20, reconnectionDelayMax: 50, randomizationFactor: 0 });
  t.after(() => client.close());
  const state = { client, connects: 0, reasons: [], refusedBefore: null };
  client.on('connect', () => state.connects++);
  client.on('disconnect', (reason) => {
    state.reasons.push(reason);
    if (state.refusedBefore === null) state.refusedBefore = att.stats.refused;
  });
  return state;
}

// The trigger right after a message answered the client's pending poll: with polling
// what the drain writes waits for the client's next poll, a new connection that comes
// after admission has closed.
function betweenPolls(sd, io) {
  const [esock] = Object.values(io.engine.clients);
  io.emit('hello');
  if (esock.transport.name === 'polling') assert.equal(esock.transport.writable, false, 'no poll pending');
  sd.trigger('test');
}

test('attachSocketIo(): its options are validated', () => {
  const sd = new Shutdown({ manualClock: true });
  const { Server } = require('socket.io');
  const io = new Server(http.createServer());
  assert.throws(() => sd.attachSocketIo(io, { reconnect: 'no' }), (e) => e instanceof TypeError && e.option === 'reconnect');
  assert.throws(() => sd.attachSocketIo({}), (e) => e instanceof TypeError && e.option === 'io');
  io.close();
});

for (const transports of [['websocket'], ['polling']]) {
  const name = transports[0];
  // The point of a rolling restart: the same client object reconnects by itself to the
  // next instance (here a second server on the same port, once the first has exited).
  test(`socket.io (${name}): at streamsEnding the client sees "transport close" and reconnects by itself to the next instance; no poll refused, Done, exit 0`, async (t) => {
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, longLived: { 'socket.io': { grace: 5000 } } });
    const first = await sioServer(t, sd, 0);
    const io = first.io;
    const c = sioClient(t, first.port, transports, first.att);
    await until(() => c.connects === 1, 'the first connect');
    betweenPolls(sd, io);
    const report = await sd.done;
    assert.equal(report.exit_code, 0);
    assert.equal(report.aborted, 0);
    await until(() => c.reasons.length === 1, 'the disconnect');
    assert.equal(c.refusedBefore, 0, 'no request of the client refused');
    assert.deepEqual(c.reasons, ['transport close']);
    assert.equal(c.client.active, true, 'socket.io-client reconnects by itself');
    // The first instance is gone: its engine.io and listener closed.
    first.io.close();
    first.server.closeAllConnections?.();
    await new Promise((resolve) => first.server.close(() => resolve()));
    const next = await sioServer(t, null, first.port);
    await until(() => c.connects === 2, 'the reconnect to the next instance');
    assert.equal(next.io.engine.clientsCount, 1);
    assert.deepEqual(c.reasons, ['transport close']);
  });

  test(`socket.io (${name}) reconnect: false: the client sees "io server disconnect" and does not reconnect; no poll refused, Done, exit 0`, async (t) => {
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, longLived: { 'socket.io': { grace: 5000 } } });
    const { port, att, io } = await sioServer(t, sd, 0, { reconnect: false });
    const c = sioClient(t, port, transports, att);
    await until(() => c.connects === 1, 'the first connect');
    betweenPolls(sd, io);
    const report = await sd.done;
    assert.equal(report.exit_code, 0);
    assert.equal(report.aborted, 0);
    await until(() => c.reasons.length === 1, 'the disconnect');
    assert.deepEqual(c.reasons, ['io server disconnect']);
    assert.equal(att.stats.refused, 0, 'no request of the client refused (its close packet included)');
    assert.equal(c.client.active, false, 'socket.io-client does not reconnect after "io server disconnect"');
  });

  // An event the client sent with an ack, its handler still running at streamsEnding
  // (a payment being written): the client gets the ack, then is told to end. Before,
  // the engine.io connection closed under the handler and the ack was lost.
  for (const reconnect of [true, false]) {
    test(`socket.io (${name}, reconnect: ${reconnect}): an ack still owed at streamsEnding reaches the client before it is told to end`, async (t) => {
      const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, longLived: { 'socket.io': { grace: 5000 } } });
      const { port, att, io } = await sioServer(t, sd, 0, { reconnect });
      let release = null;
      io.on('connection', (socket) => {
        socket.on('pay', (n, ack) => {
          release = () => ack({ paid: n });
        });
        socket.on('ping2', (ack) => ack('pong'));
      });
      const c = sioClient(t, port, transports, att);
      await until(() => c.connects === 1, 'the first connect');
      const order = [];
      c.client.on('disconnect', (reason) => order.push(`disconnect: ${reason}`));
      // An ack the handler answers at once is not held back.
      assert.equal(await new Promise((resolve) => c.client.emit('ping2', resolve)), 'pong');
      c.client.emit('pay', 7, (r) => order.push(`ack ${r.paid}`));
      await until(() => release !== null, 'the handler to start');
      sd.trigger('test');
      // Several loop turns: the client is not told while its ack is owed.
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      assert.deepEqual(order, [], 'told to end while an ack was owed');
      release();
      await until(() => order.length === 2, 'the ack and the disconnect');
      assert.deepEqual(order, ['ack 7', `disconnect: ${reconnect ? 'transport close' : 'io server disconnect'}`]);
      const report = await sd.done;
      assert.equal(report.exit_code, 0);
      assert.equal(report.aborted, 0);
    });
  }
}

// ----- event streams (SSE) ----------------------------------------------------------

test('eventStream(): at streamsEnding the stream gets its retry hint and ends, before the drain deadline; exit 0', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 5000, longLived: { sse: { grace: 2000 } } });
  const server = http.createServer((req, res) => {
    if (req.url !== '/events') return res.end('hello\n');
    const stream = sd.eventStream(req, res, { retry: 500 });
    stream.send('hello', { event: 'greeting', id: '1' });
  });
  sd.attach(server);
  const port = await listen(t, server);
  let body = '';
  let ended = false;
  let headers = null;
  const req = http.get({ host: '127.0.0.1', port, path: '/events', headers: { accept: 'text/event-stream' } }, (res) => {
    headers = res.headers;
    res.setEncoding('utf8');
    res.on('data', (c) => {
      body += c;
    });
    res.on('end', () => {
      ended = true;
    });
  });
  req.on('error', () => {});
  await until(() => body.includes('data: hello'), 'the first event');
  assert.equal(headers['content-type'], 'text/event-stream');
  assert.equal(headers['cache-control'], 'no-cache');
  assert.equal(sd.inFlight, 1, 'one long-lived guard, not a request guard too');
  sd.trigger('test');
  const report = await sd.done;
  await until(() => ended, 'the end of the stream');
  assert.match(body, /event: greeting\nid: 1\ndata: hello\n\n/);
  assert.ok(body.endsWith('retry: 500\n\n'), JSON.stringify(body));
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
  assert.ok(report.timeline.at(-1).at_ms < 5000, 'before the drain deadline');
});

// ----- HTTP/2 ---------------------------------------------------------------------

// The stream's HEADERS are on the wire before the trigger, not yet read by the server:
// the client's session writes them in the check phase after request() (a native
// immediate, which runs before the JavaScript ones), and the server reads only in the
// next poll phase. With session.goaway(NO_ERROR, 2^31-1) as the first phase, nghttp2
// ignores that stream once its GOAWAY is sent (and a session with no stream open stops
// reading): REFUSED_STREAM at the client.
test('http2: a stream sent just before the trigger completes with 200 (graceful GOAWAY, no REFUSED_STREAM)', async (t) => {
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  let serverSession = null;
  const server = http2.createServer((req, res) => {
    setTimeout(() => res.end('ok\n'), 20);
  });
  server.on('session', (s) => {
    serverSession = s;
  });
  sd.attach(server);
  const port = await listen(t, server);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  session.on('error', () => {});
  const goaways = [];
  session.on('goaway', (code, lastStreamID) => goaways.push([code, lastStreamID]));
  const get = (path) =>
    new Promise((resolve) => {
      const s = session.request({ ':path': path });
      let status = null;
      s.on('response', (h) => {
        status = h[':status'];
      });
      s.on('error', (e) => resolve({ status, error: e.code + ' ' + e.message }));
      s.on('close', () => resolve({ status, error: null }));
      s.resume();
      s.end();
    });
  assert.deepEqual(await get('/first'), { status: 200, error: null });
  const late = get('/late');
  await new Promise((resolve) => {
    setImmediate(() => {
      assert.equal(session.state.outboundQueueSize, 0, 'the HEADERS of /late have left the client');
      assert.equal(serverSession.state.lastProcStreamID, 1, 'the server has not read them yet');
      sd.trigger('test');
      resolve();
    });
  });
  assert.deepEqual(await late, { status: 200, error: null });
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
  // close() sends its GOAWAY, and destroy() at the session's end may repeat it.
  assert.ok(goaways.length >= 1);
  for (const g of goaways) assert.deepEqual(g, [http2.constants.NGHTTP2_NO_ERROR, 3], 'GOAWAY with the last stream the client sent');
});
