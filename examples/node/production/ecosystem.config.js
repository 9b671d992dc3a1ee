'use strict';
// PM2 ecosystem file for the production example (cluster mode, 2 workers):
//
//   pm2 start examples/node/production/ecosystem.config.js
//   pm2 reload libshutdown-production      # one worker at a time, no request lost
//
// tests/platforms/production.sh (make production) runs exactly this under load.
//
// The numbers, and why they go together:
//
//   libshutdown's budgets (SHUTDOWN_* below, read by the engine itself: env: true):
//     drain_delay     500 ms  announce window. PM2's master hands connections out round
//                             robin with no health check: this only covers the connections
//                             it is handing to this worker right now.
//     drain_timeout  5000 ms  requests, Socket.io clients and the job in progress, once
//                             admission closes. Sockets are cut 2 s in (SHUTDOWN_LONG_LIVED),
//                             a job's work at the deadline (it rolls back and is requeued).
//     close_timeout  3000 ms  the hooks: the job loop (up to 2 s: one BLMOVE of 0.5 s and
//                             the job that came with it), then pg and Redis (1 s each, together).
//     sum            8500 ms  the longest a clean shutdown can take; grace_period 10 s checks it.
//
//   PM2's timers:
//     kill_timeout  12000 ms  SIGKILL this long after SIGINT: above the 8.5 s plus the exit.
//     wait_ready    true      a new worker counts as up when it sends 'ready', once it
//                             listens, which is after PostgreSQL and Redis answered; during a
//                             reload the old worker is stopped only then.
//     listen_timeout 15000 ms how long PM2 waits for that 'ready' (start-up: connecting and
//                             the migration), after which it goes on anyway.
//
// PORT, PG*, REDIS_URL, SERVICE_LOG and JOB_MS are taken from the environment of
// `pm2 start`, when PM2 loads this file.

const path = require('node:path');

const passed = ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'REDIS_URL', 'SERVICE_LOG', 'JOB_MS', 'LIBSHUTDOWN_PATH'];
const env = {
  NODE_ENV: 'production',
  PORT: String(process.env.PORT || 8080),
  SHUTDOWN_DRAIN_DELAY_MS: '500',
  SHUTDOWN_DRAIN_TIMEOUT_MS: '5000',
  SHUTDOWN_CLOSE_TIMEOUT_MS: '3000',
  SHUTDOWN_GRACE_PERIOD_MS: '10000',
  SHUTDOWN_LONG_LIVED: 'socket.io:2000',
};
for (const k of passed) if (process.env[k] !== undefined) env[k] = process.env[k];

module.exports = {
  apps: [
    {
      name: process.env.PM2_APP_NAME || 'libshutdown-production',
      script: path.join(__dirname, 'src', 'index.js'),
      exec_mode: 'cluster',
      instances: 2,
      wait_ready: true,
      listen_timeout: 15000,
      kill_timeout: 12000,
      // PM2's default stop signal; listenSignals() listens to it.
      kill_signal: 'SIGINT',
      autorestart: true,
      merge_logs: false,
      env,
    },
  ],
};
