// Metrics without a database: gRPC server and client interceptors over a real in-process channel
// to the real OrderService handler (in-memory repository), canonical code names, the process
// collector, build info, business events from the domain services, the database observer fed
// by a pool whose server cannot be reached, and the saga engine's observer. Values are read back
// from the text a scrape returns.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "db/pg_workflow_store.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "saga/workflows/order_workflows.h"
#include "services/inventory/inventory_service.h"
#include "services/inventory/memory_inventory_repository.h"
#include "services/metrics/business_metrics.h"
#include "services/metrics/db_metrics.h"
#include "services/metrics/grpc_metrics.h"
#include "services/metrics/metrics_registry.h"
#include "services/metrics/saga_metrics.h"
#include "services/orders/memory_order_repository.h"
#include "services/orders/order_handler.h"
#include "services/orders/order_service.h"
#include "services/payments/memory_payment_repository.h"
#include "services/payments/payment_service.h"
#include "services/payments/simulated_gateway.h"
#include "tests/support/prometheus_text.h"

namespace order_platform::metrics {
namespace {

using ::order_platform::testing::SampleValue;
using Labels = std::map<std::string, std::string>;

constexpr char kOrderService[] = "order_platform.orders.v1.OrderService";

Labels Method(const std::string& method, const std::string& service = kOrderService,
              const std::string& type = "unary") {
  return {{"grpc_service", service}, {"grpc_method", method}, {"grpc_type", type}};
}

Labels With(Labels labels, const std::string& key, const std::string& value) {
  labels[key] = value;
  return labels;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

orders::v1::CreateOrderRequest ValidOrder(const std::string& request_id) {
  orders::v1::CreateOrderRequest request;
  request.set_request_id(request_id);
  request.set_customer_id("metrics-customer");
  request.set_payment_token("tok_approve");
  orders::v1::OrderItem* item = request.add_items();
  item->set_sku("SKU-1");
  item->set_quantity(3);
  item->mutable_unit_price()->set_currency_code("USD");
  item->mutable_unit_price()->set_amount_minor(250);
  return request;
}

// The real OrderService handler on the in-memory repository, served with the metrics
// interceptor; the client side goes through an instrumented channel. Both record into one
// registry, as they would in a process that serves and calls.
class GrpcMetricsTest : public ::testing::Test {
 protected:
  GrpcMetricsTest() {
    grpc::EnableDefaultHealthCheckService(true);
    server_metrics_.InitializeMethods({kOrderService, "grpc.health.v1.Health", "no.such.Service"});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&handler_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(server_metrics_.NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(factories));
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    channel_ = CreateInstrumentedChannel(Target(), grpc::InsecureChannelCredentials(), {},
                                         &client_metrics_);
    stub_ = orders::v1::OrderService::NewStub(channel_);
  }
  ~GrpcMetricsTest() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  std::string Target() const { return "127.0.0.1:" + std::to_string(port_); }

  // Server-side series are recorded as the status is sent, which may be a moment after the
  // client saw it: scrape until `name{labels}` reaches `want` (or give up after 5 s).
  double WaitFor(const std::string& name, const Labels& labels, double want) {
    double value = -1;
    for (int i = 0; i < 500; ++i) {
      value = SampleValue(registry_.Scrape(), name, labels).value_or(-1);
      if (value == want) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return value;
  }

  MetricsRegistry registry_;
  GrpcServerMetrics server_metrics_{registry_};
  GrpcClientMetrics client_metrics_{registry_};
  BusinessMetrics business_{registry_};
  orders::MemoryOrderRepository repository_;
  orders::OrderService service_{&repository_, &business_};
  orders::OrderServiceHandler handler_{&service_};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<orders::v1::OrderService::Stub> stub_;
};

TEST_F(GrpcMetricsTest, OkAndErrorCallsAreCountedByCodeOnServerAndClient) {
  orders::v1::CreateOrderResponse created;
  ASSERT_TRUE(stub_->CreateOrder(Context().get(), ValidOrder("m-1"), &created).ok());
  orders::v1::GetOrderRequest bad;
  bad.set_order_id("not-a-uuid");
  orders::v1::Order order;
  EXPECT_EQ(stub_->GetOrder(Context().get(), bad, &order).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  orders::v1::GetOrderRequest missing;
  missing.set_order_id("0190a6c4-0000-7000-8000-000000000000");
  EXPECT_EQ(stub_->GetOrder(Context().get(), missing, &order).error_code(),
            grpc::StatusCode::NOT_FOUND);

  for (const std::string side : {"server", "client"}) {
    SCOPED_TRACE(side);
    const std::string p = "grpc_" + side + "_";
    EXPECT_EQ(WaitFor(p + "handled_total", With(Method("GetOrder"), "grpc_code", "NotFound"), 1),
              1);
    EXPECT_EQ(WaitFor(p + "handled_total", With(Method("CreateOrder"), "grpc_code", "OK"), 1), 1);
    const std::string text = registry_.Scrape();
    EXPECT_EQ(SampleValue(text, p + "started_total", Method("CreateOrder")), 1);
    EXPECT_EQ(SampleValue(text, p + "started_total", Method("GetOrder")), 2);
    EXPECT_EQ(SampleValue(text, p + "handled_total",
                          With(Method("GetOrder"), "grpc_code", "InvalidArgument")),
              1);
    EXPECT_EQ(SampleValue(text, p + "handled_total", With(Method("GetOrder"), "grpc_code", "OK"))
                  .value_or(0),
              0);
    // A unary call receives one request and sends one response, none when it fails.
    EXPECT_EQ(SampleValue(text, p + "msg_received_total", Method("CreateOrder")), 1);
    EXPECT_EQ(SampleValue(text, p + "msg_sent_total", Method("CreateOrder")), 1);
    EXPECT_EQ(SampleValue(text, p + "handling_seconds_count", Method("CreateOrder")), 1);
    EXPECT_EQ(SampleValue(text, p + "handling_seconds_count", Method("GetOrder")), 2);
    EXPECT_EQ(
        SampleValue(text, p + "handling_seconds_bucket", With(Method("CreateOrder"), "le", "+Inf")),
        1);
    EXPECT_EQ(SampleValue(text, p + "handling_seconds_bucket",
                          With(Method("CreateOrder"), "le", "0.0005"))
                  .has_value(),
              true);
  }
  // The server sent GetOrder's response zero times; the client received none.
  const std::string text = registry_.Scrape();
  EXPECT_EQ(SampleValue(text, "grpc_server_msg_sent_total", Method("GetOrder")), 0);
  EXPECT_EQ(SampleValue(text, "grpc_server_msg_received_total", Method("GetOrder")), 2);
  EXPECT_EQ(SampleValue(text, "grpc_client_msg_received_total", Method("GetOrder")), 0);
  // The business event of the created order.
  EXPECT_EQ(SampleValue(text, "order_platform_orders_created_total", {{"currency", "USD"}}), 1);
  EXPECT_EQ(SampleValue(text, "order_platform_order_value_minor_total", {{"currency", "USD"}}),
            750);
}

TEST_F(GrpcMetricsTest, InitializedMethodsStartAtZeroForEveryCode) {
  const std::string text = registry_.Scrape();
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", Method("ListOrders")), 0);
  EXPECT_EQ(SampleValue(text, "grpc_server_handling_seconds_count", Method("CancelOrder")), 0);
  for (const char* code :
       {"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
        "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
        "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}) {
    EXPECT_EQ(SampleValue(text, "grpc_server_handled_total",
                          With(Method("BatchGetOrders"), "grpc_code", code)),
              0)
        << code;
  }
  // Streaming types come from the descriptors: Health.Watch streams from the server.
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total",
                        Method("Watch", "grpc.health.v1.Health", "server_stream")),
            0);
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", {{"grpc_service", "no.such.Service"}}),
            std::nullopt);
}

TEST_F(GrpcMetricsTest, ServerStreamCountsEachMessageAndTheCancellation) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  auto reader = health->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  const Labels watch = Method("Watch", "grpc.health.v1.Health", "server_stream");
  // The server counts the code its handler finished with: gRPC's health service ends a
  // cancelled Watch with UNKNOWN.
  EXPECT_EQ(WaitFor("grpc_server_handled_total", With(watch, "grpc_code", "Unknown"), 1), 1);
  const std::string text = registry_.Scrape();
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", watch), 1);
  EXPECT_EQ(SampleValue(text, "grpc_client_handled_total", With(watch, "grpc_code", "Canceled")),
            1);
  EXPECT_EQ(SampleValue(text, "grpc_client_msg_sent_total", watch), 1);
  EXPECT_GE(SampleValue(text, "grpc_client_msg_received_total", watch).value_or(0), 1);
  EXPECT_GE(SampleValue(text, "grpc_server_msg_sent_total", watch).value_or(0), 1);
}

TEST_F(GrpcMetricsTest, UnknownMethodsAreNotCountedSoLabelsStayBounded) {
  // A raw call to a method the server does not have, on a channel without metrics.
  auto plain = grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(plain);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty_message("");
  grpc::ByteBuffer request(&empty_message, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  generic.UnaryCall(&context, "/order_platform.orders.v1.OrderService/NoSuchMethod",
                    grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  absl::SleepFor(absl::Milliseconds(100));
  const std::string text = registry_.Scrape();
  EXPECT_EQ(text.find("NoSuchMethod"), std::string::npos);
  EXPECT_EQ(text.find("grpc_method=\"unknown\""), std::string::npos);
}

TEST(CanonicalCodeNameTest, MatchesGoCodeStrings) {
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::CANCELLED), "Canceled");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::INVALID_ARGUMENT), "InvalidArgument");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::DEADLINE_EXCEEDED), "DeadlineExceeded");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "ResourceExhausted");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::FAILED_PRECONDITION), "FailedPrecondition");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::UNAVAILABLE), "Unavailable");
  EXPECT_EQ(CanonicalCodeName(grpc::StatusCode::UNAUTHENTICATED), "Unauthenticated");
  EXPECT_EQ(CanonicalCodeName(static_cast<grpc::StatusCode>(99)), "Unknown");
}

TEST(ProcessMetricsTest, ValuesDescribeThisProcess) {
  MetricsRegistry registry;
  const std::string text = registry.Scrape();
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  const auto value = [&](const char* name) { return SampleValue(text, name).value_or(-1); };
  EXPECT_GE(value("process_cpu_seconds_total"), 0);
  EXPECT_GT(value("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(value("process_virtual_memory_bytes"), value("process_resident_memory_bytes"));
  EXPECT_GE(value("process_open_fds"), 3);  // stdin, stdout, stderr at least.
  EXPECT_GE(value("process_max_fds"), value("process_open_fds"));
  EXPECT_GE(value("process_threads"), 1);
  EXPECT_LE(value("process_start_time_seconds"), now + 1);
  EXPECT_GT(value("process_start_time_seconds"), now - 3600);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_open_fds gauge"), std::string::npos);
}

TEST(ProcessMetricsTest, CpuSecondsGrowWithWork) {
  MetricsRegistry registry;
  const double before = SampleValue(registry.Scrape(), "process_cpu_seconds_total").value_or(-1);
  const absl::Time until = absl::Now() + absl::Milliseconds(300);
  volatile double sink = 0;
  while (absl::Now() < until) sink = sink + std::sqrt(sink + 1.0);
  EXPECT_GT(SampleValue(registry.Scrape(), "process_cpu_seconds_total").value_or(-1), before);
}

TEST(BuildInfoTest, IsOneWithVersionAndCommit) {
  MetricsRegistry registry;
  const std::string text = registry.Scrape();
  EXPECT_FALSE(BuildVersion().empty());
  EXPECT_FALSE(BuildCommit().empty());
  EXPECT_EQ(SampleValue(
                text, "order_platform_build_info",
                {{"version", std::string(BuildVersion())}, {"commit", std::string(BuildCommit())}}),
            1);
}

TEST(BusinessMetricsTest, PaymentOutcomesAreCountedOncePerRecordedChange) {
  MetricsRegistry registry;
  BusinessMetrics business(registry);
  payments::MemoryPaymentRepository repository;
  payments::SimulatedGateway gateway;
  payments::PaymentService service(&repository, &gateway, &business);
  const Money amount{"EUR", 1000};
  absl::StatusOr<payments::Payment> approved =
      service.Authorize({"pay-1", "order-1", amount, "tok_approve"});
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_TRUE(service.Authorize({"pay-1", "order-1", amount, "tok_approve"}).ok());  // Replay.
  ASSERT_TRUE(service.Authorize({"pay-2", "order-2", amount, "tok_decline"}).ok());
  EXPECT_FALSE(service.Authorize({"pay-3", "order-3", amount, "tok_transient_5"}).ok());
  ASSERT_TRUE(service.Capture({"cap-1", approved->id, Money{}}).ok());
  ASSERT_TRUE(service.Capture({"cap-1", approved->id, Money{}}).ok());  // Replay.
  ASSERT_TRUE(service.Refund({"ref-1", approved->id, Money{}, "returned"}).ok());

  const std::string text = registry.Scrape();
  const auto outcome = [&](const char* name) {
    return SampleValue(text, "order_platform_payments_total", {{"outcome", name}}).value_or(-1);
  };
  EXPECT_EQ(outcome("authorized"), 1);
  EXPECT_EQ(outcome("declined"), 1);
  EXPECT_EQ(outcome("failed"), 1);
  EXPECT_EQ(outcome("captured"), 1);
  EXPECT_EQ(outcome("refunded"), 1);
  EXPECT_EQ(outcome("voided"), 0);
}

TEST(BusinessMetricsTest, ReservationFailuresAreCountedByReasonAndCancellations) {
  MetricsRegistry registry;
  BusinessMetrics business(registry);
  inventory::MemoryInventoryRepository repository;
  inventory::InventoryService service(&repository, &business);
  ASSERT_TRUE(service.UpsertProduct({"up-1", "SKU-1", "Widget", Money{"USD", 100}, 2, 0}).ok());
  EXPECT_EQ(service.ReserveStock({"res-1", "order-1", {{"SKU-1", 5}}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(service.ReserveStock({"res-2", "order-2", {{"SKU-404", 1}}}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(service.ReserveStock({"res-3", "order-3", {{"SKU-404", 1}}}).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(service.ReserveStock({"res-4", "order-4", {{"SKU-1", 2}}}).ok());

  orders::MemoryOrderRepository orders_repository;
  orders::OrderService orders(&orders_repository, &business);
  absl::StatusOr<orders::CreateOrderResult> created =
      orders.Create({"create-1", "customer-1", {{"SKU-1", 1, Money{"JPY", 500}}}, "tok_approve"});
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(orders.Cancel({"cancel-1", created->order.id, "changed my mind", 0}).ok());
  ASSERT_TRUE(orders.Cancel({"cancel-1", created->order.id, "changed my mind", 0}).ok());

  const std::string text = registry.Scrape();
  EXPECT_EQ(SampleValue(text, "order_platform_stock_reservations_failed_total",
                        {{"reason", "insufficient_stock"}}),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_stock_reservations_failed_total",
                        {{"reason", "unknown_sku"}}),
            2);
  EXPECT_EQ(SampleValue(text, "order_platform_orders_created_total", {{"currency", "JPY"}}), 1);
  EXPECT_EQ(SampleValue(text, "order_platform_order_value_minor_total", {{"currency", "JPY"}}),
            500);
  EXPECT_EQ(SampleValue(text, "order_platform_orders_cancelled_total"), 1);
}

TEST(BusinessMetricsTest, ConfirmationsAndRejectionsByReasonStartAtZero) {
  MetricsRegistry registry;
  BusinessMetrics business(registry);
  const auto rejected = [&](const char* reason) {
    return SampleValue(registry.Scrape(), "order_platform_orders_rejected_total",
                       {{"reason", reason}})
        .value_or(-1);
  };
  for (const char* reason : {"out_of_stock", "unknown_product", "payment_declined",
                             "payment_failed", "deadline_exceeded", "other"}) {
    EXPECT_EQ(rejected(reason), 0) << reason;
  }
  EXPECT_EQ(SampleValue(registry.Scrape(), "order_platform_orders_confirmed_total"), 0);

  BusinessEvents& events = business;
  events.OrderConfirmed();
  events.OrderConfirmed();
  events.OrderRejected(OrderRejection::kPaymentDeclined);
  events.OrderRejected(OrderRejection::kOutOfStock);
  events.OrderRejected(OrderRejection::kPaymentDeclined);
  EXPECT_EQ(SampleValue(registry.Scrape(), "order_platform_orders_confirmed_total"), 2);
  EXPECT_EQ(rejected("payment_declined"), 2);
  EXPECT_EQ(rejected("out_of_stock"), 1);
  EXPECT_EQ(rejected("other"), 0);
}

TEST(BusinessMetricsTest, PlaceOrderRejectionReasonsMapToTheFixedSet) {
  using saga::PlaceOrderRejection;
  EXPECT_EQ(PlaceOrderRejection("out of stock: SCARCE has 1 available, 3 requested"),
            OrderRejection::kOutOfStock);
  EXPECT_EQ(PlaceOrderRejection("unknown product: NO-SUCH-SKU"), OrderRejection::kUnknownProduct);
  EXPECT_EQ(PlaceOrderRejection("payment declined: card declined"),
            OrderRejection::kPaymentDeclined);
  EXPECT_EQ(PlaceOrderRejection("payment declined: insufficient funds"),
            OrderRejection::kPaymentDeclined);
  EXPECT_EQ(PlaceOrderRejection("payment could not be authorized: gateway unavailable"),
            OrderRejection::kPaymentFailed);
  EXPECT_EQ(PlaceOrderRejection("could not reserve stock: database unavailable"),
            OrderRejection::kOther);
  EXPECT_EQ(PlaceOrderRejection("workflow deadline exceeded"), OrderRejection::kDeadlineExceeded);
  EXPECT_EQ(PlaceOrderRejection("could not reserve stock: workflow deadline exceeded"),
            OrderRejection::kOther);
  EXPECT_EQ(OrderRejectionName(OrderRejection::kDeadlineExceeded), "deadline_exceeded");
  EXPECT_EQ(PlaceOrderRejection(""), OrderRejection::kOther);
  EXPECT_EQ(PlaceOrderRejection("out of stockroom"), OrderRejection::kOther);
  EXPECT_EQ(OrderRejectionName(OrderRejection::kPaymentFailed), "payment_failed");
}

TEST(SagaMetricsTest, RegisteredWorkflowTypesStartAtZeroForEveryOutcome) {
  MetricsRegistry registry;
  SagaMetrics saga_metrics(registry);
  saga::EngineObserver& observer = saga_metrics;
  observer.WorkflowRegistered(saga::kPlaceOrderType);
  observer.WorkflowRegistered(saga::kRefundOrderType);
  observer.WorkflowRegistered(saga::kRefundOrderType);  // Twice: same series.

  const std::string text = registry.Scrape();
  for (const char* type : {saga::kPlaceOrderType, saga::kRefundOrderType}) {
    const Labels workflow = {{"workflow", type}};
    EXPECT_EQ(SampleValue(text, "order_platform_workflows_started_total", workflow), 0) << type;
    EXPECT_EQ(SampleValue(text, "order_platform_workflow_lease_takeovers_total", workflow), 0);
    EXPECT_EQ(SampleValue(text, "order_platform_workflow_duration_seconds_count", workflow), 0);
    for (const char* outcome :
         {"completed", "compensated", "cancelled", "failed", "needs_attention"}) {
      EXPECT_EQ(SampleValue(text, "order_platform_workflows_finished_total",
                            With(workflow, "outcome", outcome)),
                0)
          << type << " " << outcome;
    }
  }
  // Without a store there are no gauges (rather than wrong ones).
  EXPECT_EQ(text.find("order_platform_workflows{"), std::string::npos);
  EXPECT_EQ(text.find("order_platform_workflow_dispatch_lag_seconds"), std::string::npos);
}

TEST(SagaMetricsTest, EngineReportsAreCountedByWorkflowStepAndOutcome) {
  MetricsRegistry registry;
  SagaMetrics saga_metrics(registry);
  saga::EngineObserver& observer = saga_metrics;
  observer.WorkflowRegistered("PlaceOrder");
  observer.WorkflowStarted("PlaceOrder");
  observer.WorkflowStarted("PlaceOrder");
  observer.StepAttempt("PlaceOrder", "reserve_stock", "succeeded", absl::Milliseconds(2));
  observer.StepAttempt("PlaceOrder", "authorize_payment", "retry", absl::Milliseconds(1));
  observer.StepAttempt("PlaceOrder", "authorize_payment", "retry", absl::Milliseconds(1));
  observer.StepAttempt("PlaceOrder", "authorize_payment", "succeeded", absl::Milliseconds(3));
  observer.StepAttempt("PlaceOrder", "confirm_order", "failed", absl::Milliseconds(40));
  observer.CompensationAttempt("PlaceOrder", "void_payment", false);
  observer.CompensationAttempt("PlaceOrder", "void_payment", true);
  observer.CompensationAttempt("PlaceOrder", "release_stock", true);
  observer.LeaseTakeover("PlaceOrder");
  observer.WorkflowFinished("PlaceOrder", "completed", absl::Milliseconds(50));
  observer.WorkflowFinished("PlaceOrder", "compensated", absl::Seconds(3));
  // A type this process does not run (e.g. a row written by a newer build) is "other".
  observer.WorkflowStarted("ShipOrder");
  observer.WorkflowFinished("ShipOrder", "needs_attention", absl::Seconds(1));

  const std::string text = registry.Scrape();
  const Labels place = {{"workflow", "PlaceOrder"}};
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_started_total", place), 2);
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_finished_total",
                        With(place, "outcome", "completed")),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_finished_total",
                        With(place, "outcome", "compensated")),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_finished_total",
                        With(place, "outcome", "failed")),
            0);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_duration_seconds_count", place), 2);
  EXPECT_NEAR(*SampleValue(text, "order_platform_workflow_duration_seconds_sum", place), 3.05,
              1e-9);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_duration_seconds_bucket",
                        With(place, "le", "0.05")),
            1);

  const Labels authorize = {{"workflow", "PlaceOrder"}, {"step", "authorize_payment"}};
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_step_attempts_total",
                        With(authorize, "outcome", "retry")),
            2);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_step_attempts_total",
                        With(authorize, "outcome", "succeeded")),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_step_attempts_total",
                        With(authorize, "outcome", "failed")),
            0);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_retries_total", authorize), 2);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_step_duration_seconds_count", authorize), 3);
  const Labels confirm = {{"workflow", "PlaceOrder"}, {"step", "confirm_order"}};
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_step_attempts_total",
                        With(confirm, "outcome", "failed")),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_retries_total", confirm), 0);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_step_duration_seconds_bucket",
                        With(confirm, "le", "0.05")),
            1);

  const Labels void_payment = {{"workflow", "PlaceOrder"}, {"compensation", "void_payment"}};
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_compensations_total",
                        With(void_payment, "outcome", "ok")),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_compensations_total",
                        With(void_payment, "outcome", "failed")),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_compensations_total",
                        {{"compensation", "release_stock"}, {"outcome", "failed"}}),
            0);
  EXPECT_EQ(SampleValue(text, "order_platform_workflow_lease_takeovers_total", place), 1);

  const Labels other = {{"workflow", "other"}};
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_started_total", other), 1);
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_finished_total",
                        With(other, "outcome", "needs_attention")),
            1);
  EXPECT_EQ(text.find("ShipOrder"), std::string::npos);
}

TEST(SagaMetricsTest, UnreadableStoreLeavesTheGaugesOutOfTheScrape) {
  MetricsRegistry registry;
  SagaMetrics saga_metrics(registry);
  saga_metrics.WorkflowRegistered(saga::kPlaceOrderType);
  db::PoolOptions options;
  options.dsn = "postgresql://op@127.0.0.1:1/nothing";  // Port 1: connection refused.
  options.size = 1;
  db::ConnectionPool pool(options);
  db::PgWorkflowStore store(&pool);
  saga_metrics.AddStore(&store);
  const std::string text = registry.Scrape();
  EXPECT_EQ(text.find("order_platform_workflows{"), std::string::npos);
  EXPECT_EQ(text.find("order_platform_workflow_dispatch_lag_seconds"), std::string::npos);
  EXPECT_EQ(SampleValue(text, "order_platform_workflows_started_total",
                        {{"workflow", saga::kPlaceOrderType}}),
            0);
}

TEST(DbMetricsTest, UnreachableDatabaseIsACheckoutAndAConnectionError) {
  MetricsRegistry registry;
  DbMetrics db_metrics(registry);
  db::PoolOptions options;
  options.dsn = "postgresql://op@127.0.0.1:1/nothing";  // Port 1: connection refused.
  options.size = 3;
  options.observer = db_metrics.Observer("orders");
  db::ConnectionPool pool(options);
  db_metrics.AddPool("orders", &pool);
  db_metrics.SetMigrationVersion("orders", 7);

  const absl::Status status =
      db::RunTransaction(pool, {}, [](pqxx::transaction_base&) { return absl::OkStatus(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);

  const std::string text = registry.Scrape();
  const Labels orders = {{"database", "orders"}};
  EXPECT_EQ(SampleValue(text, "order_platform_db_checkout_wait_seconds_count", orders), 1);
  EXPECT_EQ(SampleValue(text, "order_platform_db_errors_total",
                        {{"database", "orders"}, {"sqlstate_class", "connection"}}),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_db_pool_connections_max", orders), 3);
  EXPECT_EQ(SampleValue(text, "order_platform_db_pool_connections_open", orders), 0);
  EXPECT_EQ(SampleValue(text, "order_platform_db_pool_connections_in_use", orders), 0);
  EXPECT_EQ(SampleValue(text, "order_platform_db_pool_waiting", orders), 0);
  EXPECT_EQ(SampleValue(text, "order_platform_db_migration_version", {{"schema", "orders"}}), 7);
  EXPECT_NE(text.find("# TYPE order_platform_db_pool_connects_total counter"), std::string::npos);
}

TEST(DbMetricsTest, ObserverRecordsStatementsAndErrorClassesUnderItsDatabase) {
  MetricsRegistry registry;
  DbMetrics db_metrics(registry);
  db::DbObserver* observer = db_metrics.Observer("payments");
  EXPECT_EQ(observer, db_metrics.Observer("payments"));
  observer->OnStatement("payments.insert", absl::Milliseconds(2), true);
  observer->OnStatement("payments.insert", absl::Milliseconds(30), false);
  observer->OnStatement("payments.get", absl::Microseconds(300), true);
  observer->OnError("23");
  observer->OnError("23");
  observer->OnError("40");

  const std::string text = registry.Scrape();
  const Labels insert = {{"database", "payments"}, {"statement", "payments.insert"}};
  EXPECT_EQ(SampleValue(text, "order_platform_db_query_duration_seconds_count", insert), 2);
  EXPECT_NEAR(*SampleValue(text, "order_platform_db_query_duration_seconds_sum", insert), 0.032,
              1e-9);
  EXPECT_EQ(SampleValue(text, "order_platform_db_query_duration_seconds_bucket",
                        {{"statement", "payments.insert"}, {"le", "0.0025"}}),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_db_query_duration_seconds_count",
                        {{"statement", "payments.get"}}),
            1);
  EXPECT_EQ(SampleValue(text, "order_platform_db_errors_total", {{"sqlstate_class", "23"}}), 2);
  EXPECT_EQ(SampleValue(text, "order_platform_db_errors_total", {{"sqlstate_class", "40"}}), 1);
}

TEST(DbMetricsTest, WatchedErrorClassesStartAtZeroForEachDatabase) {
  MetricsRegistry registry;
  DbMetrics db_metrics(registry);
  db_metrics.Observer("orders");
  db_metrics.Observer("payments")->OnError("40");
  const std::string text = registry.Scrape();
  for (const char* error_class : {"connection", "08", "23", "40", "53", "57"}) {
    EXPECT_EQ(SampleValue(text, "order_platform_db_errors_total",
                          {{"database", "orders"}, {"sqlstate_class", error_class}}),
              0)
        << error_class;
  }
  EXPECT_EQ(SampleValue(text, "order_platform_db_errors_total",
                        {{"database", "payments"}, {"sqlstate_class", "40"}}),
            1);
  // Other classes appear when they first happen.
  EXPECT_FALSE(SampleValue(text, "order_platform_db_errors_total",
                           {{"database", "orders"}, {"sqlstate_class", "22"}})
                   .has_value());
}

TEST(MetricsRegistryTest, ServesTheScrapeOverHttpOnAChosenPort) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.port(), 0);
  ASSERT_TRUE(registry.Serve("127.0.0.1:0").ok());
  EXPECT_GT(registry.port(), 0);
  MetricsRegistry other;
  const absl::Status taken = other.Serve("127.0.0.1:" + std::to_string(registry.port()));
  EXPECT_EQ(taken.code(), absl::StatusCode::kUnavailable) << taken;
  registry.StopServing();
  EXPECT_EQ(registry.port(), 0);
}

}  // namespace
}  // namespace order_platform::metrics
