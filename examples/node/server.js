#!/usr/bin/env node
'use strict';
// A Node http server drained by libshutdown, Express-style: a small (req, res, next)
// router handed to http.createServer, exactly as an Express app would be.
//
//   node examples/node/server.js --port 8080 --drain-delay 2000 --drain-timeout 10000
//   curl 127.0.0.1:8080/slow?ms=3000 &  kill -TERM <pid>   # the slow request completes
//
// Routes:
//   GET  /            hello
//   GET  /slow?ms=N   answers after N ms (a request in flight during the drain);
//                     ms=hold: until a line "release" arrives on stdin (--stdin-control)
//   GET  /readyz      readiness: 200 while ready, 503 while draining (from attach())
//   POST /work?ms=N   accepts a background job of N ms (202), tracked by the drain and
//                     stopped early through shutdown.signal when the deadline passes
//                     (ms=hold as above)
//
// Options (argv; PORT from the environment too). The SHUTDOWN_* environment variables
// (SHUTDOWN_PRESET, SHUTDOWN_DRAIN_TIMEOUT_MS, ...: every option of the core's schema)
// apply over these flags (the library's env: true): the deployment's numbers win, and
// an invalid one stops the server at start naming the variable.
//   --port N               0 picks a free port; "listening on <port>" is printed
//   --preset NAME          a platform preset: kubernetes | docker | pm2 | systemd | cloud-run | fly | heroku
//   --drain-delay MS       announce window (readiness fails, requests still served)
//   --announce-probes N    end the announce window after N not-ready probes
//   --drain-timeout MS     in-flight work budget once admission closes
//   --close-timeout MS     cleanup hooks budget
//   --grace-period MS      orchestrator budget ("none" to turn the check off)
//   --close-strategy S     immediate | gradual
//   --forced-exit-code N   exit code when anything was forced, aborted or failed
//   --keep-alive-timeout MS  http keepAliveTimeout (default 60000: the drain must not wait for it)
//   --hooks SPEC           cleanup hooks, "name:behavior[:order[:timeoutMs]]" comma-separated,
//                          behavior ok | fail | throw | hang | slow=<ms>
//   --log-requests FILE    one line per accepted and per completed request (X-Request-Id)
//   --report FILE          the final report as JSON
//   --no-exit              do not exit at Done (the process ends when its loop is empty)
//   --stdin-control        for tests: each line "release" on stdin ends every ms=hold wait

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { Shutdown } = require(process.env.LIBSHUTDOWN_PATH || path.join(__dirname, '../../bindings/node'));

// ----- arguments --------------------------------------------------------------------

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (key === 'no-exit' || key === 'stdin-control') {
      args[key] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${a} needs a value`);
    args[key] = value;
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const num = (k) => (args[k] === undefined ? undefined : Number(args[k]));

const options = {
  preset: args.preset,
  drainDelay: num('drain-delay'),
  announceProbes: num('announce-probes'),
  drainTimeout: num('drain-timeout'),
  closeTimeout: num('close-timeout'),
  gracePeriod: args['grace-period'] === 'none' ? null : num('grace-period'),
  closeStrategy: args['close-strategy'],
  forcedExitCode: num('forced-exit-code'),
  exitOnDone: !args['no-exit'],
  env: true,
};
for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];

const shutdown = new Shutdown(options);
shutdown.listenSignals();
// Under PM2 (pm_id set): 'ready' once listening, the 'shutdown' message as a trigger,
// and a warning when the budgets do not fit in kill_timeout. Elsewhere: nothing (null).
const pm2 = shutdown.pm2();

// ----- logs for the end-to-end harness ------------------------------------------------

const logFd = args['log-requests'] ? fs.openSync(args['log-requests'], 'a') : null;
function logRequest(line) {
  // Synchronous: the process may exit right after Done.
  if (logFd !== null) fs.writeSync(logFd, `${line}\n`);
}

function say(line) {
  fs.writeSync(1, `${line}\n`);
}

for (const m of ['draining', 'quiescing', 'closing']) {
  shutdown.on(m, () => say(`event: ${m} in_flight=${shutdown.inFlight}`));
}
shutdown.signal.addEventListener('abort', () => say('event: signal aborted'));
shutdown.on('done', (report) => {
  if (args.report) fs.writeFileSync(args.report, JSON.stringify(report));
  say(`event: done exit_code=${report.exit_code} forced=${report.forced} aborted=${report.aborted}`);
  if (pm2) say(`pm2: done pid ${process.pid} reason ${JSON.stringify(report.reason)}`);
});

// ----- cleanup hooks -----------------------------------------------------------------

// Waits held by ms=hold, ended by a line "release" on stdin (--stdin-control).
const held = new Set();
if (args['stdin-control']) {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line === 'release') {
        for (const r of [...held]) r();
        held.clear();
        say('released');
      }
    }
  });
  // Commands are optional: stdin never holds the process open.
  process.stdin.unref?.();
}

// Resolves after `ms` (or when released, for 'hold'); rejects when `signal` aborts.
// The abort listener is removed when the wait ends, so waits do not pile up on the
// shared signal.
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const finish = () => {
      signal?.removeEventListener('abort', onAbort);
      held.delete(finish);
      resolve();
    };
    const t = ms === 'hold' ? null : setTimeout(finish, ms);
    if (t === null) held.add(finish);
    function onAbort() {
      if (t !== null) clearTimeout(t);
      held.delete(finish);
      reject(signal.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const duration = (v) => (v === 'hold' ? 'hold' : Math.min(Number(v ?? 1000), 60_000));

for (const spec of (args.hooks ?? '').split(',').filter(Boolean)) {
  const [name, behavior, order = '0', timeout] = spec.split(':');
  const opts = { order: Number(order) };
  if (timeout !== undefined) opts.timeout = Number(timeout);
  let fn;
  if (behavior === 'ok') fn = () => say(`hook: ${name} ran`);
  else if (behavior === 'fail') fn = async () => Promise.reject(new Error(`${name} failed`));
  else if (behavior === 'throw') fn = () => {
      throw new Error(`${name} threw`);
    };
  else if (behavior === 'hang') fn = () => new Promise(() => say(`hook: ${name} hangs`));
  else if (behavior.startsWith('slow=')) fn = () => sleep(Number(behavior.slice(5))).then(() => say(`hook: ${name} ran`));
  else throw new Error(`unknown hook behavior ${behavior}`);
  shutdown.onClose(name, fn, opts);
}

// ----- an Express-style app -----------------------------------------------------------

function createApp() {
  const stack = [];
  const app = (req, res) => {
    let i = 0;
    const next = (err) => {
      if (err) {
        res.statusCode = 500;
        res.end(`error: ${err.message}\n`);
        return;
      }
      const layer = stack[i++];
      if (!layer) {
        res.statusCode = 404;
        res.end('not found\n');
        return;
      }
      const url = new URL(req.url, 'http://x');
      if ((layer.method && layer.method !== req.method) || (layer.path && layer.path !== url.pathname)) return next();
      req.query = Object.fromEntries(url.searchParams);
      try {
        layer.fn(req, res, next);
      } catch (e) {
        next(e);
      }
    };
    next();
  };
  app.use = (fn) => stack.push({ fn });
  app.get = (p, fn) => stack.push({ method: 'GET', path: p, fn });
  app.post = (p, fn) => stack.push({ method: 'POST', path: p, fn });
  return app;
}

const app = createApp();

app.use((req, res, next) => {
  const id = req.headers['x-request-id'];
  if (id !== undefined) {
    logRequest(`accepted ${id}`);
    res.on('finish', () => logRequest(`completed ${id} ${res.statusCode}`));
  }
  next();
});

app.get('/', (req, res) => {
  res.end('hello\n');
});

app.get('/slow', async (req, res) => {
  const ms = duration(req.query.ms);
  if (ms === 'hold') say('holding a request');
  try {
    // Stops early only when the shutdown's deadline passes.
    await sleep(ms, shutdown.signal);
    res.end(`slept ${ms} ms\n`);
  } catch {
    if (!res.destroyed) {
      res.statusCode = 503;
      res.end('aborted by the shutdown deadline\n');
    }
  }
});

app.post('/work', (req, res) => {
  const ms = duration(req.query.ms);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let job;
    try {
      // A child of this request: a request served after admission closed (a client
      // that reused its keep-alive connection at the trigger) still queues its job.
      job = shutdown.track(async (signal) => {
        try {
          await sleep(ms, signal);
          say(`job: done ${ms} ms`);
        } catch {
          say('job: aborted');
        }
      }, { parent: req });
    } catch (e) {
      if (e.code !== 'ERR_SHUTDOWN_CLOSED') throw e;
      res.writeHead(503, { connection: 'close' });
      res.end('shutting down\n');
      return;
    }
    job.catch(() => {});
    res.statusCode = 202;
    res.end(`accepted ${Buffer.concat(chunks).length} bytes\n`);
  });
});

// ----- the server -----------------------------------------------------------------------

const server = http.createServer(app);
server.keepAliveTimeout = num('keep-alive-timeout') ?? 60_000;
shutdown.attach(server, {
  readinessPath: '/readyz',
  kind: 'http',
  // Requests that arrive after admission closed are answered 503 by attach().
  onRefused: (req) => {
    const id = req.headers['x-request-id'];
    if (id !== undefined) logRequest(`refused ${id} 503`);
  },
});

const port = Number(args.port ?? process.env.PORT ?? 8080);
server.listen(port, '127.0.0.1', () => {
  say(`listening on ${server.address().port} pid ${process.pid}`);
  if (pm2) say(`pm2: id ${pm2.id} instance ${pm2.instance} kill_timeout ${pm2.killTimeout} ms (${pm2.killTimeoutSource}) budgets fit: ${pm2.fits}`);
});
