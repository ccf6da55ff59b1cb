// The payment entity: its status state machine, exact amounts (authorized, captured, refunded),
// the rules that build a valid payment from an authorization request, and the request
// fingerprints that make every operation idempotent. No I/O here; the repository stores what this
// file decides and the gateway moves the money.
//
//   PENDING --MarkAuthorized--> AUTHORIZED --Capture--> CAPTURED --Refund--> PARTIALLY_REFUNDED
//      |  \                        |                       |                    |  (Refund)
//      |   --MarkDeclined--> DECLINED                      +------Refund------> REFUNDED
//      +--------Void--------> VOIDED <--Void--+
//
// DECLINED, VOIDED and REFUNDED are terminal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/money.h"

namespace order_platform::payments {

inline constexpr size_t kMaxOrderIdLength = 64;
inline constexpr size_t kMaxPaymentTokenLength = 128;
inline constexpr size_t kMaxRefundReasonLength = 500;

enum class PaymentStatus {
  kPending,
  kAuthorized,
  kDeclined,
  kCaptured,
  kVoided,
  kPartiallyRefunded,
  kRefunded,
};

// Lower-case name used in storage and logs ("partially_refunded"); inverse of ParsePaymentStatus.
const char* PaymentStatusName(PaymentStatus status);
std::optional<PaymentStatus> ParsePaymentStatus(absl::string_view name);

// True for the states a payment never leaves (DECLINED, VOIDED, REFUNDED).
bool IsTerminal(PaymentStatus status);

// What AuthorizePayment asks for; validated by ValidateAuthorizeRequest.
struct AuthorizeRequest {
  std::string request_id;
  std::string order_id;
  Money amount;
  std::string payment_token;
};

struct Payment {
  std::string id;  // UUIDv7, assigned by MakePendingPayment.
  std::string order_id;
  std::string request_id;  // Of the AuthorizePayment call that created it.
  // Fingerprint of the creating request: a replay with a different request is refused.
  uint64_t request_fingerprint = 0;
  std::string payment_token;
  Money amount;  // Authorized amount (positive); its currency is the payment's currency.
  int64_t captured_minor = 0;  // 0 until captured; at most amount.minor.
  int64_t refunded_minor = 0;  // Sum of refunds; at most captured_minor.
  PaymentStatus status = PaymentStatus::kPending;
  std::string decline_reason;     // Set with DECLINED.
  std::string gateway_reference;  // The gateway's authorization reference, set with AUTHORIZED.
  int64_t version = 1;            // Incremented by the repository on every save.
  absl::Time create_time;         // Set by the repository (database clock).
  absl::Time update_time;

  Money captured() const { return Money{amount.currency, captured_minor}; }
  Money refunded() const { return Money{amount.currency, refunded_minor}; }

  // PENDING -> AUTHORIZED with the gateway's `reference`. FAILED_PRECONDITION otherwise.
  absl::Status MarkAuthorized(std::string reference);

  // PENDING -> DECLINED with the gateway's human-readable `reason`. FAILED_PRECONDITION
  // otherwise.
  absl::Status MarkDeclined(std::string reason);

  // AUTHORIZED -> CAPTURED, taking `amount_minor` (0: the whole authorized amount; the rest of
  // the hold is released). FAILED_PRECONDITION when not AUTHORIZED or when the amount is above
  // the authorized amount; INVALID_ARGUMENT (field "amount.amount_minor") when negative.
  absl::Status Capture(int64_t amount_minor);

  // Releases the hold: AUTHORIZED (or PENDING, abandoning an authorization whose outcome is
  // unknown) -> VOIDED. Already VOIDED or DECLINED: OK without effect. FAILED_PRECONDITION once
  // money was captured (refund instead).
  absl::Status Void();

  // True when Void() would change nothing (VOIDED or DECLINED).
  bool VoidIsNoOp() const;

  // CAPTURED | PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED | REFUNDED, returning `amount_minor`
  // (0: everything not yet refunded). Refunds add up to at most the captured amount.
  // FAILED_PRECONDITION when not captured, fully refunded, or the amount is above what is left;
  // INVALID_ARGUMENT (field "amount.amount_minor") when negative.
  absl::Status Refund(int64_t amount_minor);
};

// Checks every field of `request`, naming the first bad one: request_id (1-128 printable ASCII),
// order_id (1-64 printable ASCII, no spaces), amount (positive, ISO 4217 currency),
// payment_token (1-128 printable ASCII). INVALID_ARGUMENT with the field attached.
absl::Status ValidateAuthorizeRequest(const AuthorizeRequest& request);

// Validates `request` and builds the PENDING payment with a fresh id and its fingerprint.
absl::StatusOr<Payment> MakePendingPayment(const AuthorizeRequest& request,
                                           absl::Time now = absl::Now());

// The amount of a capture or refund request as sent: unset (empty currency and zero) or zero
// means "the whole amount"; otherwise a known currency and a non-negative amount.
// INVALID_ARGUMENT naming `field` ("amount.currency_code" / "amount.amount_minor").
absl::Status ValidateOperationAmount(const Money& requested, absl::string_view field = "amount");

// The minor units asked for by a validated operation amount on `payment` (0: the whole amount).
// INVALID_ARGUMENT on "<field>.currency_code" when a currency other than the payment's is given.
absl::StatusOr<int64_t> OperationAmountMinor(const Payment& payment, const Money& requested,
                                             absl::string_view field = "amount");

// The kinds of operation recorded against an existing payment (payments.operations.kind).
enum class OperationKind { kCapture, kVoid, kRefund };

// Lower-case name used in storage ("capture"); inverse of ParseOperationKind.
const char* OperationKindName(OperationKind kind);
std::optional<OperationKind> ParseOperationKind(absl::string_view name);

// The idempotency record of one capture / void / refund request. Stored in the same transaction
// as the payment change it made, so a replayed request_id finds it and changes nothing.
struct PaymentOperation {
  std::string request_id;
  std::string payment_id;
  OperationKind kind = OperationKind::kCapture;
  // The amount the operation moved, in the payment's minor units (0 for void).
  int64_t amount_minor = 0;
  // Fingerprint of the request (see the *Fingerprint functions below).
  uint64_t request_fingerprint = 0;
  std::string reason;      // Refund reason; empty otherwise.
  absl::Time create_time;  // Set by the repository.
};

// Request fingerprints: equal exactly when two requests under one request_id ask for the same
// thing. Stable across processes and builds.
uint64_t AuthorizeFingerprint(const AuthorizeRequest& request);
uint64_t CaptureFingerprint(absl::string_view payment_id, const Money& requested);
uint64_t VoidFingerprint(absl::string_view payment_id);
uint64_t RefundFingerprint(absl::string_view payment_id, const Money& requested,
                           absl::string_view reason);

}  // namespace order_platform::payments
