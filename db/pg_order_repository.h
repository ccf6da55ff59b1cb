// OrderRepository on PostgreSQL (schema `orders`). An order, its items and its workflow are
// written by one statement, shared by the orders created at the same time (GroupCommit;
// WriteBatchOptions::max_batch), and read back by one statement; BatchGet uses `= ANY($1)`;
// List pages by keyset on (created_at, id) with an index for each filter. Thread-safe.
#pragma once

#include <functional>

#include "absl/time/time.h"
#include "db/group_commit.h"
#include "db/pg_workflow_store.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "services/orders/order_repository.h"

namespace order_platform::db {

// One order's Create inside a shared statement.
struct CreateWrite;

class PgOrderRepository final : public orders::OrderRepository {
 public:
  // `pool` must outlive this object and point at a database migrated to the `orders` schema
  // (and the `saga` schema when a workflow launcher is set). The repository opens its own
  // connection for the shared Create statements (as many as `pool` may with batching off).
  explicit PgOrderRepository(ConnectionPool* pool, WriteBatchOptions options = {});
  ~PgOrderRepository() override;

  absl::StatusOr<orders::CreateOrderResult> Create(const orders::Order& order) override;
  absl::StatusOr<orders::Order> Get(absl::string_view order_id) override;
  absl::StatusOr<std::vector<orders::Order>> BatchGet(
      absl::Span<const std::string> order_ids) override;
  absl::StatusOr<orders::OrderPage> List(const orders::OrderListQuery& query) override;
  absl::StatusOr<orders::Order> Update(
      absl::string_view order_id,
      absl::FunctionRef<absl::Status(orders::Order&)> mutate) override;

  // Update inside the caller's transaction (a saga local step or finish hook), so the order's
  // change commits with the workflow's checkpoint.
  static absl::StatusOr<orders::Order> UpdateInTransaction(
      pqxx::transaction_base& tx, absl::string_view order_id,
      absl::FunctionRef<absl::Status(orders::Order&)> mutate);

  // UpdateInTransaction with Order::TransitionTo(to, reason), in one statement when the order is
  // in a status that may become `to` (the order is not read first); otherwise the read-and-check
  // path answers (NOT_FOUND, FAILED_PRECONDITION naming the status).
  static absl::Status TransitionInTransaction(pqxx::transaction_base& tx,
                                              absl::string_view order_id, orders::OrderStatus to,
                                              const std::string& reason);

  // Makes Create start the order's workflow in the same statement that inserts the order (no
  // order without its saga, no saga without its order). `launch` describes the workflow for an
  // order. Call before serving; not thread-safe with Create.
  // `started` (may be empty) runs after the commit of each new order with the workflow it
  // started, e.g. to hand it to a local coordinator (saga::Engine::OfferLease / Adopt).
  void SetWorkflowLauncher(std::function<WorkflowStart(const orders::Order&)> launch,
                           std::function<void(const WorkflowStart&)> started = {}) {
    launch_ = std::move(launch);
    started_ = std::move(started);
  }

  // The shared Create statements sent, and their connections (for metrics).
  GroupCommitStats CreateStats() const { return creates_.Stats(); }
  const ConnectionPool& batch_pool() const { return batch_pool_; }

 private:
  void SendCreates(const std::vector<CreateWrite*>& batch);

  ConnectionPool& pool_;
  ConnectionPool batch_pool_;
  GroupCommit<CreateWrite> creates_;
  std::function<WorkflowStart(const orders::Order&)> launch_;
  std::function<void(const WorkflowStart&)> started_;
};

}  // namespace order_platform::db
