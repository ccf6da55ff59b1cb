// The inventory use cases: upsert, read and list products; reserve, release, commit, return and
// read the stock reservation of an order; on top of an InventoryRepository. Transport-neutral:
// the gRPC handler (inventory_handler.h) adapts protos to these calls. Thread-safe if the
// repository is.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/business_events.h"
#include "services/inventory/inventory.h"
#include "services/inventory/inventory_repository.h"

namespace order_platform::inventory {

inline constexpr int32_t kDefaultPageSize = 50;
inline constexpr int32_t kMaxPageSize = 1000;

struct ListProductsParams {
  int32_t page_size = 0;  // 0: default.
  std::string page_token;
};

struct ListProductsResult {
  std::vector<Product> products;  // Ascending sku.
  std::string next_page_token;    // Empty on the last page.
};

// Release, commit and return requests.
struct SettleReservationParams {
  std::string request_id;
  std::string order_id;
};

class InventoryService {
 public:
  // `repository` and `events` (nullptr: none) must outlive this object. `events` hears of every
  // reservation refused for missing stock or an unknown SKU.
  explicit InventoryService(InventoryRepository* repository, BusinessEvents* events = nullptr)
      : repository_(*repository), events_(events != nullptr ? *events : NoBusinessEvents()) {}

  // Validates `request` and creates or replaces the product. Retrying the same request (same
  // request_id and fields) returns the stored product and changes nothing, even after the
  // product moved on or was upserted again; the same request_id with different fields (or for
  // another SKU) is ALREADY_EXISTS. ABORTED when
  // expected_version is non-zero and does not match; FAILED_PRECONDITION when on_hand would
  // fall below what is reserved.
  absl::StatusOr<Product> UpsertProduct(const ProductUpsert& request);

  // INVALID_ARGUMENT for a malformed sku, NOT_FOUND if absent.
  absl::StatusOr<Product> GetProduct(absl::string_view sku);

  // One page of products in sku order. page_size 0 means 50, at most 1000; the token is the
  // opaque next_page_token of the previous page.
  absl::StatusOr<ListProductsResult> ListProducts(const ListProductsParams& params);

  // Validates `request` and reserves every item, all or nothing. Idempotent per order: a
  // reservation that already exists for the order is returned (created=false) when it holds
  // the same items; different items, or the request_id reused for another order, are
  // ALREADY_EXISTS. NOT_FOUND for an unknown SKU, FAILED_PRECONDITION for missing stock.
  absl::StatusOr<ReserveResult> ReserveStock(const ReserveRequest& request);

  // Returns a held reservation's stock (a released one is returned unchanged). NOT_FOUND,
  // FAILED_PRECONDITION when committed or returned.
  absl::StatusOr<Reservation> ReleaseReservation(const SettleReservationParams& params);

  // Sells a held reservation's stock (a committed one is returned unchanged). NOT_FOUND,
  // FAILED_PRECONDITION when released or returned.
  absl::StatusOr<Reservation> CommitReservation(const SettleReservationParams& params);

  // Undoes the sale of a committed reservation for a refund: its items go back onto on_hand
  // (a returned one is returned unchanged). NOT_FOUND, FAILED_PRECONDITION when held (release
  // it instead) or released.
  absl::StatusOr<Reservation> ReturnReservation(const SettleReservationParams& params);

  // INVALID_ARGUMENT for a malformed order id, NOT_FOUND if the order holds no reservation.
  absl::StatusOr<Reservation> GetReservation(absl::string_view order_id);

 private:
  InventoryRepository& repository_;
  BusinessEvents& events_;
};

}  // namespace order_platform::inventory
