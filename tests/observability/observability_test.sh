#!/usr/bin/env bash
# Proves the Grafana dashboards (deploy/grafana/dashboards/) and the Prometheus rules
# (deploy/prometheus/rules/) against the real server and a real Prometheus:
#
#   1. promtool check rules (every rule file), promtool test rules (rules/tests/*.yml: synthetic
#      series, each alert firing and not firing), promtool check config (the deploy config and
#      the one generated here), and the dashboards' structure (check_prometheus.py static).
#   2. A private PostgreSQL (deploy/pg_local.sh, PG_LOCAL_FAST=1), the server on loopback with
#      --auto_migrate --workflow_lease=2s, and Prometheus (/usr/bin/prometheus) on loopback
#      scraping it every second and evaluating the real rule files every second.
#   3. drive_load.py drives a small load over gRPC that ends in every saga outcome (completed,
#      failed, compensated, cancelled, needs_attention, a completed refund and a retrying one),
#      plus client errors and a database connection blip.
#   4. promtool check metrics on a scrape; then check_prometheus.py live evaluates every panel
#      query, variable query, recording rule and alert expression through Prometheus' HTTP API
#      and fails on any error or empty result (how alert thresholds are neutralised: see there).
#
# Usage: observability_test.sh <path to order_platform> <path to order_platform_cli>
# Needs: prometheus + promtool (Debian package prometheus), /usr/bin/python3 with grpc and
# grpc_tools (python3-grpcio, python3-grpc-tools), PostgreSQL (deploy/install-deps.sh installs
# all of them). Takes about a minute; everything it starts is stopped on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
[[ $# -eq 2 ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
server_bin="$(realpath "$1")"
cli_bin="$(realpath "$2")"
python=/usr/bin/python3
rules_dir="$repo/deploy/prometheus/rules"
dashboards_dir="$repo/deploy/grafana/dashboards"

log() { echo "observability_test: $*"; }
die() { echo "observability_test: FAIL: $*" >&2; exit 1; }

for tool in prometheus promtool; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian package prometheus; deploy/install-deps.sh)"
done
"$python" -c 'import grpc, grpc_tools.protoc' 2>/dev/null ||
  die "$python cannot import grpc / grpc_tools (python3-grpcio, python3-grpc-tools)"
[[ -x "$server_bin" ]] || die "not executable: $server_bin"
[[ -x "$cli_bin" ]] || die "not executable: $cli_bin"
psql_bin=""
for d in "${PG_LOCAL_BINDIR:-}" /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [[ -n "$d" && -x "$d/psql" ]]; then psql_bin="$d/psql"; break; fi
done
[[ -n "$psql_bin" ]] || die "no psql under /usr/lib/postgresql/*/bin"

# PostgreSQL drops root privileges to an unprivileged user, who must reach the data dir: /tmp
# (Bazel's TEST_TMPDIR lives under /root, 0700).
work="$(mktemp -d /tmp/observability_test.XXXXXX)"
chmod 0755 "$work"
server_pid=""
prometheus_pid=""
pg_started=0
status=1

stop_pid() {  # pid: SIGTERM, up to 10 s, then SIGKILL.
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  status=$?
  set +e
  if [[ $status -ne 0 ]]; then
    for f in server.log prometheus.log; do
      if [[ -s "$work/$f" ]]; then
        echo "---- last lines of $f ----"
        tail -n 40 "$work/$f"
      fi
    done
  fi
  stop_pid "$server_pid"
  stop_pid "$prometheus_pid"
  if [[ $pg_started -eq 1 ]]; then
    "$repo/deploy/pg_local.sh" stop "$work/pg" --immediate >/dev/null 2>&1
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- 1. static checks -----------------------------------------------------------------------
log "promtool check rules"
shopt -s nullglob
rule_files=("$rules_dir"/*.yml "$rules_dir"/*.yaml)
rule_tests=("$rules_dir"/tests/*.yml "$rules_dir"/tests/*.yaml)
shopt -u nullglob
[[ ${#rule_files[@]} -gt 0 ]] || die "no rule files in $rules_dir"
promtool check rules "${rule_files[@]}"
log "promtool test rules"
[[ ${#rule_tests[@]} -gt 0 ]] || die "no rule unit tests in $rules_dir/tests"
promtool test rules "${rule_tests[@]}"
if [[ -f "$repo/deploy/prometheus/prometheus.yml" ]]; then
  log "promtool check config deploy/prometheus/prometheus.yml"
  promtool check config "$repo/deploy/prometheus/prometheus.yml"
fi
log "dashboards: structure"
"$python" "$here/check_prometheus.py" static "$dashboards_dir"

# ---- 2. PostgreSQL, server, Prometheus --------------------------------------------------------
log "starting PostgreSQL"
pg_started=1
dsn="$(PG_LOCAL_FAST=1 PG_LOCAL_DB=observability "$repo/deploy/pg_local.sh" start "$work/pg" 2>"$work/pg_local.log")" ||
  { cat "$work/pg_local.log" >&2; die "pg_local.sh start failed"; }

grpc_port="$(free_port)"
metrics_port="$(free_port)"
prometheus_port="$(free_port)"
log "starting the server (gRPC 127.0.0.1:$grpc_port, metrics 127.0.0.1:$metrics_port)"
"$server_bin" serve --database_url="$dsn" --auto_migrate --listen="127.0.0.1:$grpc_port" \
  --metrics_listen="127.0.0.1:$metrics_port" --workflow_lease=2s --shutdown_grace=2s \
  >"$work/server.log" 2>&1 &
server_pid=$!

# Every rule file Prometheus would load from deploy/ (same globs as deploy/prometheus/prometheus.yml).
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules_dir/*.yml
  - $rules_dir/*.yaml
scrape_configs:
  - job_name: order_platform
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
log "promtool check config (generated)"
promtool check config "$work/prometheus.yml"
log "starting Prometheus on 127.0.0.1:$prometheus_port"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn \
  >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
prom="http://127.0.0.1:$prometheus_port"

# gRPC stubs for the load driver (order_platform/* only: a generated grpc/ package would shadow
# the grpc module).
mkdir -p "$work/stubs"
wkt="$("$python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
(cd "$repo/proto" && "$python" -m grpc_tools.protoc -I. -I"$wkt" --python_out="$work/stubs" \
  --grpc_python_out="$work/stubs" $(find order_platform -name '*.proto' | sort))

"$cli_bin" --target="127.0.0.1:$grpc_port" health --wait=30s >/dev/null ||
  die "the server did not become SERVING"
for i in $(seq 150); do
  if "$python" -c "import urllib.request, sys; urllib.request.urlopen('$prom/-/ready', timeout=2)" 2>/dev/null; then
    break
  fi
  kill -0 "$prometheus_pid" 2>/dev/null || die "Prometheus exited"
  [[ $i -lt 150 ]] || die "Prometheus not ready after 30 s"
  sleep 0.2
done

# ---- 3. load ----------------------------------------------------------------------------------
log "driving the load (about 35 s)"
timeout 120 "$python" "$here/drive_load.py" "127.0.0.1:$grpc_port" "$work/stubs" "$dsn" "$psql_bin" ||
  die "the load did not end in every expected outcome"
load_end="$(date +%s.%N)"

# ---- 4. checks against the scrape and Prometheus ------------------------------------------------
log "promtool check metrics"
"$python" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$metrics_port/metrics', timeout=10).read().decode(), end='')" \
  >"$work/scrape.txt"
promtool check metrics <"$work/scrape.txt" || die "promtool check metrics rejected the scrape"

log "evaluating every panel query and rule expression through $prom/api/v1/query"
"$python" "$here/check_prometheus.py" live "$prom" "$dashboards_dir" "$load_end"
log "PASS"
