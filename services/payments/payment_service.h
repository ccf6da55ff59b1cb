// The payment use cases: authorize, capture, void, refund, read and list, on top of a
// PaymentRepository and a PaymentGateway. Transport-neutral: the gRPC handler
// (payment_handler.h) adapts protos to these calls. Thread-safe if the repository and the
// gateway are.
//
// Every mutating call is idempotent by request_id, and the gateway is always called with
// idempotency key = request_id, so any call may be retried after any failure:
//   - Authorize records the payment PENDING before it calls the gateway; a retry of a PENDING
//     payment calls the gateway again (same key) and completes it.
//   - Capture / Void / Refund read the payment and any record of their request_id in one round
//     trip, call the gateway, and then record the change together with an operation record; a
//     retry after the record exists returns the payment unchanged without calling the gateway,
//     a retry before it calls the gateway again (same key).
// A request_id reused for a different request is ALREADY_EXISTS.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/business_events.h"
#include "services/payments/payment.h"
#include "services/payments/payment_gateway.h"
#include "services/payments/payment_repository.h"

namespace order_platform::payments {

struct CapturePaymentParams {
  std::string request_id;
  std::string payment_id;
  Money amount;  // Unset or zero: the whole authorized amount.
};

struct VoidPaymentParams {
  std::string request_id;
  std::string payment_id;
};

struct RefundPaymentParams {
  std::string request_id;
  std::string payment_id;
  Money amount;        // Unset or zero: everything not yet refunded.
  std::string reason;  // 0-500 characters of text.
};

struct ListPaymentsParams {
  std::string order_id;   // Empty: every order.
  int32_t page_size = 0;  // 0: kDefaultPageSize.
  std::string page_token;
};

struct ListPaymentsResult {
  std::vector<Payment> payments;
  std::string next_page_token;  // Empty on the last page.
};

inline constexpr int32_t kDefaultPageSize = 50;
inline constexpr int32_t kMaxPageSize = 1000;

class PaymentService {
 public:
  // `repository`, `gateway` and `events` (nullptr: none) must outlive this object. `events`
  // hears of every payment outcome this service records, and of failed gateway calls.
  PaymentService(PaymentRepository* repository, PaymentGateway* gateway,
                 BusinessEvents* events = nullptr)
      : repository_(*repository),
        gateway_(*gateway),
        events_(events != nullptr ? *events : NoBusinessEvents()) {}

  // Validates `request`, records the payment PENDING, asks the gateway for a hold and records
  // AUTHORIZED or DECLINED (a decline is a result, not an error). A replay returns the payment
  // as it is, completing it first if it is still PENDING. Errors: INVALID_ARGUMENT,
  // ALREADY_EXISTS (request_id reused for a different request), UNAVAILABLE or
  // DEADLINE_EXCEEDED from the gateway (the payment stays PENDING; retry with the same
  // request_id), UNAVAILABLE from the database. Gateway calls give up at `deadline`.
  absl::StatusOr<Payment> Authorize(const AuthorizeRequest& request,
                                    absl::Time deadline = absl::InfiniteFuture());

  // Captures an AUTHORIZED payment. Errors: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
  // FAILED_PRECONDITION (not AUTHORIZED, or amount above the authorized amount), UNAVAILABLE /
  // DEADLINE_EXCEEDED (nothing recorded; retry with the same request_id).
  absl::StatusOr<Payment> Capture(const CapturePaymentParams& params,
                                  absl::Time deadline = absl::InfiniteFuture());

  // Releases the hold of an AUTHORIZED (or still PENDING) payment. A VOIDED or DECLINED payment
  // is returned unchanged without calling the gateway. Errors: INVALID_ARGUMENT, NOT_FOUND,
  // ALREADY_EXISTS, FAILED_PRECONDITION (money was captured), UNAVAILABLE / DEADLINE_EXCEEDED.
  absl::StatusOr<Payment> Void(const VoidPaymentParams& params,
                               absl::Time deadline = absl::InfiniteFuture());

  // Refunds (part of) a captured payment. Errors: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
  // FAILED_PRECONDITION (not captured, or amount above what is left), UNAVAILABLE /
  // DEADLINE_EXCEEDED.
  absl::StatusOr<Payment> Refund(const RefundPaymentParams& params,
                                 absl::Time deadline = absl::InfiniteFuture());

  // INVALID_ARGUMENT unless `payment_id` is a UUID; NOT_FOUND.
  absl::StatusOr<Payment> Get(absl::string_view payment_id);

  // A keyset page of payments, newest first. INVALID_ARGUMENT for a bad filter, page size
  // (1..1000, 0 means 50) or a page token of another query.
  absl::StatusOr<ListPaymentsResult> List(const ListPaymentsParams& params);

 private:
  // Payment `payment_id` for a new capture / void / refund `request_id`, or — when `request_id`
  // is already recorded (`recorded` set) — the payment of that record as it is now, to return as
  // the replay's result. One repository round trip. ALREADY_EXISTS when `request_id` was recorded
  // for a request with another fingerprint, or is the request_id of an authorization (request
  // ids are unique across every kind of request); NOT_FOUND when nothing is recorded and the
  // payment does not exist.
  absl::StatusOr<PaymentForOperation> LoadForOperation(absl::string_view payment_id,
                                                       absl::string_view request_id,
                                                       uint64_t fingerprint);

  // Records `operation` with `mutate` re-checked on the payment as stored (`as_read` when it is
  // unchanged since LoadForOperation); a concurrent replay that won the race is returned like a
  // replay.
  absl::StatusOr<Payment> Record(const PaymentOperation& operation, const Payment& as_read,
                                 absl::FunctionRef<absl::Status(Payment&)> mutate);

  // Reports a failed gateway call (as PaymentOutcome::kFailed) and passes `status` through.
  absl::Status GatewayFailed(absl::Status status);

  PaymentRepository& repository_;
  PaymentGateway& gateway_;
  BusinessEvents& events_;
};

}  // namespace order_platform::payments
