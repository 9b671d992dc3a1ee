'use strict';
// The quickstarts of README.md and bindings/node/README.md (fenced blocks marked
// `js quickstart`), run as written: a real process gets SIGTERM while a request is in
// flight, serves it, and exits 0 with a clean report. Bounded waits only.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { until } = require('./helpers');

const PKG = path.join(__dirname, '..');
const READMES = [path.join(PKG, '../../README.md'), path.join(PKG, 'README.md')];

function quickstarts(file) {
  const blocks = [];
  const re = /^```js quickstart\n([\s\S]*?)^```$/gm;
  for (const m of fs.readFileSync(file, 'utf8').matchAll(re)) blocks.push(m[1]);
  return blocks;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

const blocks = READMES.flatMap((f) => quickstarts(f).map((code, i) => ({ file: f, i, code })));

test('the READMEs have a Node quickstart', () => {
  assert.ok(blocks.length >= 1, 'a ```js quickstart block in README.md');
});

for (const { file, i, code } of blocks) {
  test(`${path.relative(path.join(PKG, '../..'), file)} quickstart #${i + 1} drains a request in flight on SIGTERM`, async () => {
    // A project of its own that depends on this package, as a user's would.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-quickstart-'));
    try {
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'libshutdown'), 'dir');
      fs.writeFileSync(path.join(dir, 'server.js'), code);
      const port = await freePort();
      const proc = spawn(process.execPath, ['server.js'], {
        cwd: dir,
        env: { ...process.env, PORT: String(port) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (c) => (stderr += c));
      const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
      try {
        const end = Date.now() + 20_000;
        for (;;) {
          try {
            await get(port, '/readyz');
            break;
          } catch {
            if (Date.now() > end || proc.exitCode !== null) throw new Error(`the quickstart never listened\n${stderr}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        const inFlight = get(port, '/work');
        await new Promise((r) => setTimeout(r, 50)); // the request is being served
        proc.kill('SIGTERM');
        let probes = 0;
        while (probes < 2) {
          const r = await get(port, '/readyz');
          if (r.status === 503) probes += 1;
        }
        const served = await inFlight;
        assert.strictEqual(served.status, 200);
        assert.strictEqual(served.body, 'done');
        let code;
        exited.then((c) => (code = c));
        await until(() => code !== undefined, 'the quickstart to exit');
        assert.strictEqual(code, 0, stderr);
        const report = JSON.parse(stderr.trim().split('\n').pop());
        assert.strictEqual(report.exit_code, 0);
        assert.strictEqual(report.forced, null);
        assert.ok(report.hooks.some((h) => h.name === 'db pool' && h.outcome.status === 'ok'), stderr);
      } finally {
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
