#!/usr/bin/env bash
# Proves the binary tarball (ffi/dist.sh) works wherever it is unpacked, on a machine
# with no Rust: unpacks it into a fresh temporary directory, takes cargo and rustc off
# PATH, and there builds and runs examples/c/cmake/main.c (an engine from a builder, a
# guard, a trigger, the drain deadline, the report's exit code)
#   - with plain cc and `pkg-config --cflags --libs shutdown` (libshutdown.so.N),
#   - with plain cc and `pkg-config --static` (libshutdown.a),
#   - with CMake (examples/c/cmake: pkg_check_modules(... IMPORTED_TARGET shutdown)),
# then moves the tree and checks that shutdown.pc follows it.
#   ffi/tests/dist-test.sh [TARBALL]     (default: build one with ffi/dist.sh)
# Installs cmake, pkg-config and a compiler with apt when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"   # ffi/tests
root="$(cd "$here/../.." && pwd)"
example="$root/examples/c/cmake"

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v cc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "dist-test: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

tarball="${1:-}"
if [ -z "$tarball" ]; then
  tarball="$(bash "$root/ffi/dist.sh" | tail -n1)"
fi
[ -f "$tarball" ] || { echo "dist-test: no tarball $tarball" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/opt"
tar -xzf "$tarball" -C "$tmp/opt"
prefix="$(find "$tmp/opt" -mindepth 1 -maxdepth 1 -type d)"
echo "dist-test: unpacked $(basename "$tarball") into $prefix"

# No Rust from here on: every PATH entry holding cargo, rustc or rustup is dropped.
clean_path=""
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  if [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || [ -x "$d/rustup" ]; then continue; fi
  clean_path="${clean_path:+$clean_path:}$d"
done
export PATH="$clean_path"
unset CARGO_HOME RUSTUP_HOME CARGO_TARGET_DIR RUSTFLAGS LD_LIBRARY_PATH
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
  echo "dist-test: cargo or rustc is still on PATH ($PATH)" >&2
  exit 1
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

failed=0
step() { # name command...
  local name="$1"; shift
  if "$@"; then echo "dist-test: ok   $name"; else echo "dist-test: FAIL $name" >&2; failed=1; fi
}

same_dir() { [ "$(cd "$1" && pwd -P)" = "$(cd "$2" && pwd -P)" ]; }
step "shutdown.pc resolves its prefix to where it was unpacked" \
  same_dir "$(pkg-config --variable=prefix shutdown)" "$prefix"

shared() {
  # shellcheck disable=SC2046 # pkg-config's output is a list of flags
  cc -std=c11 -Wall -Wextra -Werror -pedantic "$example/main.c" -o "$tmp/shared" \
    $(pkg-config --cflags --libs shutdown) || return 1
  # A user's way to run it: the library's directory on the loader's path.
  LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/shared" | grep -q "libshutdown\.so\.[0-9]* => $prefix/lib/" \
    || { echo "not linked to the unpacked libshutdown.so" >&2; return 1; }
  LD_LIBRARY_PATH="$prefix/lib" "$tmp/shared"
}
step "cc + pkg-config, shared: builds and runs" shared

static() {
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags shutdown) \
    "$example/main.c" -o "$tmp/static" \
    $(pkg-config --static --libs shutdown | sed 's/-lshutdown\b/-l:libshutdown.a/') || return 1
  if ldd "$tmp/static" | grep -q libshutdown; then
    echo "linked libshutdown.so instead of libshutdown.a" >&2
    return 1
  fi
  "$tmp/static"
}
step "cc + pkg-config --static (libshutdown.a): builds and runs" static

with_cmake() {
  cmake -S "$example" -B "$tmp/cmake-build" >"$tmp/cmake.log" 2>&1 \
    && cmake --build "$tmp/cmake-build" >>"$tmp/cmake.log" 2>&1 \
    || { cat "$tmp/cmake.log" >&2; return 1; }
  # CMake records the library's directory in the build tree's RPATH.
  ldd "$tmp/cmake-build/consumer" | grep -q "libshutdown\.so\.[0-9]* => $prefix/lib/" \
    || { echo "not linked to the unpacked libshutdown.so:" >&2; ldd "$tmp/cmake-build/consumer" >&2;
         grep -i 'rpath\|shutdown' "$tmp/cmake.log" >&2; return 1; }
  "$tmp/cmake-build/consumer"
}
step "CMake (pkg_check_modules IMPORTED_TARGET): builds and runs" with_cmake

moved() {
  mv "$tmp/opt" "$tmp/elsewhere"
  local p inc
  p="$tmp/elsewhere/$(basename "$prefix")"
  inc="$(PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config --variable=includedir shutdown)"
  same_dir "$inc" "$p/include" && [ -f "$inc/shutdown.h" ]
}
step "moved elsewhere, shutdown.pc follows the tree" moved

[ "$failed" -eq 0 ]
