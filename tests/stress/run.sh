#!/usr/bin/env bash
# Repeats the concurrency tests many times, each run under a time limit, so that a
# race that hangs or fails one run in a hundred shows up, is named, and never blocks
# the run (issue: the engine must never hang its host).
#
#   tests/stress/run.sh            `make stress`: the long form
#   tests/stress/run.sh --quick    `make stress-quick` (in `make test`): the short form
#
# What it repeats:
#   - rust:  every test of core/tests/{drivers,driver_role,delivery_order}.rs, each in a
#            process of its own;
#   - c:     ffi/tests/c/test_threads.c, the binary ffi/tests/run.sh builds into
#            target/ffi-ctests/dynamic (built here with `run.sh --build-only` if absent);
#   - node:  the node:test files that drive guards against the addon's driver and hook
#            threads (bindings/node/test/api.test.js, attach.test.js).
#
# Settings (environment):
#   STRESS_ITERATIONS        runs of each Rust test (default 200; --quick: 20)
#   STRESS_C_ITERATIONS      runs of test_threads (default: STRESS_ITERATIONS)
#   STRESS_NODE_ITERATIONS   runs of each Node file (default 20; --quick: 2)
#   STRESS_TIMEOUT           seconds one Rust or C run may take (default 15)
#   STRESS_NODE_TIMEOUT      seconds one Node file may take (default 300)
#   STRESS_NODE_FILES        Node files, relative to bindings/node (default above)
#   STRESS_SUITES            which of rust,c,node to run (default all three)
#
# A run killed by its time limit counts as hung, any other failure as failed. The
# closing lines are
#   P passed, F failed          (F counts the hung runs too: both fail the run)
#   stress: P passed, H hung    (stress: P passed, M failed, H hung when any failed)
# and the exit status is 0 only when nothing failed or hung.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo="${CARGO:-cargo}"
export PATH="$HOME/.cargo/bin:$PATH"

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
if [ "$#" -ne 0 ]; then
  echo "usage: tests/stress/run.sh [--quick]" >&2
  exit 2
fi
if [ "$quick" -eq 1 ]; then
  iterations="${STRESS_ITERATIONS:-20}"
  node_iterations="${STRESS_NODE_ITERATIONS:-2}"
else
  iterations="${STRESS_ITERATIONS:-200}"
  node_iterations="${STRESS_NODE_ITERATIONS:-20}"
fi
c_iterations="${STRESS_C_ITERATIONS:-$iterations}"
limit="${STRESS_TIMEOUT:-15}"
node_limit="${STRESS_NODE_TIMEOUT:-300}"
node_files="${STRESS_NODE_FILES:-test/api.test.js test/attach.test.js}"
suites=",${STRESS_SUITES:-rust,c,node},"

passed=0
failed=0
hung=0
problems=()

say() { printf '== %s\n' "$*"; }

# Counts one setup step that did not work as a failure (it ran no test at all).
broken() {
  failed=$((failed + 1))
  problems+=("$1")
  printf 'FAIL %s\n' "$1"
}

# repeat NAME COUNT LIMIT COMMAND...: runs COMMAND COUNT times, each under `timeout`
# LIMIT seconds, and prints one line for NAME; each hang is named as it happens, and
# the output of the first failure is shown.
repeat() {
  local name="$1" count="$2" secs="$3"; shift 3
  local p=0 f=0 h=0 i rc shown=0
  local log; log="$(mktemp)"
  for ((i = 1; i <= count; i++)); do
    # -k: a run that ignores SIGTERM is killed 5 s later.
    timeout -k 5 "$secs" "$@" >"$log" 2>&1
    rc=$?
    case "$rc" in
      0) p=$((p + 1)) ;;
      124 | 137)
        h=$((h + 1))
        printf 'HUNG %s (run %d of %d, killed after %s s)\n' "$name" "$i" "$count" "$secs"
        ;;
      *)
        f=$((f + 1))
        if [ "$shown" -eq 0 ]; then
          shown=1
          printf 'FAIL %s (run %d of %d, exit %d):\n' "$name" "$i" "$count" "$rc"
          tail -n 40 "$log" | sed 's/^/    /'
        fi
        ;;
    esac
  done
  rm -f "$log"
  passed=$((passed + p))
  failed=$((failed + f))
  hung=$((hung + h))
  if [ $((f + h)) -eq 0 ]; then
    printf 'ok   %s: %d of %d runs passed\n' "$name" "$p" "$count"
  else
    problems+=("$name: $p passed, $f failed, $h hung of $count")
    printf 'BAD  %s: %d passed, %d failed, %d hung of %d runs\n' "$name" "$p" "$f" "$h" "$count"
  fi
}

# ----- rust: the driver and delivery tests ------------------------------------------
# core/tests/drivers.rs (the drivers under each executor), driver_role.rs (who drives,
# hand-over, self-driving) and delivery_order.rs (callbacks ordered across threads).
rust_suite() {
  local suite
  for suite in drivers driver_role delivery_order; do
    rust_file "$suite"
  done
}

rust_file() {
  local suite="$1"
  say "rust: core/tests/$suite.rs, $iterations runs of each test (limit ${limit} s each)"
  # --workspace: the same features, hence the same binary, as `make rust-test` built.
  local json bin
  json="$(cd "$root" && "$cargo" test --workspace --test "$suite" --no-run --message-format=json)" || {
    broken "rust: building core/tests/$suite.rs"
    return
  }
  bin="$(grep "\"name\":\"$suite\"" <<<"$json" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n1)"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    broken "rust: no test binary for core/tests/$suite.rs"
    return
  fi
  local tests=()
  mapfile -t tests < <(timeout 60 "$bin" --list --format terse | sed -n 's/: test$//p')
  if [ "${#tests[@]}" -eq 0 ]; then
    broken "rust: core/tests/$suite.rs lists no test"
    return
  fi
  local t
  for t in "${tests[@]}"; do
    repeat "$suite::$t" "$iterations" "$limit" "$bin" --exact "$t" --test-threads=1
  done
}

# ----- c: test_threads ---------------------------------------------------------------
c_suite() {
  say "c: test_threads, $c_iterations runs (limit ${limit} s each)"
  local bin="$target/ffi-ctests/dynamic/test_threads"
  local src="$root/ffi/tests/c/test_threads.c"
  local lib="$target/ffi-prefix/lib/libshutdown.so"
  if [ ! -x "$bin" ] || [ ! -f "$lib" ] || [ "$src" -nt "$bin" ] || [ "$lib" -nt "$bin" ]; then
    say "c: building the C tests (ffi/tests/run.sh --build-only)"
    if ! bash "$root/ffi/tests/run.sh" --build-only; then
      broken "c: building test_threads (ffi/tests/run.sh --build-only)"
      return
    fi
  fi
  if [ ! -x "$bin" ]; then
    broken "c: no test_threads binary at $bin"
    return
  fi
  repeat "c::test_threads" "$c_iterations" "$limit" "$bin"
}

# ----- node --------------------------------------------------------------------------
node_suite() {
  say "node: $node_files, $node_iterations runs of each (limit ${node_limit} s each)"
  local dir="$root/bindings/node"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    broken "node: node and npm are needed"
    return
  fi
  # The same preparation as bindings/node/scripts/test.sh: dependencies from the lock
  # file when they are older than it, and the addon (cargo rebuilds only if needed).
  local stamp="$dir/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    (cd "$dir" && timeout 900 npm ci --ignore-scripts --no-audit --no-fund) || {
      broken "node: npm ci"
      return
    }
  fi
  (cd "$dir" && node scripts/build.js) || {
    broken "node: building the addon (scripts/build.js)"
    return
  }
  local f
  for f in $node_files; do
    if [ ! -f "$dir/$f" ]; then
      broken "node: $f is missing"
      continue
    fi
    # cd in a subshell: the files load the addon and helpers relative to the package.
    repeat "node::$(basename "$f" .test.js)" "$node_iterations" "$node_limit" \
      bash -c 'cd "$1" && exec node --test --test-timeout=60000 "$2"' _ "$dir" "$f"
  done
}

case "$suites" in *,rust,*) rust_suite ;; esac
case "$suites" in *,c,*) c_suite ;; esac
case "$suites" in *,node,*) node_suite ;; esac

echo
if [ "${#problems[@]}" -gt 0 ]; then
  printf 'not clean: %s\n' "${problems[@]}"
fi
echo "$passed passed, $((failed + hung)) failed"
if [ "$failed" -eq 0 ]; then
  echo "stress: $passed passed, $hung hung"
else
  echo "stress: $passed passed, $failed failed, $hung hung"
fi
[ $((failed + hung)) -eq 0 ]
