#include "services/payments/memory_payment_repository.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "services/common/errors.h"

namespace order_platform::payments {
namespace {

// Newest first: (create_time DESC, id DESC).
bool Before(const Payment& a, const Payment& b) {
  return std::tie(b.create_time, b.id) < std::tie(a.create_time, a.id);
}

bool AfterCursor(const Payment& p, const PageCursor& c) {
  return std::tie(p.create_time, p.id) < std::tie(c.time, c.id);
}

}  // namespace

absl::Time MemoryPaymentRepository::NextTimestamp() {
  // Microsecond resolution like PostgreSQL's timestamptz.
  absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  last_timestamp_ = std::max(now, last_timestamp_);
  return last_timestamp_;
}

absl::StatusOr<CreatePaymentResult> MemoryPaymentRepository::CreatePending(const Payment& payment) {
  absl::MutexLock lock(&mu_);
  if (auto it = id_by_request_.find(payment.request_id); it != id_by_request_.end()) {
    return CreatePaymentResult{payments_.at(it->second), false};
  }
  // Request ids are unique across authorizations and operations.
  if (operations_.contains(payment.request_id)) return RequestIdReused(payment.request_id);
  if (payments_.contains(payment.id)) return absl::AlreadyExistsError("payment id already exists");
  Payment stored = payment;
  stored.version = 1;
  stored.create_time = stored.update_time = NextTimestamp();
  id_by_request_[payment.request_id] = payment.id;
  payments_[payment.id] = stored;
  return CreatePaymentResult{std::move(stored), true};
}

absl::StatusOr<Payment> MemoryPaymentRepository::Get(absl::string_view payment_id) {
  absl::MutexLock lock(&mu_);
  auto it = payments_.find(payment_id);
  if (it == payments_.end()) return NotFound("payment", payment_id);
  return it->second;
}

absl::StatusOr<PaymentOperation> MemoryPaymentRepository::GetOperation(
    absl::string_view request_id) {
  absl::MutexLock lock(&mu_);
  auto it = operations_.find(request_id);
  if (it == operations_.end()) {
    if (id_by_request_.contains(request_id)) return RequestIdReused(request_id);
    return NotFound("payment operation", request_id);
  }
  return it->second;
}

absl::StatusOr<PaymentForOperation> MemoryPaymentRepository::GetForOperation(
    absl::string_view payment_id, absl::string_view request_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = operations_.find(request_id); it != operations_.end()) {
    return PaymentForOperation{payments_.at(it->second.payment_id), it->second};
  }
  if (id_by_request_.contains(request_id)) return RequestIdReused(request_id);
  auto it = payments_.find(payment_id);
  if (it == payments_.end()) return NotFound("payment", payment_id);
  return PaymentForOperation{it->second, std::nullopt};
}

absl::StatusOr<PaymentPage> MemoryPaymentRepository::List(const PaymentListQuery& query) {
  absl::MutexLock lock(&mu_);
  std::vector<const Payment*> matching;
  for (const auto& [id, payment] : payments_) {
    if (query.order_id && payment.order_id != *query.order_id) continue;
    if (query.after && !AfterCursor(payment, *query.after)) continue;
    matching.push_back(&payment);
  }
  std::sort(matching.begin(), matching.end(),
            [](const Payment* a, const Payment* b) { return Before(*a, *b); });
  PaymentPage page;
  const size_t limit = static_cast<size_t>(query.page_size);
  for (size_t i = 0; i < matching.size() && i < limit; ++i) {
    page.payments.push_back(*matching[i]);
  }
  if (matching.size() > limit && !page.payments.empty()) {
    page.next = PageCursor{page.payments.back().create_time, page.payments.back().id};
  }
  return page;
}

absl::StatusOr<Payment> MemoryPaymentRepository::UpdateLocked(
    absl::string_view payment_id, absl::FunctionRef<absl::Status(Payment&)> mutate) {
  auto it = payments_.find(payment_id);
  if (it == payments_.end()) return NotFound("payment", payment_id);
  const Payment& before = it->second;
  Payment copy = before;
  OP_RETURN_IF_ERROR(mutate(copy));
  copy.id = before.id;
  copy.order_id = before.order_id;
  copy.request_id = before.request_id;
  copy.request_fingerprint = before.request_fingerprint;
  copy.payment_token = before.payment_token;
  copy.amount = before.amount;
  copy.create_time = before.create_time;
  copy.version = before.version + 1;
  copy.update_time = NextTimestamp();
  it->second = copy;
  return copy;
}

absl::StatusOr<Payment> MemoryPaymentRepository::Update(
    const Payment& as_read, absl::FunctionRef<absl::Status(Payment&)> mutate) {
  absl::MutexLock lock(&mu_);
  return UpdateLocked(as_read.id, mutate);
}

absl::StatusOr<ApplyOperationResult> MemoryPaymentRepository::ApplyOperation(
    const PaymentOperation& operation, const Payment& /*as_read*/,
    absl::FunctionRef<absl::Status(Payment&)> mutate) {
  absl::MutexLock lock(&mu_);
  if (auto it = operations_.find(operation.request_id); it != operations_.end()) {
    return ApplyOperationResult{payments_.at(it->second.payment_id), it->second, false};
  }
  // Request ids are unique across authorizations and operations.
  if (id_by_request_.contains(operation.request_id)) {
    return RequestIdReused(operation.request_id);
  }
  OP_ASSIGN_OR_RETURN(Payment saved, UpdateLocked(operation.payment_id, mutate));
  PaymentOperation stored = operation;
  stored.create_time = saved.update_time;
  operations_[stored.request_id] = stored;
  return ApplyOperationResult{std::move(saved), std::move(stored), true};
}

}  // namespace order_platform::payments
