// PaymentRepository on PostgreSQL (schema `payments`). Every request_id (authorization, capture,
// void, refund) is a row of payments.operations, whose primary key keeps request ids unique
// across kinds. CreatePending is one autocommit statement that claims the request_id there
// (`ON CONFLICT (request_id)`) and inserts the payment only if that succeeded; GetForOperation
// reads a payment together with the operation recorded under a request_id in one statement;
// Update and ApplyOperation are optimistic: when the payment is still at the version the caller
// read, the save (and the operation record) is one conditional statement; otherwise they lock the
// payment row (`FOR UPDATE`) and write the payment and its operation record in one transaction.
// CreatePending's statement and ApplyOperation's conditional statement are shared by the
// payments written at the same time (GroupCommit; WriteBatchOptions::max_batch); one they
// did not write is answered alone, as above.
// List pages by keyset on (created_at, id) with an index for each filter. Thread-safe.
#pragma once

#include "absl/time/time.h"
#include "db/group_commit.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "services/payments/payment_repository.h"

namespace order_platform::db {

// One payment's write inside a shared statement.
struct CreatePaymentWrite;
struct ApplyOperationWrite;

class PgPaymentRepository final : public payments::PaymentRepository {
 public:
  // `pool` must outlive this object and point at a database migrated to the `payments` schema.
  // The repository opens its own connections for the shared statements (two when batching, else
  // as many as `pool` may).
  explicit PgPaymentRepository(ConnectionPool* pool, WriteBatchOptions options = {});
  ~PgPaymentRepository() override;

  absl::StatusOr<payments::CreatePaymentResult> CreatePending(
      const payments::Payment& payment) override;
  absl::StatusOr<payments::Payment> Get(absl::string_view payment_id) override;
  absl::StatusOr<payments::PaymentOperation> GetOperation(absl::string_view request_id) override;
  absl::StatusOr<payments::PaymentForOperation> GetForOperation(
      absl::string_view payment_id, absl::string_view request_id) override;
  absl::StatusOr<payments::PaymentPage> List(const payments::PaymentListQuery& query) override;
  absl::StatusOr<payments::Payment> Update(
      const payments::Payment& as_read,
      absl::FunctionRef<absl::Status(payments::Payment&)> mutate) override;
  absl::StatusOr<payments::ApplyOperationResult> ApplyOperation(
      const payments::PaymentOperation& operation, const payments::Payment& as_read,
      absl::FunctionRef<absl::Status(payments::Payment&)> mutate) override;

  // The shared statements sent (both kinds), and their connections (for metrics).
  GroupCommitStats WriteStats() const;
  const ConnectionPool& batch_pool() const { return batch_pool_; }

 private:
  void SendCreates(const std::vector<CreatePaymentWrite*>& batch);
  void SendApplies(const std::vector<ApplyOperationWrite*>& batch);

  ConnectionPool& pool_;
  ConnectionPool batch_pool_;
  GroupCommit<CreatePaymentWrite> creates_;
  GroupCommit<ApplyOperationWrite> applies_;
};

}  // namespace order_platform::db
