// The order aggregate: an order and its items, its status state machine, and the rules that
// build a valid order from a request. No I/O here; the repository stores what this file decides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/money.h"

namespace order_platform::orders {

// Limits on a single order, enforced by validation.
inline constexpr int kMaxItemsPerOrder = 100;
inline constexpr int32_t kMaxItemQuantity = 10000;
inline constexpr size_t kMaxReasonLength = 500;
// Bounds of CreateOrder's confirm_within.
inline constexpr absl::Duration kMinConfirmWithin = absl::Seconds(1);
inline constexpr absl::Duration kMaxConfirmWithin = absl::Hours(24 * 30);

enum class OrderStatus { kPending, kConfirmed, kRejected, kCancelled };

// Lower-case name used in storage and logs ("pending"); inverse of ParseOrderStatus.
const char* OrderStatusName(OrderStatus status);
std::optional<OrderStatus> ParseOrderStatus(absl::string_view name);

// True for the states an order never leaves.
bool IsTerminal(OrderStatus status);

// Whether the state machine allows `from` -> `to`:
//   PENDING -> CONFIRMED | REJECTED | CANCELLED,  CONFIRMED -> CANCELLED.
bool CanTransition(OrderStatus from, OrderStatus to);
// Every status `from` with CanTransition(from, to).
std::vector<OrderStatus> StatusesThatCanBecome(OrderStatus to);

struct OrderItem {
  std::string sku;
  int32_t quantity = 0;
  Money unit_price;

  friend bool operator==(const OrderItem& a, const OrderItem& b) {
    return a.sku == b.sku && a.quantity == b.quantity && a.unit_price == b.unit_price;
  }
};

// What a client asks for; validated and turned into an Order by MakeOrder.
struct NewOrder {
  std::string request_id;
  std::string customer_id;
  std::vector<OrderItem> items;
  std::string payment_token;
  // How long the order may take to be confirmed (kMinConfirmWithin..kMaxConfirmWithin); unset:
  // the server's default.
  std::optional<absl::Duration> confirm_within;
};

struct Order {
  std::string id;  // UUIDv7 embedding the customer's shard bucket.
  std::string customer_id;
  std::vector<OrderItem> items;
  Money total;
  OrderStatus status = OrderStatus::kPending;
  std::string status_reason;
  int64_t version = 1;
  std::string workflow_id;
  std::string payment_token;
  std::string request_id;
  // Fingerprint of the creating request: a replay with a different request is refused.
  uint64_t request_fingerprint = 0;
  // The request_id of the CancelOrder call that cancelled it, for idempotent cancel.
  std::string cancel_request_id;
  // As requested; not stored with the order: it becomes its PlaceOrder workflow's deadline.
  std::optional<absl::Duration> confirm_within;
  absl::Time create_time;  // Set by the repository (database clock).
  absl::Time update_time;

  // Moves to `to` with a human-readable `reason`. FAILED_PRECONDITION when the state machine
  // forbids it.
  absl::Status TransitionTo(OrderStatus to, std::string reason);
};

// Validates `request` (every field, with its path in the error) and builds the PENDING order:
// a fresh id for the customer's shard, the exact total, the workflow id that will drive it.
absl::StatusOr<Order> MakeOrder(const NewOrder& request, absl::Time now = absl::Now());

// The request fingerprint of `request`, stored with the order.
uint64_t FingerprintOf(const NewOrder& request);

// Workflow id of the PlaceOrder workflow for `order_id`.
std::string PlaceOrderWorkflowId(absl::string_view order_id);

}  // namespace order_platform::orders
