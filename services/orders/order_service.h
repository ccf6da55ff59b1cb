// The order use cases: create, read, list, batch-read and cancel, on top of an OrderRepository.
// Transport-neutral: the gRPC handler (order_handler.h) adapts protos to these calls.
// Thread-safe if the repository is.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/orders/order.h"
#include "services/orders/order_repository.h"

namespace order_platform::orders {

struct ListOrdersParams {
  std::string customer_id;  // Empty: any customer.
  std::optional<OrderStatus> status;
  int32_t page_size = 0;  // 0: default.
  std::string page_token;
};

struct ListOrdersResult {
  std::vector<Order> orders;
  std::string next_page_token;  // Empty on the last page.
};

struct BatchGetResult {
  std::vector<Order> orders;               // In request order, duplicates collapsed.
  std::vector<std::string> missing_ids;    // Requested ids with no order.
};

struct CancelOrderParams {
  std::string request_id;
  std::string order_id;
  std::string reason;
  int64_t expected_version = 0;  // 0: any version.
};

inline constexpr int32_t kDefaultPageSize = 50;
inline constexpr int32_t kMaxPageSize = 1000;
inline constexpr int kMaxBatchGet = 1000;

class OrderService {
 public:
  // `repository` must outlive this object.
  explicit OrderService(OrderRepository* repository) : repository_(*repository) {}

  // Validates and stores a new PENDING order. A replay of the same request returns the first
  // order with created=false; the same request_id with a different request is ALREADY_EXISTS.
  absl::StatusOr<CreateOrderResult> Create(const NewOrder& request);

  absl::StatusOr<Order> Get(absl::string_view order_id);
  absl::StatusOr<ListOrdersResult> List(const ListOrdersParams& params);
  absl::StatusOr<BatchGetResult> BatchGet(const std::vector<std::string>& order_ids);

  // Cancels a PENDING order. Replaying the request that cancelled it returns the order
  // unchanged. FAILED_PRECONDITION for terminal or confirmed orders (a confirmed order is
  // cancelled through a refund workflow), ABORTED when expected_version does not match.
  absl::StatusOr<Order> Cancel(const CancelOrderParams& params);

 private:
  OrderRepository& repository_;
};

}  // namespace order_platform::orders
