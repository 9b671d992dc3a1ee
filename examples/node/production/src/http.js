'use strict';
// The HTTP routes: an Express app whose order routes really use PostgreSQL and Redis.
const express = require('express');
const { transaction } = require('./db.js');
const { log } = require('./log.js');

function createApp({ pool, redis, metrics }) {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '16kb' }));

  // Liveness only: readiness (/readyz, 503 once draining) is libshutdown's attach().
  app.get('/healthz', (req, res) => res.json({ ok: true, pid: process.pid }));

  app.get('/metrics', metrics.handler);

  // The row and the counter: the row in a transaction, the counter once it committed
  // (a rolled-back order is not counted).
  app.post('/orders', async (req, res, next) => {
    try {
      const item = String(req.body?.item ?? 'widget').slice(0, 64);
      const qty = Number.isInteger(req.body?.qty) && req.body.qty > 0 ? req.body.qty : 1;
      const id = await transaction(pool, async (c) => {
        const r = await c.query('INSERT INTO orders (item, qty, worker_pid) VALUES ($1, $2, $3) RETURNING id', [item, qty, process.pid]);
        return r.rows[0].id;
      });
      const count = await redis.incr('orders:created');
      metrics.ordersCreated.inc();
      res.status(201).json({ id: Number(id), count, pid: process.pid });
    } catch (e) {
      next(e);
    }
  });

  app.get('/orders/:id', async (req, res, next) => {
    try {
      const id = Number(req.params.id);
      if (!Number.isSafeInteger(id) || id <= 0) return res.status(400).json({ error: 'bad id' });
      const [r, count] = await Promise.all([
        pool.query('SELECT id, item, qty, worker_pid, created_at FROM orders WHERE id = $1', [id]),
        redis.get('orders:created'),
      ]);
      if (r.rowCount === 0) return res.status(404).json({ error: 'no such order' });
      res.json({ order: { ...r.rows[0], id: Number(r.rows[0].id) }, count: Number(count), pid: process.pid });
    } catch (e) {
      next(e);
    }
  });

  // Logged with a fixed prefix: the end-to-end test counts these (a pool used after
  // end() would show here as "Cannot use a pool after calling end on the pool").
  app.use((err, req, res, next) => {
    log(`http: error ${req.method} ${req.path}: ${err.message}`);
    if (res.headersSent) return next(err);
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}

module.exports = { createApp };
