#!/usr/bin/env node
'use strict';
// Bounded HTTP load on the order routes (autocannon's API): each connection posts an
// order, then reads it back by the id it got, over and over.
//   node load.js <tools dir> <url> <connections> <seconds> <out.json>
const { createRequire } = require('node:module');
const fs = require('node:fs');
const path = require('node:path');

const [tools, url, conns, seconds, out] = process.argv.slice(2);
const autocannon = createRequire(path.join(tools, 'package.json'))('autocannon');

const statuses = {};
const instance = autocannon(
  {
    url,
    connections: Number(conns),
    duration: Number(seconds),
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/orders',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: 'widget', qty: 2 }),
        onResponse: (status, body, context) => {
          if (status === 201) context.id = JSON.parse(body).id;
        },
      },
      {
        method: 'GET',
        // Until a POST succeeded on this connection: order 1, which the test created.
        setupRequest: (req, context) => ({ ...req, path: `/orders/${context.id ?? 1}` }),
      },
    ],
  },
  (err, r) => {
    if (err) {
      console.error(`load: ${err.stack || err}`);
      process.exit(1);
    }
    fs.writeFileSync(
      out,
      JSON.stringify({
        requests: r.requests.total,
        '2xx': r['2xx'],
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        resets: r.resets,
        statuses,
        latencyP99: r.latency.p99,
      }),
    );
  },
);
instance.on('response', (client, statusCode) => {
  statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
});
