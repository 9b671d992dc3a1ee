#!/usr/bin/env bash
# Everything that proves the C ABI, from a clean machine:
#   - installs what is missing (cargo-c, valgrind, pkg-config, a C/C++ compiler,
#     abigail-tools, cmake);
#   - builds libshutdown with cargo-c and installs it into a prefix under target/;
#   - checks the committed header against the code (ffi/tests/check-header.sh);
#   - checks the ABI against the committed baseline (ffi/tests/check-abi.sh, abidiff);
#   - compiles the header as C++17 and runs a small C++ program;
#   - builds every C test (ffi/tests/c/test_*.c, -std=c11 -Wall -Wextra -Werror
#     -pedantic) linked dynamically through pkg-config and statically, and runs it
#     plainly, under valgrind (--leak-check=full --error-exitcode=1), and built with
#     -fsanitize=address,undefined;
#   - replays the libFuzzer corpus of the C ABI (ffi/tests/fuzz/run.sh --replay; a skip
#     line when clang-14 with libFuzzer cannot be installed);
#   - builds the example server (examples/c) against the installed library and runs
#     its end-to-end test (examples/c/test.sh);
#   - builds the binary tarball (ffi/dist.sh) and builds and runs C programs against
#     it, unpacked elsewhere, with plain cc + pkg-config (shared and static) and CMake,
#     with no Rust toolchain on PATH (ffi/tests/dist-test.sh).
# Every program runs under `timeout` (RUN_TIMEOUT, VALGRIND_TIMEOUT, EXAMPLE_TIMEOUT
# seconds): one that hangs fails that check, by name, and the run goes on.
# Idempotent; exits non-zero on any failure; the last line is
#   C tests: N passed, M failed
#
#   ffi/tests/run.sh                the whole suite (`make c-test`)
#   ffi/tests/run.sh --build-only   install the library and build the dynamic test
#                                   programs into target/ffi-ctests/dynamic, run nothing
#                                   (tests/stress/run.sh loops over test_threads)
set -uo pipefail

build_only=0
case "${1:-}" in
  "") ;;
  --build-only) build_only=1 ;;
  *) echo "usage: ffi/tests/run.sh [--build-only]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"      # ffi/tests
ffi="$(cd "$here/.." && pwd)"
root="$(cd "$ffi/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="$target/ffi-prefix"
build="$target/ffi-ctests"
CARGO_C_VERSION='=0.10.24+cargo-0.98.0'
# Seconds one program may run: the C tests take well under a second plainly and a few
# seconds under valgrind; the example's end-to-end test a few seconds.
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
VALGRIND_TIMEOUT="${VALGRIND_TIMEOUT:-600}"
EXAMPLE_TIMEOUT="${EXAMPLE_TIMEOUT:-300}"
export PATH="$HOME/.cargo/bin:$PATH"

passed=0
failed=0
failures=()

note() { printf '== %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf 'FAIL %s\n' "$1"; }

# bounded SECONDS COMMAND...: COMMAND under `timeout` (and SIGKILL 10 s after SIGTERM),
# saying so on stderr when it was stopped, so the failed check's output tells why.
bounded() {
  local secs="$1"; shift
  timeout -k 10 "$secs" "$@"
  local rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "HUNG: killed after $secs s: $*" >&2
  fi
  return "$rc"
}

# Runs a command as one check; shows its output only when it fails.
check() {
  local name="$1"; shift
  local log; log="$(mktemp)"
  if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/    /' "$log"; fi
  rm -f "$log"
}

finish() {
  echo
  if [ "$failed" -ne 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
  fi
  if [ "$build_only" -eq 1 ]; then
    echo "C tests: built into $build/dynamic ($failed failed)"
  else
    echo "C tests: $passed passed, $failed failed"
  fi
  [ "$failed" -eq 0 ]
  exit
}

# ----- tools ----------------------------------------------------------------------
apt_updated=0
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ "$apt_updated" -eq 0 ]; then
    $sudo apt-get update -qq || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

ensure_tools() {
  local missing=()
  [ "$build_only" -eq 1 ] || command -v valgrind >/dev/null || missing+=(valgrind)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v cc >/dev/null || missing+=(gcc)
  command -v c++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v abidiff >/dev/null || missing+=(abigail-tools)
  command -v cmake >/dev/null || missing+=(cmake)
  if [ "${#missing[@]}" -gt 0 ]; then
    note "installing ${missing[*]}"
    apt_install "${missing[@]}" || { echo "could not install ${missing[*]}" >&2; return 1; }
  fi
  if ! command -v cargo-cbuild >/dev/null || ! command -v cargo-cinstall >/dev/null; then
    # Building cargo-c (it embeds cargo) needs OpenSSL's headers.
    if ! pkg-config --exists openssl 2>/dev/null; then
      note "installing libssl-dev (to build cargo-c)"
      apt_install libssl-dev pkg-config || return 1
    fi
    note "installing cargo-c $CARGO_C_VERSION (takes a few minutes)"
    cargo install cargo-c --version "$CARGO_C_VERSION" --locked || return 1
  fi
}

if ! ensure_tools; then
  fail "tools (cargo-c, valgrind, pkg-config, cc, c++)"
  finish
fi

# ----- build and install ------------------------------------------------------------
note "cargo cinstall --release --prefix=$prefix --libdir=lib"
rm -rf "$prefix"
check "cargo cinstall into $prefix" \
  cargo cinstall --release -p libshutdown-ffi --manifest-path "$root/Cargo.toml" \
  --prefix="$prefix" --libdir=lib
if [ ! -f "$prefix/lib/pkgconfig/shutdown.pc" ]; then
  finish
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

if [ "$build_only" -eq 0 ]; then
  # The SONAME is the ABI counter of ffi/Cargo.toml ([package.metadata.capi.library]).
  abi_major="$(sed -n '/^\[package.metadata.capi.library\]/,/^\[/s/^version = "\([0-9]*\)\..*/\1/p' "$ffi/Cargo.toml")"
  check "libshutdown.so has the SONAME libshutdown.so.$abi_major (the ABI counter)" \
    bash -c "[ -n '$abi_major' ] && readelf -d '$prefix/lib/libshutdown.so' | grep -q 'SONAME.*\[libshutdown\.so\.$abi_major\]' \
      && [ -e '$prefix/lib/libshutdown.so.$abi_major' ]"
  check "libshutdown.a, shutdown.h and shutdown.pc are installed" \
    test -f "$prefix/lib/libshutdown.a" -a -f "$prefix/include/shutdown.h" \
    -a "$(pkg-config --modversion shutdown)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
  check "the header is generated from the code (no drift)" "$here/check-header.sh"
  check "the installed header is the committed one" \
    cmp "$prefix/include/shutdown.h" "$ffi/include/shutdown.h"
  check "the ABI is the baseline's, or grew compatibly (ffi/tests/check-abi.sh, abidiff)" \
    "$here/check-abi.sh"
fi

# ----- C++ --------------------------------------------------------------------------
mkdir -p "$build"
CFLAGS_STRICT=(-std=c11 -Wall -Wextra -Werror -pedantic -g)
read -r -a PC_CFLAGS <<<"$(pkg-config --cflags shutdown)"
read -r -a PC_LIBS <<<"$(pkg-config --libs shutdown)"
read -r -a PC_STATIC <<<"$(pkg-config --static --libs shutdown | sed 's/-lshutdown\b/-l:libshutdown.a/')"
RPATH=(-Wl,-rpath,"$prefix/lib")

if [ "$build_only" -eq 0 ]; then
  check "header compiles and links as C++17 (-Wall -Wextra -Werror -pedantic)" \
    bash -c "c++ -std=c++17 -Wall -Wextra -Werror -pedantic $(printf '%q ' "${PC_CFLAGS[@]}") \
      '$here/c/cxx_check.cpp' -o '$build/cxx_check' $(printf '%q ' "${PC_LIBS[@]}" "${RPATH[@]}") \
      && timeout -k 10 $RUN_TIMEOUT '$build/cxx_check'"
fi

# ----- C tests ----------------------------------------------------------------------
# run_program NAME SECONDS COMMAND...: runs one test program under a time limit; adds
# its "N passed, M failed" line to the totals, and counts a crash, a sanitizer report,
# a valgrind error or a hang as one more failure.
run_program() {
  local name="$1" secs="$2"; shift 2
  local log; log="$(mktemp)"
  bounded "$secs" "$@" >"$log" 2>&1
  local rc=$?
  local line; line="$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1)"
  local p=0 f=0
  if [ -n "$line" ]; then
    p="$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")"
    f="$(sed -E 's/.*passed, ([0-9]+) failed/\1/' <<<"$line")"
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  # A crash, a hang, or a program that never said how it went, is one more failure.
  if { [ "$rc" -ne 0 ] || [ -z "$line" ]; } && [ "$f" -eq 0 ]; then
    failed=$((failed + 1))
  fi
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ -z "$line" ]; then
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      failures+=("$name (hung: killed after $secs s)")
      printf 'FAIL %s (hung: killed after %s s)\n' "$name" "$secs"
    else
      failures+=("$name")
      printf 'FAIL %s (exit %s)\n' "$name" "$rc"
    fi
    sed 's/^/    /' "$log" | tail -n 80
  else
    printf 'ok   %s: %s passed\n' "$name" "$p"
  fi
  rm -f "$log"
}

build_one() { # variant source output extra-flags...
  local variant="$1" src="$2" out="$3"; shift 3
  local log; log="$(mktemp)"
  if cc "${CFLAGS_STRICT[@]}" "$src" "$@" -o "$out" >"$log" 2>&1; then
    rm -f "$log"; return 0
  fi
  fail "build $(basename "$src") ($variant)"
  sed 's/^/    /' "$log"; rm -f "$log"; return 1
}

for src in "$here"/c/test_*.c; do
  t="$(basename "$src" .c)"
  note "$t"
  mkdir -p "$build/dynamic" "$build/static" "$build/asan"
  if [ "$build_only" -eq 1 ]; then
    build_one dynamic "$src" "$build/dynamic/$t" "${PC_CFLAGS[@]}" -pthread "${PC_LIBS[@]}" "${RPATH[@]}"
    continue
  fi
  if build_one dynamic "$src" "$build/dynamic/$t" "${PC_CFLAGS[@]}" -pthread "${PC_LIBS[@]}" "${RPATH[@]}"; then
    run_program "$t (dynamic, pkg-config)" "$RUN_TIMEOUT" "$build/dynamic/$t"
    run_program "$t (dynamic, valgrind)" "$VALGRIND_TIMEOUT" valgrind -q --error-exitcode=1 --leak-check=full \
      --errors-for-leak-kinds=definite,possible "$build/dynamic/$t"
  fi
  if build_one static "$src" "$build/static/$t" "${PC_CFLAGS[@]}" -pthread "${PC_STATIC[@]}"; then
    if ldd "$build/static/$t" 2>/dev/null | grep -q libshutdown; then
      fail "$t (static): linked libshutdown.so instead of libshutdown.a"
    else
      run_program "$t (static)" "$RUN_TIMEOUT" "$build/static/$t"
    fi
  fi
  if build_one asan "$src" "$build/asan/$t" -fsanitize=address,undefined -fno-sanitize-recover=all \
      -fno-omit-frame-pointer "${PC_CFLAGS[@]}" -pthread "${PC_STATIC[@]}"; then
    run_program "$t (asan+ubsan)" "$RUN_TIMEOUT" env ASAN_OPTIONS=detect_leaks=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$build/asan/$t"
  fi
done

# ----- the example server -----------------------------------------------------------
if [ "$build_only" -eq 1 ]; then
  finish
fi

# ----- the fuzz corpus ----------------------------------------------------------------
# The libFuzzer harness (ffi/tests/fuzz) over its committed corpus, -runs=0 per file.
# Skipped (counted neither passed nor failed) only when clang-14 with libFuzzer cannot be
# installed (ffi/tests/fuzz/run.sh exits 3).
note "fuzz replay"
fuzz_log="$(mktemp)"
bounded "$EXAMPLE_TIMEOUT" "$here/fuzz/run.sh" --replay >"$fuzz_log" 2>&1
fuzz_rc=$?
if [ "$fuzz_rc" -eq 3 ]; then
  printf 'skip the fuzz corpus replay (ffi/tests/fuzz/run.sh --replay): clang-14 with libFuzzer cannot be installed\n'
elif [ "$fuzz_rc" -eq 0 ]; then
  pass "the fuzz corpus replays clean (ffi/tests/fuzz/run.sh --replay: $(tail -n1 "$fuzz_log" | sed 's/^fuzz replay: //'))"
else
  fail "the fuzz corpus replays clean (ffi/tests/fuzz/run.sh --replay)"
  sed 's/^/    /' "$fuzz_log" | tail -n 40
fi
rm -f "$fuzz_log"
if [ -x "$root/examples/c/test.sh" ]; then
  note "examples/c"
  check "examples/c: HTTP server drains on SIGTERM (examples/c/test.sh)" \
    bounded "$EXAMPLE_TIMEOUT" "$root/examples/c/test.sh" "$prefix"
else
  fail "examples/c/test.sh is missing"
fi

# ----- the quickstarts ---------------------------------------------------------------
note "quickstarts"
check "the C quickstarts of README.md and ffi/README.md build and drain on SIGTERM (ffi/tests/quickstart.sh)" \
  bounded "$EXAMPLE_TIMEOUT" "$here/quickstart.sh" "$prefix"

# ----- the binary tarball -----------------------------------------------------------
note "dist"
check "the tarball (ffi/dist.sh) builds and runs C and CMake programs, no Rust on PATH (ffi/tests/dist-test.sh)" \
  "$here/dist-test.sh"

finish
