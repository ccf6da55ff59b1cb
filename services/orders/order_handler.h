// gRPC adapter for order_platform.orders.v1.OrderService: converts protos to domain calls on
// OrderService and maps the result with ToGrpcStatus. No business rules live here.
#pragma once

#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "services/orders/order_service.h"

namespace order_platform::orders {

class OrderServiceHandler final : public v1::OrderService::Service {
 public:
  // `service` must outlive the handler.
  explicit OrderServiceHandler(OrderService* service) : service_(*service) {}

  grpc::Status CreateOrder(grpc::ServerContext* context, const v1::CreateOrderRequest* request,
                           v1::CreateOrderResponse* response) override;
  grpc::Status GetOrder(grpc::ServerContext* context, const v1::GetOrderRequest* request,
                        v1::Order* response) override;
  grpc::Status ListOrders(grpc::ServerContext* context, const v1::ListOrdersRequest* request,
                          v1::ListOrdersResponse* response) override;
  grpc::Status BatchGetOrders(grpc::ServerContext* context,
                              const v1::BatchGetOrdersRequest* request,
                              v1::BatchGetOrdersResponse* response) override;
  grpc::Status CancelOrder(grpc::ServerContext* context, const v1::CancelOrderRequest* request,
                           v1::Order* response) override;

 private:
  OrderService& service_;
};

// Proto rendering of a domain order (used by the handler and by tests).
void OrderToProto(const Order& order, v1::Order* proto);

}  // namespace order_platform::orders
