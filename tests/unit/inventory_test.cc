// Inventory domain rules (validation, reservation state machine, stock checks), the use cases of
// InventoryService on the in-memory repository, and the proto rendering of the handler.
#include "services/inventory/inventory.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/errors.h"
#include "services/inventory/inventory_handler.h"
#include "services/inventory/inventory_service.h"
#include "services/inventory/memory_inventory_repository.h"

namespace order_platform::inventory {
namespace {

ProductUpsert ValidUpsert(const std::string& sku = "SKU-1", int64_t on_hand = 10) {
  ProductUpsert upsert;
  upsert.request_id = absl::StrCat("upsert-", sku, "-", on_hand);
  upsert.sku = sku;
  upsert.name = "Blue widget";
  upsert.unit_price = Money{"USD", 1999};
  upsert.on_hand = on_hand;
  return upsert;
}

ReserveRequest ValidReserve(const std::string& order_id = "order-1") {
  ReserveRequest request;
  request.request_id = absl::StrCat("reserve-", order_id);
  request.order_id = order_id;
  request.items = {{"SKU-1", 2}, {"SKU-2", 1}};
  return request;
}

Reservation HeldReservation() { return *MakeReservation(ValidReserve()); }

// The field an INVALID_ARGUMENT names, or "<ok>" / "<no field>".
std::string FieldOfError(const absl::Status& status) {
  if (status.ok()) return "<ok>";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return FieldOf(status).value_or("<no field>");
}

// ---- products -------------------------------------------------------------------------------

TEST(ProductTest, MakeProductBuildsUnreservedProductStampedWithRequest) {
  absl::StatusOr<Product> product = MakeProduct(ValidUpsert());
  ASSERT_TRUE(product.ok()) << product.status();
  EXPECT_EQ(product->sku, "SKU-1");
  EXPECT_EQ(product->on_hand, 10);
  EXPECT_EQ(product->reserved, 0);
  EXPECT_EQ(product->available(), 10);
  EXPECT_EQ(product->last_request_id, "upsert-SKU-1-10");
  EXPECT_EQ(product->last_request_fingerprint, FingerprintOf(ValidUpsert()));
}

TEST(ProductTest, MakeProductNamesTheInvalidField) {
  struct Case {
    void (*mutate)(ProductUpsert&);
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](ProductUpsert& u) { u.request_id = ""; }, "request_id"},
      {[](ProductUpsert& u) { u.sku = ""; }, "sku"},
      {[](ProductUpsert& u) { u.sku = "has space"; }, "sku"},
      {[](ProductUpsert& u) { u.sku = std::string(65, 'A'); }, "sku"},
      {[](ProductUpsert& u) { u.name = ""; }, "name"},
      {[](ProductUpsert& u) { u.name = std::string(201, 'n'); }, "name"},
      {[](ProductUpsert& u) { u.name = "tab\tname"; }, "name"},
      {[](ProductUpsert& u) { u.unit_price.currency = "XXQ"; }, "unit_price.currency_code"},
      {[](ProductUpsert& u) { u.unit_price.currency = ""; }, "unit_price.currency_code"},
      {[](ProductUpsert& u) { u.unit_price.minor = -1; }, "unit_price.amount_minor"},
      {[](ProductUpsert& u) { u.on_hand = -1; }, "on_hand"},
      {[](ProductUpsert& u) { u.on_hand = kMaxOnHand + 1; }, "on_hand"},
      {[](ProductUpsert& u) { u.expected_version = -1; }, "expected_version"},
  };
  for (const Case& c : cases) {
    ProductUpsert upsert = ValidUpsert();
    c.mutate(upsert);
    EXPECT_EQ(FieldOfError(MakeProduct(upsert).status()), c.field);
  }
}

TEST(ProductTest, MakeProductAcceptsBoundaryValues) {
  ProductUpsert upsert = ValidUpsert();
  upsert.name = std::string(kMaxProductNameLength, 'n');
  upsert.unit_price.minor = 0;  // Free samples are allowed.
  upsert.on_hand = kMaxOnHand;
  EXPECT_TRUE(MakeProduct(upsert).ok());
  upsert.on_hand = 0;
  upsert.name = "Ünïcode name";
  EXPECT_TRUE(MakeProduct(upsert).ok());
}

TEST(ProductTest, ReplaceAtExpectedVersionCopiesFields) {
  Product stored = *MakeProduct(ValidUpsert());
  stored.version = 3;
  stored.reserved = 4;
  ProductUpsert change = ValidUpsert("SKU-1", 4);
  change.name = "Renamed";
  ASSERT_TRUE(stored.Replace(*MakeProduct(change), 3).ok());
  EXPECT_EQ(stored.name, "Renamed");
  EXPECT_EQ(stored.on_hand, 4);
  EXPECT_EQ(stored.reserved, 4);  // Held stock is not the upsert's to change.
  EXPECT_EQ(stored.version, 3);   // The repository bumps it.
  EXPECT_EQ(stored.last_request_id, change.request_id);
}

TEST(ProductTest, ReplaceAtOtherVersionIsAbortedAndChangesNothing) {
  Product stored = *MakeProduct(ValidUpsert());
  stored.version = 2;
  const absl::Status status = stored.Replace(*MakeProduct(ValidUpsert("SKU-1", 99)), 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(stored.on_hand, 10);
  // Version 0 means "any version".
  EXPECT_TRUE(stored.Replace(*MakeProduct(ValidUpsert("SKU-1", 99)), 0).ok());
}

TEST(ProductTest, ReplaceBelowReservedIsFailedPrecondition) {
  Product stored = *MakeProduct(ValidUpsert());
  stored.reserved = 5;
  const absl::Status status = stored.Replace(*MakeProduct(ValidUpsert("SKU-1", 4)), 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(stored.on_hand, 10);
}

TEST(ProductTest, FingerprintDependsOnEveryField) {
  const uint64_t base = FingerprintOf(ValidUpsert());
  ProductUpsert other = ValidUpsert();
  other.request_id = "another-request";
  EXPECT_EQ(FingerprintOf(other), base);  // The request id is the key, not the content.
  other = ValidUpsert();
  other.name = "Other";
  EXPECT_NE(FingerprintOf(other), base);
  other = ValidUpsert();
  other.unit_price.minor += 1;
  EXPECT_NE(FingerprintOf(other), base);
  other = ValidUpsert();
  other.expected_version = 7;
  EXPECT_NE(FingerprintOf(other), base);
}

// ---- reservations ---------------------------------------------------------------------------

TEST(ReservationStatusTest, NamesRoundTrip) {
  for (ReservationStatus s : {ReservationStatus::kHeld, ReservationStatus::kReleased,
                              ReservationStatus::kCommitted, ReservationStatus::kReturned}) {
    EXPECT_EQ(ParseReservationStatus(ReservationStatusName(s)), s);
  }
  EXPECT_EQ(ReservationStatusName(ReservationStatus::kHeld), std::string("held"));
  EXPECT_EQ(ReservationStatusName(ReservationStatus::kReturned), std::string("returned"));
  EXPECT_FALSE(ParseReservationStatus("HELD").has_value());
}

TEST(ReservationTest, ReleaseOfHeldReservationChangesIt) {
  Reservation r = HeldReservation();
  absl::StatusOr<bool> changed = r.Release();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(r.status, ReservationStatus::kReleased);
}

TEST(ReservationTest, ReleaseOfReleasedReservationIsNoOp) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Release().ok());
  absl::StatusOr<bool> again = r.Release();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(*again);
  EXPECT_EQ(r.status, ReservationStatus::kReleased);
}

TEST(ReservationTest, CommitOfHeldReservationChangesItAndRepeatIsNoOp) {
  Reservation r = HeldReservation();
  EXPECT_EQ(r.Commit().value_or(false), true);
  EXPECT_EQ(r.status, ReservationStatus::kCommitted);
  absl::StatusOr<bool> again = r.Commit();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(*again);
}

TEST(ReservationTest, ReleaseOfCommittedReservationIsFailedPrecondition) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Commit().ok());
  absl::StatusOr<bool> released = r.Release();
  EXPECT_EQ(released.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(released.status().message(),
            "reservation for order order-1 is committed and cannot be released");
  EXPECT_EQ(r.status, ReservationStatus::kCommitted);
}

TEST(ReservationTest, CommitOfReleasedReservationIsFailedPrecondition) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Release().ok());
  absl::StatusOr<bool> committed = r.Commit();
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(committed.status().message(),
            "reservation for order order-1 is released and cannot be committed");
  EXPECT_EQ(r.status, ReservationStatus::kReleased);
}

TEST(ReservationTest, ReturnOfCommittedReservationChangesItAndRepeatIsNoOp) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Commit().ok());
  absl::StatusOr<bool> returned = r.Return();
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_TRUE(*returned);
  EXPECT_EQ(r.status, ReservationStatus::kReturned);

  absl::StatusOr<bool> again = r.Return();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(*again);
  EXPECT_EQ(r.status, ReservationStatus::kReturned);
}

TEST(ReservationTest, ReturnOfHeldReservationIsFailedPreconditionSayingReleaseIt) {
  Reservation r = HeldReservation();
  absl::StatusOr<bool> returned = r.Return();
  EXPECT_EQ(returned.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(returned.status().message(),
            "reservation for order order-1 is held and cannot be returned; release it instead");
  EXPECT_EQ(r.status, ReservationStatus::kHeld);
}

TEST(ReservationTest, ReturnOfReleasedReservationIsFailedPrecondition) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Release().ok());
  absl::StatusOr<bool> returned = r.Return();
  EXPECT_EQ(returned.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(returned.status().message(),
            "reservation for order order-1 is released and cannot be returned");
  EXPECT_EQ(r.status, ReservationStatus::kReleased);
}

TEST(ReservationTest, ReturnedReservationCanBeNeitherReleasedNorCommitted) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Commit().ok());
  ASSERT_TRUE(r.Return().ok());
  EXPECT_EQ(r.Release().status().message(),
            "reservation for order order-1 is returned and cannot be released");
  EXPECT_EQ(r.Commit().status().message(),
            "reservation for order order-1 is returned and cannot be committed");
  EXPECT_EQ(r.status, ReservationStatus::kReturned);
}

TEST(ReservationTest, MakeReservationBuildsHeldReservationInRequestOrder) {
  absl::StatusOr<Reservation> r = MakeReservation(ValidReserve());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, ReservationStatus::kHeld);
  EXPECT_EQ(r->order_id, "order-1");
  EXPECT_EQ(r->items, (std::vector<ReservationItem>{{"SKU-1", 2}, {"SKU-2", 1}}));
  EXPECT_EQ(r->request_fingerprint, FingerprintOf(ValidReserve()));
}

TEST(ReservationTest, ValidateReserveRequestNamesTheInvalidField) {
  struct Case {
    void (*mutate)(ReserveRequest&);
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](ReserveRequest& r) { r.request_id = ""; }, "request_id"},
      {[](ReserveRequest& r) { r.order_id = ""; }, "order_id"},
      {[](ReserveRequest& r) { r.order_id = std::string(65, 'o'); }, "order_id"},
      {[](ReserveRequest& r) { r.order_id = "has space"; }, "order_id"},
      {[](ReserveRequest& r) { r.items.clear(); }, "items"},
      {[](ReserveRequest& r) {
         r.items.clear();
         for (int i = 0; i <= kMaxReservationItems; ++i) {
           r.items.push_back({absl::StrCat("SKU-", i), 1});
         }
       },
       "items"},
      {[](ReserveRequest& r) { r.items[1].sku = "bad sku"; }, "items[1].sku"},
      {[](ReserveRequest& r) { r.items[1].sku = "SKU-1"; }, "items[1].sku"},
      {[](ReserveRequest& r) {
         r.items.push_back({"SKU-3", 0});
       },
       "items[2].quantity"},
      {[](ReserveRequest& r) {
         r.items.push_back({"SKU-3", -4});
       },
       "items[2].quantity"},
      {[](ReserveRequest& r) { r.items[0].quantity = kMaxReservationQuantity + 1; },
       "items[0].quantity"},
  };
  for (const Case& c : cases) {
    ReserveRequest request = ValidReserve();
    c.mutate(request);
    EXPECT_EQ(FieldOfError(ValidateReserveRequest(request)), c.field);
    EXPECT_EQ(FieldOfError(MakeReservation(request).status()), c.field);
  }
}

TEST(ReservationTest, ValidateReserveRequestAcceptsLimits) {
  ReserveRequest request = ValidReserve();
  request.order_id = std::string(kMaxOrderIdLength, 'o');
  request.items.clear();
  for (int i = 0; i < kMaxReservationItems; ++i) {
    request.items.push_back({absl::StrCat("SKU-", i), i == 0 ? kMaxReservationQuantity : 1});
  }
  EXPECT_TRUE(ValidateReserveRequest(request).ok());
}

TEST(ReservationTest, FingerprintIgnoresItemOrderAndRequestIdButNotContent) {
  ReserveRequest a = ValidReserve();
  ReserveRequest b = a;
  std::swap(b.items[0], b.items[1]);
  b.request_id = "another";
  EXPECT_EQ(FingerprintOf(a), FingerprintOf(b));
  b.items[0].quantity += 1;
  EXPECT_NE(FingerprintOf(a), FingerprintOf(b));
  ReserveRequest other_order = ValidReserve("order-2");
  EXPECT_NE(FingerprintOf(a), FingerprintOf(other_order));
}

// ---- stock ----------------------------------------------------------------------------------

Product StockedProduct(const std::string& sku, int64_t on_hand, int64_t reserved) {
  Product p = *MakeProduct(ValidUpsert(sku, on_hand));
  p.reserved = reserved;
  return p;
}

TEST(CheckStockTest, EnoughStockForEveryItemIsOk) {
  const std::vector<Product> products = {StockedProduct("SKU-2", 1, 0),
                                         StockedProduct("SKU-1", 5, 3)};
  EXPECT_TRUE(CheckStock(ValidReserve().items, products).ok());
}

TEST(CheckStockTest, ShortItemIsFailedPreconditionNamingSkuAndAmounts) {
  const std::vector<Product> products = {StockedProduct("SKU-1", 5, 4),
                                         StockedProduct("SKU-2", 1, 0)};
  const absl::Status status = CheckStock(ValidReserve().items, products);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "insufficient stock for sku SKU-1: requested 2, available 1");
}

TEST(CheckStockTest, UnknownSkuIsNotFoundAndTakesPrecedenceOverShortage) {
  const std::vector<Product> products = {StockedProduct("SKU-1", 0, 0)};
  const absl::Status status = CheckStock(ValidReserve().items, products);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("SKU-2"), absl::string_view::npos) << status;
}

// ---- service (on the in-memory repository) --------------------------------------------------

class InventoryServiceTest : public ::testing::Test {
 protected:
  MemoryInventoryRepository repository_;
  InventoryService service_{&repository_};
};

TEST_F(InventoryServiceTest, UpsertProductRetryReturnsStoredProductWithoutWriting) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert()).ok());
  absl::StatusOr<Product> retry = service_.UpsertProduct(ValidUpsert());
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version, 1);
}

TEST_F(InventoryServiceTest, UpsertProductWithReusedRequestIdIsAlreadyExists) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert()).ok());
  ProductUpsert different = ValidUpsert();
  different.on_hand = 3;
  EXPECT_EQ(service_.UpsertProduct(different).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(InventoryServiceTest, GetProductWithMalformedSkuIsInvalidArgument) {
  EXPECT_EQ(FieldOfError(service_.GetProduct("bad sku").status()), "sku");
  EXPECT_EQ(service_.GetProduct("SKU-404").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(InventoryServiceTest, ListProductsPagesWithOpaqueTokens) {
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(service_.UpsertProduct(ValidUpsert(absl::StrCat("S", i))).ok());
  std::vector<std::string> seen;
  ListProductsParams params{3, ""};
  int pages = 0;
  do {
    absl::StatusOr<ListProductsResult> page = service_.ListProducts(params);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Product& p : page->products) seen.push_back(p.sku);
    params.page_token = page->next_page_token;
    ++pages;
  } while (!params.page_token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"S0", "S1", "S2", "S3", "S4", "S5", "S6"}));
}

TEST_F(InventoryServiceTest, ListProductsLastFullPageHasNoToken) {
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(service_.UpsertProduct(ValidUpsert(absl::StrCat("S", i))).ok());
  absl::StatusOr<ListProductsResult> page = service_.ListProducts({3, ""});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->products.size(), 3u);
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST_F(InventoryServiceTest, ListProductsRejectsBadPageSizeAndToken) {
  EXPECT_EQ(FieldOfError(service_.ListProducts({-1, ""}).status()), "page_size");
  EXPECT_EQ(FieldOfError(service_.ListProducts({kMaxPageSize + 1, ""}).status()), "page_size");
  EXPECT_EQ(FieldOfError(service_.ListProducts({0, "not-a-token!"}).status()), "page_token");
  EXPECT_TRUE(service_.ListProducts({kMaxPageSize, ""}).ok());
}

TEST_F(InventoryServiceTest, ReserveStockTwiceForSameOrderReturnsFirstReservation) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-1", 5)).ok());
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-2", 5)).ok());
  absl::StatusOr<ReserveResult> first = service_.ReserveStock(ValidReserve());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);

  ReserveRequest retry = ValidReserve();
  retry.request_id = "another-attempt";  // Same order and items under another key: still fine.
  std::swap(retry.items[0], retry.items[1]);
  absl::StatusOr<ReserveResult> again = service_.ReserveStock(retry);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->reservation.request_id, first->reservation.request_id);
  EXPECT_EQ(service_.GetProduct("SKU-1")->reserved, 2);
}

TEST_F(InventoryServiceTest, ReserveStockForSameOrderWithDifferentItemsIsAlreadyExists) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-1", 5)).ok());
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-2", 5)).ok());
  ASSERT_TRUE(service_.ReserveStock(ValidReserve()).ok());
  ReserveRequest different = ValidReserve();
  different.items[0].quantity = 3;
  absl::StatusOr<ReserveResult> r = service_.ReserveStock(different);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists) << r.status();
  EXPECT_EQ(service_.GetProduct("SKU-1")->reserved, 2);
}

TEST_F(InventoryServiceTest, ReserveStockWithRequestIdOfAnotherOrderIsAlreadyExists) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-1", 5)).ok());
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-2", 5)).ok());
  ASSERT_TRUE(service_.ReserveStock(ValidReserve("order-1")).ok());
  ReserveRequest other = ValidReserve("order-2");
  other.request_id = ValidReserve("order-1").request_id;
  EXPECT_EQ(service_.ReserveStock(other).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(service_.GetReservation("order-2").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(InventoryServiceTest, ReleaseAndCommitValidateTheirRequest) {
  EXPECT_EQ(FieldOfError(service_.ReleaseReservation({"", "order-1"}).status()), "request_id");
  EXPECT_EQ(FieldOfError(service_.CommitReservation({"req", ""}).status()), "order_id");
  EXPECT_EQ(FieldOfError(service_.ReturnReservation({"", "order-1"}).status()), "request_id");
  EXPECT_EQ(FieldOfError(service_.ReturnReservation({"req", "order 1"}).status()), "order_id");
  EXPECT_EQ(FieldOfError(service_.GetReservation("").status()), "order_id");
  EXPECT_EQ(service_.ReleaseReservation({"req", "order-404"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(InventoryServiceTest, CommitThenReleaseIsRefusedAndKeepsTheSale) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-1", 5)).ok());
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-2", 5)).ok());
  ASSERT_TRUE(service_.ReserveStock(ValidReserve()).ok());
  absl::StatusOr<Reservation> committed = service_.CommitReservation({"commit-1", "order-1"});
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->status, ReservationStatus::kCommitted);
  EXPECT_EQ(service_.ReleaseReservation({"release-1", "order-1"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Product> p = service_.GetProduct("SKU-1");
  EXPECT_EQ(p->on_hand, 3);
  EXPECT_EQ(p->reserved, 0);
}

TEST_F(InventoryServiceTest, ReturnAfterCommitPutsTheStockBack) {
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-1", 5)).ok());
  ASSERT_TRUE(service_.UpsertProduct(ValidUpsert("SKU-2", 5)).ok());
  ASSERT_TRUE(service_.ReserveStock(ValidReserve()).ok());
  EXPECT_EQ(service_.ReturnReservation({"return-1", "order-1"}).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "a held reservation is released, not returned";
  ASSERT_TRUE(service_.CommitReservation({"commit-1", "order-1"}).ok());
  absl::StatusOr<Reservation> returned = service_.ReturnReservation({"return-1", "order-1"});
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_EQ(returned->status, ReservationStatus::kReturned);
  EXPECT_EQ(service_.GetProduct("SKU-1")->on_hand, 5);
  EXPECT_EQ(service_.GetProduct("SKU-2")->on_hand, 5);
  EXPECT_EQ(service_.ReturnReservation({"return-404", "order-404"}).status().code(),
            absl::StatusCode::kNotFound);
}

// ---- proto rendering ------------------------------------------------------------------------

TEST(InventoryProtoTest, ProductToProtoIncludesAvailable) {
  Product p = StockedProduct("SKU-1", 10, 4);
  p.version = 5;
  p.create_time = absl::FromUnixSeconds(1700000000);
  p.update_time = absl::FromUnixSeconds(1700000100);
  v1::Product proto;
  ProductToProto(p, &proto);
  EXPECT_EQ(proto.sku(), "SKU-1");
  EXPECT_EQ(proto.name(), "Blue widget");
  EXPECT_EQ(proto.unit_price().currency_code(), "USD");
  EXPECT_EQ(proto.unit_price().amount_minor(), 1999);
  EXPECT_EQ(proto.on_hand(), 10);
  EXPECT_EQ(proto.reserved(), 4);
  EXPECT_EQ(proto.available(), 6);
  EXPECT_EQ(proto.version(), 5);
  EXPECT_EQ(proto.create_time().seconds(), 1700000000);
  EXPECT_EQ(proto.update_time().seconds(), 1700000100);
}

TEST(InventoryProtoTest, ReservationToProtoMapsStatusAndItems) {
  Reservation r = HeldReservation();
  ASSERT_TRUE(r.Commit().ok());
  v1::Reservation proto;
  ReservationToProto(r, &proto);
  EXPECT_EQ(proto.order_id(), "order-1");
  EXPECT_EQ(proto.status(), v1::RESERVATION_STATUS_COMMITTED);
  ASSERT_EQ(proto.items_size(), 2);
  EXPECT_EQ(proto.items(0).sku(), "SKU-1");
  EXPECT_EQ(proto.items(0).quantity(), 2);
  EXPECT_EQ(proto.request_id(), "reserve-order-1");

  ASSERT_TRUE(r.Return().ok());
  v1::Reservation returned;
  ReservationToProto(r, &returned);
  EXPECT_EQ(returned.status(), v1::RESERVATION_STATUS_RETURNED);
}

}  // namespace
}  // namespace order_platform::inventory
