'use strict';
// PM2 ecosystem file for examples/node/server.js, drained by libshutdown
// (bindings/node/README.md, "PM2"). Zero-downtime reload:
//
//   pm2 start examples/node/ecosystem.config.js
//   pm2 reload libshutdown-example       # one worker at a time: no request lost
//
// tests/platforms/pm2.sh (make platforms) runs exactly this under load.
//
// The numbers, and why they go together:
//
//   the engine's phase budgets (server.js flags; the core's options):
//     drain_delay    500 ms  announce window: requests are still served. In cluster mode
//                            PM2's master hands connections out round robin with no
//                            health check, so this only has to cover connections the
//                            master is handing to this worker right now; short is fine.
//     drain_timeout 5000 ms  the longest request in flight may take this long once
//                            admission closes (the listener is closed then: the master
//                            sends new connections to the other workers).
//     close_timeout 2000 ms  cleanup hooks, all together.
//     sum           7500 ms  the longest a clean shutdown can take.
//
//   PM2's timers:
//     kill_timeout 10000 ms  SIGINT (or the 'shutdown' message) is followed by SIGKILL this
//                            long after. It must be above the sum (7.5 s) plus the time
//                            to exit; PM2's default of 1600 ms is below any useful drain,
//                            and the engine warns at start (LIBSHUTDOWN_PM2_KILL_TIMEOUT)
//                            when the sum does not fit in it.
//     wait_ready   true      a new worker counts as up when it sends 'ready', which
//                            shutdown.pm2() does once the attached server listens; during
//                            a reload the old worker is stopped only then.
//     listen_timeout 10000 ms  how long PM2 waits for that 'ready' before it goes on
//                            anyway (and stops the old worker): well above start-up time.
//
// PORT (default 8080) is read here, when PM2 loads this file.

const path = require('node:path');

const port = String(process.env.PORT || 8080);

module.exports = {
  apps: [
    {
      name: process.env.PM2_APP_NAME || 'libshutdown-example',
      script: path.join(__dirname, 'server.js'),
      args: ['--port', port, '--drain-delay', '500', '--drain-timeout', '5000', '--close-timeout', '2000'],
      exec_mode: 'cluster',
      instances: 2,
      wait_ready: true,
      listen_timeout: 10000,
      kill_timeout: 10000,
      // The default stop signal, SIGINT, is one listenSignals() listens to. With
      // shutdown_with_message: true PM2 sends the IPC message 'shutdown' instead (as on
      // Windows); shutdown.pm2() takes it as the trigger too.
      kill_signal: 'SIGINT',
      // A worker that exits non-zero after a forced drain is restarted as usual.
      autorestart: true,
      merge_logs: false,
      env: { PORT: port },
    },
  ],
};
