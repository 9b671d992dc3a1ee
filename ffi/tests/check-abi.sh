#!/usr/bin/env bash
# Compares the ABI of libshutdown.so with the committed baseline ffi/abi/libshutdown.abi
# (libabigail's abidw/abidiff, Debian package abigail-tools) and fails on a change that
# breaks binaries linked against the baseline: a function removed, or an existing
# function or public type changed (parameters, return type, the layout of
# shutdown_hook_report_t, enumerator values, callback signatures). New functions pass.
#   ffi/tests/check-abi.sh            check
#   ffi/tests/check-abi.sh --update   record the current ABI as the baseline (make abi-baseline)
#
# abidiff's exit status is a bit set: 1 error, 2 usage error, 4 the ABI changed, 8 the
# change is incompatible. Bit 8 is only set for removed symbols and a SONAME change;
# a changed parameter type is only bit 4, since abidiff cannot know how the library's
# users rely on it. For a C ABI any change to an existing function or type breaks
# someone, so this fails on bit 8, and on bit 4 when it remains with added functions
# left out (--no-added-syms), leaving additions as the one compatible change.
#
# An incompatible change needs a new SONAME: bump the major number of
# [package.metadata.capi.library] version in ffi/Cargo.toml, then record the new ABI
# with `make abi-baseline` and commit the two together. Until the baseline is
# recorded this keeps failing (saying so), since a baseline of another SONAME checks
# nothing.
#
# The library is built in the `abi` profile (release plus debug info for this crate,
# see Cargo.toml): abidiff needs DWARF to see types, and the shipped build has none.
# The opaque handles' insides are not ABI: ffi/abi/opaque-handles.suppr.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"   # ffi/
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
baseline="$here/abi/libshutdown.abi"
suppr="$here/abi/opaque-handles.suppr"
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v abidiff >/dev/null || ! command -v abidw >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "check-abi: installing abigail-tools" >&2
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq abigail-tools
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
so="$target_dir/$host/abi/libshutdown.so"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cd "$root"
if ! cargo cbuild --profile abi -p libshutdown-ffi >"$log" 2>&1; then
  cat "$log" >&2
  echo "check-abi: cargo cbuild --profile abi failed" >&2
  exit 1
fi
soname() { readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'; }
new_soname="$(soname "$so")"

if [ "${1:-}" = "--update" ]; then
  # No paths of this machine in the file: it is compared on others.
  abidw --no-corpus-path --no-comp-dir-path --short-locs --out-file "$baseline" "$so"
  echo "check-abi: recorded the ABI of $new_soname in ffi/abi/libshutdown.abi"
  exit 0
fi

[ -f "$baseline" ] || { echo "check-abi: no baseline; run make abi-baseline" >&2; exit 1; }
old_soname="$(sed -n "1s/.*soname='\([^']*\)'.*/\1/p" "$baseline")"
set +e
abidiff --fail-no-debug-info --suppressions "$suppr" "$baseline" "$so" >"$log" 2>&1
full=$?
abidiff --fail-no-debug-info --suppressions "$suppr" --no-added-syms "$baseline" "$so" >/dev/null 2>&1
existing=$?
set -e
cat "$log"
if [ $((full & 3)) -ne 0 ] || [ $((existing & 3)) -ne 0 ]; then
  echo "check-abi: abidiff could not compare (exit $full)" >&2
  exit 1
fi
if [ $((full & 8)) -eq 0 ] && [ $((existing & 4)) -eq 0 ]; then
  if [ $((full & 4)) -ne 0 ]; then
    echo "check-abi: compatible: functions were added, nothing existing changed ($new_soname)"
  else
    echo "check-abi: the ABI of $new_soname is the baseline's"
  fi
  exit 0
fi
if [ "$old_soname" != "$new_soname" ]; then
  echo "check-abi: the SONAME moved ($old_soname -> $new_soname): an incompatible change is expected;" >&2
  echo "check-abi: record the new ABI with \`make abi-baseline\` (ffi/tests/check-abi.sh --update)" >&2
  echo "check-abi: and commit ffi/abi/libshutdown.abi with the bump." >&2
else
  echo "check-abi: INCOMPATIBLE ABI change without a SONAME bump (still $new_soname; abidiff exit $full)." >&2
  echo "check-abi: undo it, or bump the major number of [package.metadata.capi.library] version" >&2
  echo "check-abi: in ffi/Cargo.toml, then record the new ABI with \`make abi-baseline\`." >&2
fi
exit 1
