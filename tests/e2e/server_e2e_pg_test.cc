// End to end: the real `order_platform` binary as a separate process, called over gRPC.
// Covers startup checks (refuses an old schema), the migrate subcommand, health, service subsets
// (microservice shape), graceful shutdown draining an in-flight call, and a PostgreSQL outage
// under load: only UNAVAILABLE while it is down, and the same process serves again after.
//
// Usage: server_e2e_pg_test <path to order_platform>   (or ORDER_PLATFORM_BIN)
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"
#include "tests/support/server_process.h"
#include "tests/support/test_postgres.h"

namespace order_platform {
namespace {

using testing::FreePort;
using Process = testing::ServerProcess;

std::pair<int, std::string> RunBinary(std::vector<std::string> args) {
  return testing::RunServerBinary(std::move(args));
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) {
  return testing::Deadline(timeout);
}

bool WaitServing(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "") {
  return testing::WaitServing(channel, service);
}

orders::v1::CreateOrderRequest OrderRequest(const std::string& request_id) {
  orders::v1::CreateOrderRequest request;
  request.set_request_id(request_id);
  request.set_customer_id("e2e-customer");
  request.set_payment_token("tok_approve");
  for (int i = 0; i < 3; ++i) {
    orders::v1::OrderItem* item = request.add_items();
    item->set_sku(absl::StrCat("E2E-", i));
    item->set_quantity(1);
    item->mutable_unit_price()->set_currency_code("USD");
    item->mutable_unit_price()->set_amount_minor(999);
  }
  return request;
}

class ServerE2eTest : public ::testing::Test {
 protected:
  std::vector<std::string> ServeArgs(const std::string& dsn, int port,
                                     std::vector<std::string> extra = {}) {
    // Metrics on a free port, so processes started side by side do not compete for 9464.
    std::vector<std::string> args = {"serve", "--database_url=" + dsn,
                                     absl::StrCat("--listen=127.0.0.1:", port),
                                     "--metrics_listen=127.0.0.1:0", "--shutdown_grace=5s",
                                     "--pool_checkout_timeout=2s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  static std::shared_ptr<grpc::Channel> ChannelTo(int port) {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                               grpc::InsecureChannelCredentials());
  }
};

TEST_F(ServerE2eTest, RefusesToStartOnAnUnmigratedSchemaAndSaysWhatToRun) {
  const std::string dsn = testing::CreateTestDatabase("e2e_old_schema");
  auto [code, output] = RunBinary(ServeArgs(dsn, FreePort()));
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("order_platform migrate up"), std::string::npos) << output;
}

TEST_F(ServerE2eTest, MigrateSubcommandGoesUpDownAndReportsVersions) {
  const std::string dsn = testing::CreateTestDatabase("e2e_migrate");
  const std::string db = "--database_url=" + dsn;
  auto [code, output] = RunBinary({"migrate", "version", db});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("orders: version 0, binary needs 1"), std::string::npos) << output;
  std::tie(code, output) = RunBinary({"migrate", "up", db});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("payments: at version 2"), std::string::npos) << output;
  std::tie(code, output) = RunBinary({"migrate", "down", "1", "--services=inventory", db});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("inventory: at version 0"), std::string::npos) << output;
  std::tie(code, output) = RunBinary({"migrate", "version", db});
  EXPECT_NE(output.find("inventory: version 0"), std::string::npos) << output;
  EXPECT_NE(output.find("orders: version 1"), std::string::npos) << output;
  std::tie(code, output) = RunBinary({"migrate", "sideways", db});
  EXPECT_EQ(code, 2) << output;
  std::tie(code, output) = RunBinary({"serve", "--services=orders,bogus", db});
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("unknown service"), std::string::npos) << output;
  std::tie(code, output) = RunBinary({"serve", "--place_order_deadline=0s", db});
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("place_order_deadline"), std::string::npos) << output;
}

TEST_F(ServerE2eTest, ServesEveryServiceAndDrainsInFlightCallsOnSigterm) {
  const std::string dsn = testing::CreateTestDatabase("e2e_serve");
  const int port = FreePort();
  Process server(ServeArgs(dsn, port, {"--auto_migrate"}));
  auto channel = ChannelTo(port);
  ASSERT_TRUE(WaitServing(channel)) << server.Log();
  for (const char* service : {"order_platform.orders.v1.OrderService",
                              "order_platform.payments.v1.PaymentService",
                              "order_platform.inventory.v1.InventoryService"}) {
    EXPECT_TRUE(WaitServing(channel, service)) << service;
  }

  auto orders_stub = orders::v1::OrderService::NewStub(channel);
  orders::v1::CreateOrderResponse created;
  grpc::Status status =
      orders_stub->CreateOrder(Context().get(), OrderRequest("e2e-1"), &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Its PlaceOrder workflow has the default deadline, an hour from its start.
  auto workflows_stub = saga::v1::WorkflowService::NewStub(channel);
  saga::v1::GetWorkflowRequest get;
  get.set_workflow_id(created.order().workflow_id());
  saga::v1::Workflow workflow;
  status = workflows_stub->GetWorkflow(Context().get(), get, &workflow);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(workflow.has_deadline_time());
  EXPECT_EQ(workflow.deadline_time().seconds() - workflow.start_time().seconds(), 3600);
  EXPECT_EQ(workflow.deadline_time().nanos(), workflow.start_time().nanos());

  auto inventory_stub = inventory::v1::InventoryService::NewStub(channel);
  inventory::v1::UpsertProductRequest product;
  product.set_request_id("e2e-product");
  product.set_sku("E2E-0");
  product.set_name("End to end");
  product.mutable_unit_price()->set_currency_code("USD");
  product.mutable_unit_price()->set_amount_minor(999);
  product.set_on_hand(5);
  inventory::v1::Product stored;
  status = inventory_stub->UpsertProduct(Context().get(), product, &stored);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // A slow gateway call is in flight when SIGTERM arrives: it completes, then the server exits.
  auto payments_stub = payments::v1::PaymentService::NewStub(channel);
  payments::v1::AuthorizePaymentRequest slow;
  slow.set_request_id("e2e-slow");
  slow.set_order_id(created.order().order_id());
  slow.set_payment_token("tok_slow_1500");
  slow.mutable_amount()->set_currency_code("USD");
  slow.mutable_amount()->set_amount_minor(2997);
  grpc::Status slow_status;
  payments::v1::Payment payment;
  std::thread in_flight([&] {
    slow_status = payments_stub->AuthorizePayment(Context().get(), slow, &payment);
  });
  absl::SleepFor(absl::Milliseconds(400));
  server.Signal(SIGTERM);
  in_flight.join();
  EXPECT_TRUE(slow_status.ok()) << slow_status.error_message();
  EXPECT_EQ(payment.status(), payments::v1::PAYMENT_STATUS_AUTHORIZED);
  EXPECT_EQ(server.Wait(), 0) << server.Log();
  const std::string log = server.Log();
  EXPECT_NE(log.find("\"msg\":\"shutting down\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"msg\":\"server stopped\""), std::string::npos) << log;
}

TEST_F(ServerE2eTest, EachProcessServesOnlyItsServices) {
  const std::string dsn = testing::CreateTestDatabase("e2e_shapes");
  ASSERT_EQ(RunBinary({"migrate", "up", "--database_url=" + dsn}).first, 0);
  const int orders_port = FreePort();
  const int payments_port = FreePort();
  Process orders_process(ServeArgs(dsn, orders_port, {"--services=orders"}));
  Process payments_process(ServeArgs(dsn, payments_port, {"--services=payments,inventory"}));
  ASSERT_TRUE(WaitServing(ChannelTo(orders_port))) << orders_process.Log();
  ASSERT_TRUE(WaitServing(ChannelTo(payments_port))) << payments_process.Log();

  orders::v1::CreateOrderResponse created;
  EXPECT_TRUE(orders::v1::OrderService::NewStub(ChannelTo(orders_port))
                  ->CreateOrder(Context().get(), OrderRequest("shape-1"), &created)
                  .ok());
  EXPECT_EQ(orders::v1::OrderService::NewStub(ChannelTo(payments_port))
                ->CreateOrder(Context().get(), OrderRequest("shape-2"), &created)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  payments::v1::GetPaymentRequest get;
  get.set_payment_id("0190a6c4-0000-7000-8000-000000000000");
  payments::v1::Payment payment;
  EXPECT_EQ(payments::v1::PaymentService::NewStub(ChannelTo(payments_port))
                ->GetPayment(Context().get(), get, &payment)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(payments::v1::PaymentService::NewStub(ChannelTo(orders_port))
                ->GetPayment(Context().get(), get, &payment)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(ServerE2eTest, PostgresOutageUnderLoadIsUnavailableAndTheSameProcessRecovers) {
  if (!testing::UsingPrivateServer()) GTEST_SKIP() << "needs the private cluster to stop it";
  const std::string dsn = testing::CreateTestDatabase("e2e_outage");
  const int port = FreePort();
  Process server(ServeArgs(dsn, port, {"--auto_migrate", "--pool_size=8"}));
  auto channel = ChannelTo(port);
  ASSERT_TRUE(WaitServing(channel)) << server.Log();

  // A call is counted in a phase only if it started and ended in it; others are kTransition.
  enum Phase { kBefore, kDown, kAfter, kTransition };
  std::atomic<int> phase{kBefore};
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::map<std::pair<int, grpc::StatusCode>, int> outcomes;  // (phase, code) -> count
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      auto stub = orders::v1::OrderService::NewStub(channel);
      for (int i = 0; !stop.load(); ++i) {
        const int p = phase.load();
        orders::v1::CreateOrderResponse response;
        grpc::Status status = stub->CreateOrder(Context(absl::Seconds(5)).get(),
                                                OrderRequest(absl::StrCat("load-", c, "-", i)),
                                                &response);
        const int bucket = phase.load() == p ? p : kTransition;
        absl::MutexLock lock(&mu);
        outcomes[{bucket, status.error_code()}]++;
      }
    });
  }
  absl::SleepFor(absl::Seconds(1));
  phase = kTransition;
  testing::StopPrivateServer(testing::StopMode::kImmediate);
  phase = kDown;
  absl::SleepFor(absl::Seconds(1));
  phase = kTransition;
  testing::StartPrivateServer();
  phase = kAfter;
  absl::SleepFor(absl::Seconds(2));
  stop = true;
  for (auto& t : clients) t.join();

  absl::MutexLock lock(&mu);
  std::string summary;
  for (const auto& [key, count] : outcomes) {
    absl::StrAppend(&summary, "phase ", key.first, " code ", static_cast<int>(key.second), ": ",
                    count, "\n");
    EXPECT_TRUE(key.second == grpc::StatusCode::OK || key.second == grpc::StatusCode::UNAVAILABLE)
        << "unexpected code " << key.second;
  }
  EXPECT_GT((outcomes[{kBefore, grpc::StatusCode::OK}]), 0) << summary;
  EXPECT_GT((outcomes[{kDown, grpc::StatusCode::UNAVAILABLE}]), 0) << summary;
  EXPECT_EQ((outcomes[{kDown, grpc::StatusCode::OK}]), 0) << summary;
  EXPECT_GT((outcomes[{kAfter, grpc::StatusCode::OK}]), 0) << summary;
  std::cout << summary;
}

}  // namespace
}  // namespace order_platform

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!order_platform::testing::InitServerBinaryFromArgs(argc, argv)) return 2;
  return RUN_ALL_TESTS();
}
