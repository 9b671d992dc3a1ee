'use strict';
// One Ctrl-C under `npm run`: the terminal sends SIGINT to the whole foreground process
// group (npm and the server), and npm relays it to its script a few milliseconds later.
// The server sees the same signal twice; the second is the same Ctrl-C, not an operator
// asking again, and must not escalate (the core's same_signal_window). bash is npm's
// script shell here (npm_config_script_shell), as in the bug report; pnpm relays alike.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const { until } = require('./helpers.js');

const BINDING = path.resolve(__dirname, '..');
const hasNpm = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
const hasBash = fs.existsSync('/bin/bash');

// The script npm runs: an http server whose handler answers after 300 ms, drained by
// listenSignals() + attach(); the report goes to REPORT_FILE, the process exits with
// the report's exit code (exitOnDone).
const SERVER = `'use strict';
const fs = require('node:fs');
const http = require('node:http');
const { Shutdown } = require(${JSON.stringify(BINDING)});
const sd = new Shutdown({ drainTimeout: 10000 });
sd.listenSignals();
sd.on('done', (report) => fs.writeFileSync(process.env.REPORT_FILE, JSON.stringify(report)));
const server = http.createServer((req, res) => {
  fs.writeSync(1, 'request in flight\\n');
  setTimeout(() => res.end('answered\\n'), 300);
});
sd.attach(server);
server.listen(0, '127.0.0.1', () => fs.writeSync(1, 'listening on ' + server.address().port + '\\n'));
`;

test(
  'one SIGINT to the process group of `npm run` (bash script shell): one trigger, the in-flight request gets its 200, exit 0',
  { timeout: 60_000, skip: !hasNpm || !hasBash ? 'needs npm and /bin/bash' : false },
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-npm-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'server.js'), SERVER);
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'npm-signal-test', version: '1.0.0', private: true, scripts: { serve: 'node server.js' } }),
    );
    const reportFile = path.join(dir, 'report.json');
    const child = spawn('npm', ['run', '--silent', 'serve'], {
      cwd: dir,
      detached: true, // its own process group, as a terminal's foreground job
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        npm_config_script_shell: '/bin/bash',
        npm_config_update_notifier: 'false',
        REPORT_FILE: reportFile,
      },
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (err += c));
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let gone = false;
    exited.then(() => (gone = true));
    t.after(() => {
      if (!gone) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });

    await until(() => /listening on \d+/.test(out) || gone, `the server to listen:\n${out}\n${err}`);
    assert.equal(gone, false, `npm exited early:\n${out}\n${err}`);
    const port = Number(/listening on (\d+)/.exec(out)[1]);

    const response = new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', (e) => resolve({ error: e.message }));
      });
      req.on('error', (e) => resolve({ error: e.message }));
    });
    await until(() => out.includes('request in flight'), `the request to be in flight:\n${out}\n${err}`);

    // One Ctrl-C: SIGINT to the whole group, once.
    process.kill(-child.pid, 'SIGINT');

    const r = await response;
    const { code, signal } = await exited;
    const report = fs.existsSync(reportFile) ? JSON.parse(fs.readFileSync(reportFile, 'utf8')) : null;
    const shown = `response ${JSON.stringify(r)}, exit ${code} ${signal ?? ''}\nreport: ${JSON.stringify(report)}\n${out}\n${err}`;
    assert.equal(r.status, 200, shown);
    assert.equal(r.body, 'answered\n', shown);
    assert.ok(report, `no report written:\n${shown}`);
    assert.deepEqual(report.reason, { kind: 'signal', detail: 'SIGINT' }, shown);
    assert.equal(report.triggers, 1, shown);
    assert.equal(report.forced, null, shown);
    assert.equal(report.aborted, 0, shown);
    assert.equal(report.exit_code, 0, shown);
    assert.equal(code, 0, shown);
  },
);
