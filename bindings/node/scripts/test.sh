#!/usr/bin/env bash
# The Node binding's whole test run (`make node-test` calls this): install the npm
# dev dependencies, build the addon from source with cargo, check the TypeScript
# types, run the node:test suites. Idempotent; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node-test: node and npm are needed (Node >= 18.18)" >&2
  exit 1
fi

# Dependencies: `npm ci` from the lock file, skipped when node_modules is newer than it.
# --ignore-scripts: the addon is built below, once. --omit=optional: never the published
# prebuilt addon (@libshutdown/<triple>), which the loader would take over the build below.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --ignore-scripts --omit=optional --no-audit --no-fund
fi

# The addon, from source (cargo decides whether anything needs rebuilding).
node scripts/build.js

echo "node-test: type test (tsc --noEmit)"
npx --no-install tsc -p test/types/tsconfig.json

echo "node-test: node:test suites"
node --test --test-concurrency=2 --test-timeout=120000 test/*.test.js
