'use strict';
// Everything the service reads from its environment, in one place. PostgreSQL's own
// variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) are read by pg itself, and
// SHUTDOWN_* by libshutdown itself (env: true in shutdown.js): neither is repeated here.

const num = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};

module.exports = {
  port: num('PORT', 8080),
  // Loopback unless told otherwise: a balancer or PM2's master is in front.
  host: process.env.HOST || '127.0.0.1',
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  pgPoolMax: num('PG_POOL_MAX', 10),
  // Simulated work per job, inside its transaction, unless the job says otherwise.
  jobMs: num('JOB_MS', 50),
  // How long one BLMOVE blocks: the longest the job loop takes to notice the shutdown.
  jobPollSeconds: num('JOB_POLL_SECONDS', 0.5),
  // One line per event of interest; the end-to-end test reads the drain order from it.
  // Unset: fd 1 (under PM2 cluster mode that is the daemon's pm2.log).
  logFile: process.env.SERVICE_LOG || null,
};
