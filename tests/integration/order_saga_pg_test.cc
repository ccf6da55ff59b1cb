// The order sagas end to end in-process, on one migrated PostgreSQL database: the real order,
// payment and inventory services and handlers on one gRPC server, PgOrderRepository starting
// PlaceOrder in CreateOrder's transaction, and a saga Engine running PlaceOrder and RefundOrder
// against the participants over that server's channel. Every test asserts what a user of the
// platform sees (order status and reason, payments, reservations, stock levels, workflow status
// and steps) and counts effects, so each one is shown to happen once.
//
// After every test the fixture checks the guarantees (DESIGN.md 3-5): every workflow reached a
// terminal state (except ones a test deliberately left for an operator), every order has its
// workflow and every PlaceOrder workflow its order, each order's payment and reservation agree
// with its final status, and stock is conserved (on_hand + committed = initial on_hand,
// reserved = the quantities of HELD reservations).
//
// The payment gateway is the real simulator behind a thin test decorator that can hold one
// authorization (after the simulator approved it) until the test releases it: the only
// deterministic way to have a cancel arrive between authorize_payment and the pivot
// confirm_order, which is what makes the void_payment compensation run against a real,
// authorized payment.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_inventory_repository.h"
#include "db/pg_order_repository.h"
#include "db/pg_payment_repository.h"
#include "db/pg_workflow_store.h"
#include "gtest/gtest.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "saga/engine.h"
#include "saga/workflows/order_workflows.h"
#include "services/inventory/inventory_handler.h"
#include "services/inventory/inventory_service.h"
#include "services/orders/order_handler.h"
#include "services/orders/order_service.h"
#include "services/payments/payment_handler.h"
#include "services/payments/payment_service.h"
#include "services/payments/simulated_gateway.h"
#include "tests/support/answer_dropping_proxy.h"
#include "tests/support/counting_gateway.h"
#include "tests/support/grpc_test_server.h"
#include "tests/support/pg_stats.h"
#include "tests/support/test_postgres.h"

namespace order_platform {
namespace {

namespace ov1 = ::order_platform::orders::v1;
namespace pv1 = ::order_platform::payments::v1;
namespace iv1 = ::order_platform::inventory::v1;
using ::order_platform::saga::StepKind;
using ::order_platform::saga::StepRecord;
using ::order_platform::saga::StepStatus;
using ::order_platform::saga::WorkflowRecord;
using ::order_platform::saga::WorkflowStatus;
using ::order_platform::testing::ContextWithDeadline;

constexpr absl::Duration kHeartbeat = absl::Milliseconds(500);
constexpr absl::Duration kCancelWait = absl::Seconds(5);
constexpr int64_t kUnitPrice = 1250;  // EUR minor units, for every item.

// The simulator, with the option to hold one approved authorization until released, and a count
// of the calls per idempotency key.
class GatedGateway final : public payments::PaymentGateway {
 public:
  // The next Authorize with `token` that the simulator approves is held (before its result is
  // returned to the payment service) until Release().
  void HoldNextAuthorization(const std::string& token) {
    absl::MutexLock lock(&mu_);
    gate_token_ = token;
  }
  bool WaitUntilHeld(absl::Duration timeout) {
    return held_.WaitForNotificationWithTimeout(timeout);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    if (!released_.HasBeenNotified()) released_.Notify();
  }

  absl::StatusOr<payments::AuthorizationResult> Authorize(
      const payments::GatewayRequest& request) override {
    absl::StatusOr<payments::AuthorizationResult> result = counted_.Authorize(request);
    bool hold = false;
    {
      absl::MutexLock lock(&mu_);
      if (result.ok() && result->approved && !gate_token_.empty() &&
          request.payment_token == gate_token_) {
        hold = true;
        gate_token_.clear();
      }
    }
    if (hold) {
      held_.Notify();
      // Never past the caller's deadline: a held call must not turn into a timeout.
      released_.WaitForNotificationWithDeadline(
          std::min(request.deadline - absl::Milliseconds(500), absl::Now() + absl::Seconds(4)));
    }
    return result;
  }
  absl::Status Capture(const payments::GatewayRequest& request) override {
    return counted_.Capture(request);
  }
  absl::Status Void(const payments::GatewayRequest& request) override {
    return counted_.Void(request);
  }
  absl::Status Refund(const payments::GatewayRequest& request) override {
    return counted_.Refund(request);
  }

  // How many calls of any kind reached the simulator with `idempotency_key`.
  int CallCount(absl::string_view idempotency_key) const {
    return counted_.CallCount(idempotency_key);
  }

 private:
  payments::SimulatedGateway sim_;
  testing::CountingGateway counted_{&sim_};
  absl::Mutex mu_;
  std::string gate_token_ ABSL_GUARDED_BY(mu_);
  absl::Notification held_;
  absl::Notification released_;
};

struct Line {
  std::string sku;
  int32_t quantity = 1;
};

bool Settled(WorkflowStatus status) {
  return saga::IsTerminal(status) || status == WorkflowStatus::kNeedsAttention;
}

// Polls `condition` every 10 ms until it holds or `timeout` passes.
template <typename Condition>
bool WaitFor(Condition condition, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return condition();
}

class OrderSagaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = testing::CreateTestDatabase("order_saga");
    for (const char* schema : {"saga", "orders", "payments", "inventory"}) {
      absl::StatusOr<db::MigrationSet> set = db::EmbeddedMigrations(schema);
      ASSERT_TRUE(set.ok()) << set.status();
      absl::StatusOr<int64_t> migrated = db::Migrator(dsn_, *std::move(set)).Up();
      ASSERT_TRUE(migrated.ok()) << schema << ": " << migrated.status();
    }
    // The services and the engine reach PostgreSQL through the proxy when a test loses answers.
    if (lose_answers_) proxy_ = std::make_unique<testing::AnswerDroppingProxy>(dsn_);
    pool_ = std::make_unique<db::ConnectionPool>(db::PoolOptions{
        .dsn = proxy_ ? proxy_->dsn() : dsn_, .size = 32, .checkout_timeout = absl::Seconds(5)});
    store_ = std::make_unique<db::PgWorkflowStore>(pool_.get());

    order_repository_ = std::make_unique<db::PgOrderRepository>(pool_.get());
    order_repository_->SetWorkflowLauncher([this](const orders::Order& order) {
      return saga::PlaceOrderStart(order, place_order_deadline_);
    });
    order_service_ = std::make_unique<orders::OrderService>(order_repository_.get());
    order_handler_ = std::make_unique<orders::OrderServiceHandler>(order_service_.get());

    gateway_ = std::make_unique<GatedGateway>();
    payment_repository_ = std::make_unique<db::PgPaymentRepository>(pool_.get());
    payment_service_ =
        std::make_unique<payments::PaymentService>(payment_repository_.get(), gateway_.get());
    payment_handler_ = std::make_unique<payments::PaymentServiceHandler>(payment_service_.get());

    inventory_repository_ = std::make_unique<db::PgInventoryRepository>(pool_.get());
    inventory_service_ =
        std::make_unique<inventory::InventoryService>(inventory_repository_.get());
    inventory_handler_ =
        std::make_unique<inventory::InventoryServiceHandler>(inventory_service_.get());

    server_ = std::make_unique<testing::GrpcTestServer>(std::vector<grpc::Service*>{
        order_handler_.get(), payment_handler_.get(), inventory_handler_.get()});
    orders_ = ov1::OrderService::NewStub(server_->Channel());
    payments_ = pv1::PaymentService::NewStub(server_->Channel());
    inventory_ = iv1::InventoryService::NewStub(server_->Channel());
    // The engine's participant stubs, on their own channel to the same server.
    participant_channel_ = server_->Channel();
    participant_payments_ = pv1::PaymentService::NewStub(participant_channel_);
    participant_inventory_ = iv1::InventoryService::NewStub(participant_channel_);
    participants_.payments = participant_payments_.get();
    participants_.inventory = participant_inventory_.get();

    workflows_ = std::make_unique<saga::EngineOrderWorkflows>(store_.get(), [this] {
      absl::MutexLock lock(&engine_mu_);
      if (engine_ != nullptr) engine_->Poke();
    });
    order_service_->SetWorkflows(workflows_.get(), kCancelWait);
    StartEngine();
  }

  void TearDown() override {
    if (proxy_) proxy_->StopDropping();  // The checks below read through it.
    gateway_->Release();
    CheckGuarantees();
    StopEngine();
  }

  // ---- the composition ----------------------------------------------------------------------

  void StartEngine() {
    saga::EngineOptions options;
    options.workers = 4;
    options.poll_interval = absl::Milliseconds(50);
    options.lease = absl::Seconds(5);
    options.heartbeat_interval = kHeartbeat;
    options.listen_dsn = dsn_;
    auto engine = std::make_unique<saga::Engine>(store_.get(), options);
    absl::Status status = engine->Register(saga::PlaceOrderWorkflow(participants_));
    ASSERT_TRUE(status.ok()) << status;
    status = engine->Register(saga::RefundOrderWorkflow(participants_));
    ASSERT_TRUE(status.ok()) << status;
    status = engine->Start();
    ASSERT_TRUE(status.ok()) << status;
    absl::MutexLock lock(&engine_mu_);
    engine_ = std::move(engine);
  }

  void StopEngine() {
    std::unique_ptr<saga::Engine> engine;
    {
      absl::MutexLock lock(&engine_mu_);
      engine = std::move(engine_);
    }
    if (engine != nullptr) engine->Stop(absl::Seconds(5));
  }

  // ---- arranging ------------------------------------------------------------------------------

  void AddProduct(const std::string& sku, int64_t on_hand) {
    iv1::UpsertProductRequest request;
    request.set_request_id(absl::StrCat("product-", sku));
    request.set_sku(sku);
    request.set_name(absl::StrCat("Product ", sku));
    request.mutable_unit_price()->set_currency_code("EUR");
    request.mutable_unit_price()->set_amount_minor(kUnitPrice);
    request.set_on_hand(on_hand);
    iv1::Product product;
    grpc::Status status = inventory_->UpsertProduct(ContextWithDeadline().get(), request, &product);
    ASSERT_TRUE(status.ok()) << status.error_message();
    initial_on_hand_[sku] = on_hand;
  }

  ov1::CreateOrderRequest OrderRequest(const std::string& token, const std::vector<Line>& lines) {
    ov1::CreateOrderRequest request;
    request.set_request_id(absl::StrCat("create-", ++requests_));
    request.set_customer_id("cust-saga");
    request.set_payment_token(token);
    for (const Line& line : lines) {
      ov1::OrderItem* item = request.add_items();
      item->set_sku(line.sku);
      item->set_quantity(line.quantity);
      item->mutable_unit_price()->set_currency_code("EUR");
      item->mutable_unit_price()->set_amount_minor(kUnitPrice);
    }
    return request;
  }

  grpc::Status Create(const ov1::CreateOrderRequest& request, ov1::CreateOrderResponse* response) {
    return orders_->CreateOrder(ContextWithDeadline().get(), request, response);
  }

  // Places an order and returns it as CreateOrder returned it (PENDING).
  ov1::Order PlaceOrder(const std::string& token, const std::vector<Line>& lines) {
    ov1::CreateOrderResponse response;
    grpc::Status status = Create(OrderRequest(token, lines), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.created());
    EXPECT_EQ(response.order().status(), ov1::ORDER_STATUS_PENDING);
    return response.order();
  }

  grpc::Status Cancel(const std::string& order_id, const std::string& request_id,
                      const std::string& reason, ov1::Order* out) {
    ov1::CancelOrderRequest request;
    request.set_request_id(request_id);
    request.set_order_id(order_id);
    request.set_reason(reason);
    return orders_->CancelOrder(ContextWithDeadline(15).get(), request, out);
  }

  // ---- observing ------------------------------------------------------------------------------

  ov1::Order GetOrder(const std::string& order_id) {
    ov1::GetOrderRequest request;
    request.set_order_id(order_id);
    ov1::Order order;
    grpc::Status status = orders_->GetOrder(ContextWithDeadline().get(), request, &order);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return order;
  }

  std::vector<ov1::Order> AllOrders() {
    std::vector<ov1::Order> all;
    ov1::ListOrdersRequest request;
    request.set_page_size(1000);
    while (true) {
      ov1::ListOrdersResponse response;
      grpc::Status status = orders_->ListOrders(ContextWithDeadline().get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      all.insert(all.end(), response.orders().begin(), response.orders().end());
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return all;
  }

  std::vector<pv1::Payment> Payments(const std::string& order_id) {
    pv1::ListPaymentsRequest request;
    request.set_order_id(order_id);
    request.set_page_size(1000);
    pv1::ListPaymentsResponse response;
    grpc::Status status = payments_->ListPayments(ContextWithDeadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.payments().begin(), response.payments().end()};
  }

  std::optional<iv1::Reservation> Reservation(const std::string& order_id) {
    iv1::GetReservationRequest request;
    request.set_order_id(order_id);
    iv1::Reservation reservation;
    grpc::Status status =
        inventory_->GetReservation(ContextWithDeadline().get(), request, &reservation);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
    EXPECT_TRUE(status.ok()) << status.error_message();
    return reservation;
  }

  iv1::Product Product(const std::string& sku) {
    iv1::GetProductRequest request;
    request.set_sku(sku);
    iv1::Product product;
    grpc::Status status = inventory_->GetProduct(ContextWithDeadline().get(), request, &product);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return product;
  }

  WorkflowRecord Workflow(const std::string& id) {
    absl::StatusOr<WorkflowRecord> w = store_->Get(id, /*with_steps=*/true);
    EXPECT_TRUE(w.ok()) << id << ": " << w.status();
    return w.value_or(WorkflowRecord{});
  }

  // Waits until the workflow is terminal or needs attention; returns it with its steps.
  WorkflowRecord AwaitWorkflow(const std::string& id, absl::Duration timeout = absl::Seconds(30)) {
    WorkflowRecord last;
    const bool settled = WaitFor(
        [&] {
          absl::StatusOr<WorkflowRecord> w = store_->Get(id, /*with_steps=*/true);
          if (w.ok()) last = *std::move(w);
          return w.ok() && Settled(last.status);
        },
        timeout);
    EXPECT_TRUE(settled) << "workflow " << id << " did not settle; it is "
                         << saga::WorkflowStatusName(last.status) << " (" << last.status_reason
                         << ")";
    return last;
  }

  // Waits for the order's PlaceOrder workflow to settle and returns the order.
  ov1::Order AwaitOrder(const ov1::Order& order) {
    AwaitWorkflow(order.workflow_id());
    return GetOrder(order.order_id());
  }

  static const StepRecord* FindStep(const WorkflowRecord& w, const std::string& name) {
    for (const StepRecord& step : w.steps) {
      if (step.name == name) return &step;
    }
    return nullptr;
  }

  static std::vector<std::string> StepNames(const WorkflowRecord& w) {
    std::vector<std::string> names;
    for (const StepRecord& step : w.steps) names.push_back(step.name);
    return names;
  }

  // Expects the order's reservation to be in `status` (or absent, for UNSPECIFIED).
  void ExpectReservation(const std::string& order_id, iv1::ReservationStatus status) {
    std::optional<iv1::Reservation> reservation = Reservation(order_id);
    if (status == iv1::RESERVATION_STATUS_UNSPECIFIED) {
      EXPECT_FALSE(reservation.has_value())
          << "unexpected reservation " << reservation->ShortDebugString();
      return;
    }
    ASSERT_TRUE(reservation.has_value()) << "no reservation for " << order_id;
    EXPECT_EQ(reservation->status(), status) << reservation->ShortDebugString();
  }

  void ExpectStock(const std::string& sku, int64_t on_hand, int64_t reserved) {
    iv1::Product product = Product(sku);
    EXPECT_EQ(product.on_hand(), on_hand) << sku;
    EXPECT_EQ(product.reserved(), reserved) << sku;
    EXPECT_EQ(product.available(), on_hand - reserved) << sku;
  }

  // The one payment of an order (a failure when there is not exactly one).
  pv1::Payment OnlyPayment(const std::string& order_id) {
    std::vector<pv1::Payment> payments = Payments(order_id);
    EXPECT_EQ(payments.size(), 1u) << "payments of order " << order_id;
    return payments.empty() ? pv1::Payment() : payments[0];
  }

  // The lease expiry of a workflow; it moves with every heartbeat of its owner.
  absl::Time LeaseExpiry(const std::string& id) {
    absl::StatusOr<WorkflowRecord> w = store_->Get(id, false);
    return w.ok() ? w->lease_expires_at : absl::InfinitePast();
  }

  // Waits until the engine heartbeats the workflow after this call; the heartbeat also hands a
  // cancel requested before this call to the running workflow.
  void AwaitHeartbeat(const std::string& id) {
    const absl::Time before = LeaseExpiry(id);
    ASSERT_TRUE(WaitFor([&] { return LeaseExpiry(id) != before; }, 5 * kHeartbeat))
        << "no heartbeat for " << id;
    absl::SleepFor(absl::Milliseconds(50));  // The heartbeat thread sets the flag after its write.
  }

  // Waits until a cancel of the workflow is recorded.
  void AwaitCancelRequested(const std::string& id) {
    ASSERT_TRUE(WaitFor([&] {
      absl::StatusOr<WorkflowRecord> w = store_->Get(id, false);
      return w.ok() && (w->cancel_requested || Settled(w->status));
    })) << "cancel of "
        << id << " was never recorded";
  }

  // ---- the guarantees, after every test ---------------------------------------------------------

  void CheckGuarantees() {
    // 3. Every started workflow reaches a terminal state.
    std::vector<WorkflowRecord> workflows;
    const bool settled = WaitFor(
        [&] {
          workflows.clear();
          db::WorkflowListQuery query;
          query.page_size = 1000;
          while (true) {
            absl::StatusOr<db::WorkflowPage> page = store_->List(query);
            if (!page.ok()) return false;
            workflows.insert(workflows.end(), page->workflows.begin(), page->workflows.end());
            if (!page->next) break;
            query.after = page->next;
          }
          for (const WorkflowRecord& w : workflows) {
            if (!saga::IsTerminal(w.status) && !left_unsettled_.count(w.id)) return false;
          }
          return true;
        },
        absl::Seconds(30));
    std::map<std::string, WorkflowRecord> by_id;
    for (const WorkflowRecord& w : workflows) {
      by_id[w.id] = w;
      if (!saga::IsTerminal(w.status) && !left_unsettled_.count(w.id)) {
        ADD_FAILURE() << "guarantee 3: workflow " << w.id << " left "
                      << saga::WorkflowStatusName(w.status) << ": " << w.status_reason;
      }
    }
    (void)settled;

    // No order without its saga, no saga without its order; effects agree with the outcome.
    std::set<std::string> order_ids;
    std::map<std::string, int64_t> committed;  // By SKU.
    std::map<std::string, int64_t> held;
    for (const ov1::Order& order : AllOrders()) {
      SCOPED_TRACE(absl::StrCat("order ", order.order_id(), " ",
                                ov1::OrderStatus_Name(order.status()), " (",
                                order.status_reason(), ")"));
      order_ids.insert(order.order_id());
      auto wf = by_id.find(order.workflow_id());
      if (wf == by_id.end()) {
        ADD_FAILURE() << "order without its PlaceOrder workflow " << order.workflow_id();
        continue;
      }
      std::vector<pv1::Payment> payments = Payments(order.order_id());
      EXPECT_LE(payments.size(), 1u) << "an order is charged at most once";
      std::optional<iv1::Reservation> reservation = Reservation(order.order_id());
      if (reservation.has_value()) {
        for (const iv1::ReservationItem& item : reservation->items()) {
          if (reservation->status() == iv1::RESERVATION_STATUS_COMMITTED) {
            committed[item.sku()] += item.quantity();
          } else if (reservation->status() == iv1::RESERVATION_STATUS_HELD) {
            held[item.sku()] += item.quantity();
          }
        }
      }
      if (left_unsettled_.count(order.workflow_id())) continue;
      const pv1::PaymentStatus payment =
          payments.empty() ? pv1::PAYMENT_STATUS_UNSPECIFIED : payments[0].status();
      const iv1::ReservationStatus stock =
          reservation ? reservation->status() : iv1::RESERVATION_STATUS_UNSPECIFIED;
      const bool refunded = by_id.count(absl::StrCat("refund-order-", order.order_id())) > 0;
      switch (order.status()) {
        case ov1::ORDER_STATUS_CONFIRMED:
          EXPECT_EQ(wf->second.status, WorkflowStatus::kCompleted);
          EXPECT_EQ(payment, pv1::PAYMENT_STATUS_CAPTURED);
          if (!payments.empty()) {
            EXPECT_EQ(payments[0].captured().amount_minor(), order.total().amount_minor());
          }
          EXPECT_EQ(stock, iv1::RESERVATION_STATUS_COMMITTED);
          break;
        case ov1::ORDER_STATUS_CANCELLED:
          if (refunded) {
            EXPECT_EQ(payment, pv1::PAYMENT_STATUS_REFUNDED);
            EXPECT_EQ(stock, iv1::RESERVATION_STATUS_RETURNED);
            break;
          }
          [[fallthrough]];
        case ov1::ORDER_STATUS_REJECTED:
          EXPECT_TRUE(payment == pv1::PAYMENT_STATUS_UNSPECIFIED ||
                      payment == pv1::PAYMENT_STATUS_DECLINED ||
                      payment == pv1::PAYMENT_STATUS_VOIDED)
              << "payment left " << pv1::PaymentStatus_Name(payment);
          EXPECT_TRUE(stock == iv1::RESERVATION_STATUS_UNSPECIFIED ||
                      stock == iv1::RESERVATION_STATUS_RELEASED)
              << "reservation left " << iv1::ReservationStatus_Name(stock);
          break;
        default:
          ADD_FAILURE() << "order left " << ov1::OrderStatus_Name(order.status())
                        << " with its workflow " << saga::WorkflowStatusName(wf->second.status);
      }
    }
    for (const WorkflowRecord& w : workflows) {
      EXPECT_TRUE(order_ids.count(w.business_key)) << "workflow " << w.id << " has no order";
    }

    // Stock is conserved.
    for (const auto& [sku, initial] : initial_on_hand_) {
      iv1::Product product = Product(sku);
      EXPECT_EQ(product.on_hand() + committed[sku], initial)
          << "stock of " << sku << ": on_hand " << product.on_hand() << " + committed "
          << committed[sku];
      EXPECT_EQ(product.reserved(), held[sku]) << "reserved " << sku << " vs HELD reservations";
      EXPECT_EQ(product.available(), product.on_hand() - product.reserved()) << sku;
    }
  }

  std::string dsn_;
  bool lose_answers_ = false;  // Set by a derived fixture's constructor.
  std::unique_ptr<testing::AnswerDroppingProxy> proxy_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<db::PgWorkflowStore> store_;
  std::unique_ptr<db::PgOrderRepository> order_repository_;
  std::unique_ptr<orders::OrderService> order_service_;
  std::unique_ptr<orders::OrderServiceHandler> order_handler_;
  std::unique_ptr<GatedGateway> gateway_;
  std::unique_ptr<db::PgPaymentRepository> payment_repository_;
  std::unique_ptr<payments::PaymentService> payment_service_;
  std::unique_ptr<payments::PaymentServiceHandler> payment_handler_;
  std::unique_ptr<db::PgInventoryRepository> inventory_repository_;
  std::unique_ptr<inventory::InventoryService> inventory_service_;
  std::unique_ptr<inventory::InventoryServiceHandler> inventory_handler_;
  std::unique_ptr<testing::GrpcTestServer> server_;
  std::unique_ptr<ov1::OrderService::Stub> orders_;
  std::unique_ptr<pv1::PaymentService::Stub> payments_;
  std::unique_ptr<iv1::InventoryService::Stub> inventory_;
  std::shared_ptr<grpc::Channel> participant_channel_;
  std::unique_ptr<pv1::PaymentService::Stub> participant_payments_;
  std::unique_ptr<iv1::InventoryService::Stub> participant_inventory_;
  saga::OrderParticipants participants_;
  std::unique_ptr<saga::EngineOrderWorkflows> workflows_;

  absl::Mutex engine_mu_;
  std::unique_ptr<saga::Engine> engine_ ABSL_GUARDED_BY(engine_mu_);

  std::map<std::string, int64_t> initial_on_hand_;
  // The deadline of the PlaceOrder workflows CreateOrder starts.
  absl::Duration place_order_deadline_ = absl::InfiniteDuration();
  std::set<std::string> left_unsettled_;  // Workflow ids a test leaves for an operator.
  std::atomic<int> requests_{0};  // PlaceOrder may run on several threads.
};

// ---- the happy path ---------------------------------------------------------------------------

TEST_F(OrderSagaTest, HappyPathConfirmsOrderCapturesTotalAndCommitsStock) {
  AddProduct("WIDGET", 10);
  AddProduct("GADGET", 5);
  const ov1::CreateOrderRequest request =
      OrderRequest("tok_approve", {{"WIDGET", 2}, {"GADGET", 1}});
  ov1::CreateOrderResponse created;
  grpc::Status status = Create(request, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const ov1::Order& order = created.order();
  EXPECT_EQ(order.total().amount_minor(), 3 * kUnitPrice);

  // The order and its workflow were written together: the workflow is there as soon as
  // CreateOrder returns.
  absl::StatusOr<WorkflowRecord> started = store_->Get(order.workflow_id(), false);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->type, saga::kPlaceOrderType);
  EXPECT_EQ(started->business_key, order.order_id());

  const ov1::Order confirmed = AwaitOrder(order);
  EXPECT_EQ(confirmed.status(), ov1::ORDER_STATUS_CONFIRMED);
  EXPECT_EQ(confirmed.status_reason(), "");

  const WorkflowRecord w = Workflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_TRUE(w.past_pivot);
  EXPECT_EQ(StepNames(w), (std::vector<std::string>{"reserve_stock", "authorize_payment",
                                                    "confirm_order", "capture_payment",
                                                    "commit_reservation"}));
  for (const StepRecord& step : w.steps) {
    EXPECT_EQ(step.status, StepStatus::kSucceeded) << step.name;
    EXPECT_EQ(step.attempts, 1) << step.name;
  }

  const pv1::Payment payment = OnlyPayment(order.order_id());
  EXPECT_EQ(payment.status(), pv1::PAYMENT_STATUS_CAPTURED);
  EXPECT_EQ(payment.amount().amount_minor(), order.total().amount_minor());
  EXPECT_EQ(payment.amount().currency_code(), "EUR");
  EXPECT_EQ(payment.captured().amount_minor(), order.total().amount_minor());
  EXPECT_EQ(payment.request_id(), order.workflow_id() + "/authorize_payment");
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_COMMITTED);
  ExpectStock("WIDGET", 8, 0);
  ExpectStock("GADGET", 4, 0);

  // A replay of CreateOrder returns the same order and starts nothing new.
  ov1::CreateOrderResponse replay;
  status = Create(request, &replay);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(replay.created());
  EXPECT_EQ(replay.order().order_id(), order.order_id());
  EXPECT_EQ(replay.order().status(), ov1::ORDER_STATUS_CONFIRMED);
  db::WorkflowListQuery query;
  query.type = saga::kPlaceOrderType;
  absl::StatusOr<db::WorkflowPage> page = store_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->workflows.size(), 1u);
  EXPECT_EQ(Payments(order.order_id()).size(), 1u);
  ExpectStock("WIDGET", 8, 0);
}

// ---- rejections ---------------------------------------------------------------------------------

TEST_F(OrderSagaTest, OutOfStockRejectsNamingTheSkuAndHoldsNothing) {
  AddProduct("PLENTY", 10);
  AddProduct("SCARCE", 1);
  const ov1::Order order = PlaceOrder("tok_approve", {{"PLENTY", 2}, {"SCARCE", 3}});
  const ov1::Order rejected = AwaitOrder(order);
  EXPECT_EQ(rejected.status(), ov1::ORDER_STATUS_REJECTED);
  EXPECT_TRUE(absl::StartsWith(rejected.status_reason(), "out of stock: "))
      << rejected.status_reason();
  EXPECT_TRUE(absl::StrContains(rejected.status_reason(), "SCARCE")) << rejected.status_reason();

  const WorkflowRecord w = Workflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kFailed);  // Nothing to compensate.
  ASSERT_EQ(StepNames(w), std::vector<std::string>{"reserve_stock"});
  EXPECT_EQ(w.steps[0].status, StepStatus::kFailed);
  EXPECT_EQ(w.steps[0].attempts, 1);  // A refusal is not retried.

  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_UNSPECIFIED);
  EXPECT_TRUE(Payments(order.order_id()).empty());
  ExpectStock("PLENTY", 10, 0);  // All or nothing: the available item was not held either.
  ExpectStock("SCARCE", 1, 0);
}

TEST_F(OrderSagaTest, UnknownSkuRejectsAsUnknownProductAndHoldsNothing) {
  AddProduct("KNOWN", 4);
  const ov1::Order order = PlaceOrder("tok_approve", {{"KNOWN", 1}, {"NO-SUCH-SKU", 1}});
  const ov1::Order rejected = AwaitOrder(order);
  EXPECT_EQ(rejected.status(), ov1::ORDER_STATUS_REJECTED);
  EXPECT_TRUE(absl::StartsWith(rejected.status_reason(), "unknown product: "))
      << rejected.status_reason();
  EXPECT_TRUE(absl::StrContains(rejected.status_reason(), "NO-SUCH-SKU"))
      << rejected.status_reason();
  EXPECT_EQ(Workflow(order.workflow_id()).status, WorkflowStatus::kFailed);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_UNSPECIFIED);
  EXPECT_TRUE(Payments(order.order_id()).empty());
  ExpectStock("KNOWN", 4, 0);
}

class DeclineTest : public OrderSagaTest,
                    public ::testing::WithParamInterface<std::pair<std::string, std::string>> {};

TEST_P(DeclineTest, DeclinedPaymentRejectsReleasesStockAndLeavesPaymentDeclined) {
  const auto& [token, why] = GetParam();
  AddProduct("SHOE", 6);
  const ov1::Order order = PlaceOrder(token, {{"SHOE", 2}});
  const ov1::Order rejected = AwaitOrder(order);
  EXPECT_EQ(rejected.status(), ov1::ORDER_STATUS_REJECTED);
  EXPECT_EQ(rejected.status_reason(), "payment declined: " + why);

  const WorkflowRecord w = Workflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated);
  EXPECT_FALSE(w.past_pivot);
  // Compensations in reverse order: the (no-op) void first, then the release.
  EXPECT_EQ(StepNames(w), (std::vector<std::string>{"reserve_stock", "authorize_payment",
                                                    "compensate:authorize_payment",
                                                    "compensate:reserve_stock"}));
  for (const StepRecord& step : w.steps) {
    EXPECT_EQ(step.status, StepStatus::kSucceeded) << step.name;
    EXPECT_EQ(step.attempts, 1) << step.name;
  }

  const pv1::Payment payment = OnlyPayment(order.order_id());
  EXPECT_EQ(payment.status(), pv1::PAYMENT_STATUS_DECLINED);
  EXPECT_EQ(payment.decline_reason(), why);
  // Voiding a declined payment does not reach the gateway.
  EXPECT_EQ(gateway_->CallCount(order.workflow_id() + "/compensate/authorize_payment"), 0);
  EXPECT_EQ(gateway_->CallCount(order.workflow_id() + "/authorize_payment"), 1);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_RELEASED);
  ExpectStock("SHOE", 6, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Tokens, DeclineTest,
    ::testing::Values(std::make_pair(std::string("tok_decline"), std::string("card declined")),
                      std::make_pair(std::string("tok_insufficient_funds"),
                                     std::string("insufficient funds"))),
    [](const auto& info) { return info.param.first == "tok_decline" ? "CardDeclined"
                                                                     : "InsufficientFunds"; });

// ---- retries and slow participants ----------------------------------------------------------

TEST_F(OrderSagaTest, TransientGatewayFailuresAreRetriedAndTheOrderConfirms) {
  AddProduct("LAMP", 3);
  const ov1::Order order = PlaceOrder("tok_transient_2", {{"LAMP", 1}});
  const ov1::Order confirmed = AwaitOrder(order);
  EXPECT_EQ(confirmed.status(), ov1::ORDER_STATUS_CONFIRMED) << confirmed.status_reason();

  const WorkflowRecord w = Workflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  const StepRecord* authorize = FindStep(w, "authorize_payment");
  ASSERT_NE(authorize, nullptr);
  EXPECT_EQ(authorize->attempts, 3);
  EXPECT_EQ(authorize->status, StepStatus::kSucceeded);
  // The capture's gateway call is transient twice too (per idempotency key).
  const StepRecord* capture = FindStep(w, "capture_payment");
  ASSERT_NE(capture, nullptr);
  EXPECT_EQ(capture->attempts, 3);
  EXPECT_EQ(FindStep(w, "reserve_stock")->attempts, 1);  // Replayed, not re-run, on each retry.
  EXPECT_EQ(gateway_->CallCount(order.workflow_id() + "/authorize_payment"), 3);

  const pv1::Payment payment = OnlyPayment(order.order_id());
  EXPECT_EQ(payment.status(), pv1::PAYMENT_STATUS_CAPTURED);
  EXPECT_EQ(payment.captured().amount_minor(), kUnitPrice);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_COMMITTED);
  ExpectStock("LAMP", 2, 0);
}

// A participant slower than the step timeout takes over 30 s to exhaust PlaceOrder's retries (5 s
// per attempt, 10 s for capture, 6 attempts); one cut short by the workflow's deadline is tested
// below. This covers a slow participant within the timeout.
TEST_F(OrderSagaTest, SlowGatewayWithinTheStepTimeoutConfirmsWithoutRetrying) {
  AddProduct("DESK", 2);
  const ov1::Order order = PlaceOrder("tok_slow_200", {{"DESK", 1}});
  const ov1::Order confirmed = AwaitOrder(order);
  EXPECT_EQ(confirmed.status(), ov1::ORDER_STATUS_CONFIRMED) << confirmed.status_reason();
  const WorkflowRecord w = Workflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  for (const StepRecord& step : w.steps) EXPECT_EQ(step.attempts, 1) << step.name;
  EXPECT_EQ(OnlyPayment(order.order_id()).status(), pv1::PAYMENT_STATUS_CAPTURED);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_COMMITTED);
  ExpectStock("DESK", 1, 0);
}

// The workflow's deadline cuts off a participant call that would outlast it (the simulator honours
// the propagated gRPC deadline; without the cut, this 3 s authorization would succeed within its
// 5 s step timeout) and ends the retry wait that follows at the deadline: the order is rejected,
// its stock released and its payment voided (the void is as slow as every call with this token).
TEST_F(OrderSagaTest, AnOrderNotConfirmedByItsDeadlineIsRejectedAndItsHoldsUndone) {
  place_order_deadline_ = absl::Seconds(2);
  AddProduct("LAMP", 2);
  const ov1::Order order = PlaceOrder("tok_slow_3000", {{"LAMP", 1}});
  const WorkflowRecord w = AwaitWorkflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated) << w.status_reason;
  EXPECT_EQ(w.status_reason, "workflow deadline exceeded");
  EXPECT_FALSE(w.past_pivot);
  EXPECT_EQ(w.deadline_at, w.created_at + absl::Seconds(2));
  const StepRecord* authorize = FindStep(w, "authorize_payment");
  ASSERT_NE(authorize, nullptr);
  EXPECT_EQ(authorize->attempts, 1);
  EXPECT_EQ(authorize->error_code, absl::StatusCode::kDeadlineExceeded) << authorize->error_message;
  EXPECT_EQ(FindStep(w, "confirm_order"), nullptr);

  const ov1::Order rejected = GetOrder(order.order_id());
  EXPECT_EQ(rejected.status(), ov1::ORDER_STATUS_REJECTED);
  EXPECT_EQ(rejected.status_reason(), "workflow deadline exceeded");
  EXPECT_EQ(OnlyPayment(order.order_id()).status(), pv1::PAYMENT_STATUS_VOIDED);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_RELEASED);
  ExpectStock("LAMP", 2, 0);
}

// An order confirmed within its deadline is not affected by it. A CreateOrder that asks for its
// own deadline (confirm_within) gets it instead of the server's.
TEST_F(OrderSagaTest, AnOrderConfirmedWithinTheDeadlineItAskedForIsUnaffectedByIt) {
  place_order_deadline_ = absl::Hours(1);
  AddProduct("RUG", 1);
  ov1::CreateOrderRequest request = OrderRequest("tok_slow_200", {{"RUG", 1}});
  request.mutable_confirm_within()->set_seconds(30);
  ov1::CreateOrderResponse response;
  const grpc::Status status = Create(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(AwaitOrder(response.order()).status(), ov1::ORDER_STATUS_CONFIRMED);
  const WorkflowRecord w = Workflow(response.order().workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w.deadline_at, w.created_at + absl::Seconds(30));
}

// ---- cancellation -------------------------------------------------------------------------------

TEST_F(OrderSagaTest, CancelBeforeTheWorkflowRanCancelsWithNothingReservedOrCharged) {
  AddProduct("CHAIR", 5);
  StopEngine();
  const ov1::Order order = PlaceOrder("tok_approve", {{"CHAIR", 2}});
  ov1::Order cancelled;
  grpc::Status status;
  std::thread cancel([&] {
    status = Cancel(order.order_id(), "cancel-early", "changed my mind", &cancelled);
  });
  AwaitCancelRequested(order.workflow_id());
  StartEngine();
  cancel.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cancelled.status(), ov1::ORDER_STATUS_CANCELLED);
  EXPECT_TRUE(absl::StrContains(cancelled.status_reason(), "changed my mind"))
      << cancelled.status_reason();

  const WorkflowRecord w = AwaitWorkflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCancelled);
  EXPECT_TRUE(w.steps.empty()) << "no step may run after the cancel: "
                               << absl::StrJoin(StepNames(w), ",");
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_UNSPECIFIED);
  EXPECT_TRUE(Payments(order.order_id()).empty());
  ExpectStock("CHAIR", 5, 0);

  // Replaying the cancel returns the order unchanged; a new cancel is refused.
  ov1::Order replay;
  status = Cancel(order.order_id(), "cancel-early", "changed my mind", &replay);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(replay.status(), ov1::ORDER_STATUS_CANCELLED);
  EXPECT_EQ(replay.version(), GetOrder(order.order_id()).version());
  ov1::Order again;
  EXPECT_EQ(Cancel(order.order_id(), "cancel-again", "", &again).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// The cancel lands while authorize_payment waits out a retry backoff. Its compensation
// void_payment then meets the same token's transient failures (5 per idempotency key) and is
// retried until the payment is voided: a compensation that fails N times, then succeeds.
TEST_F(OrderSagaTest, CancelWhileAuthorizeWaitsToRetryReleasesStockAndVoidsPayment) {
  AddProduct("SOFA", 3);
  const ov1::Order order = PlaceOrder("tok_transient_5", {{"SOFA", 1}});
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<WorkflowRecord> w = store_->Get(order.workflow_id(), true);
    if (!w.ok()) return false;
    const StepRecord* authorize = FindStep(*w, "authorize_payment");
    return authorize != nullptr && authorize->status == StepStatus::kRetryScheduled &&
           authorize->attempts >= 2;
  })) << "authorize_payment never waited for a retry";
  ExpectStock("SOFA", 3, 1);  // Held while the payment is retried.

  ov1::Order response;
  grpc::Status status = Cancel(order.order_id(), "cancel-retrying", "too slow", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The void needs ~6 s of backoff, longer than CancelOrder waits: the caller may still see
  // PENDING, never anything else.
  EXPECT_TRUE(response.status() == ov1::ORDER_STATUS_PENDING ||
              response.status() == ov1::ORDER_STATUS_CANCELLED)
      << ov1::OrderStatus_Name(response.status());

  const WorkflowRecord w = AwaitWorkflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCancelled) << w.status_reason;
  const ov1::Order cancelled = GetOrder(order.order_id());
  EXPECT_EQ(cancelled.status(), ov1::ORDER_STATUS_CANCELLED);
  EXPECT_TRUE(absl::StrContains(cancelled.status_reason(), "too slow"))
      << cancelled.status_reason();
  EXPECT_EQ(FindStep(w, "confirm_order"), nullptr);
  const StepRecord* authorize = FindStep(w, "authorize_payment");
  ASSERT_NE(authorize, nullptr);
  EXPECT_LT(authorize->attempts, 6);  // Never got to the attempt that would have succeeded.
  const StepRecord* void_step = FindStep(w, "compensate:authorize_payment");
  ASSERT_NE(void_step, nullptr);
  EXPECT_EQ(void_step->status, StepStatus::kSucceeded);
  EXPECT_EQ(void_step->attempts, 6);
  EXPECT_EQ(gateway_->CallCount(order.workflow_id() + "/compensate/authorize_payment"), 6);
  const StepRecord* release = FindStep(w, "compensate:reserve_stock");
  ASSERT_NE(release, nullptr);
  EXPECT_EQ(release->status, StepStatus::kSucceeded);
  EXPECT_GT(release->seq, void_step->seq);  // Reverse order.

  EXPECT_EQ(OnlyPayment(order.order_id()).status(), pv1::PAYMENT_STATUS_VOIDED);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_RELEASED);
  ExpectStock("SOFA", 3, 0);
}

TEST_F(OrderSagaTest, CancelAfterConfirmRefundsPaymentReturnsStockAndCancels) {
  AddProduct("BIKE", 4);
  const ov1::Order order = PlaceOrder("tok_approve", {{"BIKE", 3}});
  ASSERT_EQ(AwaitOrder(order).status(), ov1::ORDER_STATUS_CONFIRMED);
  ExpectStock("BIKE", 1, 0);

  ov1::Order cancelled;
  grpc::Status status = Cancel(order.order_id(), "cancel-confirmed", "returned by customer",
                               &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cancelled.status(), ov1::ORDER_STATUS_CANCELLED);
  EXPECT_EQ(cancelled.status_reason(), "returned by customer");

  const WorkflowRecord refund = AwaitWorkflow("refund-order-" + order.order_id());
  EXPECT_EQ(refund.type, saga::kRefundOrderType);
  EXPECT_EQ(refund.status, WorkflowStatus::kCompleted) << refund.status_reason;
  EXPECT_EQ(StepNames(refund), (std::vector<std::string>{"find_payment", "refund_payment",
                                                         "return_stock", "cancel_order"}));
  EXPECT_EQ(Workflow(order.workflow_id()).status, WorkflowStatus::kCompleted);

  const pv1::Payment payment = OnlyPayment(order.order_id());
  EXPECT_EQ(payment.status(), pv1::PAYMENT_STATUS_REFUNDED);
  EXPECT_EQ(payment.refunded().amount_minor(), order.total().amount_minor());
  EXPECT_EQ(gateway_->CallCount(refund.id + "/refund_payment"), 1);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_RETURNED);
  ExpectStock("BIKE", 4, 0);

  // A replay changes nothing and starts nothing.
  ov1::Order replay;
  status = Cancel(order.order_id(), "cancel-confirmed", "returned by customer", &replay);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(replay.status(), ov1::ORDER_STATUS_CANCELLED);
  EXPECT_EQ(Payments(order.order_id()).size(), 1u);
  ExpectStock("BIKE", 4, 0);
}

// ---- compensations against an authorized payment ------------------------------------------------

// Holds the authorization of `order`, cancels the order while it is held, lets the running
// workflow learn of the cancel (a heartbeat), then releases it: the workflow stops at the
// boundary before confirm_order and compensates an AUTHORIZED payment.
class CompensationTest : public OrderSagaTest {
 protected:
  // Returns the CancelOrder thread; the caller joins it.
  std::thread CancelBetweenAuthorizeAndConfirm(const ov1::Order& order, ov1::Order* response,
                                               grpc::Status* status) {
    EXPECT_TRUE(gateway_->WaitUntilHeld(absl::Seconds(10))) << "authorization never reached";
    std::thread cancel([this, order, response, status] {
      *status = Cancel(order.order_id(), "cancel-held", "customer asked", response);
    });
    AwaitCancelRequested(order.workflow_id());
    AwaitHeartbeat(order.workflow_id());
    gateway_->Release();
    return cancel;
  }
};

TEST_F(CompensationTest, VoidFailingTwiceIsRetriedUntilThePaymentIsVoided) {
  AddProduct("TENT", 2);
  gateway_->HoldNextAuthorization("tok_void_fails_2");
  const ov1::Order order = PlaceOrder("tok_void_fails_2", {{"TENT", 2}});
  ov1::Order response;
  grpc::Status status;
  std::thread cancel = CancelBetweenAuthorizeAndConfirm(order, &response, &status);
  cancel.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), ov1::ORDER_STATUS_CANCELLED) << response.status_reason();

  const WorkflowRecord w = AwaitWorkflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCancelled) << w.status_reason;
  EXPECT_EQ(StepNames(w), (std::vector<std::string>{"reserve_stock", "authorize_payment",
                                                    "compensate:authorize_payment",
                                                    "compensate:reserve_stock"}));
  const StepRecord* void_step = FindStep(w, "compensate:authorize_payment");
  ASSERT_NE(void_step, nullptr);
  EXPECT_EQ(void_step->status, StepStatus::kSucceeded);
  EXPECT_EQ(void_step->attempts, 3);
  EXPECT_EQ(gateway_->CallCount(order.workflow_id() + "/compensate/authorize_payment"), 3);
  EXPECT_EQ(FindStep(w, "compensate:reserve_stock")->attempts, 1);

  const ov1::Order cancelled = GetOrder(order.order_id());
  EXPECT_EQ(cancelled.status(), ov1::ORDER_STATUS_CANCELLED);
  EXPECT_EQ(cancelled.status_reason(), "customer asked")
      << cancelled.status_reason();
  EXPECT_EQ(OnlyPayment(order.order_id()).status(), pv1::PAYMENT_STATUS_VOIDED);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_RELEASED);
  ExpectStock("TENT", 2, 0);
}

// The same route with an ordinary token: the customer's reason must reach the order and the
// workflow whether the cancel finds the workflow parked (it is re-claimed with the reason, see
// CancelWhileAuthorizeWaitsToRetry...) or running (it learns of the cancel from a heartbeat).
TEST_F(CompensationTest, CancelArrivingWhileAStepRunsKeepsTheCustomersReason) {
  AddProduct("VASE", 2);
  gateway_->HoldNextAuthorization("tok_approve");
  const ov1::Order order = PlaceOrder("tok_approve", {{"VASE", 1}});
  ov1::Order response;
  grpc::Status status;
  std::thread cancel = CancelBetweenAuthorizeAndConfirm(order, &response, &status);
  cancel.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), ov1::ORDER_STATUS_CANCELLED);

  const WorkflowRecord w = AwaitWorkflow(order.workflow_id());
  EXPECT_EQ(w.status, WorkflowStatus::kCancelled);
  EXPECT_EQ(w.status_reason, "customer asked");
  EXPECT_EQ(GetOrder(order.order_id()).status_reason(), "customer asked");
  EXPECT_EQ(OnlyPayment(order.order_id()).status(), pv1::PAYMENT_STATUS_VOIDED);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_RELEASED);
  ExpectStock("VASE", 2, 0);
}

// Every void fails: after compensation_max_attempts (8, ~25 s of backoff) the workflow is
// parked for an operator. Compensations run strictly in reverse order, so the stock stays held
// (and the order PENDING) until the void is resolved.
TEST_F(CompensationTest, VoidThatAlwaysFailsParksTheWorkflowForAnOperator) {
  AddProduct("KAYAK", 2);
  gateway_->HoldNextAuthorization("tok_void_fails");
  const ov1::Order order = PlaceOrder("tok_void_fails", {{"KAYAK", 1}});
  left_unsettled_.insert(order.workflow_id());
  ov1::Order response;
  grpc::Status status;
  std::thread cancel = CancelBetweenAuthorizeAndConfirm(order, &response, &status);
  cancel.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), ov1::ORDER_STATUS_PENDING);  // CancelOrder stopped waiting.

  const WorkflowRecord w = AwaitWorkflow(order.workflow_id(), absl::Seconds(60));
  EXPECT_EQ(w.status, WorkflowStatus::kNeedsAttention);
  EXPECT_TRUE(absl::StrContains(w.status_reason,
                                "compensation void_payment of step authorize_payment failed 8 "
                                "times"))
      << w.status_reason;
  const StepRecord* void_step = FindStep(w, "compensate:authorize_payment");
  ASSERT_NE(void_step, nullptr);
  EXPECT_EQ(void_step->status, StepStatus::kFailed);
  EXPECT_EQ(void_step->attempts, 8);
  EXPECT_EQ(FindStep(w, "compensate:reserve_stock"), nullptr);
  EXPECT_EQ(gateway_->CallCount(order.workflow_id() + "/compensate/authorize_payment"), 8);

  EXPECT_EQ(GetOrder(order.order_id()).status(), ov1::ORDER_STATUS_PENDING);
  EXPECT_EQ(OnlyPayment(order.order_id()).status(), pv1::PAYMENT_STATUS_AUTHORIZED);
  ExpectReservation(order.order_id(), iv1::RESERVATION_STATUS_HELD);
  ExpectStock("KAYAK", 2, 1);
}

// A cancel accepted (CancelOrder OK) while authorize_payment is in flight, just after a
// heartbeat: the running workflow learns of it only at the next heartbeat, so without a check at
// the pivot it confirms the order anyway. Whichever way it goes, the user's cancel must win:
// the order ends CANCELLED with nothing charged or kept.
TEST_F(OrderSagaTest, CancelAcceptedWhileAuthorizeIsInFlightIsNotLostAtThePivot) {
  AddProduct("PIANO", 1);
  gateway_->HoldNextAuthorization("tok_approve");
  const ov1::Order order = PlaceOrder("tok_approve", {{"PIANO", 1}});
  ASSERT_TRUE(gateway_->WaitUntilHeld(absl::Seconds(10)));
  AwaitHeartbeat(order.workflow_id());  // The next one is kHeartbeat away.
  ov1::Order response;
  grpc::Status status;
  std::thread cancel([&] {
    status = Cancel(order.order_id(), "cancel-at-pivot", "customer asked", &response);
  });
  AwaitCancelRequested(order.workflow_id());
  gateway_->Release();
  cancel.join();
  ASSERT_TRUE(status.ok()) << status.error_message();

  const WorkflowRecord place = AwaitWorkflow(order.workflow_id());
  // A refund, if one was started, gets time to finish.
  WaitFor([&] { return GetOrder(order.order_id()).status() == ov1::ORDER_STATUS_CANCELLED; },
          absl::Seconds(10));
  const ov1::Order final_order = GetOrder(order.order_id());
  absl::StatusOr<WorkflowRecord> refund = store_->Get("refund-order-" + order.order_id(), false);
  const pv1::PaymentStatus payment = OnlyPayment(order.order_id()).status();
  EXPECT_EQ(final_order.status(), ov1::ORDER_STATUS_CANCELLED)
      << "the accepted cancel was lost: CancelOrder returned OK with the order "
      << ov1::OrderStatus_Name(response.status()) << "; PlaceOrder ended "
      << saga::WorkflowStatusName(place.status) << " (cancel_requested "
      << place.cancel_requested << ", past_pivot " << place.past_pivot << "); payment "
      << pv1::PaymentStatus_Name(payment) << "; refund workflow "
      << (refund.ok() ? saga::WorkflowStatusName(refund->status) : "never started");
  EXPECT_TRUE(payment == pv1::PAYMENT_STATUS_VOIDED || payment == pv1::PAYMENT_STATUS_REFUNDED)
      << pv1::PaymentStatus_Name(payment);
  ExpectStock("PIANO", 1, 0);
}

// ---- lost answers -------------------------------------------------------------------------------

// Every service and the coordinator reach PostgreSQL through a proxy that loses the answer of a
// random 4% of statement executions and simple queries (BEGIN, COMMIT, ...) by closing the
// connection after the server ran them: committed writes the caller is not told about, at any
// point of every saga. Clients retry CreateOrder and CancelOrder with the same request id, as
// they should; every sixth order is cancelled at once, and four confirmed ones afterwards (their
// refunds). The guarantees checked after every test must still hold: every order settles once,
// is charged at most once (refunded in full when cancelled after confirmation), and stock and
// money are conserved.
class LostAnswersSagaTest : public OrderSagaTest {
 protected:
  LostAnswersSagaTest() { lose_answers_ = true; }
};

TEST_F(LostAnswersSagaTest, SagasKeepEveryGuaranteeWhenAnswersAreLostAtRandom) {
  AddProduct("BOLT", 1000);
  AddProduct("NUT", 1000);
  const std::vector<std::string> tokens = {"tok_approve", "tok_approve", "tok_approve",
                                           "tok_decline", "tok_transient_1"};
  // Fixed, so CI runs the same losses every time; LOST_ANSWERS_SEED and LOST_ANSWERS_PERCENT
  // explore others.
  const char* seed = std::getenv("LOST_ANSWERS_SEED");
  const char* percent = std::getenv("LOST_ANSWERS_PERCENT");
  proxy_->DropAnswersAtRandom(percent != nullptr ? std::atof(percent) / 100 : 0.04,
                              seed != nullptr ? std::strtoull(seed, nullptr, 10) : 20261121);
  std::vector<ov1::Order> orders;
  for (int i = 0; i < 30; ++i) {
    const ov1::CreateOrderRequest request =
        OrderRequest(tokens[i % tokens.size()], {{"BOLT", 1 + i % 3}, {"NUT", 1}});
    ov1::CreateOrderResponse response;
    grpc::Status status;
    for (int attempt = 0; attempt < 20; ++attempt) {
      status = Create(request, &response);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
    orders.push_back(response.order());
  }
  // Cancels by request id, retried while the answer is lost; FAILED_PRECONDITION when the
  // order had already ended.
  auto cancel = [&](const ov1::Order& order, const std::string& request_id) {
    ov1::Order out;
    grpc::Status status;
    for (int attempt = 0; attempt < 20; ++attempt) {
      status = Cancel(order.order_id(), request_id, "customer asked", &out);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    }
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::FAILED_PRECONDITION)
        << status.error_message();
  };
  for (size_t i = 0; i < orders.size(); i += 6) cancel(orders[i], "cancel-" + orders[i].order_id());
  for (const ov1::Order& order : orders) {
    const WorkflowRecord w = AwaitWorkflow(order.workflow_id(), absl::Seconds(90));
    EXPECT_TRUE(saga::IsTerminal(w.status))
        << order.workflow_id() << " " << saga::WorkflowStatusName(w.status) << ": "
        << w.status_reason;
  }
  // Refunds: a cancel of a confirmed order starts RefundOrder.
  int refunds = 0;
  for (const ov1::Order& order : orders) {
    if (refunds == 4 || GetOrder(order.order_id()).status() != ov1::ORDER_STATUS_CONFIRMED) {
      continue;
    }
    cancel(order, "refund-" + order.order_id());
    AwaitWorkflow("refund-order-" + order.order_id(), absl::Seconds(90));
    ++refunds;
  }
  EXPECT_EQ(refunds, 4);
  proxy_->StopDropping();
  std::cerr << "[lost answers] " << proxy_->dropped() << " answers lost\n";
  EXPECT_GT(proxy_->dropped(), 10) << "too few answers lost to test anything";
  int confirmed = 0;
  for (const ov1::Order& order : orders) {
    if (GetOrder(order.order_id()).status() == ov1::ORDER_STATUS_CONFIRMED) ++confirmed;
  }
  EXPECT_GT(confirmed, 10);  // Most approved orders confirm; the rest are checked as rejected.
  // TearDown checks the guarantees for every order.
}

// ---- query plans --------------------------------------------------------------------------------

// The tables that grow with every order. The statements the sagas run must find their rows
// through indexes however large these get; a statement that scans one of them sequentially costs
// more with every order placed (it happened: an OR across two unique columns made every Reserve
// read the whole reservations table while it was young, and prepared statements kept the plan;
// and the checkpoint statement of several workflows hash-joined a scan of every workflow).
constexpr const char* kGrowingTables[] = {"orders.orders",          "orders.order_items",
                                          "inventory.reservations", "inventory.reservation_items",
                                          "payments.payments",      "payments.operations",
                                          "saga.workflows",         "saga.steps"};

TEST_F(OrderSagaTest, SagasReadGrowingTablesOnlyThroughIndexes) {
  constexpr int kSkus = 20;
  constexpr int kThreads = 8;
  constexpr int kOrdersPerThread = 30;
  for (int i = 0; i < kSkus; ++i) AddProduct(absl::StrCat("IDX-", i), 1000000);
  std::vector<std::thread> threads;
  std::atomic<int> confirmed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<ov1::Order> placed;
      for (int n = 0; n < kOrdersPerThread; ++n) {
        placed.push_back(
            PlaceOrder("tok_approve", {{absl::StrCat("IDX-", (t + n) % kSkus), 1},
                                       {absl::StrCat("IDX-", (t + n + 7) % kSkus), 2}}));
      }
      for (const ov1::Order& order : placed) {
        if (AwaitOrder(order).status() == ov1::ORDER_STATUS_CONFIRMED) ++confirmed;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(confirmed.load(), kThreads * kOrdersPerThread);

  // A few sequential scans while a table was nearly empty are the planner's right choice; one per
  // saga reads the growing table again and again: about sagas / 2 = 120 times its final size
  // here (the old Reserve read 28,000 rows of a 240-row table). Allowed: 3 times its size.
  StopEngine();
  const std::map<std::string, int64_t> read = testing::SeqTuplesRead(dsn_);
  pqxx::connection conn(dsn_);
  pqxx::nontransaction tx(conn);
  for (const char* table : kGrowingTables) {
    ASSERT_TRUE(read.count(table)) << table;
    const int64_t rows = tx.exec(absl::StrCat("SELECT count(*) FROM ", table))[0][0].as<int64_t>();
    EXPECT_LE(read.at(table), 3 * rows)
        << read.at(table) << " rows of " << table << " (" << rows
        << " rows now) read by sequential scans during " << kThreads * kOrdersPerThread
        << " sagas";
  }
}

}  // namespace
}  // namespace order_platform
