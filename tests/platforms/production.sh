#!/usr/bin/env bash
# The production-shaped example (examples/node/production: Express, Socket.io, pg,
# ioredis, a job loop, prom-client) end to end, against a real PostgreSQL and a real
# Redis that this script starts on 127.0.0.1 (`make production`, `make production-quick`):
#
#   1. metrics: the service alone (no PM2), /metrics scraped while running and inside the
#      announce window after a SIGTERM (phase "draining", the request's own guard of kind
#      http, the draining milestone); it exits 0 with its drain in order.
#   2. pm2: cluster of 2 (its ecosystem.config.js), bounded autocannon load on the order
#      routes, Socket.io clients, a known number of jobs enqueued, /metrics scraped, and
#      `pm2 reload` (PROD_RELOADS times) under that load; then `pm2 stop`.
#
# Passes only with: 0 non-2xx / errors / timeouts at the client (load and scrapes); every
# old worker exiting 0 (PM2's log and the service's own report); every Socket.io client
# disconnected with a reason ("io server disconnect" or "transport close") and
# reconnected to another, new worker; every job id with exactly one result row run once,
# the pending and processing lists empty (none lost, none half-done or done twice), no
# job recovered from a dead worker; no request or socket handler that saw a pool or Redis
# error; and in every drained worker's log: HTTP and sockets done, then the job loop
# stopped, then the pool and Redis closed.
#
# PostgreSQL and redis-server come from Debian's packages (apt-get when missing; root);
# pm2, autocannon and socket.io-client from npm into a temp dir (PROD_TOOLS_DIR to reuse
# one), the example's own dependencies with `npm ci`. PM2 runs with a private PM2_HOME.
# Everything started here is stopped at the end, pass or fail, by its PID (PostgreSQL by
# pg_ctl on its data dir, PM2 by its PM2_HOME's daemon).
#
#   --quick: one reload, 30 s of load (`make production-quick`). Else PROD_RELOADS (2),
#   PROD_LOAD_SECONDS (50), PROD_CONNECTIONS (16), PROD_SOCKETS (20), PROD_JOBS (400),
#   PROD_KEEP=1 (keep the temp dir), PM2_VERSION (7.0.4), AUTOCANNON_VERSION (9.0.0),
#   SOCKETIO_CLIENT_VERSION (4.8.1), PROD_ECOSYSTEM (another ecosystem file, whose app is
#   named $PM2_APP_NAME: the control below), PROD_SCRAPES_PER_SECOND (4),
#   PROD_STRICT=0 (a scrape refused 503 by a draining worker is reported, not a failure: below).
#
# The control: the same run with budgets too short for the work (a file that requires
# examples/node/production/ecosystem.config.js and sets SHUTDOWN_DRAIN_DELAY_MS=0,
# SHUTDOWN_DRAIN_TIMEOUT_MS=1 and JOB_MS=300 in its env) must fail: requests cut at the
# client, old workers exiting 1, jobs stopped at the deadline and requeued (still none
# lost nor done twice).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
EX="$ROOT/examples/node/production"
HERE="$ROOT/tests/platforms/production"
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
if [ $QUICK = 1 ]; then
  RELOADS="${PROD_RELOADS:-1}"; SECONDS_LOAD="${PROD_LOAD_SECONDS:-30}"; JOBS="${PROD_JOBS:-200}"
else
  RELOADS="${PROD_RELOADS:-2}"; SECONDS_LOAD="${PROD_LOAD_SECONDS:-50}"; JOBS="${PROD_JOBS:-400}"
fi
CONNS="${PROD_CONNECTIONS:-16}"
SOCKETS="${PROD_SOCKETS:-20}"
PM2_VERSION="${PM2_VERSION:-7.0.4}"
AUTOCANNON_VERSION="${AUTOCANNON_VERSION:-9.0.0}"
SOCKETIO_CLIENT_VERSION="${SOCKETIO_CLIENT_VERSION:-4.8.1}"
APP=libshutdown-production-test
t_start=$(date +%s%N)
say() { echo "production: $*"; }
die() { echo "production: FAIL: $*" >&2; exit 1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# ----- system packages --------------------------------------------------------------------
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
need=()
[ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ] || need+=(postgresql)
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "needs ${need[*]} (apt-get install ${need[*]}), and is not root"
  say "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 600 apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi
PGBIN="$(pg_bindir)"
for t in node npm curl psql redis-cli; do command -v "$t" >/dev/null || die "$t is needed"; done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/libshutdown-production.XXXXXX")"
chmod 711 "$WORK"   # the postgres user reaches its data dir below it
export PM2_HOME="$WORK/pm2home"
TOOLS="${PROD_TOOLS_DIR:-$WORK/tools}"
PM2="$TOOLS/node_modules/.bin/pm2"
pids=()
PGDATA="$WORK/pg/data"
pg_started=0

# PostgreSQL refuses to run as root: as root it runs as the postgres user (made by the
# Debian package), as anyone else as that user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -x "$PM2" ] && [ -d "$PM2_HOME" ]; then
    timeout 60 "$PM2" kill >/dev/null 2>&1 || true
    if [ -f "$PM2_HOME/pm2.pid" ]; then kill -9 "$(cat "$PM2_HOME/pm2.pid")" 2>/dev/null || true; fi
  fi
  if [ $pg_started = 1 ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    if [ -f "$PGDATA/postmaster.pid" ]; then kill -9 "$(head -1 "$PGDATA/postmaster.pid")" 2>/dev/null || true; fi
  fi
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${PROD_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "production: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----- npm: tools, the addon, the example's dependencies -------------------------------------
if [ ! -x "$PM2" ] || [ ! -d "$TOOLS/node_modules/autocannon" ] || [ ! -d "$TOOLS/node_modules/socket.io-client" ]; then
  say "installing pm2@$PM2_VERSION autocannon@$AUTOCANNON_VERSION socket.io-client@$SOCKETIO_CLIENT_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && echo '{"private":true}' > package.json &&
    timeout 600 npm install --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" "autocannon@$AUTOCANNON_VERSION" \
      "socket.io-client@$SOCKETIO_CLIENT_VERSION" >/dev/null)
fi
# The addon from this checkout's sources, as `make node-test` builds it (cargo decides
# whether anything changed: an addon left by an older checkout is not used as it is).
if [ -z "${LIBSHUTDOWN_ADDON:-}" ]; then
  (cd "$ROOT/bindings/node" && node scripts/build.js) >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "building the addon"; }
fi
stamp="$EX/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$EX/package-lock.json" -nt "$stamp" ]; then
  (cd "$EX" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
t_ready=$(date +%s%N)

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# ----- PostgreSQL and Redis on 127.0.0.1 ---------------------------------------------------------
PGPORT="$(free_port)"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U app --auth=trust -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1 ||
  { cat "$WORK/initdb.log" >&2; die "initdb"; }
# No Unix socket outside the temp dir, TCP on loopback only; durability is not the point.
pg_started=1
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/server.log" -w -t 30 \
  -o "-k $WORK/pg -h 127.0.0.1 -p $PGPORT -c fsync=off -c synchronous_commit=off -c max_connections=100" start >/dev/null ||
  { cat "$WORK/pg/server.log" >&2; die "PostgreSQL did not start"; }
export PGHOST=127.0.0.1 PGPORT PGUSER=app PGDATABASE=app PGCONNECT_TIMEOUT=10
psql -q -d postgres -c 'CREATE DATABASE app' >/dev/null
REDIS_PORT="$(free_port)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
pids+=($!)
RCLI=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
for _ in $(seq 1 100); do "${RCLI[@]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
[ "$("${RCLI[@]}" ping)" = PONG ] || die "redis-server did not start"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
say "$("$PGBIN/postgres" --version) on 127.0.0.1:$PGPORT, redis $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$REDIS_PORT"

q() { psql -qAt -c "$1"; }

# Checks the drain order in one worker's lines: HTTP and sockets done, then the job loop
# stopped, then both the pool and Redis closed. Prints the offending pid otherwise.
drain_order_ok() { # log file, pid
  local lines; lines="$(grep " pid=$2 drain: " "$1" | sed 's/^[^ ]* pid=[0-9]* drain: //' | awk '{print $1}')"
  local a b c d
  a=$(printf '%s\n' "$lines" | grep -n '^http+sockets$' | head -1 | cut -d: -f1)
  b=$(printf '%s\n' "$lines" | grep -n '^jobs$' | head -1 | cut -d: -f1)
  c=$(printf '%s\n' "$lines" | grep -n '^pool$' | head -1 | cut -d: -f1)
  d=$(printf '%s\n' "$lines" | grep -n '^redis$' | head -1 | cut -d: -f1)
  [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ -n "$d" ] && [ "$a" -lt "$b" ] && [ "$b" -lt "$c" ] && [ "$b" -lt "$d" ]
}
# Milliseconds from the trigger to the exit, from the worker's own lines.
trigger_to_exit_ms() { # log file, pid
  node -e '
const [file, pid] = process.argv.slice(1);
const lines = require("fs").readFileSync(file, "utf8").split("\n").filter((l) => l.includes(` pid=${pid} `));
const at = (re) => { const l = lines.find((x) => re.test(x)); return l ? Date.parse(l.split(" ")[0]) : NaN; };
const t = at(/ drain: draining /), e = at(/ exit code=/);
console.log(Number.isFinite(t) && Number.isFinite(e) ? e - t : "?");
' "$1" "$2"
}

fail=0
check() { # description, condition result (0 ok)
  if [ "$2" = 0 ]; then say "ok: $1"; else echo "production: FAIL: $1" >&2; fail=1; fi
}

# ----- 1. metrics, while running and while draining (no PM2) --------------------------------------
PORT1="$(free_port)"
LOG1="$WORK/service-direct.log"
say "stage 1: the service alone on 127.0.0.1:$PORT1, /metrics while running and in the announce window"
(cd "$EX" && exec env PORT="$PORT1" SERVICE_LOG="$LOG1" SHUTDOWN_DRAIN_DELAY_MS=3000 SHUTDOWN_GRACE_PERIOD_MS=15000 node src/index.js) \
  >"$WORK/direct.out" 2>&1 &
direct=$!
pids+=($direct)
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT1/healthz" 2>/dev/null && break
  kill -0 $direct 2>/dev/null || { cat "$LOG1" "$WORK/direct.out" >&2 || true; die "the service exited at start"; }
  sleep 0.1
done
curl -fsS -X POST -H 'content-type: application/json' -d '{"item":"seed","qty":1}' "http://127.0.0.1:$PORT1/orders" >/dev/null ||
  die "POST /orders on the service alone"
curl -fsS "http://127.0.0.1:$PORT1/metrics" >"$WORK/metrics-running.txt" || die "GET /metrics while running"
grep -q '^libshutdown_phase{phase="running"} 1$' "$WORK/metrics-running.txt" && rc=0 || rc=1; check "metrics while running: libshutdown_phase{phase=\"running\"} 1" $rc
grep -q '^orders_created_total 1$' "$WORK/metrics-running.txt" && rc=0 || rc=1; check "metrics while running: orders_created_total 1" $rc
kill -TERM $direct
sleep 0.5
curl -fsS "http://127.0.0.1:$PORT1/metrics" >"$WORK/metrics-draining.txt" || die "GET /metrics in the announce window"
ready_code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT1/readyz")"
grep -q '^libshutdown_phase{phase="draining"} 1$' "$WORK/metrics-draining.txt" && rc=0 || rc=1; check "metrics while draining: libshutdown_phase{phase=\"draining\"} 1" $rc
grep -q '^libshutdown_in_flight_by_kind{kind="http"} [1-9]' "$WORK/metrics-draining.txt" && rc=0 || rc=1; check "metrics while draining: the scrape itself in flight (kind http)" $rc
grep -q '^libshutdown_milestone_seconds{milestone="draining"} ' "$WORK/metrics-draining.txt" && rc=0 || rc=1; check "metrics while draining: the draining milestone's time" $rc
grep -q '^libshutdown_time_left_seconds{phase="draining"} [0-9]' "$WORK/metrics-draining.txt" && rc=0 || rc=1; check "metrics while draining: time left before the announce window ends" $rc
[ "$ready_code" = 503 ] && rc=0 || rc=1; check "readiness 503 while draining (got $ready_code)" $rc
grep -E '^libshutdown_(phase|accepting|in_flight|time_left|milestone)' "$WORK/metrics-draining.txt" | grep -v ' 0$' | sed 's/^/production:   draining: /'
rc1=0
for _ in $(seq 1 200); do kill -0 $direct 2>/dev/null || break; sleep 0.1; done
wait $direct || rc1=$?
[ "$rc1" = 0 ] && rc=0 || rc=1; check "the service alone exited $rc1 after SIGTERM, in $(trigger_to_exit_ms "$LOG1" $direct) ms (3 s announce window)" $rc
drain_order_ok "$LOG1" $direct && rc=0 || rc=1; check "the service alone drained in order" $rc

# ----- 2. under PM2: load, sockets, jobs, reloads ---------------------------------------------------
PORT="$(free_port)"
LOG="$WORK/service.log"
URL="http://127.0.0.1:$PORT"
export PORT SERVICE_LOG="$LOG" PM2_APP_NAME="$APP" JOB_MS=40
say "stage 2: pm2 $("$PM2" --version 2>/dev/null | tail -1), PM2_HOME=$PM2_HOME, port $PORT, $RELOADS reload(s), ${SECONDS_LOAD} s of load"
timeout 120 "$PM2" start "${PROD_ECOSYSTEM:-$EX/ecosystem.config.js}" >"$WORK/start.log" 2>&1 || { cat "$WORK/start.log" >&2; die "pm2 start"; }
for _ in $(seq 1 150); do curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break; sleep 0.1; done
jlist() { timeout 30 "$PM2" jlist 2>/dev/null; }
online_pids() { jlist | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const p of JSON.parse(s))if(p.pm2_env.status==="online")console.log(p.pid)})' | sort -n; }
[ "$(online_pids | wc -l)" = 2 ] || { "$PM2" ls >&2; die "2 workers are not online"; }
first_pids="$(online_pids | tr '\n' ' ')"
say "workers: $first_pids"

load_t0=$(date +%s%N)
node "$HERE/load.js" "$TOOLS" "$URL" "$CONNS" "$SECONDS_LOAD" "$WORK/load.json" 2>"$WORK/load.err" &
load_pid=$!; pids+=($load_pid)
node "$HERE/sio-clients.js" "$TOOLS" "$URL" "$SOCKETS" $(( SECONDS_LOAD + 60 )) "$WORK/sockets.json" 2>"$WORK/sockets.err" &
sio_pid=$!; pids+=($sio_pid)
# Jobs in batches over the load, so that some are in progress at every reload.
batches=$(( SECONDS_LOAD * 2 - 8 )); [ $batches -lt 1 ] && batches=1
per=$(( (JOBS + batches - 1) / batches ))
(
  n=0
  for _ in $(seq 1 $batches); do
    args=()
    for _ in $(seq 1 $per); do
      [ $n -ge "$JOBS" ] && break
      n=$((n + 1)); args+=("{\"id\":\"job-$n\"}")
    done
    [ ${#args[@]} -gt 0 ] && "${RCLI[@]}" LPUSH jobs:pending "${args[@]}" >/dev/null
    sleep 0.5
  done
) &
enq_pid=$!; pids+=($enq_pid)
# Scrapes: PROD_SCRAPES_PER_SECOND (4) a second, each on a new connection, whichever
# worker answers.
(
  ok=0 bad=0 refused=0 draining=0 until=$(( $(date +%s) + SECONDS_LOAD ))
  for _ in $(seq 1 $(( SECONDS_LOAD * ${PROD_SCRAPES_PER_SECOND:-4} ))); do
    [ "$(date +%s)" -lt $until ] || break
    code="$(curl -sS -m 5 -w '%{http_code}' "$URL/metrics" -o "$WORK/scrape.txt" 2>>"$WORK/scrape.err" || true)"
    if [ "$code" = 200 ]; then
      ok=$((ok + 1)); grep -q '^libshutdown_phase{phase="draining"} 1$' "$WORK/scrape.txt" && draining=$((draining + 1))
    elif [ "$code" = 503 ] && grep -q '^shutting down$' "$WORK/scrape.txt"; then
      refused=$((refused + 1)); echo "503 from attach() at $(date -u +%H:%M:%S.%N)" >>"$WORK/scrape.err"
    else bad=$((bad + 1)); echo "HTTP ${code:-none} at $(date -u +%H:%M:%S.%N)" >>"$WORK/scrape.err"; fi
    sleep "$(awk "BEGIN{print 1/${PROD_SCRAPES_PER_SECOND:-4}}")"
  done
  echo "$ok $bad $refused $draining" >"$WORK/scrapes.txt"
) &
scrape_pid=$!; pids+=($scrape_pid)

old_pids=""
sleep 5
for r in $(seq 1 "$RELOADS"); do
  before="$(online_pids | tr '\n' ' ')"
  old_pids="$old_pids $before"
  t0=$(date +%s%N)
  timeout 120 "$PM2" reload "$APP" >"$WORK/reload$r.log" 2>&1 || { cat "$WORK/reload$r.log" >&2; die "pm2 reload $r"; }
  say "reload $r took $(ms_since "$t0") ms: $before-> $(online_pids | tr '\n' ' ')"
  sleep 3
done
reloads_end_ms=$(ms_since "$load_t0")
[ $reloads_end_ms -le $(( SECONDS_LOAD * 1000 - 2000 )) ] ||
  die "the load ended before the reloads did (${reloads_end_ms} ms into ${SECONDS_LOAD} s: a slow machine?): raise PROD_LOAD_SECONDS"
wait $load_pid $enq_pid $scrape_pid
# The jobs still pending after the load: bounded wait for the workers to finish them.
for _ in $(seq 1 300); do
  [ "$("${RCLI[@]}" LLEN jobs:pending)" = 0 ] && [ -z "$("${RCLI[@]}" --scan --pattern 'jobs:processing:*')" ] && break
  sleep 0.1
done
# Each client gets a moment to be back on its feet after the last reload.
sleep 2
kill -TERM $sio_pid
wait $sio_pid || true
final_pids="$(online_pids | tr '\n' ' ')"
n_old=$(( RELOADS * 2 ))
for _ in $(seq 1 150); do
  [ "$(grep -c "\[$APP:_old_[0-9]*\] exited with code" "$PM2_HOME/pm2.log" || true)" -ge $n_old ] && break
  sleep 0.1
done

# pm2 stop: the two current workers drain too.
timeout 60 "$PM2" stop "$APP" >"$WORK/stop.log" 2>&1 || die "pm2 stop"
for _ in $(seq 1 150); do
  [ "$(grep -c "\[$APP:[0-9]*\] exited with code" "$PM2_HOME/pm2.log" || true)" -ge 2 ] && break
  sleep 0.1
done

# ----- the verdict ------------------------------------------------------------------------------------
say "--- results"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const failed = r.non2xx + r.errors + r.timeouts;
console.log(`production: client (POST /orders + GET /orders/:id, ${process.argv[2]} connections): requests ${r.requests}, 2xx ${r["2xx"]}, non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}, failed ${failed}, statuses ${JSON.stringify(r.statuses)}, p99 ${r.latencyP99} ms`);
process.exit(failed === 0 && r.requests > 0 ? 0 : 1);
' "$WORK/load.json" "$CONNS" && rc=0 || rc=1; check "0 failed requests at the client" $rc
read -r s_ok s_bad s_refused s_draining <"$WORK/scrapes.txt"
[ -s "$WORK/scrape.err" ] && sed 's/^/production:   scrape: /' "$WORK/scrape.err" >&2
[ "$s_bad" = 0 ] && [ "$s_ok" -gt 0 ] && rc=0 || rc=1
check "/metrics scrapes under PM2 (each on a new connection): $s_ok answered ($s_draining by a draining worker), $s_bad failed, $s_refused refused" $rc
# A 503 "shutting down" from attach(): PM2's master handed the new connection to a worker
# whose listener was closing after its earlier connections had all closed (its log:
# "http: refused"). Seen about once in 1,000 scrapes before the core's boundary took such
# a connection in (core/src/connection/table.rs, `open`); a failure since. PROD_STRICT=0
# only reports it.
if [ "$s_refused" != 0 ]; then
  echo "production: $s_refused scrape(s) refused 503 by a draining worker (the PM2 hand-over race)" >&2
  [ "${PROD_STRICT:-1}" = 1 ] && { echo "production: FAIL: scrapes were refused (PROD_STRICT=0 reports only)" >&2; fail=1; }
fi

exits="$(grep "\[$APP:_old_[0-9]*\] exited with code" "$PM2_HOME/pm2.log" | grep -o "exited with code \[[0-9-]*\] via signal \[[A-Z0-9]*\]" || true)"
n_exits="$(printf '%s\n' "$exits" | grep -c exited || true)"
n_zero="$(printf '%s\n' "$exits" | grep -c 'code \[0\]' || true)"
sigkills="$(grep -c 'sending SIGKILL' "$PM2_HOME/pm2.log" || true)"
printf '%s\n' "$exits" | sort | uniq -c | sed 's/^/production:   pm2.log: /'
[ "$n_exits" = $n_old ] && [ "$n_zero" = $n_old ] && [ "$sigkills" = 0 ] && rc=0 || rc=1
check "old workers: $n_exits of $n_old exited, $n_zero with code 0, SIGKILLs $sigkills" $rc
stop_zero="$(grep -c "\[$APP:[0-9]*\] exited with code \[0\]" "$PM2_HOME/pm2.log" || true)"
[ "$stop_zero" = 2 ] && rc=0 || rc=1; check "pm2 stop: $stop_zero of 2 workers exited with code 0" $rc
! grep -q LIBSHUTDOWN_PM2_KILL_TIMEOUT "$PM2_HOME"/logs/*-error-*.log 2>/dev/null && rc=0 || rc=1; check "no kill_timeout warning (the budgets fit)" $rc

all_drained="$old_pids $final_pids"
order_bad=0
for p in $all_drained; do
  code="$(grep " pid=$p exit code=" "$LOG" | sed 's/.*exit code=//' | head -1)"
  done_line="$(grep " pid=$p drain: done " "$LOG" | sed 's/.* drain: done //' | head -1)"
  say "  worker $p: SIGINT to exit $(trigger_to_exit_ms "$LOG" "$p") ms, exit code ${code:-?}, $done_line"
  drain_order_ok "$LOG" "$p" || { echo "production:   worker $p: drain out of order:" >&2; grep " pid=$p drain: " "$LOG" >&2; order_bad=1; }
  [ "$code" = 0 ] || order_bad=1
done
[ $order_bad = 0 ] && rc=0 || rc=1; check "every worker ($(echo $all_drained | wc -w)) exited 0 and drained in order: http+sockets, then jobs, then pool and redis" $rc

errs="$(grep -cE ' (http: error|sockets: error|pg: pool error|redis: [a-z]+ error)|Cannot use a pool' "$LOG" || true)"
[ "$errs" = 0 ] && rc=0 || rc=1; check "no pool or Redis error seen by a request or handler ($errs)" $rc
[ "$errs" = 0 ] || grep -E ' (http: error|sockets: error|pg: pool error|redis: [a-z]+ error)|Cannot use a pool' "$LOG" | head -5 >&2

OLD="$old_pids" FINAL="$final_pids" node -e '
const recs = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const old = new Set(process.env.OLD.trim().split(/\s+/).map(Number));
const final = new Set(process.env.FINAL.trim().split(/\s+/).map(Number));
const okReasons = new Set(["io server disconnect", "transport close"]);
const reasons = {};
let bad = 0, ackErrors = 0, ackTimeouts = 0, acks = 0, moves = 0;
for (const r of recs) {
  acks += r.acks; ackErrors += r.ackErrors.length; ackTimeouts += r.ackTimeouts;
  for (const d of r.disconnects) reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
  const problems = [];
  if (r.pids.length < 2) problems.push("never reconnected");
  if (r.disconnects.length !== r.pids.length - 1) problems.push(`${r.disconnects.length} disconnects for ${r.pids.length} sessions`);
  for (const d of r.disconnects) if (!okReasons.has(d.reason)) problems.push(`reason ${d.reason}`);
  for (let i = 1; i < r.pids.length; i++) {
    if (r.pids[i] === r.pids[i - 1]) problems.push(`reconnected to the same pid ${r.pids[i]}`);
    if (!old.has(r.pids[i - 1])) problems.push(`disconnected by ${r.pids[i - 1]}, not a reloaded worker`);
  }
  moves += Math.max(0, r.pids.length - 1);
  if (!r.connected || !final.has(r.pids.at(-1))) problems.push(`ends on ${r.pids.at(-1)} (connected ${r.connected}), not a new worker`);
  if (r.ackErrors.length) problems.push(`errors ${r.ackErrors.slice(0, 2)}`);
  if (problems.length) { bad++; console.error(`production:   socket client ${r.i} (pids ${r.pids.join(">")}): ${problems.join("; ")}`); }
}
console.log(`production: socket.io: ${recs.length} clients, ${moves} moves to another worker, disconnect reasons ${JSON.stringify(reasons)}, orders:count answered ${acks}, errors ${ackErrors}, unanswered (lost in a disconnect) ${ackTimeouts}`);
process.exit(bad === 0 && recs.length > 0 ? 0 : 1);
' "$WORK/sockets.json" && rc=0 || rc=1; check "every Socket.io client disconnected with a reason and reconnected to a new worker" $rc

rows="$(q "SELECT count(*) FROM job_results")"
expected_rows="$(q "SELECT count(*) FROM job_results WHERE job_id IN (SELECT 'job-' || g FROM generate_series(1, $JOBS) g)")"
reruns="$(q "SELECT count(*) FROM job_results WHERE runs <> 1")"
pending="$("${RCLI[@]}" LLEN jobs:pending)"
processing="$("${RCLI[@]}" --scan --pattern 'jobs:processing:*' | wc -l)"
dead="$("${RCLI[@]}" LLEN jobs:dead)"
recovered="$(grep -c ' jobs: recovered [1-9]' "$LOG" || true)"
requeued="$(grep -c ' jobs: requeued ' "$LOG" || true)"
by_worker="$(q "SELECT string_agg(worker_pid || ':' || n, ' ') FROM (SELECT worker_pid, count(*) n FROM job_results GROUP BY 1 ORDER BY 1) s")"
say "jobs: $JOBS enqueued, $rows result rows ($expected_rows of the ids enqueued), run twice $reruns, pending $pending, processing lists $processing, dead $dead, requeued at a shutdown $requeued, recovered $recovered; by worker $by_worker"
[ "$rows" = "$JOBS" ] && [ "$expected_rows" = "$JOBS" ] && [ "$reruns" = 0 ] && [ "$pending" = 0 ] && [ "$processing" = 0 ] &&
  [ "$dead" = 0 ] && [ "$recovered" = 0 ] && rc=0 || rc=1
check "every job done exactly once: no job lost, none half-done or done twice" $rc
orders="$(q "SELECT count(*) FROM orders")"
counter="$("${RCLI[@]}" GET orders:created)"
[ "$orders" = "$counter" ] && rc=0 || rc=1; check "orders in PostgreSQL ($orders) = the Redis counter ($counter)" $rc

say "run time $(ms_since "$t_start") ms (after installs $(ms_since "$t_ready") ms)"
[ $fail = 0 ] || die "see above"
say "ok"
