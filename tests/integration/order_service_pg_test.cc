// OrderService end to end in-process: the real handler, domain service and PostgreSQL repository,
// called through the generated stub over a real gRPC channel.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "db/migrations.h"
#include "db/pg_order_repository.h"
#include "gtest/gtest.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "services/orders/order_handler.h"
#include "services/orders/order_service.h"
#include "tests/support/grpc_test_server.h"
#include "tests/support/test_postgres.h"

namespace order_platform::orders {
namespace {

using ::order_platform::testing::ContextWithDeadline;

class OrderServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dsn_ = new std::string(testing::CreateTestDatabase("order_service"));
    absl::StatusOr<int64_t> migrated = db::Migrator(*dsn_, *db::EmbeddedMigrations("orders")).Up();
    ASSERT_TRUE(migrated.ok()) << migrated.status();
  }

  void SetUp() override {
    pool_ = std::make_unique<db::ConnectionPool>(
        db::PoolOptions{.dsn = *dsn_, .size = 8, .checkout_timeout = absl::Seconds(2)});
    repository_ = std::make_unique<db::PgOrderRepository>(pool_.get());
    service_ = std::make_unique<OrderService>(repository_.get());
    handler_ = std::make_unique<OrderServiceHandler>(service_.get());
    server_ = std::make_unique<testing::GrpcTestServer>(std::vector<grpc::Service*>{handler_.get()});
    stub_ = v1::OrderService::NewStub(server_->Channel());
  }

  static v1::CreateOrderRequest ValidRequest(const std::string& request_id,
                                             const std::string& customer = "cust-1") {
    v1::CreateOrderRequest request;
    request.set_request_id(request_id);
    request.set_customer_id(customer);
    request.set_payment_token("tok_approve");
    for (int i = 0; i < 3; ++i) {
      v1::OrderItem* item = request.add_items();
      item->set_sku(absl::StrCat("SKU-", i));
      item->set_quantity(i + 1);
      item->mutable_unit_price()->set_currency_code("EUR");
      item->mutable_unit_price()->set_amount_minor(1000 + i);
    }
    return request;
  }

  grpc::Status Create(const v1::CreateOrderRequest& request, v1::CreateOrderResponse* response) {
    return stub_->CreateOrder(ContextWithDeadline().get(), request, response);
  }

  // Creates a valid order and returns it.
  v1::Order MustCreate(const std::string& request_id, const std::string& customer = "cust-1") {
    v1::CreateOrderResponse response;
    grpc::Status status = Create(ValidRequest(request_id, customer), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.order();
  }

  // Expects `status` to be INVALID_ARGUMENT naming `field`.
  static void ExpectInvalidField(const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(field + ":", 0), 0u)
        << "message should start with the field: " << status.error_message();
  }

  static std::string* dsn_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<db::PgOrderRepository> repository_;
  std::unique_ptr<OrderService> service_;
  std::unique_ptr<OrderServiceHandler> handler_;
  std::unique_ptr<testing::GrpcTestServer> server_;
  std::unique_ptr<v1::OrderService::Stub> stub_;
};

std::string* OrderServiceTest::dsn_ = nullptr;

TEST_F(OrderServiceTest, CreateOrderStoresPendingOrderWithExactTotal) {
  v1::CreateOrderResponse response;
  grpc::Status status = Create(ValidRequest("create-1"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.created());
  const v1::Order& order = response.order();
  EXPECT_EQ(order.status(), v1::ORDER_STATUS_PENDING);
  EXPECT_EQ(order.total().currency_code(), "EUR");
  EXPECT_EQ(order.total().amount_minor(), 1000 * 1 + 1001 * 2 + 1002 * 3);
  EXPECT_EQ(order.items_size(), 3);
  EXPECT_EQ(order.version(), 1);
  EXPECT_EQ(order.workflow_id(), "place-order-" + order.order_id());
  EXPECT_GT(order.create_time().seconds(), 0);

  v1::GetOrderRequest get;
  get.set_order_id(order.order_id());
  v1::Order fetched;
  ASSERT_TRUE(stub_->GetOrder(ContextWithDeadline().get(), get, &fetched).ok());
  EXPECT_EQ(fetched.SerializeAsString(), order.SerializeAsString());
}

TEST_F(OrderServiceTest, CreateOrderWithSameRequestIdReturnsFirstOrder) {
  const v1::Order first = MustCreate("same-req");
  v1::CreateOrderResponse replay;
  ASSERT_TRUE(Create(ValidRequest("same-req"), &replay).ok());
  EXPECT_FALSE(replay.created());
  EXPECT_EQ(replay.order().order_id(), first.order_id());
}

TEST_F(OrderServiceTest, CreateOrderWithReusedRequestIdForDifferentOrderIsAlreadyExists) {
  MustCreate("reused-req");
  v1::CreateOrderRequest different = ValidRequest("reused-req");
  different.mutable_items(0)->set_quantity(7);
  v1::CreateOrderResponse response;
  EXPECT_EQ(Create(different, &response).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(OrderServiceTest, ConcurrentDuplicateCreateOrdersYieldOneOrder) {
  constexpr int kClients = 8;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  absl::Mutex mu;
  std::set<std::string> ids;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      v1::CreateOrderResponse response;
      grpc::Status status = Create(ValidRequest("concurrent-req"), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      if (response.created()) created++;
      absl::MutexLock lock(&mu);
      ids.insert(response.order().order_id());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(ids.size(), 1u);
}

TEST_F(OrderServiceTest, CreateOrderRejectsBadInputNamingTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::CreateOrderRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty request_id", [](auto& r) { r.set_request_id(""); }, "request_id"},
      {"oversized request_id", [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       "request_id"},
      {"empty customer", [](auto& r) { r.set_customer_id(""); }, "customer_id"},
      {"oversized customer", [](auto& r) { r.set_customer_id(std::string(65, 'c')); },
       "customer_id"},
      {"customer with newline", [](auto& r) { r.set_customer_id("a\nb"); }, "customer_id"},
      {"no payment token", [](auto& r) { r.set_payment_token(""); }, "payment_token"},
      {"no items", [](auto& r) { r.clear_items(); }, "items"},
      {"zero quantity", [](auto& r) { r.mutable_items(1)->set_quantity(0); }, "items[1].quantity"},
      {"negative quantity", [](auto& r) { r.mutable_items(0)->set_quantity(-5); },
       "items[0].quantity"},
      {"huge quantity", [](auto& r) { r.mutable_items(2)->set_quantity(2000000000); },
       "items[2].quantity"},
      {"empty sku", [](auto& r) { r.mutable_items(0)->set_sku(""); }, "items[0].sku"},
      {"bad sku", [](auto& r) { r.mutable_items(0)->set_sku("no spaces"); }, "items[0].sku"},
      {"oversized sku", [](auto& r) { r.mutable_items(0)->set_sku(std::string(65, 's')); },
       "items[0].sku"},
      {"duplicate sku", [](auto& r) { r.mutable_items(1)->set_sku("SKU-0"); }, "items[1].sku"},
      {"negative price",
       [](auto& r) { r.mutable_items(0)->mutable_unit_price()->set_amount_minor(-1); },
       "items[0].unit_price.amount_minor"},
      {"unknown currency",
       [](auto& r) { r.mutable_items(0)->mutable_unit_price()->set_currency_code("XXX"); },
       "items[0].unit_price.currency_code"},
      {"missing currency", [](auto& r) { r.mutable_items(0)->clear_unit_price(); },
       "items[0].unit_price.currency_code"},
      {"mixed currencies",
       [](auto& r) { r.mutable_items(1)->mutable_unit_price()->set_currency_code("USD"); },
       "items[1].unit_price.currency_code"},
      {"total overflows",
       [](auto& r) {
         r.mutable_items(0)->mutable_unit_price()->set_amount_minor(INT64_MAX / 2);
         r.mutable_items(0)->set_quantity(10);
       },
       "items"},
      {"confirm_within zero", [](auto& r) { r.mutable_confirm_within(); }, "confirm_within"},
      {"confirm_within negative", [](auto& r) { r.mutable_confirm_within()->set_seconds(-60); },
       "confirm_within"},
      {"confirm_within over 30 days",
       [](auto& r) { r.mutable_confirm_within()->set_seconds(30 * 86400 + 1); }, "confirm_within"},
      {"confirm_within bad nanos",
       [](auto& r) {
         r.mutable_confirm_within()->set_seconds(60);
         r.mutable_confirm_within()->set_nanos(1000000000);
       },
       "confirm_within"},
      {"too many items",
       [](auto& r) {
         for (int i = 0; i < 100; ++i) {
           v1::OrderItem* item = r.add_items();
           item->set_sku(absl::StrCat("EXTRA-", i));
           item->set_quantity(1);
           item->mutable_unit_price()->set_currency_code("EUR");
         }
       },
       "items"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string request_id = "bad-" + c.name;
    std::replace(request_id.begin(), request_id.end(), ' ', '-');
    v1::CreateOrderRequest request = ValidRequest(request_id);
    c.mutate(request);
    v1::CreateOrderResponse response;
    ExpectInvalidField(Create(request, &response), c.field);
  }
  // Nothing was stored by any of them.
  v1::ListOrdersRequest list;
  list.set_customer_id("cust-1");
  list.set_page_size(1000);
  v1::ListOrdersResponse listed;
  ASSERT_TRUE(stub_->ListOrders(ContextWithDeadline().get(), list, &listed).ok());
  for (const v1::Order& order : listed.orders()) {
    EXPECT_NE(order.request_id().rfind("bad-", 0), 0u) << order.request_id();
  }
}

TEST_F(OrderServiceTest, GetOrderValidatesIdAndReportsNotFound) {
  v1::Order order;
  v1::GetOrderRequest request;
  ExpectInvalidField(stub_->GetOrder(ContextWithDeadline().get(), request, &order), "order_id");
  request.set_order_id("not-a-uuid");
  ExpectInvalidField(stub_->GetOrder(ContextWithDeadline().get(), request, &order), "order_id");
  request.set_order_id("0190a6c4-0000-7000-8000-000000000000");
  EXPECT_EQ(stub_->GetOrder(ContextWithDeadline().get(), request, &order).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(OrderServiceTest, ListOrdersPagesByCustomerWithOpaqueTokens) {
  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) created.insert(MustCreate(absl::StrCat("page-", i), "pager").order_id());
  MustCreate("page-other", "someone-else");

  std::set<std::string> seen;
  v1::ListOrdersRequest request;
  request.set_customer_id("pager");
  request.set_page_size(3);
  int pages = 0;
  do {
    v1::ListOrdersResponse response;
    grpc::Status status = stub_->ListOrders(ContextWithDeadline().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(response.orders_size(), 3);
    for (const v1::Order& o : response.orders()) {
      EXPECT_EQ(o.customer_id(), "pager");
      EXPECT_TRUE(seen.insert(o.order_id()).second) << "duplicate " << o.order_id();
    }
    request.set_page_token(response.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(seen, created);
  EXPECT_EQ(pages, 3);
}

TEST_F(OrderServiceTest, ListOrdersRejectsBadPageSizeAndTokens) {
  v1::ListOrdersResponse response;
  v1::ListOrdersRequest request;
  request.set_page_size(-1);
  ExpectInvalidField(stub_->ListOrders(ContextWithDeadline().get(), request, &response),
                     "page_size");
  request.set_page_size(1001);
  ExpectInvalidField(stub_->ListOrders(ContextWithDeadline().get(), request, &response),
                     "page_size");
  request.set_page_size(1);
  request.set_page_token("garbage!!");
  ExpectInvalidField(stub_->ListOrders(ContextWithDeadline().get(), request, &response),
                     "page_token");

  // A token issued for one filter is refused for another.
  MustCreate("tok-1", "token-customer");
  MustCreate("tok-2", "token-customer");
  v1::ListOrdersRequest first;
  first.set_customer_id("token-customer");
  first.set_page_size(1);
  ASSERT_TRUE(stub_->ListOrders(ContextWithDeadline().get(), first, &response).ok());
  ASSERT_FALSE(response.next_page_token().empty());
  v1::ListOrdersRequest other;
  other.set_customer_id("another-customer");
  other.set_page_token(response.next_page_token());
  ExpectInvalidField(stub_->ListOrders(ContextWithDeadline().get(), other, &response),
                     "page_token");

  v1::ListOrdersRequest bad_status;
  bad_status.set_status(static_cast<v1::OrderStatus>(99));
  ExpectInvalidField(stub_->ListOrders(ContextWithDeadline().get(), bad_status, &response),
                     "status");
}

TEST_F(OrderServiceTest, ListOrdersFiltersByStatus) {
  const v1::Order cancelled = MustCreate("status-1", "status-customer");
  MustCreate("status-2", "status-customer");
  v1::CancelOrderRequest cancel;
  cancel.set_request_id("status-cancel");
  cancel.set_order_id(cancelled.order_id());
  v1::Order out;
  ASSERT_TRUE(stub_->CancelOrder(ContextWithDeadline().get(), cancel, &out).ok());

  v1::ListOrdersRequest request;
  request.set_customer_id("status-customer");
  request.set_status(v1::ORDER_STATUS_CANCELLED);
  v1::ListOrdersResponse response;
  ASSERT_TRUE(stub_->ListOrders(ContextWithDeadline().get(), request, &response).ok());
  ASSERT_EQ(response.orders_size(), 1);
  EXPECT_EQ(response.orders(0).order_id(), cancelled.order_id());
}

TEST_F(OrderServiceTest, BatchGetOrdersReturnsFoundInRequestOrderAndReportsMissing) {
  const v1::Order a = MustCreate("batch-a");
  const v1::Order b = MustCreate("batch-b");
  const std::string missing = "0190a6c4-0000-7000-8000-00000000beef";
  v1::BatchGetOrdersRequest request;
  request.add_order_ids(b.order_id());
  request.add_order_ids(missing);
  request.add_order_ids(a.order_id());
  request.add_order_ids(b.order_id());
  v1::BatchGetOrdersResponse response;
  ASSERT_TRUE(stub_->BatchGetOrders(ContextWithDeadline().get(), request, &response).ok());
  ASSERT_EQ(response.orders_size(), 2);
  EXPECT_EQ(response.orders(0).order_id(), b.order_id());
  EXPECT_EQ(response.orders(1).order_id(), a.order_id());
  EXPECT_EQ(response.orders(1).items_size(), 3);
  ASSERT_EQ(response.missing_order_ids_size(), 1);
  EXPECT_EQ(response.missing_order_ids(0), missing);

  v1::BatchGetOrdersRequest empty;
  ExpectInvalidField(stub_->BatchGetOrders(ContextWithDeadline().get(), empty, &response),
                     "order_ids");
  v1::BatchGetOrdersRequest bad;
  bad.add_order_ids(a.order_id());
  bad.add_order_ids("nope");
  ExpectInvalidField(stub_->BatchGetOrders(ContextWithDeadline().get(), bad, &response),
                     "order_ids[1]");
  v1::BatchGetOrdersRequest too_many;
  for (int i = 0; i < 1001; ++i) too_many.add_order_ids(a.order_id());
  ExpectInvalidField(stub_->BatchGetOrders(ContextWithDeadline().get(), too_many, &response),
                     "order_ids");
}

TEST_F(OrderServiceTest, CancelPendingOrderWithExpectedVersion) {
  const v1::Order order = MustCreate("cancel-1");
  v1::CancelOrderRequest request;
  request.set_request_id("cancel-req-1");
  request.set_order_id(order.order_id());
  request.set_reason("changed my mind");
  request.set_expected_version(order.version());
  v1::Order cancelled;
  grpc::Status status = stub_->CancelOrder(ContextWithDeadline().get(), request, &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cancelled.status(), v1::ORDER_STATUS_CANCELLED);
  EXPECT_EQ(cancelled.status_reason(), "changed my mind");
  EXPECT_EQ(cancelled.version(), order.version() + 1);

  // Replaying the same cancel returns the cancelled order and changes nothing.
  v1::Order replay;
  ASSERT_TRUE(stub_->CancelOrder(ContextWithDeadline().get(), request, &replay).ok());
  EXPECT_EQ(replay.version(), cancelled.version());

  // A different cancel of a cancelled order is a forbidden state change.
  request.set_request_id("cancel-req-2");
  request.set_expected_version(0);
  EXPECT_EQ(stub_->CancelOrder(ContextWithDeadline().get(), request, &replay).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(OrderServiceTest, CancelWithStaleVersionIsAbortedAndChangesNothing) {
  const v1::Order order = MustCreate("cancel-stale");
  v1::CancelOrderRequest request;
  request.set_request_id("cancel-stale-req");
  request.set_order_id(order.order_id());
  request.set_expected_version(order.version() + 1);
  v1::Order out;
  EXPECT_EQ(stub_->CancelOrder(ContextWithDeadline().get(), request, &out).error_code(),
            grpc::StatusCode::ABORTED);
  v1::GetOrderRequest get;
  get.set_order_id(order.order_id());
  ASSERT_TRUE(stub_->GetOrder(ContextWithDeadline().get(), get, &out).ok());
  EXPECT_EQ(out.status(), v1::ORDER_STATUS_PENDING);
  EXPECT_EQ(out.version(), order.version());
}

TEST_F(OrderServiceTest, CancelValidatesInputAndUnknownOrders) {
  v1::Order out;
  v1::CancelOrderRequest request;
  request.set_order_id("0190a6c4-0000-7000-8000-000000000000");
  ExpectInvalidField(stub_->CancelOrder(ContextWithDeadline().get(), request, &out), "request_id");
  request.set_request_id("cancel-unknown");
  EXPECT_EQ(stub_->CancelOrder(ContextWithDeadline().get(), request, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  request.set_reason(std::string(501, 'r'));
  ExpectInvalidField(stub_->CancelOrder(ContextWithDeadline().get(), request, &out), "reason");
  request.set_reason("ok");
  request.set_expected_version(-1);
  ExpectInvalidField(stub_->CancelOrder(ContextWithDeadline().get(), request, &out),
                     "expected_version");
}

TEST_F(OrderServiceTest, DatabaseDownIsUnavailableAndSameServerRecovers) {
  if (!testing::UsingPrivateServer()) {
    GTEST_SKIP() << "needs the private test cluster to stop and start it";
  }
  const v1::Order order = MustCreate("outage-before");
  testing::StopPrivateServer(testing::StopMode::kImmediate);
  v1::CreateOrderResponse response;
  grpc::Status during = Create(ValidRequest("outage-during"), &response);
  EXPECT_EQ(during.error_code(), grpc::StatusCode::UNAVAILABLE) << during.error_message();
  v1::GetOrderRequest get;
  get.set_order_id(order.order_id());
  v1::Order out;
  EXPECT_EQ(stub_->GetOrder(ContextWithDeadline().get(), get, &out).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  testing::StartPrivateServer();
  // The same server process, pool and connections-to-be serve again.
  grpc::Status after = stub_->GetOrder(ContextWithDeadline().get(), get, &out);
  EXPECT_TRUE(after.ok()) << after.error_message();
  EXPECT_EQ(out.order_id(), order.order_id());
  EXPECT_TRUE(Create(ValidRequest("outage-after"), &response).ok());
}

}  // namespace
}  // namespace order_platform::orders
