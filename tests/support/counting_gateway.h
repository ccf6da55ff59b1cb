// A PaymentGateway decorator for tests: forwards every call to another gateway and counts the
// calls (failed ones included) per idempotency key, so a test can assert that a request did or
// did not reach the gateway. Test-only: it keeps one entry per key for its whole life, which is
// why the simulator itself keeps no such log.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/payments/payment_gateway.h"

namespace order_platform::testing {

class CountingGateway final : public payments::PaymentGateway {
 public:
  // `inner` must outlive this object. Thread-safe if `inner` is.
  explicit CountingGateway(payments::PaymentGateway* inner) : inner_(*inner) {}

  absl::StatusOr<payments::AuthorizationResult> Authorize(
      const payments::GatewayRequest& request) override {
    Count(request);
    return inner_.Authorize(request);
  }
  absl::Status Capture(const payments::GatewayRequest& request) override {
    Count(request);
    return inner_.Capture(request);
  }
  absl::Status Void(const payments::GatewayRequest& request) override {
    Count(request);
    return inner_.Void(request);
  }
  absl::Status Refund(const payments::GatewayRequest& request) override {
    Count(request);
    return inner_.Refund(request);
  }

  // How many calls of any kind were made with `idempotency_key`.
  int CallCount(absl::string_view idempotency_key) const {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(idempotency_key);
    return it == calls_.end() ? 0 : it->second;
  }

 private:
  void Count(const payments::GatewayRequest& request) {
    absl::MutexLock lock(&mu_);
    ++calls_[request.idempotency_key];
  }

  payments::PaymentGateway& inner_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::testing
