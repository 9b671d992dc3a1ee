'use strict';
// Finds the native addon (the napi-rs convention, see README.md "Install"):
//
//   1. LIBSHUTDOWN_ADDON=/path/x.node, when set: that file and nothing else;
//   2. the prebuilt addon of this platform, the package @libshutdown/<triple> (an
//      optional dependency of `libshutdown`; npm and pnpm install only the one whose
//      os, cpu and libc match);
//   3. ./libshutdown.node beside package.json: built from source, in the repository by
//      `npm run build`, in an installed package by `npx libshutdown-build`.
//
// When none loads, the error names the triple it looked for and how to build from
// source. Kept free of the rest of the package, so that the build script and the tests
// can ask it the host's triple.

const fs = require('node:fs');
const path = require('node:path');

const SCOPE = '@libshutdown';
const BINARY = 'libshutdown';
const ROOT = path.resolve(__dirname, '..');

/** How to build the addon from source: in the repository, or in an installed package. */
function buildHint(root) {
  const how = fs.existsSync(path.join(root, 'Cargo.toml'))
    ? 'run `npm run build` in bindings/node'
    : 'run `npx libshutdown-build` in your project (pnpm: `pnpm exec libshutdown-build`)';
  return `To build it from source (needs cargo and Rust >= 1.88: https://rustup.rs), ${how}.`;
}

// glibc or musl, as napi-rs decides it: the loader of /usr/bin/ldd, then Node's own
// report of the glibc it runs on.
function linuxLibc() {
  try {
    if (fs.readFileSync('/usr/bin/ldd', 'latin1').includes('musl')) return 'musl';
  } catch {
    // no ldd: ask Node
  }
  try {
    const header = process.report.getReport().header;
    return header.glibcVersionRuntime ? 'gnu' : 'musl';
  } catch {
    return 'gnu';
  }
}

/**
 * The platform triple of a host, as the platform packages are named: `linux-x64-gnu`,
 * `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`, ...
 */
function triple({ platform = process.platform, arch = process.arch, libc } = {}) {
  if (platform === 'linux') {
    const abi = libc ?? linuxLibc();
    if (arch === 'arm') return `linux-arm-${abi}eabihf`;
    return `linux-${arch}-${abi}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

// Only "this request is not there": a package that is there but whose file does not
// load (or is missing) is a failure worth reporting.
function isNotFound(e, request) {
  return (
    e !== null &&
    typeof e === 'object' &&
    e.code === 'MODULE_NOT_FOUND' &&
    String(e.message).startsWith(`Cannot find module '${request}'`)
  );
}

/** The triples published as platform packages: the optional dependencies of package.json. */
function prebuiltTriples(root = ROOT) {
  try {
    const { optionalDependencies = {} } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    return Object.keys(optionalDependencies)
      .filter((name) => name.startsWith(`${SCOPE}/`))
      .map((name) => name.slice(SCOPE.length + 1));
  } catch {
    return [];
  }
}

/**
 * Loads the addon. `host` overrides the platform, arch and libc (for the tests);
 * `root` is the package directory that holds a from-source build.
 */
function load({ host, root = ROOT, env = process.env } = {}) {
  if (env.LIBSHUTDOWN_ADDON) {
    const file = env.LIBSHUTDOWN_ADDON;
    try {
      return require(file);
    } catch (e) {
      throw addonError(`cannot load the native addon LIBSHUTDOWN_ADDON=${file} (${e.message})`, e, null);
    }
  }
  const t = triple(host);
  const pkg = `${SCOPE}/${t}`;
  const local = path.join(root, `${BINARY}.node`);
  const failures = [];
  for (const request of [pkg, local]) {
    try {
      return require(request);
    } catch (e) {
      if (!isNotFound(e, request)) failures.push({ request, e });
    }
  }
  // Nothing loaded: either nothing is there, or what is there does not load (a binary
  // for another glibc, a damaged file): say which.
  const prebuilt = prebuiltTriples(root);
  const missing = prebuilt.includes(t)
    ? `${pkg} is not installed: were optional dependencies left out (--omit=optional, --no-optional)? reinstall with them`
    : `libshutdown has no prebuilt addon for ${t} (prebuilt: ${prebuilt.join(', ') || 'none'})`;
  const seen = failures.map(({ request, e }) => `${request} failed to load: ${e.message}`);
  const message =
    `libshutdown: no native addon for this platform, ${t}: looked for the package ${pkg} and for ${local}. ` +
    (seen.length > 0 ? `${seen.join('; ')}. ` : `${missing}. `) +
    buildHint(root);
  throw addonError(message, failures[0]?.e, t);
}

function addonError(message, cause, t) {
  const err = new Error(message);
  err.code = 'ERR_SHUTDOWN_ADDON';
  err.triple = t;
  if (cause !== undefined) err.cause = cause;
  return err;
}

module.exports = { load, triple, prebuiltTriples, SCOPE, BINARY };
