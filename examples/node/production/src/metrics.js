'use strict';
// Prometheus metrics with prom-client: libshutdown's progress snapshot
// (Shutdown#progress(): phase, in flight by kind, connections, aborted, time left,
// milestone times), read at scrape time, and the service's own counters. The route
// keeps answering while the service drains: during the announce window it is a request
// like any other, so a scraper sees the drain begin.
const client = require('prom-client');

const PHASES = ['running', 'draining', 'closing', 'done'];

function createMetrics() {
  const register = new client.Registry();
  client.collectDefaultMetrics({ register });
  let shutdown = null;
  let abortedSeen = 0;

  // Every gauge below is filled from one snapshot per scrape.
  let snap = null;
  const progress = () => snap ?? (shutdown ? shutdown.progress() : null);

  const gauge = (name, help, labelNames, fill) =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [register],
      collect() {
        const p = progress();
        if (p) fill.call(this, p);
      },
    });

  gauge('libshutdown_phase', 'The shutdown phase: 1 for the current one', ['phase'], function (p) {
    for (const ph of PHASES) this.set({ phase: ph }, ph === p.phase ? 1 : 0);
  });
  gauge('libshutdown_accepting', 'Whether new work is admitted (1) or refused (0)', [], function (p) {
    this.set(p.accepting ? 1 : 0);
  });
  gauge('libshutdown_in_flight', 'Work in flight (guards held), all kinds', [], function (p) {
    this.set(p.inFlight);
  });
  gauge('libshutdown_in_flight_by_kind', 'Work in flight by kind (http, job, socket.io, ...)', ['kind'], function (p) {
    // Kinds come and go: a kind that finished must not keep its last value.
    this.reset();
    for (const [kind, n] of Object.entries(p.inFlightByKind)) this.set({ kind }, n);
  });
  gauge('libshutdown_connections', 'Connections the engine knows of', [], function (p) {
    this.set(p.connections);
  });
  // Labelled by phase so that it can be absent while there is no deadline (running,
  // done): a plain gauge would say 0, which reads as "the deadline is now".
  gauge('libshutdown_time_left_seconds', 'Until the current deadline (announce window, drain, hooks); absent while running or done', ['phase'], function (p) {
    this.reset();
    if (p.timeLeftMs !== null) this.set({ phase: p.phase }, p.timeLeftMs / 1000);
  });
  gauge('libshutdown_milestone_seconds', 'When each milestone was reached, seconds after the trigger', ['milestone'], function (p) {
    this.reset();
    for (const { milestone, atMs } of p.timeline) this.set({ milestone }, atMs / 1000);
  });
  // The core's count only grows: a counter, advanced by what it grew since the last scrape.
  new client.Counter({
    name: 'libshutdown_aborted_total',
    help: 'Work the drain aborted (cut at a deadline)',
    registers: [register],
    collect() {
      const p = progress();
      if (p && p.aborted > abortedSeen) {
        this.inc(p.aborted - abortedSeen);
        abortedSeen = p.aborted;
      }
    },
  });

  const counter = (name, help) => new client.Counter({ name, help, registers: [register] });
  const m = {
    register,
    ordersCreated: counter('orders_created_total', 'Orders committed by this worker'),
    jobsProcessed: counter('jobs_processed_total', 'Jobs committed by this worker'),
    jobsRequeued: counter('jobs_requeued_total', 'Jobs put back in pending (shutdown, failure)'),
    jobsRecovered: counter('jobs_recovered_total', 'Jobs taken back from dead workers'),
    socketClients: new client.Gauge({ name: 'socketio_clients', help: 'Socket.io clients connected', registers: [register] }),
    setShutdown(sd) {
      shutdown = sd;
    },
    async handler(req, res, next) {
      try {
        snap = shutdown ? shutdown.progress() : null;
        const body = await register.metrics();
        res.set('Content-Type', register.contentType).send(body);
      } catch (e) {
        next(e);
      } finally {
        snap = null;
      }
    },
  };
  return m;
}

module.exports = { createMetrics };
