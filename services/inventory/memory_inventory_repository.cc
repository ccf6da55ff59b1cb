#include "services/inventory/memory_inventory_repository.h"

#include <algorithm>
#include <vector>

#include "services/common/errors.h"

namespace order_platform::inventory {

absl::Time MemoryInventoryRepository::NextTimestamp() {
  // Microsecond resolution like PostgreSQL's timestamptz.
  absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  last_timestamp_ = std::max(now, last_timestamp_);
  return last_timestamp_;
}

absl::StatusOr<UpsertProductResult> MemoryInventoryRepository::UpsertProduct(
    const Product& product, int64_t expected_version) {
  absl::MutexLock lock(&mu_);
  const std::string& request_id = product.last_request_id;
  const uint64_t fingerprint = product.last_request_fingerprint;
  if (!request_id.empty()) {
    if (auto recorded = upserts_.find(request_id); recorded != upserts_.end()) {
      return UpsertProductResult{products_.at(recorded->second.sku), false,
                                 recorded->second.request_fingerprint};
    }
  }
  // Only a successful write records its request id (below).
  auto it = products_.find(product.sku);
  if (it == products_.end()) {
    if (expected_version != 0) return ProductVersionMismatch(product.sku, 0, expected_version);
    Product stored = product;
    stored.reserved = 0;
    stored.version = 1;
    stored.create_time = stored.update_time = NextTimestamp();
    products_[stored.sku] = stored;
    if (!request_id.empty()) upserts_[request_id] = RecordedUpsert{product.sku, fingerprint};
    return UpsertProductResult{std::move(stored), true, fingerprint};
  }
  Product& stored = it->second;
  OP_RETURN_IF_ERROR(stored.Replace(product, expected_version));
  stored.version += 1;
  stored.update_time = NextTimestamp();
  if (!request_id.empty()) upserts_[request_id] = RecordedUpsert{product.sku, fingerprint};
  return UpsertProductResult{stored, true, fingerprint};
}

absl::StatusOr<Product> MemoryInventoryRepository::GetProduct(absl::string_view sku) {
  absl::MutexLock lock(&mu_);
  auto it = products_.find(sku);
  if (it == products_.end()) return NotFound("product", sku);
  return it->second;
}

absl::StatusOr<std::vector<Product>> MemoryInventoryRepository::ListProducts(
    absl::string_view after_sku, int32_t limit) {
  absl::MutexLock lock(&mu_);
  std::vector<Product> out;
  for (auto it = products_.upper_bound(after_sku);
       it != products_.end() && out.size() < static_cast<size_t>(std::max(limit, 0)); ++it) {
    out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<ReserveResult> MemoryInventoryRepository::Reserve(const Reservation& reservation) {
  absl::MutexLock lock(&mu_);
  if (auto it = reservations_.find(reservation.order_id); it != reservations_.end()) {
    return ReserveResult{it->second, false};
  }
  if (auto it = order_by_request_.find(reservation.request_id); it != order_by_request_.end()) {
    return ReserveResult{reservations_.at(it->second), false};
  }
  std::vector<Product> products;
  for (const ReservationItem& item : reservation.items) {
    if (auto it = products_.find(item.sku); it != products_.end()) {
      products.push_back(it->second);
    }
  }
  OP_RETURN_IF_ERROR(CheckStock(reservation.items, products));

  const absl::Time now = NextTimestamp();
  for (const ReservationItem& item : reservation.items) {
    Product& product = products_.at(item.sku);
    product.reserved += item.quantity;
    product.version += 1;
    product.update_time = now;
  }
  Reservation stored = reservation;
  stored.status = ReservationStatus::kHeld;
  stored.version = 1;
  stored.create_time = stored.update_time = now;
  order_by_request_[stored.request_id] = stored.order_id;
  reservations_[stored.order_id] = stored;
  return ReserveResult{std::move(stored), true};
}

absl::StatusOr<Reservation> MemoryInventoryRepository::Settle(
    absl::string_view order_id, absl::StatusOr<bool> (Reservation::*settle)(), StockEffect effect) {
  absl::MutexLock lock(&mu_);
  auto it = reservations_.find(order_id);
  if (it == reservations_.end()) return NotFound("reservation for order", order_id);
  Reservation copy = it->second;
  OP_ASSIGN_OR_RETURN(const bool changed, (copy.*settle)());
  if (!changed) return copy;

  const absl::Time now = NextTimestamp();
  for (const ReservationItem& item : copy.items) {
    Product& product = products_.at(item.sku);
    switch (effect) {
      case StockEffect::kUnreserve:
        product.reserved -= item.quantity;
        break;
      case StockEffect::kSell:
        product.reserved -= item.quantity;
        product.on_hand -= item.quantity;
        break;
      case StockEffect::kRestock:
        product.on_hand += item.quantity;
        break;
    }
    product.version += 1;
    product.update_time = now;
  }
  copy.version += 1;
  copy.update_time = now;
  it->second = copy;
  return copy;
}

absl::StatusOr<Reservation> MemoryInventoryRepository::Release(absl::string_view order_id) {
  return Settle(order_id, &Reservation::Release, StockEffect::kUnreserve);
}

absl::StatusOr<Reservation> MemoryInventoryRepository::Commit(absl::string_view order_id) {
  return Settle(order_id, &Reservation::Commit, StockEffect::kSell);
}

absl::StatusOr<Reservation> MemoryInventoryRepository::Return(absl::string_view order_id) {
  return Settle(order_id, &Reservation::Return, StockEffect::kRestock);
}

absl::StatusOr<Reservation> MemoryInventoryRepository::GetReservation(absl::string_view order_id) {
  absl::MutexLock lock(&mu_);
  auto it = reservations_.find(order_id);
  if (it == reservations_.end()) return NotFound("reservation for order", order_id);
  return it->second;
}

}  // namespace order_platform::inventory
