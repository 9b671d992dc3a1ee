'use strict';
// Long-lived work: WebSockets (ws), Socket.io, event streams (SSE).
//
// The policy is the core's (Builder::long_lived, the option longLived): when a kind is
// told to end ('streamsEnding') and when what is left of it is cut ('streamsCut', counted
// as aborted under the kind by the core). This file only applies those events to the
// objects of each library, and holds one long-lived guard per stream until it closes.
// Ending a stream cleanly is each protocol's own: a WebSocket's close frame, an event
// stream's retry hint, and for Socket.io the acks a client is owed, sent before it is
// told to end.

const { kState } = require('./attach.js');
const { internal } = require('./internal.js');

const REFUSED = -1;

function optionError(Ctor, where, option, message) {
  const e = new Ctor(`libshutdown: ${where} option ${option} ${message}`);
  e.code = Ctor === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE';
  e.option = option;
  return e;
}

function kindOption(where, options, fallback) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw optionError(TypeError, where, 'options', 'must be an object');
  const kind = options.kind ?? fallback;
  if (typeof kind !== 'string' || kind.length === 0) throw optionError(TypeError, where, 'kind', 'must be a non-empty string');
  return { options, kind };
}

// Calls `ending()` when the core tells `kind` to end, `cut()` when its grace runs out.
// Returns the function that stops listening (one set per engine: no listener per stream).
function follow(sd, kind, ending, cut) {
  return internal(sd).follow(kind, { ending, cut });
}

// The long-lived guard of a connection accepted by `req`: none to take when attach()
// already holds its upgrade's (`null`), else a guard of `kind` (`undefined`: refused,
// admission has closed).
function guardFor(sd, req, kind) {
  const st = req?.socket?.[kState];
  if (st !== undefined && st.upgraded !== REFUSED) return null;
  return sd.guard(kind) ?? undefined;
}

// ----- ws ---------------------------------------------------------------------------

/** sd.attachWebSocketServer(wss, { kind = 'websocket' }): see README.md. */
function attachWebSocketServer(sd, wss, options) {
  if (wss === null || typeof wss !== 'object' || typeof wss.on !== 'function' || wss.clients === undefined) {
    throw optionError(TypeError, 'attachWebSocketServer()', 'wss', 'must be a ws WebSocketServer');
  }
  const { kind } = kindOption('attachWebSocketServer()', options, 'websocket');
  internal(sd).checkKind(kind);
  const open = new Set();
  const goingAway = (ws) => {
    if (ws.readyState <= 1) ws.close(1001, 'going away');
  };
  function onConnection(ws, req) {
    const guard = guardFor(sd, req, kind);
    open.add(ws);
    ws.once('close', () => {
      open.delete(ws);
      guard?.release();
    });
    if (guard === undefined || sd.isCut(kind)) ws.terminate();
    else if (sd.isEnding(kind)) goingAway(ws);
  }
  wss.on('connection', onConnection);
  const unfollow = follow(
    sd,
    kind,
    () => {
      for (const ws of open) goingAway(ws);
    },
    () => {
      for (const ws of open) ws.terminate();
    },
  );
  return {
    kind,
    /** WebSockets open now (accepted since this call). */
    get connections() {
      return open.size;
    },
    detach() {
      wss.removeListener('connection', onConnection);
      unfollow();
    },
  };
}

// ----- Socket.io ----------------------------------------------------------------------

/** sd.attachSocketIo(io, { kind = 'socket.io', reconnect = true }): see README.md. */
function attachSocketIo(sd, io, options) {
  if (io === null || typeof io !== 'object' || io.engine === undefined || typeof io.of !== 'function') {
    throw optionError(TypeError, 'attachSocketIo()', 'io', 'must be a socket.io Server (attached to its http server)');
  }
  const { options: o, kind } = kindOption('attachSocketIo()', options, 'socket.io');
  const reconnect = o.reconnect ?? true;
  if (typeof reconnect !== 'boolean') throw optionError(TypeError, 'attachSocketIo()', 'reconnect', 'must be a boolean');
  internal(sd).checkKind(kind);
  const engine = io.engine;
  const open = new Map(); // engine.io socket (one per client, whatever its transport) -> its guard
  const holds = new Map(); // engine.io socket -> the release of its hold on attach()'s listeners
  const namespaces = () => (io._nsps instanceof Map ? [...io._nsps.values()] : [io.of('/')]);
  const unhold = (esock) => {
    const release = holds.get(esock);
    if (release === undefined) return;
    holds.delete(esock);
    release();
  };

  // Acks still owed to a client: an event it sent with an ack whose handler has not
  // answered yet (a payment being written). A client is told to end only once it has
  // its acks, so none is lost in a rolling restart; a handler that never answers is
  // bounded by the kind's grace (the cut drops the client). Counted per engine.io
  // connection, across its namespaces; `deferred`: told to end while acks were owed.
  const owed = new Map(); // engine.io socket -> acks owed
  const deferred = new Set();
  function countAcks(socket) {
    socket.use((event, next) => {
      const last = event.length > 0 ? event[event.length - 1] : undefined;
      if (typeof last === 'function') {
        const esock = socket.conn;
        owed.set(esock, (owed.get(esock) ?? 0) + 1);
        let answered = false;
        event[event.length - 1] = function ack(...args) {
          // Sent first (the packet is queued ahead of any close), then counted.
          const r = last.apply(this, args);
          if (!answered) {
            answered = true;
            paid(esock);
          }
          return r;
        };
      }
      next();
    });
  }
  function paid(esock) {
    const n = (owed.get(esock) ?? 1) - 1;
    if (n > 0) {
      owed.set(esock, n);
      return;
    }
    owed.delete(esock);
    if (deferred.delete(esock) && open.has(esock)) end(esock);
  }
  const watched = new Set(); // namespaces whose sockets are counted
  const watch = (nsp) => {
    if (watched.has(nsp)) return;
    watched.add(nsp);
    nsp.on('connection', countAcks);
    for (const socket of nsp.sockets.values()) countAcks(socket);
  };
  for (const nsp of namespaces()) watch(nsp);
  io.on('new_namespace', watch);

  // Tells one client to end. reconnect: the engine.io connection closes (its close
  // packet), socket.io-client sees "transport close" and reconnects with its backoff,
  // to the next instance. Else a DISCONNECT packet ("io server disconnect": the client
  // does not reconnect by itself) and the client closes the engine.io connection (its
  // close packet; closed from here, a polling client's close packet would come after
  // and be refused). Never with discard: a packet still in the write buffer (a polling
  // client between two polls) would be lost, and the client would see its next poll
  // fail.
  //
  // Polling: what is written waits for the client's next poll, on a connection of its
  // own (socket.io-client polls with no keep-alive agent), and the client's reply to a
  // DISCONNECT (its close packet) comes the same way. Those requests come on
  // connections accepted after admission closed, which the core serves while work is
  // in flight (its quiesce boundary: this connection's guard is such work), and they
  // need the listener open: a polling connection holds it (onConnection()).
  function end(esock) {
    if (owed.has(esock)) {
      deferred.add(esock); // told once its acks are sent (paid())
      return;
    }
    if (reconnect) {
      esock.close();
      return;
    }
    let told = false;
    for (const nsp of namespaces()) {
      for (const socket of [...nsp.sockets.values()]) {
        if (socket.conn !== esock) continue;
        socket.disconnect(false);
        told = true;
      }
    }
    // Not connected to a namespace (yet): nothing to disconnect, the connection closes.
    if (!told) esock.close();
  }
  const endAll = () => {
    for (const esock of open.keys()) end(esock);
  };

  function onConnection(esock) {
    // One guard per engine.io connection, of `kind`, for as long as it is open. Its HTTP
    // requests (polling) and WebSocket upgrade are attach()'s, if attached.
    const guard = sd.guard(kind);
    open.set(esock, guard);
    // A listener hold of the core while the client polls: its unlisten (attach()
    // closing its listeners) waits until every polling client has heard that it must
    // end and closed, or moved to a WebSocket (which needs no new connection), or the
    // kind was cut. Taken now, not when the client is told: the core decides its
    // unlisten when admission closes, before the integrations hear of it.
    if (guard !== null && esock.transport?.name === 'polling') {
      holds.set(esock, internal(sd).holdListener());
      esock.once('upgrade', () => unhold(esock));
    }
    esock.once('close', () => {
      open.delete(esock);
      owed.delete(esock);
      deferred.delete(esock);
      unhold(esock);
      guard?.release();
    });
    if (guard === null || sd.isCut(kind)) esock.close(true);
    else if (sd.isEnding(kind)) setImmediate(() => open.has(esock) && end(esock)); // once socket.io has its socket
  }
  engine.on('connection', onConnection);
  const unfollow = follow(sd, kind, endAll, () => {
    for (const esock of open.keys()) {
      // A cut: the transport is dropped, nothing more is flushed.
      esock.transport?.socket?.terminate?.();
      esock.close(true);
    }
    for (const esock of [...holds.keys()]) unhold(esock);
  });
  return {
    kind,
    /** Socket.io clients connected now (engine.io connections since this call). */
    get connections() {
      return open.size;
    },
    detach() {
      engine.removeListener('connection', onConnection);
      io.removeListener('new_namespace', watch);
      for (const nsp of watched) nsp.removeListener('connection', countAcks);
      for (const esock of [...holds.keys()]) unhold(esock);
      unfollow();
    },
  };
}

// ----- event streams ------------------------------------------------------------------

/** sd.eventStream(req, res, { kind = 'sse', retry }): see README.md. */
function eventStream(sd, req, res, options) {
  const where = 'eventStream()';
  if (res === null || typeof res !== 'object' || typeof res.write !== 'function') {
    throw optionError(TypeError, where, 'res', 'must be an http.ServerResponse');
  }
  const { options: o, kind } = kindOption(where, options, 'sse');
  const retry = o.retry;
  if (retry !== undefined && (typeof retry !== 'number' || !Number.isInteger(retry) || retry < 0)) {
    throw optionError(RangeError, where, 'retry', `must be an integer number of milliseconds >= 0, got ${retry}`);
  }
  internal(sd).checkKind(kind);
  // attach()'s request becomes the long-lived work (no second guard); elsewhere a guard
  // of its own (null: admission has closed, the stream ends at once with its hint).
  const st = res[kState] ?? req?.socket?.[kState];
  let release = st?.owner?.(res, kind) ?? null;
  if (release === null) {
    const g = sd.guard(kind);
    if (g !== null) release = () => g.release();
  }
  if (!res.headersSent) {
    res.writeHead(res.statusCode === 200 ? 200 : res.statusCode, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders?.();
  }
  let ended = false;
  let unfollow = () => {};
  const done = () => {
    unfollow();
    if (release !== null) {
      const r = release;
      release = null;
      r();
    }
  };
  res.once('close', done);
  const stream = {
    kind,
    /** Whether the stream has ended (by end(), the engine, or the client). */
    get ended() {
      return ended || res.writableEnded || res.destroyed;
    },
    /** Sends one event: `data` (a string, each line a data: line), with `event` and `id`. */
    send(data, { event, id } = {}) {
      if (stream.ended) return false;
      let s = '';
      if (event !== undefined) s += `event: ${event}\n`;
      if (id !== undefined) s += `id: ${id}\n`;
      for (const line of String(data).split('\n')) s += `data: ${line}\n`;
      return res.write(`${s}\n`);
    },
    /** Ends the stream: the reconnection hint (retry), then the end of the response. */
    end() {
      if (stream.ended) return;
      ended = true;
      res.end(retry === undefined ? undefined : `retry: ${retry}\n\n`);
    },
  };
  unfollow = follow(
    sd,
    kind,
    () => stream.end(),
    () => res.destroy(),
  );
  if (release === null || sd.isEnding(kind)) stream.end();
  if (sd.isCut(kind)) res.destroy();
  return stream;
}

module.exports = { attachWebSocketServer, attachSocketIo, eventStream };
