// Fault injection for crash tests: the coordinator aborts the process at a named point when the
// environment says so. Off (one relaxed load) unless ORDER_PLATFORM_FAULT is set.
//
//   ORDER_PLATFORM_FAULT=<point>[:<n>]   abort() the n-th time (default 1st) <point> is reached
//
// Points: before_remote_call, after_remote_call (the call returned, its checkpoint not yet
// written), after_checkpoint, before_local_commit, in_compensation (a compensation ran, its
// checkpoint not yet written), after_compensation_checkpoint, after_start (workflow row committed,
// before any step).
#pragma once

#include "absl/strings/string_view.h"

namespace order_platform::saga {

// Aborts the process if the configured fault point is `point` and its count is reached.
void FaultPoint(absl::string_view point);

}  // namespace order_platform::saga
