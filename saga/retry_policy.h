// Retry policies for workflow steps and compensations, Temporal-style: exponential backoff with
// jitter, bounded attempts, and error codes that are never retried.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace order_platform::saga {

struct RetryPolicy {
  absl::Duration initial_interval = absl::Milliseconds(200);
  double backoff_coefficient = 2.0;
  absl::Duration maximum_interval = absl::Seconds(30);
  // Attempts in total, the first included; 0 means unlimited.
  int maximum_attempts = 5;
  // Codes that end the step at once (the participant definitively refused).
  std::vector<absl::StatusCode> non_retryable_codes = {
      absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
      absl::StatusCode::kAlreadyExists, absl::StatusCode::kFailedPrecondition,
      absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnauthenticated,
      absl::StatusCode::kOutOfRange, absl::StatusCode::kUnimplemented};
  // Fraction of the delay randomised either way (0.2: delay x [0.8, 1.2]).
  double jitter = 0.2;

  // A policy that retries forever (maximum_attempts 0) with the same backoff.
  static RetryPolicy Forever();
  // A policy that never retries.
  static RetryPolicy None();

  // Whether `error` may be retried after `attempts_made` attempts.
  bool ShouldRetry(const absl::Status& error, int attempts_made) const;

  // Delay before attempt `attempts_made + 1`, with jitter drawn from `random01` in [0, 1).
  absl::Duration DelayAfter(int attempts_made, double random01) const;
};

// Whether a failed call may nevertheless have taken effect at the participant (timeouts, lost
// connections, internal errors), so that its compensation must run.
bool MayHaveTakenEffect(const absl::Status& error);

}  // namespace order_platform::saga
