// gRPC adapter for order_platform.inventory.v1.InventoryService: converts protos to domain calls
// on InventoryService and maps the result with ToGrpcStatus. No business rules live here.
#pragma once

#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "services/inventory/inventory_service.h"

namespace order_platform::inventory {

class InventoryServiceHandler final : public v1::InventoryService::Service {
 public:
  // `service` must outlive the handler.
  explicit InventoryServiceHandler(InventoryService* service) : service_(*service) {}

  grpc::Status UpsertProduct(grpc::ServerContext* context, const v1::UpsertProductRequest* request,
                             v1::Product* response) override;
  grpc::Status GetProduct(grpc::ServerContext* context, const v1::GetProductRequest* request,
                          v1::Product* response) override;
  grpc::Status ListProducts(grpc::ServerContext* context, const v1::ListProductsRequest* request,
                            v1::ListProductsResponse* response) override;
  grpc::Status ReserveStock(grpc::ServerContext* context, const v1::ReserveStockRequest* request,
                            v1::Reservation* response) override;
  grpc::Status ReleaseReservation(grpc::ServerContext* context,
                                  const v1::ReleaseReservationRequest* request,
                                  v1::Reservation* response) override;
  grpc::Status CommitReservation(grpc::ServerContext* context,
                                 const v1::CommitReservationRequest* request,
                                 v1::Reservation* response) override;
  grpc::Status ReturnReservation(grpc::ServerContext* context,
                                 const v1::ReturnReservationRequest* request,
                                 v1::Reservation* response) override;
  grpc::Status GetReservation(grpc::ServerContext* context,
                              const v1::GetReservationRequest* request,
                              v1::Reservation* response) override;

 private:
  InventoryService& service_;
};

// Proto renderings of domain values (used by the handler and by tests).
void ProductToProto(const Product& product, v1::Product* proto);
void ReservationToProto(const Reservation& reservation, v1::Reservation* proto);

}  // namespace order_platform::inventory
