#!/bin/sh
# Stub coverage tool: coverage is not available in the offline build.
echo "remote_coverage_tools stub: bazel coverage is not supported offline" >&2
exit 1
