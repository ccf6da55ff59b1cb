// InventoryRepository on PostgreSQL (schema `inventory`).
//
// Stock moves in one statement per use case when it succeeds, whatever the number of items, and
// that statement is shared by the orders making the same move at the same time (GroupCommit;
// WriteBatchOptions::max_batch): Reserve locks the items' products in sku order
// (`FOR UPDATE`, so concurrent reservations never deadlock) and, for each order that holds no
// reservation and whose items are all available (counting, per SKU, the orders before it in the
// statement), inserts the reservation and its items and raises `reserved` of every product.
// Release, Commit and Return move the reservations' status (locking their rows in order id order)
// and then lock their products in sku order and apply the stock effect. An order the statement
// did not write (a replay, missing stock, a reservation in another state, an order refused for
// an earlier one's demand, a statement that failed) is decided alone: a short transaction under
// the same locks works out the answer with the domain's rules (CheckStock, Reservation's
// transitions). The table's CHECK (reserved <= on_hand) is the last line of defence against
// overselling. UpsertProduct records its request id in inventory.product_upserts first, in the
// same transaction as the product write, so a repeated request id (even a late one, or one for
// another SKU) writes nothing.
// Thread-safe.
#pragma once

#include "absl/time/time.h"
#include "db/group_commit.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "services/inventory/inventory_repository.h"

namespace order_platform::db {

// One order's Reserve, or one order's Release/Commit/Return, inside a batched statement.
struct ReserveWrite;
struct SettleWrite;

class PgInventoryRepository final : public inventory::InventoryRepository {
 public:
  // `pool` must outlive this object and point at a database migrated to the `inventory` schema.
  // The repository opens its own connections for batched statements (four when batching, else as
  // many as `pool` may), to the same database with the same options.
  explicit PgInventoryRepository(ConnectionPool* pool, WriteBatchOptions options = {});
  ~PgInventoryRepository() override;

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

  // The batched statements sent: Reserves; Releases, Commits and Returns together.
  GroupCommitStats ReserveStats() const { return reserves_.Stats(); }
  GroupCommitStats SettleStats() const;
  // The connections of the batched statements (for pool metrics).
  const ConnectionPool& batch_pool() const { return batch_pool_; }

 private:
  void SendReserves(const std::vector<ReserveWrite*>& batch);
  void SendSettles(const Statement& apply, const std::vector<SettleWrite*>& batch);
  // Moves the reservation of `order_id` with `apply` (batched in `batches`), or, when that finds
  // nothing to move, decides with the domain's `transition` under the reservation's lock.
  absl::StatusOr<inventory::Reservation> Settle(
      GroupCommit<SettleWrite>& batches, const Statement& apply, absl::string_view order_id,
      absl::StatusOr<bool> (inventory::Reservation::*transition)());

  ConnectionPool& pool_;
  // Connections for the batched statements, which join parameter arrays to the tables: they plan
  // with index access only (IndexOnlyPlanSettings) and give up on a row lock after lock_timeout.
  ConnectionPool batch_pool_;
  GroupCommit<ReserveWrite> reserves_;
  GroupCommit<SettleWrite> releases_;
  GroupCommit<SettleWrite> commits_;
  GroupCommit<SettleWrite> returns_;
};

}  // namespace order_platform::db
