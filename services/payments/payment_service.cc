#include "services/payments/payment_service.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/common/ids.h"
#include "services/common/log.h"
#include "services/common/validation.h"

namespace order_platform::payments {
namespace {

absl::Status ValidatePaymentId(absl::string_view id, absl::string_view field = "payment_id") {
  if (id.empty()) return InvalidField(field, "is required");
  if (!IsCanonicalUuid(id)) return InvalidField(field, "must be a UUID");
  return absl::OkStatus();
}

std::string Lower(absl::string_view id) {
  std::string out(id);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

uint64_t ListFingerprint(const ListPaymentsParams& params) {
  return Fingerprint(absl::StrCat("payments|", params.order_id));
}

GatewayRequest GatewayRequestFor(const Payment& payment, absl::string_view request_id,
                                 int64_t amount_minor, absl::Time deadline) {
  GatewayRequest request;
  request.idempotency_key = std::string(request_id);
  request.payment_token = payment.payment_token;
  request.amount = Money{payment.amount.currency, amount_minor};
  request.authorization_reference = payment.gateway_reference;
  request.deadline = deadline;
  return request;
}

PaymentOperation OperationRecord(OperationKind kind, absl::string_view request_id,
                                 absl::string_view payment_id, int64_t amount_minor,
                                 uint64_t fingerprint, absl::string_view reason) {
  PaymentOperation operation;
  operation.request_id = std::string(request_id);
  operation.payment_id = std::string(payment_id);
  operation.kind = kind;
  operation.amount_minor = amount_minor;
  operation.request_fingerprint = fingerprint;
  operation.reason = std::string(reason);
  return operation;
}

// Returned by a mutate closure that finds nothing to do; never leaves this file.
absl::Status NothingToDo() { return absl::CancelledError("nothing to do"); }
bool IsNothingToDo(const absl::Status& status) {
  return status.code() == absl::StatusCode::kCancelled && status.message() == "nothing to do";
}

}  // namespace

absl::StatusOr<Payment> PaymentService::Authorize(const AuthorizeRequest& request,
                                                  absl::Time deadline) {
  OP_ASSIGN_OR_RETURN(Payment pending, MakePendingPayment(request));
  OP_ASSIGN_OR_RETURN(CreatePaymentResult created, repository_.CreatePending(pending));
  if (!created.created && created.payment.request_fingerprint != pending.request_fingerprint) {
    return RequestIdReused(request.request_id);
  }
  const Payment& payment = created.payment;
  if (payment.status != PaymentStatus::kPending) return payment;  // Finished replay.

  absl::StatusOr<AuthorizationResult> authorized = gateway_.Authorize(
      GatewayRequestFor(payment, request.request_id, payment.amount.minor, deadline));
  if (!authorized.ok()) return GatewayFailed(authorized.status());
  const AuthorizationResult& result = *authorized;
  absl::StatusOr<Payment> saved = repository_.Update(payment, [&](Payment& p) -> absl::Status {
    // Completed (or voided) by a concurrent call meanwhile: keep what it recorded.
    if (p.status != PaymentStatus::kPending) return NothingToDo();
    return result.approved ? p.MarkAuthorized(result.reference)
                           : p.MarkDeclined(result.decline_reason);
  });
  if (!saved.ok() && IsNothingToDo(saved.status())) return repository_.Get(payment.id);
  if (saved.ok()) {
    events_.PaymentRecorded(result.approved ? PaymentOutcome::kAuthorized
                                            : PaymentOutcome::kDeclined);
  }
  if (saved.ok() && !result.approved) {
    Log(LogLevel::kInfo, "payment declined",
        {{"payment_id", saved->id},
         {"order_id", saved->order_id},
         {"reason", saved->decline_reason}});
  }
  return saved;
}

absl::Status PaymentService::GatewayFailed(absl::Status status) {
  events_.PaymentRecorded(PaymentOutcome::kFailed);
  return status;
}

absl::StatusOr<PaymentForOperation> PaymentService::LoadForOperation(absl::string_view payment_id,
                                                                     absl::string_view request_id,
                                                                     uint64_t fingerprint) {
  // One lookup covers every kind of request: the repository answers ALREADY_EXISTS for the
  // request_id of an authorization, so a capture / void / refund under it never reaches the
  // gateway (which would see the authorization's idempotency key again).
  OP_ASSIGN_OR_RETURN(PaymentForOperation found,
                      repository_.GetForOperation(payment_id, request_id));
  if (found.recorded && found.recorded->request_fingerprint != fingerprint) {
    return RequestIdReused(request_id);
  }
  return found;
}

absl::StatusOr<Payment> PaymentService::Record(const PaymentOperation& operation,
                                               const Payment& as_read,
                                               absl::FunctionRef<absl::Status(Payment&)> mutate) {
  OP_ASSIGN_OR_RETURN(ApplyOperationResult result,
                      repository_.ApplyOperation(operation, as_read, mutate));
  if (!result.applied && result.operation.request_fingerprint != operation.request_fingerprint) {
    return RequestIdReused(operation.request_id);
  }
  if (result.applied) {
    switch (operation.kind) {
      case OperationKind::kCapture:
        events_.PaymentRecorded(PaymentOutcome::kCaptured);
        break;
      case OperationKind::kVoid:
        events_.PaymentRecorded(PaymentOutcome::kVoided);
        break;
      case OperationKind::kRefund:
        events_.PaymentRecorded(PaymentOutcome::kRefunded);
        break;
    }
  }
  return std::move(result.payment);
}

absl::StatusOr<Payment> PaymentService::Capture(const CapturePaymentParams& params,
                                                absl::Time deadline) {
  OP_RETURN_IF_ERROR(ValidateRequestId(params.request_id));
  OP_RETURN_IF_ERROR(ValidatePaymentId(params.payment_id));
  OP_RETURN_IF_ERROR(ValidateOperationAmount(params.amount));
  const std::string id = Lower(params.payment_id);
  const uint64_t fingerprint = CaptureFingerprint(id, params.amount);
  OP_ASSIGN_OR_RETURN(PaymentForOperation found,
                      LoadForOperation(id, params.request_id, fingerprint));
  if (found.recorded) return std::move(found.payment);  // Replay: already done.

  const Payment& payment = found.payment;
  OP_ASSIGN_OR_RETURN(const int64_t requested, OperationAmountMinor(payment, params.amount));
  Payment after = payment;
  OP_RETURN_IF_ERROR(after.Capture(requested));
  if (absl::Status s = gateway_.Capture(
          GatewayRequestFor(payment, params.request_id, after.captured_minor, deadline));
      !s.ok()) {
    return GatewayFailed(std::move(s));
  }

  const PaymentOperation operation = OperationRecord(OperationKind::kCapture, params.request_id, id,
                                                     after.captured_minor, fingerprint, "");
  return Record(operation, payment, [&](Payment& p) { return p.Capture(requested); });
}

absl::StatusOr<Payment> PaymentService::Void(const VoidPaymentParams& params, absl::Time deadline) {
  OP_RETURN_IF_ERROR(ValidateRequestId(params.request_id));
  OP_RETURN_IF_ERROR(ValidatePaymentId(params.payment_id));
  const std::string id = Lower(params.payment_id);
  const uint64_t fingerprint = VoidFingerprint(id);
  OP_ASSIGN_OR_RETURN(PaymentForOperation found,
                      LoadForOperation(id, params.request_id, fingerprint));
  if (found.recorded) return std::move(found.payment);  // Replay: already done.

  const Payment& payment = found.payment;
  if (payment.VoidIsNoOp()) return payment;  // Terminal without a hold: nothing to release.
  Payment after = payment;
  OP_RETURN_IF_ERROR(after.Void());
  if (absl::Status s = gateway_.Void(
          GatewayRequestFor(payment, params.request_id, payment.amount.minor, deadline));
      !s.ok()) {
    return GatewayFailed(std::move(s));
  }

  const PaymentOperation operation =
      OperationRecord(OperationKind::kVoid, params.request_id, id, 0, fingerprint, "");
  return Record(operation, payment, [&](Payment& p) { return p.Void(); });
}

absl::StatusOr<Payment> PaymentService::Refund(const RefundPaymentParams& params,
                                               absl::Time deadline) {
  OP_RETURN_IF_ERROR(ValidateRequestId(params.request_id));
  OP_RETURN_IF_ERROR(ValidatePaymentId(params.payment_id));
  OP_RETURN_IF_ERROR(ValidateOperationAmount(params.amount));
  OP_RETURN_IF_ERROR(ValidateText(params.reason, "reason", kMaxRefundReasonLength, false));
  const std::string id = Lower(params.payment_id);
  const uint64_t fingerprint = RefundFingerprint(id, params.amount, params.reason);
  OP_ASSIGN_OR_RETURN(PaymentForOperation found,
                      LoadForOperation(id, params.request_id, fingerprint));
  if (found.recorded) return std::move(found.payment);  // Replay: already done.

  const Payment& payment = found.payment;
  OP_ASSIGN_OR_RETURN(const int64_t requested, OperationAmountMinor(payment, params.amount));
  Payment after = payment;
  OP_RETURN_IF_ERROR(after.Refund(requested));
  const int64_t refund_minor = after.refunded_minor - payment.refunded_minor;
  if (absl::Status s =
          gateway_.Refund(GatewayRequestFor(payment, params.request_id, refund_minor, deadline));
      !s.ok()) {
    return GatewayFailed(std::move(s));
  }

  // The amount is fixed by what the gateway returned, even if another refund landed meanwhile:
  // the re-check then fails if both no longer fit.
  const PaymentOperation operation = OperationRecord(OperationKind::kRefund, params.request_id, id,
                                                     refund_minor, fingerprint, params.reason);
  return Record(operation, payment, [&](Payment& p) { return p.Refund(refund_minor); });
}

absl::StatusOr<Payment> PaymentService::Get(absl::string_view payment_id) {
  OP_RETURN_IF_ERROR(ValidatePaymentId(payment_id));
  return repository_.Get(Lower(payment_id));
}

absl::StatusOr<ListPaymentsResult> PaymentService::List(const ListPaymentsParams& params) {
  PaymentListQuery query;
  if (!params.order_id.empty()) {
    OP_RETURN_IF_ERROR(ValidateIdentifier(params.order_id, "order_id", kMaxOrderIdLength));
    query.order_id = params.order_id;
  }
  OP_RETURN_IF_ERROR(ValidatePageSize(params.page_size, "page_size", kDefaultPageSize, kMaxPageSize,
                                      &query.page_size));
  const uint64_t fingerprint = ListFingerprint(params);
  OP_ASSIGN_OR_RETURN(query.after, DecodePageToken(params.page_token, fingerprint));
  if (query.after && !IsCanonicalUuid(query.after->id)) {
    return InvalidField("page_token", "is not a valid page token");
  }
  OP_ASSIGN_OR_RETURN(PaymentPage page, repository_.List(query));
  ListPaymentsResult result;
  result.payments = std::move(page.payments);
  if (page.next) result.next_page_token = EncodePageToken(*page.next, fingerprint);
  return result;
}

}  // namespace order_platform::payments
