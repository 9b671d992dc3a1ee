#!/usr/bin/env bash
# The signal storm (issue "Hostile callers and signal storms"): each example server is
# started on 127.0.0.1 with an ephemeral port and gets 1,000 SIGTERMs to its PID as fast
# as a python loop of os.kill sends them (stopping early once the process is gone), in
# two scenarios: idle, and with a slow request in flight. Each run must
#   1. end with a normal exit, never a death by signal (SIGPIPE / 141, SIGTERM / 143...);
#   2. print the shutdown report (JSON where the server has a flag for it, else the text
#      report "shutdown report: ..." on stderr);
#   3. exit with the report's exit_code.
# The in-flight request's outcome at the client is recorded, not required (the third
# trigger terminates the process). The work is tests/storm/storm.py's.
#
#   tests/storm/run.sh            `make storm`: STORM_ROUNDS runs (default 5) of each
#                                 server and scenario
#   tests/storm/run.sh --quick    `make storm-quick`: 1 run of each
#
# The servers, built here when missing or stale (cargo and make decide):
#   smol-server, threads-server  target/release/<name> --port 0 --json-report
#                                (JSON report on stdout, text report on stderr)
#   c-server                     target/examples-c/server --port 0 (examples/c, against
#                                target/ffi-prefix; "server: report {json}" on stderr)
#   node-server                  node examples/node/server.js --port 0 --report FILE
#                                (JSON report in FILE, "event: done exit_code=N" on stdout)
# Each also gets --log-requests FILE, to know when the slow request is in flight.
#
# Settings (environment):
#   STORM_ROUNDS         runs of each server and scenario (default 5; --quick: 1)
#   STORM_SERVERS        which of smol-server,threads-server,c-server,node-server
#   STORM_SCENARIOS      which of idle,slow (default both)
#   STORM_SIGNALS        SIGTERMs per run (default 1000)
#   STORM_EXIT_TIMEOUT   seconds a server may take to exit after the storm (default 30)
#   STORM_SLOW_MS        length of the in-flight request (default 5000)
#   STORM_KEEP=1         keep the outputs of failed runs (their directory is printed)
#
# One line per run, a results table, and the closing lines
#   storm: N passed, M failed
#   N passed, M failed
# (a server that could not be built counts as one failure). Exit status 0 only when
# nothing failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="$target/ffi-prefix"
cargo="${CARGO:-cargo}"
export PATH="$HOME/.cargo/bin:$PATH"
export STORM_STARTED
STORM_STARTED="$(date +%s.%N)"

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
if [ "$#" -ne 0 ]; then
  echo "usage: tests/storm/run.sh [--quick]" >&2
  exit 2
fi
if [ "$quick" -eq 1 ]; then rounds="${STORM_ROUNDS:-1}"; else rounds="${STORM_ROUNDS:-5}"; fi
servers=",${STORM_SERVERS:-smol-server,threads-server,c-server,node-server},"
scenarios="${STORM_SCENARIOS:-idle,slow}"
# Bound of the whole python run: per run at most the start, the wait for the slow
# request, the exit and the client's read; generously.
exit_limit="${STORM_EXIT_TIMEOUT:-30}"
exit_limit="${exit_limit%.*}"

say() { printf '== %s\n' "$*"; }

if ! command -v python3 >/dev/null; then
  echo "storm: python3 is needed" >&2
  exit 1
fi

broken=0
specs=()
# shellcheck source=../lib/example_servers.sh
source "$root/tests/lib/example_servers.sh"
build_example_servers

# ----- the storm ------------------------------------------------------------------------
n_servers=$(( ${#specs[@]} / 2 ))
n_scen=$(tr ',' '\n' <<<"$scenarios" | grep -c .)
limit=$(( n_servers * n_scen * rounds * (2 * exit_limit + 70) + 60 ))
say "storm: $rounds round(s) of each server and scenario ($scenarios), limit $limit s"
log="$(mktemp)"
timeout -k 10 "$limit" python3 "$here/storm.py" --rounds "$rounds" --scenarios "$scenarios" \
  --broken "$broken" "${specs[@]}" | tee "$log"
rc="${PIPESTATUS[0]}"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  p="$(grep -c '^ok ' "$log")"
  f="$(grep -c '^FAIL ' "$log")"
  f=$((f + broken + 1))
  echo "HUNG: storm.py killed after $limit s"
  echo "storm: $p passed, $f failed"
  echo "$p passed, $f failed"
  rm -f "$log"
  exit 1
fi
rm -f "$log"
exit "$rc"
