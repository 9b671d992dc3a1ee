'use strict';
// attach(): drains an http, https or http2 server with a Shutdown.
//
// What the core decides (admission, readiness, keep-alive advice, deadlines) is asked of
// the core; this file only applies it to Node's objects:
//
// - every request holds a guard until its response closes; a refused guard (admission
//   closed) is answered 503 with Connection: close;
// - an optional readiness route answers 200 while ready and 503 while draining, and
//   reports each 503 to the core (the adaptive announce window);
// - once the drain starts, responses carry Connection: close whenever the core advises
//   it (HTTP/2: the session gets a GOAWAY), including responses already in flight whose
//   headers are not sent yet;
// - when admission closes: the listener is closed; idle keep-alive connections are
//   closed by Node's parser-aware closeIdleConnections() (a connection on which a
//   request has started to arrive is not idle, so a client mid-request is never cut);
//   busy ones close right after their response;
// - when the drain is over (clean or cut short) every connection left is destroyed and
//   counted; one cut while a request was still arriving on it (no guard: the core does
//   not know of it) is recorded in the report as aborted work, kind "connection".

const tls = require('node:tls');

const kState = Symbol('libshutdown.connection');
const REFUSED = -1; // acquire(): admission has closed

// Http2Server and Http2SecureServer are not exported: recognise them by name.
function isHttp2Server(server) {
  const name = server?.constructor?.name;
  return name === 'Http2Server' || name === 'Http2SecureServer';
}

class ConnectionState {
  constructor(conn) {
    this.conn = conn; // a net.Socket / tls.TLSSocket, or an Http2Session
    this.active = 0; // requests in flight on it that hold a guard
    this.requests = 0; // requests seen on it
    this.res = null; // the latest response on it (http1)
    this.more = null; // earlier responses still unfinished while Running (pipelining)
    this.guard = -1; // a guard kept for the request arriving when admission closed
    this.upgraded = false; // taken over by an 'upgrade' or 'connect' listener
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

  const nat = sd._native;
  // Once the engine has left Running: one call into the addon per request and per
  // response, to plain functions bound to the engine. While it runs, no call at all
  // (the work is counted by the Shutdown and handed to the core at the trigger).
  const acquire = kind === null ? sd._acquire : nat.acquireOfFn(kind);
  const release = sd._releaseSlot;
  const recordCut = recordAbortedFn(nat);
  const h2 = isHttp2Server(server);
  const connEvent = h2 ? 'session' : server instanceof tls.Server ? 'secureConnection' : 'connection';
  const conns = new Set();
  const rpLen = readyPath === null ? 0 : readyPath.length;
  let quiescing = false;
  let over = false;
  let sweepQueued = false;

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

  function onConnClose() {
    conns.delete(this);
    const st = this[kState];
    if (st !== undefined && st.guard !== REFUSED) {
      const slot = st.guard;
      st.guard = REFUSED;
      if (release(slot)) sd._drain();
    }
  }

  function track(conn) {
    const st = new ConnectionState(conn);
    conn[kState] = st;
    conns.add(conn);
    conn.on('close', onConnClose);
    if (over) conn.destroy();
    else if (quiescing && h2) conn.close();
    return st;
  }

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
      if (nat.readinessProbed()) sd._drain();
    }
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
    if (!ready) adviseClose(req, res, headers);
    res.writeHead(ready ? 200 : 503, headers);
    res.end(ready ? 'ready\n' : 'draining\n');
  }

  // Once the drain has started: close the connection after this response if the core
  // advises it. `headers`: the headers object of a response this file writes itself.
  function adviseClose(req, res, headers) {
    if (!nat.shouldClose()) return;
    if (h2) {
      const session = req.stream?.session;
      if (session && !session.closed) session.close();
    } else if (headers) {
      headers.connection = 'close';
    } else if (!res.headersSent) {
      res.shouldKeepAlive = false;
    }
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
    if (h2) {
      const session = req.stream?.session;
      if (session && !session.closed) session.close();
    } else {
      headers.connection = 'close';
    }
    res.writeHead(503, headers);
    res.end('shutting down\n');
  }

  // ----- the quiesce boundary -------------------------------------------------------
  // Admission closes in the core at one instant; Node learns of connections and bytes
  // a loop turn or two later. A connection already accepted (or waiting in the listen
  // backlog), or a request already sent, when admission closes was opened before the
  // close: it is served, not reset or refused. During the announce window this
  // attachment holds one guard of its own, the reserve (not counted in inFlight).
  // When admission closes, it keeps the listener open for one more turn of the loop
  // (what is in the backlog is accepted), closes it, lets one more turn read what
  // those connections already sent, then closes the idle connections; a connection
  // with a request still arriving keeps a child of the reserve for that request. Then
  // the reserve is released. With no announce window (drainDelay 0) there is no
  // reserve: admission and the listener close at once.
  let reserve = REFUSED;

  // A slot for a request: the core's answer, or a child of the reserve while held.
  function admit() {
    const slot = acquire();
    if (slot !== REFUSED || reserve === REFUSED) return slot;
    return nat.acquireChild(reserve);
  }

  function releaseReserve() {
    if (reserve === REFUSED) return;
    const slot = reserve;
    reserve = REFUSED;
    if (release(slot)) sd._drain();
  }

  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  async function closeAtBoundary() {
    await nextTurn();
    await nextTurn(); // a full poll phase has accepted what was in the backlog
    if (!over) server.close();
    await nextTurn(); // and read what those connections had sent
    if (!over && reserve !== REFUSED) {
      sweepIdle();
      for (const c of conns) {
        const st = c[kState];
        if (c.destroyed || st.active !== 0 || st.guard !== REFUSED) continue;
        // Still open and not idle: a request is arriving (the parser has begun one,
        // or bytes came on a fresh connection). TLS connections that never completed a
        // request cannot be told apart from idle ones: not kept.
        if (st.requests === 0 && c instanceof tls.TLSSocket) continue;
        st.guard = nat.acquireChild(reserve);
      }
    }
    releaseReserve();
  }

  function queueSweep() {
    if (sweepQueued) return;
    sweepQueued = true;
    setImmediate(sweepIdle);
  }

  // Closes idle keep-alive connections once admission is closed. Node's own
  // closeIdleConnections() asks the HTTP parser: a connection on which a request has
  // begun to arrive is not idle, so no client is cut mid-request. The parser counts a
  // connection that never sent a byte as busy (for its headers timeout); those are
  // idle too when nothing at all has been read from them.
  function sweepIdle() {
    sweepQueued = false;
    if (over || h2) return;
    const parserAware = typeof server.closeIdleConnections === 'function';
    if (parserAware) server.closeIdleConnections();
    for (const c of conns) {
      const st = c[kState];
      if (st.active !== 0 || c.destroyed) continue;
      if (st.requests === 0 ? c.bytesRead === 0 && !(c instanceof tls.TLSSocket) : !parserAware) c.destroy();
    }
  }

  // While the engine runs, an http/1 request costs no call into the addon and no
  // listener: its response is remembered on its connection, and just before the first
  // trigger (sd._adopt) every response still unfinished takes its guard then. The
  // core sees the same in-flight work it would have seen guard by guard.
  const done = (res) => res.writableFinished || res.destroyed;

  function remember(st, res) {
    const prev = st.res;
    if (prev !== null && !done(prev)) {
      // Concurrent (pipelined) responses on one connection: keep the unfinished ones.
      const more = st.more;
      if (more === null) st.more = [prev];
      else {
        more.push(prev);
        if (more.length > 8) st.more = more.filter((r) => !done(r));
      }
    }
    st.res = res;
  }

  // A guard for this response until it closes.
  function watch(st, res, slot) {
    st.active++;
    res.on('close', () => {
      st.active--;
      if (st.res === res) st.res = null;
      if (release(slot)) sd._drain();
      if (quiescing && st.active === 0) queueSweep();
    });
  }

  // Responses in flight not yet holding a guard (while Running), for sd.inFlight.
  function countInFlight() {
    let n = reserve === REFUSED ? 0 : -1; // the reserve is not work
    if (h2 || !sd._running) return n; // http2 requests always hold a guard
    for (const c of conns) {
      const st = c[kState];
      if (st.res !== null && st.active === 0 && !done(st.res)) n++;
      if (st.more !== null) for (const r of st.more) if (!done(r)) n++;
    }
    return n;
  }

  function adoptInFlight() {
    if (h2) return;
    for (const c of conns) {
      const st = c[kState];
      const pending = st.more ?? [];
      st.more = null;
      if (st.res !== null) pending.push(st.res);
      for (const res of pending) {
        if (done(res)) {
          if (st.res === res) st.res = null;
          continue;
        }
        const slot = acquire(); // still Running: admitted
        if (slot !== REFUSED) watch(st, res, slot);
      }
    }
  }

  /** Returns true when the request was answered here. */
  function onRequest(req, res) {
    const probe = readyPath !== null && isReadiness(req.url);
    const conn = h2 ? req.stream.session : req.socket;
    let st = conn[kState];
    if (st === undefined) st = track(conn);
    st.requests++;
    if (sd._running && !h2) {
      remember(st, res);
      if (probe) answerReadiness(req, res);
      return probe;
    }
    // Readiness probes hold a guard too: a probe that ends the announce window still
    // gets its answer before the drain can end.
    let slot = st.guard;
    if (slot !== REFUSED) st.guard = REFUSED;
    else slot = admit();
    if (slot === REFUSED) {
      if (probe) answerReadiness(req, res);
      else refuse(req, res);
      return true;
    }
    st.res = res;
    watch(st, res, slot);
    if (probe) {
      answerReadiness(req, res);
      return true;
    }
    if (!sd._running) adviseClose(req, res, null);
    return false;
  }

  const origEmit = server.emit;
  function emit(event, a, b) {
    if (event === 'request') {
      if (onRequest(a, b)) return true;
    } else if (event === connEvent) {
      if (a[kState] === undefined) track(a);
    } else if (event === 'upgrade' || event === 'connect') {
      // The socket leaves HTTP (WebSocket, a CONNECT tunnel): no request arrives on it.
      const st = b?.[kState];
      if (st !== undefined) st.upgraded = true;
    }
    return origEmit.apply(this, arguments);
  }
  server.emit = emit;

  // ----- milestones -------------------------------------------------------------

  function onDraining() {
    if (!h2 && reserve === REFUSED && nat.accepting) reserve = acquire();
    // Responses in flight whose headers are not sent yet: advise them too.
    if (h2) {
      for (const s of conns) if (s[kState].active > 0 && nat.shouldClose() && !s.closed) s.close();
      return;
    }
    for (const c of conns) {
      const res = c[kState].res;
      if (res !== null && !res.headersSent && nat.shouldClose()) res.shouldKeepAlive = false;
    }
  }

  function onQuiescing() {
    quiescing = true;
    if (h2) {
      server.close();
      // GOAWAY: streams in flight finish, new ones go elsewhere.
      for (const s of conns) if (!s.closed) s.close();
      return;
    }
    for (const c of conns) {
      const st = c[kState];
      if (st.res !== null && !st.res.headersSent) st.res.shouldKeepAlive = false;
    }
    if (reserve !== REFUSED) {
      closeAtBoundary().catch((e) => process.nextTick(() => {
        throw e;
      }));
      return;
    }
    server.close(); // the listener; Node >= 19 also closes idle connections here
    sweepIdle();
  }

  // Around a repeated trigger while draining (Shutdown#_triggerWith). Only the core
  // knows whether it cuts the drain, and a cut counts the guards held at that instant:
  // the reserve, which is not work, is set down before the trigger and taken up again
  // after it unless the core cut the drain. Only while admission is open (the announce
  // window), where nothing can end the drain meanwhile and a new guard is admitted.
  // Once admission has closed, the reserve is held for a few loop turns at most
  // (closeAtBoundary) and stays held: setting it down then could end the drain.
  let reserveDown = false;

  function beforeRepeat() {
    if (reserve === REFUSED || !nat.accepting) return;
    releaseReserve();
    reserveDown = true;
  }

  function afterRepeat(cut) {
    if (!reserveDown) return;
    reserveDown = false;
    // Refused if the announce window ended in between (the driver's deadline): the
    // close then runs without a reserve, as with no announce window.
    if (!cut && !over && nat.accepting) reserve = acquire();
  }

  // When the drain is over (clean or cut short): what is left is destroyed. Requests
  // holding a guard are the core's to count (a cut counts the guards in flight). A
  // connection on which a request was still arriving held none, so the core does not
  // know of it: it is recorded as aborted work (kind "connection"). Idle keep-alive
  // connections and connections that never sent a byte are not work.
  function onClosing() {
    if (over) return;
    over = true;
    releaseReserve();
    const open = [];
    for (const c of conns) if (!c.destroyed) open.push(c);
    // Node's parser knows which connections are idle: those go first, not counted.
    const parserAware = !h2 && typeof server.closeIdleConnections === 'function';
    if (parserAware) server.closeIdleConnections();
    let cut = 0;
    for (const c of open) {
      const st = c[kState];
      stats.connectionsDestroyed++;
      stats.requestsAborted += st.active;
      if (c.destroyed) continue;
      if (parserAware && requestArriving(c, st)) {
        cut++;
        stats.requestsAborted++;
      }
      c.destroy();
    }
    conns.clear();
    if (!h2 && typeof server.closeAllConnections === 'function') server.closeAllConnections();
    if (cut > 0) recordCut(cut);
  }

  // After closeIdleConnections(), of a connection still open that holds no guard:
  // whether a request has begun to arrive on it. One that served requests is not idle
  // for the parser, so the next has begun; a fresh one is busy for the parser from its
  // first instant (its headers timeout), so its bytes tell (a TLSSocket's bytesRead
  // counts decrypted bytes, not the handshake). An upgraded socket (WebSocket) is not
  // HTTP any more: guard it to have the drain wait for it (README).
  function requestArriving(c, st) {
    if (st.active !== 0 || st.guard !== REFUSED || st.upgraded) return false;
    return st.requests > 0 || c.bytesRead > 0;
  }

  const adopter = { adopt: adoptInFlight, count: countInFlight, beforeRepeat, afterRepeat };
  sd._adopters.push(adopter);
  // Without cleanup hooks, the core goes from Closing to Done in one step, and a Done
  // report counts nothing more: a hook of this attachment (first of all) keeps Closing
  // open until onClosing has destroyed the connections and recorded what they cut.
  let detached = false;
  try {
    sd.onClose(CLOSE_HOOK, () => {
      if (!detached) onClosing();
    }, { order: -0x80000000 });
  } catch (e) {
    if (e.code !== 'ERR_SHUTDOWN_TOO_LATE') throw e; // attached once Closing had begun
  }
  const listeners = [
    ['draining', onDraining],
    ['quiescing', onQuiescing],
    ['closing', onClosing],
  ];
  for (const [event, fn] of listeners) {
    if (sd._reached.has(event)) fn();
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
      detached = true;
      if (server.emit === emit) server.emit = origEmit;
      const i = sd._adopters.indexOf(adopter);
      if (i >= 0) sd._adopters.splice(i, 1);
      for (const [event, fn] of listeners) sd.removeListener(event, fn);
      for (const c of conns) {
        c.removeListener('close', onConnClose);
        delete c[kState];
      }
      conns.clear();
    },
  };
}

// The name of the cleanup hook each attachment registers (in the report's hooks).
const CLOSE_HOOK = 'attach: close connections';
// The kind under which connections cut outside any guard are counted.
const CUT_KIND = 'connection';

// `recordAborted(count)` for connections, the kind interned once; unlabelled when the
// engine has no kind left to intern.
function recordAbortedFn(nat) {
  try {
    return nat.recordAbortedFn(CUT_KIND);
  } catch {
    return nat.recordAbortedFn(null);
  }
}

function optionError(Ctor, option, message) {
  const e = new Ctor(`libshutdown: attach() option ${option} ${message}`);
  e.code = Ctor === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE';
  e.option = option;
  return e;
}

module.exports = { attach, kState };
