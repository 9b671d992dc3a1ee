'use strict';
// One benchmark server: `node server.js <variant>`; prints its port. 127.0.0.1 only.
// Every variant serves the same handler; only the shutdown library around it differs.
//   plain       http.createServer(handler)
//   attach      + libshutdown: new Shutdown().attach(server, { readinessPath }), listenSignals()
//   terminator  + http-terminator: createHttpTerminator({ server })
//   terminus    + @godaddy/terminus: createTerminus(server, { healthChecks, signals })

const http = require('node:http');
const path = require('node:path');

const variant = process.argv[2];
const body = 'hello world\n';
const handler = (req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(body);
};
const server = http.createServer(handler);
server.keepAliveTimeout = 60_000;

switch (variant) {
  case 'plain':
    break;
  case 'attach': {
    const { Shutdown } = require(path.join(__dirname, '..'));
    const sd = new Shutdown({ drainTimeout: 5000 });
    sd.listenSignals();
    sd.attach(server, { readinessPath: '/readyz' });
    break;
  }
  case 'terminator': {
    const { createHttpTerminator } = require('http-terminator');
    const terminator = createHttpTerminator({ server, gracefulTerminationTimeout: 5000 });
    process.on('SIGTERM', () => terminator.terminate().then(() => process.exit(0)));
    break;
  }
  case 'terminus': {
    const { createTerminus } = require('@godaddy/terminus');
    createTerminus(server, { healthChecks: { '/readyz': async () => 'ok' }, signals: ['SIGTERM', 'SIGINT'], timeout: 5000 });
    break;
  }
  default:
    console.error(`unknown variant ${variant}`);
    process.exit(2);
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
