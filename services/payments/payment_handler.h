// gRPC adapter for order_platform.payments.v1.PaymentService: converts protos to domain calls on
// PaymentService and maps the result with ToGrpcStatus. No business rules live here. The
// caller's gRPC deadline is passed on to the payment gateway.
#pragma once

#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "services/payments/payment_service.h"

namespace order_platform::payments {

class PaymentServiceHandler final : public v1::PaymentService::Service {
 public:
  // `service` must outlive the handler.
  explicit PaymentServiceHandler(PaymentService* service) : service_(*service) {}

  grpc::Status AuthorizePayment(grpc::ServerContext* context,
                                const v1::AuthorizePaymentRequest* request,
                                v1::Payment* response) override;
  grpc::Status CapturePayment(grpc::ServerContext* context,
                              const v1::CapturePaymentRequest* request,
                              v1::Payment* response) override;
  grpc::Status VoidPayment(grpc::ServerContext* context, const v1::VoidPaymentRequest* request,
                           v1::Payment* response) override;
  grpc::Status RefundPayment(grpc::ServerContext* context, const v1::RefundPaymentRequest* request,
                             v1::Payment* response) override;
  grpc::Status GetPayment(grpc::ServerContext* context, const v1::GetPaymentRequest* request,
                          v1::Payment* response) override;
  grpc::Status ListPayments(grpc::ServerContext* context, const v1::ListPaymentsRequest* request,
                            v1::ListPaymentsResponse* response) override;

 private:
  PaymentService& service_;
};

// Proto rendering of a domain payment (used by the handler and by tests).
void PaymentToProto(const Payment& payment, v1::Payment* proto);

}  // namespace order_platform::payments
