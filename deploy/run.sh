#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, starts a private PostgreSQL (unless
# ORDER_PLATFORM_DATABASE_URL is set), applies migrations, starts the server with every service,
# seeds demo products, places a demo order and prints how to call the API. Then it stays in the
# foreground showing the server log until Ctrl-C (graceful shutdown).
#
#   deploy/run.sh [--detach] [--port=50051]
#
#   --detach   return after the demo order; the server keeps running (stop: deploy/stop.sh)
#
# Environment: ORDER_PLATFORM_DATABASE_URL (use this PostgreSQL instead of a private one),
# ORDER_PLATFORM_STATE_DIR (default /tmp/order_platform-$UID: private cluster, logs, pid file),
# BUILD_DIR (default <repo>/build).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
state_dir="${ORDER_PLATFORM_STATE_DIR:-/tmp/order_platform-$(id -u)}"
build_dir="${BUILD_DIR:-$repo/build}"
port=50051
detach=0
for arg in "$@"; do
  case "$arg" in
    --detach) detach=1 ;;
    --port=*) port="${arg#--port=}" ;;
    *) echo "usage: deploy/run.sh [--detach] [--port=N]" >&2; exit 2 ;;
  esac
done
say() { echo "==> $*" >&2; }

say "installing missing packages (if any)"
"$repo/deploy/install-deps.sh" --no-bazel >&2

say "building (CMake, $build_dir)"
cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" --target order_platform order_platform_cli >&2

mkdir -p "$state_dir"
chmod 755 "$state_dir"
if [[ -n "${ORDER_PLATFORM_DATABASE_URL:-}" ]]; then
  dsn="$ORDER_PLATFORM_DATABASE_URL"
  say "using PostgreSQL at $dsn"
else
  say "starting a private PostgreSQL in $state_dir/pg"
  dsn="$("$repo/deploy/pg_local.sh" start "$state_dir/pg")"
fi
export ORDER_PLATFORM_DATABASE_URL="$dsn"

say "applying migrations"
"$build_dir/order_platform" migrate up

if [[ -f "$state_dir/server.pid" ]] && kill -0 "$(cat "$state_dir/server.pid")" 2>/dev/null; then
  say "stopping the previous server (pid $(cat "$state_dir/server.pid"))"
  kill -TERM "$(cat "$state_dir/server.pid")" || true
  for _ in $(seq 50); do kill -0 "$(cat "$state_dir/server.pid")" 2>/dev/null || break; sleep 0.2; done
fi

say "starting the server on port $port (log: $state_dir/server.log)"
nohup "$build_dir/order_platform" serve --listen="0.0.0.0:$port" >"$state_dir/server.log" 2>&1 &
server_pid=$!
echo "$server_pid" >"$state_dir/server.pid"

cli=("$build_dir/order_platform_cli" "--target=127.0.0.1:$port")
if ! "${cli[@]}" health --wait=30s >/dev/null; then
  echo "the server did not become healthy; its log:" >&2
  tail -n 50 "$state_dir/server.log" >&2
  exit 1
fi

say "seeding demo products"
"${cli[@]}" seed-demo
say "placing a demo order"
"${cli[@]}" place-demo-order

cat <<EOF_HELP

The order platform is running: gRPC on 127.0.0.1:$port (health + reflection enabled),
PostgreSQL at $dsn.

Call it:
  ${cli[*]} list-orders demo-customer
  ${cli[*]} get-order <order_id>
  ${cli[*]} get-product SKU-COFFEE-1KG
  ${cli[*]} list-workflows PlaceOrder
  ${cli[*]} get-workflow place-order-<order_id>     # the saga's step history
  # any gRPC client works, e.g. buf curl (npm i -g @bufbuild/buf):
  buf curl --protocol grpc --http2-prior-knowledge \\
    -d '{"customer_id":"demo-customer"}' \\
    http://127.0.0.1:$port/order_platform.orders.v1.OrderService/ListOrders
  # or from source: the protos are in $repo/proto

Stop it: deploy/stop.sh   (add --clean to delete the private database)
EOF_HELP

if [[ "$detach" == 1 ]]; then
  exit 0
fi
trap 'kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; exit 0' INT TERM
say "server log follows (Ctrl-C stops the server)"
tail -n +1 -f "$state_dir/server.log" --pid="$server_pid"
