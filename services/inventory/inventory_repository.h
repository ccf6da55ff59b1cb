// What the inventory domain needs from storage. Implemented by PgInventoryRepository (db/) and
// MemoryInventoryRepository (here); both pass tests/contract/inventory_repository_contract.h.
//
// Invariant every implementation keeps, whatever the interleaving of calls:
//   0 <= reserved <= on_hand for every product, and a product's `reserved` is the sum of the
//   quantities of its HELD reservations.
// All methods are thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/inventory/inventory.h"

namespace order_platform::inventory {

struct UpsertProductResult {
  Product product;
  // False when the upsert was a replay (see UpsertProduct): nothing was written and `product`
  // is the stored product.
  bool written = false;
  // The fingerprint recorded under the request id: the request's own when written; for a
  // replay, that of the request recorded first (possibly for another SKU), for the caller to
  // compare with the new request's.
  uint64_t request_fingerprint = 0;
};

struct ReserveResult {
  Reservation reservation;
  // False when a reservation for the same order (or with the same request_id) already existed;
  // `reservation` is that one and no stock moved.
  bool created = false;
};

class InventoryRepository {
 public:
  virtual ~InventoryRepository() = default;

  // Creates `product` (sku, name, unit_price, on_hand; nothing reserved, version 1) or replaces
  // the name, unit_price and on_hand of the stored one (version + 1), stamping it with
  // product.last_request_id/last_request_fingerprint; times come from the store's clock. A
  // non-empty last_request_id is recorded durably (with the SKU and the fingerprint) in the same
  // atomic step as the write; an upsert that fails records nothing.
  //   - Replay: when an upsert with the same non-empty last_request_id is recorded (for this or
  //     any other SKU, whatever was written since), nothing is written and the product of the
  //     recorded SKU is returned as it is now, with written=false and the recorded fingerprint
  //     in request_fingerprint (checks below are skipped; comparing fingerprints is the
  //     caller's job). Of concurrent upserts with one request id exactly one writes; the others
  //     replay it.
  //   - ABORTED when `expected_version` is non-zero and the product is at another version or
  //     does not exist.
  //   - FAILED_PRECONDITION when the new on_hand is below the stored `reserved`.
  virtual absl::StatusOr<UpsertProductResult> UpsertProduct(const Product& product,
                                                            int64_t expected_version) = 0;

  // The product with its stock levels. NOT_FOUND if absent.
  virtual absl::StatusOr<Product> GetProduct(absl::string_view sku) = 0;

  // Up to `limit` products with sku > `after_sku` (byte order; "" for the first page), in
  // ascending sku order.
  virtual absl::StatusOr<std::vector<Product>> ListProducts(absl::string_view after_sku,
                                                            int32_t limit) = 0;

  // Stores `reservation` (HELD, validated) and raises `reserved` of every item's product by its
  // quantity, all in one atomic step: either every item is reserved or nothing changes.
  //   - Idempotent per order: if a reservation for reservation.order_id exists, or one was
  //     created with the same request_id (including one being created concurrently), nothing
  //     is written and that reservation is returned with created=false, whatever its status
  //     and items. Comparing fingerprints is the caller's job.
  //   - NOT_FOUND naming the first unknown SKU (in item order).
  //   - FAILED_PRECONDITION "insufficient stock for sku X: requested N, available M" for the
  //     first item whose product cannot supply it.
  // Concurrent reservations never oversell: of several competing for the last units, only as
  // many succeed as the stock allows.
  virtual absl::StatusOr<ReserveResult> Reserve(const Reservation& reservation) = 0;

  // Releases the reservation of `order_id` (Reservation::Release) and, if it was HELD, lowers
  // each product's `reserved` by the item's quantity in the same atomic step (version + 1).
  // Releasing a released reservation returns it unchanged. NOT_FOUND if there is none;
  // FAILED_PRECONDITION if it is committed or returned.
  virtual absl::StatusOr<Reservation> Release(absl::string_view order_id) = 0;

  // Commits the reservation of `order_id` (Reservation::Commit) and, if it was HELD, lowers
  // each product's `on_hand` and `reserved` by the item's quantity in the same atomic step
  // (version + 1). Committing a committed reservation returns it unchanged. NOT_FOUND if there
  // is none; FAILED_PRECONDITION if it is released or returned.
  virtual absl::StatusOr<Reservation> Commit(absl::string_view order_id) = 0;

  // Returns the reservation of `order_id` (Reservation::Return) and, if it was COMMITTED, raises
  // each product's `on_hand` by the item's quantity in the same atomic step (version + 1);
  // `reserved` is untouched. Returning a returned reservation returns it unchanged. NOT_FOUND if
  // there is none; FAILED_PRECONDITION if it is held or released.
  virtual absl::StatusOr<Reservation> Return(absl::string_view order_id) = 0;

  // The reservation of `order_id` with its items. NOT_FOUND if there is none.
  virtual absl::StatusOr<Reservation> GetReservation(absl::string_view order_id) = 0;
};

}  // namespace order_platform::inventory
