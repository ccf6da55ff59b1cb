// In-memory InventoryRepository for unit tests of code above the repository. Passes the same
// contract suite as the PostgreSQL implementation. Thread-safe: one mutex makes every call
// atomic.
#pragma once

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/inventory/inventory_repository.h"

namespace order_platform::inventory {

class MemoryInventoryRepository final : public InventoryRepository {
 public:
  absl::StatusOr<UpsertProductResult> UpsertProduct(const Product& product,
                                                    int64_t expected_version) override;
  absl::StatusOr<Product> GetProduct(absl::string_view sku) override;
  absl::StatusOr<std::vector<Product>> ListProducts(absl::string_view after_sku,
                                                    int32_t limit) override;
  absl::StatusOr<ReserveResult> Reserve(const Reservation& reservation) override;
  absl::StatusOr<Reservation> Release(absl::string_view order_id) override;
  absl::StatusOr<Reservation> Commit(absl::string_view order_id) override;
  absl::StatusOr<Reservation> Return(absl::string_view order_id) override;
  absl::StatusOr<Reservation> GetReservation(absl::string_view order_id) override;

 private:
  // What settling a reservation does to each item's product, by the item's quantity.
  enum class StockEffect {
    kUnreserve,  // Release: off `reserved`.
    kSell,       // Commit: off `reserved` and `on_hand`.
    kRestock,    // Return: back onto `on_hand`.
  };

  // Applies `settle` (Reservation::Release, ::Commit or ::Return) to the reservation of
  // `order_id`; when it changed, applies `effect` to its products.
  absl::StatusOr<Reservation> Settle(absl::string_view order_id,
                                     absl::StatusOr<bool> (Reservation::*settle)(),
                                     StockEffect effect);
  absl::Time NextTimestamp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // An UpsertProduct request that wrote: which product, and what it asked for.
  struct RecordedUpsert {
    std::string sku;
    uint64_t request_fingerprint = 0;
  };

  absl::Mutex mu_;
  // Ordered by sku (byte order) for keyset listing.
  std::map<std::string, Product, std::less<>> products_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Reservation> reservations_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> order_by_request_ ABSL_GUARDED_BY(mu_);
  // By request id; never forgotten.
  absl::flat_hash_map<std::string, RecordedUpsert> upserts_ ABSL_GUARDED_BY(mu_);
  absl::Time last_timestamp_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace order_platform::inventory
