#!/usr/bin/env node
'use strict';
// Builds the addon from source -> ./libshutdown.node, which the loader (lib/native.js)
// uses when no prebuilt platform package loads.
//
//   in the repository:        `npm run build` (cargo build -p libshutdown-node, the workspace's crate)
//   in an installed package:  `npx libshutdown-build` (pnpm: `pnpm exec libshutdown-build`),
//                             from the sources the tarball carries in ./vendor (scripts/vendor.js)
//
// Release unless LIBSHUTDOWN_PROFILE=debug (or --debug). --platform (repository only)
// also copies the addon into its platform package, npm/<triple>/libshutdown.<triple>.node,
// ready for `npm pack npm/<triple>`. Cargo's own target directory for this crate
// (./target) keeps this build from waiting on the workspace's other builds; set
// CARGO_TARGET_DIR to share one. Needs cargo and Rust >= 1.88.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { triple, BINARY } = require('../lib/native.js');

const here = path.resolve(__dirname, '..');
const argv = process.argv.slice(2);
for (const a of argv) {
  if (!['--debug', '--platform', '--help', '-h'].includes(a)) {
    console.error(`libshutdown-build: unknown argument ${a} (known: --debug, --platform)`);
    process.exit(2);
  }
}
if (argv.includes('--help') || argv.includes('-h')) {
  console.error('usage: libshutdown-build [--debug] [--platform]\nBuilds the native addon of libshutdown from source with cargo.');
  process.exit(0);
}
const profile = process.env.LIBSHUTDOWN_PROFILE === 'debug' || argv.includes('--debug') ? 'debug' : 'release';
const targetDir = process.env.CARGO_TARGET_DIR || path.join(here, 'target');
const cargo = process.env.CARGO || 'cargo';

// The repository's crate (a member of the workspace), or the vendored standalone one.
const inRepository = fs.existsSync(path.join(here, 'Cargo.toml'));
const manifest = inRepository ? path.join(here, 'Cargo.toml') : path.join(here, 'vendor', 'Cargo.toml');
if (!fs.existsSync(manifest)) {
  console.error(`libshutdown-build: no Rust sources at ${manifest}: this copy of the package cannot be built from source`);
  process.exit(1);
}
if (argv.includes('--platform') && !inRepository) {
  console.error('libshutdown-build: --platform fills npm/<triple>/ and is for the repository only');
  process.exit(2);
}

const args = ['build', '-p', 'libshutdown-node', '--manifest-path', manifest];
if (profile === 'release') args.push('--release');
console.error(`libshutdown: ${cargo} ${args.join(' ')} (target dir ${targetDir})`);
const r = spawnSync(cargo, args, {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, CARGO_TARGET_DIR: targetDir },
});
if (r.error) {
  console.error(
    `libshutdown-build: cannot run ${cargo}: ${r.error.message}. ` +
      'Building from source needs cargo and Rust >= 1.88 (https://rustup.rs)',
  );
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);

const lib = {
  linux: 'liblibshutdown_node.so',
  darwin: 'liblibshutdown_node.dylib',
  win32: 'libshutdown_node.dll',
}[process.platform] ?? 'liblibshutdown_node.so';
const from = path.join(targetDir, profile, lib);

// Copy to a temporary name and rename: a process that has the old addon loaded keeps it.
function install(to) {
  const tmp = `${to}.${process.pid}.tmp`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, to);
  console.error(`libshutdown: built ${path.relative(process.cwd(), to) || to} (${profile})`);
}

install(path.join(here, `${BINARY}.node`));
if (argv.includes('--platform')) {
  const t = triple();
  const dir = path.join(here, 'npm', t);
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    console.error(`libshutdown-build: no platform package for ${t} (npm/${t}/package.json)`);
    process.exit(1);
  }
  install(path.join(dir, `${BINARY}.${t}.node`));
}
