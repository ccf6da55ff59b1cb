#include "services/inventory/inventory_service.h"

#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/common/page_token.h"
#include "services/common/validation.h"

namespace order_platform::inventory {
namespace {

// ListProducts has no filters: every token belongs to the one list of all products.
const uint64_t kProductListFingerprint = Fingerprint("inventory.products");

absl::Status ValidateSettle(const SettleReservationParams& params) {
  OP_RETURN_IF_ERROR(ValidateRequestId(params.request_id));
  return ValidateIdentifier(params.order_id, "order_id", kMaxOrderIdLength);
}

}  // namespace

absl::StatusOr<Product> InventoryService::UpsertProduct(const ProductUpsert& request) {
  OP_ASSIGN_OR_RETURN(Product product, MakeProduct(request));
  OP_ASSIGN_OR_RETURN(UpsertProductResult result,
                      repository_.UpsertProduct(product, request.expected_version));
  // A replay answers with the current product; a request_id recorded for another request (other
  // fields or another SKU) is ALREADY_EXISTS.
  if (!result.written && result.request_fingerprint != product.last_request_fingerprint) {
    return RequestIdReused(request.request_id);
  }
  return std::move(result.product);
}

absl::StatusOr<Product> InventoryService::GetProduct(absl::string_view sku) {
  OP_RETURN_IF_ERROR(ValidateSku(sku, "sku"));
  return repository_.GetProduct(sku);
}

absl::StatusOr<ListProductsResult> InventoryService::ListProducts(
    const ListProductsParams& params) {
  int32_t page_size = 0;
  OP_RETURN_IF_ERROR(
      ValidatePageSize(params.page_size, "page_size", kDefaultPageSize, kMaxPageSize, &page_size));
  OP_ASSIGN_OR_RETURN(std::optional<PageCursor> after,
                      DecodePageToken(params.page_token, kProductListFingerprint));
  std::string after_sku;
  if (after) {
    if (!ValidateSku(after->id, "page_token").ok()) {
      return InvalidField("page_token", "is not a valid page token");
    }
    after_sku = after->id;
  }
  // One extra row tells whether another page follows.
  OP_ASSIGN_OR_RETURN(std::vector<Product> products,
                      repository_.ListProducts(after_sku, page_size + 1));
  ListProductsResult result;
  if (products.size() > static_cast<size_t>(page_size)) {
    products.resize(page_size);
    result.next_page_token = EncodePageToken(PageCursor{absl::InfinitePast(), products.back().sku},
                                             kProductListFingerprint);
  }
  result.products = std::move(products);
  return result;
}

absl::StatusOr<ReserveResult> InventoryService::ReserveStock(const ReserveRequest& request) {
  OP_ASSIGN_OR_RETURN(Reservation reservation, MakeReservation(request));
  absl::StatusOr<ReserveResult> reserved = repository_.Reserve(reservation);
  // The repository's contract: NOT_FOUND names an unknown SKU, FAILED_PRECONDITION missing stock.
  if (absl::IsNotFound(reserved.status())) {
    events_.ReservationFailed(ReservationFailure::kUnknownSku);
  } else if (absl::IsFailedPrecondition(reserved.status())) {
    events_.ReservationFailed(ReservationFailure::kInsufficientStock);
  }
  OP_ASSIGN_OR_RETURN(ReserveResult result, std::move(reserved));
  if (result.created) return result;
  if (result.reservation.order_id != reservation.order_id) {
    return RequestIdReused(request.request_id);
  }
  if (result.reservation.request_fingerprint != reservation.request_fingerprint) {
    return absl::AlreadyExistsError(absl::StrCat("order ", reservation.order_id,
                                                 " already holds a reservation with different "
                                                 "items"));
  }
  return result;
}

absl::StatusOr<Reservation> InventoryService::ReleaseReservation(
    const SettleReservationParams& params) {
  OP_RETURN_IF_ERROR(ValidateSettle(params));
  return repository_.Release(params.order_id);
}

absl::StatusOr<Reservation> InventoryService::CommitReservation(
    const SettleReservationParams& params) {
  OP_RETURN_IF_ERROR(ValidateSettle(params));
  return repository_.Commit(params.order_id);
}

absl::StatusOr<Reservation> InventoryService::ReturnReservation(
    const SettleReservationParams& params) {
  OP_RETURN_IF_ERROR(ValidateSettle(params));
  return repository_.Return(params.order_id);
}

absl::StatusOr<Reservation> InventoryService::GetReservation(absl::string_view order_id) {
  OP_RETURN_IF_ERROR(ValidateIdentifier(order_id, "order_id", kMaxOrderIdLength));
  return repository_.GetReservation(order_id);
}

}  // namespace order_platform::inventory
