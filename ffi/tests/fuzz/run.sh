#!/usr/bin/env bash
# The libFuzzer harness of the C ABI (ffi/tests/fuzz/fuzz_api.c, README.md beside it).
#
#   ffi/tests/fuzz/run.sh --replay              every file of ffi/tests/fuzz/corpus/ once
#                                               (-runs=0); last line
#                                               "fuzz replay: N passed, M failed"
#   ffi/tests/fuzz/run.sh --campaign [SECONDS]  a timed campaign (default 300 s) from the
#                                               corpus into a scratch dir (FUZZ_SCRATCH,
#                                               default target/fuzz/scratch); crashes go to
#                                               target/fuzz/findings
#   ffi/tests/fuzz/run.sh --build-only          build target/fuzz/fuzz_api, run nothing
#
# Installs clang-14 and libclang-rt-14-dev (libFuzzer) with apt when clang-14 is missing
# (exit 3 when it cannot: ffi/tests/run.sh then prints a skip line). Builds against the
# static library and the installed header in target/ffi-prefix (built by
# `ffi/tests/run.sh --build-only` when absent).
set -uo pipefail

mode="${1:-}"
secs="${2:-300}"
case "$mode" in
  --replay|--build-only) ;;
  --campaign) [[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: run.sh --campaign [SECONDS]" >&2; exit 2; } ;;
  *) echo "usage: ffi/tests/fuzz/run.sh --replay | --campaign [SECONDS] | --build-only" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"        # ffi/tests/fuzz
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="$target/ffi-prefix"
out="$target/fuzz"
corpus="$here/corpus"
REPLAY_TIMEOUT="${REPLAY_TIMEOUT:-60}"       # seconds per corpus file
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}"
CLANG="${CLANG:-clang-14}"

# ----- clang --------------------------------------------------------------------------
have_fuzzer() {
  command -v "$CLANG" >/dev/null || return 1
  local d; d="$(mktemp -d)"
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' >"$d/t.c"
  timeout 120 "$CLANG" -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" >/dev/null 2>&1
  local rc=$?
  rm -rf "$d"
  return "$rc"
}

if ! have_fuzzer; then
  echo "== installing clang-14 and libclang-rt-14-dev (libFuzzer)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! { timeout 600 $sudo apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive timeout 1200 $sudo apt-get install -y -qq clang-14 libclang-rt-14-dev; } ||
     ! have_fuzzer; then
    echo "fuzz: clang-14 with libFuzzer cannot be installed" >&2
    exit 3
  fi
fi

# ----- build --------------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
# Also when the installed header is older than the committed one: a prefix left by an
# earlier build would compile the harness against another API.
if [ ! -f "$prefix/lib/libshutdown.a" ] || [ ! -f "$prefix/lib/pkgconfig/shutdown.pc" ] ||
   ! cmp -s "$prefix/include/shutdown.h" "$root/ffi/include/shutdown.h"; then
  echo "== building the library (ffi/tests/run.sh --build-only)"
  timeout "$BUILD_TIMEOUT" bash "$root/ffi/tests/run.sh" --build-only >/dev/null || {
    echo "fuzz: the library did not build" >&2; exit 1; }
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
read -r -a PC_CFLAGS <<<"$(pkg-config --cflags shutdown)"
# The static library, not the .so beside it.
read -r -a PC_STATIC <<<"$(pkg-config --static --libs shutdown | sed 's/-lshutdown\b/-l:libshutdown.a/')"
mkdir -p "$out"
bin="$out/fuzz_api"
if [ ! -x "$bin" ] || [ "$here/fuzz_api.c" -nt "$bin" ] || [ "$prefix/lib/libshutdown.a" -nt "$bin" ] ||
   [ "$prefix/include/shutdown.h" -nt "$bin" ]; then
  echo "== building $bin"
  timeout 300 "$CLANG" -g -O1 -std=c11 -Wall -Wextra -Werror -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "${PC_CFLAGS[@]}" "$here/fuzz_api.c" -o "$bin" "${PC_STATIC[@]}" || {
    echo "fuzz: the harness did not build" >&2; exit 1; }
fi
if ldd "$bin" 2>/dev/null | grep -q libshutdown; then
  echo "fuzz: $bin linked libshutdown.so instead of libshutdown.a" >&2
  exit 1
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

case "$mode" in
  --build-only)
    echo "fuzz: built $bin"
    ;;
  --replay)
    passed=0; failed=0
    for f in "$corpus"/*; do
      [ -f "$f" ] || continue
      log="$(mktemp)"
      if timeout -k 10 "$REPLAY_TIMEOUT" "$bin" -runs=0 -timeout=30 "$f" >"$log" 2>&1; then
        passed=$((passed + 1))
      else
        failed=$((failed + 1))
        echo "FAIL $(basename "$f")"
        grep -E 'fuzz_api:|ERROR|SUMMARY|runtime error' "$log" | head -n 20 | sed 's/^/    /'
      fi
      rm -f "$log"
    done
    echo "fuzz replay: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    ;;
  --campaign)
    scratch="${FUZZ_SCRATCH:-$out/scratch}"
    findings="$out/findings"
    mkdir -p "$scratch" "$findings"
    echo "== campaign: $secs s, new inputs into $scratch, crashes into $findings"
    log="$out/campaign.log"
    timeout -k 30 $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$findings/" "$scratch" "$corpus" 2>&1 | tee "$log" |
      grep -E '^#[0-9]+ +(INITED|DONE|pulse)|fuzz_api:|ERROR|SUMMARY|stat::|Test unit written'
    rc="${PIPESTATUS[0]}"
    grep -E '^#[0-9]+' "$log" | tail -n 1
    if [ "$rc" -ne 0 ]; then
      echo "fuzz campaign: CRASH (exit $rc); the input is in $findings:"
      ls -t "$findings" | head -n 5
      exit 1
    fi
    echo "fuzz campaign: no crash"
    ;;
esac
