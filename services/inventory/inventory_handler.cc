#include "services/inventory/inventory_handler.h"

#include "services/common/errors.h"
#include "services/common/grpc_edge.h"

namespace order_platform::inventory {
namespace {

v1::ReservationStatus StatusToProto(ReservationStatus status) {
  switch (status) {
    case ReservationStatus::kHeld:
      return v1::RESERVATION_STATUS_HELD;
    case ReservationStatus::kReleased:
      return v1::RESERVATION_STATUS_RELEASED;
    case ReservationStatus::kCommitted:
      return v1::RESERVATION_STATUS_COMMITTED;
    case ReservationStatus::kReturned:
      return v1::RESERVATION_STATUS_RETURNED;
  }
  return v1::RESERVATION_STATUS_UNSPECIFIED;
}

}  // namespace

void ProductToProto(const Product& product, v1::Product* proto) {
  proto->set_sku(product.sku);
  proto->set_name(product.name);
  MoneyToProto(product.unit_price, proto->mutable_unit_price());
  proto->set_on_hand(product.on_hand);
  proto->set_reserved(product.reserved);
  proto->set_available(product.available());
  proto->set_version(product.version);
  TimeToProto(product.create_time, proto->mutable_create_time());
  TimeToProto(product.update_time, proto->mutable_update_time());
}

void ReservationToProto(const Reservation& reservation, v1::Reservation* proto) {
  proto->set_order_id(reservation.order_id);
  for (const ReservationItem& item : reservation.items) {
    v1::ReservationItem* out = proto->add_items();
    out->set_sku(item.sku);
    out->set_quantity(item.quantity);
  }
  proto->set_status(StatusToProto(reservation.status));
  proto->set_request_id(reservation.request_id);
  proto->set_version(reservation.version);
  TimeToProto(reservation.create_time, proto->mutable_create_time());
  TimeToProto(reservation.update_time, proto->mutable_update_time());
}

grpc::Status InventoryServiceHandler::UpsertProduct(grpc::ServerContext*,
                                                    const v1::UpsertProductRequest* request,
                                                    v1::Product* response) {
  return HandleRpc("UpsertProduct", {.request_id = request->request_id()}, [&]() -> absl::Status {
    ProductUpsert upsert;
    upsert.request_id = request->request_id();
    upsert.sku = request->sku();
    upsert.name = request->name();
    upsert.unit_price = MoneyFromProto(request->unit_price());
    upsert.on_hand = request->on_hand();
    upsert.expected_version = request->expected_version();
    OP_ASSIGN_OR_RETURN(Product product, service_.UpsertProduct(upsert));
    ProductToProto(product, response);
    return absl::OkStatus();
  });
}

grpc::Status InventoryServiceHandler::GetProduct(grpc::ServerContext*,
                                                 const v1::GetProductRequest* request,
                                                 v1::Product* response) {
  return HandleRpc("GetProduct", {}, [&]() -> absl::Status {
    OP_ASSIGN_OR_RETURN(Product product, service_.GetProduct(request->sku()));
    ProductToProto(product, response);
    return absl::OkStatus();
  });
}

grpc::Status InventoryServiceHandler::ListProducts(grpc::ServerContext*,
                                                   const v1::ListProductsRequest* request,
                                                   v1::ListProductsResponse* response) {
  return HandleRpc("ListProducts", {}, [&]() -> absl::Status {
    ListProductsParams params{request->page_size(), request->page_token()};
    OP_ASSIGN_OR_RETURN(ListProductsResult result, service_.ListProducts(params));
    for (const Product& product : result.products) {
      ProductToProto(product, response->add_products());
    }
    response->set_next_page_token(result.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status InventoryServiceHandler::ReserveStock(grpc::ServerContext*,
                                                   const v1::ReserveStockRequest* request,
                                                   v1::Reservation* response) {
  return HandleRpc("ReserveStock",
                   {.request_id = request->request_id(), .order_id = request->order_id()},
                   [&]() -> absl::Status {
                     ReserveRequest reserve;
                     reserve.request_id = request->request_id();
                     reserve.order_id = request->order_id();
                     reserve.items.reserve(request->items_size());
                     for (const v1::ReservationItem& item : request->items()) {
                       reserve.items.push_back(ReservationItem{item.sku(), item.quantity()});
                     }
                     OP_ASSIGN_OR_RETURN(ReserveResult result, service_.ReserveStock(reserve));
                     ReservationToProto(result.reservation, response);
                     return absl::OkStatus();
                   });
}

grpc::Status InventoryServiceHandler::ReleaseReservation(
    grpc::ServerContext*, const v1::ReleaseReservationRequest* request, v1::Reservation* response) {
  return HandleRpc(
      "ReleaseReservation", {.request_id = request->request_id(), .order_id = request->order_id()},
      [&]() -> absl::Status {
        SettleReservationParams params{request->request_id(), request->order_id()};
        OP_ASSIGN_OR_RETURN(Reservation reservation, service_.ReleaseReservation(params));
        ReservationToProto(reservation, response);
        return absl::OkStatus();
      });
}

grpc::Status InventoryServiceHandler::CommitReservation(grpc::ServerContext*,
                                                        const v1::CommitReservationRequest* request,
                                                        v1::Reservation* response) {
  return HandleRpc(
      "CommitReservation", {.request_id = request->request_id(), .order_id = request->order_id()},
      [&]() -> absl::Status {
        SettleReservationParams params{request->request_id(), request->order_id()};
        OP_ASSIGN_OR_RETURN(Reservation reservation, service_.CommitReservation(params));
        ReservationToProto(reservation, response);
        return absl::OkStatus();
      });
}

grpc::Status InventoryServiceHandler::ReturnReservation(grpc::ServerContext*,
                                                        const v1::ReturnReservationRequest* request,
                                                        v1::Reservation* response) {
  return HandleRpc(
      "ReturnReservation", {.request_id = request->request_id(), .order_id = request->order_id()},
      [&]() -> absl::Status {
        SettleReservationParams params{request->request_id(), request->order_id()};
        OP_ASSIGN_OR_RETURN(Reservation reservation, service_.ReturnReservation(params));
        ReservationToProto(reservation, response);
        return absl::OkStatus();
      });
}

grpc::Status InventoryServiceHandler::GetReservation(grpc::ServerContext*,
                                                     const v1::GetReservationRequest* request,
                                                     v1::Reservation* response) {
  return HandleRpc("GetReservation", {.order_id = request->order_id()}, [&]() -> absl::Status {
    OP_ASSIGN_OR_RETURN(Reservation reservation, service_.GetReservation(request->order_id()));
    ReservationToProto(reservation, response);
    return absl::OkStatus();
  });
}

}  // namespace order_platform::inventory
