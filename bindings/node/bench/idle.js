'use strict';
// 10,000 idle keep-alive sockets and no announce window: how long from the trigger to
// the end of the drain, and the longest turn of the event loop meanwhile, for attach()
// against a bare `server.close()` + `closeIdleConnections()` (what a server without
// this library does), side by side, alternating, in one run. Each server is a child
// process; the sockets are opened from this process on 127.0.0.1.
// A variant's time ends when its listener has closed and every socket has emitted
// 'close', the same instant for both (see serve()); its CPU time over the same window
// is reported too, being steadier than wall time on a shared machine.
//
//   node bench/idle.js [--sockets N] [--rounds R] [--cpu-prof DIR]
// Bounded: rounds x 2 variants, each at most 60 s.

const { fork } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SOCKETS = Math.min(opt('sockets', 10000), 15000);
const ROUNDS = Math.min(opt('rounds', 3), 10);
// --cpu-prof DIR: each server writes a V8 CPU profile of its trigger-to-end window there.
const i = args.indexOf('--cpu-prof');
const PROF_DIR = i >= 0 ? path.resolve(args[i + 1]) : null;

if (process.argv[2] === 'serve') serve(process.argv[3], process.argv[4]);
else main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// ----- the server (child) ------------------------------------------------------------

function serve(variant, profDir) {
  const http = require('node:http');
  const server = http.createServer({ keepAliveTimeout: 120000 }, (req, res) => res.end('ok\n'));
  let sd = null;
  if (variant === 'attach') {
    const { Shutdown } = require(path.join(__dirname, '..'));
    sd = new Shutdown({ drainTimeout: 20000, closeTimeout: 1000 });
    sd.attach(server);
  }
  // The same span on both sides: a variant is over once the listener has closed and
  // every socket has emitted 'close' (its handlers have run), not at the first callback
  // that says so. A bare server.close() calls back on the tick after its last
  // destroy(), before the close phase that runs the sockets' 'close' handlers, so that
  // callback alone would leave out work attach() does inside its window.
  let open = 0;
  let onAllClosed = null;
  server.on('connection', (s) => {
    open++;
    s.on('close', () => {
      if (--open === 0 && onAllClosed !== null) onAllClosed();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m !== 'stop') return;
    const profiler = profDir ? startProfile() : null;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let blocked = 0;
    // The longest single turn: a timer that should fire every millisecond.
    let last = t0;
    const tick = setInterval(() => {
      const now = process.hrtime.bigint();
      blocked = Math.max(blocked, Number(now - last) / 1e6);
      last = now;
    }, 1);
    let doneMs = null; // attach: Done; bare: server.close()'s callback
    let serverMs = null; // the listener's 'close'
    let socketsMs = open === 0 ? 0 : null; // the last socket's 'close'
    let extra = {};
    const maybeFinish = () => {
      if (doneMs === null || serverMs === null || socketsMs === null) return;
      const ms = since();
      const cpu = process.cpuUsage(cpu0);
      // Include the turn in which the last of them ran.
      blocked = Math.max(blocked, Number(process.hrtime.bigint() - last) / 1e6);
      clearInterval(tick);
      const send = () =>
        process.send({ ms, doneMs, cpuMs: (cpu.user + cpu.system) / 1e3, userMs: cpu.user / 1e3, sysMs: cpu.system / 1e3, blocked, ...extra }, () => process.exit(0));
      if (profiler === null) send();
      else profiler(variant, profDir, send);
    };
    onAllClosed = () => {
      socketsMs = since();
      maybeFinish();
    };
    server.once('close', () => {
      serverMs = since();
      maybeFinish();
    });
    if (sd) {
      sd.trigger('bench');
      sd.done.then((r) => {
        doneMs = since();
        extra = { exit: r.exit_code, aborted: r.aborted };
        maybeFinish();
      });
    } else {
      server.close(() => {
        doneMs = since();
        extra = { exit: 0, aborted: 0 };
        maybeFinish();
      });
      server.closeIdleConnections();
    }
  });
}

// The inspector's CPU profiler over the measured window; returns stop(variant, dir, then).
function startProfile() {
  const inspector = require('node:inspector');
  const fs = require('node:fs');
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.setSamplingInterval', { interval: 100 });
  session.post('Profiler.enable');
  session.post('Profiler.start');
  return (variant, dir, then) =>
    session.post('Profiler.stop', (err, r) => {
      if (!err) fs.writeFileSync(path.join(dir, `${variant}-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
      then();
    });
}

// ----- the driver (this process) -----------------------------------------------------

function start(variant) {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['serve', variant, PROF_DIR ?? ''], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve({ child, port: m.port }));
    child.once('exit', (c) => reject(new Error(`${variant} exited ${c}`)));
  });
}

function openIdle(port, n) {
  return new Promise((resolve, reject) => {
    const sockets = [];
    let ready = 0;
    let opened = 0;
    const batch = () => {
      // 500 at a time: the listen backlog is not the thing measured.
      const until = Math.min(n, opened + 500);
      for (; opened < until; opened++) {
        const s = net.connect(port, '127.0.0.1');
        s.setNoDelay(true);
        let got = '';
        s.on('data', (d) => {
          got += d;
          if (got.endsWith('ok\n') && !s.ready) {
            s.ready = true;
            if (++ready === n) resolve(sockets);
            else if (ready === opened) batch();
          }
        });
        s.on('error', () => {});
        s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
        sockets.push(s);
      }
    };
    batch();
    setTimeout(() => reject(new Error(`only ${ready} of ${n} sockets ready after 60 s`)), 60000).unref();
  });
}

async function once(variant) {
  const { child, port } = await start(variant);
  const sockets = await openIdle(port, SOCKETS);
  await new Promise((r) => setTimeout(r, 300)); // all idle for longer than the grace
  const result = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.send('stop');
    setTimeout(() => reject(new Error(`${variant}: no end after 60 s`)), 60000).unref();
  });
  let closed = 0;
  for (const s of sockets) if (s.destroyed || s.readableEnded) closed++;
  for (const s of sockets) s.destroy();
  await new Promise((r) => child.once('exit', r));
  return { ...result, closedSeen: closed };
}

async function main() {
  console.log(`${SOCKETS} idle keep-alive sockets, ${ROUNDS} rounds, node ${process.version}`);
  const rows = { attach: [], bare: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const v of i % 2 ? ['bare', 'attach'] : ['attach', 'bare']) {
      const r = await once(v);
      rows[v].push(r);
      console.log(
        `round ${i + 1} ${v.padEnd(6)} trigger->all closed ${r.ms.toFixed(1)} ms (done/close callback ${r.doneMs.toFixed(1)} ms), ` +
          `CPU ${r.cpuMs.toFixed(0)} ms, longest loop turn ${r.blocked.toFixed(1)} ms, exit ${r.exit}`,
      );
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const a = median(rows.attach.map((r) => r.ms));
  const b = median(rows.bare.map((r) => r.ms));
  const ab = median(rows.attach.map((r) => r.blocked));
  const bb = median(rows.bare.map((r) => r.blocked));
  const ad = median(rows.attach.map((r) => r.doneMs));
  const bd = median(rows.bare.map((r) => r.doneMs));
  const ac = median(rows.attach.map((r) => r.cpuMs));
  const bc = median(rows.bare.map((r) => r.cpuMs));
  // Per-round ratios: the two variants of a round ran seconds apart. Their quartiles
  // show how far one round is from the next on this machine: a difference inside them
  // is not one this run can tell.
  const ratios = rows.attach.map((r, k) => r.ms / rows.bare[k].ms).sort((x, y) => x - y);
  const q = (f) => ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))];
  const pr = median(ratios);
  const cpuRatios = rows.attach.map((r, k) => r.cpuMs / rows.bare[k].cpuMs);
  console.log(`median trigger->all closed: attach ${a.toFixed(1)} ms, bare ${b.toFixed(1)} ms, ratio ${(a / b).toFixed(2)} (median of per-round ratios ${pr.toFixed(2)}, quartiles ${q(0.25).toFixed(2)}-${q(0.75).toFixed(2)})`);
  console.log(
    `median of per-round CPU ratios: ${median(cpuRatios).toFixed(2)} ` +
      `(user: attach ${median(rows.attach.map((r) => r.userMs)).toFixed(0)} ms, bare ${median(rows.bare.map((r) => r.userMs)).toFixed(0)} ms; ` +
      `system: attach ${median(rows.attach.map((r) => r.sysMs)).toFixed(0)} ms, bare ${median(rows.bare.map((r) => r.sysMs)).toFixed(0)} ms)`,
  );
  console.log(`median trigger->done (bare: close callback): attach ${ad.toFixed(1)} ms, bare ${bd.toFixed(1)} ms, ratio ${(ad / bd).toFixed(2)}`);
  console.log(`median CPU in the window: attach ${ac.toFixed(0)} ms, bare ${bc.toFixed(0)} ms, ratio ${(ac / bc).toFixed(2)}`);
  console.log(`median longest loop turn: attach ${ab.toFixed(1)} ms, bare ${bb.toFixed(1)} ms`);
  if (rows.attach.some((r) => r.exit !== 0)) process.exitCode = 1;
}
