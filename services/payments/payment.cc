#include "services/payments/payment.h"

#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/common/ids.h"
#include "services/common/validation.h"

namespace order_platform::payments {
namespace {

constexpr PaymentStatus kAllStatuses[] = {
    PaymentStatus::kPending,  PaymentStatus::kAuthorized, PaymentStatus::kDeclined,
    PaymentStatus::kCaptured, PaymentStatus::kVoided,     PaymentStatus::kPartiallyRefunded,
    PaymentStatus::kRefunded,
};

absl::Status NotAllowed(const Payment& payment, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("payment ", payment.id, " is ", PaymentStatusName(payment.status), "; ", what));
}

absl::Status NegativeAmount() {
  return InvalidField("amount.amount_minor", "must not be negative");
}

// "all" for a zero (whole-amount) request whatever its currency, else "<currency> <minor>".
std::string CanonicalAmount(const Money& requested) {
  if (requested.minor == 0) return "all";
  return absl::StrCat(requested.currency, " ", requested.minor);
}

}  // namespace

const char* PaymentStatusName(PaymentStatus status) {
  switch (status) {
    case PaymentStatus::kPending:
      return "pending";
    case PaymentStatus::kAuthorized:
      return "authorized";
    case PaymentStatus::kDeclined:
      return "declined";
    case PaymentStatus::kCaptured:
      return "captured";
    case PaymentStatus::kVoided:
      return "voided";
    case PaymentStatus::kPartiallyRefunded:
      return "partially_refunded";
    case PaymentStatus::kRefunded:
      return "refunded";
  }
  return "pending";
}

std::optional<PaymentStatus> ParsePaymentStatus(absl::string_view name) {
  for (PaymentStatus s : kAllStatuses) {
    if (name == PaymentStatusName(s)) return s;
  }
  return std::nullopt;
}

bool IsTerminal(PaymentStatus status) {
  return status == PaymentStatus::kDeclined || status == PaymentStatus::kVoided ||
         status == PaymentStatus::kRefunded;
}

absl::Status Payment::MarkAuthorized(std::string reference) {
  if (status != PaymentStatus::kPending) {
    return NotAllowed(*this, "only a pending payment can become authorized");
  }
  status = PaymentStatus::kAuthorized;
  gateway_reference = std::move(reference);
  decline_reason.clear();
  return absl::OkStatus();
}

absl::Status Payment::MarkDeclined(std::string reason) {
  if (status != PaymentStatus::kPending) {
    return NotAllowed(*this, "only a pending payment can become declined");
  }
  status = PaymentStatus::kDeclined;
  decline_reason = std::move(reason);
  return absl::OkStatus();
}

absl::Status Payment::Capture(int64_t amount_minor) {
  if (status != PaymentStatus::kAuthorized) {
    return NotAllowed(*this, "only an authorized payment can be captured");
  }
  if (amount_minor < 0) return NegativeAmount();
  if (amount_minor > amount.minor) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot capture ", FormatMoney(Money{amount.currency, amount_minor}),
                     " of payment ", id, ": only ", FormatMoney(amount), " is authorized"));
  }
  captured_minor = amount_minor == 0 ? amount.minor : amount_minor;
  status = PaymentStatus::kCaptured;
  return absl::OkStatus();
}

bool Payment::VoidIsNoOp() const {
  return status == PaymentStatus::kVoided || status == PaymentStatus::kDeclined;
}

absl::Status Payment::Void() {
  if (VoidIsNoOp()) return absl::OkStatus();
  if (status != PaymentStatus::kAuthorized && status != PaymentStatus::kPending) {
    return NotAllowed(*this, "money was captured, so it can only be refunded, not voided");
  }
  status = PaymentStatus::kVoided;
  return absl::OkStatus();
}

absl::Status Payment::Refund(int64_t amount_minor) {
  if (status == PaymentStatus::kRefunded) {
    return NotAllowed(*this, "everything captured was already refunded");
  }
  if (status != PaymentStatus::kCaptured && status != PaymentStatus::kPartiallyRefunded) {
    return NotAllowed(*this, "only a captured payment can be refunded");
  }
  if (amount_minor < 0) return NegativeAmount();
  const int64_t remaining = captured_minor - refunded_minor;
  if (amount_minor > remaining) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot refund ", FormatMoney(Money{amount.currency, amount_minor}),
                     " of payment ", id, ": only ", FormatMoney(Money{amount.currency, remaining}),
                     " of ", FormatMoney(captured()), " captured is left to refund"));
  }
  refunded_minor += amount_minor == 0 ? remaining : amount_minor;
  status = refunded_minor == captured_minor ? PaymentStatus::kRefunded
                                            : PaymentStatus::kPartiallyRefunded;
  return absl::OkStatus();
}

absl::Status ValidateAuthorizeRequest(const AuthorizeRequest& request) {
  OP_RETURN_IF_ERROR(ValidateRequestId(request.request_id));
  OP_RETURN_IF_ERROR(ValidateIdentifier(request.order_id, "order_id", kMaxOrderIdLength));
  OP_RETURN_IF_ERROR(ValidateAmount(request.amount, "amount"));
  OP_RETURN_IF_ERROR(
      ValidateIdentifier(request.payment_token, "payment_token", kMaxPaymentTokenLength));
  return absl::OkStatus();
}

absl::StatusOr<Payment> MakePendingPayment(const AuthorizeRequest& request, absl::Time now) {
  OP_RETURN_IF_ERROR(ValidateAuthorizeRequest(request));
  Payment payment;
  // Payments are not sharded: the id's bucket bits carry no meaning.
  payment.id = NewUuidV7(now, /*bucket=*/0);
  payment.order_id = request.order_id;
  payment.request_id = request.request_id;
  payment.request_fingerprint = AuthorizeFingerprint(request);
  payment.payment_token = request.payment_token;
  payment.amount = request.amount;
  payment.status = PaymentStatus::kPending;
  payment.version = 1;
  payment.create_time = now;
  payment.update_time = now;
  return payment;
}

absl::Status ValidateOperationAmount(const Money& requested, absl::string_view field) {
  if (requested.currency.empty()) {
    if (requested.minor == 0) return absl::OkStatus();  // Unset: the whole amount.
    return InvalidField(absl::StrCat(field, ".currency_code"), "is required with an amount");
  }
  return ValidateAmount(requested, field, /*allow_zero=*/true);
}

absl::StatusOr<int64_t> OperationAmountMinor(const Payment& payment, const Money& requested,
                                             absl::string_view field) {
  OP_RETURN_IF_ERROR(ValidateOperationAmount(requested, field));
  if (!requested.currency.empty() && requested.currency != payment.amount.currency) {
    return InvalidField(absl::StrCat(field, ".currency_code"),
                        absl::StrCat("must be the payment's currency ", payment.amount.currency));
  }
  return requested.minor;
}

const char* OperationKindName(OperationKind kind) {
  switch (kind) {
    case OperationKind::kCapture:
      return "capture";
    case OperationKind::kVoid:
      return "void";
    case OperationKind::kRefund:
      return "refund";
  }
  return "capture";
}

std::optional<OperationKind> ParseOperationKind(absl::string_view name) {
  for (OperationKind k : {OperationKind::kCapture, OperationKind::kVoid, OperationKind::kRefund}) {
    if (name == OperationKindName(k)) return k;
  }
  return std::nullopt;
}

uint64_t AuthorizeFingerprint(const AuthorizeRequest& request) {
  return Fingerprint(absl::StrCat("authorize\x1f", request.order_id, "\x1f",
                                  request.amount.currency, "\x1f", request.amount.minor, "\x1f",
                                  request.payment_token));
}

uint64_t CaptureFingerprint(absl::string_view payment_id, const Money& requested) {
  return Fingerprint(absl::StrCat("capture\x1f", payment_id, "\x1f", CanonicalAmount(requested)));
}

uint64_t VoidFingerprint(absl::string_view payment_id) {
  return Fingerprint(absl::StrCat("void\x1f", payment_id));
}

uint64_t RefundFingerprint(absl::string_view payment_id, const Money& requested,
                           absl::string_view reason) {
  return Fingerprint(
      absl::StrCat("refund\x1f", payment_id, "\x1f", CanonicalAmount(requested), "\x1f", reason));
}

}  // namespace order_platform::payments
