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
// Authorization references are deterministic: "sim_" + 16 hex digits of a stable hash of the
// idempotency key, so a retried Authorize returns the same reference.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/payments/payment_gateway.h"

namespace order_platform::payments {

class SimulatedGateway final : public PaymentGateway {
 public:
  SimulatedGateway() = default;
  SimulatedGateway(const SimulatedGateway&) = delete;
  SimulatedGateway& operator=(const SimulatedGateway&) = delete;

  // All calls are thread-safe; a tok_slow_ call sleeps without holding a lock.
  absl::StatusOr<AuthorizationResult> Authorize(const GatewayRequest& request) override;
  absl::Status Capture(const GatewayRequest& request) override;
  absl::Status Void(const GatewayRequest& request) override;
  absl::Status Refund(const GatewayRequest& request) override;

  // How many calls (of any kind, failed ones included) were made with `idempotency_key`.
  // For tests that assert a retry did or did not reach the gateway.
  int CallCount(absl::string_view idempotency_key) const;

  // The reference the simulator returns for `idempotency_key`.
  static std::string ReferenceFor(absl::string_view idempotency_key);

 private:
  enum class Kind { kAuthorize, kCapture, kVoid, kRefund };

  // Applies the token's behaviour common to every call (counting, transient failures, delay).
  // OK when the call should go on to its kind-specific outcome.
  absl::Status Simulate(Kind kind, const GatewayRequest& request);

  mutable absl::Mutex mu_;
  // Calls seen per idempotency key.
  absl::flat_hash_map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  // Void calls seen per idempotency key (for tok_void_fails_<N>).
  absl::flat_hash_map<std::string, int> voids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::payments
