// Where SimulatedGateway (simulated_gateway.h) keeps its call counts. Only the test tokens whose
// behaviour depends on how many calls came before are counted: tok_transient_<N> (every call
// under an idempotency key) and tok_void_fails_<N> (Void calls under a key). Implemented by
// PgSimulatorCounters (db/: in the payments database, so a count survives a restart of the
// server and is shared by every process on that database) and MemorySimulatorCounters (here:
// this process only, for unit tests).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace order_platform::payments {

// Which count of an idempotency key.
enum class SimulatorCounter {
  kCalls,  // Every call, of any kind (tok_transient_<N>).
  kVoids,  // Void calls (tok_void_fails_<N>).
};

// "calls" / "voids": the counter's name in storage.
inline absl::string_view SimulatorCounterName(SimulatorCounter counter) {
  switch (counter) {
    case SimulatorCounter::kCalls:
      return "calls";
    case SimulatorCounter::kVoids:
      return "voids";
  }
  return "calls";
}

class SimulatorCounters {
 public:
  virtual ~SimulatorCounters() = default;

  // Adds one to the count (`idempotency_key`, `counter`), which starts at zero, and returns the
  // count after the increment. Atomic: n concurrent increments of one count return 1..n, each
  // once. An error (UNAVAILABLE when the store is unreachable, or any other code) means the
  // count is unknown; it may or may not have been incremented. Thread-safe.
  virtual absl::StatusOr<int64_t> Increment(absl::string_view idempotency_key,
                                            SimulatorCounter counter) = 0;
};

}  // namespace order_platform::payments
