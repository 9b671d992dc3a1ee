#!/usr/bin/env bash
# Regenerates include/shutdown.h with cargo-c (which runs cbindgen with
# ffi/cbindgen.toml) and fails when the committed ffi/include/shutdown.h differs.
#   ffi/tests/check-header.sh            check
#   ffi/tests/check-header.sh --update   rewrite the committed header
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"   # ffi/
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
host="$(rustc -vV | sed -n 's/^host: //p')"
generated="$target_dir/$host/release/include/shutdown.h"
cd "$root"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# cargo-c writes the header only when it rebuilds the library: force that.
rm -f "$generated"
stamp="$(mktemp)"
touch -r "$here/src/lib.rs" "$stamp"
touch "$here/src/lib.rs"
if ! cargo cbuild --release -p libshutdown-ffi >"$log" 2>&1; then
  cat "$log" >&2
  echo "check-header: cargo cbuild failed" >&2
  exit 1
fi
touch -r "$stamp" "$here/src/lib.rs"   # the source's own time back (outputs stay newer)
rm -f "$stamp"
[ -f "$generated" ] || { echo "check-header: no generated header at $generated" >&2; exit 1; }
if [ "${1:-}" = "--update" ]; then
  cp "$generated" "$here/include/shutdown.h"
  echo "check-header: updated ffi/include/shutdown.h"
  exit 0
fi
if ! diff -u "$here/include/shutdown.h" "$generated"; then
  echo "check-header: ffi/include/shutdown.h drifted from the code; run ffi/tests/check-header.sh --update" >&2
  exit 1
fi
echo "check-header: ffi/include/shutdown.h matches the code"
