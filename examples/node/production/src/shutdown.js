'use strict';
// The drain, in order:
//   1. HTTP and Socket.io: attach() and attachSocketIo(). Readiness fails at the trigger,
//      the announce window still serves, then the listener closes, requests in flight
//      finish and Socket.io clients are disconnected (they reconnect to another worker).
//      The job in progress holds a guard too, so the drain waits for it as well.
//   2. The job loop (cleanup hook, order 0): it stopped taking jobs at the trigger; the
//      hook waits until it has exited.
//   3. PostgreSQL and Redis (order 1): only now, when no request, socket handler or job
//      can use them any more.
// The budgets come from the environment (SHUTDOWN_DRAIN_DELAY_MS, ...: env: true), so a
// deployment file sets them next to its platform's own timers (ecosystem.config.js).
const { Shutdown } = require('./libshutdown.js');
const { log } = require('./log.js');

function createShutdown() {
  const shutdown = new Shutdown({
    drainDelay: 500,
    drainTimeout: 5000,
    closeTimeout: 3000,
    gracePeriod: 10_000,
    // A Socket.io client is disconnected when admission closes, and cut 2 s later.
    longLived: { 'socket.io': { grace: 2000 } },
    env: true,
    logger: (line) => log(`progress: ${line}`),
  });
  shutdown.listenSignals();
  return shutdown;
}

function wire(shutdown, { server, io, jobs, pool, redis, blocking }) {
  const http = shutdown.attach(server, {
    readinessPath: '/readyz',
    kind: 'http',
    // A request on a connection accepted after admission closed is answered 503 by
    // attach(); under PM2's cluster mode that is a connection the master handed over as
    // the listener closed. Logged: a client saw it.
    onRefused: (req) => log(`http: refused ${req.method} ${req.url} (admission closed)`),
  });
  const sio = shutdown.attachSocketIo(io);
  // Under PM2: 'ready' once the server listens (wait_ready), the 'shutdown' message as a
  // trigger, and a warning if the budgets do not fit in kill_timeout. Elsewhere null.
  const pm2 = shutdown.pm2();

  shutdown.on('draining', () => {
    log(`drain: draining (trigger) in_flight=${JSON.stringify(shutdown.progress().inFlightByKind)}`);
    jobs.stopTaking();
  });
  shutdown.on('quiescing', () => log(`drain: quiescing in_flight=${shutdown.inFlight} sockets=${sio.connections}`));
  // 'closing' comes once every guard is released: every request, every socket, the job.
  shutdown.on('closing', () => log(`drain: http+sockets done refused=${http.stats.refused} aborted=${http.stats.requestsAborted} sockets_open=${sio.connections}`));

  shutdown.onClose(
    'job loop',
    async () => {
      const r = await jobs.stop();
      log(`drain: jobs stopped processed=${r.processed} requeued=${r.requeued} processing_left=${r.left}`);
    },
    { order: 0, timeout: 2000 },
  );
  shutdown.onClose(
    'pg pool',
    async () => {
      await pool.end();
      log('drain: pool closed');
    },
    { order: 1, timeout: 1000 },
  );
  shutdown.onClose(
    'redis',
    async () => {
      await Promise.all([redis.quit(), blocking.quit()]);
      log('drain: redis closed');
    },
    { order: 1, timeout: 1000 },
  );
  shutdown.on('done', (report) => {
    const hooks = report.hooks.map((h) => `${h.name}:${h.outcome.status}`).join(',');
    log(`drain: done exit_code=${report.exit_code} forced=${report.forced} aborted=${report.aborted} reason=${JSON.stringify(report.reason)} hooks=${hooks}`);
  });
  return { http, sio, pm2 };
}

module.exports = { createShutdown, wire };
