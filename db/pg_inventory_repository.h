// InventoryRepository on PostgreSQL (schema `inventory`).
//
// Stock moves in one transaction per use case with a fixed number of round trips, whatever the
// number of items: Reserve locks the items' products in sku order (`FOR UPDATE`, so concurrent
// reservations never deadlock), checks them with the domain's CheckStock, and then inserts the
// reservation, its items and raises `reserved` of every product in one statement. Release,
// Commit and Return lock the reservation, then its products in sku order, and apply the status
// change and the stock effect in one statement. The table's CHECK (reserved <= on_hand) is the
// last line of defence against overselling. UpsertProduct records its request id in
// inventory.product_upserts first, in the same transaction as the product write, so a repeated
// request id (even a late one, or one for another SKU) writes nothing. Thread-safe.
#pragma once

#include "db/pool.h"
#include "services/inventory/inventory_repository.h"

namespace order_platform::db {

class PgInventoryRepository final : public inventory::InventoryRepository {
 public:
  // `pool` must outlive this object and point at a database migrated to the `inventory` schema.
  explicit PgInventoryRepository(ConnectionPool* pool) : pool_(*pool) {}

  absl::StatusOr<inventory::UpsertProductResult> UpsertProduct(const inventory::Product& product,
                                                               int64_t expected_version) override;
  absl::StatusOr<inventory::Product> GetProduct(absl::string_view sku) override;
  absl::StatusOr<std::vector<inventory::Product>> ListProducts(absl::string_view after_sku,
                                                               int32_t limit) override;
  absl::StatusOr<inventory::ReserveResult> Reserve(
      const inventory::Reservation& reservation) override;
  absl::StatusOr<inventory::Reservation> Release(absl::string_view order_id) override;
  absl::StatusOr<inventory::Reservation> Commit(absl::string_view order_id) override;
  absl::StatusOr<inventory::Reservation> Return(absl::string_view order_id) override;
  absl::StatusOr<inventory::Reservation> GetReservation(absl::string_view order_id) override;

 private:
  ConnectionPool& pool_;
};

}  // namespace order_platform::db
