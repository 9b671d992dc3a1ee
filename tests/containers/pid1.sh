#!/usr/bin/env bash
# The example servers as PID 1 of a container (`make containers`). A container's
# first process is PID 1 of its own PID namespace, and the kernel gives PID 1 no
# default signal actions: a SIGTERM it has no handler for is dropped, so a server that
# relied on SIGTERM's default action would ignore `docker stop` and be SIGKILLed at the
# end of its timeout (10 s by default). For each example server this starts it with
# `unshare --pid --fork --mount-proc` (as PID 1 of a new PID namespace; 127.0.0.1 is
# shared), waits until it listens, starts a 1 s request, sends SIGTERM to its PID as the
# parent namespace sees it, and checks that the request gets its 200 and the server
# exits 0 within 5 s (its drain budget is 20 s). The work is tests/containers/pid1.py's.
#
# Needs root (or a user namespace allowing unshare --pid): without it the whole check is
# skipped with a line that says so, and exits 0.
#
# The servers, built here when missing or stale (as tests/storm/run.sh does):
#   smol-server, threads-server  target/release/<name> --port 0
#   c-server                     target/examples-c/server --port 0 (against target/ffi-prefix)
#   node-server                  node examples/node/server.js --port 0
# Settings: PID1_SERVERS (a comma list of the names above; default all four).
# Last lines: "pid1: N passed, M failed" and "N passed, M failed".
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
prefix="$target/ffi-prefix"
cargo="${CARGO:-cargo}"
export PATH="$HOME/.cargo/bin:$PATH"
servers=",${PID1_SERVERS:-smol-server,threads-server,c-server,node-server},"

say() { printf '== %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "pid1: SKIPPED: not root (id -u is $(id -u)); unshare --pid needs root"
  exit 0
fi
if ! timeout 10 unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo "pid1: SKIPPED: unshare --pid --fork --mount-proc is not permitted here"
  exit 0
fi
if ! command -v python3 >/dev/null; then
  echo "pid1: python3 is needed" >&2
  exit 1
fi

broken=0
specs=()
# shellcheck source=../lib/example_servers.sh
source "$root/tests/lib/example_servers.sh"
build_example_servers

n=$(( ${#specs[@]} / 2 ))
limit=$(( n * 60 + 30 ))
say "pid1: $n server(s) as PID 1 of a new PID namespace, limit $limit s"
timeout -k 10 "$limit" python3 "$here/pid1.py" --broken "$broken" "${specs[@]}"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "HUNG: pid1.py killed after $limit s"
  echo "pid1: 0 passed, $((n + broken)) failed"
  echo "0 passed, $((n + broken)) failed"
  exit 1
fi
exit "$rc"
