#include "services/payments/payment_handler.h"

#include <chrono>

#include "services/common/errors.h"
#include "services/common/grpc_edge.h"

namespace order_platform::payments {
namespace {

v1::PaymentStatus StatusToProto(PaymentStatus status) {
  switch (status) {
    case PaymentStatus::kPending:
      return v1::PAYMENT_STATUS_PENDING;
    case PaymentStatus::kAuthorized:
      return v1::PAYMENT_STATUS_AUTHORIZED;
    case PaymentStatus::kDeclined:
      return v1::PAYMENT_STATUS_DECLINED;
    case PaymentStatus::kCaptured:
      return v1::PAYMENT_STATUS_CAPTURED;
    case PaymentStatus::kVoided:
      return v1::PAYMENT_STATUS_VOIDED;
    case PaymentStatus::kPartiallyRefunded:
      return v1::PAYMENT_STATUS_PARTIALLY_REFUNDED;
    case PaymentStatus::kRefunded:
      return v1::PAYMENT_STATUS_REFUNDED;
  }
  return v1::PAYMENT_STATUS_UNSPECIFIED;
}

// The caller's deadline (InfiniteFuture when it set none).
absl::Time DeadlineOf(const grpc::ServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace

void PaymentToProto(const Payment& payment, v1::Payment* proto) {
  proto->set_payment_id(payment.id);
  proto->set_order_id(payment.order_id);
  proto->set_request_id(payment.request_id);
  MoneyToProto(payment.amount, proto->mutable_amount());
  MoneyToProto(payment.captured(), proto->mutable_captured());
  MoneyToProto(payment.refunded(), proto->mutable_refunded());
  proto->set_status(StatusToProto(payment.status));
  proto->set_decline_reason(payment.decline_reason);
  proto->set_gateway_reference(payment.gateway_reference);
  proto->set_version(payment.version);
  TimeToProto(payment.create_time, proto->mutable_create_time());
  TimeToProto(payment.update_time, proto->mutable_update_time());
}

grpc::Status PaymentServiceHandler::AuthorizePayment(grpc::ServerContext* context,
                                                     const v1::AuthorizePaymentRequest* request,
                                                     v1::Payment* response) {
  return HandleRpc(
      "AuthorizePayment", {.request_id = request->request_id(), .order_id = request->order_id()},
      [&]() -> absl::Status {
        AuthorizeRequest authorize{request->request_id(), request->order_id(),
                                   MoneyFromProto(request->amount()), request->payment_token()};
        OP_ASSIGN_OR_RETURN(Payment payment, service_.Authorize(authorize, DeadlineOf(context)));
        PaymentToProto(payment, response);
        return absl::OkStatus();
      });
}

grpc::Status PaymentServiceHandler::CapturePayment(grpc::ServerContext* context,
                                                   const v1::CapturePaymentRequest* request,
                                                   v1::Payment* response) {
  return HandleRpc("CapturePayment", {.request_id = request->request_id()}, [&]() -> absl::Status {
    CapturePaymentParams params{request->request_id(), request->payment_id(),
                                MoneyFromProto(request->amount())};
    OP_ASSIGN_OR_RETURN(Payment payment, service_.Capture(params, DeadlineOf(context)));
    PaymentToProto(payment, response);
    return absl::OkStatus();
  });
}

grpc::Status PaymentServiceHandler::VoidPayment(grpc::ServerContext* context,
                                                const v1::VoidPaymentRequest* request,
                                                v1::Payment* response) {
  return HandleRpc("VoidPayment", {.request_id = request->request_id()}, [&]() -> absl::Status {
    VoidPaymentParams params{request->request_id(), request->payment_id()};
    OP_ASSIGN_OR_RETURN(Payment payment, service_.Void(params, DeadlineOf(context)));
    PaymentToProto(payment, response);
    return absl::OkStatus();
  });
}

grpc::Status PaymentServiceHandler::RefundPayment(grpc::ServerContext* context,
                                                  const v1::RefundPaymentRequest* request,
                                                  v1::Payment* response) {
  return HandleRpc("RefundPayment", {.request_id = request->request_id()}, [&]() -> absl::Status {
    RefundPaymentParams params{request->request_id(), request->payment_id(),
                               MoneyFromProto(request->amount()), request->reason()};
    OP_ASSIGN_OR_RETURN(Payment payment, service_.Refund(params, DeadlineOf(context)));
    PaymentToProto(payment, response);
    return absl::OkStatus();
  });
}

grpc::Status PaymentServiceHandler::GetPayment(grpc::ServerContext*,
                                               const v1::GetPaymentRequest* request,
                                               v1::Payment* response) {
  return HandleRpc("GetPayment", {}, [&]() -> absl::Status {
    OP_ASSIGN_OR_RETURN(Payment payment, service_.Get(request->payment_id()));
    PaymentToProto(payment, response);
    return absl::OkStatus();
  });
}

grpc::Status PaymentServiceHandler::ListPayments(grpc::ServerContext*,
                                                 const v1::ListPaymentsRequest* request,
                                                 v1::ListPaymentsResponse* response) {
  return HandleRpc("ListPayments", {.order_id = request->order_id()}, [&]() -> absl::Status {
    ListPaymentsParams params{request->order_id(), request->page_size(), request->page_token()};
    OP_ASSIGN_OR_RETURN(ListPaymentsResult result, service_.List(params));
    for (const Payment& payment : result.payments)
      PaymentToProto(payment, response->add_payments());
    response->set_next_page_token(result.next_page_token);
    return absl::OkStatus();
  });
}

}  // namespace order_platform::payments
