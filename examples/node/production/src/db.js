'use strict';
// The PostgreSQL pool and the schema the service needs. pg reads PGHOST, PGPORT, PGUSER,
// PGPASSWORD and PGDATABASE itself.
const { Pool } = require('pg');
const { pgPoolMax } = require('./config.js');
const { log } = require('./log.js');

function createPool() {
  const pool = new Pool({ max: pgPoolMax, idleTimeoutMillis: 10_000 });
  // An idle client's connection dropping must not crash the process (pg emits it on
  // the pool, with no listener that is an uncaught 'error').
  pool.on('error', (err) => log(`pg: pool error ${err.message}`));
  return pool;
}

// Idempotent, and run by every worker at start: a migration tool's job in a real service.
// The advisory lock keeps two workers starting together from racing on CREATE TABLE.
async function migrate(pool) {
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock(4242)');
    await c.query(`CREATE TABLE IF NOT EXISTS orders (
      id bigserial PRIMARY KEY,
      item text NOT NULL,
      qty integer NOT NULL CHECK (qty > 0),
      worker_pid integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`);
    // One row per job id: runs > 1 would mean a job was done twice.
    await c.query(`CREATE TABLE IF NOT EXISTS job_results (
      job_id text PRIMARY KEY,
      runs integer NOT NULL DEFAULT 1,
      worker_pid integer NOT NULL,
      result text NOT NULL,
      done_at timestamptz NOT NULL DEFAULT now())`);
  } finally {
    await c.query('SELECT pg_advisory_unlock(4242)').catch(() => {});
    c.release();
  }
}

// fn(client) inside BEGIN/COMMIT; ROLLBACK on any throw. The client goes back to the
// pool either way (destroyed after a failed ROLLBACK: its state is unknown).
async function transaction(pool, fn) {
  const c = await pool.connect();
  let broken;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch((re) => (broken = re));
    throw e;
  } finally {
    c.release(broken);
  }
}

module.exports = { createPool, migrate, transaction };
