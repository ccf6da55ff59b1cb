// A deterministic, in-process PaymentGateway driven by the payment token, so every path of the
// payment and saga code can be exercised on purpose (see payments.proto):
//
//   tok_approve               approves every call
//   tok_decline               Authorize declines ("card declined")
//   tok_insufficient_funds    Authorize declines ("insufficient funds")
//   tok_transient_<N>         the first N calls per idempotency key fail with UNAVAILABLE, then
//                             the call behaves like tok_approve
//   tok_slow_<MS>             every call waits MS milliseconds, then approves; a call whose
//                             deadline comes first returns DEADLINE_EXCEEDED at the deadline
//   tok_refund_fails          approves everything except Refund, which is always UNAVAILABLE
//   tok_void_fails_<N>        approves and captures; the first N Void calls per idempotency key
//                             fail with UNAVAILABLE, then Void succeeds
//   tok_void_fails            approves and captures; every Void fails with UNAVAILABLE
//   anything else             approves every call
//
// "The first N calls per idempotency key" are counted in a SimulatorCounters store
// (simulator_counters.h): the server gives it PgSimulatorCounters, so the count lives in the
// payments database, survives a restart (kill -9 included) and is shared by every process on
// that database. Only tok_transient_<N> and tok_void_fails_<N> with N > 0 are counted; every
// other token keeps no state at all. If the store fails, the call is UNAVAILABLE (retry with the
// same key), as a real gateway's transient failure would be.
//
// Authorization references are deterministic: "sim_" + 16 hex digits of a stable hash of the
// idempotency key, so a retried Authorize returns the same reference.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "services/payments/payment_gateway.h"
#include "services/payments/simulator_counters.h"

namespace order_platform::payments {

class SimulatedGateway final : public PaymentGateway {
 public:
  // Counts in memory (MemorySimulatorCounters): per process, lost on restart. For unit tests.
  SimulatedGateway();
  // Counts in `counters` (not null), which this gateway owns.
  explicit SimulatedGateway(std::unique_ptr<SimulatorCounters> counters);
  SimulatedGateway(const SimulatedGateway&) = delete;
  SimulatedGateway& operator=(const SimulatedGateway&) = delete;

  // All calls are thread-safe if the counter store is; a tok_slow_ call sleeps without holding a
  // lock. Errors: UNAVAILABLE (the token's simulated failures, or the counter store failed),
  // DEADLINE_EXCEEDED (tok_slow_ past the request's deadline).
  absl::StatusOr<AuthorizationResult> Authorize(const GatewayRequest& request) override;
  absl::Status Capture(const GatewayRequest& request) override;
  absl::Status Void(const GatewayRequest& request) override;
  absl::Status Refund(const GatewayRequest& request) override;

  // The reference the simulator returns for `idempotency_key`.
  static std::string ReferenceFor(absl::string_view idempotency_key);

 private:
  enum class Kind { kAuthorize, kCapture, kVoid, kRefund };

  // Applies the token's behaviour common to every call (transient and void failures, delay).
  // OK when the call should go on to its kind-specific outcome.
  absl::Status Simulate(Kind kind, const GatewayRequest& request);

  // Increments (`request.idempotency_key`, `counter`) and returns the new count; UNAVAILABLE
  // when the store fails.
  absl::StatusOr<int64_t> Count(const GatewayRequest& request, SimulatorCounter counter);

  const std::unique_ptr<SimulatorCounters> counters_;
};

}  // namespace order_platform::payments
