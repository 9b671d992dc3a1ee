#!/usr/bin/env node
'use strict';
// Builds the addon from source: `cargo build -p libshutdown-node` (release unless
// LIBSHUTDOWN_PROFILE=debug), then copies the shared library to ./libshutdown.node.
// Cargo's own target directory for this crate (bindings/node/target) keeps this build
// from waiting on the workspace's other builds; set CARGO_TARGET_DIR to share one.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const profile = process.env.LIBSHUTDOWN_PROFILE === 'debug' ? 'debug' : 'release';
const targetDir = process.env.CARGO_TARGET_DIR || path.join(here, 'target');
const cargo = process.env.CARGO || 'cargo';

const args = ['build', '-p', 'libshutdown-node'];
if (profile === 'release') args.push('--release');
const r = spawnSync(cargo, args, {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, CARGO_TARGET_DIR: targetDir },
});
if (r.error) {
  console.error(`libshutdown: cannot run ${cargo}: ${r.error.message} (install Rust: https://rustup.rs)`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);

const lib = {
  linux: 'liblibshutdown_node.so',
  darwin: 'liblibshutdown_node.dylib',
  win32: 'libshutdown_node.dll',
}[process.platform] ?? 'liblibshutdown_node.so';
const from = path.join(targetDir, profile, lib);
const to = path.join(here, 'libshutdown.node');
// Copy to a temporary name and rename: a process that has the old addon loaded keeps it.
const tmp = `${to}.${process.pid}.tmp`;
fs.copyFileSync(from, tmp);
fs.renameSync(tmp, to);
console.error(`libshutdown: built ${path.relative(process.cwd(), to) || to} (${profile})`);
