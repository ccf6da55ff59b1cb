#include "services/common/business_events.h"

namespace order_platform {

absl::string_view PaymentOutcomeName(PaymentOutcome outcome) {
  switch (outcome) {
    case PaymentOutcome::kAuthorized:
      return "authorized";
    case PaymentOutcome::kDeclined:
      return "declined";
    case PaymentOutcome::kCaptured:
      return "captured";
    case PaymentOutcome::kVoided:
      return "voided";
    case PaymentOutcome::kRefunded:
      return "refunded";
    case PaymentOutcome::kFailed:
      return "failed";
  }
  return "failed";
}

absl::string_view ReservationFailureName(ReservationFailure reason) {
  switch (reason) {
    case ReservationFailure::kInsufficientStock:
      return "insufficient_stock";
    case ReservationFailure::kUnknownSku:
      return "unknown_sku";
  }
  return "unknown_sku";
}

absl::string_view OrderRejectionName(OrderRejection reason) {
  switch (reason) {
    case OrderRejection::kOutOfStock:
      return "out_of_stock";
    case OrderRejection::kUnknownProduct:
      return "unknown_product";
    case OrderRejection::kPaymentDeclined:
      return "payment_declined";
    case OrderRejection::kPaymentFailed:
      return "payment_failed";
    case OrderRejection::kDeadlineExceeded:
      return "deadline_exceeded";
    case OrderRejection::kOther:
      return "other";
  }
  return "other";
}

BusinessEvents& NoBusinessEvents() {
  static BusinessEvents* const events = new BusinessEvents();
  return *events;
}

}  // namespace order_platform
