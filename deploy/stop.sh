#!/usr/bin/env bash
# Stops what deploy/run.sh started: the server (gracefully) and the private PostgreSQL.
#
#   deploy/stop.sh [--clean]     --clean also deletes the private cluster and logs
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
state_dir="${ORDER_PLATFORM_STATE_DIR:-/tmp/order_platform-$(id -u)}"

if [[ -f "$state_dir/server.pid" ]]; then
  pid="$(cat "$state_dir/server.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    echo "stopping the server (pid $pid)" >&2
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$state_dir/server.pid"
fi
if [[ -d "$state_dir/pg" ]]; then
  "$repo/deploy/pg_local.sh" stop "$state_dir/pg" || true
fi
if [[ "${1:-}" == "--clean" ]]; then
  rm -rf "$state_dir"
  echo "removed $state_dir" >&2
fi
