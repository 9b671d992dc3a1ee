#!/usr/bin/env bash
# Builds the example server against an installed libshutdown (pkg-config) and runs
# its end-to-end test (e2e.py).
#   examples/c/test.sh [PREFIX]     PREFIX: where `cargo cinstall` put libshutdown
#                                   (default: target/ffi-prefix, installed if missing)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="${1:-$target/ffi-prefix}"
if [ ! -f "$prefix/lib/pkgconfig/shutdown.pc" ]; then
  (cd "$root" && cargo cinstall --release -p libshutdown-ffi --prefix="$prefix" --libdir=lib)
fi
if ! command -v python3 >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3
fi
out="$target/examples-c"
# The build line is the one a user types: cc ... $(pkg-config --cflags --libs shutdown)
make -s -C "$here" PREFIX="$prefix" TARGET="$target" "$out/server"
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" python3 "$here/e2e.py" "$out/server"
