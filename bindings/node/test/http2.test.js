'use strict';
// attach() on http2 servers: every session is a connection of the core and every stream
// a request from it, as sockets and requests are for HTTP/1. http2.createServer and
// http2.createSecureServer (allowHTTP1: its HTTP/1 requests too), real node:http2
// clients, 127.0.0.1 only; no wall-clock thresholds (waits are bounded by until()).

const test = require('node:test');
const assert = require('node:assert/strict');
const http2 = require('node:http2');
const https = require('node:https');
const path = require('node:path');

const { Shutdown } = require('..');
const { until, credentials, holder } = require('./helpers.js');

const FLAVOURS = [
  { name: 'createServer', scheme: 'http', make: (handler) => http2.createServer(handler) },
  { name: 'createSecureServer (allowHTTP1)', scheme: 'https', make: (handler) => http2.createSecureServer({ ...credentials(), allowHTTP1: true }, handler) },
];


async function start(t, flavour, sd, handler) {
  const server = flavour.make(handler);
  const att = sd.attach(server);
  const port = await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  t.after(() => server.close());
  return { server, att, port };
}

// A node:http2 client session with its GOAWAYs and close recorded.
function client(t, flavour, port) {
  const session = http2.connect(`${flavour.scheme}://127.0.0.1:${port}`, { rejectUnauthorized: false });
  t.after(() => session.destroy());
  const state = { session, goaways: [], closed: false, errors: [] };
  session.on('goaway', (code, last) => state.goaways.push([code, last]));
  session.on('close', () => {
    state.closed = true;
  });
  session.on('error', (e) => state.errors.push(e.code));
  state.get = (p) =>
    new Promise((resolve) => {
      const s = session.request({ ':path': p });
      let status = null;
      let body = '';
      s.setEncoding('utf8');
      s.on('response', (h) => {
        status = h[':status'];
      });
      s.on('data', (d) => {
        body += d;
      });
      s.on('error', (e) => resolve({ status, body, id: s.id, error: e.code }));
      s.on('close', () => resolve({ status, body, id: s.id, error: null }));
      s.end();
    });
  return state;
}

for (const flavour of FLAVOURS) {
  const skip = (t) => {
    if (flavour.scheme === 'https' && credentials() === null) {
      t.skip('openssl is not available to make a test certificate');
      return true;
    }
    return false;
  };

  test(`http2 ${flavour.name}: an idle session is a core connection, dismissed after connectionGrace with a graceful GOAWAY; exit 0`, async (t) => {
    if (skip(t)) return;
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, connectionGrace: 100 });
    const h = holder();
    const { att, port } = await start(t, flavour, sd, h.handler);
    const c = client(t, flavour, port);
    assert.equal((await c.get('/')).status, 200);
    assert.equal(att.connections, 1);
    assert.equal(sd.progress().connections, 1, 'the core knows the session');
    sd.trigger('test');
    const report = await sd.done;
    assert.equal(report.exit_code, 0);
    assert.equal(report.aborted, 0);
    assert.equal(att.stats.connectionsDestroyed, 0, 'closed, not cut');
    assert.equal(att.connections, 0);
    await until(() => c.closed, 'the client session to close');
    assert.deepEqual(c.goaways[0], [http2.constants.NGHTTP2_NO_ERROR, 1]);
    assert.deepEqual(c.errors, []);
  });

  test(`http2 ${flavour.name}: a stream on a session after admission closed is served (the session is still the core's), then GOAWAY; in flight ones finish; exit 0`, async (t) => {
    if (skip(t)) return;
    // A grace longer than the test: the session is not dismissed for idleness.
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000, connectionGrace: 60_000 });
    const h = holder();
    const { att, port } = await start(t, flavour, sd, h.handler);
    const c = client(t, flavour, port);
    assert.equal((await c.get('/')).status, 200);
    const held = c.get('/hold');
    await until(() => h.waiting.length === 1, 'the held stream to arrive');
    sd.trigger('test');
    await sd.quiescing;
    assert.equal(sd.accepting, false);
    // The held stream's answer is no keep-alive (asked at draining): the session's
    // graceful close has begun, its PING written in this turn's check phase. The client
    // answers the PING only once it has read it, so this stream, sent now, arrives
    // before the answer: served, and the GOAWAY names it as the last stream.
    const late = await c.get('/late');
    assert.equal(late.status, 200, JSON.stringify(late));
    assert.equal(late.error, null);
    await until(() => c.goaways.length > 0, 'the GOAWAY');
    assert.deepEqual(c.goaways[0], [http2.constants.NGHTTP2_NO_ERROR, late.id], 'the last stream id is the last stream served');
    h.release();
    const r = await held;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'held\n');
    const report = await sd.done;
    assert.equal(report.exit_code, 0);
    assert.equal(report.aborted, 0);
    assert.equal(att.stats.refused, 0);
    await until(() => c.closed, 'the client session to close');
  });

  test(`http2 ${flavour.name}: at the drain deadline a session with a stream in flight is cut and counted (aborted 1), exit non-zero`, async (t) => {
    if (skip(t)) return;
    const sd = new Shutdown({ exitOnDone: false, drainTimeout: 300 });
    const h = holder();
    const { att, port } = await start(t, flavour, sd, h.handler);
    const c = client(t, flavour, port);
    const held = c.get('/hold');
    await until(() => h.waiting.length === 1, 'the held stream to arrive');
    sd.trigger('test');
    const report = await sd.done;
    assert.equal(report.aborted, 1);
    assert.notEqual(report.exit_code, 0);
    assert.equal(att.stats.connectionsDestroyed, 1);
    assert.equal(att.stats.requestsAborted, 1);
    const r = await held;
    assert.equal(r.status, null, 'the client never got a response: its stream was cut');
  });
}

test('http2 createSecureServer allowHTTP1: an HTTP/1.1 request is a request of its connection too (served, Connection: close once draining); exit 0', async (t) => {
  if (credentials() === null) {
    t.skip('openssl is not available to make a test certificate');
    return;
  }
  const sd = new Shutdown({ exitOnDone: false, drainTimeout: 10_000 });
  const h = holder();
  const { att, port } = await start(t, FLAVOURS[1], sd, h.handler);
  const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
  t.after(() => agent.destroy());
  const get = (p) =>
    new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: p, agent, ALPNProtocols: ['http/1.1'] }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, body, connection: res.headers.connection, version: res.httpVersion }));
      });
      req.on('error', reject);
    });
  const first = await get('/');
  assert.equal(first.version, '1.1');
  assert.equal(first.status, 200);
  const held = get('/hold');
  await until(() => h.waiting.length === 1, 'the held request to arrive');
  assert.equal(att.connections, 1, 'its connection is tracked');
  sd.trigger('test');
  h.release();
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(r.connection, 'close');
  const report = await sd.done;
  assert.equal(report.exit_code, 0);
  assert.equal(report.aborted, 0);
});
