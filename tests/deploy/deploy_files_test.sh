#!/usr/bin/env bash
# Checks the deployment files (deploy/Dockerfile, deploy/compose.yaml, deploy/config/*.txt,
# deploy/k8s/**, deploy/prometheus/prometheus.yml, deploy/grafana/provisioning/**) against the
# real binaries: Docker and Kubernetes are not available here, so the files are read and checked for
# what matters — every flag passed exists (and the binary accepts each command line), ports match
# --listen/--metrics_listen, probes name registered health services, cross references resolve, and
# `promtool check config` passes. The checks are in tests/deploy/check_deploy_files.py.
#
#   tests/deploy/deploy_files_test.sh <order_platform> [<order_platform_cli>]
#
# The CLI defaults to order_platform_cli next to the server binary (the CMake build directory).
# Repository files are found relative to this script, or in the Bazel runfiles tree.
set -euo pipefail

fail() { echo "deploy_files_test: FAIL: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || fail "usage: $0 <order_platform> [<order_platform_cli>]"
server="$1"
cli="${2:-$(dirname "$1")/order_platform_cli}"

if [[ -n "${TEST_SRCDIR:-}" && -n "${TEST_WORKSPACE:-}" && -d "$TEST_SRCDIR/$TEST_WORKSPACE/deploy" ]]; then
  repo="$TEST_SRCDIR/$TEST_WORKSPACE"   # Bazel runfiles
else
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
[[ -f "$repo/deploy/Dockerfile" ]] || fail "cannot find deploy/Dockerfile under $repo"
[[ -x "$server" ]] || fail "server binary $server is not an executable file"
[[ -x "$cli" ]] || fail "CLI binary $cli is not an executable file (pass it as the second argument)"
python=/usr/bin/python3
[[ -x "$python" ]] || python="$(command -v python3)" || fail "python3 not found"
promtool=/usr/bin/promtool
[[ -x "$promtool" ]] || promtool="$(command -v promtool)" ||
  fail "promtool not found (deploy/install-deps.sh installs the prometheus package)"

tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/deploy_files_test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# The real flag names (and defaults) of both binaries. Abseil's --helpfull exits with status 1
# after printing, so the output is what counts.
"$server" --helpfull >"$tmp/server_help" 2>&1 || true
"$cli" --helpfull >"$tmp/cli_help" 2>&1 || true
for f in server_help cli_help; do
  n="$(grep -c -E '^ +--[a-z0-9_]+ \(' "$tmp/$f" || true)"
  [[ "$n" -gt 3 ]] || fail "${f%_help} --helpfull lists only $n flags: $(head -c 2000 "$tmp/$f")"
done

echo "== consistency of deploy/ with $server and $cli"
PYTHONDONTWRITEBYTECODE=1 "$python" -B "$repo/tests/deploy/check_deploy_files.py" \
  --repo="$repo" --server="$server" --cli="$cli" \
  --server_help="$tmp/server_help" --cli_help="$tmp/cli_help" ||
  fail "the deployment files do not match the binary (problems listed above)"

echo "== promtool check config deploy/prometheus/prometheus.yml"
if ! "$promtool" check config "$repo/deploy/prometheus/prometheus.yml" >"$tmp/promtool" 2>&1; then
  cat "$tmp/promtool" >&2
  fail "promtool check config deploy/prometheus/prometheus.yml failed"
fi
cat "$tmp/promtool"

echo "deploy_files_test: PASS"
