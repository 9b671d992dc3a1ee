#!/usr/bin/env bash
# End-to-end proof of zero dropped requests during rolling restarts behind HAProxy
# and nginx, under wrk load. See tests/e2e/README.md.
#
#   bash tests/e2e/run.sh --quick    # CI (`make test`): 1 round, a few minutes
#   bash tests/e2e/run.sh --full     # `make e2e`: 2 rounds, more connections
#
# Extra arguments go to tests/e2e/e2e.py (e.g. --arms rust,naive --topologies haproxy).
# Installs haproxy, nginx and wrk when missing (Debian/Ubuntu, as root or with sudo),
# builds the servers under test that can be built, and writes target/e2e/summary.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

# The harness (e2e.py) starts every process in its own session and kills them by PID
# on exit; this trap covers the harness itself if this script is interrupted.
harness_pid=""
cleanup() {
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null || true
    wait "$harness_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '[e2e] %s\n' "$*"; }

# ----- tools -------------------------------------------------------------------------
missing=()
for tool in haproxy nginx wrk python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=()
  for t in "${missing[@]}"; do
    case "$t" in
      python3) pkgs+=(python3) ;;
      *) pkgs+=("$t") ;;
    esac
  done
  say "installing ${pkgs[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  # The packages may start system services; the harness never uses them.
  for svc in haproxy nginx; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $sudo systemctl stop "$svc" || true
    fi
  done
fi

# ----- servers under test -------------------------------------------------------------
cargo="${CARGO:-cargo}"
say "building the Rust server (smol-server)"
if ! "$cargo" build --release -q -p libshutdown-examples --bin smol-server; then
  say "the Rust server did not build: its arm will be reported as skipped"
fi

# C: examples/c/server.c against libshutdown installed by cargo-c into target/ffi-prefix
# (ffi/tests/run.sh, which `make test` runs first, installs it; so does
# examples/c/test.sh). Built here into target/examples-c/server like test.sh does.
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="$target/ffi-prefix"
if [ -f examples/c/server.c ] && [ -z "${E2E_NO_BUILD:-}" ]; then
  # Installed every time (cargo-c rebuilds only what changed): a prefix left by an
  # earlier build holds an older header, and the C arm would be compiled against it.
  if "$cargo" cinstall --version >/dev/null 2>&1; then
    say "installing libshutdown into $prefix (cargo cinstall)"
    mkdir -p "$target/e2e"
    "$cargo" cinstall --release -p libshutdown-ffi --prefix="$prefix" --libdir=lib \
      >"$target/e2e/cinstall.log" 2>&1 \
      || say "cargo cinstall failed (see $target/e2e/cinstall.log)"
  fi
  if [ -f "$prefix/lib/pkgconfig/shutdown.pc" ] && command -v cc >/dev/null 2>&1; then
    say "building the C server (examples/c/server.c)"
    mkdir -p "$target/examples-c"
    # shellcheck disable=SC2046
    PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cc -std=c11 -O2 examples/c/server.c \
      -o "$target/examples-c/server" $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs shutdown) \
      || say "the C server did not build: its arm will be reported as skipped"
  else
    say "libshutdown is not installed in $prefix (run ffi/tests/run.sh): the C arm may be skipped"
  fi
fi

# Node: the N-API addon.
if [ -f examples/node/server.js ] && [ ! -f bindings/node/libshutdown.node ] && command -v node >/dev/null 2>&1; then
  say "building the Node addon (node bindings/node/scripts/build.js)"
  node bindings/node/scripts/build.js || say "the Node addon did not build: its arm will be reported as skipped"
fi

# ----- run -------------------------------------------------------------------------------
python3 "$here/e2e.py" "$@" &
harness_pid=$!
set +e
wait "$harness_pid"
status=$?
set -e
harness_pid=""
exit "$status"
