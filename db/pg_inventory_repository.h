// InventoryRepository on PostgreSQL (schema `inventory`).
//
// Stock moves in one statement per use case when it succeeds, whatever the number of items:
// Reserve locks the items' products in sku order (`FOR UPDATE`, so concurrent reservations never
// deadlock) and, if none is missing or short and the order holds no reservation, inserts the
// reservation and its items and raises `reserved` of every product. Release, Commit and Return
// move the reservation's status (locking its row) and then lock its products in sku order and
// apply the stock effect. When that one statement finds nothing to do (a replay, missing stock,
// a reservation in another state), a short transaction under the same locks works out the answer
// with the domain's rules (CheckStock, Reservation's transitions). The table's CHECK
// (reserved <= on_hand) is the last line of defence against overselling. UpsertProduct records
// its request id in inventory.product_upserts first, in the same transaction as the product
// write, so a repeated request id (even a late one, or one for another SKU) writes nothing.
// Thread-safe.
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
