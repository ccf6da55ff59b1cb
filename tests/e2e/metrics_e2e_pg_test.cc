// End to end: the real `order_platform` binary serves Prometheus metrics over HTTP. A few calls
// (OK and failing ones) are made over gRPC, /metrics is fetched like Prometheus would, the
// expected series and label values are checked, and `promtool check metrics` must accept the
// scrape. A second server places orders that confirm, are declined and run out of stock, and its
// saga engine and order outcome metrics are checked.
//
// Usage: metrics_e2e_pg_test <path to order_platform>   (or ORDER_PLATFORM_BIN)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/server_process.h"
#include "tests/support/test_postgres.h"

namespace order_platform {
namespace {

using ::order_platform::testing::SampleValue;

using ::order_platform::testing::FreePort;
using ::order_platform::testing::WaitServing;

// The server binary as a child process (tests/support/server_process.h) with a clean stop.
class Server {
 public:
  explicit Server(std::vector<std::string> args) : process_(std::move(args)) {}
  // Sends SIGTERM and returns the exit code.
  int Terminate() {
    process_.Signal(SIGTERM);
    return process_.Wait();
  }
  std::string Log() const { return process_.Log(); }

 private:
  testing::ServerProcess process_;
};

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// GET http://127.0.0.1:<port><path> (HTTP/1.0, so the body ends at EOF).
HttpResponse HttpGet(int port, const std::string& path) {
  HttpResponse response;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return response;
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  (void)!write(fd, request.data(), request.size());
  std::string raw;
  char buffer[8192];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) raw.append(buffer, n);
  close(fd);
  const size_t split = raw.find("\r\n\r\n");
  if (split == std::string::npos) return response;
  response.headers = raw.substr(0, split);
  response.body = raw.substr(split + 4);
  std::sscanf(response.headers.c_str(), "HTTP/%*s %d", &response.status);
  return response;
}

std::unique_ptr<grpc::ClientContext> Context() { return testing::Deadline(absl::Seconds(10)); }

orders::v1::CreateOrderRequest Order(const std::string& request_id) {
  orders::v1::CreateOrderRequest request;
  request.set_request_id(request_id);
  request.set_customer_id("metrics-customer");
  request.set_payment_token("tok_approve");
  orders::v1::OrderItem* item = request.add_items();
  item->set_sku("METRICS-1");
  item->set_quantity(3);
  item->mutable_unit_price()->set_currency_code("USD");
  item->mutable_unit_price()->set_amount_minor(999);
  return request;
}

// `promtool check metrics` on `text` (fed on stdin): {exit code, output}.
std::pair<int, std::string> Promtool(const std::string& text) {
  const std::string dir = ::testing::TempDir();
  const std::string in = absl::StrCat(dir, "/scrape_", getpid(), ".txt");
  const std::string out = absl::StrCat(dir, "/promtool_", getpid(), ".txt");
  std::ofstream(in) << text;
  const int rc =
      std::system(absl::StrCat("promtool check metrics < ", in, " > ", out, " 2>&1").c_str());
  std::ifstream output(out);
  std::stringstream text_out;
  text_out << output.rdbuf();
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, text_out.str()};
}

TEST(MetricsE2eTest, ServerServesGrpcDatabaseBusinessAndProcessMetricsThatPromtoolAccepts) {
  const std::string dsn = testing::CreateTestDatabase("e2e_metrics");
  const int port = FreePort();
  const int metrics_port = FreePort();
  Server server({"serve", "--database_url=" + dsn, absl::StrCat("--listen=127.0.0.1:", port),
                 absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port), "--auto_migrate",
                 "--shutdown_grace=5s"});
  // Reconnect quickly while the server is still starting.
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials(), arguments);
  ASSERT_TRUE(WaitServing(channel)) << server.Log();

  // Orders: two created, one replayed, one invalid, one bad read. (Cancellation races with the
  // order's workflow here; metrics_test counts it.)
  auto orders_stub = orders::v1::OrderService::NewStub(channel);
  orders::v1::CreateOrderResponse first;
  orders::v1::CreateOrderResponse second;
  ASSERT_TRUE(orders_stub->CreateOrder(Context().get(), Order("metrics-1"), &first).ok());
  ASSERT_TRUE(orders_stub->CreateOrder(Context().get(), Order("metrics-2"), &second).ok());
  orders::v1::CreateOrderResponse replay;
  ASSERT_TRUE(orders_stub->CreateOrder(Context().get(), Order("metrics-1"), &replay).ok());
  orders::v1::CreateOrderRequest invalid = Order("metrics-3");
  invalid.clear_items();
  orders::v1::CreateOrderResponse unused;
  EXPECT_EQ(orders_stub->CreateOrder(Context().get(), invalid, &unused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  orders::v1::GetOrderRequest bad_get;
  bad_get.set_order_id("not-a-uuid");
  orders::v1::Order order;
  EXPECT_EQ(orders_stub->GetOrder(Context().get(), bad_get, &order).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // Inventory: a product, then a reservation asking for more than there is.
  auto inventory_stub = inventory::v1::InventoryService::NewStub(channel);
  inventory::v1::UpsertProductRequest product;
  product.set_request_id("metrics-product");
  product.set_sku("METRICS-1");
  product.set_name("Metrics widget");
  product.mutable_unit_price()->set_currency_code("USD");
  product.mutable_unit_price()->set_amount_minor(999);
  product.set_on_hand(2);
  inventory::v1::Product stored;
  ASSERT_TRUE(inventory_stub->UpsertProduct(Context().get(), product, &stored).ok());
  inventory::v1::ReserveStockRequest reserve;
  reserve.set_request_id("metrics-reserve");
  reserve.set_order_id(first.order().order_id());
  inventory::v1::ReservationItem* item = reserve.add_items();
  item->set_sku("METRICS-1");
  item->set_quantity(3);
  inventory::v1::Reservation reservation;
  EXPECT_EQ(inventory_stub->ReserveStock(Context().get(), reserve, &reservation).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // Payments: one approved, one declined.
  auto payments_stub = payments::v1::PaymentService::NewStub(channel);
  for (const char* token : {"tok_approve", "tok_decline"}) {
    payments::v1::AuthorizePaymentRequest authorize;
    authorize.set_request_id(absl::StrCat("metrics-", token));
    authorize.set_order_id(first.order().order_id());
    authorize.set_payment_token(token);
    authorize.mutable_amount()->set_currency_code("USD");
    authorize.mutable_amount()->set_amount_minor(2997);
    payments::v1::Payment payment;
    ASSERT_TRUE(payments_stub->AuthorizePayment(Context().get(), authorize, &payment).ok());
  }

  // The orders' workflows call inventory over gRPC (grpc_client_*) in the background: scrape
  // until their first call has been counted.
  HttpResponse scrape;
  for (int i = 0; i < 100; ++i) {
    scrape = HttpGet(metrics_port, "/metrics");
    if (SampleValue(scrape.body, "grpc_client_handled_total",
                    {{"grpc_service", "order_platform.inventory.v1.InventoryService"}})
            .value_or(0) > 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(scrape.status, 200) << scrape.headers << "\n" << server.Log();
  EXPECT_TRUE(absl::StrContains(scrape.headers, "text/plain")) << scrape.headers;
  const std::string& text = scrape.body;
  const auto value = [&](const std::string& name, const std::map<std::string, std::string>& l) {
    return SampleValue(text, name, l).value_or(-1);
  };

  // gRPC server metrics, go-grpc-prometheus names and labels.
  const std::map<std::string, std::string> create = {
      {"grpc_type", "unary"},
      {"grpc_service", "order_platform.orders.v1.OrderService"},
      {"grpc_method", "CreateOrder"}};
  auto with_code = [](std::map<std::string, std::string> labels, const char* code) {
    labels["grpc_code"] = code;
    return labels;
  };
  EXPECT_EQ(value("grpc_server_started_total", create), 4);
  EXPECT_EQ(value("grpc_server_handled_total", with_code(create, "OK")), 3);
  EXPECT_EQ(value("grpc_server_handled_total", with_code(create, "InvalidArgument")), 1);
  EXPECT_EQ(value("grpc_server_handled_total", with_code(create, "Unavailable")), 0);
  EXPECT_EQ(value("grpc_server_msg_received_total", create), 4);
  EXPECT_EQ(value("grpc_server_msg_sent_total", create), 3);
  EXPECT_EQ(value("grpc_server_handling_seconds_count", create), 4);
  EXPECT_EQ(value("grpc_server_handled_total",
                  {{"grpc_method", "GetOrder"}, {"grpc_code", "InvalidArgument"}}),
            1);
  // The orders' workflows call participants too, so their counts are lower bounds.
  EXPECT_GE(value("grpc_server_handled_total",
                  {{"grpc_method", "ReserveStock"}, {"grpc_code", "FailedPrecondition"}}),
            1);
  EXPECT_GE(value("grpc_server_handled_total", {{"grpc_service", "grpc.health.v1.Health"},
                                                {"grpc_method", "Check"},
                                                {"grpc_code", "OK"}}),
            1);
  // Participant calls made by the orders' workflows, client side.
  EXPECT_GE(value("grpc_client_started_total",
                  {{"grpc_type", "unary"},
                   {"grpc_service", "order_platform.inventory.v1.InventoryService"},
                   {"grpc_method", "ReserveStock"}}),
            1);
  EXPECT_GE(value("grpc_client_handled_total",
                  {{"grpc_service", "order_platform.inventory.v1.InventoryService"}}),
            1);
  // Every method starts at zero, before its first call.
  EXPECT_EQ(value("grpc_server_started_total",
                  {{"grpc_service", "order_platform.payments.v1.PaymentService"},
                   {"grpc_method", "RefundPayment"}}),
            0);
  EXPECT_EQ(value("grpc_server_started_total",
                  {{"grpc_service", "order_platform.saga.v1.WorkflowService"},
                   {"grpc_method", "CancelWorkflow"}}),
            0);

  // Database metrics: one pool shared by the three services.
  const std::string database = "inventory,orders,payments";
  EXPECT_EQ(value("order_platform_db_pool_connections_max", {{"database", database}}), 16);
  EXPECT_GE(value("order_platform_db_pool_connections_open", {{"database", database}}), 1);
  EXPECT_GE(value("order_platform_db_pool_connections_in_use", {{"database", database}}), 0);
  EXPECT_EQ(value("order_platform_db_pool_waiting", {{"database", database}}), 0);
  EXPECT_GE(value("order_platform_db_checkout_wait_seconds_count", {{"database", database}}), 10);
  // Statements are labelled by their db::Statement name ("orders.insert...").
  EXPECT_GE(value("order_platform_db_query_duration_seconds_count", {{"database", database}}), 10);
  EXPECT_TRUE(absl::StrContains(text, "statement=\"orders.insert")) << text;
  for (const char* schema : {"orders", "payments", "inventory"}) {
    EXPECT_GE(value("order_platform_db_migration_version", {{"schema", schema}}), 1) << schema;
  }

  // Business metrics (payments and reservations may also come from the orders' workflows).
  EXPECT_EQ(value("order_platform_orders_created_total", {{"currency", "USD"}}), 2);
  EXPECT_EQ(value("order_platform_order_value_minor_total", {{"currency", "USD"}}), 2 * 2997);
  EXPECT_GE(value("order_platform_orders_cancelled_total", {}), 0);
  EXPECT_GE(value("order_platform_payments_total", {{"outcome", "authorized"}}), 1);
  EXPECT_GE(value("order_platform_payments_total", {{"outcome", "declined"}}), 1);
  EXPECT_GE(value("order_platform_payments_total", {{"outcome", "refunded"}}), 0);
  EXPECT_GE(
      value("order_platform_stock_reservations_failed_total", {{"reason", "insufficient_stock"}}),
      1);

  // Process and build.
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_GT(value("process_start_time_seconds", {}), now - 600);
  EXPECT_GT(value("process_resident_memory_bytes", {}), 0);
  EXPECT_GT(value("process_open_fds", {}), 0);
  EXPECT_GT(value("process_threads", {}), 1);
  EXPECT_GE(value("process_cpu_seconds_total", {}), 0);
  EXPECT_EQ(value("order_platform_build_info", {}), 1);
  EXPECT_TRUE(absl::StrContains(text, "order_platform_build_info{commit=\"")) << text;

  // No order id, customer id or DSN ever becomes a label value.
  EXPECT_FALSE(absl::StrContains(text, first.order().order_id()));
  EXPECT_FALSE(absl::StrContains(text, "metrics-customer"));
  EXPECT_FALSE(absl::StrContains(text, "postgresql://"));

  auto [promtool_code, promtool_output] = Promtool(text);
  EXPECT_EQ(promtool_code, 0) << promtool_output;

  EXPECT_EQ(HttpGet(metrics_port, "/nothing-here").status, 404);
  // Drop the connection so the drain does not wait for it.
  orders_stub.reset();
  inventory_stub.reset();
  payments_stub.reset();
  channel.reset();
  EXPECT_EQ(server.Terminate(), 0);
  const std::string log = server.Log();
  EXPECT_TRUE(absl::StrContains(log, "\"msg\":\"metrics endpoint started\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("\"port\":\"", metrics_port, "\""))) << log;
}

orders::v1::CreateOrderRequest SagaOrder(const std::string& request_id, const std::string& token,
                                         const std::string& sku, int quantity) {
  orders::v1::CreateOrderRequest request;
  request.set_request_id(request_id);
  request.set_customer_id("saga-metrics-customer");
  request.set_payment_token(token);
  orders::v1::OrderItem* item = request.add_items();
  item->set_sku(sku);
  item->set_quantity(quantity);
  item->mutable_unit_price()->set_currency_code("USD");
  item->mutable_unit_price()->set_amount_minor(500);
  return request;
}

TEST(MetricsE2eTest, SagaEngineAndOrderOutcomesAreCountedByWorkflowStepAndReason) {
  const std::string dsn = testing::CreateTestDatabase("e2e_saga_metrics");
  const int port = FreePort();
  const int metrics_port = FreePort();
  Server server({"serve", "--database_url=" + dsn, absl::StrCat("--listen=127.0.0.1:", port),
                 absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port), "--auto_migrate",
                 "--shutdown_grace=5s"});
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials(), arguments);
  ASSERT_TRUE(WaitServing(channel)) << server.Log();

  // Before any order: the registered workflow types' series exist at zero.
  {
    const std::string text = HttpGet(metrics_port, "/metrics").body;
    EXPECT_EQ(SampleValue(text, "order_platform_workflows_finished_total",
                          {{"workflow", "RefundOrder"}, {"outcome", "completed"}}),
              0)
        << text;
    EXPECT_EQ(SampleValue(text, "order_platform_orders_rejected_total", {{"reason", "other"}}), 0);
  }

  auto inventory_stub = inventory::v1::InventoryService::NewStub(channel);
  for (const auto& [sku, on_hand] :
       {std::make_pair("SAGA-PLENTY", 10), std::make_pair("SAGA-SCARCE", 1)}) {
    inventory::v1::UpsertProductRequest product;
    product.set_request_id(absl::StrCat("product-", sku));
    product.set_sku(sku);
    product.set_name(absl::StrCat("Product ", sku));
    product.mutable_unit_price()->set_currency_code("USD");
    product.mutable_unit_price()->set_amount_minor(500);
    product.set_on_hand(on_hand);
    inventory::v1::Product stored;
    ASSERT_TRUE(inventory_stub->UpsertProduct(Context().get(), product, &stored).ok());
  }

  // One order confirms, one is declined (compensated: its stock is released), one asks for more
  // than there is (failed: nothing to compensate).
  auto orders_stub = orders::v1::OrderService::NewStub(channel);
  std::vector<std::string> order_ids;
  for (const orders::v1::CreateOrderRequest& request :
       {SagaOrder("saga-approve", "tok_approve", "SAGA-PLENTY", 2),
        SagaOrder("saga-decline", "tok_decline", "SAGA-PLENTY", 1),
        SagaOrder("saga-scarce", "tok_approve", "SAGA-SCARCE", 5)}) {
    orders::v1::CreateOrderResponse created;
    grpc::Status status = orders_stub->CreateOrder(Context().get(), request, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    order_ids.push_back(created.order().order_id());
  }

  // Scrape until the three workflows have ended (the confirmed order's after its capture).
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text = HttpGet(metrics_port, "/metrics").body;
    if (SampleValue(text, "order_platform_workflows_finished_total", {{"workflow", "PlaceOrder"}})
            .value_or(0) >= 3) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  const auto value = [&](const std::string& name, const std::map<std::string, std::string>& l) {
    return SampleValue(text, name, l).value_or(-1);
  };
  auto with = [](std::map<std::string, std::string> labels, const char* key, const char* v) {
    labels[key] = v;
    return labels;
  };
  const std::map<std::string, std::string> place = {{"workflow", "PlaceOrder"}};

  // Workflows, by type and outcome.
  EXPECT_EQ(value("order_platform_workflows_started_total", place), 3) << server.Log();
  EXPECT_EQ(value("order_platform_workflows_finished_total", with(place, "outcome", "completed")),
            1);
  EXPECT_EQ(value("order_platform_workflows_finished_total", with(place, "outcome", "compensated")),
            1);
  EXPECT_EQ(value("order_platform_workflows_finished_total", with(place, "outcome", "failed")), 1);
  EXPECT_EQ(
      value("order_platform_workflows_finished_total", with(place, "outcome", "needs_attention")),
      0);
  EXPECT_EQ(value("order_platform_workflow_duration_seconds_count", place), 3);
  EXPECT_EQ(value("order_platform_workflows_started_total", {{"workflow", "RefundOrder"}}), 0);
  EXPECT_EQ(value("order_platform_workflow_lease_takeovers_total", place), 0);

  // Steps and compensations.
  const auto step = [&](const char* name) { return with(place, "step", name); };
  EXPECT_EQ(value("order_platform_workflow_step_attempts_total",
                  with(step("reserve_stock"), "outcome", "succeeded")),
            2);
  EXPECT_EQ(value("order_platform_workflow_step_attempts_total",
                  with(step("reserve_stock"), "outcome", "failed")),
            1);
  EXPECT_EQ(value("order_platform_workflow_step_attempts_total",
                  with(step("authorize_payment"), "outcome", "succeeded")),
            2);
  EXPECT_EQ(value("order_platform_workflow_step_attempts_total",
                  with(step("confirm_order"), "outcome", "succeeded")),
            1);
  EXPECT_EQ(value("order_platform_workflow_step_attempts_total",
                  with(step("commit_reservation"), "outcome", "succeeded")),
            1);
  EXPECT_EQ(value("order_platform_workflow_step_duration_seconds_count", step("reserve_stock")), 3);
  EXPECT_EQ(value("order_platform_workflow_retries_total", step("reserve_stock")), 0);
  EXPECT_EQ(
      value("order_platform_workflow_compensations_total",
            {{"workflow", "PlaceOrder"}, {"compensation", "release_stock"}, {"outcome", "ok"}}),
      1);
  EXPECT_EQ(
      value("order_platform_workflow_compensations_total",
            {{"workflow", "PlaceOrder"}, {"compensation", "void_payment"}, {"outcome", "ok"}}),
      1);
  EXPECT_EQ(value("order_platform_workflow_compensations_total", {{"outcome", "failed"}}), 0);

  // Orders confirmed and rejected, by reason.
  EXPECT_EQ(value("order_platform_orders_created_total", {{"currency", "USD"}}), 3);
  EXPECT_EQ(value("order_platform_orders_confirmed_total", {}), 1);
  EXPECT_EQ(value("order_platform_orders_rejected_total", {{"reason", "payment_declined"}}), 1);
  EXPECT_EQ(value("order_platform_orders_rejected_total", {{"reason", "out_of_stock"}}), 1);
  EXPECT_EQ(value("order_platform_orders_rejected_total", {{"reason", "other"}}), 0);

  // Gauges read from the workflow store: nothing left running, nothing for an operator.
  for (const char* status : {"running", "waiting", "compensating", "needs_attention"}) {
    EXPECT_GE(value("order_platform_workflows", {{"status", status}}), 0) << status << "\n" << text;
  }
  EXPECT_EQ(value("order_platform_workflows", {{"status", "needs_attention"}}), 0);
  EXPECT_GE(value("order_platform_workflow_dispatch_lag_seconds", {}), 0);
  // Every step and end of the three workflows was a checkpoint (the local step's in its own
  // transaction is not counted), in no more statements than checkpoints.
  const double statements = value("order_platform_workflow_checkpoint_statements_total", {});
  const double checkpoints = value("order_platform_workflow_checkpoints_total", {});
  EXPECT_GE(checkpoints, 3);
  EXPECT_GE(statements, 1);
  EXPECT_LE(statements, checkpoints);
  EXPECT_EQ(value("order_platform_workflow_checkpoints_queued", {}), 0);
  // The shared business statements, each write carried once, in no more statements than writes:
  // three CreateOrders; three Reserves; one Commit and one Release (the declined order's
  // compensation); two authorizations' pending payments (the out-of-stock order never got to
  // one) and one capture (voiding the declined payment writes nothing).
  for (const auto& [writes, expected] :
       std::vector<std::pair<std::string, double>>{{"orders_create", 3},
                                                   {"inventory_reserve", 3},
                                                   {"inventory_settle", 2},
                                                   {"payments", 3}}) {
    const double sent = value("order_platform_db_batch_statements_total", {{"writes", writes}});
    EXPECT_EQ(value("order_platform_db_batched_writes_total", {{"writes", writes}}), expected)
        << writes;
    EXPECT_GE(sent, 1) << writes;
    EXPECT_LE(sent, expected) << writes;
    EXPECT_EQ(value("order_platform_db_batched_writes_queued", {{"writes", writes}}), 0) << writes;
  }

  for (const std::string& id : order_ids) EXPECT_FALSE(absl::StrContains(text, id)) << id;
  EXPECT_FALSE(absl::StrContains(text, "saga-metrics-customer"));
  auto [promtool_code, promtool_output] = Promtool(text);
  EXPECT_EQ(promtool_code, 0) << promtool_output;

  orders_stub.reset();
  inventory_stub.reset();
  channel.reset();
  EXPECT_EQ(server.Terminate(), 0);
}

TEST(MetricsE2eTest, RefusesToStartWhenTheMetricsAddressIsTaken) {
  const std::string dsn = testing::CreateTestDatabase("e2e_metrics_taken");
  const int metrics_port = FreePort();
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(metrics_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(taken, 1), 0);
  Server server({"serve", "--database_url=" + dsn, absl::StrCat("--listen=127.0.0.1:", FreePort()),
                 absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port), "--auto_migrate"});
  // The child exits by itself; Terminate's SIGTERM then finds it gone.
  for (int i = 0; i < 100 && !absl::StrContains(server.Log(), "cannot start"); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string log = server.Log();
  close(taken);
  EXPECT_TRUE(absl::StrContains(log, "cannot serve metrics on 127.0.0.1:")) << log;
  EXPECT_EQ(server.Terminate(), 1) << log;
}

}  // namespace
}  // namespace order_platform

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!order_platform::testing::InitServerBinaryFromArgs(argc, argv)) return 2;
  return RUN_ALL_TESTS();
}
