'use strict';
// systemd Type=notify through the addon, against a real NOTIFY_SOCKET. Node has no Unix
// datagram sockets, so a python3 child binds one and prints what it receives; this
// process (its own, under node --test) points NOTIFY_SOCKET at it.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Shutdown } = require('..');

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(10)
print("bound", flush=True)
while True:
    data = s.recv(4096).decode()
    for line in data.splitlines():
        print(line, flush=True)
    if "STATUS=done" in data:
        break
`;

const python = spawnSync('python3', ['-c', 'pass']).status === 0;

test('notifySystemd: READY=1, STOPPING=1, STATUS per phase, EXTEND_TIMEOUT_USEC', { skip: !python && 'python3 not found (the receiving socket needs it)' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-sd-'));
  const sock = path.join(dir, 'notify.sock');
  const rx = spawn('python3', ['-c', RECEIVER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => rx.kill(), 15_000);
  try {
    let out = '';
    rx.stdout.setEncoding('utf8');
    const exited = new Promise((resolve) => rx.on('exit', resolve));
    await new Promise((resolve, reject) => {
      rx.stdout.on('data', (d) => {
        out += d;
        if (out.startsWith('bound\n')) resolve();
      });
      rx.on('exit', () => reject(new Error(`receiver exited: ${out}`)));
    });
    process.env.NOTIFY_SOCKET = sock;
    const sd = new Shutdown({ manualClock: true, drainTimeout: 5000, closeTimeout: 1000 });
    assert.equal(sd.notifySystemd(), true);
    assert.equal(sd.notifyReady(), true);
    const g = sd.guard();
    sd.trigger('deploy');
    assert.equal(sd.notifyReady(), false, 'no READY=1 once stopping');
    g.release();
    await sd.done;
    assert.equal(await exited, 0);
    const lines = out.split('\n').slice(1, -1);
    assert.deepEqual(lines, [
      'READY=1',
      'STATUS=serving, 0 in flight',
      'STOPPING=1',
      'STATUS=draining, 1 in flight',
      'EXTEND_TIMEOUT_USEC=10000000',
      'STATUS=quiescing, 1 in flight',
      'EXTEND_TIMEOUT_USEC=10000000',
      'STATUS=closing, 0 in flight',
      'EXTEND_TIMEOUT_USEC=6000000',
      'STATUS=done, 0 in flight',
      'EXTEND_TIMEOUT_USEC=5000000',
    ]);
  } finally {
    clearTimeout(timer);
    delete process.env.NOTIFY_SOCKET;
    rx.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without NOTIFY_SOCKET nothing is sent and nothing fails', () => {
  delete process.env.NOTIFY_SOCKET;
  const sd = new Shutdown({ manualClock: true });
  assert.equal(sd.notifySystemd(), false);
  assert.equal(sd.notifyReady(), false);
});
