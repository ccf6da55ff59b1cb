// In-memory SimulatorCounters: counts live in this object, so they are per process and lost on
// restart. For unit tests, and the default of a SimulatedGateway built without a store. Memory
// grows by one entry per counted key (only tok_transient_<N> / tok_void_fails_<N> payments are
// counted). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/payments/simulator_counters.h"

namespace order_platform::payments {

class MemorySimulatorCounters final : public SimulatorCounters {
 public:
  absl::StatusOr<int64_t> Increment(absl::string_view idempotency_key,
                                    SimulatorCounter counter) override;

  // The count (`idempotency_key`, `counter`) now; 0 when never incremented.
  int64_t Count(absl::string_view idempotency_key, SimulatorCounter counter) const;

  // How many counts exist (a count exists once incremented).
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::pair<std::string, SimulatorCounter>, int64_t> counts_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::payments
