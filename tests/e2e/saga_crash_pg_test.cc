// Crash tests of the saga coordinator with real processes (DESIGN.md guarantees 3 and 4).
//
// A server started with ORDER_PLATFORM_FAULT=<point>[:n] aborts at that point of a workflow; a
// second server on the same database takes the workflow over once the first one's lease expires
// and finishes it. Each effect must happen exactly once: one payment per order, captured once for
// the total (or voided), one reservation committed (or released), stock conserved.
//
// Also: two coordinators share the load, and one paused past its lease (SIGSTOP, then SIGCONT)
// produces no second effect.
//
// Usage: saga_crash_pg_test <path to order_platform>   (or ORDER_PLATFORM_BIN)
#include <signal.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"
#include "tests/support/platform_server.h"
#include "tests/support/server_process.h"
#include "tests/support/test_postgres.h"

namespace order_platform {
namespace {

using testing::Deadline;

namespace inv = inventory::v1;
namespace ord = orders::v1;
namespace pay = payments::v1;

constexpr int64_t kInitialStock = 100;
constexpr int32_t kQuantity = 2;
constexpr int64_t kUnitPrice = 1250;

// One coordinator process and stubs to it.
using Server = testing::PlatformServer;

void SeedProduct(Server& server, const std::string& sku) {
  inv::UpsertProductRequest request;
  request.set_request_id("seed-" + sku);
  request.set_sku(sku);
  request.set_name("Crash test product");
  request.mutable_unit_price()->set_currency_code("EUR");
  request.mutable_unit_price()->set_amount_minor(kUnitPrice);
  request.set_on_hand(kInitialStock);
  inv::Product product;
  grpc::Status status = server.inventory->UpsertProduct(Deadline().get(), request, &product);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

ord::CreateOrderRequest OrderRequest(const std::string& request_id, const std::string& sku,
                                     const std::string& token) {
  ord::CreateOrderRequest request;
  request.set_request_id(request_id);
  request.set_customer_id("crash-customer");
  request.set_payment_token(token);
  ord::OrderItem* item = request.add_items();
  item->set_sku(sku);
  item->set_quantity(kQuantity);
  item->mutable_unit_price()->set_currency_code("EUR");
  item->mutable_unit_price()->set_amount_minor(kUnitPrice);
  return request;
}

// CreateOrder, retried with the same request id until it answers (the server may die while
// answering: the retry settles the outcome, guarantee 1).
std::string CreateOrder(Server& server, const ord::CreateOrderRequest& request,
                        int attempts = 50) {
  for (int i = 0; i < attempts; ++i) {
    ord::CreateOrderResponse response;
    grpc::Status status = server.orders->CreateOrder(Deadline().get(), request, &response);
    if (status.ok()) return response.order().order_id();
    absl::SleepFor(absl::Milliseconds(100));
  }
  if (attempts > 1) ADD_FAILURE() << "CreateOrder never answered";
  return "";
}

// Polls until the order's PlaceOrder workflow has ended (or needs attention), then returns the
// order as that end left it.
ord::Order AwaitOrder(Server& server, const std::string& order_id,
                      absl::Duration timeout = absl::Seconds(40)) {
  const absl::Time give_up = absl::Now() + timeout;
  ord::Order order;
  while (absl::Now() < give_up) {
    // The workflow first: its end commits with the order's final status, so an order read after
    // it is final (read before it, the order could predate an end committed in between).
    ord::GetOrderRequest request;
    request.set_order_id(order_id);
    saga::v1::GetWorkflowRequest get;
    get.set_workflow_id(order.workflow_id());
    saga::v1::Workflow workflow;
    if (order.workflow_id().empty()) {
      (void)server.orders->GetOrder(Deadline().get(), request, &order);  // For its workflow id.
    } else if (server.workflows->GetWorkflow(Deadline().get(), get, &workflow).ok() &&
               (workflow.status() == saga::v1::WORKFLOW_STATUS_COMPLETED ||
                workflow.status() == saga::v1::WORKFLOW_STATUS_COMPENSATED ||
                workflow.status() == saga::v1::WORKFLOW_STATUS_FAILED ||
                workflow.status() == saga::v1::WORKFLOW_STATUS_CANCELLED ||
                workflow.status() == saga::v1::WORKFLOW_STATUS_NEEDS_ATTENTION) &&
               server.orders->GetOrder(Deadline().get(), request, &order).ok()) {
      return order;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ADD_FAILURE() << "order " << order_id << " did not settle";
  return order;
}

std::vector<pay::Payment> PaymentsOf(Server& server, const std::string& order_id) {
  pay::ListPaymentsRequest request;
  request.set_order_id(order_id);
  pay::ListPaymentsResponse response;
  EXPECT_TRUE(server.payments->ListPayments(Deadline().get(), request, &response).ok());
  return {response.payments().begin(), response.payments().end()};
}

inv::Product ProductOf(Server& server, const std::string& sku) {
  inv::GetProductRequest request;
  request.set_sku(sku);
  inv::Product product;
  EXPECT_TRUE(server.inventory->GetProduct(Deadline().get(), request, &product).ok());
  return product;
}

// Checks the effects of one settled order: exactly once, money and stock consistent.
void ExpectEffectsOnce(Server& server, const ord::Order& order, const std::string& sku) {
  const std::vector<pay::Payment> payments = PaymentsOf(server, order.order_id());
  inv::GetReservationRequest get;
  get.set_order_id(order.order_id());
  inv::Reservation reservation;
  const bool has_reservation =
      server.inventory->GetReservation(Deadline().get(), get, &reservation).ok();
  if (order.status() == ord::ORDER_STATUS_CONFIRMED) {
    ASSERT_EQ(payments.size(), 1u);
    EXPECT_EQ(payments[0].status(), pay::PAYMENT_STATUS_CAPTURED);
    EXPECT_EQ(payments[0].captured().amount_minor(), kQuantity * kUnitPrice);
    ASSERT_TRUE(has_reservation);
    EXPECT_EQ(reservation.status(), inv::RESERVATION_STATUS_COMMITTED);
  } else {
    EXPECT_LE(payments.size(), 1u);
    for (const pay::Payment& p : payments) {
      EXPECT_TRUE(p.status() == pay::PAYMENT_STATUS_VOIDED ||
                  p.status() == pay::PAYMENT_STATUS_DECLINED)
          << p.DebugString();
      EXPECT_EQ(p.captured().amount_minor(), 0);
    }
    if (has_reservation) {
      EXPECT_EQ(reservation.status(), inv::RESERVATION_STATUS_RELEASED);
    }
  }
  const inv::Product product = ProductOf(server, sku);
  EXPECT_EQ(product.reserved(), 0);
  EXPECT_EQ(product.on_hand(), order.status() == ord::ORDER_STATUS_CONFIRMED
                                   ? kInitialStock - kQuantity
                                   : kInitialStock);
}

struct CrashCase {
  std::string fault;  // ORDER_PLATFORM_FAULT value.
  std::string token;  // Payment token (tok_decline drives the compensation path).
  ord::OrderStatus expected;
};

class SagaCrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(SagaCrashTest, RestartedCoordinatorFinishesTheWorkflowWithEachEffectOnce) {
  const CrashCase& c = GetParam();
  const std::string dsn = testing::CreateTestDatabase("saga_crash");
  const std::string sku = "CRASH-1";
  std::string order_id;
  {
    Server doomed(dsn, /*port=*/0, {"ORDER_PLATFORM_FAULT=" + c.fault});
    ASSERT_TRUE(doomed.ready) << doomed.process.Log();
    SeedProduct(doomed, sku);
    order_id = CreateOrder(doomed, OrderRequest("crash-order", sku, c.token), /*attempts=*/1);
    const int code = doomed.process.WaitFor(absl::Seconds(30));
    ASSERT_EQ(code, 128 + SIGABRT) << "the fault point was not reached:\n" << doomed.process.Log();
    EXPECT_NE(doomed.process.Log().find("fault injected"), std::string::npos);
  }
  Server survivor(dsn);
  ASSERT_TRUE(survivor.ready) << survivor.process.Log();
  if (order_id.empty()) order_id = CreateOrder(survivor, OrderRequest("crash-order", sku, c.token));
  const ord::Order order = AwaitOrder(survivor, order_id);
  EXPECT_EQ(order.status(), c.expected) << order.DebugString() << survivor.process.Log();
  ExpectEffectsOnce(survivor, order, sku);
}

INSTANTIATE_TEST_SUITE_P(
    FaultPoints, SagaCrashTest,
    ::testing::Values(
        CrashCase{"after_start", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        CrashCase{"before_remote_call", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        // The reservation was made but not checkpointed.
        CrashCase{"after_remote_call", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        // The authorization was made but not checkpointed.
        CrashCase{"after_remote_call:2", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        CrashCase{"after_checkpoint:2", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        CrashCase{"before_local_commit", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        // The capture was made but not checkpointed: it must not be taken twice.
        CrashCase{"after_remote_call:3", "tok_approve", ord::ORDER_STATUS_CONFIRMED},
        // Mid-compensation: the stock was released but not checkpointed.
        CrashCase{"in_compensation", "tok_decline", ord::ORDER_STATUS_REJECTED},
        CrashCase{"after_compensation_checkpoint", "tok_decline", ord::ORDER_STATUS_REJECTED}),
    [](const ::testing::TestParamInfo<CrashCase>& info) {
      std::string name = info.param.fault;
      for (char& ch : name) {
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

TEST(SagaSharedLoadTest, TwoCoordinatorsAndAPausedOneProduceEachEffectOnce) {
  const std::string dsn = testing::CreateTestDatabase("saga_shared");
  Server a(dsn);
  ASSERT_TRUE(a.ready) << a.process.Log();
  Server b(dsn);
  ASSERT_TRUE(b.ready) << b.process.Log();
  const std::string sku = "SHARED-1";
  SeedProduct(a, sku);

  constexpr int kOrders = 30;
  std::vector<std::string> ids;
  for (int i = 0; i < kOrders; ++i) {
    Server& target = i % 2 == 0 ? a : b;
    ids.push_back(CreateOrder(target, OrderRequest(absl::StrCat("shared-", i), sku,
                                                   i % 5 == 0 ? "tok_decline" : "tok_approve")));
  }
  // Pause A past its lease while it holds work, then let it run on: its stale writes must be
  // refused and B must finish what A held.
  a.process.Signal(SIGSTOP);
  absl::SleepFor(absl::Seconds(3));
  a.process.Signal(SIGCONT);

  int confirmed = 0;
  for (const std::string& id : ids) {
    const ord::Order order = AwaitOrder(b, id);
    EXPECT_TRUE(order.status() == ord::ORDER_STATUS_CONFIRMED ||
                order.status() == ord::ORDER_STATUS_REJECTED)
        << order.DebugString();
    if (order.status() == ord::ORDER_STATUS_CONFIRMED) ++confirmed;
    const std::vector<pay::Payment> payments = PaymentsOf(b, id);
    ASSERT_EQ(payments.size(), 1u) << id;
    EXPECT_EQ(payments[0].captured().amount_minor(),
              order.status() == ord::ORDER_STATUS_CONFIRMED ? kQuantity * kUnitPrice : 0);
  }
  EXPECT_EQ(confirmed, kOrders - kOrders / 5);
  const inv::Product product = ProductOf(b, sku);
  EXPECT_EQ(product.on_hand(), kInitialStock - confirmed * kQuantity);  // Stock conserved.
  EXPECT_EQ(product.reserved(), 0);
}

}  // namespace
}  // namespace order_platform

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!order_platform::testing::InitServerBinaryFromArgs(argc, argv)) return 2;
  return RUN_ALL_TESTS();
}
