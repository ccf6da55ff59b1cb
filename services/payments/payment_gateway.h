// The payment gateway seen by the payment domain: the external processor that places holds,
// takes, releases and returns money. PaymentService is written against this interface; the
// built-in implementation is SimulatedGateway (simulated_gateway.h), and a real processor would be
// another implementation.
//
// Every call carries an idempotency key (the request_id of the payment operation): a gateway must
// treat a repeated call with the same key as the same call, returning the first outcome and never
// moving money twice. That is what makes it safe for PaymentService to re-call the gateway after
// a crash or an UNAVAILABLE.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/money.h"

namespace order_platform::payments {

struct GatewayRequest {
  // Deduplicates retries of the same operation at the gateway.
  std::string idempotency_key;
  // The card / wallet token the payment was authorized with.
  std::string payment_token;
  // Authorize: the hold. Capture / Refund: the amount to take / return. Void: the amount held.
  Money amount;
  // Capture / Void / Refund: the reference Authorize returned (empty for a payment whose
  // authorization outcome is unknown).
  std::string authorization_reference;
  // The call gives up with DEADLINE_EXCEEDED once this passes.
  absl::Time deadline = absl::InfiniteFuture();
};

struct AuthorizationResult {
  // True: the hold is in place and `reference` identifies it. False: the processor declined,
  // and `decline_reason` says why in words a person can read.
  bool approved = false;
  std::string reference;
  std::string decline_reason;
};

class PaymentGateway {
 public:
  virtual ~PaymentGateway() = default;

  // Places a hold of `request.amount`. A decline is a result, not an error. Errors:
  // UNAVAILABLE (transient: retry with the same key), DEADLINE_EXCEEDED (outcome unknown: retry
  // with the same key). Thread-safe.
  virtual absl::StatusOr<AuthorizationResult> Authorize(const GatewayRequest& request) = 0;

  // Takes `request.amount` of an authorized hold. Errors as for Authorize. Thread-safe.
  virtual absl::Status Capture(const GatewayRequest& request) = 0;

  // Releases an authorized hold. Errors as for Authorize. Thread-safe.
  virtual absl::Status Void(const GatewayRequest& request) = 0;

  // Returns `request.amount` of captured money. Errors as for Authorize. Thread-safe.
  virtual absl::Status Refund(const GatewayRequest& request) = 0;
};

}  // namespace order_platform::payments
