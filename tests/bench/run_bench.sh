#!/usr/bin/env bash
# Benchmarks OrderService against the raw PostgreSQL ceiling, measured in the same run:
#
#   tests/bench/run_bench.sh [--skip-target-check] [BUILD_DIR]
#   BENCH_WORKLOADS=place_order tests/bench/run_bench.sh     # the PlaceOrder saga (see below)
#
# For CreateOrder and then GetOrder it runs pgbench with the server's own SQL
# (create_order.pgbench, get_order.pgbench) and then load_generator against the server, one
# after the other (they would compete for the same cores), and prints a summary table with
# throughput, latency percentiles, CPU per request (client, server, PostgreSQL) and the ratio
# server/pgbench. Targets: CreateOrder throughput >= 70% of pgbench's; GetOrder p99 < 5 ms.
# Exit status: 0 when the targets hold (or --skip-target-check), 1 when one fails, 2 when the
# benchmark could not run. Builds nothing: BUILD_DIR must hold order_platform and load_generator.
#
# Environment:
#   BUILD_DIR=<repo>/build    where the binaries are (the argument wins)
#   ORDER_PLATFORM_BIN, LOAD_GENERATOR_BIN   explicit binary paths (default: in BUILD_DIR)
#   DATABASE_URL              use this database instead of a private cluster (it gets orders
#                             and a `bench` schema written into it; CPU of PostgreSQL not shown)
#   BENCH_DURATION=10         measured seconds per run (10 or 10s)
#   BENCH_WARMUP=2            unmeasured seconds before each run
#   BENCH_ROUNDS=1            pgbench/server pairs per workload; >1 reports medians (noisy hosts)
#   BENCH_CLIENTS=32          pgbench clients = load_generator threads
#   BENCH_POOL_SIZE=32        the server's --pool_size
#   BENCH_GET_POOL=2000       orders load_generator creates before reading random ones
#   BENCH_GET_RATE=""        also measure GetOrder latency open loop at this many req/s ("auto":
#                             half the closed-loop GetOrder throughput just measured)
#   BENCH_PG_FAST=0           1: private cluster with fsync/synchronous_commit/full_page_writes off
#   BENCH_COORDINATOR=0       1: run the saga coordinator in the server (every created order's
#                             PlaceOrder saga then runs on the same cores during the runs)
#   BENCH_SERVER_ARGS=""      extra flags for `order_platform serve`
#   BENCH_SKIP_TARGETS=0      1: same as --skip-target-check
#   BENCH_KEEP=0              1: keep the work dir (logs, pgbench per-transaction logs)
#   BENCH_WORKLOADS="create_order get_order"   what to run: create_order and get_order (they
#                             run together, naming either selects both), place_order; "all" =
#                             the three (default: place_order alone when BENCH_SOAK is set)
#
# place_order (the PlaceOrder saga, see README.md): pgbench runs create_order.pgbench with the
# server stopped (the ceiling: one order transaction), its workflow rows are deleted, the
# catalog is seeded, pgbench runs place_order_sql.pgbench (the second ceiling, "saga_sql": every
# statement of one saga per pgbench transaction, no server; what it wrote is deleted after), then
# the server runs WITH the coordinator and `load_generator --rpc=place_order` runs at each client
# count, with pg_stat_database / pg_stat_wal (and pg_stat_statements) deltas over each window.
# Targets: completed sagas/s >= 15% of that pgbench TPS at 8 and 32 clients; engine overhead
# <= 2 transactions per step; with BENCH_SOAK, no RSS growth of the server. Informational:
# sagas/s / saga SQL floor TPS at each client count.
#   BENCH_SAGA_CLIENTS="1 8 32"   client counts of the saga runs
#   BENCH_SAGA_PGBENCH_CLIENTS    pgbench clients of the saga ceilings (default BENCH_CLIENTS)
#   BENCH_SAGA_SQL=1          0: skip the saga SQL floor (place_order_sql.pgbench, "saga_sql" row)
#   BENCH_SAGA_SKUS=1000      catalog the orders draw their 3 SKUs from (seeded by the tool)
#   BENCH_COORDINATOR_WORKERS the server's --coordinator_workers (default: the server's, 64)
#   BENCH_SAGA_BUSINESS_TX=8  business transactions per saga (see README.md), used for the
#                             engine overhead when pg_stat_statements is not available
#   BENCH_PGSS=1              private cluster: load pg_stat_statements (restarts PostgreSQL
#                             once) to count the engine's statements and list the top ones
#   BENCH_SOAK=""             N: after the saga runs, run the saga load for N seconds and sample
#                             the server's RSS every BENCH_SOAK_INTERVAL (10) seconds
#   BENCH_SOAK_CLIENTS=32     clients of the soak run
#   BENCH_SOAK_MAX_GROWTH_MB  allowed RSS growth after the first minute (default: max(4 MB,
#                             2% of the first sample)), from the least-squares slope
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"

die() { echo "run_bench.sh: $*" >&2; exit 2; }
log() { echo "run_bench.sh: $*" >&2; }
usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

# "10", "10s" -> 10 (whole seconds; pgbench -T takes no fractions).
seconds() {
  local v="${1%s}"
  [[ "$v" =~ ^[0-9]+$ ]] || die "durations are whole seconds (e.g. 10 or 10s), got '$1'"
  echo "$v"
}

CHECK_TARGETS=1
BUILD_DIR_ARG=""
for arg in "$@"; do
  case "$arg" in
    --skip-target-check) CHECK_TARGETS=0 ;;
    -h | --help) usage 0 ;;
    -*) echo "run_bench.sh: unknown flag $arg" >&2; usage 2 >&2 ;;
    *) BUILD_DIR_ARG="$arg" ;;
  esac
done
[[ "${BENCH_SKIP_TARGETS:-0}" == 1 ]] && CHECK_TARGETS=0

readonly BUILD_DIR="${BUILD_DIR_ARG:-${BUILD_DIR:-${REPO_ROOT}/build}}"
SERVER_BIN="$(realpath -m -- "${ORDER_PLATFORM_BIN:-${BUILD_DIR}/order_platform}")"
LOADGEN_BIN="$(realpath -m -- "${LOAD_GENERATOR_BIN:-${BUILD_DIR}/load_generator}")"
DURATION="$(seconds "${BENCH_DURATION:-10}")"
WARMUP="$(seconds "${BENCH_WARMUP:-2}")"
readonly CLIENTS="${BENCH_CLIENTS:-32}"
readonly POOL_SIZE="${BENCH_POOL_SIZE:-32}"
readonly GET_POOL="${BENCH_GET_POOL:-2000}"
readonly PG_FAST="${BENCH_PG_FAST:-0}"
readonly ROUNDS="${BENCH_ROUNDS:-1}"
CLK_TCK="$(getconf CLK_TCK)"
((DURATION > 0)) || die "BENCH_DURATION must be > 0"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"

# Workloads, in run order.
WORKLOADS_ARG="${BENCH_WORKLOADS:-}"
if [[ -z "$WORKLOADS_ARG" ]]; then
  if [[ -n "${BENCH_SOAK:-}" ]]; then WORKLOADS_ARG=place_order; else WORKLOADS_ARG="create_order get_order"; fi
fi
[[ "$WORKLOADS_ARG" == all ]] && WORKLOADS_ARG="create_order get_order place_order"
declare -A WANT=()
for w in ${WORKLOADS_ARG//,/ }; do
  case "$w" in
    # The OrderService pair runs as one (get_order reads the orders create_order stored).
    create_order | get_order) WANT[create_order]=1 ;;
    place_order) WANT[place_order]=1 ;;
    *) die "unknown workload '$w' in BENCH_WORKLOADS (create_order, get_order, place_order, all)" ;;
  esac
done
wants() { [[ -n "${WANT[$1]:-}" ]]; }
SAGA_CLIENTS="${BENCH_SAGA_CLIENTS-1 8 32}"
SAGA_PGBENCH_CLIENTS="${BENCH_SAGA_PGBENCH_CLIENTS:-$CLIENTS}"
SAGA_SKUS="${BENCH_SAGA_SKUS:-1000}"
SAGA_BUSINESS_TX="${BENCH_SAGA_BUSINESS_TX:-8}"
SAGA_SQL="${BENCH_SAGA_SQL:-1}"
[[ "$SAGA_SQL" == 0 || "$SAGA_SQL" == 1 ]] || die "BENCH_SAGA_SQL must be 0 or 1, got '$SAGA_SQL'"
readonly SAGA_STEPS=5  # reserve_stock, authorize_payment, confirm_order, capture_payment, commit_reservation
SOAK="${BENCH_SOAK:-}"
SOAK_CLIENTS="${BENCH_SOAK_CLIENTS:-32}"
SOAK_INTERVAL="$(seconds "${BENCH_SOAK_INTERVAL:-10}")"
for n in $SAGA_CLIENTS $SAGA_PGBENCH_CLIENTS $SAGA_SKUS $SOAK_CLIENTS $SAGA_BUSINESS_TX; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "saga client counts, SKUs and BENCH_SAGA_BUSINESS_TX must be positive integers, got '$n'"
done
[[ -z "$SOAK" ]] || SOAK="$(seconds "$SOAK")"
[[ -z "$SOAK" ]] || wants place_order || die "BENCH_SOAK needs the place_order workload"
if wants place_order && [[ -z "$SAGA_CLIENTS" && -z "$SOAK" ]]; then
  die "BENCH_SAGA_CLIENTS is empty and no BENCH_SOAK: nothing to run for place_order"
fi

[[ -x "$SERVER_BIN" ]] || die "no server binary at $SERVER_BIN (build target order_platform)"
[[ -x "$LOADGEN_BIN" ]] || die "no load generator at $LOADGEN_BIN (build target load_generator)"

# PostgreSQL client tools: PATH first, else the newest server install.
pg_tool() {
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
  local d
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    [[ -x "$d/$1" ]] && { echo "$d/$1"; return; }
  done
  die "$1 not found (install postgresql-client / postgresql-contrib)"
}
PGBENCH="$(pg_tool pgbench)"
PSQL="$(pg_tool psql)"

# ---- lifecycle -----------------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/order_bench.XXXXXX)"
chmod 0755 "$WORK"  # The private cluster's directory lives below; its (non-root) owner must reach it.
cd "$WORK"
PG_DIR=""
SERVER_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$PG_DIR" ]]; then
    "${REPO_ROOT}/deploy/pg_local.sh" stop "$PG_DIR" --immediate >/dev/null 2>&1 || true
  elif [[ -n "${DSN:-}" ]]; then
    psql_q -c "DROP SCHEMA IF EXISTS bench CASCADE" >/dev/null 2>&1 || true
  fi
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    log "kept logs in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$DSN" "$@"; }

if [[ -n "${DATABASE_URL:-}" ]]; then
  DSN="$DATABASE_URL"
  PG_MODE="external database"
else
  PG_DIR="$WORK/pg"
  DSN="$(PG_LOCAL_FAST="$PG_FAST" "${REPO_ROOT}/deploy/pg_local.sh" start "$PG_DIR" \
    2>"$WORK/pg_local.log")" || { cat "$WORK/pg_local.log" >&2; die "could not start PostgreSQL"; }
  if [[ "$PG_FAST" == 1 ]]; then PG_MODE="private, fsync=off"; else PG_MODE="private, fsync=on"; fi
fi

free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 20000))
    [[ -z "$(ss -Htan "sport = :$port" 2>/dev/null)" ]] && { echo "$port"; return; }
  done
  die "no free TCP port found"
}

SERVER_HELP="$("$SERVER_BIN" --helpfull 2>&1 || true)"
PORT=""
COORDINATOR_NOTE=""

# start_server <coordinator 0|1>: starts `order_platform serve` on a free port (PORT, SERVER_PID).
start_server() {
  PORT="$(free_port)"
  local -a flags=(serve --listen="127.0.0.1:${PORT}" --database_url="$DSN" --auto_migrate
    --pool_size="$POOL_SIZE")
  # Metrics on a free local port (the default 0.0.0.0:9464 may be taken by another server).
  if grep -q -- '-metrics_listen' <<<"$SERVER_HELP"; then
    flags+=(--metrics_listen="127.0.0.1:$(free_port)")
  fi
  # Without the coordinator, CreateOrder is its one statement (order, items and workflow row),
  # the same work as create_order.pgbench; with it, every order's saga also runs on the same cores.
  COORDINATOR_NOTE=""
  if grep -q -- '-coordinator ' <<<"$SERVER_HELP"; then
    if [[ "$1" == 1 ]]; then
      flags+=(--coordinator=true)
      COORDINATOR_NOTE=", saga coordinator ON"
      if [[ -n "${BENCH_COORDINATOR_WORKERS:-}" ]]; then
        flags+=(--coordinator_workers="$BENCH_COORDINATOR_WORKERS")
        COORDINATOR_NOTE+=" (${BENCH_COORDINATOR_WORKERS} workers)"
      fi
    else
      flags+=(--coordinator=false)
      COORDINATOR_NOTE=", saga coordinator off"
    fi
  fi
  # shellcheck disable=SC2086  # BENCH_SERVER_ARGS is a list of flags.
  "$SERVER_BIN" "${flags[@]}" ${BENCH_SERVER_ARGS:-} >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/server.log" >&2; die "server exited"; }
    (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null && break
    sleep 0.2
  done
  (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null || die "server not listening on port $PORT"
}

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

if wants create_order; then start_server "${BENCH_COORDINATOR:-0}"; fi

# ---- CPU accounting ------------------------------------------------------------------------------
# Clock ticks a process has used: utime+stime, plus its reaped children's with "with_children".
proc_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  local -a f
  read -r -a f <<<"${stat##*) }"  # Fields from 3 (state) on: utime is f[11], stime f[12].
  if [[ "${2:-}" == with_children ]]; then
    echo $((f[11] + f[12] + f[13] + f[14]))
  else
    echo $((f[11] + f[12]))
  fi
}

# Ticks used by the private cluster: the postmaster, the backends it reaped, and the live ones.
postgres_ticks() {
  [[ -n "$PG_DIR" ]] || { echo 0; return; }
  local pm total child
  pm="$(sed -n 1p "$PG_DIR/data/postmaster.pid" 2>/dev/null)" || { echo 0; return; }
  total="$(proc_ticks "$pm" with_children)"
  for child in $(ps -o pid= --ppid "$pm"); do
    total=$((total + $(proc_ticks "$child")))
  done
  echo "$total"
}

# "busy total" jiffies of the whole machine (all CPUs) from /proc/stat.
host_ticks() {
  local -a c
  read -r -a c < <(head -n1 /proc/stat)
  local busy=$((c[1] + c[2] + c[3] + c[6] + c[7] + c[8]))
  echo "$busy $((busy + c[4] + c[5]))"
}

snapshot() {  # -> "pg server host_busy host_total"
  echo "$(postgres_ticks) $(proc_ticks "$SERVER_PID") $(host_ticks)"
}

# cpu_between <before> <after> <requests> <client CPU seconds>: sets CPU_CLIENT_US, CPU_SERVER_US,
# CPU_PG_US (per request), CPU_BUSY_US (the whole machine's busy CPU per request: what a request
# cost the cores, whoever spent it) and OTHER_PCT: CPU used by processes other than these three,
# as a percentage of the whole machine (all CPUs) -- the noise from neighbours during the run.
cpu_between() {
  local -a a b
  read -r -a a <<<"$1"
  read -r -a b <<<"$2"
  local -a v
  read -r -a v <<<"$(awk -v n="$3" -v client_s="$4" -v hz="$CLK_TCK" \
    -v pg=$((b[0] - a[0])) -v server=$((b[1] - a[1])) -v busy=$((b[2] - a[2])) \
    -v total=$((b[3] - a[3])) 'BEGIN {
      if (n < 1) n = 1
      other = busy - (pg + server + client_s * hz)
      if (other < 0) other = 0
      printf "%.0f %.0f %.0f %.0f %.0f", client_s * 1e6 / n, server * 1e6 / hz / n,
             pg * 1e6 / hz / n, (total > 0 ? 100 * other / total : 0), busy * 1e6 / hz / n
    }')"
  CPU_CLIENT_US="${v[0]}"
  CPU_SERVER_US="${v[1]}"
  CPU_PG_US="${v[2]}"
  OTHER_PCT="${v[3]}"
  CPU_BUSY_US="${v[4]}"
  [[ -n "$PG_DIR" ]] || CPU_PG_US="-"
}

# ---- results -------------------------------------------------------------------------------------
declare -A R  # R[<case>.<field>]: rps p50 p99 p999 errors client_us server_us pg_us other

kv() {  # kv <line> <key>: the value of key=value in a line
  sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"
}

# Prints "p50 p99 p999" in ms from pgbench per-transaction logs (latency in µs, 3rd column).
pgbench_percentiles() {
  cat "$@" | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n | awk '
    { v[NR] = $1 }
    END {
      split("0.5 0.99 0.999", q, " ")
      for (i = 1; i <= 3; i++) {
        r = q[i] * NR; k = int(r); if (k < r) k++; if (k < 1) k = 1
        printf "%.3f ", (NR ? v[k] : 0) / 1000
      }
    }'
}

prepare_run() {  # Same starting state for every measured run.
  psql_q -c "VACUUM ANALYZE orders.orders, orders.order_items" >/dev/null
  psql_q -c "CHECKPOINT" >/dev/null 2>&1 || true
}

# run_pgbench <case> <script> [pgbench args...]
run_pgbench() {
  local name="$1" script="$2"
  shift 2
  local -a args=(-n -M prepared -c "${RUN_CLIENTS:-$CLIENTS}" -j "${BENCH_PGBENCH_JOBS:-2}"
    -f "$script" "$@")
  log "$name: pgbench warmup ${WARMUP}s, then ${DURATION}s"
  if ((WARMUP > 0)); then
    "$PGBENCH" "${args[@]}" -T "$WARMUP" "$DSN" >"$WORK/$name.warmup.out" 2>&1 ||
      { cat "$WORK/$name.warmup.out" >&2; die "$name: pgbench warmup failed"; }
  fi
  # Every table a saga touches, as before each saga point (SAGA_TABLES=1), or the orders'.
  [[ -z "${SAGA_TABLES:-}" ]] || vacuum_saga_tables
  prepare_run
  mkdir -p "$WORK/$name.logs"
  local before after times db_before=""
  [[ -z "${COUNT_DB:-}" ]] || db_before="$(db_counters)"
  [[ -z "${PGSS_CAPTURE:-}" ]] || pgss_reset  # The measured run's statements only.
  before="$(snapshot)"
  if ! { TIMEFORMAT='%3U %3S'; time (cd "$WORK/$name.logs" &&
        "$PGBENCH" "${args[@]}" -T "$DURATION" -l --log-prefix=tx "$DSN" \
        >"$WORK/$name.out" 2>&1); } 2>"$WORK/$name.time"; then
    cat "$WORK/$name.out" >&2
    die "$name: pgbench failed"
  fi
  sleep 0.5  # Let the benchmark's backends exit and be reaped, so their CPU is counted.
  after="$(snapshot)"
  # pgbench's backends flushed their statistics when they exited.
  [[ -z "${COUNT_DB:-}" ]] || R[$name.db]="$db_before $(db_counters)"
  [[ -z "${PGSS_CAPTURE:-}" ]] || pgss_capture "$WORK/$name.pgss"
  local out tps processed failed
  out="$(cat "$WORK/$name.out")"
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | tail -n1)"
  processed="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")"
  failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")"
  [[ -n "$tps" && -n "$processed" ]] || { echo "$out" >&2; die "$name: cannot parse pgbench output"; }
  read -r times <"$WORK/$name.time" || true
  local -a pct
  read -r -a pct <<<"$(pgbench_percentiles "$WORK/$name.logs"/tx.*)"
  cpu_between "$before" "$after" "$processed" \
    "$(awk -v u="${times% *}" -v s="${times#* }" 'BEGIN { print u + s }')"
  R[$name.rps]="$tps"
  R[$name.p50]="${pct[0]}"
  R[$name.p99]="${pct[1]}"
  R[$name.p999]="${pct[2]}"
  R[$name.processed]="$processed"
  R[$name.errors]="${failed:-0}"
  R[$name.client_us]="$CPU_CLIENT_US"
  R[$name.server_us]="$CPU_SERVER_US"  # Idle unless the coordinator runs sagas meanwhile.
  R[$name.pg_us]="$CPU_PG_US"
  R[$name.other]="$OTHER_PCT"
  R[$name.busy_us]="$CPU_BUSY_US"
}

# run_loadgen <case> <rpc> [load_generator flags...]
run_loadgen() {
  local name="$1" rpc="$2"
  shift 2
  log "$name: load_generator --rpc=$rpc${*:+ $*}, warmup ${WARMUP}s, then ${DURATION}s"
  prepare_run
  local marker="$WORK/$name.window"
  "$LOADGEN_BIN" --target="127.0.0.1:${PORT}" --rpc="$rpc" --concurrency="$CLIENTS" \
    --duration="${DURATION}s" --warmup="${WARMUP}s" --get_pool_size="$GET_POOL" \
    --window_file="$marker" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null && [[ ! -e "$marker" ]]; do sleep 0.02; done
  local before after rc=0
  before="$(snapshot)"
  wait "$pid" || rc=$?
  after="$(snapshot)"
  local line
  line="$(grep '^rpc=' "$WORK/$name.out" || true)"
  if [[ -z "$line" || $rc -ne 0 ]]; then
    cat "$WORK/$name.out" "$WORK/$name.err" >&2
    tail -n 20 "$WORK/server.log" >&2
    die "$name: load_generator failed (exit $rc)"
  fi
  local ok errors
  ok="$(kv "$line" ok)"
  errors="$(kv "$line" errors)"
  cpu_between "$before" "$after" $((ok + errors)) "$(kv "$line" client_cpu_s)"
  R[$name.rps]="$(kv "$line" throughput_rps)"
  R[$name.p50]="$(kv "$line" p50_ms)"
  R[$name.p99]="$(kv "$line" p99_ms)"
  R[$name.p999]="$(kv "$line" p999_ms)"
  R[$name.errors]="$errors"
  R[$name.client_us]="$CPU_CLIENT_US"
  R[$name.server_us]="$CPU_SERVER_US"
  R[$name.pg_us]="$CPU_PG_US"
  R[$name.other]="$OTHER_PCT"
  R[$name.busy_us]="$CPU_BUSY_US"
}

# Numbers the orders stored so far 1..N in bench.order_ids for get_order.pgbench.
seed_order_ids() {
  psql_q >/dev/null <<'EOF'
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.order_ids;
CREATE TABLE bench.order_ids AS
  SELECT (row_number() OVER ())::int AS n, id FROM (SELECT id FROM orders.orders LIMIT 200000) s;
ALTER TABLE bench.order_ids ADD PRIMARY KEY (n);
ANALYZE bench.order_ids;
EOF
  psql_q -c "SELECT count(*) FROM bench.order_ids"
}

# ---- the runs ------------------------------------------------------------------------------------
# Each round runs pgbench and then the server back to back, so each ratio compares two runs
# minutes apart; with BENCH_ROUNDS > 1 the summary reports medians.
run_order_workloads() {
  for ((round = 1; round <= ROUNDS; round++)); do
    run_pgbench "create_pgbench.$round" "$SCRIPT_DIR/create_order.pgbench"
    run_loadgen "create_server.$round" create_order
  done
  ORDER_COUNT="$(seed_order_ids)"
  ((ORDER_COUNT > 0)) || die "no orders stored to read"
  for ((round = 1; round <= ROUNDS; round++)); do
    run_pgbench "get_pgbench.$round" "$SCRIPT_DIR/get_order.pgbench" -D "order_count=${ORDER_COUNT}"
    run_loadgen "get_server.$round" get_order
  done
  GET_RATE="${BENCH_GET_RATE:-}"
  if [[ -n "$GET_RATE" ]]; then
    if [[ "$GET_RATE" == auto ]]; then
      GET_RATE="$(for ((round = 1; round <= ROUNDS; round++)); do echo "${R[get_server.$round.rps]}"; done |
        sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] / 2 }')"
    fi
    run_loadgen get_rate.1 get_order --rate="$GET_RATE"
  fi
}
GET_RATE=""
if wants create_order; then
  run_order_workloads
  ORDERS_COORDINATOR_NOTE="$COORDINATOR_NOTE"
fi

# ---- the PlaceOrder saga -------------------------------------------------------------------------
# pgbench's single order transaction is the ceiling; then whole sagas at each client count, with
# the database's own counters over each measured window:
#   transactions  pg_stat_database xact_commit + xact_rollback of this database, minus the
#                 client's waits (WaitWorkflow's autocommit reads: counted by pg_stat_statements,
#                 else estimated at 2 per call);
#   write tx      transaction ids assigned (pg_current_snapshot's xmax): transactions that wrote;
#   WAL flushes   pg_stat_wal.wal_sync (the whole cluster; 0 with fsync=off);
#   engine tx     with pg_stat_statements, calls of the engine's statements that are their own
#                 transaction (claim, step checkpoints, heartbeat, finish, ...); without it,
#                 transactions - BENCH_SAGA_BUSINESS_TX.
# Backends publish their statistics at most once a second while busy and up to 10 s after they
# go idle, so snapshots taken while the server runs would be off by seconds of work. Each point
# therefore runs on a freshly started server and the counters are read before it starts and
# after it stopped (its backends publish everything when they exit): they cover the whole run,
# warmup and the sagas finishing after the window included, and are divided by every saga the
# run finished (all_sagas); the same goes for pg_stat_statements. Throughput, latency and CPU
# are from the measured window only.
PGSS=0
PG_HAS_WAL_STATS=0

# "xacts wal_sync wal_write wal_records next_xid" now.
db_counters() {
  if ((PG_HAS_WAL_STATS)); then
    psql_q -F ' ' -c "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database
        WHERE datname = current_database()), w.wal_sync, w.wal_write, w.wal_records,
        pg_snapshot_xmax(pg_current_snapshot()) FROM pg_stat_wal w"
  else
    psql_q -F ' ' -c "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database
        WHERE datname = current_database()), 0, 0, 0, txid_snapshot_xmax(txid_current_snapshot())"
  fi
}

# Loads pg_stat_statements (a private cluster is restarted once with it preloaded).
enable_pgss() {
  [[ "${BENCH_PGSS:-1}" == 1 ]] || return 0
  if [[ -n "$PG_DIR" ]] &&
      [[ "$(psql_q -c 'SHOW shared_preload_libraries')" != *pg_stat_statements* ]]; then
    log "restarting the private PostgreSQL with pg_stat_statements"
    psql_q -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
    "${REPO_ROOT}/deploy/pg_local.sh" stop "$PG_DIR" >/dev/null 2>>"$WORK/pg_local.log" ||
      die "could not stop PostgreSQL (log: $WORK/pg_local.log)"
    DSN="$(PG_LOCAL_FAST="$PG_FAST" "${REPO_ROOT}/deploy/pg_local.sh" start "$PG_DIR" \
      2>>"$WORK/pg_local.log")" || { cat "$WORK/pg_local.log" >&2; die "could not restart PostgreSQL"; }
  fi
  if psql_q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 &&
      psql_q -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1; then
    PGSS=1
  else
    log "pg_stat_statements is not available: engine transactions derived from BENCH_SAGA_BUSINESS_TX"
  fi
}

pgss_reset() {
  if ((PGSS)); then psql_q -c "SELECT pg_stat_statements_reset()" >/dev/null; fi
}

# pgss_capture <file>: "calls<TAB>total_ms<TAB>query" of this database's statements.
pgss_capture() {
  : >"$1"
  ((PGSS)) || return 0
  psql_q -F $'\t' -c "SELECT calls, round(total_exec_time::numeric, 3),
      left(regexp_replace(query, '\s+', ' ', 'g'), 4000) FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_exec_time DESC" >"$1"
}

# The class of a statement (awk function source): engine = a saga-engine statement that is a
# transaction of its own; engine_in_tx = one the engine runs inside a step's own transaction
# (the local step's fence and checkpoint: saga.write_steps_at_pivot, or the older saga.fence_pivot
# and saga.write_steps_in_fence); poll = WaitWorkflow's reads (the workflow, skipped when the
# local engine runs it, then the workflow with its steps); business = the rest.
# shellcheck disable=SC2016  # awk source, not shell.
AWK_CLASS='
function class_of(q) {
  if (q ~ /^WITH o AS/ || q ~ /INSERT INTO orders\.orders/) return "business"
  if (q !~ /saga\.(workflows|steps|signals)/) return "business"
  if (q ~ /^UPDATE saga\.workflows SET updated_at = now\(\), past_pivot/) return "engine_in_tx"
  if (q ~ /^WITH f AS \(UPDATE saga\.workflows SET updated_at = now\(\), past_pivot = \$[0-9]+ WHERE/) return "engine_in_tx"
  if (q ~ /^WITH f AS \(SELECT \$1::text AS id/) return "engine_in_tx"
  if (q ~ /^SELECT cancel_requested/) return "engine_in_tx"
  if (q ~ /^SELECT w\.id, w\.type/ && q ~ /WHERE w\.id = \$1$/) return "poll"
  if (q ~ /^SELECT w\.id, w\.type/ && q ~ /LEFT JOIN saga\.steps/) return "poll"
  return "engine"
}'

# Calls of the engine's own-transaction statements in a pgss capture.
pgss_engine_calls() {
  awk -F '\t' "$AWK_CLASS"' { if (class_of($3) == "engine") n += $1 } END { print n + 0 }' "$1"
}

# Non-terminal workflows of the benchmark's orders (bench-* from load_generator, pgbench-* from
# create_order.pgbench) are deleted so the coordinator does not run them during the saga runs.
clean_bench_workflows() {
  local deleted others
  deleted="$(psql_q -c "WITH d AS (DELETE FROM saga.workflows w USING orders.orders o
      WHERE w.id = o.workflow_id AND w.status IN ('running', 'waiting', 'compensating')
        AND (o.request_id LIKE 'bench-%' OR o.request_id LIKE 'pgbench-%') RETURNING 1)
      SELECT count(*) FROM d")"
  others="$(psql_q -c "SELECT count(*) FROM saga.workflows
      WHERE status IN ('running', 'waiting', 'compensating')")"
  log "deleted ${deleted} unstarted workflows of benchmark orders"
  ((others == 0)) || log "warning: ${others} other workflows are runnable; they will run too"
}

# Deletes everything place_order_sql.pgbench wrote (orders with request ids pgbench-saga-*, their
# items, workflows and steps, reservations, payments and payment operations), so the saga runs
# start from the tables they had before it; only the products' stock counters keep its changes.
clean_saga_sql() {
  local deleted
  deleted="$(psql_q <<'EOF'
BEGIN;
CREATE TEMP TABLE saga_sql_orders ON COMMIT DROP AS
  SELECT id, id::text AS order_id, workflow_id FROM orders.orders
  WHERE request_id LIKE 'pgbench-saga-%';
DELETE FROM saga.workflows WHERE id IN (SELECT workflow_id FROM saga_sql_orders);
DELETE FROM payments.operations WHERE payment_id IN (SELECT id FROM payments.payments
  WHERE order_id IN (SELECT order_id FROM saga_sql_orders));
DELETE FROM payments.payments WHERE order_id IN (SELECT order_id FROM saga_sql_orders);
DELETE FROM inventory.reservations WHERE order_id IN (SELECT order_id FROM saga_sql_orders);
DELETE FROM orders.orders WHERE id IN (SELECT id FROM saga_sql_orders);
SELECT count(*) FROM saga_sql_orders;
COMMIT;
EOF
)"
  log "deleted the ${deleted} orders of place_order_sql.pgbench and everything they wrote"
}

# The saga SQL floor: place_order_sql.pgbench with no server running, at the saga ceiling's
# client count, its statements counted by pg_stat_statements; then its rows are deleted.
run_saga_sql() {
  if ((SAGA_SKUS < 3)); then
    log "saga_sql skipped: place_order_sql.pgbench needs 3 distinct SKUs (BENCH_SAGA_SKUS >= 3)"
    return 0
  fi
  # The same starting state as a saga point: vacuumed (the workflows create_order.pgbench left
  # and clean_bench_workflows deleted would otherwise be dead entries every claim walks past).
  vacuum_saga_tables
  COUNT_DB=1 PGSS_CAPTURE=1 SAGA_TABLES=1 RUN_CLIENTS="$SAGA_PGBENCH_CLIENTS" run_pgbench saga_sql \
    "$SCRIPT_DIR/place_order_sql.pgbench" -D skus="$SAGA_SKUS"
  clean_saga_sql
}

wait_sagas_idle() {
  local n=0
  for _ in $(seq 600); do
    n="$(psql_q -c "SELECT count(*) FROM saga.workflows
        WHERE status IN ('running', 'waiting', 'compensating')")"
    ((n == 0)) && return 0
    sleep 0.1
  done
  log "warning: ${n} workflows still not terminal after 60 s"
}

vacuum_saga_tables() {
  local tables
  tables="$(psql_q -c "SELECT string_agg(format('%I.%I', schemaname, relname), ', ')
      FROM pg_stat_user_tables WHERE schemaname IN ('orders', 'saga', 'inventory', 'payments')")"
  psql_q -c "VACUUM ANALYZE ${tables}" >/dev/null
}

prepare_saga_run() {
  wait_sagas_idle
  vacuum_saga_tables
  psql_q -c "CHECKPOINT" >/dev/null 2>&1 || true
}

wait_for_file() {  # wait_for_file <file> <pid>: until the file exists or the process is gone.
  while kill -0 "$2" 2>/dev/null && [[ ! -e "$1" ]]; do sleep 0.02; done
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

client_backends() {
  psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
      AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
}

# run_saga <case> <clients> <seconds>: load_generator --rpc=place_order on a server started for
# it; with case "soak", the server's RSS (and the sagas finished per second) are sampled every
# SOAK_INTERVAL seconds.
run_saga() {
  local name="$1" clients="$2" seconds="$3"
  prepare_saga_run
  local idle_backends
  idle_backends="$(client_backends)"
  start_server 1
  local db_before
  db_before="$(db_counters)"
  pgss_reset
  log "$name: load_generator --rpc=place_order, ${clients} clients, warmup ${WARMUP}s, then ${seconds}s"
  local start_marker="$WORK/$name.window" end_marker="$WORK/$name.window_end"
  # shellcheck disable=SC2086  # BENCH_LOADGEN_ARGS is a list of flags.
  "$LOADGEN_BIN" --target="127.0.0.1:${PORT}" --rpc=place_order --concurrency="$clients" \
    --duration="${seconds}s" --warmup="${WARMUP}s" --skus="$SAGA_SKUS" \
    --seed_products=false --window_file="$start_marker" --window_end_file="$end_marker" \
    ${BENCH_LOADGEN_ARGS:-} \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  wait_for_file "$start_marker" "$pid"
  local before after db_after rc=0
  before="$(snapshot)"
  if [[ "$name" == soak ]]; then
    : >"$WORK/soak.samples"
    local t0 next t
    t0="$(date +%s%N)"
    next=0
    while kill -0 "$pid" 2>/dev/null && [[ ! -e "$end_marker" ]]; do
      t=$((($(date +%s%N) - t0) / 1000000))
      if ((t >= next)); then
        echo "$((t / 1000)) $(rss_kb "$SERVER_PID") $(psql_q -c "SELECT count(*) FROM saga.workflows
            WHERE finished_at >= now() - make_interval(secs => ${SOAK_INTERVAL})")" \
          >>"$WORK/soak.samples"
        next=$((next + SOAK_INTERVAL * 1000))
      fi
      sleep 0.2
    done
    # The last sample at the end of the window.
    echo "$((($(date +%s%N) - t0) / 1000000000)) $(rss_kb "$SERVER_PID") $(psql_q -c "SELECT count(*)
        FROM saga.workflows WHERE finished_at >= now() - make_interval(secs => ${SOAK_INTERVAL})")" \
      >>"$WORK/soak.samples"
  else
    wait_for_file "$end_marker" "$pid"
  fi
  after="$(snapshot)"
  wait "$pid" || rc=$?
  local line
  line="$(grep '^rpc=' "$WORK/$name.out" || true)"
  if [[ -z "$line" || $rc -ne 0 ]]; then
    cat "$WORK/$name.out" "$WORK/$name.err" >&2
    tail -n 20 "$WORK/server.log" >&2
    die "$name: load_generator failed (exit $rc)"
  fi
  wait_sagas_idle
  stop_server
  for _ in $(seq 100); do (($(client_backends) <= idle_backends)) && break; sleep 0.1; done
  db_after="$(db_counters)"
  pgss_capture "$WORK/$name.pgss"
  local sagas
  sagas="$(kv "$line" sagas)"
  cpu_between "$before" "$after" "$sagas" "$(kv "$line" client_cpu_s)"
  R[$name.line]="$line"
  R[$name.db]="$db_before $db_after"
  R[$name.client_us]="$CPU_CLIENT_US"
  R[$name.server_us]="$CPU_SERVER_US"
  R[$name.pg_us]="$CPU_PG_US"
  R[$name.other]="$OTHER_PCT"
  R[$name.busy_us]="$CPU_BUSY_US"
}

run_saga_workloads() {
  stop_server  # The OrderService runs ran without the coordinator; it starts again below.
  if (($("$PSQL" -X -At "$DSN" -c 'SHOW server_version_num') >= 140000)); then PG_HAS_WAL_STATS=1; fi
  enable_pgss
  "$SERVER_BIN" migrate up --database_url="$DSN" >"$WORK/migrate.log" 2>&1 ||
    { cat "$WORK/migrate.log" >&2; die "order_platform migrate up failed"; }
  # The ceiling: pgbench with no server running, so no coordinator runs pgbench's workflows.
  clean_bench_workflows
  COUNT_DB=1 RUN_CLIENTS="$SAGA_PGBENCH_CLIENTS" run_pgbench saga_pgbench \
    "$SCRIPT_DIR/create_order.pgbench"
  clean_bench_workflows
  start_server 1
  SAGA_COORDINATOR_NOTE="$COORDINATOR_NOTE"
  log "seeding SKU-1..SKU-${SAGA_SKUS}"
  "$LOADGEN_BIN" --target="127.0.0.1:${PORT}" --rpc=place_order --seed_only --skus="$SAGA_SKUS" \
    >"$WORK/seed.out" 2>&1 || { cat "$WORK/seed.out" >&2; die "seeding products failed"; }
  stop_server
  # The second ceiling, on the seeded catalog, with no coordinator running.
  if ((SAGA_SQL)); then run_saga_sql; fi
  local c
  for c in $SAGA_CLIENTS; do run_saga "saga.$c" "$c" "$DURATION"; done
  if [[ -n "$SOAK" ]]; then run_saga soak "$SOAK_CLIENTS" "$SOAK"; fi
}

if wants place_order; then run_saga_workloads; fi
# ---- summary -------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# median <values...> ("-" when the values are "-")
median() {
  [[ "$1" == "-" ]] && { echo "-"; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# fmt <value> <decimals>: a number rounded for display ("-" stays "-").
fmt() {
  if [[ "$1" == "-" ]]; then echo "-"; else awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; fi
}

declare -A M
TARGETS_OK=1
orders_summary() {
  # M[<case>.<field>]: the median over rounds.
  for name in create_pgbench create_server get_pgbench get_server; do
    for field in rps p50 p99 p999 errors client_us server_us pg_us other; do
      values=()
      for ((round = 1; round <= ROUNDS; round++)); do values+=("${R[$name.$round.$field]}"); done
      M[$name.$field]="$(median "${values[@]}")"
    done
  done

  # Per-round server/pgbench throughput ratios and their median.
  round_ratios() {
    local workload="$1" round out=""
    for ((round = 1; round <= ROUNDS; round++)); do
      out+="$(ratio "${R[${workload}_server.$round.rps]}" "${R[${workload}_pgbench.$round.rps]}") "
    done
    echo "${out% }"
  }
  CREATE_RATIOS="$(round_ratios create)"
  GET_RATIOS="$(round_ratios get)"
  # shellcheck disable=SC2086  # Word-split the lists on purpose.
  CREATE_RATIO="$(fmt "$(median $CREATE_RATIOS)" 2)"
  # shellcheck disable=SC2086
  GET_RATIO="$(fmt "$(median $GET_RATIOS)" 2)"
  CREATE_OK="$(awk -v r="$CREATE_RATIO" 'BEGIN { print ((r >= 0.70) ? "PASS" : "FAIL") }')"
  GET_OK="$(awk -v p="${M[get_server.p99]}" 'BEGIN { print ((p < 5.0) ? "PASS" : "FAIL") }')"

  # What the ratio would be if only CPU mattered: pgbench's CPU per request over the server's,
  # with and without the load drivers' own CPU (which share the same cores here).
  cpu_ratio() {
    local w="$1"
    awk -v pc="${M[${w}_pgbench.client_us]}" -v pp="${M[${w}_pgbench.pg_us]}" \
      -v sc="${M[${w}_server.client_us]}" -v ss="${M[${w}_server.server_us]}" \
      -v sp="${M[${w}_server.pg_us]}" 'BEGIN {
        printf "pgbench %d us (client %d + pg %d) vs server path %d us (client %d + server %d + pg %d)",
               pc + pp, pc, pp, sc + ss + sp, sc, ss, sp
        printf "; CPU ratio %.2f, %.2f without the clients", (pc + pp) / (sc + ss + sp), pp / (ss + sp)
      }'
  }

  if ((ROUNDS > 1)); then ROUNDS_NOTE=", median of ${ROUNDS} rounds"; else ROUNDS_NOTE=""; fi
  echo
  echo "== order_platform benchmark: ${CLIENTS} clients, ${DURATION}s measured after ${WARMUP}s" \
    "warmup${ROUNDS_NOTE}, server pool ${POOL_SIZE}${ORDERS_COORDINATOR_NOTE}," \
    "PostgreSQL $("$PSQL" -X -At "$DSN" -c 'SHOW server_version' | cut -d' ' -f1) (${PG_MODE})," \
    "$(nproc) CPUs"
  printf '%-13s %-8s %10s %8s %8s %8s %7s | %9s %9s %9s | %6s\n' \
    workload driver "req/s" p50_ms p99_ms p999_ms errors "client_us" "server_us" "pg_us" "other%"
  for name in create_pgbench create_server get_pgbench get_server; do
    printf '%-13s %-8s %10.1f %8.3f %8.3f %8.3f %7s | %9s %9s %9s | %6s\n' \
      "${name%_*}_order" "${name#*_}" "${M[$name.rps]}" "${M[$name.p50]}" "${M[$name.p99]}" \
      "${M[$name.p999]}" "$(fmt "${M[$name.errors]}" 0)" "$(fmt "${M[$name.client_us]}" 0)" \
      "$(fmt "${M[$name.server_us]}" 0)" "$(fmt "${M[$name.pg_us]}" 0)" "$(fmt "${M[$name.other]}" 0)"
  done
  echo "(*_us: CPU microseconds per request used by the load driver, the server and PostgreSQL;" \
    "other%: CPU used by other processes during the run, % of the whole machine)"
  echo
  if ((ROUNDS > 1)); then
    echo "create_order  server/pgbench throughput per round: ${CREATE_RATIOS}"
    echo "get_order     server/pgbench throughput per round: ${GET_RATIOS}"
  fi
  echo "create_order  server/pgbench throughput ${CREATE_RATIO}  (target >= 0.70)  ${CREATE_OK}"
  echo "get_order     server/pgbench throughput ${GET_RATIO}; server p99 $(fmt "${M[get_server.p99]}" 2) ms" \
    " (target < 5 ms)  ${GET_OK}"
  if [[ -n "$GET_RATE" ]]; then
    echo "get_order     open loop at ${GET_RATE} req/s: p50 ${R[get_rate.1.p50]} ms, p99" \
      "${R[get_rate.1.p99]} ms, p99.9 ${R[get_rate.1.p999]} ms, ${R[get_rate.1.errors]} errors"
  fi
  if [[ -n "$PG_DIR" ]]; then
    echo "create_order  CPU/request: $(cpu_ratio create)"
    echo "get_order     CPU/request: $(cpu_ratio get)"
  fi
  [[ "$CREATE_OK" == PASS && "$GET_OK" == PASS ]] || TARGETS_OK=0
}
if wants create_order; then orders_summary; fi

# saga_derived <case> <count>: "tx wtx wal" per unit from R[<case>.db] ("-" without WAL stats),
# with SAGA_POLL_TX transactions of the client's waits subtracted.
saga_derived() {
  local -a d
  read -r -a d <<<"${R[$1.db]}"
  awk -v n="$2" -v polls="${SAGA_POLL_TX:-0}" -v walstats="$PG_HAS_WAL_STATS" \
    -v x0="${d[0]}" -v s0="${d[1]}" -v i0="${d[4]}" -v x1="${d[5]}" -v s1="${d[6]}" \
    -v i1="${d[9]}" 'BEGIN {
      if (n < 1) n = 1
      printf "%.2f %.2f %s", (x1 - x0 - polls) / n, (i1 - i0) / n,
             (walstats ? sprintf("%.2f", (s1 - s0) / n) : "-")
    }'
}

# saga_costs <case>...: each case's busy machine CPU per saga in create_order.pgbench transactions
# (its busy CPU per transaction), split into PostgreSQL, server, client and the rest of the machine
# (kernel threads, interrupts, neighbours); saga_sql first when it ran.
saga_costs() {
  local tx_busy="${R[saga_pgbench.busy_us]:-0}" name out="" sep=""
  local -a names=()
  [[ -z "${R[saga_sql.rps]:-}" ]] || names+=(saga_sql)
  for name in "$@"; do [[ "$name" == soak ]] || names+=("$name"); done
  for name in "${names[@]}"; do
    local label="$name"
    [[ "$name" == saga_sql ]] || label="$(kv "${R[$name.line]}" concurrency) clients"
    out+="${sep}$(awk -v t="$tx_busy" -v b="${R[$name.busy_us]:-0}" -v p="${R[$name.pg_us]:-0}" \
      -v s="${R[$name.server_us]:-0}" -v c="${R[$name.client_us]:-0}" -v l="$label" 'BEGIN {
        if (t <= 0) { printf "%s -", l; exit }
        r = b - p - s - c; if (r < 0) r = 0
        printf "%s %.1f (PostgreSQL %.1f, server %.1f, client %.1f, rest %.1f)", l, b / t, p / t,
               s / t, c / t, r / t
      }')"
    sep="; "
  done
  echo "$out"
}

saga_summary() {
  local pg_tps="${R[saga_pgbench.rps]}" c name line sagas polls
  local -a pgd
  read -r -a pgd <<<"$(SAGA_POLL_TX=0 saga_derived saga_pgbench "${R[saga_pgbench.processed]}")"
  echo
  echo "== PlaceOrder saga benchmark: ${DURATION}s measured after ${WARMUP}s warmup per point," \
    "server pool ${POOL_SIZE}${SAGA_COORDINATOR_NOTE}, ${SAGA_SKUS} SKUs," \
    "PostgreSQL $("$PSQL" -X -At "$DSN" -c 'SHOW server_version' | cut -d' ' -f1) (${PG_MODE})," \
    "pg_stat_statements $( ((PGSS)) && echo on || echo off), $(nproc) CPUs"
  printf '%-8s %7s %9s %8s %8s %8s %6s | %7s %7s %7s %8s %6s | %9s %9s %9s | %6s | %6s\n' \
    driver clients "per_s" p50_ms p99_ms p999_ms errors "tx/saga" "wtx" "walfl" "eng/step" \
    "polls" client_us server_us pg_us "other%" ratio
  printf '%-8s %7s %9.1f %8.3f %8.3f %8.3f %6s | %7s %7s %7s %8s %6s | %9s %9s %9s | %6s | %6s\n' \
    pgbench "$SAGA_PGBENCH_CLIENTS" "$pg_tps" "${R[saga_pgbench.p50]}" "${R[saga_pgbench.p99]}" \
    "${R[saga_pgbench.p999]}" "${R[saga_pgbench.errors]}" "${pgd[0]}" "${pgd[1]}" "${pgd[2]}" - - \
    "$(fmt "${R[saga_pgbench.client_us]}" 0)" "$(fmt "${R[saga_pgbench.server_us]}" 0)" \
    "$(fmt "${R[saga_pgbench.pg_us]}" 0)" "$(fmt "${R[saga_pgbench.other]}" 0)" -
  # The saga SQL floor: per pgbench transaction, one saga's statements (place_order_sql.pgbench).
  local sql_tps="${R[saga_sql.rps]:-}"
  if [[ -n "$sql_tps" ]]; then
    local sql_n="${R[saga_sql.processed]}" sql_polls sql_eng="-"
    sql_polls=$((1 * sql_n))  # Its WaitWorkflow read, as for the saga rows.
    if ((PGSS)) && [[ -f "$WORK/saga_sql.pgss" ]]; then
      sql_polls="$(awk -F '\t' "$AWK_CLASS"' { if (class_of($3) == "poll") n += $1 }
        END { print n + 0 }' "$WORK/saga_sql.pgss")"
      sql_eng="$(awk -v e="$(pgss_engine_calls "$WORK/saga_sql.pgss")" -v n="$sql_n" \
        -v s="$SAGA_STEPS" 'BEGIN { printf "%.2f", e / (n > 0 ? n : 1) / s }')"
    fi
    local -a sqld
    read -r -a sqld <<<"$(SAGA_POLL_TX="$sql_polls" saga_derived saga_sql "$sql_n")"
    printf '%-8s %7s %9.1f %8.3f %8.3f %8.3f %6s | %7s %7s %7s %8s %6s | %9s %9s %9s | %6s | %6s\n' \
      saga_sql "$SAGA_PGBENCH_CLIENTS" "$sql_tps" "${R[saga_sql.p50]}" "${R[saga_sql.p99]}" \
      "${R[saga_sql.p999]}" "${R[saga_sql.errors]}" "${sqld[0]}" "${sqld[1]}" "${sqld[2]}" \
      "$sql_eng" - "$(fmt "${R[saga_sql.client_us]}" 0)" "$(fmt "${R[saga_sql.server_us]}" 0)" \
      "$(fmt "${R[saga_sql.pg_us]}" 0)" "$(fmt "${R[saga_sql.other]}" 0)" \
      "$(ratio "$sql_tps" "$pg_tps")"
  fi
  local ratio_notes="" floor_notes="" eng_notes="" biz_notes="" stage_notes="" saga_ok=1 eng_ok=1
  local last=""
  local cases=()
  for c in $SAGA_CLIENTS; do cases+=("saga.$c"); done
  [[ -z "$SOAK" ]] || cases+=(soak)
  for name in "${cases[@]}"; do
    line="${R[$name.line]}"
    sagas="$(kv "$line" all_sagas)"  # The database counters cover the whole run.
    polls="$(kv "$line" all_polls)"
    c="$(kv "$line" concurrency)"
    # The waits' reads: counted when pg_stat_statements ran, else about 2 per WaitWorkflow call.
    local poll_tx=$((1 * polls))  # Without pg_stat_statements: one read per wait (the answer).
    if ((PGSS)) && [[ -f "$WORK/$name.pgss" ]]; then
      poll_tx="$(awk -F '\t' "$AWK_CLASS"' { if (class_of($3) == "poll") n += $1 }
        END { print n + 0 }' "$WORK/$name.pgss")"
    fi
    local -a d
    read -r -a d <<<"$(SAGA_POLL_TX="$poll_tx" saga_derived "$name" "$sagas")"
    local engine eng_step biz ratio_v
    if ((PGSS)); then
      engine="$(awk -v e="$(pgss_engine_calls "$WORK/$name.pgss")" -v n="$sagas" \
        'BEGIN { printf "%.2f", e / (n > 0 ? n : 1) }')"
    else
      engine="$(awk -v t="${d[0]}" -v b="$SAGA_BUSINESS_TX" 'BEGIN { printf "%.2f", t - b }')"
    fi
    eng_step="$(awk -v e="$engine" -v s="$SAGA_STEPS" 'BEGIN { printf "%.2f", e / s }')"
    biz="$(awk -v t="${d[0]}" -v e="$engine" 'BEGIN { printf "%.2f", t - e }')"
    ratio_v="$(ratio "$(kv "$line" throughput_rps)" "$pg_tps")"
    local label=saga
    [[ "$name" == soak ]] && label=soak
    printf '%-8s %7s %9.1f %8.3f %8.3f %8.3f %6s | %7s %7s %7s %8s %6s | %9s %9s %9s | %6s | %6s\n' \
      "$label" "$c" "$(kv "$line" throughput_rps)" "$(kv "$line" p50_ms)" "$(kv "$line" p99_ms)" \
      "$(kv "$line" p999_ms)" "$(kv "$line" errors)" "${d[0]}" "${d[1]}" "${d[2]}" "$eng_step" \
      "$(kv "$line" polls_per_saga)" "$(fmt "${R[$name.client_us]}" 0)" \
      "$(fmt "${R[$name.server_us]}" 0)" "$(fmt "${R[$name.pg_us]}" 0)" \
      "$(fmt "${R[$name.other]}" 0)" "$ratio_v"
    [[ "$name" == soak ]] && continue
    last="$name"
    local verdict=""
    if ((c == 8 || c == 32)); then
      verdict="$(awk -v r="$ratio_v" 'BEGIN { print ((r >= 0.15) ? "PASS" : "FAIL") }')"
      [[ "$verdict" == PASS ]] || saga_ok=0
      verdict=" ${verdict}"
    fi
    ratio_notes+="; ${c} clients ${ratio_v}${verdict}"
    [[ -z "$sql_tps" ]] || floor_notes+="; ${c} clients $(ratio "$(kv "$line" throughput_rps)" "$sql_tps")"
    local ev
    ev="$(awk -v e="$eng_step" 'BEGIN { print ((e <= 2.0) ? "PASS" : "FAIL") }')"
    [[ "$ev" == PASS ]] || eng_ok=0
    eng_notes+="; ${c} clients ${engine} tx/saga = ${eng_step}/step ${ev}"
    biz_notes+="; ${c} clients ${biz}"
    stage_notes+="$(awk -v c="$c" '{
        out = ""
        for (i = 1; i <= NF; i++) if ($i ~ /^step_.*_p50_ms=/) {
          split($i, kv, "="); k = kv[1]; sub(/^step_/, "", k); sub(/_p50_ms$/, "", k)
          out = out sprintf(" %s %.1f", k, kv[2])
        }
        printf "\n  %2d clients:%s | CreateOrder call %.1f, noticed %.1f after the end", c, out,
               0 + substr($0, index($0, "create_p50_ms=") + 14), 0 + substr($0, index($0, "detect_ms=") + 10)
      }' <<<"$line")"
  done
  echo "(per_s: TPS for pgbench (create_order.pgbench, one order transaction) and saga_sql" \
    "(place_order_sql.pgbench, one saga's SQL per transaction, no server), COMPLETED sagas/s for the" \
    "saga rows; p*_ms: one transaction, or CreateOrder sent -> workflow end_time; tx:" \
    "pg_stat_database transactions per order transaction / per saga, the client's WaitWorkflow reads" \
    "excluded; wtx: of them, transactions that wrote" \
    "(xids); walfl: WAL flushes (pg_stat_wal.wal_sync); eng/step: engine transactions per step" \
    "(${SAGA_STEPS} steps); tx, wtx, walfl and eng over the whole run per saga it finished" \
    "(pgbench rows: over the measured run);" \
    "polls: WaitWorkflow calls per saga; *_us: CPU per transaction / per saga in the window;" \
    "other%: CPU of other processes; ratio: sagas/s (saga_sql: its TPS) / pgbench TPS)"
  if [[ -n "$last" ]]; then
    echo
    echo "sagas/s / pgbench TPS (target >= 0.15 at 8 and 32 clients)${ratio_notes}"
    echo "machine CPU per saga, in order transactions (the whole machine's busy CPU per saga over" \
      "pgbench's per create_order transaction; while both runs keep the cores busy the ratio is" \
      "about 1 / this, so 0.15 needs at most 6.7): $(saga_costs "${cases[@]}")"
    if [[ -n "$sql_tps" ]]; then
      echo "sagas/s / saga SQL floor TPS (informational: the share of the rate PostgreSQL alone" \
        "reaches with one saga's statements that the platform keeps)${floor_notes}"
    fi
    echo "engine overhead, $( ((PGSS)) && echo "pg_stat_statements: calls of the engine's own-transaction statements" ||
      echo "tx/saga - ${SAGA_BUSINESS_TX} business") (target <= 2 per step)${eng_notes}"
    echo "business tx/saga (tx/saga - engine; ${SAGA_BUSINESS_TX} expected: CreateOrder 1, ReserveStock 1," \
      "AuthorizePayment 2, confirm_order 1, CapturePayment 2, CommitReservation 1)${biz_notes}"
    echo "latency p50 by stage, ms (gaps between the workflow's recorded timestamps):${stage_notes}"
    if ((PGSS)); then
      local cls_notes=""
      for name in "${cases[@]}"; do
        [[ "$name" == soak ]] && continue
        cls_notes+="$(awk -F '\t' -v n="$(kv "${R[$name.line]}" all_sagas)" \
          -v polls="$(kv "${R[$name.line]}" all_polls)" -v c="${name#saga.}" "$AWK_CLASS"'
          { calls[class_of($3)] += $1 }
          END {
            if (n < 1) n = 1
            printf "\n  %2d clients: engine %.2f, engine_in_tx %.2f, poll %.2f (%.2f waits), business %.2f",
                   c, calls["engine"] / n, calls["engine_in_tx"] / n, calls["poll"] / n,
                   polls / n, calls["business"] / n
          }' "$WORK/$name.pgss")"
      done
      if [[ -n "$sql_tps" && -f "$WORK/saga_sql.pgss" ]]; then
        cls_notes+="$(awk -F '\t' -v n="${R[saga_sql.processed]}" "$AWK_CLASS"'
          { calls[class_of($3)] += $1 }
          END {
            if (n < 1) n = 1
            printf "\n  saga_sql:   engine %.2f, engine_in_tx %.2f, poll %.2f, business %.2f" \
                   " (pgbench prepares BEGIN and COMMIT: counted once per connection)",
                   calls["engine"] / n, calls["engine_in_tx"] / n, calls["poll"] / n,
                   calls["business"] / n
          }' "$WORK/saga_sql.pgss")"
      fi
      echo "pg_stat_statements calls per saga by class (engine: own transactions; engine_in_tx: inside" \
        "the local step's transaction; business includes BEGIN/COMMIT):${cls_notes}"
    fi
  fi
  if ((PGSS)) && [[ -n "$last" ]]; then
    local n
    n="$(kv "${R[$last.line]}" all_sagas)"
    echo
    echo "top statements by execution time, ${last#saga.} clients (pg_stat_statements over the whole run):"
    printf '  %10s %8s %6s  %-12s %s\n' calls/saga mean_ms time% class statement
    awk -F '\t' -v n="$n" "$AWK_CLASS"'
      { calls[NR] = $1; ms[NR] = $2; q[NR] = $3; total += $2 }
      END {
        for (i = 1; i <= NR && i <= 15; i++)
          printf "  %10.2f %8.3f %6.1f  %-12s %s\n", calls[i] / (n > 0 ? n : 1),
                 (calls[i] > 0 ? ms[i] / calls[i] : 0), (total > 0 ? 100 * ms[i] / total : 0),
                 class_of(q[i]), substr(q[i], 1, 110)
      }' "$WORK/$last.pgss"
  fi
  if [[ -n "$SOAK" ]]; then
    local soak_line
    soak_line="$(awk -v allowed="${BENCH_SOAK_MAX_GROWTH_MB:-}" '
      function fit(from,   i, n, sx, sy, sxx, sxy) {
        n = 0; sx = sy = sxx = sxy = 0
        for (i = 1; i <= N; i++) if (t[i] >= from) { n++; sx += t[i]; sy += m[i]; sxx += t[i] * t[i]; sxy += t[i] * m[i] }
        if (n < 2 || n * sxx == sx * sx) return 0
        return (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60   # MB per minute
      }
      { N++; t[N] = $1; m[N] = $2 / 1024; r[N] = $3; if (m[N] > max) max = m[N] }
      END {
        all = fit(0); late = fit(60); if (t[N] < 120) late = all
        from = (t[N] >= 120 ? 60 : 0)
        growth = late * (t[N] - from) / 60
        if (allowed == "") { allowed = m[1] * 0.02; if (allowed < 4) allowed = 4 }
        printf "server RSS first %.1f MB, last %.1f MB, max %.1f MB; slope %.2f MB/min overall," \
               " %.2f MB/min from %d s on -> growth %.1f MB (allowed %.1f MB) %s\n",
               m[1], m[N], max, all, late, from, growth, allowed, (growth <= allowed ? "PASS" : "FAIL")
        printf "samples (s, RSS MB, sagas finished in the previous interval /s):"
        for (i = 1; i <= N; i++) printf " %d:%.1f:%.0f", t[i], m[i], r[i] / '"$SOAK_INTERVAL"'
        printf "\n"
      }' "$WORK/soak.samples")"
    echo
    echo "soak, ${SOAK_CLIENTS} clients for ${SOAK} s: $(kv "${R[soak.line]}" throughput_rps) sagas/s," \
      "p50 $(kv "${R[soak.line]}" p50_ms) ms, p99 $(kv "${R[soak.line]}" p99_ms) ms," \
      "$(kv "${R[soak.line]}" errors) errors; ${soak_line}"
    [[ "$soak_line" == *PASS* ]] || saga_ok=0
  fi
  ((saga_ok && eng_ok)) || TARGETS_OK=0
}
if wants place_order; then saga_summary; fi
if ((CHECK_TARGETS)); then
  ((TARGETS_OK)) || exit 1
else
  echo "(targets not enforced: --skip-target-check)"
fi
