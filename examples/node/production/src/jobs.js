'use strict';
// The background job loop: a reliable queue in Redis. A job moves atomically (BLMOVE)
// from the shared pending list to this worker's own processing list, so it is never
// only in this process's memory; it leaves the processing list (LREM) only after its
// PostgreSQL transaction committed. A job therefore ends either done (its row, then out
// of the lists) or back in pending, never lost and never half-done. The result row is
// keyed by the job id and counts its runs, so a job done twice would show (runs > 1).
//
// The drain: each job holds a libshutdown guard of kind 'job' while it runs, so the
// drain waits for the job in progress; at the trigger the loop stops taking jobs, and
// the cleanup hook (shutdown.js, after HTTP and sockets) waits for the loop to exit.
const os = require('node:os');
const { transaction } = require('./db.js');
const { jobMs, jobPollSeconds } = require('./config.js');
const { log } = require('./log.js');

const PENDING = 'jobs:pending';
const PROCESSING_PREFIX = 'jobs:processing:';
const ALIVE_PREFIX = 'jobs:alive:';
const HEARTBEAT_MS = 1500;
const ALIVE_TTL_MS = 5000;

// Rejects with the signal's reason when it aborts: the drain's deadline stops a job.
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

class JobLoop {
  constructor({ shutdown, pool, redis, blocking, metrics }) {
    Object.assign(this, { shutdown, pool, redis, blocking, metrics });
    this.worker = `${os.hostname()}:${process.pid}`;
    this.processing = PROCESSING_PREFIX + this.worker;
    this.alive = ALIVE_PREFIX + this.worker;
    this.stopping = false;
    this.processed = 0;
    this.requeued = 0;
    this.done = null;
    this.heartbeat = null;
  }

  async start() {
    await this.beat();
    // A worker that died (SIGKILL, OOM) left its processing list behind; its heartbeat
    // has expired. Its jobs go back to pending: at most redone, whose row then says runs 2.
    await this.recover();
    this.heartbeat = setInterval(() => this.beat().catch((e) => log(`jobs: heartbeat error ${e.message}`)), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.done = this.run();
    log(`jobs: started worker ${this.worker}`);
  }

  beat() {
    return this.redis.set(this.alive, '1', 'PX', ALIVE_TTL_MS);
  }

  async recover() {
    let cursor = '0';
    let scans = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${PROCESSING_PREFIX}*`, 'COUNT', 100);
      cursor = next;
      for (const key of keys) {
        const owner = key.slice(PROCESSING_PREFIX.length);
        if (owner === this.worker || (await this.redis.exists(ALIVE_PREFIX + owner))) continue;
        let n = 0;
        while ((await this.redis.lmove(key, PENDING, 'RIGHT', 'RIGHT')) !== null) n++;
        log(`jobs: recovered ${n} from ${key}`);
        this.metrics.jobsRecovered.inc(n);
      }
    } while (cursor !== '0' && ++scans < 10_000);
  }

  // At the trigger: no new job is taken. The BLMOVE in flight returns within
  // jobPollSeconds; a job it brings is put back, not started.
  stopTaking() {
    if (this.stopping) return;
    this.stopping = true;
    log('jobs: stopped taking jobs');
  }

  async run() {
    while (!this.stopping) {
      let raw;
      try {
        raw = await this.blocking.blmove(PENDING, this.processing, 'RIGHT', 'LEFT', jobPollSeconds);
      } catch (e) {
        log(`jobs: blmove error ${e.message}`);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (raw !== null) await this.handle(raw);
    }
  }

  async handle(raw) {
    const guard = this.stopping ? null : this.shutdown.guard('job');
    if (guard === null) {
      await this.requeue(raw, 'the shutdown began');
      return;
    }
    try {
      let job;
      try {
        job = JSON.parse(raw);
        if (typeof job.id !== 'string') throw new Error('no id');
      } catch (e) {
        // A poison message would loop forever through pending.
        await this.redis.multi().lrem(this.processing, 1, raw).rpush('jobs:dead', raw).exec();
        log(`jobs: dead letter ${JSON.stringify(raw)}: ${e.message}`);
        return;
      }
      try {
        await transaction(this.pool, async (c) => {
          await c.query(
            `INSERT INTO job_results (job_id, worker_pid, result) VALUES ($1, $2, $3)
             ON CONFLICT (job_id) DO UPDATE SET runs = job_results.runs + 1, worker_pid = EXCLUDED.worker_pid`,
            [job.id, process.pid, `done by ${this.worker}`],
          );
          // The work itself, inside the transaction: stopped by the drain's deadline, it
          // rolls back and the job goes back to pending.
          await sleep(Number.isFinite(job.ms) ? job.ms : jobMs, this.shutdown.signal);
        });
      } catch (e) {
        await this.requeue(raw, e?.message ?? String(e));
        return;
      }
      // Committed: from here on a failure leaves the job in processing, to be recovered
      // (and counted as a second run) rather than put back as if never done.
      await this.redis.lrem(this.processing, 1, raw).catch((e) => log(`jobs: lrem error ${job.id}: ${e.message}`));
      this.processed++;
      this.metrics.jobsProcessed.inc();
    } finally {
      guard.release();
    }
  }

  // Back to the end of pending that BLMOVE takes from, so it is the next job taken.
  async requeue(raw, why) {
    await this.redis.multi().lrem(this.processing, 1, raw).rpush(PENDING, raw).exec();
    this.requeued++;
    this.metrics.jobsRequeued.inc();
    log(`jobs: requeued ${raw} (${why})`);
  }

  // The cleanup hook: the loop has exited and no job is in progress.
  async stop() {
    this.stopTaking();
    await this.done;
    clearInterval(this.heartbeat);
    const left = await this.redis.llen(this.processing);
    await this.redis.del(this.alive);
    return { processed: this.processed, requeued: this.requeued, left };
  }
}

module.exports = { JobLoop, PENDING, PROCESSING_PREFIX };
