'use strict';
// Helpers for the tests that start real server processes: the example server, raw
// HTTP/1.1 over net sockets (to control keep-alive exactly), and bounded waits.
// Everything binds and connects to 127.0.0.1 only.

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');

const SERVER = path.join(__dirname, '../../../examples/node/server.js');
const WAIT_MS = 20_000; // a bound on every wait, never an assertion about speed

/** Resolves when `pred()` is true, polling; rejects after `ms`. */
async function until(pred, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts the example server; resolves once it listens. */
async function startServer(args = []) {
  const proc = spawn(process.execPath, [SERVER, '--port', '0', '--stdin-control', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, RUST_BACKTRACE: '0' },
  });
  const lines = [];
  let stderr = '';
  let buf = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (c) => {
    buf += c;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const s = {
    proc,
    lines,
    get stderr() {
      return stderr;
    },
    exited,
    port: 0,
    has: (re) => lines.some((l) => re.test(l)),
    index: (re) => lines.findIndex((l) => re.test(l)),
    waitFor: (re) => until(() => lines.some((l) => re.test(l)), `${re} in the server's output:\n${lines.join('\n')}\n${stderr}`),
    kill: (sig = 'SIGTERM') => proc.kill(sig),
    release: () => proc.stdin.write('release\n'),
    async exit() {
      let timer;
      const r = await Promise.race([
        exited,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(null), WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      if (r === null) {
        proc.kill('SIGKILL');
        throw new Error(`the server did not exit:\n${lines.join('\n')}\n${stderr}`);
      }
      return r;
    },
  };
  await s.waitFor(/^listening on \d+/);
  s.port = Number(/^listening on (\d+)/.exec(lines.find((l) => l.startsWith('listening')))[1]);
  return s;
}

/**
 * A raw HTTP/1.1 client connection: send requests, read responses one by one, see
 * whether and how the server closed it.
 */
class Conn {
  constructor(port) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.buf = '';
    this.responses = [];
    this.read = 0;
    this.closed = false;
    this.error = null;
    this.socket.on('data', (c) => {
      this.buf += c;
      this._parse();
    });
    this.socket.on('error', (e) => {
      this.error = e;
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  _parse() {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.slice(0, end).split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const headers = {};
      for (const h of head.slice(1)) {
        const i = h.indexOf(':');
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      let rest = this.buf.slice(end + 4);
      let body;
      if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (rest.length < n) return;
        body = rest.slice(0, n);
        rest = rest.slice(n);
      } else if (headers['transfer-encoding'] === 'chunked') {
        body = '';
        let p = 0;
        for (;;) {
          const le = rest.indexOf('\r\n', p);
          if (le < 0) return;
          const size = parseInt(rest.slice(p, le), 16);
          if (rest.length < le + 2 + size + 2) return;
          body += rest.slice(le + 2, le + 2 + size);
          p = le + 2 + size + 2;
          if (size === 0) break;
        }
        rest = rest.slice(p);
      } else {
        body = rest;
        rest = '';
      }
      this.buf = rest;
      this.responses.push({ status, headers, body });
    }
  }

  /** Sends raw bytes. */
  write(s) {
    this.socket.write(s);
  }

  /** Sends a GET request (keep-alive). */
  get(target, id) {
    this.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${id ? `X-Request-Id: ${id}\r\n` : ''}\r\n`);
  }

  /** Waits for the n-th response (1-based) on this connection; default: the next unread. */
  async response(n = this.read + 1) {
    this.read = Math.max(this.read, n);
    await until(() => this.responses.length >= n || this.closed, `response ${n}`);
    if (this.responses.length < n) throw new Error(`the connection closed before response ${n} (${this.error?.code ?? 'no error'})`);
    return this.responses[n - 1];
  }

  async whenClosed() {
    await until(() => this.closed, 'the server to close the connection');
  }

  destroy() {
    this.socket.destroy();
  }
}

/** Opens a connection and waits for it to be established. */
async function connect(port) {
  const c = new Conn(port);
  await c.connected;
  return c;
}

/** Listens on 127.0.0.1 (port 0); resolves with the port. The server and its
 * connections are closed after test `t`, whatever happens. */
function listen(t, server) {
  t.after(() => {
    server.closeAllConnections?.();
    server.close();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** Whether a new TCP connection to the port is refused. */
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

let certificate; // made once per test file (null: openssl is missing)
/** A self-signed certificate for 127.0.0.1 ({ key, cert }), or null without openssl. */
function credentials() {
  if (certificate !== undefined) return certificate;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'),
      '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    certificate = { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
  } catch {
    certificate = null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return certificate;
}

/** A request handler whose /hold responses wait until release(); the rest answer at once. */
function holder() {
  const waiting = [];
  return {
    waiting,
    handler(req, res) {
      if (req.url.startsWith('/hold')) waiting.push(() => res.end('held\n'));
      else res.end('hello\n');
    },
    release() {
      for (const f of waiting.splice(0)) f();
    },
  };
}

module.exports = { startServer, Conn, connect, listen, refused, until, WAIT_MS, SERVER, credentials, holder };
