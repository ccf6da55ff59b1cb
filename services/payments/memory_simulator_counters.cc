#include "services/payments/memory_simulator_counters.h"

namespace order_platform::payments {

absl::StatusOr<int64_t> MemorySimulatorCounters::Increment(absl::string_view idempotency_key,
                                                           SimulatorCounter counter) {
  absl::MutexLock lock(&mu_);
  return ++counts_[{std::string(idempotency_key), counter}];
}

int64_t MemorySimulatorCounters::Count(absl::string_view idempotency_key,
                                       SimulatorCounter counter) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(std::make_pair(std::string(idempotency_key), counter));
  return it == counts_.end() ? 0 : it->second;
}

size_t MemorySimulatorCounters::size() const {
  absl::MutexLock lock(&mu_);
  return counts_.size();
}

}  // namespace order_platform::payments
