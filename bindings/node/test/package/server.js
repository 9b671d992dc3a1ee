'use strict';
// The server of scripts/package-test.sh, run in a fresh project that installed the
// packed packages: it requires `libshutdown` the way a user does. /slow answers after a
// second; each event goes to stdout as one line for check.js.

const http = require('node:http');
const { Shutdown } = require('libshutdown');

const shutdown = new Shutdown({ drainTimeout: 10_000, closeTimeout: 2000, gracePeriod: 15_000 });
shutdown.listenSignals();

const server = http.createServer((req, res) => {
  if (req.url === '/slow') {
    process.stdout.write('IN-FLIGHT\n');
    setTimeout(() => res.end('slow done\n'), 1000);
  } else {
    res.end('ok\n');
  }
});
shutdown.attach(server);
shutdown.on('done', (report) => process.stdout.write(`REPORT ${JSON.stringify(report)}\n`));

server.listen(0, '127.0.0.1', () => {
  // Which file the native part came from: the platform package or a build from source.
  const addon = process.report.getReport().sharedObjects.filter((f) => f.endsWith('.node'));
  process.stdout.write(`ADDON ${addon.join(' ')}\nLISTENING ${server.address().port}\n`);
});
