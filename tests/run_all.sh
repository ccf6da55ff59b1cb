#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and tests everything with both
# build systems — CMake/CTest and Bazel. Tests that need PostgreSQL start private clusters
# themselves (tests/support/test_postgres.h); set ORDER_PLATFORM_TEST_DSN to use a server of yours.
#
#   tests/run_all.sh [--cmake-only | --bazel-only]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo/build}"
mode="${1:-all}"
jobs="$(nproc)"

echo "==> installing missing packages (if any)"
"$repo/deploy/install-deps.sh"

if [[ "$mode" != "--bazel-only" ]]; then
  echo "==> CMake: configure, build, test ($build_dir)"
  cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$build_dir" -j "$jobs"
  # The long chaos run (label chaos) is opt-in: ctest -L chaos.
  (cd "$build_dir" && ctest --output-on-failure -j "$jobs" --timeout 900 -LE chaos)
fi

if [[ "$mode" != "--cmake-only" ]]; then
  echo "==> Bazel: build and test //..."
  (cd "$repo" && bazel test //... --jobs="$jobs")
fi
echo "==> all tests passed"
