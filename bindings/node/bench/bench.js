'use strict';
// Throughput of a plain http server against the same server with attach(), and with
// http-terminator and @godaddy/terminus, side by side in one run. Each server runs in
// its own child process on 127.0.0.1; autocannon runs here. Rounds interleave the
// variants so that drift on a shared machine hits all of them alike.
//
//   node bench.js [--duration S] [--rounds N] [--connections C] [--variants a,b,...]
// A variant `attach@DIR` is attach() from another checkout DIR of this repository (its
// addon built), served by that checkout's bench/server.js: the same bench, side by side
// with this one's `attach`, compares two versions in one run.
// Bounded: variants x 2 s of warm-up + rounds x variants x duration seconds.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const autocannon = require('autocannon');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const duration = Math.min(Number(opt('duration', 2)), 60);
const rounds = Math.min(Number(opt('rounds', 10)), 30);
const connections = Math.min(Number(opt('connections', 50)), 500);
const variants = opt('variants', 'plain,attach,terminator,terminus').split(',');

function start(variant) {
  return new Promise((resolve, reject) => {
    const at = variant.indexOf('@');
    const script = at < 0 ? path.join(__dirname, 'server.js') : path.resolve(variant.slice(at + 1), 'bindings/node/bench/server.js');
    const proc = spawn(process.execPath, [script, at < 0 ? variant : variant.slice(0, at)], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout.once('data', (d) => resolve({ proc, port: Number(String(d).trim()) }));
    proc.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
  });
}

function load(port, seconds) {
  return new Promise((resolve, reject) => {
    autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: seconds, pipelining: 1 }, (err, r) =>
      err ? reject(err) : resolve(r),
    );
  });
}

// The server's CPU time (user + system), in seconds, from /proc (Linux); null elsewhere.
const TICK = 100; // USER_HZ
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return null;
  }
}

async function measure(server) {
  const cpu0 = cpuSeconds(server.proc.pid);
  const r = await load(server.port, duration);
  const cpu1 = cpuSeconds(server.proc.pid);
  if (r.errors || r.non2xx) throw new Error(`${server.variant}: ${r.errors} errors, ${r.non2xx} non-2xx`);
  // CPU per request: less sensitive than throughput to other load on a shared machine.
  const usPerReq = cpu0 === null ? NaN : ((cpu1 - cpu0) * 1e6) / r.requests.total;
  return { rps: r.requests.average, p99: r.latency.p99, usPerReq };
}

(async () => {
  const results = Object.fromEntries(variants.map((v) => [v, []]));
  console.log(`autocannon: ${connections} connections, ${duration} s per run, ${rounds} rounds, node ${process.version}`);
  // Every server runs for the whole benchmark (an idle one costs nothing), warmed up
  // once; the rounds then measure them back to back, so that each round's ratios
  // compare runs a few seconds apart.
  const servers = {};
  for (const v of variants) servers[v] = { variant: v, ...(await start(v)) };
  try {
    for (const v of variants) await load(servers[v].port, 2); // JIT, connection pool
    await runRounds();
  } finally {
    for (const v of variants) servers[v].proc.kill('SIGKILL');
  }

  async function runRounds() {
  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round.
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const v of order) {
      const m = await measure(servers[v]);
      results[v].push(m);
      console.log(`  round ${round + 1} ${v.padEnd(11)} ${m.rps.toFixed(0).padStart(7)} req/s  p99 ${m.p99} ms  ${m.usPerReq.toFixed(2)} us CPU/req`);
    }
  }
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const plain = median(results.plain?.map((m) => m.rps) ?? [NaN]);
  const plainCpu = median(results.plain?.map((m) => m.usPerReq) ?? [NaN]);
  console.log('\nmedian of rounds:');
  for (const v of variants) {
    const rps = median(results[v].map((m) => m.rps));
    const p99 = median(results[v].map((m) => m.p99));
    const cpu = median(results[v].map((m) => m.usPerReq));
    console.log(
      `  ${v.padEnd(11)} ${rps.toFixed(0).padStart(7)} req/s  p99 ${p99} ms  ratio to plain ${(rps / plain).toFixed(3)}` +
        `  | ${cpu.toFixed(2)} us CPU/req, plain/this ${(plainCpu / cpu).toFixed(3)}`,
    );
  }
  // Per-round ratios cancel drift between rounds (other load on a shared machine).
  if (results.plain) {
    console.log('\nmedian of per-round ratios to plain (throughput | plain CPU/req over this CPU/req):');
    for (const v of variants) {
      const t = median(results[v].map((m, i) => m.rps / results.plain[i].rps));
      const c = median(results[v].map((m, i) => results.plain[i].usPerReq / m.usPerReq));
      console.log(`  ${v.padEnd(11)} ${t.toFixed(3)} | ${c.toFixed(3)}`);
    }
  }
  for (const v of variants) {
    if (!v.startsWith('attach@') || !results.attach) continue;
    // Per-round: the two versions of a round ran seconds apart.
    const t = median(results.attach.map((m, i) => m.rps / results[v][i].rps));
    const c = median(results.attach.map((m, i) => m.usPerReq / results[v][i].usPerReq));
    const p = median(results.attach.map((m, i) => m.p99 / results[v][i].p99));
    console.log(`\nattach / ${v} (median of per-round ratios): throughput ${t.toFixed(3)}, CPU per request ${c.toFixed(3)}, p99 ${p.toFixed(3)}`);
  }
  if (results.attach && results.plain) {
    const a = median(results.attach.map((m) => m.rps));
    const c = median(results.attach.map((m) => m.usPerReq));
    console.log(`\nattach() / plain: throughput ratio ${(a / plain).toFixed(3)}, CPU-per-request ratio (plain/attach) ${(plainCpu / c).toFixed(3)} (goal >= 0.97)`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
