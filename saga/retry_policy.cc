#include "saga/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace order_platform::saga {

RetryPolicy RetryPolicy::Forever() {
  RetryPolicy policy;
  policy.maximum_attempts = 0;
  policy.maximum_interval = absl::Seconds(60);
  return policy;
}

RetryPolicy RetryPolicy::None() {
  RetryPolicy policy;
  policy.maximum_attempts = 1;
  return policy;
}

bool RetryPolicy::ShouldRetry(const absl::Status& error, int attempts_made) const {
  if (error.ok()) return false;
  if (std::find(non_retryable_codes.begin(), non_retryable_codes.end(), error.code()) !=
      non_retryable_codes.end()) {
    return false;
  }
  return maximum_attempts == 0 || attempts_made < maximum_attempts;
}

absl::Duration RetryPolicy::DelayAfter(int attempts_made, double random01) const {
  const double exponent = std::max(0, attempts_made - 1);
  double seconds = absl::ToDoubleSeconds(initial_interval) *
                   std::pow(std::max(1.0, backoff_coefficient), std::min(exponent, 60.0));
  seconds = std::min(seconds, absl::ToDoubleSeconds(maximum_interval));
  seconds *= 1.0 + jitter * (2.0 * random01 - 1.0);
  return absl::Seconds(std::max(0.0, seconds));
}

bool MayHaveTakenEffect(const absl::Status& error) {
  switch (error.code()) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

}  // namespace order_platform::saga
