#include "services/inventory/inventory.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/common/validation.h"

namespace order_platform::inventory {

// ---- products -------------------------------------------------------------------------------

absl::Status ProductVersionMismatch(absl::string_view sku, int64_t actual,
                                    int64_t expected_version) {
  if (actual == 0) {
    return absl::AbortedError(absl::StrCat("product ", sku, " does not exist, not at version ",
                                           expected_version,
                                           "; create it with expected_version 0"));
  }
  return absl::AbortedError(absl::StrCat("product ", sku, " is at version ", actual, ", not ",
                                         expected_version, "; re-read it and try again"));
}

absl::Status Product::Replace(const Product& desired, int64_t expected_version) {
  if (expected_version != 0 && expected_version != version) {
    return ProductVersionMismatch(sku, version, expected_version);
  }
  if (desired.on_hand < reserved) {
    return absl::FailedPreconditionError(absl::StrCat("on_hand ", desired.on_hand, " for sku ", sku,
                                                      " is below the ", reserved,
                                                      " units held by open reservations"));
  }
  name = desired.name;
  unit_price = desired.unit_price;
  on_hand = desired.on_hand;
  last_request_id = desired.last_request_id;
  last_request_fingerprint = desired.last_request_fingerprint;
  return absl::OkStatus();
}

uint64_t FingerprintOf(const ProductUpsert& request) {
  return Fingerprint(absl::StrCat("product\x1f", request.sku, "\x1f", request.name, "\x1f",
                                  request.unit_price.currency, "\x1f", request.unit_price.minor,
                                  "\x1f", request.on_hand, "\x1f", request.expected_version));
}

absl::StatusOr<Product> MakeProduct(const ProductUpsert& request) {
  OP_RETURN_IF_ERROR(ValidateRequestId(request.request_id));
  OP_RETURN_IF_ERROR(ValidateSku(request.sku, "sku"));
  OP_RETURN_IF_ERROR(ValidateText(request.name, "name", kMaxProductNameLength, true));
  OP_RETURN_IF_ERROR(ValidateAmount(request.unit_price, "unit_price", /*allow_zero=*/true));
  OP_RETURN_IF_ERROR(ValidateRange(request.on_hand, "on_hand", 0, kMaxOnHand));
  if (request.expected_version < 0) {
    return InvalidField("expected_version", "must not be negative");
  }
  Product product;
  product.sku = request.sku;
  product.name = request.name;
  product.unit_price = request.unit_price;
  product.on_hand = request.on_hand;
  product.reserved = 0;
  product.version = 1;
  product.last_request_id = request.request_id;
  product.last_request_fingerprint = FingerprintOf(request);
  return product;
}

// ---- reservations ---------------------------------------------------------------------------

const char* ReservationStatusName(ReservationStatus status) {
  switch (status) {
    case ReservationStatus::kHeld:
      return "held";
    case ReservationStatus::kReleased:
      return "released";
    case ReservationStatus::kCommitted:
      return "committed";
    case ReservationStatus::kReturned:
      return "returned";
  }
  return "held";
}

std::optional<ReservationStatus> ParseReservationStatus(absl::string_view name) {
  for (ReservationStatus s : {ReservationStatus::kHeld, ReservationStatus::kReleased,
                              ReservationStatus::kCommitted, ReservationStatus::kReturned}) {
    if (name == ReservationStatusName(s)) return s;
  }
  return std::nullopt;
}

namespace {

// The guarded move of a reservation from `from` to `target`: from `from` it happens (true), at
// `target` already it is a no-op (false), from any other state it is refused.
absl::StatusOr<bool> Transition(Reservation& reservation, ReservationStatus from,
                                ReservationStatus target, absl::string_view verb) {
  if (reservation.status == target) return false;
  if (reservation.status != from) {
    return absl::FailedPreconditionError(
        absl::StrCat("reservation for order ", reservation.order_id, " is ",
                     ReservationStatusName(reservation.status), " and cannot be ", verb,
                     reservation.status == ReservationStatus::kHeld ? "; release it instead" : ""));
  }
  reservation.status = target;
  return true;
}

}  // namespace

absl::StatusOr<bool> Reservation::Release() {
  return Transition(*this, ReservationStatus::kHeld, ReservationStatus::kReleased, "released");
}

absl::StatusOr<bool> Reservation::Commit() {
  return Transition(*this, ReservationStatus::kHeld, ReservationStatus::kCommitted, "committed");
}

absl::StatusOr<bool> Reservation::Return() {
  return Transition(*this, ReservationStatus::kCommitted, ReservationStatus::kReturned, "returned");
}

absl::Status ValidateReserveRequest(const ReserveRequest& request) {
  OP_RETURN_IF_ERROR(ValidateRequestId(request.request_id));
  OP_RETURN_IF_ERROR(ValidateIdentifier(request.order_id, "order_id", kMaxOrderIdLength));
  if (request.items.empty()) return InvalidField("items", "at least one item is required");
  if (request.items.size() > kMaxReservationItems) {
    return InvalidField("items", absl::StrCat("at most ", kMaxReservationItems, " items"));
  }
  absl::flat_hash_set<absl::string_view> skus;
  for (size_t i = 0; i < request.items.size(); ++i) {
    const ReservationItem& item = request.items[i];
    const std::string path = absl::StrCat("items[", i, "]");
    OP_RETURN_IF_ERROR(ValidateSku(item.sku, absl::StrCat(path, ".sku")));
    if (!skus.insert(item.sku).second) {
      return InvalidField(absl::StrCat(path, ".sku"), "appears more than once in the request");
    }
    OP_RETURN_IF_ERROR(
        ValidateRange(item.quantity, absl::StrCat(path, ".quantity"), 1, kMaxReservationQuantity));
  }
  return absl::OkStatus();
}

uint64_t FingerprintOf(const ReserveRequest& request) {
  std::vector<ReservationItem> items = request.items;
  std::sort(items.begin(), items.end(),
            [](const ReservationItem& a, const ReservationItem& b) { return a.sku < b.sku; });
  std::string canonical = absl::StrCat("reservation\x1f", request.order_id);
  for (const ReservationItem& item : items) {
    absl::StrAppend(&canonical, "\x1e", item.sku, "\x1f", item.quantity);
  }
  return Fingerprint(canonical);
}

absl::StatusOr<Reservation> MakeReservation(const ReserveRequest& request) {
  OP_RETURN_IF_ERROR(ValidateReserveRequest(request));
  Reservation reservation;
  reservation.order_id = request.order_id;
  reservation.items = request.items;
  reservation.status = ReservationStatus::kHeld;
  reservation.request_id = request.request_id;
  reservation.request_fingerprint = FingerprintOf(request);
  reservation.version = 1;
  return reservation;
}

absl::Status CheckStock(absl::Span<const ReservationItem> items,
                        absl::Span<const Product> products) {
  absl::flat_hash_map<absl::string_view, const Product*> by_sku;
  for (const Product& product : products) by_sku[product.sku] = &product;
  for (const ReservationItem& item : items) {
    if (!by_sku.contains(item.sku)) return NotFound("product", item.sku);
  }
  for (const ReservationItem& item : items) {
    const Product& product = *by_sku.at(item.sku);
    if (item.quantity > product.available()) {
      return absl::FailedPreconditionError(absl::StrCat("insufficient stock for sku ", item.sku,
                                                        ": requested ", item.quantity,
                                                        ", available ", product.available()));
    }
  }
  return absl::OkStatus();
}

}  // namespace order_platform::inventory
