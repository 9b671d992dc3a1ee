'use strict';
// In an application this file is `require('libshutdown')`. Here the package is the
// repository's own bindings/node (as examples/node/server.js loads it), so the example
// always runs the engine of the checkout it sits in; LIBSHUTDOWN_PATH points elsewhere.
const path = require('node:path');

module.exports = require(process.env.LIBSHUTDOWN_PATH || path.join(__dirname, '../../../../bindings/node'));
