// OrderRepository on PostgreSQL (schema `orders`). An order and its items are written by one
// statement and read back by one statement; BatchGet uses `= ANY($1)`; List pages by keyset on
// (created_at, id) with an index for each filter. Thread-safe.
#pragma once

#include "db/pool.h"
#include "services/orders/order_repository.h"

namespace order_platform::db {

class PgOrderRepository final : public orders::OrderRepository {
 public:
  // `pool` must outlive this object and point at a database migrated to the `orders` schema.
  explicit PgOrderRepository(ConnectionPool* pool) : pool_(*pool) {}

  absl::StatusOr<orders::CreateOrderResult> Create(const orders::Order& order) override;
  absl::StatusOr<orders::Order> Get(absl::string_view order_id) override;
  absl::StatusOr<std::vector<orders::Order>> BatchGet(
      absl::Span<const std::string> order_ids) override;
  absl::StatusOr<orders::OrderPage> List(const orders::OrderListQuery& query) override;
  absl::StatusOr<orders::Order> Update(
      absl::string_view order_id,
      absl::FunctionRef<absl::Status(orders::Order&)> mutate) override;

 private:
  ConnectionPool& pool_;
};

}  // namespace order_platform::db
