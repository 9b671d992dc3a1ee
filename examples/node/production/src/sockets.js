'use strict';
// Socket.io: each client is told which process serves it, and can ask for the order
// count (a query on the pool, as real socket handlers do).
const { Server } = require('socket.io');
const { log } = require('./log.js');

function createSockets(server, { pool, metrics }) {
  // WebSocket only: under PM2's cluster mode (round robin, no sticky sessions) the
  // polling transport's requests would reach different workers.
  const io = new Server(server, { transports: ['websocket'], serveClient: false });
  io.on('connection', (socket) => {
    metrics.socketClients.inc();
    socket.emit('hello', { pid: process.pid });
    socket.on('orders:count', async (ack) => {
      if (typeof ack !== 'function') return;
      try {
        const r = await pool.query('SELECT count(*)::int AS n FROM orders');
        ack({ ok: true, n: r.rows[0].n, pid: process.pid });
      } catch (e) {
        log(`sockets: error orders:count: ${e.message}`);
        ack({ ok: false, error: e.message, pid: process.pid });
      }
    });
    socket.on('disconnect', () => metrics.socketClients.dec());
  });
  return io;
}

module.exports = { createSockets };
