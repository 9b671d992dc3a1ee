#!/usr/bin/env node
'use strict';
// N Socket.io clients that record which worker served them (the server's 'hello' with
// its pid), every disconnect and its reason, and reconnect: by themselves after a
// "transport close", explicitly after an "io server disconnect" (socket.io-client does
// not reconnect after a server-side disconnect). Each also asks for the order count
// every 500 ms (a query on the server's pool) and records answers that report an error.
// Ends at SIGTERM or after <max seconds>, writing one JSON record per client.
//   node sio-clients.js <tools dir> <url> <clients> <max seconds> <out.json>
const { createRequire } = require('node:module');
const fs = require('node:fs');
const path = require('node:path');

const [tools, url, n, maxSeconds, out] = process.argv.slice(2);
const { io } = createRequire(path.join(tools, 'package.json'))('socket.io-client');

const clients = [];
let ended = false;
for (let i = 0; i < Number(n); i++) {
  const rec = { i, pids: [], disconnects: [], connectErrors: 0, acks: 0, ackErrors: [], ackTimeouts: 0, connected: false };
  const socket = io(url, {
    transports: ['websocket'],
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: 5000,
  });
  socket.on('hello', ({ pid }) => {
    rec.pids.push(pid);
    rec.connected = true;
  });
  socket.on('disconnect', (reason) => {
    if (ended) return; // our own disconnect at the end
    rec.connected = false;
    rec.disconnects.push({ reason, pid: rec.pids.at(-1) ?? null, at: Date.now() });
    // The server ended the session on purpose (the DISCONNECT packet): the manager
    // will not reconnect on its own. Soon, not at once, as a client should.
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 200);
  });
  socket.on('connect_error', () => rec.connectErrors++);
  const timer = setInterval(() => {
    if (!socket.connected) return;
    socket.timeout(3000).emit('orders:count', (err, answer) => {
      if (err) rec.ackTimeouts++;
      else if (answer.ok) rec.acks++;
      else rec.ackErrors.push(answer.error);
    });
  }, 500);
  clients.push({ rec, socket, timer });
}

function end() {
  if (ended) return;
  ended = true;
  for (const c of clients) {
    clearInterval(c.timer);
    c.rec.connected = c.socket.connected && c.rec.connected;
    c.socket.disconnect();
  }
  fs.writeFileSync(out, JSON.stringify(clients.map((c) => c.rec)));
  process.exit(0);
}
process.on('SIGTERM', end);
setTimeout(end, Number(maxSeconds) * 1000);
