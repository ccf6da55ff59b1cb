#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages needed to build and test order_platform: the C++
# toolchain and libraries, PostgreSQL server binaries (tests start private clusters with
# deploy/pg_local.sh or tests/support/test_postgres), promtool, Bazel, and the Python gRPC tools.
#
#   deploy/install-deps.sh [--no-bazel] [--dry-run]
#
# Idempotent: only missing packages are installed, and `apt-get update` runs (once) only if
# something is missing. Run as root (or with sudo available).
#
# The Debian postgresql package creates and may start a system cluster (15/main, port 5432). The
# project never uses it: nothing here requires it to run, and this script neither starts nor stops it.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libpq-dev libpqxx-dev libabsl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql postgresql-contrib
  prometheus
  python3 python3-grpcio python3-grpc-tools
)
bazel_packages=(bazel-bootstrap bazel-rules-java)

dry_run=0
with_bazel=1
for arg in "$@"; do
  case "$arg" in
    --no-bazel) with_bazel=0 ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [[ "$with_bazel" -eq 1 ]]; then
  packages+=("${bazel_packages[@]}")
fi

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for pkg in "${packages[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
else
  echo "install-deps.sh: missing: ${missing[*]}"
  if [[ "$dry_run" -eq 1 ]]; then
    exit 0
  fi
  sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps.sh: run as root" >&2; exit 1; }
    sudo=(sudo)
  fi
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install \
    --no-install-recommends "${missing[@]}"

  still_missing=()
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still_missing+=("$pkg")
  done
  if [[ ${#still_missing[@]} -gt 0 ]]; then
    echo "install-deps.sh: still not installed: ${still_missing[*]}" >&2
    exit 1
  fi
fi

if [[ "$dry_run" -eq 0 ]]; then
  # Sanity checks of what the build and the tests actually invoke.
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 ||
    { echo "install-deps.sh: no /usr/lib/postgresql/*/bin/pg_ctl after install" >&2; exit 1; }
  command -v promtool >/dev/null 2>&1 ||
    { echo "install-deps.sh: promtool not on PATH after install" >&2; exit 1; }
  /usr/bin/python3 -c 'import grpc, grpc_tools.protoc' ||
    { echo "install-deps.sh: /usr/bin/python3 cannot import grpc / grpc_tools" >&2; exit 1; }
  echo "install-deps.sh: ok"
fi
