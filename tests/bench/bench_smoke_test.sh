#!/usr/bin/env bash
# Bazel's bench_smoke: run_bench.sh in smoke mode (short runs, no performance gates) on the
# Bazel-built binaries. Usage: bench_smoke_test.sh <order_platform> <load_generator>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ORDER_PLATFORM_BIN="$(realpath "$1")"
export LOAD_GENERATOR_BIN="$(realpath "$2")"
export BENCH_DURATION=2 BENCH_WARMUP=1 BENCH_GET_POOL=500
# The saga variant (bench_saga_smoke) sets BENCH_WORKLOADS=place_order through its third argument.
if [[ "${3:-}" == "place_order" ]]; then
  export BENCH_WORKLOADS=place_order BENCH_SAGA_CLIENTS="1 8" BENCH_SAGA_SKUS=200
fi
# Bazel's TEST_TMPDIR lives under /root (0700): PostgreSQL's unprivileged user cannot reach it.
export TMPDIR=/tmp
exec bash "$here/run_bench.sh" --skip-target-check
