#!/usr/bin/env node
'use strict';
// The service: Express + Socket.io on one http server, PostgreSQL and Redis behind them,
// a background job loop, Prometheus metrics, drained in order by libshutdown.
//
//   PORT=8080 PGHOST=127.0.0.1 PGPORT=5432 PGUSER=app PGDATABASE=app \
//   REDIS_URL=redis://127.0.0.1:6379 node src/index.js
const http = require('node:http');
const config = require('./config.js');
const { log } = require('./log.js');
const { createPool, migrate } = require('./db.js');
const { createRedis, ready } = require('./redis.js');
const { createMetrics } = require('./metrics.js');
const { createApp } = require('./http.js');
const { createSockets } = require('./sockets.js');
const { JobLoop } = require('./jobs.js');
const { createShutdown, wire } = require('./shutdown.js');

async function main() {
  // First: a SIGTERM during start-up already drains (nothing to drain yet) and exits.
  const shutdown = createShutdown();
  const metrics = createMetrics();
  metrics.setShutdown(shutdown);

  const pool = createPool();
  const redis = createRedis('cmd');
  const blocking = createRedis('jobs');
  await Promise.all([migrate(pool), ready(redis), ready(blocking)]);

  const server = http.createServer(createApp({ pool, redis, metrics }));
  // Longer than any balancer's idle timeout in front; the drain closes idle
  // keep-alive connections itself, so it never waits for this.
  server.keepAliveTimeout = 65_000;
  const io = createSockets(server, { pool, metrics });
  const jobs = new JobLoop({ shutdown, pool, redis, blocking, metrics });
  const { pm2 } = wire(shutdown, { server, io, jobs, pool, redis, blocking });
  if (shutdown.phase !== 'running') return; // triggered while connecting: nothing to start

  await jobs.start();
  server.listen(config.port, config.host, () => {
    const a = server.address();
    log(`listening on ${a.address}:${a.port}${pm2 ? ` pm2 id ${pm2.id} kill_timeout ${pm2.killTimeout} ms budgets fit: ${pm2.fits}` : ''}`);
  });
}

// The last line of every worker: the test measures signal-to-exit from it.
process.on('exit', (code) => log(`exit code=${code}`));

main().catch((e) => {
  log(`fatal: ${e.stack || e}`);
  process.exit(1);
});
