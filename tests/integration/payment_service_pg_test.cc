// PaymentService end to end in-process: the real handler, domain service, simulated gateway and
// PostgreSQL repository, called through the generated stub over a real gRPC channel.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_payment_repository.h"
#include "db/pg_simulator_counters.h"
#include "db/transaction.h"
#include "gtest/gtest.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "services/payments/payment_handler.h"
#include "services/payments/payment_service.h"
#include "services/payments/simulated_gateway.h"
#include "tests/support/answer_dropping_proxy.h"
#include "tests/support/counting_gateway.h"
#include "tests/support/grpc_test_server.h"
#include "tests/support/test_postgres.h"

namespace order_platform::payments {
namespace {

using ::order_platform::testing::ContextWithDeadline;

constexpr char kUnknownPaymentId[] = "0190a6c4-0000-7000-8000-000000000000";

// A client context whose deadline is `ms` milliseconds from now.
std::unique_ptr<grpc::ClientContext> ContextWithMillis(int ms) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
  return context;
}

// The statements a pool ran and its connection checkouts, since the last Take().
class StatementLog final : public db::DbObserver {
 public:
  struct Work {
    int checkouts = 0;
    std::vector<std::string> statements;
  };
  void OnCheckout(absl::Duration, bool) override {
    absl::MutexLock lock(&mu_);
    ++work_.checkouts;
  }
  void OnStatement(absl::string_view name, absl::Duration, bool) override {
    absl::MutexLock lock(&mu_);
    work_.statements.emplace_back(name);
  }
  Work Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(work_, Work{});
  }

 private:
  absl::Mutex mu_;
  Work work_ ABSL_GUARDED_BY(mu_);
};

// Forwards to the simulator; records the database work done before each call reached it.
class WorkBeforeGateway final : public PaymentGateway {
 public:
  explicit WorkBeforeGateway(StatementLog* log) : log_(*log) {}
  absl::StatusOr<AuthorizationResult> Authorize(const GatewayRequest& request) override {
    Record();
    return simulator_.Authorize(request);
  }
  absl::Status Capture(const GatewayRequest& request) override {
    Record();
    return simulator_.Capture(request);
  }
  absl::Status Void(const GatewayRequest& request) override {
    Record();
    return simulator_.Void(request);
  }
  absl::Status Refund(const GatewayRequest& request) override {
    Record();
    return simulator_.Refund(request);
  }
  // The work before the last gateway call; empty when none was made since the last Take().
  std::optional<StatementLog::Work> Take() { return std::exchange(last_, std::nullopt); }

 private:
  void Record() { last_ = log_.Take(); }

  StatementLog& log_;
  SimulatedGateway simulator_;
  std::optional<StatementLog::Work> last_;
};

class PaymentServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dsn_ = new std::string(testing::CreateTestDatabase("payment_service"));
    absl::StatusOr<int64_t> migrated =
        db::Migrator(*dsn_, *db::EmbeddedMigrations("payments")).Up();
    ASSERT_TRUE(migrated.ok()) << migrated.status();
  }

  void SetUp() override {
    pool_ = std::make_unique<db::ConnectionPool>(
        db::PoolOptions{.dsn = *dsn_, .size = 8, .checkout_timeout = absl::Seconds(2)});
    repository_ = std::make_unique<db::PgPaymentRepository>(pool_.get());
    // Counting in the database, as the server does.
    simulator_ =
        std::make_unique<SimulatedGateway>(std::make_unique<db::PgSimulatorCounters>(pool_.get()));
    gateway_ = std::make_unique<testing::CountingGateway>(simulator_.get());
    service_ = std::make_unique<PaymentService>(repository_.get(), gateway_.get());
    handler_ = std::make_unique<PaymentServiceHandler>(service_.get());
    server_ = std::make_unique<testing::GrpcTestServer>(std::vector<grpc::Service*>{handler_.get()});
    stub_ = v1::PaymentService::NewStub(server_->Channel());
  }

  static v1::AuthorizePaymentRequest AuthorizeRequestFor(const std::string& request_id,
                                                         const std::string& order_id,
                                                         const std::string& token = "tok_approve",
                                                         int64_t amount_minor = 1000) {
    v1::AuthorizePaymentRequest request;
    request.set_request_id(request_id);
    request.set_order_id(order_id);
    request.mutable_amount()->set_currency_code("EUR");
    request.mutable_amount()->set_amount_minor(amount_minor);
    request.set_payment_token(token);
    return request;
  }

  grpc::Status Authorize(const v1::AuthorizePaymentRequest& request, v1::Payment* response) {
    return stub_->AuthorizePayment(ContextWithDeadline().get(), request, response);
  }

  // Authorizes `amount_minor` EUR with `token` and returns the payment; fails the test unless OK.
  v1::Payment MustAuthorize(const std::string& request_id, const std::string& order_id,
                            const std::string& token = "tok_approve",
                            int64_t amount_minor = 1000) {
    v1::Payment payment;
    grpc::Status status =
        Authorize(AuthorizeRequestFor(request_id, order_id, token, amount_minor), &payment);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return payment;
  }

  // Capture of `amount_minor` EUR (0: the amount is left unset, i.e. everything authorized).
  grpc::Status Capture(const std::string& request_id, const std::string& payment_id,
                       int64_t amount_minor, v1::Payment* response) {
    v1::CapturePaymentRequest request;
    request.set_request_id(request_id);
    request.set_payment_id(payment_id);
    if (amount_minor != 0) {
      request.mutable_amount()->set_currency_code("EUR");
      request.mutable_amount()->set_amount_minor(amount_minor);
    }
    return stub_->CapturePayment(ContextWithDeadline().get(), request, response);
  }

  grpc::Status Void(const std::string& request_id, const std::string& payment_id,
                    v1::Payment* response) {
    v1::VoidPaymentRequest request;
    request.set_request_id(request_id);
    request.set_payment_id(payment_id);
    return stub_->VoidPayment(ContextWithDeadline().get(), request, response);
  }

  // Refund of `amount_minor` EUR (0: the amount is left unset, i.e. everything left).
  grpc::Status Refund(const std::string& request_id, const std::string& payment_id,
                      int64_t amount_minor, v1::Payment* response,
                      const std::string& reason = "") {
    v1::RefundPaymentRequest request;
    request.set_request_id(request_id);
    request.set_payment_id(payment_id);
    if (amount_minor != 0) {
      request.mutable_amount()->set_currency_code("EUR");
      request.mutable_amount()->set_amount_minor(amount_minor);
    }
    request.set_reason(reason);
    return stub_->RefundPayment(ContextWithDeadline().get(), request, response);
  }

  // An authorized payment of 1000 EUR minor units, captured for `amount_minor` (0: all of it).
  v1::Payment MustCapture(const std::string& name, int64_t amount_minor = 0,
                          const std::string& token = "tok_approve") {
    const v1::Payment authorized = MustAuthorize("auth-" + name, "order-" + name, token);
    v1::Payment captured;
    grpc::Status status = Capture("cap-" + name, authorized.payment_id(), amount_minor, &captured);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(captured.status(), v1::PAYMENT_STATUS_CAPTURED);
    return captured;
  }

  // The payment as stored now, read through GetPayment.
  v1::Payment Fetch(const std::string& payment_id) {
    v1::GetPaymentRequest request;
    request.set_payment_id(payment_id);
    v1::Payment payment;
    grpc::Status status = stub_->GetPayment(ContextWithDeadline().get(), request, &payment);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return payment;
  }

  // Every payment of `order_id`, newest first, read through ListPayments.
  std::vector<v1::Payment> ListByOrder(const std::string& order_id) {
    v1::ListPaymentsRequest request;
    request.set_order_id(order_id);
    request.set_page_size(1000);
    v1::ListPaymentsResponse response;
    grpc::Status status = stub_->ListPayments(ContextWithDeadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.payments().begin(), response.payments().end()};
  }

  // Expects `status` to be INVALID_ARGUMENT naming `field`.
  static void ExpectInvalidField(const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(field + ":", 0), 0u)
        << "message should start with the field: " << status.error_message();
  }

  // Expects `payment` to be stored exactly as `before` (same status, amounts and version).
  void ExpectUnchanged(const v1::Payment& before) {
    const v1::Payment now = Fetch(before.payment_id());
    EXPECT_EQ(now.SerializeAsString(), before.SerializeAsString())
        << "was " << before.ShortDebugString() << "\nnow " << now.ShortDebugString();
  }

  static std::string* dsn_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<db::PgPaymentRepository> repository_;
  std::unique_ptr<SimulatedGateway> simulator_;
  std::unique_ptr<testing::CountingGateway> gateway_;
  std::unique_ptr<PaymentService> service_;
  std::unique_ptr<PaymentServiceHandler> handler_;
  std::unique_ptr<testing::GrpcTestServer> server_;
  std::unique_ptr<v1::PaymentService::Stub> stub_;
};

std::string* PaymentServiceTest::dsn_ = nullptr;

// ---- authorize ---------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, AuthorizeApprovedTokenStoresAuthorizedPaymentWithGatewayReference) {
  v1::Payment payment;
  grpc::Status status =
      Authorize(AuthorizeRequestFor("approve-1", "order-approve", "tok_approve", 2599), &payment);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(payment.status(), v1::PAYMENT_STATUS_AUTHORIZED);
  EXPECT_EQ(payment.order_id(), "order-approve");
  EXPECT_EQ(payment.request_id(), "approve-1");
  EXPECT_EQ(payment.amount().currency_code(), "EUR");
  EXPECT_EQ(payment.amount().amount_minor(), 2599);
  EXPECT_EQ(payment.captured().currency_code(), "EUR");
  EXPECT_EQ(payment.captured().amount_minor(), 0);
  EXPECT_EQ(payment.refunded().amount_minor(), 0);
  EXPECT_EQ(payment.gateway_reference(), SimulatedGateway::ReferenceFor("approve-1"));
  EXPECT_TRUE(payment.decline_reason().empty());
  EXPECT_EQ(payment.version(), 2);  // Recorded PENDING, then AUTHORIZED.
  EXPECT_GT(payment.create_time().seconds(), 0);
  EXPECT_GT(payment.update_time().seconds(), 0);
  EXPECT_EQ(Fetch(payment.payment_id()).SerializeAsString(), payment.SerializeAsString());
}

TEST_F(PaymentServiceTest, AuthorizeDeclinedCardsAreDeclinedPaymentsNotErrors) {
  const struct {
    std::string token;
    std::string reason;
  } cases[] = {{"tok_decline", "card declined"}, {"tok_insufficient_funds", "insufficient funds"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.token);
    v1::Payment payment;
    grpc::Status status =
        Authorize(AuthorizeRequestFor("declined-" + c.token, "order-declined", c.token), &payment);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(payment.status(), v1::PAYMENT_STATUS_DECLINED);
    EXPECT_EQ(payment.decline_reason(), c.reason);
    EXPECT_TRUE(payment.gateway_reference().empty());
    EXPECT_EQ(Fetch(payment.payment_id()).status(), v1::PAYMENT_STATUS_DECLINED);
  }
  EXPECT_EQ(ListByOrder("order-declined").size(), 2u);
}

TEST_F(PaymentServiceTest, AuthorizeTransientGatewayFailuresLeavePendingAndSameRequestIdCompletesIt) {
  const v1::AuthorizePaymentRequest request =
      AuthorizeRequestFor("transient-1", "order-transient", "tok_transient_2");
  v1::Payment response;
  grpc::Status first = Authorize(request, &response);
  EXPECT_EQ(first.error_code(), grpc::StatusCode::UNAVAILABLE) << first.error_message();
  std::vector<v1::Payment> stored = ListByOrder("order-transient");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].status(), v1::PAYMENT_STATUS_PENDING);
  const std::string payment_id = stored[0].payment_id();

  grpc::Status second = Authorize(request, &response);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::UNAVAILABLE) << second.error_message();
  EXPECT_EQ(Fetch(payment_id).status(), v1::PAYMENT_STATUS_PENDING);

  v1::Payment completed;
  grpc::Status third = Authorize(request, &completed);
  ASSERT_TRUE(third.ok()) << third.error_message();
  EXPECT_EQ(completed.payment_id(), payment_id);
  EXPECT_EQ(completed.status(), v1::PAYMENT_STATUS_AUTHORIZED);
  EXPECT_EQ(completed.gateway_reference(), SimulatedGateway::ReferenceFor("transient-1"));
  EXPECT_EQ(gateway_->CallCount("transient-1"), 3);
  EXPECT_EQ(ListByOrder("order-transient").size(), 1u);
}

TEST_F(PaymentServiceTest, AuthorizeSlowerThanClientDeadlineIsDeadlineExceededAndRetryCompletes) {
  const v1::AuthorizePaymentRequest request =
      AuthorizeRequestFor("slow-1", "order-slow", "tok_slow_1000");
  v1::Payment response;
  const absl::Time start = absl::Now();
  grpc::Status timed_out = stub_->AuthorizePayment(ContextWithMillis(200).get(), request, &response);
  EXPECT_EQ(timed_out.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << timed_out.error_message();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(900)) << "the caller waited for the gateway";
  // The caller's deadline reached the gateway too: past the time the gateway call would have
  // taken, nothing completed it behind the caller's back.
  absl::SleepFor(absl::Milliseconds(1200));
  std::vector<v1::Payment> stored = ListByOrder("order-slow");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].status(), v1::PAYMENT_STATUS_PENDING);
  EXPECT_EQ(stored[0].version(), 1);

  v1::Payment completed;
  grpc::Status retried = stub_->AuthorizePayment(ContextWithDeadline().get(), request, &completed);
  ASSERT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_EQ(completed.payment_id(), stored[0].payment_id());
  EXPECT_EQ(completed.status(), v1::PAYMENT_STATUS_AUTHORIZED);
  EXPECT_EQ(ListByOrder("order-slow").size(), 1u);
}

TEST_F(PaymentServiceTest, AuthorizeReplayReturnsSamePaymentWithoutCallingGatewayAgain) {
  const v1::Payment first = MustAuthorize("replay-auth", "order-replay-auth");
  ASSERT_EQ(gateway_->CallCount("replay-auth"), 1);
  v1::Payment replay;
  ASSERT_TRUE(Authorize(AuthorizeRequestFor("replay-auth", "order-replay-auth"), &replay).ok());
  EXPECT_EQ(replay.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(gateway_->CallCount("replay-auth"), 1);
  EXPECT_EQ(ListByOrder("order-replay-auth").size(), 1u);
}

TEST_F(PaymentServiceTest, AuthorizeWithReusedRequestIdForDifferentRequestIsAlreadyExists) {
  const v1::Payment first = MustAuthorize("reused-auth", "order-reused-auth");
  const std::vector<v1::AuthorizePaymentRequest> different = {
      AuthorizeRequestFor("reused-auth", "order-reused-auth", "tok_approve", 1001),
      AuthorizeRequestFor("reused-auth", "order-other", "tok_approve", 1000),
      AuthorizeRequestFor("reused-auth", "order-reused-auth", "tok_other", 1000),
  };
  for (const v1::AuthorizePaymentRequest& request : different) {
    SCOPED_TRACE(request.ShortDebugString());
    v1::Payment response;
    EXPECT_EQ(Authorize(request, &response).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
  ExpectUnchanged(first);
  EXPECT_TRUE(ListByOrder("order-other").empty());
}

TEST_F(PaymentServiceTest, ConcurrentDuplicateAuthorizationsYieldOnePayment) {
  constexpr int kClients = 8;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  absl::Mutex mu;
  std::set<std::string> ids;
  std::vector<std::string> errors;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      v1::Payment payment;
      grpc::Status status =
          Authorize(AuthorizeRequestFor("concurrent-auth", "order-concurrent-auth"), &payment);
      absl::MutexLock lock(&mu);
      if (!status.ok()) {
        errors.push_back(status.error_message());
        return;
      }
      ++ok;
      ids.insert(payment.payment_id());
      EXPECT_EQ(payment.status(), v1::PAYMENT_STATUS_AUTHORIZED);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(ok.load(), kClients);
  EXPECT_EQ(ids.size(), 1u);
  const std::vector<v1::Payment> stored = ListByOrder("order-concurrent-auth");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].status(), v1::PAYMENT_STATUS_AUTHORIZED);
  EXPECT_EQ(stored[0].version(), 2) << "authorized more than once";
}

TEST_F(PaymentServiceTest, AuthorizeRejectsBadInputNamingTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::AuthorizePaymentRequest&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty request_id", [](auto& r) { r.set_request_id(""); }, "request_id"},
      {"oversized request_id", [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       "request_id"},
      {"request_id with space", [](auto& r) { r.set_request_id("a b"); }, "request_id"},
      {"empty order_id", [](auto& r) { r.set_order_id(""); }, "order_id"},
      {"oversized order_id", [](auto& r) { r.set_order_id(std::string(65, 'o')); }, "order_id"},
      {"order_id with newline", [](auto& r) { r.set_order_id("a\nb"); }, "order_id"},
      {"empty payment_token", [](auto& r) { r.set_payment_token(""); }, "payment_token"},
      {"oversized payment_token", [](auto& r) { r.set_payment_token(std::string(129, 't')); },
       "payment_token"},
      {"zero amount", [](auto& r) { r.mutable_amount()->set_amount_minor(0); },
       "amount.amount_minor"},
      {"negative amount", [](auto& r) { r.mutable_amount()->set_amount_minor(-100); },
       "amount.amount_minor"},
      {"unknown currency", [](auto& r) { r.mutable_amount()->set_currency_code("XXX"); },
       "amount.currency_code"},
      {"lower-case currency", [](auto& r) { r.mutable_amount()->set_currency_code("eur"); },
       "amount.currency_code"},
      {"no amount", [](auto& r) { r.clear_amount(); }, "amount.currency_code"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::AuthorizePaymentRequest request = AuthorizeRequestFor("bad-auth", "order-bad-auth");
    c.mutate(request);
    v1::Payment response;
    ExpectInvalidField(Authorize(request, &response), c.field);
  }
  // Nothing was stored, and the gateway was never asked.
  EXPECT_TRUE(ListByOrder("order-bad-auth").empty());
  EXPECT_EQ(gateway_->CallCount("bad-auth"), 0);
}

// ---- capture -----------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, CaptureWithoutAmountCapturesTheWholeAuthorization) {
  const v1::Payment authorized = MustAuthorize("auth-capture-all", "order-capture-all");
  v1::Payment captured;
  grpc::Status status = Capture("cap-capture-all", authorized.payment_id(), 0, &captured);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(captured.status(), v1::PAYMENT_STATUS_CAPTURED);
  EXPECT_EQ(captured.captured().amount_minor(), 1000);
  EXPECT_EQ(captured.captured().currency_code(), "EUR");
  EXPECT_EQ(captured.version(), authorized.version() + 1);
  EXPECT_EQ(Fetch(authorized.payment_id()).SerializeAsString(), captured.SerializeAsString());
}

TEST_F(PaymentServiceTest, PartialCaptureTakesThatAmountAndEndsTheAuthorization) {
  const v1::Payment authorized = MustAuthorize("auth-capture-part", "order-capture-part");
  v1::Payment captured;
  grpc::Status status = Capture("cap-capture-part", authorized.payment_id(), 400, &captured);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(captured.status(), v1::PAYMENT_STATUS_CAPTURED);
  EXPECT_EQ(captured.captured().amount_minor(), 400);
  EXPECT_EQ(captured.amount().amount_minor(), 1000);

  // The rest of the hold is released: a second capture is a forbidden state change.
  v1::Payment again;
  EXPECT_EQ(Capture("cap-capture-part-2", authorized.payment_id(), 100, &again).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ExpectUnchanged(captured);
}

TEST_F(PaymentServiceTest, CaptureAboveAuthorizedAmountIsFailedPreconditionAndChangesNothing) {
  const v1::Payment authorized = MustAuthorize("auth-capture-over", "order-capture-over");
  v1::Payment response;
  grpc::Status status = Capture("cap-capture-over", authorized.payment_id(), 1001, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  ExpectUnchanged(authorized);
  EXPECT_EQ(gateway_->CallCount("cap-capture-over"), 0);

  // Nothing was recorded under the request_id: it may still capture what is authorized.
  grpc::Status fits = Capture("cap-capture-over-2", authorized.payment_id(), 1000, &response);
  EXPECT_TRUE(fits.ok()) << fits.error_message();
}

TEST_F(PaymentServiceTest, CaptureOfDeclinedPaymentIsFailedPrecondition) {
  const v1::Payment declined = MustAuthorize("auth-capture-declined", "order-capture-declined",
                                             "tok_decline");
  ASSERT_EQ(declined.status(), v1::PAYMENT_STATUS_DECLINED);
  v1::Payment response;
  EXPECT_EQ(Capture("cap-capture-declined", declined.payment_id(), 0, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ExpectUnchanged(declined);
}

// ---- void --------------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, VoidReleasesTheHoldAndVoidingAgainChangesNothing) {
  const v1::Payment authorized = MustAuthorize("auth-void", "order-void");
  v1::Payment voided;
  grpc::Status status = Void("void-1", authorized.payment_id(), &voided);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(voided.status(), v1::PAYMENT_STATUS_VOIDED);
  EXPECT_EQ(voided.captured().amount_minor(), 0);
  EXPECT_EQ(voided.version(), authorized.version() + 1);

  // Another void of a voided payment succeeds without effect and without a gateway call.
  v1::Payment again;
  ASSERT_TRUE(Void("void-2", authorized.payment_id(), &again).ok());
  EXPECT_EQ(again.SerializeAsString(), voided.SerializeAsString());
  EXPECT_EQ(gateway_->CallCount("void-2"), 0);

  // A voided payment is terminal.
  v1::Payment response;
  EXPECT_EQ(Capture("cap-after-void", authorized.payment_id(), 0, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ExpectUnchanged(voided);
}

TEST_F(PaymentServiceTest, VoidOfDeclinedPaymentSucceedsWithoutEffect) {
  const v1::Payment declined =
      MustAuthorize("auth-void-declined", "order-void-declined", "tok_insufficient_funds");
  v1::Payment response;
  grpc::Status status = Void("void-declined", declined.payment_id(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.SerializeAsString(), declined.SerializeAsString());
  ExpectUnchanged(declined);
}

TEST_F(PaymentServiceTest, VoidAfterCaptureIsFailedPrecondition) {
  const v1::Payment captured = MustCapture("void-after-capture");
  v1::Payment response;
  grpc::Status status = Void("void-after-capture", captured.payment_id(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  ExpectUnchanged(captured);
}

// ---- refund ------------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, PartialRefundsAddUpAndRefundingMoreThanIsLeftIsFailedPrecondition) {
  const v1::Payment captured = MustCapture("refund-partial");
  v1::Payment first;
  ASSERT_TRUE(Refund("refund-partial-1", captured.payment_id(), 300, &first, "damaged").ok());
  EXPECT_EQ(first.status(), v1::PAYMENT_STATUS_PARTIALLY_REFUNDED);
  EXPECT_EQ(first.refunded().amount_minor(), 300);
  EXPECT_EQ(first.refunded().currency_code(), "EUR");

  v1::Payment second;
  ASSERT_TRUE(Refund("refund-partial-2", captured.payment_id(), 300, &second).ok());
  EXPECT_EQ(second.status(), v1::PAYMENT_STATUS_PARTIALLY_REFUNDED);
  EXPECT_EQ(second.refunded().amount_minor(), 600);
  EXPECT_EQ(second.version(), first.version() + 1);

  v1::Payment response;
  grpc::Status over = Refund("refund-partial-3", captured.payment_id(), 401, &response);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << over.error_message();
  ExpectUnchanged(second);
  EXPECT_EQ(gateway_->CallCount("refund-partial-3"), 0);

  // Exactly what is left still fits.
  v1::Payment rest;
  ASSERT_TRUE(Refund("refund-partial-4", captured.payment_id(), 400, &rest).ok());
  EXPECT_EQ(rest.status(), v1::PAYMENT_STATUS_REFUNDED);
  EXPECT_EQ(rest.refunded().amount_minor(), 1000);
}

TEST_F(PaymentServiceTest, RefundWithoutAmountRefundsEverythingAndEndsThePayment) {
  const v1::Payment captured = MustCapture("refund-full", 700);
  v1::Payment refunded;
  grpc::Status status = Refund("refund-full-1", captured.payment_id(), 0, &refunded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(refunded.status(), v1::PAYMENT_STATUS_REFUNDED);
  EXPECT_EQ(refunded.refunded().amount_minor(), 700);
  EXPECT_EQ(refunded.captured().amount_minor(), 700);

  v1::Payment response;
  EXPECT_EQ(Refund("refund-full-2", captured.payment_id(), 1, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ExpectUnchanged(refunded);
}

TEST_F(PaymentServiceTest, RefundOfUncapturedPaymentIsFailedPrecondition) {
  const v1::Payment authorized = MustAuthorize("auth-refund-uncaptured", "order-refund-uncaptured");
  v1::Payment response;
  EXPECT_EQ(Refund("refund-uncaptured", authorized.payment_id(), 0, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ExpectUnchanged(authorized);
}

TEST_F(PaymentServiceTest, RefundWhenGatewayRefundsFailIsUnavailableAndRecordsNothing) {
  const v1::Payment captured = MustCapture("refund-fails", 0, "tok_refund_fails");
  v1::Payment response;
  grpc::Status first = Refund("refund-fails-1", captured.payment_id(), 200, &response);
  EXPECT_EQ(first.error_code(), grpc::StatusCode::UNAVAILABLE) << first.error_message();
  ExpectUnchanged(captured);

  // Nothing was recorded, so a retry with the same request_id goes to the gateway again.
  grpc::Status retry = Refund("refund-fails-1", captured.payment_id(), 200, &response);
  EXPECT_EQ(retry.error_code(), grpc::StatusCode::UNAVAILABLE) << retry.error_message();
  EXPECT_EQ(gateway_->CallCount("refund-fails-1"), 2);
  ExpectUnchanged(captured);
}

TEST_F(PaymentServiceTest, ConcurrentRefundsNeverAddUpToMoreThanWasCaptured) {
  // The slow gateway keeps every refund in flight at once, after each has read the payment.
  const v1::Payment captured = MustCapture("refund-race", 0, "tok_slow_300");
  constexpr int kClients = 8;  // 8 x 200 asked for, 1000 captured: 5 fit.
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  absl::Mutex mu;
  std::vector<std::string> unexpected;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      v1::Payment response;
      grpc::Status status =
          Refund(absl::StrCat("refund-race-", i), captured.payment_id(), 200, &response);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++refused;
      } else {
        absl::MutexLock lock(&mu);
        unexpected.push_back(status.error_message());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(refused.load(), kClients - 5);
  const v1::Payment after = Fetch(captured.payment_id());
  EXPECT_EQ(after.refunded().amount_minor(), 1000);
  EXPECT_EQ(after.status(), v1::PAYMENT_STATUS_REFUNDED);
  EXPECT_EQ(after.version(), captured.version() + 5);
}

// ---- idempotency of capture, void and refund ---------------------------------------------------

TEST_F(PaymentServiceTest, ReplayOfEachMutatingRpcReturnsSamePaymentAndChangesNothing) {
  const v1::Payment authorized = MustAuthorize("auth-replay-ops", "order-replay-ops");

  v1::Payment captured;
  ASSERT_TRUE(Capture("cap-replay-ops", authorized.payment_id(), 600, &captured).ok());
  v1::Payment capture_replay;
  ASSERT_TRUE(Capture("cap-replay-ops", authorized.payment_id(), 600, &capture_replay).ok());
  EXPECT_EQ(capture_replay.SerializeAsString(), captured.SerializeAsString());
  EXPECT_EQ(gateway_->CallCount("cap-replay-ops"), 1);

  v1::Payment refunded;
  ASSERT_TRUE(Refund("refund-replay-ops", authorized.payment_id(), 100, &refunded, "why").ok());
  v1::Payment refund_replay;
  ASSERT_TRUE(
      Refund("refund-replay-ops", authorized.payment_id(), 100, &refund_replay, "why").ok());
  EXPECT_EQ(refund_replay.SerializeAsString(), refunded.SerializeAsString());
  EXPECT_EQ(refund_replay.refunded().amount_minor(), 100);
  EXPECT_EQ(gateway_->CallCount("refund-replay-ops"), 1);

  // A late replay of the capture returns the payment as it is now and captures nothing more.
  v1::Payment late_capture_replay;
  ASSERT_TRUE(Capture("cap-replay-ops", authorized.payment_id(), 600, &late_capture_replay).ok());
  EXPECT_EQ(late_capture_replay.SerializeAsString(), refunded.SerializeAsString());
  ExpectUnchanged(refunded);

  const v1::Payment other = MustAuthorize("auth-replay-void", "order-replay-ops");
  v1::Payment voided;
  ASSERT_TRUE(Void("void-replay-ops", other.payment_id(), &voided).ok());
  v1::Payment void_replay;
  ASSERT_TRUE(Void("void-replay-ops", other.payment_id(), &void_replay).ok());
  EXPECT_EQ(void_replay.SerializeAsString(), voided.SerializeAsString());
  EXPECT_EQ(gateway_->CallCount("void-replay-ops"), 1);
  ExpectUnchanged(voided);
}

TEST_F(PaymentServiceTest, OperationRequestIdReusedWithDifferentParamsIsAlreadyExists) {
  const v1::Payment authorized = MustAuthorize("auth-reused-ops", "order-reused-ops");
  v1::Payment captured;
  ASSERT_TRUE(Capture("cap-reused-ops", authorized.payment_id(), 500, &captured).ok());
  v1::Payment refunded;
  ASSERT_TRUE(Refund("refund-reused-ops", authorized.payment_id(), 100, &refunded, "a").ok());
  const v1::Payment other = MustAuthorize("auth-reused-ops-2", "order-reused-ops");

  v1::Payment response;
  // Same request_id, same RPC, different amount / reason / payment.
  EXPECT_EQ(Capture("cap-reused-ops", authorized.payment_id(), 501, &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Capture("cap-reused-ops", other.payment_id(), 500, &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Refund("refund-reused-ops", authorized.payment_id(), 100, &response, "b").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Refund("refund-reused-ops", authorized.payment_id(), 50, &response, "a").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  // Same request_id, another RPC.
  EXPECT_EQ(Refund("cap-reused-ops", authorized.payment_id(), 100, &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Void("cap-reused-ops", other.payment_id(), &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Capture("refund-reused-ops", other.payment_id(), 0, &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  ExpectUnchanged(refunded);
  ExpectUnchanged(other);
}

// The platform convention (README, payments.proto): a request_id reused for a different request
// is ALREADY_EXISTS. The gateway is called with request_id as its idempotency key, so a capture
// under the authorization's request_id would be deduplicated into the authorization by a real
// processor: recorded CAPTURED, never actually captured.
TEST_F(PaymentServiceTest, CaptureWithRequestIdOfTheAuthorizationIsAlreadyExists) {
  const v1::Payment authorized = MustAuthorize("auth-shared-key", "order-shared-key");
  v1::Payment response;
  grpc::Status status = Capture("auth-shared-key", authorized.payment_id(), 0, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << "captured under the authorization's idempotency key: " << response.ShortDebugString();
  EXPECT_EQ(gateway_->CallCount("auth-shared-key"), 1) << "gateway saw the key twice";
}

// ---- reads -------------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, GetPaymentValidatesIdAndReportsNotFound) {
  v1::GetPaymentRequest request;
  v1::Payment response;
  ExpectInvalidField(stub_->GetPayment(ContextWithDeadline().get(), request, &response),
                     "payment_id");
  request.set_payment_id("not-a-uuid");
  ExpectInvalidField(stub_->GetPayment(ContextWithDeadline().get(), request, &response),
                     "payment_id");
  request.set_payment_id(kUnknownPaymentId);
  EXPECT_EQ(stub_->GetPayment(ContextWithDeadline().get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Ids are UUIDs: upper case names the same payment.
  const v1::Payment payment = MustAuthorize("auth-get-upper", "order-get-upper");
  std::string upper = payment.payment_id();
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  request.set_payment_id(upper);
  ASSERT_TRUE(stub_->GetPayment(ContextWithDeadline().get(), request, &response).ok());
  EXPECT_EQ(response.payment_id(), payment.payment_id());
}

TEST_F(PaymentServiceTest, OperationsOnUnknownPaymentAreNotFound) {
  v1::Payment response;
  EXPECT_EQ(Capture("cap-unknown", kUnknownPaymentId, 0, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Void("void-unknown", kUnknownPaymentId, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Refund("refund-unknown", kUnknownPaymentId, 0, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(gateway_->CallCount("cap-unknown") + gateway_->CallCount("void-unknown") +
                gateway_->CallCount("refund-unknown"),
            0);
}

TEST_F(PaymentServiceTest, OperationsRejectBadInputNamingTheField) {
  const v1::Payment captured = MustCapture("bad-ops", 800);
  const std::string id = captured.payment_id();
  v1::Payment response;

  ExpectInvalidField(Capture("", id, 0, &response), "request_id");
  ExpectInvalidField(Capture(std::string(129, 'r'), id, 0, &response), "request_id");
  ExpectInvalidField(Capture("bad-cap", "", 0, &response), "payment_id");
  ExpectInvalidField(Capture("bad-cap", "not-a-uuid", 0, &response), "payment_id");
  ExpectInvalidField(Capture("bad-cap", id, -5, &response), "amount.amount_minor");
  v1::CapturePaymentRequest capture;
  capture.set_request_id("bad-cap");
  capture.set_payment_id(id);
  capture.mutable_amount()->set_currency_code("XXX");
  capture.mutable_amount()->set_amount_minor(10);
  ExpectInvalidField(stub_->CapturePayment(ContextWithDeadline().get(), capture, &response),
                     "amount.currency_code");
  capture.mutable_amount()->set_currency_code("");
  ExpectInvalidField(stub_->CapturePayment(ContextWithDeadline().get(), capture, &response),
                     "amount.currency_code");

  ExpectInvalidField(Void("", id, &response), "request_id");
  ExpectInvalidField(Void("bad-void", "1234", &response), "payment_id");

  ExpectInvalidField(Refund("", id, 0, &response), "request_id");
  ExpectInvalidField(Refund("bad-refund", "zzzzzzzz-0000-7000-8000-000000000000", 0, &response),
                     "payment_id");
  ExpectInvalidField(Refund("bad-refund", id, -1, &response), "amount.amount_minor");
  ExpectInvalidField(Refund("bad-refund", id, 0, &response, std::string(501, 'x')), "reason");
  ExpectInvalidField(Refund("bad-refund", id, 0, &response, "bell\a"), "reason");
  v1::RefundPaymentRequest refund;
  refund.set_request_id("bad-refund");
  refund.set_payment_id(id);
  refund.mutable_amount()->set_currency_code("USD");  // The payment is in EUR.
  refund.mutable_amount()->set_amount_minor(10);
  ExpectInvalidField(stub_->RefundPayment(ContextWithDeadline().get(), refund, &response),
                     "amount.currency_code");

  ExpectUnchanged(captured);
  EXPECT_EQ(gateway_->CallCount("bad-cap") + gateway_->CallCount("bad-void") +
                gateway_->CallCount("bad-refund"),
            0);
}

TEST_F(PaymentServiceTest, ListPaymentsPagesByOrderNewestFirstWithTokens) {
  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) {
    created.insert(MustAuthorize(absl::StrCat("page-", i), "order-pager").payment_id());
  }
  const std::string elsewhere = MustAuthorize("page-other", "order-not-pager").payment_id();

  std::set<std::string> seen;
  std::vector<v1::Payment> in_order;
  v1::ListPaymentsRequest request;
  request.set_order_id("order-pager");
  request.set_page_size(3);
  int pages = 0;
  do {
    v1::ListPaymentsResponse response;
    grpc::Status status = stub_->ListPayments(ContextWithDeadline().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(response.payments_size(), 3);
    for (const v1::Payment& p : response.payments()) {
      EXPECT_EQ(p.order_id(), "order-pager");
      EXPECT_TRUE(seen.insert(p.payment_id()).second) << "duplicate " << p.payment_id();
      in_order.push_back(p);
    }
    request.set_page_token(response.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(seen, created);
  EXPECT_EQ(pages, 3);
  for (size_t i = 1; i < in_order.size(); ++i) {
    const auto& newer = in_order[i - 1].create_time();
    const auto& older = in_order[i].create_time();
    EXPECT_TRUE(newer.seconds() > older.seconds() ||
                (newer.seconds() == older.seconds() && newer.nanos() >= older.nanos()))
        << "not newest first at " << i;
  }

  // Without a filter every order's payments are listed.
  v1::ListPaymentsRequest all;
  all.set_page_size(1000);
  v1::ListPaymentsResponse everything;
  ASSERT_TRUE(stub_->ListPayments(ContextWithDeadline().get(), all, &everything).ok());
  std::set<std::string> all_ids;
  for (const v1::Payment& p : everything.payments()) all_ids.insert(p.payment_id());
  EXPECT_TRUE(all_ids.count(elsewhere));
  for (const std::string& id : created) EXPECT_TRUE(all_ids.count(id)) << id;
}

TEST_F(PaymentServiceTest, ListPaymentsRejectsBadPageSizeAndTokens) {
  v1::ListPaymentsResponse response;
  v1::ListPaymentsRequest request;
  request.set_page_size(-1);
  ExpectInvalidField(stub_->ListPayments(ContextWithDeadline().get(), request, &response),
                     "page_size");
  request.set_page_size(1001);
  ExpectInvalidField(stub_->ListPayments(ContextWithDeadline().get(), request, &response),
                     "page_size");
  request.set_page_size(1);
  request.set_page_token("garbage!!");
  ExpectInvalidField(stub_->ListPayments(ContextWithDeadline().get(), request, &response),
                     "page_token");
  v1::ListPaymentsRequest bad_order;
  bad_order.set_order_id(std::string(65, 'o'));
  ExpectInvalidField(stub_->ListPayments(ContextWithDeadline().get(), bad_order, &response),
                     "order_id");

  // A token issued for one order is refused for another, and a cut-off token is refused.
  MustAuthorize("token-1", "order-token");
  MustAuthorize("token-2", "order-token");
  v1::ListPaymentsRequest first;
  first.set_order_id("order-token");
  first.set_page_size(1);
  ASSERT_TRUE(stub_->ListPayments(ContextWithDeadline().get(), first, &response).ok());
  const std::string token = response.next_page_token();
  ASSERT_FALSE(token.empty());
  v1::ListPaymentsRequest other;
  other.set_order_id("order-other-token");
  other.set_page_token(token);
  ExpectInvalidField(stub_->ListPayments(ContextWithDeadline().get(), other, &response),
                     "page_token");
  v1::ListPaymentsRequest cut = first;
  cut.set_page_token(token.substr(0, token.size() - 4));
  ExpectInvalidField(stub_->ListPayments(ContextWithDeadline().get(), cut, &response),
                     "page_token");

  // page_size 0 means the default.
  v1::ListPaymentsRequest defaults;
  defaults.set_order_id("order-token");
  grpc::Status status = stub_->ListPayments(ContextWithDeadline().get(), defaults, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.payments_size(), 2);
  EXPECT_TRUE(response.next_page_token().empty());
}

// ---- outage ------------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, DatabaseDownIsUnavailableAndSameServerRecovers) {
  if (!testing::UsingPrivateServer()) {
    GTEST_SKIP() << "needs the private test cluster to stop and start it";
  }
  const v1::Payment before = MustAuthorize("outage-before", "order-outage");
  testing::StopPrivateServer(testing::StopMode::kImmediate);
  v1::Payment response;
  grpc::Status authorize = Authorize(AuthorizeRequestFor("outage-during", "order-outage"), &response);
  EXPECT_EQ(authorize.error_code(), grpc::StatusCode::UNAVAILABLE) << authorize.error_message();
  v1::GetPaymentRequest get;
  get.set_payment_id(before.payment_id());
  grpc::Status read = stub_->GetPayment(ContextWithDeadline().get(), get, &response);
  EXPECT_EQ(read.error_code(), grpc::StatusCode::UNAVAILABLE) << read.error_message();
  grpc::Status capture = Capture("outage-capture", before.payment_id(), 0, &response);
  EXPECT_EQ(capture.error_code(), grpc::StatusCode::UNAVAILABLE) << capture.error_message();

  testing::StartPrivateServer();
  // The same server process and pool serve again; the failed calls can simply be retried.
  grpc::Status after = stub_->GetPayment(ContextWithDeadline().get(), get, &response);
  ASSERT_TRUE(after.ok()) << after.error_message();
  EXPECT_EQ(response.SerializeAsString(), before.SerializeAsString());
  grpc::Status retried = Authorize(AuthorizeRequestFor("outage-during", "order-outage"), &response);
  ASSERT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_EQ(response.status(), v1::PAYMENT_STATUS_AUTHORIZED);
  grpc::Status captured = Capture("outage-capture", before.payment_id(), 0, &response);
  ASSERT_TRUE(captured.ok()) << captured.error_message();
  EXPECT_EQ(response.status(), v1::PAYMENT_STATUS_CAPTURED);
  EXPECT_EQ(ListByOrder("order-outage").size(), 2u);
}

// Capture, Void and Refund read what they need before the gateway call in one round trip: one
// checkout, one statement (the payment with any operation already recorded under the request
// id). A replay is that one statement and no gateway call.
TEST_F(PaymentServiceTest, CaptureVoidRefundReadOnceBeforeTheGatewayCall) {
  StatementLog log;
  db::ConnectionPool pool(db::PoolOptions{.dsn = *dsn_, .size = 2, .observer = &log});
  db::PgPaymentRepository repository(&pool);
  WorkBeforeGateway gateway(&log);
  PaymentService service(&repository, &gateway);
  const std::vector<std::string> kOneRead = {"payments.select_for_operation"};
  const auto authorized = [&](const std::string& request_id) {
    absl::StatusOr<Payment> p = service.Authorize(
        AuthorizeRequest{request_id, "order-round-trips", Money{"EUR", 1000}, "tok_approve"});
    EXPECT_TRUE(p.ok()) << p.status();
    gateway.Take();
    log.Take();
    return p.ok() ? p->id : std::string();
  };
  const auto expect_one_read_then_gateway = [&](const absl::StatusOr<Payment>& result) {
    ASSERT_TRUE(result.ok()) << result.status();
    std::optional<StatementLog::Work> before = gateway.Take();
    ASSERT_TRUE(before.has_value()) << "the gateway was not called";
    EXPECT_EQ(before->checkouts, 1);
    EXPECT_EQ(before->statements, kOneRead);
    log.Take();
  };

  const std::string captured = authorized("rt-auth-1");
  expect_one_read_then_gateway(service.Capture({"rt-cap", captured, Money{"EUR", 600}}));
  expect_one_read_then_gateway(service.Refund({"rt-ref", captured, Money{"EUR", 100}, "late"}));
  const std::string voided = authorized("rt-auth-2");
  expect_one_read_then_gateway(service.Void({"rt-void", voided}));

  // Replays: one read, no gateway call.
  ASSERT_TRUE(service.Capture({"rt-cap", captured, Money{"EUR", 600}}).ok());
  ASSERT_TRUE(service.Refund({"rt-ref", captured, Money{"EUR", 100}, "late"}).ok());
  ASSERT_TRUE(service.Void({"rt-void", voided}).ok());
  EXPECT_FALSE(gateway.Take().has_value()) << "a replay reached the gateway";
  const StatementLog::Work replays = log.Take();
  EXPECT_EQ(replays.checkouts, 3);
  EXPECT_EQ(replays.statements, std::vector<std::string>(3, kOneRead[0]));
}

// The authorization's outcome was saved, but the answer was lost with the connection (the save is
// not idempotent, so the call fails UNAVAILABLE saying the outcome is unknown). The caller's
// retry with the same request settles it from what was saved: AUTHORIZED, the gateway not called
// again, one payment.
TEST(PaymentLostAnswerTest, AnAuthorizationWhoseSavedOutcomeLostItsAnswerSettlesOnRetry) {
  const std::string dsn = testing::CreateTestDatabase("payments_lost_outcome");
  ASSERT_TRUE(db::Migrator(dsn, *db::EmbeddedMigrations("payments")).Up().ok());
  testing::AnswerDroppingProxy proxy(dsn);
  db::ConnectionPool pool(db::PoolOptions{.dsn = proxy.dsn(), .size = 4});
  db::PgPaymentRepository repository(&pool);
  SimulatedGateway simulator;
  testing::CountingGateway gateway(&simulator);
  PaymentService service(&repository, &gateway);
  const AuthorizeRequest request{"auth-lost-outcome", "order-lost", Money{"USD", 2500},
                                 "tok_approve"};

  proxy.DropNextAnswerTo("payments.update");
  const absl::StatusOr<Payment> lost = service.Authorize(request, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(proxy.dropped(), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_TRUE(db::IsOutcomeUnknown(lost.status())) << lost.status();

  const absl::StatusOr<Payment> retried =
      service.Authorize(request, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->status, PaymentStatus::kAuthorized);
  EXPECT_EQ(gateway.CallCount("auth-lost-outcome"), 1);
  pqxx::connection direct(dsn);
  EXPECT_EQ(pqxx::nontransaction(direct)
                .exec1("SELECT count(*) FROM payments.payments WHERE order_id = 'order-lost'")[0]
                .as<int>(),
            1);
}

}  // namespace
}  // namespace order_platform::payments
