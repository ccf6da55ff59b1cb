#!/usr/bin/env bash
# Benchmarks OrderService against the raw PostgreSQL ceiling, measured in the same run:
#
#   tests/bench/run_bench.sh [--skip-target-check] [BUILD_DIR]
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

PORT="$(free_port)"
SERVER_FLAGS=(serve --listen="127.0.0.1:${PORT}" --database_url="$DSN" --auto_migrate
  --pool_size="$POOL_SIZE")
SERVER_HELP="$("$SERVER_BIN" --helpfull 2>&1 || true)"
# Metrics on a free local port (the default 0.0.0.0:9464 may be taken by another server).
if grep -q -- '-metrics_listen' <<<"$SERVER_HELP"; then
  SERVER_FLAGS+=(--metrics_listen="127.0.0.1:$(free_port)")
fi
# Without the coordinator, CreateOrder is its one statement (order, items and workflow row), the
# same work as create_order.pgbench; with it, every order's saga also runs on the same cores.
COORDINATOR_NOTE=""
if grep -q -- '-coordinator ' <<<"$SERVER_HELP"; then
  if [[ "${BENCH_COORDINATOR:-0}" == 1 ]]; then
    SERVER_FLAGS+=(--coordinator=true)
    COORDINATOR_NOTE=", saga coordinator ON"
  else
    SERVER_FLAGS+=(--coordinator=false)
    COORDINATOR_NOTE=", saga coordinator off"
  fi
fi
# shellcheck disable=SC2086  # BENCH_SERVER_ARGS is a list of flags.
"$SERVER_BIN" "${SERVER_FLAGS[@]}" ${BENCH_SERVER_ARGS:-} >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/server.log" >&2; die "server exited"; }
  (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null && break
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null || die "server not listening on port $PORT"

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
# CPU_PG_US (per request) and OTHER_PCT: CPU used by processes other than these three, as a
# percentage of the whole machine (all CPUs) -- the noise from neighbours during the run.
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
      printf "%.0f %.0f %.0f %.0f", client_s * 1e6 / n, server * 1e6 / hz / n,
             pg * 1e6 / hz / n, (total > 0 ? 100 * other / total : 0)
    }')"
  CPU_CLIENT_US="${v[0]}"
  CPU_SERVER_US="${v[1]}"
  CPU_PG_US="${v[2]}"
  OTHER_PCT="${v[3]}"
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
  local -a args=(-n -M prepared -c "$CLIENTS" -j "${BENCH_PGBENCH_JOBS:-2}" -f "$script" "$@")
  log "$name: pgbench warmup ${WARMUP}s, then ${DURATION}s"
  if ((WARMUP > 0)); then
    "$PGBENCH" "${args[@]}" -T "$WARMUP" "$DSN" >"$WORK/$name.warmup.out" 2>&1 ||
      { cat "$WORK/$name.warmup.out" >&2; die "$name: pgbench warmup failed"; }
  fi
  prepare_run
  mkdir -p "$WORK/$name.logs"
  local before after times
  before="$(snapshot)"
  if ! { TIMEFORMAT='%3U %3S'; time (cd "$WORK/$name.logs" &&
        "$PGBENCH" "${args[@]}" -T "$DURATION" -l --log-prefix=tx "$DSN" \
        >"$WORK/$name.out" 2>&1); } 2>"$WORK/$name.time"; then
    cat "$WORK/$name.out" >&2
    die "$name: pgbench failed"
  fi
  sleep 0.5  # Let the benchmark's backends exit and be reaped, so their CPU is counted.
  after="$(snapshot)"
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
  R[$name.errors]="${failed:-0}"
  R[$name.client_us]="$CPU_CLIENT_US"
  R[$name.server_us]="$CPU_SERVER_US"  # Idle unless the coordinator runs sagas meanwhile.
  R[$name.pg_us]="$CPU_PG_US"
  R[$name.other]="$OTHER_PCT"
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

# M[<case>.<field>]: the median over rounds.
declare -A M
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
  "warmup${ROUNDS_NOTE}, server pool ${POOL_SIZE}${COORDINATOR_NOTE}," \
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

if ((CHECK_TARGETS)); then
  [[ "$CREATE_OK" == PASS && "$GET_OK" == PASS ]] || exit 1
else
  echo "(targets not enforced: --skip-target-check)"
fi
