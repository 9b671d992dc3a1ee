#!/usr/bin/env bash
# The Node example server under a real PM2 (`make platforms`): examples/node/ecosystem.config.js
# (cluster mode, 2 instances, wait_ready), `pm2 reload` twice under bounded load from
# autocannon (127.0.0.1 only), then the counts: requests, failures (non-2xx, errors,
# timeouts) at the client, and the exit code of every old worker (PM2's own log line
# "exited with code [N]", and the server's report line "event: done exit_code=N").
#
# Passes with 0 failed requests and every old worker exiting 0. pm2 and autocannon come
# from npm into a temp dir (never a dependency of the published package), the daemon runs
# with a private PM2_HOME there (nothing in ~/.pm2), and is killed at the end, pass or fail.
#
#   PM2_VERSION (7.0.4), AUTOCANNON_VERSION (9.0.0), PM2_LOAD_SECONDS (40; both reloads must end 2 s before it does),
#   PM2_CONNECTIONS (fast route, 16), PM2_SLOW_CONNECTIONS (/slow?ms=300, 8),
#   PM2_TOOLS_DIR (reuse an install), PM2_KEEP=1 (keep the temp dir),
#   PM2_ECOSYSTEM (another ecosystem file with an app named $PM2_APP_NAME, signal mode),
#   PM2_STOP=signal (default) | message:
#     signal: the ecosystem file as it is (wait_ready): a reload starts the new worker,
#       waits for its 'ready', then stops the old one with SIGINT;
#     message: the same file with shutdown_with_message: true (a derived file in the
#       temp dir): `pm2 stop` sends the IPC message 'shutdown' instead of a signal (as
#       PM2 does on Windows). A reload still stops its old worker with SIGINT: PM2 7.0.4
#       sends the message only to a numeric pm_id, and a reload parks the old worker as
#       _old_<id> first (lib/God/Methods.js killProcess, lib/God/Reload.js hardReload).
# Both end with `pm2 stop`, whose two workers must exit 0, triggered by the mode's stop:
# the reasons of the 6 drains are 4 SIGINT (reloads) and 2 of the mode.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PM2_VERSION="${PM2_VERSION:-7.0.4}"
AUTOCANNON_VERSION="${AUTOCANNON_VERSION:-9.0.0}"
SECONDS_LOAD="${PM2_LOAD_SECONDS:-40}"
CONNS="${PM2_CONNECTIONS:-16}"
SLOW_CONNS="${PM2_SLOW_CONNECTIONS:-8}"
APP=libshutdown-pm2-test

for t in node npm curl; do
  command -v "$t" >/dev/null || { echo "pm2: $t is needed" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/libshutdown-pm2.XXXXXX")"
export PM2_HOME="$WORK/pm2home"
TOOLS="${PM2_TOOLS_DIR:-$WORK/tools}"
PM2="$TOOLS/node_modules/.bin/pm2"
AC="$TOOLS/node_modules/.bin/autocannon"
load_pids=()

cleanup() {
  local rc=$?
  for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -x "$PM2" ] && [ -d "$PM2_HOME" ]; then
    "$PM2" kill >/dev/null 2>&1 || true
    # The daemon of this PM2_HOME only, should `pm2 kill` have failed.
    if [ -f "$PM2_HOME/pm2.pid" ]; then
      kill -9 "$(cat "$PM2_HOME/pm2.pid")" 2>/dev/null || true
    fi
  fi
  if [ "${PM2_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "pm2: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$PM2" ] || [ ! -x "$AC" ]; then
  echo "pm2: installing pm2@$PM2_VERSION autocannon@$AUTOCANNON_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && echo '{"private":true}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" "autocannon@$AUTOCANNON_VERSION" >/dev/null)
fi

# The addon the example loads (bindings/node, built from source when missing).
if [ ! -f "$ROOT/bindings/node/libshutdown.node" ] && [ -z "${LIBSHUTDOWN_ADDON:-}" ]; then
  (cd "$ROOT/bindings/node" && node scripts/build.js)
fi

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
STOP="${PM2_STOP:-signal}"
ECOSYSTEM="${PM2_ECOSYSTEM:-$ROOT/examples/node/ecosystem.config.js}"
case "$STOP" in
  signal) ;;
  message)
    ECOSYSTEM="$WORK/ecosystem.message.config.js"
    cat >"$ECOSYSTEM" <<EOF
const c = require('$ROOT/examples/node/ecosystem.config.js');
Object.assign(c.apps[0], { shutdown_with_message: true });
module.exports = c;
EOF
    ;;
  *) echo "pm2: PM2_STOP must be signal or message" >&2; exit 2 ;;
esac
export PORT PM2_APP_NAME="$APP"
URL="http://127.0.0.1:$PORT"

echo "pm2: pm2 $("$PM2" --version 2>/dev/null | tail -1), PM2_HOME=$PM2_HOME, port $PORT, workers stopped by $STOP"
"$PM2" start "$ECOSYSTEM" >"$WORK/start.log" 2>&1

# Both workers up (wait_ready: pm2 start returns once they sent 'ready' or listen_timeout).
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$URL/" 2>/dev/null && break
  sleep 0.1
done
online() { "$PM2" jlist 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const a=JSON.parse(s);console.log(a.filter(p=>p.pm2_env.status==="online").length)})'; }
[ "$(online)" = 2 ] || { echo "pm2: FAIL: 2 workers are not online" >&2; "$PM2" ls >&2; exit 1; }
# What the workers print. In cluster mode a write to fd 1 (server.js writes its lines
# with fs.writeSync, to have them before process.exit) goes to the daemon's own stdout,
# $PM2_HOME/pm2.log; what goes through process.stdout goes to logs/<app>-out-<id>.log.
worker_lines() { cat "$PM2_HOME/pm2.log" "$PM2_HOME"/logs/*-out-*.log 2>/dev/null; }
worker_lines | grep "^pm2: id" | sort -u | sed 's/^/pm2: worker: /' || true

echo "pm2: load ${SECONDS_LOAD}s: $CONNS connections on /, $SLOW_CONNS on /slow?ms=300; reload at 5 s, again 3 s after it returns"
load_t0=$(date +%s%N)
"$AC" -j -c "$CONNS" -d "$SECONDS_LOAD" -t 10 "$URL/" >"$WORK/fast.json" 2>"$WORK/fast.err" &
load_pids+=($!)
"$AC" -j -c "$SLOW_CONNS" -d "$SECONDS_LOAD" -t 10 "$URL/slow?ms=300" >"$WORK/slow.json" 2>"$WORK/slow.err" &
load_pids+=($!)

sleep 5
t0=$(date +%s%N)
"$PM2" reload "$APP" >"$WORK/reload1.log" 2>&1
echo "pm2: reload 1 took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
sleep 3
t0=$(date +%s%N)
"$PM2" reload "$APP" >"$WORK/reload2.log" 2>&1
echo "pm2: reload 2 took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
reloads_end_ms=$(( ($(date +%s%N) - load_t0) / 1000000 ))
echo "pm2: both reloads ended ${reloads_end_ms} ms into the ${SECONDS_LOAD} s of load"
if [ $reloads_end_ms -gt $(( SECONDS_LOAD * 1000 - 2000 )) ]; then
  echo "pm2: FAIL: the load ended before the reloads did (a slow machine?): raise PM2_LOAD_SECONDS" >&2
  exit 1
fi

for p in "${load_pids[@]}"; do wait "$p"; done
load_pids=()
# The last old workers may still be exiting (up to their drain budget).
for _ in $(seq 1 120); do
  [ "$(grep -c "\[$APP:_old_[0-9]*\] exited with code" "$PM2_HOME/pm2.log" || true)" -ge 4 ] && break
  sleep 0.1
done

fail=0
summary() {
  node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const failed = r.non2xx + r.errors + r.timeouts;
console.log(`${process.argv[2]}: requests ${r.requests.total}, 2xx ${r["2xx"]}, non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}, failed ${failed}`);
process.exit(failed === 0 && r.requests.total > 0 ? 0 : 1);
' "$1" "$2"
}
summary "$WORK/fast.json" "pm2: client /" || fail=1
summary "$WORK/slow.json" "pm2: client /slow?ms=300" || fail=1

# The old workers of the two reloads (PM2 parks each under _old_<id> while it stops).
exits="$(grep "\[$APP:_old_[0-9]*\] exited with code" "$PM2_HOME/pm2.log" | grep -o "exited with code \[[0-9-]*\] via signal \[[A-Z0-9]*\]" || true)"
n_exits="$(printf '%s\n' "$exits" | grep -c "exited" || true)"
n_zero="$(printf '%s\n' "$exits" | grep -c "code \[0\]" || true)"
reports="$(worker_lines | grep -c "^event: done exit_code=0 " || true)"
reports_all="$(worker_lines | grep -c "^event: done " || true)"
sigkills="$(grep -c "sending SIGKILL" "$PM2_HOME/pm2.log" || true)"
printf '%s\n' "$exits" | sort | uniq -c | sed 's/^/pm2: pm2.log:/'
echo "pm2: old workers: $n_exits exited ($n_zero with code 0), server reports: $reports_all (exit_code=0: $reports), SIGKILLs by PM2: $sigkills"
[ "$n_exits" = 4 ] && [ "$n_zero" = 4 ] && [ "$reports" = 4 ] && [ "$reports_all" = 4 ] && [ "$sigkills" = 0 ] || fail=1
if grep -q "LIBSHUTDOWN_PM2_KILL_TIMEOUT" "$PM2_HOME"/logs/*-error-*.log 2>/dev/null; then
  echo "pm2: unexpected kill_timeout warning" >&2
  fail=1
fi
[ "$(online)" = 2 ] || { echo "pm2: 2 workers are not online after the reloads" >&2; fail=1; }

# pm2 stop: the two current workers drain and exit 0, triggered by the mode's stop.
"$PM2" stop "$APP" >"$WORK/stop.log" 2>&1
for _ in $(seq 1 120); do
  [ "$(grep -c "\[$APP:[0-9]*\] exited with code" "$PM2_HOME/pm2.log" || true)" -ge 2 ] && break
  sleep 0.1
done
stop_zero="$(grep -c "\[$APP:[0-9]*\] exited with code \[0\]" "$PM2_HOME/pm2.log" || true)"
reasons="$(worker_lines | grep "^pm2: done " || true)"
n_signal="$(printf '%s\n' "$reasons" | grep -cF '{"kind":"signal","detail":"SIGINT"}' || true)"
n_message="$(printf '%s\n' "$reasons" | grep -cF '{"kind":"manual","detail":"pm2: shutdown message"}' || true)"
echo "pm2: pm2 stop: $stop_zero of 2 workers exited with code 0; the reasons of the 6 drains:"
printf '%s\n' "$reasons" | sed 's/^pm2: done pid [0-9]* reason /pm2:   /' | sort | uniq -c
[ "$stop_zero" = 2 ] || fail=1
if [ "$STOP" = signal ]; then [ "$n_signal" = 6 ] || fail=1; else [ "$n_signal" = 4 ] && [ "$n_message" = 2 ] || fail=1; fi

if [ $fail -ne 0 ]; then
  echo "pm2: FAIL" >&2
  exit 1
fi
echo "pm2: ok"
