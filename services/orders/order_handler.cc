#include "services/orders/order_handler.h"

#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/common/grpc_edge.h"

namespace order_platform::orders {
namespace {

v1::OrderStatus StatusToProto(OrderStatus status) {
  switch (status) {
    case OrderStatus::kPending:
      return v1::ORDER_STATUS_PENDING;
    case OrderStatus::kConfirmed:
      return v1::ORDER_STATUS_CONFIRMED;
    case OrderStatus::kRejected:
      return v1::ORDER_STATUS_REJECTED;
    case OrderStatus::kCancelled:
      return v1::ORDER_STATUS_CANCELLED;
  }
  return v1::ORDER_STATUS_UNSPECIFIED;
}

absl::StatusOr<std::optional<OrderStatus>> StatusFilterFromProto(v1::OrderStatus status) {
  switch (status) {
    case v1::ORDER_STATUS_UNSPECIFIED:
      return std::optional<OrderStatus>();
    case v1::ORDER_STATUS_PENDING:
      return std::optional<OrderStatus>(OrderStatus::kPending);
    case v1::ORDER_STATUS_CONFIRMED:
      return std::optional<OrderStatus>(OrderStatus::kConfirmed);
    case v1::ORDER_STATUS_REJECTED:
      return std::optional<OrderStatus>(OrderStatus::kRejected);
    case v1::ORDER_STATUS_CANCELLED:
      return std::optional<OrderStatus>(OrderStatus::kCancelled);
    default:
      return InvalidField("status", absl::StrCat("unknown status value ", status));
  }
}

}  // namespace

void OrderToProto(const Order& order, v1::Order* proto) {
  proto->set_order_id(order.id);
  proto->set_customer_id(order.customer_id);
  for (const OrderItem& item : order.items) {
    v1::OrderItem* out = proto->add_items();
    out->set_sku(item.sku);
    out->set_quantity(item.quantity);
    MoneyToProto(item.unit_price, out->mutable_unit_price());
  }
  MoneyToProto(order.total, proto->mutable_total());
  proto->set_status(StatusToProto(order.status));
  proto->set_status_reason(order.status_reason);
  proto->set_version(order.version);
  proto->set_workflow_id(order.workflow_id);
  proto->set_payment_token(order.payment_token);
  proto->set_request_id(order.request_id);
  TimeToProto(order.create_time, proto->mutable_create_time());
  TimeToProto(order.update_time, proto->mutable_update_time());
}

grpc::Status OrderServiceHandler::CreateOrder(grpc::ServerContext*,
                                              const v1::CreateOrderRequest* request,
                                              v1::CreateOrderResponse* response) {
  return HandleRpc("CreateOrder", {.request_id = request->request_id()}, [&]() -> absl::Status {
    NewOrder order;
    order.request_id = request->request_id();
    order.customer_id = request->customer_id();
    order.payment_token = request->payment_token();
    if (request->has_confirm_within()) {
      order.confirm_within = DurationFromProto(request->confirm_within());
      if (!order.confirm_within) {
        return InvalidField("confirm_within", "must be between 1s and 30 days");
      }
    }
    order.items.reserve(request->items_size());
    for (const v1::OrderItem& item : request->items()) {
      order.items.push_back(
          OrderItem{item.sku(), item.quantity(), MoneyFromProto(item.unit_price())});
    }
    OP_ASSIGN_OR_RETURN(CreateOrderResult result, service_.Create(order));
    OrderToProto(result.order, response->mutable_order());
    response->set_created(result.created);
    return absl::OkStatus();
  });
}

grpc::Status OrderServiceHandler::GetOrder(grpc::ServerContext*,
                                           const v1::GetOrderRequest* request,
                                           v1::Order* response) {
  return HandleRpc("GetOrder", {.order_id = request->order_id()}, [&]() -> absl::Status {
    OP_ASSIGN_OR_RETURN(Order order, service_.Get(request->order_id()));
    OrderToProto(order, response);
    return absl::OkStatus();
  });
}

grpc::Status OrderServiceHandler::ListOrders(grpc::ServerContext*,
                                             const v1::ListOrdersRequest* request,
                                             v1::ListOrdersResponse* response) {
  return HandleRpc("ListOrders", {}, [&]() -> absl::Status {
    ListOrdersParams params;
    params.customer_id = request->customer_id();
    OP_ASSIGN_OR_RETURN(params.status, StatusFilterFromProto(request->status()));
    params.page_size = request->page_size();
    params.page_token = request->page_token();
    OP_ASSIGN_OR_RETURN(ListOrdersResult result, service_.List(params));
    for (const Order& order : result.orders) OrderToProto(order, response->add_orders());
    response->set_next_page_token(result.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status OrderServiceHandler::BatchGetOrders(grpc::ServerContext*,
                                                 const v1::BatchGetOrdersRequest* request,
                                                 v1::BatchGetOrdersResponse* response) {
  return HandleRpc("BatchGetOrders", {}, [&]() -> absl::Status {
    std::vector<std::string> ids(request->order_ids().begin(), request->order_ids().end());
    OP_ASSIGN_OR_RETURN(BatchGetResult result, service_.BatchGet(ids));
    for (const Order& order : result.orders) OrderToProto(order, response->add_orders());
    for (const std::string& id : result.missing_ids) response->add_missing_order_ids(id);
    return absl::OkStatus();
  });
}

grpc::Status OrderServiceHandler::CancelOrder(grpc::ServerContext*,
                                              const v1::CancelOrderRequest* request,
                                              v1::Order* response) {
  return HandleRpc("CancelOrder",
                   {.request_id = request->request_id(), .order_id = request->order_id()},
                   [&]() -> absl::Status {
                     CancelOrderParams params{request->request_id(), request->order_id(),
                                              request->reason(), request->expected_version()};
                     OP_ASSIGN_OR_RETURN(Order order, service_.Cancel(params));
                     OrderToProto(order, response);
                     return absl::OkStatus();
                   });
}

}  // namespace order_platform::orders
