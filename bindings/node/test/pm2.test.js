'use strict';
// sd.pm2() against PM2's protocol, without PM2: this file forks itself as a child with
// the environment PM2 gives its processes (pm_id, NODE_APP_INSTANCE, kill_timeout) and
// plays PM2's part over the IPC channel: it waits for 'ready', sends 'shutdown', and
// reads the exit code. The same thing under a real PM2 is tests/platforms/pm2.sh
// (make platforms).

const { fork } = require('node:child_process');
const http = require('node:http');

const CHILD = process.argv[2] === 'child';

if (CHILD) {
  const { Shutdown } = require('..');
  const sd = new Shutdown({ drainDelay: 200, drainTimeout: 2000, closeTimeout: 1000, gracePeriod: null });
  sd.listenSignals();
  const server = http.createServer((req, res) => setTimeout(() => res.end('ok\n'), Number(req.url.slice(1)) || 0));
  sd.attach(server);
  // Before pm2()'s own 'listening' listener: the port reaches the parent before 'ready'.
  server.once('listening', () => {
    process.send({ port: server.address().port });
    if (process.env.MANUAL_READY === '1') setTimeout(() => process.send({ manual: sd.notifyReady(), again: sd.notifyReady() }), 300);
  });
  const info = sd.pm2({ readyOnListen: process.env.MANUAL_READY !== '1' });
  process.send({ info });
  sd.on('done', (r) => process.send({ done: r.exit_code, reason: r.reason }));
  server.listen(0, '127.0.0.1');
} else {
  const test = require('node:test');
  const assert = require('node:assert/strict');

  // Forks the child with PM2's variables; returns its messages, stderr and exit code.
  function run(env, script) {
    return new Promise((resolve, reject) => {
      const child = fork(__filename, ['child'], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      const msgs = [];
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.on('message', (m) => {
        msgs.push(m);
        script(m, child, msgs);
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ msgs, stderr, code, signal });
      });
    });
  }

  const get = (port, path) =>
    new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });

  test("under PM2: 'ready' once listening, 'shutdown' drains a request in flight, exit 0, no warning when kill_timeout fits", async () => {
    let port;
    let inflight;
    const r = await run({ pm_id: '3', NODE_APP_INSTANCE: '1', exec_mode: 'cluster_mode', kill_timeout: '5000' }, (m, child) => {
      if (m.port) port = m.port;
      if (m === 'ready') {
        inflight = get(port, '/800');
        setTimeout(() => child.send('shutdown'), 100);
      }
    });
    assert.equal(r.code, 0, r.stderr);
    const info = r.msgs.find((m) => m.info)?.info;
    assert.deepEqual(info, { id: '3', instance: '1', execMode: 'cluster_mode', killTimeout: 5000, killTimeoutSource: 'kill_timeout', fits: true });
    assert.equal(r.msgs.filter((m) => m === 'ready').length, 1);
    assert.ok(r.msgs.indexOf('ready') > r.msgs.findIndex((m) => m.port), "'ready' comes after listening");
    assert.equal(await inflight, 200, 'the request in flight completed');
    const done = r.msgs.find((m) => m.done !== undefined);
    assert.equal(done.done, 0);
    assert.match(JSON.stringify(done.reason), /pm2: shutdown message/);
    assert.doesNotMatch(r.stderr, /LIBSHUTDOWN_PM2_KILL_TIMEOUT/);
  });

  test('budgets that do not fit in kill_timeout (or its default 1600 ms) are a loud warning, not a refusal', async () => {
    for (const [env, source, ms] of [
      [{ pm_id: '0', kill_timeout: '1000' }, 'kill_timeout', 1000],
      [{ pm_id: '0', kill_timeout: undefined, PM2_KILL_TIMEOUT: undefined }, 'default', 1600],
    ]) {
      const r = await run(env, (m, child) => {
        if (m === 'ready') child.send('shutdown');
      });
      assert.equal(r.code, 0, r.stderr);
      const info = r.msgs.find((m) => m.info).info;
      assert.equal(info.fits, false);
      assert.equal(info.killTimeout, ms);
      assert.equal(info.killTimeoutSource, source);
      assert.match(r.stderr, /LIBSHUTDOWN_PM2_KILL_TIMEOUT/);
      // The core's own words: the sum and the grace period it does not fit in.
      assert.match(r.stderr, /drain_delay \+ drain_timeout \+ close_timeout = 3\.2s does not fit/);
    }
  });

  test("readyOnListen: false: 'ready' only at notifyReady(), once", async () => {
    const r = await run({ pm_id: '1', kill_timeout: '5000', MANUAL_READY: '1' }, (m, child) => {
      if (m.manual !== undefined) child.send('shutdown');
    });
    assert.equal(r.code, 0, r.stderr);
    const manual = r.msgs.find((m) => m.manual !== undefined);
    assert.deepEqual(manual, { manual: true, again: false });
    assert.equal(r.msgs.filter((m) => m === 'ready').length, 1);
  });

  test('not under PM2 (no pm_id): pm2() is null and sends nothing', async () => {
    const r = await run({ pm_id: undefined }, (m, child) => {
      if (m.port) setTimeout(() => child.kill('SIGTERM'), 200);
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.msgs.find((m) => 'info' in m).info, null);
    assert.ok(!r.msgs.includes('ready'));
  });

  test('pm2(): unknown options are refused', () => {
    const { Shutdown } = require('..');
    const sd = new Shutdown({ exitOnDone: false });
    assert.throws(() => sd.pm2({ readyOnListn: true }), { code: 'ERR_INVALID_ARG_TYPE', option: 'readyOnListn' });
    assert.throws(() => sd.pm2({ readyOnListen: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.equal(sd.pm2({ env: {} }), null);
  });
}
