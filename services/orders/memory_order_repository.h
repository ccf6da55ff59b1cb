// In-memory OrderRepository for unit tests of code above the repository. Passes the same
// contract suite as the PostgreSQL implementation. Thread-safe.
#pragma once

#include <map>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/orders/order_repository.h"

namespace order_platform::orders {

class MemoryOrderRepository final : public OrderRepository {
 public:
  absl::StatusOr<CreateOrderResult> Create(const Order& order) override;
  absl::StatusOr<Order> Get(absl::string_view order_id) override;
  absl::StatusOr<std::vector<Order>> BatchGet(absl::Span<const std::string> order_ids) override;
  absl::StatusOr<OrderPage> List(const OrderListQuery& query) override;
  absl::StatusOr<Order> Update(absl::string_view order_id,
                               absl::FunctionRef<absl::Status(Order&)> mutate) override;

 private:
  absl::Time NextTimestamp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Order> orders_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> id_by_request_ ABSL_GUARDED_BY(mu_);
  absl::Time last_timestamp_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace order_platform::orders
