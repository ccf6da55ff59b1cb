#include "services/orders/memory_order_repository.h"

#include <algorithm>

#include "services/common/errors.h"

namespace order_platform::orders {
namespace {

// Newest first: (create_time DESC, id DESC).
bool Before(const Order& a, const Order& b) {
  return std::tie(b.create_time, b.id) < std::tie(a.create_time, a.id);
}

bool AfterCursor(const Order& o, const PageCursor& c) {
  return std::tie(o.create_time, o.id) < std::tie(c.time, c.id);
}

}  // namespace

absl::Time MemoryOrderRepository::NextTimestamp() {
  // Microsecond resolution like PostgreSQL's timestamptz.
  absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  last_timestamp_ = std::max(now, last_timestamp_);
  return last_timestamp_;
}

absl::StatusOr<CreateOrderResult> MemoryOrderRepository::Create(const Order& order) {
  absl::MutexLock lock(&mu_);
  if (auto it = id_by_request_.find(order.request_id); it != id_by_request_.end()) {
    return CreateOrderResult{orders_.at(it->second), false};
  }
  if (orders_.contains(order.id)) return absl::AlreadyExistsError("order id already exists");
  Order stored = order;
  stored.create_time = stored.update_time = NextTimestamp();
  id_by_request_[order.request_id] = order.id;
  orders_[order.id] = stored;
  return CreateOrderResult{std::move(stored), true};
}

absl::StatusOr<Order> MemoryOrderRepository::Get(absl::string_view order_id) {
  absl::MutexLock lock(&mu_);
  auto it = orders_.find(order_id);
  if (it == orders_.end()) return NotFound("order", order_id);
  return it->second;
}

absl::StatusOr<std::vector<Order>> MemoryOrderRepository::BatchGet(
    absl::Span<const std::string> order_ids) {
  absl::MutexLock lock(&mu_);
  std::vector<Order> out;
  for (const std::string& id : order_ids) {
    if (auto it = orders_.find(id); it != orders_.end()) out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<OrderPage> MemoryOrderRepository::List(const OrderListQuery& query) {
  absl::MutexLock lock(&mu_);
  std::vector<const Order*> matching;
  for (const auto& [id, order] : orders_) {
    if (query.customer_id && order.customer_id != *query.customer_id) continue;
    if (query.status && order.status != *query.status) continue;
    if (query.after && !AfterCursor(order, *query.after)) continue;
    matching.push_back(&order);
  }
  std::sort(matching.begin(), matching.end(),
            [](const Order* a, const Order* b) { return Before(*a, *b); });
  OrderPage page;
  const size_t limit = static_cast<size_t>(query.page_size);
  for (size_t i = 0; i < matching.size() && i < limit; ++i) page.orders.push_back(*matching[i]);
  if (matching.size() > limit && !page.orders.empty()) {
    page.next = PageCursor{page.orders.back().create_time, page.orders.back().id};
  }
  return page;
}

absl::StatusOr<Order> MemoryOrderRepository::Update(
    absl::string_view order_id, absl::FunctionRef<absl::Status(Order&)> mutate) {
  absl::MutexLock lock(&mu_);
  auto it = orders_.find(order_id);
  if (it == orders_.end()) return NotFound("order", order_id);
  Order copy = it->second;
  OP_RETURN_IF_ERROR(mutate(copy));
  copy.id = it->second.id;
  copy.items = it->second.items;
  copy.create_time = it->second.create_time;
  copy.version = it->second.version + 1;
  copy.update_time = NextTimestamp();
  it->second = copy;
  return copy;
}

}  // namespace order_platform::orders
