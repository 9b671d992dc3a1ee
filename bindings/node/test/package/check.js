'use strict';
// Runs server.js (in the current directory's project), sends a real SIGTERM while a
// request is in flight, and checks: the request is served (with Connection: close),
// the process exits 0, and its report says a clean drain by signal with nothing
// aborted. `node check.js <pattern>`: the loaded addon's path must match <pattern>.
// Prints the report; exits non-zero on any failure. Bounded: 30 s.

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const want = new RegExp(process.argv[2] ?? '\\.node$');
const fail = (msg) => {
  console.error(`check: FAIL: ${msg}`);
  process.exit(1);
};
setTimeout(() => fail('timed out after 30 s'), 30_000).unref();

const child = spawn(process.execPath, [path.join(process.cwd(), 'server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
const lines = [];
let response = null;
let buf = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    lines.push(line);
    onLine(line);
  }
});

function onLine(line) {
  if (line.startsWith('ADDON ')) {
    const addon = line.slice(6);
    console.log(`check: addon loaded from ${addon}`);
    if (!want.test(addon)) fail(`the addon should come from ${want}, came from ${addon}`);
  } else if (line.startsWith('LISTENING ')) {
    const port = Number(line.slice(10));
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        response = { status: res.statusCode, connection: res.headers.connection, body };
      });
    });
    req.on('error', (e) => fail(`the in-flight request failed: ${e.message}`));
  } else if (line === 'IN-FLIGHT') {
    console.log('check: request in flight, sending SIGTERM');
    child.kill('SIGTERM');
  }
}

child.on('exit', (code, signal) => {
  // The response's end may be read just after the exit is seen.
  setTimeout(() => {
    const reportLine = lines.find((l) => l.startsWith('REPORT '));
    if (reportLine === undefined) fail(`no report (exit ${code}, signal ${signal})`);
    const report = JSON.parse(reportLine.slice(7));
    console.log(`check: report ${JSON.stringify(report)}`);
    if (signal !== null || code !== 0) fail(`the server exited with ${signal ?? code}, not 0`);
    if (response === null) fail('the in-flight request got no response');
    if (response.status !== 200 || response.body !== 'slow done\n') fail(`in-flight response ${JSON.stringify(response)}`);
    if (response.connection !== 'close') fail(`the in-flight response should say Connection: close, got ${response.connection}`);
    if (report.reason?.kind !== 'signal') fail(`reason ${JSON.stringify(report.reason)}, not a signal`);
    if (report.exit_code !== 0 || report.aborted !== 0 || report.in_flight_at_trigger !== 1) fail('not a clean drain of one request');
    console.log('check: ok: the in-flight request was served, exit code 0');
    process.exit(0);
  }, 200);
});
