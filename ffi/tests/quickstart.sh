#!/usr/bin/env bash
# The C quickstarts (fenced blocks marked `c quickstart` in README.md and ffi/README.md),
# built as written against the installed library, as real processes. A server (it
# reads PORT) gets a request, then SIGTERM while serving it: the request is answered
# 200 and the process exits 0 with a clean JSON report. The API walk-through gets
# SIGTERM and must exit 0 by itself (its announce window, then the drain).
#   ffi/tests/quickstart.sh PREFIX        (PREFIX: where run.sh installed libshutdown)
# Every wait is bounded; the server is killed by PID if one runs out.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix="$(cd "$1" && pwd)"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

extract() { # FILE N: the Nth `c quickstart` block of FILE
  awk -v want="$2" '/^```c quickstart$/{n++; if (n == want) {on=1; next}} on && /^```$/{exit} on' "$1"
}

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() { # SOURCE-NAME
  local name="$1" src="$work/$1.c" bin="$work/$1" port code=0
  # shellcheck disable=SC2046
  cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror "$src" -o "$bin" \
    $(pkg-config --cflags --libs shutdown) -pthread -Wl,-rpath,"$prefix/lib"
  port="$(free_port)"
  PORT="$port" "$bin" 2>"$work/stderr" &
  pid=$!
  if grep -q 'getenv("PORT")' "$src"; then
    for _ in $(seq 1 200); do
      if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then break; fi
      sleep 0.05
    done
    # The request in flight (connected, sent, accepted), then SIGTERM while it is served.
    timeout 20 python3 - "$port" "$pid" >"$work/body" <<'PY' || { echo "$name: the request in flight failed at the client; the server said:" >&2; cat "$work/stderr" >&2; return 1; }
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), 5)
s.settimeout(15)
s.sendall(b"GET /work HTTP/1.1\r\nHost: quickstart\r\n\r\n")
time.sleep(0.1)  # accepted and being served (the work takes 300 ms)
os.kill(pid, signal.SIGTERM)
data = b""
while chunk := s.recv(4096):
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200"), data
sys.stdout.write(body.decode())
PY
    [ "$(cat "$work/body")" = "done" ] || { echo "$name: unexpected body: $(cat "$work/body")" >&2; return 1; }
  else
    sleep 0.2
    kill -TERM "$pid"
  fi
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then echo "$name: did not exit after SIGTERM" >&2; return 1; fi
  wait "$pid" || code=$?
  pid=""
  [ "$code" -eq 0 ] || { echo "$name: exit code $code" >&2; cat "$work/stderr" >&2; return 1; }
  if grep -q 'shutdown_report_json' "$src"; then
    grep -q '"exit_code":0' "$work/stderr" && grep -q '"forced":null' "$work/stderr" \
      || { echo "$name: no clean report" >&2; cat "$work/stderr" >&2; return 1; }
  fi
  echo "quickstart: $name ok"
}

found=0
for readme in README.md ffi/README.md; do
  n=1
  while extract "$root/$readme" "$n" >"$work/q.c" && [ -s "$work/q.c" ]; do
    name="$(echo "$readme" | tr '/.' '__')-$n"
    mv "$work/q.c" "$work/$name.c"
    run_one "$name"
    found=$((found + 1))
    n=$((n + 1))
  done
done
[ "$found" -ge 2 ] || { echo "quickstart: expected a c quickstart in README.md and in ffi/README.md, found $found" >&2; exit 1; }
