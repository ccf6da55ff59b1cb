// What the payment domain needs from storage. Implemented by PgPaymentRepository (db/) and
// MemoryPaymentRepository (here); both pass tests/contract/payment_repository_contract.h.
//
// Idempotency lives here, not in callers' memory: a payment is keyed by the request_id of the
// authorization that created it (CreatePending), and every later capture / void / refund is
// recorded as a PaymentOperation keyed by its own request_id in the same transaction as the
// change it made (ApplyOperation). A replayed request therefore finds its record and changes
// nothing, even across crashes and concurrent duplicates. A request_id names one request of one
// kind: the store keeps request ids unique across authorizations and operations together (also
// under concurrent use), so an authorization's request_id can never be recorded as a capture /
// void / refund or the other way round; such a reuse is ALREADY_EXISTS.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/page_token.h"
#include "services/payments/payment.h"

namespace order_platform::payments {

struct CreatePaymentResult {
  Payment payment;
  // False when a payment with the same request_id already existed; `payment` is that payment.
  bool created = false;
};

struct PaymentListQuery {
  std::optional<std::string> order_id;
  int32_t page_size = 50;
  // Rows strictly after this (create_time, id) in newest-first order.
  std::optional<PageCursor> after;
};

struct PaymentPage {
  std::vector<Payment> payments;
  // Set when more rows may follow: the position of the last row returned.
  std::optional<PageCursor> next;
};

struct ApplyOperationResult {
  // The payment after the operation; for a replay, the current state of the payment the
  // recorded operation applied to.
  Payment payment;
  // The stored operation record (for a replay: the first one, whose fingerprint the caller
  // compares with the new request's).
  PaymentOperation operation;
  // False when an operation with the same request_id was already recorded: nothing was
  // changed (`mutate` may have run on the caller's `as_read`, but nothing it did was kept).
  bool applied = false;
};

struct PaymentForOperation {
  // Without `recorded`: the payment asked for, as it is now. With `recorded`: the payment that
  // operation applied to, as it is now (which is not the payment asked for when the request_id
  // was used for another payment).
  Payment payment;
  // The capture / void / refund already recorded under the request_id, if any (the caller
  // compares its fingerprint with the new request's).
  std::optional<PaymentOperation> recorded;
};

class PaymentRepository {
 public:
  virtual ~PaymentRepository() = default;

  // Stores `payment` as given (normally PENDING), assigning create/update times from the
  // store's clock and version 1. If a payment with the same request_id exists (including one
  // being inserted concurrently) nothing is written and that payment is returned with
  // created=false; comparing fingerprints is the caller's job. (A store that re-runs its write
  // after losing the answer with a connection may find `payment` itself, by its id: written by
  // this very call, it is created=true.) ALREADY_EXISTS (nothing written)
  // when the request_id is recorded as a capture / void / refund operation, including one being
  // recorded concurrently.
  virtual absl::StatusOr<CreatePaymentResult> CreatePending(const Payment& payment) = 0;

  // NOT_FOUND if absent.
  virtual absl::StatusOr<Payment> Get(absl::string_view payment_id) = 0;

  // The operation recorded under `request_id`. NOT_FOUND if none; ALREADY_EXISTS if
  // `request_id` is the request_id of a payment's authorization.
  virtual absl::StatusOr<PaymentOperation> GetOperation(absl::string_view request_id) = 0;

  // Everything a capture / void / refund with `request_id` on payment `payment_id` needs to know
  // before it calls the gateway, read in one round trip (one consistent snapshot, no lock):
  //   - if an operation is recorded under `request_id`, {that operation's payment as it is now,
  //     the recorded operation}, whether it was recorded for `payment_id` or another payment,
  //     and even when `payment_id` does not exist;
  //   - otherwise {payment `payment_id` as it is now, no operation}; NOT_FOUND if absent.
  // ALREADY_EXISTS when `request_id` is the request_id of a payment's authorization (as
  // GetOperation). ApplyOperation re-checks all of it under the payment's lock.
  virtual absl::StatusOr<PaymentForOperation> GetForOperation(absl::string_view payment_id,
                                                              absl::string_view request_id) = 0;

  // One page of payments matching `query`, newest first (create_time DESC, id DESC).
  virtual absl::StatusOr<PaymentPage> List(const PaymentListQuery& query) = 0;

  // Applies `mutate` to the payment as it is stored now and saves it with version + 1 and a new
  // update_time, atomically; returns the saved payment. `as_read` is that payment as the caller
  // last read it: while the store still holds that version the save is one conditional write,
  // else the payment is loaded exclusively and `mutate` runs on what is stored (the outcome is
  // the same either way). When `mutate` returns an error nothing is saved and that error is
  // returned. `mutate` may be called more than once (on `as_read`, then on the stored payment;
  // retries on serialization failure or deadlock), so it must only edit its argument. The id,
  // order, request, token, amount and create_time are immutable; NOT_FOUND if absent.
  virtual absl::StatusOr<Payment> Update(const Payment& as_read,
                                         absl::FunctionRef<absl::Status(Payment&)> mutate) = 0;

  // Applies one capture / void / refund exactly once, atomically:
  //   - if an operation with `operation.request_id` is already recorded, changes nothing and
  //     returns {that operation's payment as it is now, the recorded operation, applied=false};
  //   - otherwise applies `mutate` to payment `operation.payment_id` as it is stored now
  //     (NOT_FOUND if absent; an error of `mutate` rolls everything back and is returned), saves
  //     the payment as Update does, records `operation` (create_time from the store's clock) and
  //     returns {saved payment, stored operation, applied=true}.
  // `as_read` is the payment as the caller last read it, a hint as for Update (ignored unless
  // it is payment `operation.payment_id`).
  // Concurrent calls with the same request_id for the same payment serialize on the payment:
  // exactly one applies, the others replay. ALREADY_EXISTS, with nothing changed, when
  // `operation.request_id` is the request_id of a payment's authorization (see CreatePending),
  // or was recorded concurrently for a different payment or by an authorization. `mutate` may
  // be called more than once, as for Update.
  virtual absl::StatusOr<ApplyOperationResult> ApplyOperation(
      const PaymentOperation& operation, const Payment& as_read,
      absl::FunctionRef<absl::Status(Payment&)> mutate) = 0;
};

}  // namespace order_platform::payments
