#!/usr/bin/env bash
# Node benchmark (`make bench`): plain http vs attach() vs http-terminator vs terminus.
# Installs the bench's own npm dependencies and builds the addon when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
[ -f libshutdown.node ] || node scripts/build.js
cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
exec node bench.js "$@"
