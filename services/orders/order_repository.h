// What the order domain needs from storage. Implemented by PgOrderRepository (db/) and
// MemoryOrderRepository (here); both pass tests/contract/order_repository_contract.h.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "services/common/page_token.h"
#include "services/orders/order.h"

namespace order_platform::orders {

struct CreateOrderResult {
  Order order;
  // False when an order with the same request_id already existed; `order` is that order.
  bool created = false;
};

struct OrderListQuery {
  std::optional<std::string> customer_id;
  std::optional<OrderStatus> status;
  int32_t page_size = 50;
  // Rows strictly after this (create_time, id) in newest-first order.
  std::optional<PageCursor> after;
};

struct OrderPage {
  std::vector<Order> orders;
  // Set when more rows may follow: the position of the last row returned.
  std::optional<PageCursor> next;
};

class OrderRepository {
 public:
  virtual ~OrderRepository() = default;

  // Stores `order` (status, items, total...) atomically, assigning create/update times from the
  // store's clock. If an order with the same request_id exists (including one being inserted
  // concurrently) nothing is written and that order is returned with created=false; comparing
  // fingerprints is the caller's job. (A store that re-runs its write after losing the answer
  // with a connection may find `order` itself, by its id: written by this very call, it is
  // created=true.)
  virtual absl::StatusOr<CreateOrderResult> Create(const Order& order) = 0;

  // The order with its items. NOT_FOUND if absent.
  virtual absl::StatusOr<Order> Get(absl::string_view order_id) = 0;

  // The orders among `order_ids` that exist, in no particular order, in one round trip.
  virtual absl::StatusOr<std::vector<Order>> BatchGet(absl::Span<const std::string> order_ids) = 0;

  // One page of orders matching `query`, newest first (create_time DESC, id DESC).
  virtual absl::StatusOr<OrderPage> List(const OrderListQuery& query) = 0;

  // Loads the order exclusively, applies `mutate`, and saves it with version + 1 and a new
  // update_time, all in one transaction; returns the saved order. When `mutate` returns an error
  // nothing is saved and that error is returned. `mutate` may be called more than once (retry on
  // serialization failure or deadlock), so it must only edit its argument. Items are immutable.
  virtual absl::StatusOr<Order> Update(absl::string_view order_id,
                                       absl::FunctionRef<absl::Status(Order&)> mutate) = 0;
};

}  // namespace order_platform::orders
