'use strict';
// Two Redis connections: commands, and one for the job loop's blocking BLMOVE (a
// blocked connection serves nothing else until the command returns).
const Redis = require('ioredis');
const { redisUrl } = require('./config.js');
const { log } = require('./log.js');

function createRedis(name) {
  // No offline queue: a command while disconnected fails at once rather than waiting
  // unbounded; a failed request is better seen than hung.
  const r = new Redis(redisUrl, { connectionName: `${name}-${process.pid}`, enableOfflineQueue: false, maxRetriesPerRequest: 2 });
  r.on('error', (err) => log(`redis: ${name} error ${err.message}`));
  return r;
}

// Resolves once the connection is ready (enableOfflineQueue: false refuses commands before).
const ready = (r) => (r.status === 'ready' ? Promise.resolve() : new Promise((res, rej) => {
  r.once('ready', res);
  r.once('end', () => rej(new Error('redis: connection ended before it was ready')));
}));

module.exports = { createRedis, ready };
