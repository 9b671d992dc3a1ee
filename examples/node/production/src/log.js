'use strict';
// Synchronous writes: the process exits right after the drain's last line, and lines
// from several workers appending to one file stay whole (O_APPEND, one write each).
const fs = require('node:fs');
const { logFile } = require('./config.js');

const fd = logFile ? fs.openSync(logFile, 'a') : 1;

function log(line) {
  fs.writeSync(fd, `${new Date().toISOString()} pid=${process.pid} ${line}\n`);
}

module.exports = { log };
