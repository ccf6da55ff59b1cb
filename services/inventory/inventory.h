// The inventory domain: products with their stock levels, and the reservations that hold stock
// for an order until it is released (stock back on the shelf) or committed (stock sold); a
// committed reservation may later be returned (a refund puts the sold stock back).
// No I/O here; both repositories apply the rules this file decides, so they agree on every
// outcome and message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "services/common/money.h"

namespace order_platform::inventory {

// Limits enforced by validation.
inline constexpr size_t kMaxProductNameLength = 200;
inline constexpr int64_t kMaxOnHand = 1000000000;
inline constexpr int kMaxReservationItems = 100;
inline constexpr int32_t kMaxReservationQuantity = 10000;
inline constexpr size_t kMaxOrderIdLength = 64;

// ---- products -------------------------------------------------------------------------------

struct Product {
  std::string sku;
  std::string name;
  Money unit_price;
  int64_t on_hand = 0;   // Units physically in stock, reserved ones included.
  int64_t reserved = 0;  // Units held by open (held) reservations.
  // Bumped by every change to the row: upserts and the stock effects of reservations.
  int64_t version = 1;
  // The UpsertProduct request that last wrote name/price/on_hand, so that retrying it changes
  // nothing (see InventoryRepository::UpsertProduct).
  std::string last_request_id;
  uint64_t last_request_fingerprint = 0;
  absl::Time create_time;  // Set by the repository (database clock).
  absl::Time update_time;

  // What can still be reserved.
  int64_t available() const { return on_hand - reserved; }

  // Replaces name, price, on-hand quantity and the request stamp with those of `desired`,
  // leaving stock held by reservations, version and times to the repository. ABORTED when
  // `expected_version` is non-zero and differs from `version`; FAILED_PRECONDITION when the new
  // on_hand is below `reserved`. On error nothing is changed.
  absl::Status Replace(const Product& desired, int64_t expected_version);
};

// What a client sends to create or replace a product.
struct ProductUpsert {
  std::string request_id;
  std::string sku;
  std::string name;
  Money unit_price;
  int64_t on_hand = 0;
  int64_t expected_version = 0;  // 0: any version (and create when absent).
};

// Validates every field of `request` (INVALID_ARGUMENT naming it) and builds the product it
// describes: nothing reserved, stamped with the request id and its fingerprint.
absl::StatusOr<Product> MakeProduct(const ProductUpsert& request);

// The fingerprint stored with a product by the upsert `request`.
uint64_t FingerprintOf(const ProductUpsert& request);

// ABORTED for an upsert with `expected_version` != 0 of a product that does not exist.
absl::Status ProductVersionMismatch(absl::string_view sku, int64_t actual,
                                    int64_t expected_version);

// ---- reservations ---------------------------------------------------------------------------

// held -> released | committed; committed -> returned.
enum class ReservationStatus { kHeld, kReleased, kCommitted, kReturned };

// Lower-case name used in storage and logs ("held"); inverse of ParseReservationStatus.
const char* ReservationStatusName(ReservationStatus status);
std::optional<ReservationStatus> ParseReservationStatus(absl::string_view name);

struct ReservationItem {
  std::string sku;
  int32_t quantity = 0;

  friend bool operator==(const ReservationItem& a, const ReservationItem& b) {
    return a.sku == b.sku && a.quantity == b.quantity;
  }
};

// What a client sends to reserve stock for an order.
struct ReserveRequest {
  std::string request_id;
  std::string order_id;
  std::vector<ReservationItem> items;
};

struct Reservation {
  std::string order_id;                // One reservation per order.
  std::vector<ReservationItem> items;  // In request order, each SKU once.
  ReservationStatus status = ReservationStatus::kHeld;
  std::string request_id;  // Of the request that created it.
  uint64_t request_fingerprint = 0;
  int64_t version = 1;
  absl::Time create_time;  // Set by the repository (database clock).
  absl::Time update_time;

  // held -> released, returning true. Releasing a released reservation returns false (nothing
  // to do); a committed or returned one is FAILED_PRECONDITION. The stock effect is the
  // repository's job.
  absl::StatusOr<bool> Release();

  // held -> committed, returning true. Committing a committed reservation returns false;
  // a released or returned one is FAILED_PRECONDITION.
  absl::StatusOr<bool> Commit();

  // committed -> returned, returning true. Returning a returned reservation returns false; a
  // held one (release it instead) or a released one is FAILED_PRECONDITION.
  absl::StatusOr<bool> Return();
};

// Checks `request`: request_id, order_id (identifier of 1-64 characters), 1..100 items, each
// with a valid SKU that appears once and a quantity of 1..10000. INVALID_ARGUMENT names the
// field ("items[2].quantity").
absl::Status ValidateReserveRequest(const ReserveRequest& request);

// Validates `request` and builds the HELD reservation it asks for.
absl::StatusOr<Reservation> MakeReservation(const ReserveRequest& request);

// Fingerprint of what `request` reserves: the order and its items, in any item order (the
// request id itself is not part of it).
uint64_t FingerprintOf(const ReserveRequest& request);

// Whether `products` (the stored products among the items' SKUs, in any order) can supply every
// item of `items`. NOT_FOUND naming the first unknown SKU (in item order) takes precedence over
// FAILED_PRECONDITION "insufficient stock for sku X: requested N, available M" for the first
// item that cannot be supplied.
absl::Status CheckStock(absl::Span<const ReservationItem> items,
                        absl::Span<const Product> products);

}  // namespace order_platform::inventory
