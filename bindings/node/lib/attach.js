'use strict';
// attach(): drains an http, https or http2 server with a Shutdown.
//
// Every decision is the core's (its connection API, core/src/connection): this file
// only tells it what Node sees and applies its answers to Node's objects.
//
// - every accepted connection is registered with the core (http: 'connection'; https:
//   the TCP connection at 'connection', before its TLS handshake, so a client that
//   connected before admission closed is known to the core from its first instant);
// - every request takes its guard from its connection; a refused one (admission
//   closed, and the connection is not one the drain still serves) is answered 503 with
//   Connection: close;
// - whether a response keeps its connection open is the core's answer, asked when the
//   response head is decided; when the core says close, the socket closes after that
//   response, as Node does for Connection: close;
// - the core dismisses a connection (idle long enough after admission closed, or the
//   drain is over): once a poll phase of the loop has run since (bytes that had reached
//   the kernel are read by then), one on which no byte of a new request has been read
//   since its last response is destroyed, a few hundred per turn of the loop; on one
//   where a request is arriving, the core is told (reading) and the request is served.
//   At Closing, what is left is destroyed; the core counts the requests cut (guards in
//   flight, connections reading);
// - a WebSocket upgrade or a CONNECT tunnel becomes long-lived work (kinds
//   "websocket", "tunnel"): the drain waits for it until its socket closes;
// - an optional readiness route answers 200 while ready and 503 while draining, and
//   reports each 503 to the core (the adaptive announce window);
// - when the core says unlisten (admission closed, and no listener hold of the core
//   keeps it open; at the latest when the drain ends), the listener is closed;
// - http2: every session is a connection of the core and every stream a request from
//   it; the session's Connection: close is its GOAWAY, and a dismissal is the graceful
//   close (goawaySession(): a PING first, then, at its answer, close()).

const net = require('node:net');
const tls = require('node:tls');
const { performance } = require('node:perf_hooks');
const { internal } = require('./internal.js');

const kState = Symbol('libshutdown.connection');
const kSlot = Symbol('libshutdown.request');
const kResponse = Symbol('libshutdown.response'); // on a request: its response
const REFUSED = -1; // connRequest()/acquire(): refused
// Dismissed connections destroyed in one turn of the loop, at most: closing a socket
// costs its close(2) in destroy() and Node's 'close' in the same turn's close phase
// (tens of microseconds each), so 10,000 at once block the loop for a second or more
// (bench/idle.js). A batch stops at this many sockets or this long destroying,
// whichever comes first (the close phase then takes about as long again): a turn stays
// within a few tens of milliseconds on a loaded machine. The price is CPU: batched, the
// whole close costs more than destroying everything in one turn (bench/idle.js, 10,000
// sockets: about 1.2x-1.4x a bare close's CPU batched, 1.15x at once; the kernel's
// close(2) is half of either).
const DESTROY_BATCH = 256;
const DESTROY_BUDGET_MS = 8;

// Http2Server and Http2SecureServer are not exported: recognise them by name.
function isHttp2Server(server) {
  const name = server?.constructor?.name;
  return name === 'Http2Server' || name === 'Http2SecureServer';
}

class ConnectionState {
  constructor(conn, id, handshaking) {
    this.conn = conn; // the accepted net.Socket (for TLS: the TCP socket), or an Http2Session
    this.http = conn; // the socket HTTP is read from (TLS: the TLSSocket once secure)
    this.id = id; // the core's connection id
    this.active = 0; // requests in flight on it
    this.res = null; // its latest response (http/1)
    this.mark = 0; // http.bytesRead when its last response finished (or at connect)
    this.secure = !handshaking; // HTTP can be read from it (TLS: the handshake is done)
    this.reading = false; // told the core a request is arriving
    this.upgraded = -1; // the long-lived guard of an upgrade (or an event stream), while held
    this.owner = null; // the attachment's streamOf() (event streams, ../index.js)
    this.goaway = false; // http2: its graceful close has begun
    this.h2 = false; // an Http2Session (its requests are streams)
  }
}

const OPTIONS = new Set(['readinessPath', 'kind', 'onRefused']);

function attach(sd, server, options) {
  if (server === null || typeof server !== 'object' || typeof server.emit !== 'function' || typeof server.close !== 'function') {
    const e = new TypeError('libshutdown: attach(server): server must be an http, https or http2 server');
    e.code = 'ERR_INVALID_ARG_TYPE';
    e.option = 'server';
    throw e;
  }
  options = options ?? {};
  if (typeof options !== 'object') throw optionError(TypeError, 'options', 'must be an object');
  for (const k of Object.keys(options)) {
    if (!OPTIONS.has(k)) throw optionError(TypeError, k, `is not an option of attach() (known: ${[...OPTIONS].join(', ')})`);
  }
  const readyPath = options.readinessPath ?? null;
  if (readyPath !== null && (typeof readyPath !== 'string' || readyPath[0] !== '/')) {
    throw optionError(TypeError, 'readinessPath', 'must be a path starting with "/"');
  }
  const onRefused = options.onRefused ?? null;
  if (onRefused !== null && typeof onRefused !== 'function') {
    throw optionError(TypeError, 'onRefused', 'must be a function (req, res)');
  }
  const kind = options.kind ?? null;
  if (kind !== null && (typeof kind !== 'string' || kind.length === 0)) {
    throw optionError(TypeError, 'kind', 'must be a non-empty string');
  }

  const I = internal(sd);
  const nat = I.native;
  const drain = I.drain;
  // The per-connection and per-request path: plain functions bound to the engine.
  const C = I.conn;
  const open = C.open;
  const closeConn = C.close;
  const keepAlive = C.keepAlive;
  const finish = C.finish;
  const request = kind === null ? C.request : nat.connRequestFn(kind);
  const release = I.releaseSlot;
  const h2 = isHttp2Server(server);
  const tlsServer = !h2 && server instanceof tls.Server;
  const conns = new Set(); // ConnectionState of every open connection
  const byId = new Map(); // core id -> ConnectionState
  const inflight = new Set(); // http/1 responses in flight
  const h2inflight = new Set(); // http2 responses in flight
  const rpLen = readyPath === null ? 0 : readyPath.length;
  let over = false;
  let listenerClosed = false;

  const stats = {
    /** Requests answered 503 because admission had closed. */
    refused: 0,
    /** Readiness probes answered 503. */
    probesNotReady: 0,
    /** Connections destroyed when the drain ended. */
    connectionsDestroyed: 0,
    /** Requests still in flight, or still arriving, on those connections. */
    requestsAborted: 0,
  };

  // ----- connections ----------------------------------------------------------------

  // Releases the long-lived guard of an upgrade or an event stream, once.
  function releaseUpgraded(st) {
    if (st.upgraded === REFUSED) return;
    const g = st.upgraded;
    st.upgraded = REFUSED;
    if (release(g)) drain();
  }

  // The request of `res` becomes long-lived work of `kind` (an event stream): its guard
  // becomes the core's long-lived guard of its connection (Request::upgrade), and the
  // connection closes when the stream ends. Returns the function that releases it, or
  // null when `res` is not a request of this attachment in flight (http2, refused).
  function streamOf(res, kind) {
    const slot = res[kSlot];
    const st = res[kState];
    // http2: a session carries many streams, one upgraded guard per connection does not
    // fit; the stream keeps its request guard and the caller takes one of its own.
    if (slot === undefined || slot === REFUSED || st === undefined || st.h2 || st.upgraded !== REFUSED) return null;
    res[kSlot] = REFUSED; // onResClose: nothing left to finish
    inflight.delete(res);
    st.active--;
    if (st.res === res) st.res = null;
    if (!res.headersSent) res.shouldKeepAlive = false;
    st.upgraded = nat.requestUpgrade(slot, kind);
    drain(); // it no longer holds the boundary: that may end the drain
    return () => releaseUpgraded(st);
  }

  function onConnClose() {
    const st = this[kState];
    if (st === undefined || st.conn !== this) return;
    closed(st);
  }

  // The connection is closed: the core is told (once).
  function closed(st) {
    if (!conns.delete(st)) return;
    releaseUpgraded(st);
    if (st.id >= 0) {
      byId.delete(st.id);
      if (closeConn(st.id)) drain();
    }
  }

  // `session`: conn is an Http2Session (else a socket, HTTP/1).
  function track(conn, session) {
    let id = open();
    let dismissed = false;
    if (id < 0) {
      id = -id;
      dismissed = true; // accepted once the drain is over
    }
    const st = new ConnectionState(conn, id, tlsServer && !(conn instanceof tls.TLSSocket));
    st.h2 = session;
    st.owner = streamOf;
    conn[kState] = st;
    conns.add(st);
    byId.set(id, st);
    conn.on('close', onConnClose);
    if (dismissed) destroyAtEnd(st);
    return st;
  }

  // The TLS socket of a TCP connection registered at 'connection'.
  function secured(tlsSocket) {
    const st = tlsSocket._parent?.[kState];
    if (st === undefined) return;
    st.http = tlsSocket;
    st.secure = true;
    st.mark = tlsSocket.bytesRead;
    tlsSocket[kState] = st;
    // Dismissed during its handshake (told the core a request was arriving): a client
    // sends its request with or right after the handshake's last flight; one that has
    // sent nothing by the next turn of the loop was idle.
    if (st.reading) {
      setImmediate(() => {
        if (st.active === 0 && tlsSocket.bytesRead === st.mark && !tlsSocket.destroyed && nat.connDismissed(st.id)) {
          tlsSocket.destroy();
        }
      });
    }
  }

  // The core dismissed connection `id`. Whether it is idle is not decided now: a client
  // may have sent a request on it in this very instant, its bytes in the kernel but not
  // read by Node yet (no poll phase has run since), and the socket would look idle and
  // be reset. It is decided once a poll phase has run since the dismissal: two check
  // phases later (setImmediate, see sweep()). Not a 1 ms timer: one set from a poll
  // phase fires in the next turn's timers phase, before that turn's poll when the
  // millisecond has passed already (a busy loop), so no poll phase would run between.
  function onDismissed(id) {
    const st = byId.get(id);
    if (st === undefined) return; // another attachment's, or closed meanwhile
    if (over) {
      destroyAtEnd(st);
      return;
    }
    // http2: no poll phase to wait for, the graceful close is itself a round trip
    // (the streams the client sent before the PING's answer are read and served).
    if (st.h2) {
      goawaySession(st);
      return;
    }
    pending.push(st, sweeps);
    if (!sweeping) {
      sweeping = true;
      setImmediate(sweep);
    }
  }

  // Dismissed connections waiting for their decision: [st, sweeps at dismissal, ...].
  const pending = [];
  let head = 0;
  let sweeps = 0; // sweep() calls so far
  let sweeping = false; // a sweep() is scheduled

  // Runs in a check phase (setImmediate). A connection dismissed at sweep count n is
  // decided from sweep n + 2 on: sweep n + 1 may run in the check phase right after the
  // poll phase the dismissal came in (the driver thread's wake-up), sweep n + 2 runs
  // after a whole poll phase more. At most DESTROY_BATCH are destroyed per turn.
  function sweep() {
    sweeps++;
    let destroyed = 0;
    const t0 = performance.now();
    while (head < pending.length && destroyed < DESTROY_BATCH) {
      if (pending[head + 1] > sweeps - 2) break; // too recent: next turn
      const st = pending[head];
      pending[head] = undefined;
      head += 2;
      if (judge(st) && (++destroyed & 31) === 0 && performance.now() - t0 > DESTROY_BUDGET_MS) break;
    }
    if (head === pending.length) {
      pending.length = 0;
      head = 0;
      sweeping = false;
    } else {
      if (head > 4096) {
        pending.splice(0, head);
        head = 0;
      }
      setImmediate(sweep);
    }
  }

  // A dismissed connection, once a poll phase has run: destroyed when idle, else the
  // core is told a request is arriving. Returns whether it was destroyed.
  function judge(st) {
    if (st.conn[kState] !== st || st.http.destroyed) return false; // closed, or detached
    if (over) {
      destroyAtEnd(st);
      return true;
    }
    // A request has arrived since: its guard holds the connection, which the core will
    // dismiss again once idle (and its response says Connection: close).
    if (st.active !== 0 || st.upgraded !== REFUSED) return false;
    if (!st.secure || st.http.bytesRead !== st.mark) {
      // A request is arriving (TLS: the handshake is still under way).
      st.reading = true;
      if (nat.connReading(st.id)) drain();
      return false;
    }
    st.http.destroy();
    // Closed now (destroy() closes its descriptor at once): the core is told here, not
    // at its 'close' (the close phase of this turn, after every socket of the batch),
    // so the drain ends as soon as the last one is destroyed, as a bare server.close()
    // does.
    closed(st);
    return true;
  }

  function destroyAtEnd(st) {
    const c = st.http;
    if (c.destroyed && st.conn.destroyed) return;
    stats.connectionsDestroyed++;
    stats.requestsAborted += st.active;
    if (!st.h2 && st.active === 0 && st.upgraded === REFUSED && (st.reading || (st.secure && st.http.bytesRead !== st.mark))) {
      stats.requestsAborted++;
    }
    c.destroy();
    if (c !== st.conn) st.conn.destroy();
  }

  // ----- requests -------------------------------------------------------------------

  function isReadiness(url) {
    return (
      url.length >= rpLen &&
      url.startsWith(readyPath) &&
      (url.length === rpLen || url.charCodeAt(rpLen) === 63 /* ? */)
    );
  }

  function answerReadiness(req, res) {
    const ready = nat.ready;
    if (!ready) {
      stats.probesNotReady++;
      if (nat.readinessProbed()) drain();
    }
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
    if (!ready && req.stream !== undefined) goaway(req);
    res.writeHead(ready ? 200 : 503, headers);
    res.end(ready ? 'ready\n' : 'draining\n');
  }

  function goaway(req) {
    const st = req.stream?.session?.[kState];
    if (st !== undefined) goawaySession(st);
  }

  // The graceful close of an HTTP/2 session (nodejs/node#34265): a PING, then, once its
  // answer is read, close() (GOAWAY with the last stream id the server has seen; the
  // session ends when its open streams do). Every stream the client sent before it
  // answered the PING has arrived by then and is served.
  //
  // Not the RFC 9113 two-phase GOAWAY (6.8: first 2^31-1, then the real last stream
  // id): Node's session.goaway() is nghttp2_submit_goaway(), not the shutdown notice, so
  // once any GOAWAY is sent nghttp2 ignores every new stream (the client then gets
  // REFUSED_STREAM from the final GOAWAY's last stream id), and a session with no
  // stream open stops reading (nghttp2_session_want_read() is 0): neither the streams
  // on their way nor the PING's answer would be read. A stream the client sends after
  // the PING's answer and before it reads the GOAWAY is refused (REFUSED_STREAM: not
  // processed, safe to retry), as a keep-alive close races a client in HTTP/1.
  function goawaySession(st) {
    const session = st.conn;
    if (st.goaway || session.closed || session.destroyed) return;
    st.goaway = true;
    const close = () => {
      if (!session.closed && !session.destroyed) session.close();
    };
    let pinged = false;
    try {
      pinged = session.ping(close);
    } catch {
      pinged = false; // not connected yet, or too many PINGs in flight
    }
    if (!pinged) close();
  }

  function refuse(req, res) {
    stats.refused++;
    if (onRefused !== null) {
      try {
        onRefused(req, res);
      } catch (e) {
        process.nextTick(() => {
          throw e;
        });
      }
    }
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' };
    if (req.stream !== undefined) goaway(req);
    else headers.connection = 'close';
    res.writeHead(503, headers);
    res.end('shutting down\n');
  }

  // The response's head says what the core answers (asked once per request). Of
  // pipelined responses, only the last says Connection: close (Node sends none after
  // one that does); the connection closes after it.
  function decide(res) {
    if (!keepAlive(res[kSlot]) && res[kState].res === res) res.shouldKeepAlive = false;
  }

  // The response closed (sent, or its socket closed): its request is finished.
  function onResClose() {
    const res = this;
    const slot = res[kSlot];
    if (slot === REFUSED) return;
    res[kSlot] = REFUSED;
    inflight.delete(res);
    const st = res[kState];
    const bits = finish(slot);
    if (st !== undefined) {
      st.active--;
      if (st.res === res) st.res = null;
      st.mark = st.http.bytesRead;
      // The core says close: after this response, or after the last one pipelined
      // behind it (its head said Connection: close, so Node closes it too).
      if ((bits & 1) === 0 && st.active === 0 && !st.http.destroyed) st.http.destroySoon();
    }
    if (bits & 2) drain();
  }

  /** Returns true when the request was answered here. */
  function onRequest(req, res) {
    const probe = readyPath !== null && isReadiness(req.url);
    // http2 with allowHTTP1: an HTTP/1 request has no stream, its socket is tracked here.
    if (h2 && req.stream !== undefined) return onStream(req, res, probe);
    const socket = req.socket;
    let st = socket[kState];
    if (st === undefined) st = track(socket, false); // connected before attach(), or allowHTTP1
    const slot = request(st.id);
    if (slot === REFUSED) {
      if (probe) answerReadiness(req, res);
      else refuse(req, res);
      return true;
    }
    // Readiness probes hold a guard too: a probe that ends the announce window still
    // gets its answer before the drain can end.
    st.active++;
    st.reading = false;
    res[kSlot] = slot;
    res[kState] = st;
    req[kResponse] = res;
    st.res = res;
    inflight.add(res);
    res.on('close', onResClose);
    // Once the drain has begun, the head's Connection header is decided now (while the
    // engine runs it is keep-alive, and the first trigger records that for the heads
    // already sent: beforeTrigger).
    if (!I.running) decide(res);
    if (probe) {
      answerReadiness(req, res);
      return true;
    }
    return false;
  }

  function onStream(req, res, probe) {
    const session = req.stream.session;
    const st = session[kState] ?? track(session, true);
    const slot = request(st.id);
    if (slot === REFUSED) {
      if (probe) answerReadiness(req, res);
      else refuse(req, res);
      return true;
    }
    st.active++;
    res[kSlot] = slot;
    res[kState] = st;
    req[kResponse] = res;
    h2inflight.add(res);
    res.on('close', onStreamClose);
    if (!I.running) decideStream(res);
    if (probe) {
      answerReadiness(req, res);
      return true;
    }
    return false;
  }

  // The core's keep-alive answer for an http2 stream: no keep-alive is the session's
  // graceful close (its other streams finish). Asked once the drain has begun: while
  // the engine runs it is keep-alive, and a GOAWAY is never too late for a stream.
  function decideStream(res) {
    if (!keepAlive(res[kSlot])) goawaySession(res[kState]);
  }

  function onStreamClose() {
    const res = this;
    const slot = res[kSlot];
    if (slot === REFUSED) return;
    res[kSlot] = REFUSED;
    h2inflight.delete(res);
    const st = res[kState];
    const bits = finish(slot);
    st.active--;
    if ((bits & 1) === 0) goawaySession(st);
    if (bits & 2) drain();
  }

  // An 'upgrade' (WebSocket) or 'connect' (tunnel) request: its socket leaves HTTP and
  // becomes long-lived work. Returns true when it was refused here.
  function onUpgrade(req, socket, upgradeKind) {
    let st = socket[kState];
    if (st === undefined) st = track(socket, false);
    const slot = request(st.id);
    if (slot === REFUSED) {
      stats.refused++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    st.reading = false;
    st.upgraded = nat.requestUpgrade(slot, upgradeKind);
    drain(); // it no longer holds the boundary: that may end the drain
    return false;
  }

  const origEmit = server.emit;
  const connEvent = h2 ? 'session' : 'connection';
  function emit(event, a, b) {
    if (event === 'request') {
      if (onRequest(a, b)) return true;
    } else if (event === connEvent) {
      if (a[kState] === undefined) track(a, h2);
    } else if (event === 'secureConnection' && tlsServer) {
      secured(a);
    } else if ((event === 'upgrade' || event === 'connect') && !h2 && this.listenerCount(event) > 0) {
      if (onUpgrade(a, b, event === 'upgrade' ? 'websocket' : 'tunnel')) return true;
    }
    return origEmit.apply(this, arguments);
  }
  server.emit = emit;

  // ----- milestones -------------------------------------------------------------

  // Just before the first trigger: the heads already sent said keep-alive (while the
  // engine runs the core advises it); the core records it, so their connections stay
  // open after them and are dismissed only once idle for the grace.
  function beforeTrigger() {
    for (const res of inflight) if (res.headersSent) keepAlive(res[kSlot]);
  }

  function onDraining() {
    // Responses in flight whose head is not sent yet: the core's answer now (http2:
    // every stream in flight, a GOAWAY is never too late).
    for (const res of h2inflight) decideStream(res);
    for (const res of inflight) if (!res.headersSent) decide(res);
  }

  // Closes the listener without Node's closeIdleConnections() (http.Server#close does
  // it since Node 19): idle connections are the core's to dismiss, after the grace.
  function closeListener() {
    if (listenerClosed) return;
    listenerClosed = true;
    // Http2SecureServer#close with allowHTTP1 closes idle HTTP/1 connections too.
    net.Server.prototype.close.call(server);
  }

  // The core's unlisten: when admission closes, or later while long-lived work still
  // has clients to tell on new connections (a listener hold: Socket.io polling), and at
  // the latest when the drain ends. While the drain goes on, two turns of the loop
  // first: a full poll phase accepts what is in the listen backlog. Those clients
  // connected before; closing the listening socket would reset them (the kernel drops
  // its accept queue), while accepted they are the core's like any other connection
  // (served, or dismissed once idle for the grace). Sessions (http2) are the core's
  // like sockets.
  function onUnlisten() {
    if (over) closeListener();
    else setImmediate(() => setImmediate(closeListener));
  }

  // The drain is over (clean or cut short): the core dismisses every connection left
  // (delivered right after this milestone) and counts what they cut.
  function onClosing() {
    over = true;
    // Unlisten was said earlier (its two loop turns may still be pending): the drain is
    // over, the backlog no longer matters.
    if (I.unlistenedAt !== null) closeListener();
    // The connections the core dismissed before (kept open because a request was
    // arriving, or busy since) are not dismissed again: they are left, so destroyed.
    for (const st of conns) if (nat.connDismissed(st.id)) destroyAtEnd(st);
  }

  I.dismissHandlers.push(onDismissed);
  I.beforeTrigger.push(beforeTrigger);
  if (I.unlistenedAt !== null) onUnlisten();
  else I.unlistenHandlers.push(onUnlisten);
  const listeners = [
    ['draining', onDraining],
    ['closing', onClosing],
  ];
  for (const [event, fn] of listeners) {
    if (I.reached.has(event)) fn();
    else sd.on(event, fn);
  }

  return {
    server,
    stats,
    /** Connections open now (tracked by this attachment). */
    get connections() {
      return conns.size;
    },
    /** Stops draining this server (restores its emit, forgets its connections). */
    detach() {
      if (server.emit === emit) server.emit = origEmit;
      const remove = (list, f) => {
        const i = list.indexOf(f);
        if (i >= 0) list.splice(i, 1);
      };
      remove(I.dismissHandlers, onDismissed);
      remove(I.beforeTrigger, beforeTrigger);
      remove(I.unlistenHandlers, onUnlisten);
      for (const [event, fn] of listeners) sd.removeListener(event, fn);
      for (const st of conns) {
        st.conn.removeListener('close', onConnClose);
        delete st.conn[kState];
        if (st.http !== st.conn) delete st.http[kState];
        if (closeConn(st.id)) drain();
      }
      conns.clear();
      byId.clear();
    },
  };
}

function optionError(Ctor, option, message) {
  const e = new Ctor(`libshutdown: attach() option ${option} ${message}`);
  e.code = Ctor === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE';
  e.option = option;
  return e;
}

/**
 * The core's request slot of `obj`, a request (or its response) of an attached server
 * whose response is still in flight; -1 otherwise (not attached, refused, finished).
 */
function requestSlotOf(obj) {
  if (obj === null || typeof obj !== 'object') return REFUSED;
  const res = obj[kResponse] ?? obj;
  const slot = res[kSlot];
  return typeof slot === 'number' ? slot : REFUSED;
}

module.exports = { attach, kState, requestSlotOf };
