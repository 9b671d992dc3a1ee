'use strict';
// How the package finds its native part (lib/native.js) and the layout of the platform
// packages (npm/<triple>/). The packed packages themselves are tested, installed with
// npm and pnpm and without cargo, by scripts/package-test.sh.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const native = require('../lib/native.js');

const here = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8'));
const noEnv = {};

test('triples are named like the platform packages', () => {
  assert.equal(native.triple({ platform: 'linux', arch: 'x64', libc: 'gnu' }), 'linux-x64-gnu');
  assert.equal(native.triple({ platform: 'linux', arch: 'arm64', libc: 'musl' }), 'linux-arm64-musl');
  assert.equal(native.triple({ platform: 'darwin', arch: 'arm64' }), 'darwin-arm64');
  assert.equal(native.triple({ platform: 'win32', arch: 'x64' }), 'win32-x64-msvc');
  if (process.platform === 'linux') assert.match(native.triple(), /^linux-[a-z0-9]+-(gnu|musl)$/);
});

test('no addon for the platform: the error names the triple and how to build from source', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-native-'));
  try {
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ optionalDependencies: pkg.optionalDependencies }));
    const host = { platform: 'linux', arch: 'arm64', libc: 'musl' };
    assert.throws(
      () => native.load({ host, root, env: noEnv }),
      (e) => {
        assert.equal(e.code, 'ERR_SHUTDOWN_ADDON');
        assert.equal(e.triple, 'linux-arm64-musl');
        assert.match(e.message, /linux-arm64-musl/);
        assert.match(e.message, /@libshutdown\/linux-arm64-musl/);
        assert.match(e.message, /no prebuilt addon for linux-arm64-musl \(prebuilt: linux-x64-gnu\)/);
        assert.match(e.message, /npx libshutdown-build/);
        assert.match(e.message, /Rust >= 1\.88/);
        return true;
      },
    );
    // A prebuilt triple whose package is missing: optional dependencies left out.
    assert.throws(
      () => native.load({ host: { platform: 'linux', arch: 'x64', libc: 'gnu' }, root, env: noEnv }),
      /linux-x64-gnu is not installed: were optional dependencies left out/,
    );
    // A file that is there but does not load is reported as such.
    fs.writeFileSync(path.join(root, 'libshutdown.node'), 'not a shared library');
    assert.throws(() => native.load({ host, root, env: noEnv }), /libshutdown\.node failed to load: /);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a build from source beside package.json is used when no platform package is there', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'libshutdown-native-'));
  try {
    fs.copyFileSync(path.join(here, 'libshutdown.node'), path.join(root, 'libshutdown.node'));
    const addon = native.load({ host: { platform: 'linux', arch: 'arm64', libc: 'musl' }, root, env: noEnv });
    assert.equal(typeof addon.NativeShutdown, 'function');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('LIBSHUTDOWN_ADDON names the file to load, and only that file', () => {
  const addon = native.load({ env: { LIBSHUTDOWN_ADDON: path.join(here, 'libshutdown.node') } });
  assert.equal(typeof addon.NativeShutdown, 'function');
  assert.throws(
    () => native.load({ env: { LIBSHUTDOWN_ADDON: path.join(here, 'nothing-here.node') } }),
    (e) => e.code === 'ERR_SHUTDOWN_ADDON' && /LIBSHUTDOWN_ADDON=.*nothing-here\.node/.test(e.message),
  );
});

test('the platform packages: one per triple, same version, os/cpu/libc of the triple', () => {
  const dirs = fs.readdirSync(path.join(here, 'npm')).sort();
  assert.deepEqual(dirs, ['darwin-arm64', 'darwin-x64', 'linux-arm64-gnu', 'linux-x64-gnu', 'linux-x64-musl', 'win32-x64-msvc']);
  for (const t of dirs) {
    const p = JSON.parse(fs.readFileSync(path.join(here, 'npm', t, 'package.json'), 'utf8'));
    const [platform, arch, abi] = t.split('-');
    assert.equal(p.name, `@libshutdown/${t}`);
    assert.equal(p.version, pkg.version, `${t}: the version of libshutdown`);
    assert.deepEqual(p.os, [platform]);
    assert.deepEqual(p.cpu, [arch]);
    if (platform === 'linux') assert.deepEqual(p.libc, [abi === 'gnu' ? 'glibc' : abi]);
    else assert.equal(p.libc, undefined);
    assert.equal(native.triple({ platform, arch, libc: abi }), t);
    assert.equal(p.main, `libshutdown.${t}.node`);
    assert.deepEqual(p.files, [p.main]);
    assert.equal(p.scripts, undefined, `${t}: no scripts`);
  }
  // Every optional dependency is one of them, at exactly this version.
  const optional = Object.entries(pkg.optionalDependencies);
  assert.ok(optional.length > 0);
  for (const [name, version] of optional) {
    assert.ok(dirs.includes(name.replace(/^@libshutdown\//, '')), name);
    assert.equal(version, pkg.version, name);
  }
});

test('the published package runs no install script', () => {
  for (const s of ['preinstall', 'install', 'postinstall']) assert.equal(pkg.scripts[s], undefined, s);
  assert.equal(pkg.bin['libshutdown-build'], 'scripts/build.js');
  assert.ok(fs.readFileSync(path.join(here, 'scripts/build.js'), 'utf8').startsWith('#!/usr/bin/env node\n'));
});
