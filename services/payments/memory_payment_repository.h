// In-memory PaymentRepository for unit tests of code above the repository. Passes the same
// contract suite as the PostgreSQL implementation. Thread-safe: every call runs under one mutex,
// which makes each call one atomic unit of work.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/payments/payment_repository.h"

namespace order_platform::payments {

class MemoryPaymentRepository final : public PaymentRepository {
 public:
  absl::StatusOr<CreatePaymentResult> CreatePending(const Payment& payment) override;
  absl::StatusOr<Payment> Get(absl::string_view payment_id) override;
  absl::StatusOr<PaymentOperation> GetOperation(absl::string_view request_id) override;
  absl::StatusOr<PaymentForOperation> GetForOperation(absl::string_view payment_id,
                                                      absl::string_view request_id) override;
  absl::StatusOr<PaymentPage> List(const PaymentListQuery& query) override;
  // `as_read` is not needed here: under one mutex every save sees the stored payment.
  absl::StatusOr<Payment> Update(const Payment& as_read,
                                 absl::FunctionRef<absl::Status(Payment&)> mutate) override;
  absl::StatusOr<ApplyOperationResult> ApplyOperation(
      const PaymentOperation& operation, const Payment& as_read,
      absl::FunctionRef<absl::Status(Payment&)> mutate) override;

 private:
  absl::Time NextTimestamp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies `mutate` to a copy of the stored payment and saves it as Update does.
  absl::StatusOr<Payment> UpdateLocked(absl::string_view payment_id,
                                       absl::FunctionRef<absl::Status(Payment&)> mutate)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Payment> payments_ ABSL_GUARDED_BY(mu_);
  // Request ids of authorizations and of operations; the two never share a key.
  absl::flat_hash_map<std::string, std::string> id_by_request_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, PaymentOperation> operations_ ABSL_GUARDED_BY(mu_);
  absl::Time last_timestamp_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace order_platform::payments
