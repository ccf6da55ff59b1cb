// Business events the domain services report, for metrics: orders created, confirmed, rejected
// and cancelled, payment outcomes, stock reservations refused (confirmations and rejections come
// from the PlaceOrder workflow, saga/workflows/order_workflows.h). The domain calls this
// interface and knows nothing of Prometheus; services/metrics/business_metrics.h implements it.
//
// Each event is reported once, when the change is stored: replays of an idempotent request
// report nothing. The exception is PaymentOutcome::kFailed, reported for every failed gateway
// call. Values are enums so every label a metric derives from them is
// bounded.
#pragma once

#include "absl/strings/string_view.h"
#include "services/common/money.h"

namespace order_platform {

// What happened to a payment.
enum class PaymentOutcome {
  kAuthorized,  // The gateway placed the hold; the payment is AUTHORIZED.
  kDeclined,    // The gateway refused the hold; the payment is DECLINED.
  kCaptured,    // A capture was recorded.
  kVoided,      // A hold was released.
  kRefunded,    // A refund was recorded.
  kFailed,      // A gateway call failed (unavailable, timed out); retrying the request may succeed.
};

// Why a stock reservation was refused.
enum class ReservationFailure {
  kInsufficientStock,  // A product cannot supply the quantity asked for.
  kUnknownSku,         // An item names a product that does not exist.
};

// Why an order was rejected (its PlaceOrder workflow ended without confirming it).
enum class OrderRejection {
  kOutOfStock,        // A product cannot supply the quantity ordered.
  kUnknownProduct,    // An item names a product that does not exist.
  kPaymentDeclined,   // The payment was declined (card declined, insufficient funds, ...).
  kPaymentFailed,     // The payment could not be authorized (gateway unavailable, retries spent).
  kDeadlineExceeded,  // Not confirmed by its deadline (confirm_within / --place_order_deadline).
  kOther,             // Anything else (stock could not be reserved, ...).
};

// The lower-case name of an outcome or reason ("authorized", "insufficient_stock",
// "payment_declined"), as used in metric labels and logs.
absl::string_view PaymentOutcomeName(PaymentOutcome outcome);
absl::string_view ReservationFailureName(ReservationFailure reason);
absl::string_view OrderRejectionName(OrderRejection reason);

// Receives business events. Implementations must be thread-safe, fast (they run on the request
// path) and must not throw. The defaults do nothing.
class BusinessEvents {
 public:
  virtual ~BusinessEvents() = default;

  // A new order was stored with this total (a validated amount in a known ISO 4217 currency).
  virtual void OrderCreated(const Money& total) {}
  // An order was cancelled.
  virtual void OrderCancelled() {}
  // An order was confirmed: stock reserved and payment authorized (its workflow's pivot).
  virtual void OrderConfirmed() {}
  // An order was rejected for `reason`.
  virtual void OrderRejected(OrderRejection reason) {}
  // A payment operation finished with `outcome`.
  virtual void PaymentRecorded(PaymentOutcome outcome) {}
  // A stock reservation was refused.
  virtual void ReservationFailed(ReservationFailure reason) {}
};

// A shared instance that ignores every event: the default of every service.
BusinessEvents& NoBusinessEvents();

}  // namespace order_platform
