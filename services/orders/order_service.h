// The order use cases: create, read, list, batch-read and cancel, on top of an OrderRepository.
// Transport-neutral: the gRPC handler (order_handler.h) adapts protos to these calls.
// Thread-safe if the repository is.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/business_events.h"
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

// The workflows that drive orders, as the order service needs them (implemented by the saga
// coordinator's wiring; absent in unit tests, where Cancel changes the order directly).
class OrderWorkflows {
 public:
  virtual ~OrderWorkflows() = default;
  // Asks the order's in-flight PlaceOrder workflow to stop and undo what it did; the workflow
  // marks the order CANCELLED once its compensations ran. Idempotent. FAILED_PRECONDITION when
  // the workflow is past its pivot (the order is being confirmed).
  virtual absl::Status CancelInFlight(const Order& order, const std::string& reason) = 0;
  // Starts (idempotently) the refund workflow of a confirmed order: refund the payment, return
  // the stock, mark the order CANCELLED.
  virtual absl::Status StartRefund(const Order& order, const std::string& reason) = 0;
};

inline constexpr int32_t kDefaultPageSize = 50;
inline constexpr int32_t kMaxPageSize = 1000;
inline constexpr int kMaxBatchGet = 1000;

class OrderService {
 public:
  // `repository` and `events` (nullptr: none) must outlive this object. `events` hears of every
  // order created and cancelled.
  explicit OrderService(OrderRepository* repository, BusinessEvents* events = nullptr)
      : repository_(*repository), events_(events != nullptr ? *events : NoBusinessEvents()) {}

  // Validates and stores a new PENDING order. A replay of the same request returns the first
  // order with created=false; the same request_id with a different request is ALREADY_EXISTS.
  absl::StatusOr<CreateOrderResult> Create(const NewOrder& request);

  absl::StatusOr<Order> Get(absl::string_view order_id);
  absl::StatusOr<ListOrdersResult> List(const ListOrdersParams& params);
  absl::StatusOr<BatchGetResult> BatchGet(const std::vector<std::string>& order_ids);

  // Cancels an order. Without workflows (SetWorkflows not called) a PENDING order becomes
  // CANCELLED at once. With them, a PENDING order's workflow is cancelled (its compensations run)
  // and a CONFIRMED order is refunded; the call waits up to the configured time for the order to
  // reach CANCELLED and returns it as it then is. Replaying the request returns the order
  // unchanged. FAILED_PRECONDITION for terminal orders, ABORTED when expected_version does not
  // match.
  absl::StatusOr<Order> Cancel(const CancelOrderParams& params);

  // Routes cancellations through `workflows` (must outlive this object) and makes Cancel wait up
  // to `wait` for the order to become CANCELLED. Call before serving.
  void SetWorkflows(OrderWorkflows* workflows, absl::Duration wait) {
    workflows_ = workflows;
    cancel_wait_ = wait;
  }

 private:
  absl::StatusOr<Order> CancelThroughWorkflow(const CancelOrderParams& params,
                                              const std::string& id);

  OrderRepository& repository_;
  BusinessEvents& events_;
  OrderWorkflows* workflows_ = nullptr;
  absl::Duration cancel_wait_ = absl::ZeroDuration();
};

}  // namespace order_platform::orders
