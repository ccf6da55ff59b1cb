#include "services/orders/order.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/common/ids.h"
#include "services/common/validation.h"

namespace order_platform::orders {

const char* OrderStatusName(OrderStatus status) {
  switch (status) {
    case OrderStatus::kPending:
      return "pending";
    case OrderStatus::kConfirmed:
      return "confirmed";
    case OrderStatus::kRejected:
      return "rejected";
    case OrderStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::optional<OrderStatus> ParseOrderStatus(absl::string_view name) {
  for (OrderStatus s : {OrderStatus::kPending, OrderStatus::kConfirmed, OrderStatus::kRejected,
                        OrderStatus::kCancelled}) {
    if (name == OrderStatusName(s)) return s;
  }
  return std::nullopt;
}

bool IsTerminal(OrderStatus status) {
  return status == OrderStatus::kRejected || status == OrderStatus::kCancelled;
}

bool CanTransition(OrderStatus from, OrderStatus to) {
  switch (from) {
    case OrderStatus::kPending:
      return to == OrderStatus::kConfirmed || to == OrderStatus::kRejected ||
             to == OrderStatus::kCancelled;
    case OrderStatus::kConfirmed:
      return to == OrderStatus::kCancelled;
    case OrderStatus::kRejected:
    case OrderStatus::kCancelled:
      return false;
  }
  return false;
}

std::vector<OrderStatus> StatusesThatCanBecome(OrderStatus to) {
  std::vector<OrderStatus> from;
  for (OrderStatus status : {OrderStatus::kPending, OrderStatus::kConfirmed, OrderStatus::kRejected,
                             OrderStatus::kCancelled}) {
    if (CanTransition(status, to)) from.push_back(status);
  }
  return from;
}

absl::Status Order::TransitionTo(OrderStatus to, std::string reason) {
  if (!CanTransition(status, to)) {
    return absl::FailedPreconditionError(absl::StrCat("order ", id, " is ", OrderStatusName(status),
                                                      " and cannot become ", OrderStatusName(to)));
  }
  status = to;
  status_reason = std::move(reason);
  return absl::OkStatus();
}

uint64_t FingerprintOf(const NewOrder& request) {
  std::string canonical = absl::StrCat(request.customer_id, "\x1f", request.payment_token);
  for (const OrderItem& item : request.items) {
    absl::StrAppend(&canonical, "\x1e", item.sku, "\x1f", item.quantity, "\x1f",
                    item.unit_price.currency, "\x1f", item.unit_price.minor);
  }
  if (request.confirm_within.has_value()) {
    absl::StrAppend(&canonical, "\x1d", absl::ToInt64Nanoseconds(*request.confirm_within));
  }
  return Fingerprint(canonical);
}

std::string PlaceOrderWorkflowId(absl::string_view order_id) {
  return absl::StrCat("place-order-", order_id);
}

absl::StatusOr<Order> MakeOrder(const NewOrder& request, absl::Time now) {
  OP_RETURN_IF_ERROR(ValidateRequestId(request.request_id));
  OP_RETURN_IF_ERROR(ValidateIdentifier(request.customer_id, "customer_id"));
  OP_RETURN_IF_ERROR(ValidateIdentifier(request.payment_token, "payment_token", 128));
  if (request.confirm_within.has_value() && (*request.confirm_within < kMinConfirmWithin ||
                                             *request.confirm_within > kMaxConfirmWithin)) {
    return InvalidField("confirm_within", "must be between 1s and 30 days");
  }
  if (request.items.empty()) return InvalidField("items", "at least one item is required");
  if (request.items.size() > kMaxItemsPerOrder) {
    return InvalidField("items", absl::StrCat("at most ", kMaxItemsPerOrder, " items"));
  }
  absl::flat_hash_set<absl::string_view> skus;
  Money total{request.items.front().unit_price.currency, 0};
  for (size_t i = 0; i < request.items.size(); ++i) {
    const OrderItem& item = request.items[i];
    const std::string path = absl::StrCat("items[", i, "]");
    OP_RETURN_IF_ERROR(ValidateSku(item.sku, absl::StrCat(path, ".sku")));
    if (!skus.insert(item.sku).second) {
      return InvalidField(absl::StrCat(path, ".sku"), "appears more than once in the order");
    }
    OP_RETURN_IF_ERROR(
        ValidateRange(item.quantity, absl::StrCat(path, ".quantity"), 1, kMaxItemQuantity));
    OP_RETURN_IF_ERROR(ValidateAmount(item.unit_price, absl::StrCat(path, ".unit_price"),
                                      /*allow_zero=*/true));
    if (item.unit_price.currency != total.currency) {
      return InvalidField(absl::StrCat(path, ".unit_price.currency_code"),
                          "every item of an order must use the same currency");
    }
    absl::StatusOr<Money> line = MultiplyMoney(item.unit_price, item.quantity);
    if (line.ok()) line = AddMoney(total, *line);
    if (!line.ok()) return InvalidField("items", "order total overflows");
    total = *line;
  }

  Order order;
  order.id = NewOrderId(request.customer_id, now);
  order.customer_id = request.customer_id;
  order.items = request.items;
  order.total = std::move(total);
  order.status = OrderStatus::kPending;
  order.version = 1;
  order.workflow_id = PlaceOrderWorkflowId(order.id);
  order.payment_token = request.payment_token;
  order.request_id = request.request_id;
  order.request_fingerprint = FingerprintOf(request);
  order.confirm_within = request.confirm_within;
  order.create_time = now;
  order.update_time = now;
  return order;
}

}  // namespace order_platform::orders
