// InventoryService end to end in-process: the real handler, domain service and PostgreSQL
// repository, called through the generated stub over a real gRPC channel.
#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "db/migrations.h"
#include "db/pg_inventory_repository.h"
#include "gtest/gtest.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "services/common/page_token.h"
#include "services/common/validation.h"
#include "services/inventory/inventory_handler.h"
#include "services/inventory/inventory_service.h"
#include "tests/support/grpc_test_server.h"
#include "tests/support/test_postgres.h"

namespace order_platform::inventory {
namespace {

using ::order_platform::testing::ContextWithDeadline;

class InventoryServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dsn_ = new std::string(testing::CreateTestDatabase("inventory_service"));
    absl::StatusOr<int64_t> migrated =
        db::Migrator(*dsn_, *db::EmbeddedMigrations("inventory")).Up();
    ASSERT_TRUE(migrated.ok()) << migrated.status();
  }

  void SetUp() override {
    pool_ = std::make_unique<db::ConnectionPool>(
        db::PoolOptions{.dsn = *dsn_, .size = 8, .checkout_timeout = absl::Seconds(2)});
    repository_ = std::make_unique<db::PgInventoryRepository>(pool_.get());
    service_ = std::make_unique<InventoryService>(repository_.get());
    handler_ = std::make_unique<InventoryServiceHandler>(service_.get());
    server_ = std::make_unique<testing::GrpcTestServer>(std::vector<grpc::Service*>{handler_.get()});
    stub_ = v1::InventoryService::NewStub(server_->Channel());
  }

  static v1::UpsertProductRequest UpsertRequestFor(const std::string& sku, int64_t on_hand,
                                                   const std::string& request_id = "") {
    v1::UpsertProductRequest request;
    request.set_request_id(request_id.empty() ? absl::StrCat("upsert-", sku, "-", on_hand)
                                              : request_id);
    request.set_sku(sku);
    request.set_name("Widget " + sku);
    request.mutable_unit_price()->set_currency_code("EUR");
    request.mutable_unit_price()->set_amount_minor(1999);
    request.set_on_hand(on_hand);
    return request;
  }

  grpc::Status Upsert(const v1::UpsertProductRequest& request, v1::Product* response) {
    return stub_->UpsertProduct(ContextWithDeadline().get(), request, response);
  }

  // Creates (or replaces) `sku` with `on_hand` units and returns it; fails the test unless OK.
  v1::Product MustStock(const std::string& sku, int64_t on_hand) {
    v1::Product product;
    grpc::Status status = Upsert(UpsertRequestFor(sku, on_hand), &product);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return product;
  }

  grpc::Status GetProduct(const std::string& sku, v1::Product* response) {
    v1::GetProductRequest request;
    request.set_sku(sku);
    return stub_->GetProduct(ContextWithDeadline().get(), request, response);
  }

  // The product as stored now.
  v1::Product Read(const std::string& sku) {
    v1::Product product;
    grpc::Status status = GetProduct(sku, &product);
    EXPECT_TRUE(status.ok()) << sku << ": " << status.error_message();
    return product;
  }

  static v1::ReserveStockRequest ReserveRequestFor(
      const std::string& order_id, const std::vector<std::pair<std::string, int>>& items,
      const std::string& request_id = "") {
    v1::ReserveStockRequest request;
    request.set_request_id(request_id.empty() ? "reserve-" + order_id : request_id);
    request.set_order_id(order_id);
    for (const auto& [sku, quantity] : items) {
      v1::ReservationItem* item = request.add_items();
      item->set_sku(sku);
      item->set_quantity(quantity);
    }
    return request;
  }

  grpc::Status Reserve(const v1::ReserveStockRequest& request, v1::Reservation* response) {
    return stub_->ReserveStock(ContextWithDeadline().get(), request, response);
  }

  // Reserves `items` for `order_id` and returns the reservation; fails the test unless OK.
  v1::Reservation MustReserve(const std::string& order_id,
                              const std::vector<std::pair<std::string, int>>& items) {
    v1::Reservation reservation;
    grpc::Status status = Reserve(ReserveRequestFor(order_id, items), &reservation);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return reservation;
  }

  grpc::Status Release(const std::string& order_id, v1::Reservation* response,
                       const std::string& request_id = "") {
    v1::ReleaseReservationRequest request;
    request.set_request_id(request_id.empty() ? "release-" + order_id : request_id);
    request.set_order_id(order_id);
    return stub_->ReleaseReservation(ContextWithDeadline().get(), request, response);
  }

  grpc::Status Commit(const std::string& order_id, v1::Reservation* response,
                      const std::string& request_id = "") {
    v1::CommitReservationRequest request;
    request.set_request_id(request_id.empty() ? "commit-" + order_id : request_id);
    request.set_order_id(order_id);
    return stub_->CommitReservation(ContextWithDeadline().get(), request, response);
  }

  static v1::ReturnReservationRequest ReturnRequestFor(const std::string& order_id,
                                                       const std::string& request_id = "") {
    v1::ReturnReservationRequest request;
    request.set_request_id(request_id.empty() ? "return-" + order_id : request_id);
    request.set_order_id(order_id);
    return request;
  }

  grpc::Status Return(const v1::ReturnReservationRequest& request, v1::Reservation* response) {
    return stub_->ReturnReservation(ContextWithDeadline().get(), request, response);
  }

  grpc::Status Return(const std::string& order_id, v1::Reservation* response,
                      const std::string& request_id = "") {
    return Return(ReturnRequestFor(order_id, request_id), response);
  }

  grpc::Status GetReservation(const std::string& order_id, v1::Reservation* response) {
    v1::GetReservationRequest request;
    request.set_order_id(order_id);
    return stub_->GetReservation(ContextWithDeadline().get(), request, response);
  }

  // Expects the stock levels and version of `sku` to be exactly those of `before`.
  void ExpectStockUnchanged(const v1::Product& before) {
    const v1::Product now = Read(before.sku());
    EXPECT_EQ(now.on_hand(), before.on_hand()) << before.sku();
    EXPECT_EQ(now.reserved(), before.reserved()) << before.sku();
    EXPECT_EQ(now.version(), before.version()) << before.sku();
  }

  // Expects `status` to be INVALID_ARGUMENT naming `field`.
  static void ExpectInvalidField(const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(field + ":", 0), 0u)
        << "message should start with the field: " << status.error_message();
  }

  static std::string* dsn_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<db::PgInventoryRepository> repository_;
  std::unique_ptr<InventoryService> service_;
  std::unique_ptr<InventoryServiceHandler> handler_;
  std::unique_ptr<testing::GrpcTestServer> server_;
  std::unique_ptr<v1::InventoryService::Stub> stub_;
};

std::string* InventoryServiceTest::dsn_ = nullptr;

// ---- products ----------------------------------------------------------------------------------

TEST_F(InventoryServiceTest, UpsertCreatesProductWithNothingReservedAndGetReturnsIt) {
  v1::Product created;
  grpc::Status status = Upsert(UpsertRequestFor("CREATE-1", 12), &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created.sku(), "CREATE-1");
  EXPECT_EQ(created.name(), "Widget CREATE-1");
  EXPECT_EQ(created.unit_price().currency_code(), "EUR");
  EXPECT_EQ(created.unit_price().amount_minor(), 1999);
  EXPECT_EQ(created.on_hand(), 12);
  EXPECT_EQ(created.reserved(), 0);
  EXPECT_EQ(created.available(), 12);
  EXPECT_EQ(created.version(), 1);
  EXPECT_GT(created.create_time().seconds(), 0);
  EXPECT_EQ(Read("CREATE-1").SerializeAsString(), created.SerializeAsString());

  v1::Product missing;
  EXPECT_EQ(GetProduct("NO-SUCH-SKU", &missing).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(InventoryServiceTest, UpsertAtExpectedVersionReplacesFieldsAndKeepsReservedStock) {
  const v1::Product created = MustStock("REPLACE-1", 10);
  MustReserve("order-replace", {{"REPLACE-1", 4}});
  const v1::Product reserved = Read("REPLACE-1");
  EXPECT_EQ(reserved.version(), created.version() + 1) << "a reservation moves the version";

  v1::UpsertProductRequest request = UpsertRequestFor("REPLACE-1", 25, "replace-1-v2");
  request.set_name("Renamed");
  request.mutable_unit_price()->set_amount_minor(2500);
  request.set_expected_version(reserved.version());
  v1::Product replaced;
  grpc::Status status = Upsert(request, &replaced);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(replaced.name(), "Renamed");
  EXPECT_EQ(replaced.unit_price().amount_minor(), 2500);
  EXPECT_EQ(replaced.on_hand(), 25);
  EXPECT_EQ(replaced.reserved(), 4);
  EXPECT_EQ(replaced.available(), 21);
  EXPECT_EQ(replaced.version(), reserved.version() + 1);
  EXPECT_EQ(replaced.create_time().SerializeAsString(), created.create_time().SerializeAsString());
  EXPECT_EQ(Read("REPLACE-1").SerializeAsString(), replaced.SerializeAsString());
}

TEST_F(InventoryServiceTest, UpsertWithStaleExpectedVersionIsAbortedAndChangesNothing) {
  const v1::Product created = MustStock("STALE-1", 10);
  MustReserve("order-stale", {{"STALE-1", 1}});  // Moves the version to 2.
  const v1::Product now = Read("STALE-1");

  v1::UpsertProductRequest stale = UpsertRequestFor("STALE-1", 50, "stale-1-update");
  stale.set_expected_version(created.version());
  v1::Product response;
  grpc::Status status = Upsert(stale, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
  EXPECT_EQ(Read("STALE-1").SerializeAsString(), now.SerializeAsString());

  // With expected_version non-zero, an absent product is not created.
  v1::UpsertProductRequest absent = UpsertRequestFor("STALE-ABSENT", 5);
  absent.set_expected_version(1);
  EXPECT_EQ(Upsert(absent, &response).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(GetProduct("STALE-ABSENT", &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(InventoryServiceTest, UpsertOnHandBelowReservedIsFailedPreconditionAndChangesNothing) {
  MustStock("BELOW-1", 10);
  MustReserve("order-below", {{"BELOW-1", 4}});
  const v1::Product before = Read("BELOW-1");
  v1::Product response;
  grpc::Status status = Upsert(UpsertRequestFor("BELOW-1", 3), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(Read("BELOW-1").SerializeAsString(), before.SerializeAsString());

  // Exactly what is reserved is allowed: nothing left to sell.
  ASSERT_TRUE(Upsert(UpsertRequestFor("BELOW-1", 4), &response).ok());
  EXPECT_EQ(response.available(), 0);
}

TEST_F(InventoryServiceTest, UpsertRetryWithSameRequestIdReturnsStoredProductAndWritesNothing) {
  const v1::UpsertProductRequest request = UpsertRequestFor("RETRY-1", 10, "retry-1-req");
  v1::Product first;
  ASSERT_TRUE(Upsert(request, &first).ok());
  MustReserve("order-retry", {{"RETRY-1", 3}});
  v1::Reservation committed;
  ASSERT_TRUE(Commit("order-retry", &committed).ok());  // on_hand 7 now.
  const v1::Product moved = Read("RETRY-1");
  ASSERT_EQ(moved.on_hand(), 7);

  // A late retry must not undo the sale.
  v1::Product retry;
  ASSERT_TRUE(Upsert(request, &retry).ok());
  EXPECT_EQ(retry.SerializeAsString(), moved.SerializeAsString());
  EXPECT_EQ(Read("RETRY-1").SerializeAsString(), moved.SerializeAsString());

  // The same request_id with different fields is refused.
  v1::UpsertProductRequest different = request;
  different.set_on_hand(11);
  v1::Product response;
  EXPECT_EQ(Upsert(different, &response).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Read("RETRY-1").SerializeAsString(), moved.SerializeAsString());
}

// inventory.proto: "Idempotent by request_id: a repeated request returns the stored product and
// writes nothing". Only the last writer's request_id is remembered per product, so a late retry
// of an older upsert is applied again and undoes the newer one.
TEST_F(InventoryServiceTest, LateRetryOfOlderUpsertAfterAnotherUpsertWritesNothing) {
  const v1::UpsertProductRequest older = UpsertRequestFor("LATE-1", 10, "late-1-older");
  v1::Product response;
  ASSERT_TRUE(Upsert(older, &response).ok());
  ASSERT_TRUE(Upsert(UpsertRequestFor("LATE-1", 20, "late-1-newer"), &response).ok());
  const v1::Product newer = Read("LATE-1");

  v1::Product retry;
  ASSERT_TRUE(Upsert(older, &retry).ok());
  EXPECT_EQ(Read("LATE-1").on_hand(), 20) << "the late retry undid the newer upsert";
  EXPECT_EQ(Read("LATE-1").version(), newer.version());
}

// inventory.proto: "the same id with different fields is ALREADY_EXISTS". The request_id is only
// checked against the product being written, so it is silently reused for another SKU.
TEST_F(InventoryServiceTest, UpsertRequestIdReusedForAnotherSkuIsAlreadyExists) {
  v1::Product response;
  ASSERT_TRUE(Upsert(UpsertRequestFor("REUSED-A", 10, "reused-upsert-req"), &response).ok());
  grpc::Status status = Upsert(UpsertRequestFor("REUSED-B", 10, "reused-upsert-req"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  EXPECT_EQ(GetProduct("REUSED-B", &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(InventoryServiceTest, ListProductsPagesBySkuWithTokens) {
  std::vector<std::string> mine;
  for (int i = 6; i >= 0; --i) {  // Created out of order: the list is by SKU, not by time.
    mine.push_back(absl::StrCat("LIST-", i));
    MustStock(mine.back(), i);
  }
  std::sort(mine.begin(), mine.end());

  std::vector<std::string> seen;
  v1::ListProductsRequest request;
  request.set_page_size(3);
  int pages = 0;
  do {
    v1::ListProductsResponse response;
    grpc::Status status = stub_->ListProducts(ContextWithDeadline().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(response.products_size(), 3);
    for (const v1::Product& p : response.products()) {
      seen.push_back(p.sku());
      EXPECT_EQ(p.available(), p.on_hand() - p.reserved()) << p.sku();
    }
    request.set_page_token(response.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 100);
  EXPECT_TRUE(request.page_token().empty()) << "did not reach the last page";
  // Every product once, in byte order of SKU, across pages.
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "duplicate SKU";
  std::vector<std::string> listed_mine;
  std::copy_if(seen.begin(), seen.end(), std::back_inserter(listed_mine),
               [](const std::string& sku) { return sku.rfind("LIST-", 0) == 0; });
  EXPECT_EQ(listed_mine, mine);
  EXPECT_EQ(pages, static_cast<int>((seen.size() + 2) / 3));
}

TEST_F(InventoryServiceTest, ListProductsRejectsBadPageSizeAndTokens) {
  MustStock("TOKEN-A", 1);
  MustStock("TOKEN-B", 1);
  v1::ListProductsResponse response;
  v1::ListProductsRequest request;
  request.set_page_size(-1);
  ExpectInvalidField(stub_->ListProducts(ContextWithDeadline().get(), request, &response),
                     "page_size");
  request.set_page_size(1001);
  ExpectInvalidField(stub_->ListProducts(ContextWithDeadline().get(), request, &response),
                     "page_size");

  request.set_page_size(1);
  ASSERT_TRUE(stub_->ListProducts(ContextWithDeadline().get(), request, &response).ok());
  const std::string token = response.next_page_token();
  ASSERT_FALSE(token.empty());
  const std::vector<std::string> bad_tokens = {
      "garbage!!",
      token.substr(0, token.size() - 4),  // Cut off.
      std::string(600, 'A'),              // Too long.
      // Well-formed, but issued for another list.
      EncodePageToken(PageCursor{absl::InfinitePast(), "TOKEN-A"}, Fingerprint("orders")),
  };
  for (const std::string& bad : bad_tokens) {
    SCOPED_TRACE(bad);
    request.set_page_token(bad);
    ExpectInvalidField(stub_->ListProducts(ContextWithDeadline().get(), request, &response),
                       "page_token");
  }
  // page_size 0 means the default of 50.
  v1::ListProductsRequest defaults;
  ASSERT_TRUE(stub_->ListProducts(ContextWithDeadline().get(), defaults, &response).ok());
  EXPECT_GE(response.products_size(), 2);
  EXPECT_LE(response.products_size(), 50);
}

TEST_F(InventoryServiceTest, UpsertRejectsBadInputNamingTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::UpsertProductRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty request_id", [](auto& r) { r.set_request_id(""); }, "request_id"},
      {"oversized request_id", [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       "request_id"},
      {"empty sku", [](auto& r) { r.set_sku(""); }, "sku"},
      {"oversized sku", [](auto& r) { r.set_sku(std::string(65, 'S')); }, "sku"},
      {"sku with space", [](auto& r) { r.set_sku("BAD SKU"); }, "sku"},
      {"sku with slash", [](auto& r) { r.set_sku("BAD/SKU"); }, "sku"},
      {"sku with non-ASCII", [](auto& r) { r.set_sku("B\xC3\x84" "D"); }, "sku"},
      {"empty name", [](auto& r) { r.set_name(""); }, "name"},
      {"oversized name", [](auto& r) { r.set_name(std::string(201, 'n')); }, "name"},
      {"name with control", [](auto& r) { r.set_name("a\x01z"); }, "name"},
      {"negative on_hand", [](auto& r) { r.set_on_hand(-1); }, "on_hand"},
      {"huge on_hand", [](auto& r) { r.set_on_hand(1000000001); }, "on_hand"},
      {"unknown currency", [](auto& r) { r.mutable_unit_price()->set_currency_code("XXX"); },
       "unit_price.currency_code"},
      {"no price", [](auto& r) { r.clear_unit_price(); }, "unit_price.currency_code"},
      {"negative price", [](auto& r) { r.mutable_unit_price()->set_amount_minor(-1); },
       "unit_price.amount_minor"},
      {"negative expected_version", [](auto& r) { r.set_expected_version(-1); },
       "expected_version"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::UpsertProductRequest request = UpsertRequestFor("BAD-INPUT", 5, "bad-upsert");
    c.mutate(request);
    v1::Product response;
    ExpectInvalidField(Upsert(request, &response), c.field);
  }
  v1::Product response;
  EXPECT_EQ(GetProduct("BAD-INPUT", &response).error_code(), grpc::StatusCode::NOT_FOUND);

  // Limits themselves are fine.
  v1::UpsertProductRequest limits = UpsertRequestFor(std::string(64, 'L'), 1000000000);
  limits.set_name(std::string(200, 'n'));
  limits.mutable_unit_price()->set_amount_minor(0);
  grpc::Status status = Upsert(limits, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(InventoryServiceTest, ReadsAndSettlementsValidateTheirInput) {
  v1::Product product;
  ExpectInvalidField(GetProduct("", &product), "sku");
  ExpectInvalidField(GetProduct("bad sku", &product), "sku");
  ExpectInvalidField(GetProduct(std::string(65, 's'), &product), "sku");

  v1::Reservation reservation;
  ExpectInvalidField(GetReservation("", &reservation), "order_id");
  ExpectInvalidField(GetReservation(std::string(65, 'o'), &reservation), "order_id");
  ExpectInvalidField(Release("", &reservation, "release-x"), "order_id");
  ExpectInvalidField(Commit("", &reservation, "commit-x"), "order_id");
  v1::ReleaseReservationRequest release;
  release.set_order_id("order-x");
  ExpectInvalidField(stub_->ReleaseReservation(ContextWithDeadline().get(), release, &reservation),
                     "request_id");
  v1::CommitReservationRequest commit;
  commit.set_order_id("order-x");
  ExpectInvalidField(stub_->CommitReservation(ContextWithDeadline().get(), commit, &reservation),
                     "request_id");
}

// ---- reservations ------------------------------------------------------------------------------

TEST_F(InventoryServiceTest, ReserveHoldsStockOfEveryItem) {
  const v1::Product a = MustStock("HOLD-A", 10);
  const v1::Product b = MustStock("HOLD-B", 10);
  const v1::Product c = MustStock("HOLD-C", 10);
  v1::Reservation reservation;
  grpc::Status status = Reserve(
      ReserveRequestFor("order-hold", {{"HOLD-C", 4}, {"HOLD-A", 2}, {"HOLD-B", 3}}), &reservation);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reservation.order_id(), "order-hold");
  EXPECT_EQ(reservation.status(), v1::RESERVATION_STATUS_HELD);
  EXPECT_EQ(reservation.request_id(), "reserve-order-hold");
  EXPECT_EQ(reservation.version(), 1);
  ASSERT_EQ(reservation.items_size(), 3);
  EXPECT_EQ(reservation.items(0).sku(), "HOLD-C");  // In request order.
  EXPECT_EQ(reservation.items(0).quantity(), 4);

  const std::pair<v1::Product, int> expected[] = {{a, 2}, {b, 3}, {c, 4}};
  for (const auto& [before, quantity] : expected) {
    const v1::Product after = Read(before.sku());
    EXPECT_EQ(after.reserved(), quantity) << before.sku();
    EXPECT_EQ(after.available(), 10 - quantity) << before.sku();
    EXPECT_EQ(after.on_hand(), 10) << before.sku();
    EXPECT_EQ(after.version(), before.version() + 1) << before.sku();
  }

  v1::Reservation fetched;
  ASSERT_TRUE(GetReservation("order-hold", &fetched).ok());
  EXPECT_EQ(fetched.SerializeAsString(), reservation.SerializeAsString());
}

TEST_F(InventoryServiceTest, ReserveWithOneShortSkuIsFailedPreconditionNamingItAndChangesNothing) {
  const v1::Product a = MustStock("SHORT-A", 10);
  const v1::Product b = MustStock("SHORT-B", 2);
  const v1::Product c = MustStock("SHORT-C", 10);
  v1::Reservation reservation;
  grpc::Status status = Reserve(
      ReserveRequestFor("order-short", {{"SHORT-A", 5}, {"SHORT-B", 3}, {"SHORT-C", 5}}),
      &reservation);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("SHORT-B"), std::string::npos) << status.error_message();
  for (const v1::Product& before : {a, b, c}) ExpectStockUnchanged(before);
  EXPECT_EQ(GetReservation("order-short", &reservation).error_code(), grpc::StatusCode::NOT_FOUND);

  // Nothing was recorded for the order: with enough stock it may reserve later.
  v1::Product restocked;
  ASSERT_TRUE(Upsert(UpsertRequestFor("SHORT-B", 3), &restocked).ok());
  status = Reserve(
      ReserveRequestFor("order-short", {{"SHORT-A", 5}, {"SHORT-B", 3}, {"SHORT-C", 5}}),
      &reservation);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Read("SHORT-B").available(), 0);
}

TEST_F(InventoryServiceTest, ReserveUnknownSkuIsNotFoundAndChangesNothing) {
  const v1::Product known = MustStock("KNOWN-1", 10);
  v1::Reservation reservation;
  grpc::Status status = Reserve(
      ReserveRequestFor("order-unknown-sku", {{"KNOWN-1", 1}, {"UNKNOWN-1", 1}}), &reservation);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("UNKNOWN-1"), std::string::npos) << status.error_message();
  ExpectStockUnchanged(known);
  EXPECT_EQ(GetReservation("order-unknown-sku", &reservation).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(InventoryServiceTest, ReserveIsIdempotentPerOrder) {
  MustStock("IDEM-A", 10);
  MustStock("IDEM-B", 10);
  const v1::Reservation first = MustReserve("order-idem", {{"IDEM-A", 2}, {"IDEM-B", 3}});
  const v1::Product a = Read("IDEM-A");
  const v1::Product b = Read("IDEM-B");

  // The same items, even in another order and under another request_id: the same reservation.
  v1::Reservation again;
  grpc::Status status = Reserve(
      ReserveRequestFor("order-idem", {{"IDEM-B", 3}, {"IDEM-A", 2}}, "reserve-idem-retry"),
      &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());

  // Different items for the same order are refused.
  v1::Reservation response;
  EXPECT_EQ(Reserve(ReserveRequestFor("order-idem", {{"IDEM-A", 3}, {"IDEM-B", 3}}), &response)
                .error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reserve(ReserveRequestFor("order-idem", {{"IDEM-A", 2}}), &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  // The request_id of one order cannot reserve for another.
  EXPECT_EQ(Reserve(ReserveRequestFor("order-idem-2", {{"IDEM-A", 1}}, "reserve-order-idem"),
                    &response)
                .error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(GetReservation("order-idem-2", &response).error_code(), grpc::StatusCode::NOT_FOUND);

  ExpectStockUnchanged(a);
  ExpectStockUnchanged(b);
}

TEST_F(InventoryServiceTest, ConcurrentDuplicateReservationsOfOneOrderReserveOnce) {
  MustStock("DUP-A", 10);
  constexpr int kClients = 8;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      v1::Reservation reservation;
      grpc::Status status = Reserve(
          ReserveRequestFor("order-dup", {{"DUP-A", 3}}, absl::StrCat("reserve-dup-", i)),
          &reservation);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (status.ok()) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients);
  EXPECT_EQ(Read("DUP-A").reserved(), 3);
}

TEST_F(InventoryServiceTest, ReleaseReturnsStockAndIsIdempotent) {
  MustStock("RELEASE-A", 10);
  MustStock("RELEASE-B", 10);
  MustReserve("order-release", {{"RELEASE-A", 4}, {"RELEASE-B", 1}});
  v1::Reservation released;
  grpc::Status status = Release("order-release", &released);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(released.status(), v1::RESERVATION_STATUS_RELEASED);
  EXPECT_EQ(released.version(), 2);
  EXPECT_EQ(released.items_size(), 2);
  const v1::Product a = Read("RELEASE-A");
  const v1::Product b = Read("RELEASE-B");
  EXPECT_EQ(a.reserved(), 0);
  EXPECT_EQ(a.available(), 10);
  EXPECT_EQ(a.on_hand(), 10);
  EXPECT_EQ(b.reserved(), 0);

  // Releasing again, under any request_id, changes nothing.
  v1::Reservation again;
  ASSERT_TRUE(Release("order-release", &again, "release-again").ok());
  EXPECT_EQ(again.SerializeAsString(), released.SerializeAsString());
  ExpectStockUnchanged(a);
  ExpectStockUnchanged(b);

  // A released order does not reserve again, and cannot be committed.
  v1::Reservation reserve_again;
  ASSERT_TRUE(Reserve(ReserveRequestFor("order-release", {{"RELEASE-A", 4}, {"RELEASE-B", 1}}),
                      &reserve_again)
                  .ok());
  EXPECT_EQ(reserve_again.status(), v1::RESERVATION_STATUS_RELEASED);
  v1::Reservation response;
  EXPECT_EQ(Commit("order-release", &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ExpectStockUnchanged(a);
  ExpectStockUnchanged(b);
}

TEST_F(InventoryServiceTest, CommitLowersOnHandAndIsIdempotent) {
  MustStock("COMMIT-A", 10);
  MustStock("COMMIT-B", 5);
  MustReserve("order-commit", {{"COMMIT-A", 4}, {"COMMIT-B", 5}});
  v1::Reservation committed;
  grpc::Status status = Commit("order-commit", &committed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(committed.status(), v1::RESERVATION_STATUS_COMMITTED);
  EXPECT_EQ(committed.version(), 2);
  const v1::Product a = Read("COMMIT-A");
  const v1::Product b = Read("COMMIT-B");
  EXPECT_EQ(a.on_hand(), 6);
  EXPECT_EQ(a.reserved(), 0);
  EXPECT_EQ(a.available(), 6);
  EXPECT_EQ(b.on_hand(), 0);
  EXPECT_EQ(b.available(), 0);

  v1::Reservation again;
  ASSERT_TRUE(Commit("order-commit", &again, "commit-again").ok());
  EXPECT_EQ(again.SerializeAsString(), committed.SerializeAsString());
  ExpectStockUnchanged(a);
  ExpectStockUnchanged(b);
}

TEST_F(InventoryServiceTest, ReleaseAfterCommitIsFailedPreconditionAndKeepsTheSale) {
  MustStock("SOLD-A", 10);
  MustReserve("order-sold", {{"SOLD-A", 3}});
  v1::Reservation committed;
  ASSERT_TRUE(Commit("order-sold", &committed).ok());
  const v1::Product sold = Read("SOLD-A");
  v1::Reservation response;
  grpc::Status status = Release("order-sold", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  ExpectStockUnchanged(sold);
  EXPECT_EQ(sold.on_hand(), 7);
  ASSERT_TRUE(GetReservation("order-sold", &response).ok());
  EXPECT_EQ(response.status(), v1::RESERVATION_STATUS_COMMITTED);
}

TEST_F(InventoryServiceTest, SettlingOrReadingUnknownReservationIsNotFound) {
  v1::Reservation response;
  EXPECT_EQ(GetReservation("order-nobody", &response).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Release("order-nobody", &response).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Commit("order-nobody", &response).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Return("order-nobody", &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(InventoryServiceTest, ReturnAfterCommitPutsStockBackAndIsIdempotent) {
  MustStock("RETURN-A", 10);
  MustStock("RETURN-B", 5);
  MustReserve("order-return", {{"RETURN-B", 5}, {"RETURN-A", 4}});
  MustReserve("order-return-other", {{"RETURN-A", 1}});  // Stays held throughout.
  v1::Reservation committed;
  ASSERT_TRUE(Commit("order-return", &committed).ok());
  const v1::Product sold_a = Read("RETURN-A");
  const v1::Product sold_b = Read("RETURN-B");
  ASSERT_EQ(sold_a.on_hand(), 6);
  ASSERT_EQ(sold_b.on_hand(), 0);

  v1::Reservation returned;
  grpc::Status status = Return("order-return", &returned);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(returned.order_id(), "order-return");
  EXPECT_EQ(returned.status(), v1::RESERVATION_STATUS_RETURNED);
  EXPECT_EQ(returned.version(), committed.version() + 1);
  ASSERT_EQ(returned.items_size(), 2);
  EXPECT_EQ(returned.items(0).sku(), "RETURN-B");
  EXPECT_EQ(returned.items(0).quantity(), 5);
  EXPECT_EQ(returned.request_id(), committed.request_id()) << "the id of the reserving request";
  const v1::Product a = Read("RETURN-A");
  const v1::Product b = Read("RETURN-B");
  EXPECT_EQ(a.on_hand(), 10);
  EXPECT_EQ(a.reserved(), 1);
  EXPECT_EQ(a.available(), 9);
  EXPECT_EQ(a.version(), sold_a.version() + 1);
  EXPECT_EQ(b.on_hand(), 5);
  EXPECT_EQ(b.reserved(), 0);
  EXPECT_EQ(b.available(), 5);
  v1::Reservation stored;
  ASSERT_TRUE(GetReservation("order-return", &stored).ok());
  EXPECT_EQ(stored.SerializeAsString(), returned.SerializeAsString());

  // A replay, under the same or any other request_id, is the same answer and restocks nothing.
  for (const std::string& request_id :
       {std::string("return-order-return"), std::string("refund-2")}) {
    SCOPED_TRACE(request_id);
    v1::Reservation again;
    grpc::Status replay = Return("order-return", &again, request_id);
    ASSERT_TRUE(replay.ok()) << replay.error_message();
    EXPECT_EQ(again.SerializeAsString(), returned.SerializeAsString());
    ExpectStockUnchanged(a);
    ExpectStockUnchanged(b);
  }

  // The order's reservation is settled for good: reserving again returns it, holding nothing.
  v1::Reservation response;
  EXPECT_EQ(Release("order-return", &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Commit("order-return", &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(
      Reserve(ReserveRequestFor("order-return", {{"RETURN-B", 5}, {"RETURN-A", 4}}), &response)
          .ok());
  EXPECT_EQ(response.status(), v1::RESERVATION_STATUS_RETURNED);
  ExpectStockUnchanged(a);
  ExpectStockUnchanged(b);
}

TEST_F(InventoryServiceTest, ReturnOfHeldOrReleasedIsFailedPreconditionAndChangesNothing) {
  MustStock("UNSOLD-1", 10);
  MustReserve("order-unsold-held", {{"UNSOLD-1", 3}});
  MustReserve("order-unsold-released", {{"UNSOLD-1", 2}});
  v1::Reservation released;
  ASSERT_TRUE(Release("order-unsold-released", &released).ok());
  const v1::Product before = Read("UNSOLD-1");

  v1::Reservation response;
  grpc::Status held = Return("order-unsold-held", &response);
  EXPECT_EQ(held.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << held.error_message();
  EXPECT_NE(held.error_message().find("release it instead"), std::string::npos)
      << held.error_message();
  grpc::Status not_sold = Return("order-unsold-released", &response);
  EXPECT_EQ(not_sold.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << not_sold.error_message();

  ExpectStockUnchanged(before);
  EXPECT_EQ(before.reserved(), 3);
  ASSERT_TRUE(GetReservation("order-unsold-held", &response).ok());
  EXPECT_EQ(response.status(), v1::RESERVATION_STATUS_HELD);
  ASSERT_TRUE(GetReservation("order-unsold-released", &response).ok());
  EXPECT_EQ(response.SerializeAsString(), released.SerializeAsString());
}

TEST_F(InventoryServiceTest, ReturnRejectsBadInputNamingTheField) {
  MustStock("BADRET-1", 10);
  MustReserve("order-bad-return", {{"BADRET-1", 2}});
  v1::Reservation committed;
  ASSERT_TRUE(Commit("order-bad-return", &committed).ok());
  const v1::Product sold = Read("BADRET-1");
  struct Case {
    std::string name;
    std::function<void(v1::ReturnReservationRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty request_id", [](auto& r) { r.set_request_id(""); }, "request_id"},
      {"oversized request_id", [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       "request_id"},
      {"empty order_id", [](auto& r) { r.set_order_id(""); }, "order_id"},
      {"oversized order_id", [](auto& r) { r.set_order_id(std::string(65, 'o')); }, "order_id"},
      {"order_id with space", [](auto& r) { r.set_order_id("order bad-return"); }, "order_id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ReturnReservationRequest request = ReturnRequestFor("order-bad-return");
    c.mutate(request);
    v1::Reservation response;
    ExpectInvalidField(Return(request, &response), c.field);
  }
  ExpectStockUnchanged(sold);
  v1::Reservation response;
  ASSERT_TRUE(GetReservation("order-bad-return", &response).ok());
  EXPECT_EQ(response.SerializeAsString(), committed.SerializeAsString());
}

TEST_F(InventoryServiceTest, ReserveRejectsBadInputNamingTheField) {
  const v1::Product a = MustStock("BADRES-A", 100);
  const v1::Product b = MustStock("BADRES-B", 100);
  struct Case {
    std::string name;
    std::function<void(v1::ReserveStockRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty request_id", [](auto& r) { r.set_request_id(""); }, "request_id"},
      {"oversized request_id", [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       "request_id"},
      {"empty order_id", [](auto& r) { r.set_order_id(""); }, "order_id"},
      {"oversized order_id", [](auto& r) { r.set_order_id(std::string(65, 'o')); }, "order_id"},
      {"order_id with space", [](auto& r) { r.set_order_id("order 1"); }, "order_id"},
      {"no items", [](auto& r) { r.clear_items(); }, "items"},
      {"empty sku", [](auto& r) { r.mutable_items(1)->set_sku(""); }, "items[1].sku"},
      {"oversized sku", [](auto& r) { r.mutable_items(0)->set_sku(std::string(65, 'S')); },
       "items[0].sku"},
      {"sku with bad characters", [](auto& r) { r.mutable_items(1)->set_sku("BAD*SKU"); },
       "items[1].sku"},
      {"zero quantity", [](auto& r) { r.mutable_items(0)->set_quantity(0); },
       "items[0].quantity"},
      {"negative quantity", [](auto& r) { r.mutable_items(1)->set_quantity(-3); },
       "items[1].quantity"},
      {"huge quantity", [](auto& r) { r.mutable_items(0)->set_quantity(10001); },
       "items[0].quantity"},
      {"duplicate sku", [](auto& r) { r.mutable_items(1)->set_sku("BADRES-A"); },
       "items[1].sku"},
      {"too many items",
       [](auto& r) {
         for (int i = 0; i < 99; ++i) {
           v1::ReservationItem* item = r.add_items();
           item->set_sku(absl::StrCat("EXTRA-", i));
           item->set_quantity(1);
         }
       },
       "items"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ReserveStockRequest request =
        ReserveRequestFor("order-bad-reserve", {{"BADRES-A", 1}, {"BADRES-B", 1}});
    c.mutate(request);
    v1::Reservation response;
    ExpectInvalidField(Reserve(request, &response), c.field);
  }
  ExpectStockUnchanged(a);
  ExpectStockUnchanged(b);
  v1::Reservation response;
  EXPECT_EQ(GetReservation("order-bad-reserve", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// ---- concurrency -------------------------------------------------------------------------------

TEST_F(InventoryServiceTest, ConcurrentReservationsOfTheLastUnitSucceedExactlyOnce) {
  MustStock("LAST-1", 1);
  constexpr int kClients = 16;
  std::atomic<int> ok{0};
  std::atomic<int> out_of_stock{0};
  absl::Mutex mu;
  std::vector<std::string> unexpected;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      v1::Reservation reservation;
      grpc::Status status =
          Reserve(ReserveRequestFor(absl::StrCat("order-last-", i), {{"LAST-1", 1}}), &reservation);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++out_of_stock;
      } else {
        absl::MutexLock lock(&mu);
        unexpected.push_back(absl::StrCat(status.error_code(), ": ", status.error_message()));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(out_of_stock.load(), kClients - 1);
  const v1::Product last = Read("LAST-1");
  EXPECT_EQ(last.on_hand(), 1);
  EXPECT_EQ(last.reserved(), 1);
  EXPECT_EQ(last.available(), 0);
}

TEST_F(InventoryServiceTest, ConcurrentReserveReleaseCyclesNeverOversell) {
  constexpr int kUnits = 5;
  constexpr int kClients = 8;
  constexpr int kCycles = 20;
  MustStock("CYCLE-1", kUnits);
  std::atomic<bool> done{false};
  absl::Mutex mu;
  std::vector<std::string> unexpected;
  std::vector<std::string> kept;  // Orders whose reservation the client left held.
  int reserved_ok = 0;
  std::atomic<int> refused{0};
  int observed_oversold = 0;

  // Watches the product while the clients run: stock levels must always be consistent.
  std::thread watcher([&] {
    while (!done.load()) {
      v1::Product p;
      if (GetProduct("CYCLE-1", &p).ok() &&
          (p.available() < 0 || p.reserved() < 0 || p.reserved() > p.on_hand() ||
           p.available() != p.on_hand() - p.reserved())) {
        absl::MutexLock lock(&mu);
        ++observed_oversold;
      }
    }
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int n = 0; n < kCycles; ++n) {
        const std::string order = absl::StrCat("order-cycle-", t, "-", n);
        v1::Reservation reservation;
        grpc::Status reserved = Reserve(ReserveRequestFor(order, {{"CYCLE-1", 1}}), &reservation);
        if (reserved.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          ++refused;
          continue;
        }
        if (!reserved.ok()) {
          absl::MutexLock lock(&mu);
          unexpected.push_back(absl::StrCat("reserve ", order, ": ", reserved.error_message()));
          continue;
        }
        const bool keep = n == kCycles - 1;  // Each client keeps its last reservation, if any.
        grpc::Status released = keep ? grpc::Status::OK : Release(order, &reservation);
        absl::MutexLock lock(&mu);
        ++reserved_ok;
        if (keep) kept.push_back(order);
        if (!released.ok()) {
          unexpected.push_back(absl::StrCat("release ", order, ": ", released.error_message()));
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  done = true;
  watcher.join();

  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  EXPECT_EQ(observed_oversold, 0);
  EXPECT_GT(reserved_ok, kClients) << "too little traffic got through to mean anything";
  // Kept reservations are never released, so at least the last tries of kClients - kUnits
  // clients found the shelf empty.
  EXPECT_GE(refused.load(), kClients - kUnits);
  int held = 0;
  for (const std::string& order : kept) {
    v1::Reservation reservation;
    ASSERT_TRUE(GetReservation(order, &reservation).ok()) << order;
    if (reservation.status() == v1::RESERVATION_STATUS_HELD) ++held;
  }
  EXPECT_EQ(held, static_cast<int>(kept.size()));
  const v1::Product after = Read("CYCLE-1");
  EXPECT_EQ(after.on_hand(), kUnits);
  EXPECT_EQ(after.reserved(), held);
  EXPECT_LE(after.reserved(), kUnits);
  EXPECT_EQ(after.available(), kUnits - held);
}

TEST_F(InventoryServiceTest, ConcurrentReturnsOfOneOrderRestockOnce) {
  MustStock("REFUND-1", 10);
  MustReserve("order-refund", {{"REFUND-1", 4}});
  v1::Reservation committed;
  ASSERT_TRUE(Commit("order-refund", &committed).ok());
  constexpr int kClients = 8;
  absl::Mutex mu;
  std::vector<v1::Reservation> answers;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      v1::Reservation returned;
      grpc::Status status = Return("order-refund", &returned, absl::StrCat("refund-", i));
      EXPECT_TRUE(status.ok()) << status.error_message();
      absl::MutexLock lock(&mu);
      if (status.ok()) answers.push_back(returned);
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(answers.size(), static_cast<size_t>(kClients));
  for (const v1::Reservation& answer : answers) {
    EXPECT_EQ(answer.status(), v1::RESERVATION_STATUS_RETURNED);
    EXPECT_EQ(answer.SerializeAsString(), answers.front().SerializeAsString());
  }
  const v1::Product refunded = Read("REFUND-1");
  EXPECT_EQ(refunded.on_hand(), 10);
  EXPECT_EQ(refunded.reserved(), 0);
}

// ---- outage ------------------------------------------------------------------------------------

TEST_F(InventoryServiceTest, DatabaseDownIsUnavailableAndSameServerRecovers) {
  if (!testing::UsingPrivateServer()) {
    GTEST_SKIP() << "needs the private test cluster to stop and start it";
  }
  MustStock("OUTAGE-1", 5);
  testing::StopPrivateServer(testing::StopMode::kImmediate);
  v1::Product product;
  grpc::Status read = GetProduct("OUTAGE-1", &product);
  EXPECT_EQ(read.error_code(), grpc::StatusCode::UNAVAILABLE) << read.error_message();
  v1::Reservation reservation;
  const v1::ReserveStockRequest reserve = ReserveRequestFor("order-outage", {{"OUTAGE-1", 2}});
  grpc::Status during = Reserve(reserve, &reservation);
  EXPECT_EQ(during.error_code(), grpc::StatusCode::UNAVAILABLE) << during.error_message();
  grpc::Status upsert = Upsert(UpsertRequestFor("OUTAGE-2", 1), &product);
  EXPECT_EQ(upsert.error_code(), grpc::StatusCode::UNAVAILABLE) << upsert.error_message();

  testing::StartPrivateServer();
  // The same server process and pool serve again; the failed reservation can be retried.
  grpc::Status after = GetProduct("OUTAGE-1", &product);
  ASSERT_TRUE(after.ok()) << after.error_message();
  EXPECT_EQ(product.reserved(), 0);
  grpc::Status retried = Reserve(reserve, &reservation);
  ASSERT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_EQ(reservation.status(), v1::RESERVATION_STATUS_HELD);
  EXPECT_EQ(Read("OUTAGE-1").reserved(), 2);
}

}  // namespace
}  // namespace order_platform::inventory
