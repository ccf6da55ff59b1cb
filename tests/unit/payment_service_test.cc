// The payment use cases over the in-memory repository and the simulated gateway: idempotent
// authorize / capture / void / refund, gateway failures, listing, and the gRPC handler's mapping.
#include "services/payments/payment_service.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/errors.h"
#include "services/payments/memory_payment_repository.h"
#include "services/payments/payment_handler.h"
#include "services/payments/simulated_gateway.h"
#include "tests/support/counting_gateway.h"

namespace order_platform::payments {
namespace {

class PaymentServiceTest : public ::testing::Test {
 protected:
  absl::StatusOr<Payment> Authorize(const std::string& request_id,
                                    const std::string& token = "tok_approve", int64_t amount = 1000,
                                    const std::string& order = "order-1") {
    return service_.Authorize(AuthorizeRequest{request_id, order, Money{"USD", amount}, token});
  }

  Payment Authorized(const std::string& request_id, const std::string& token = "tok_approve") {
    absl::StatusOr<Payment> p = Authorize(request_id, token);
    EXPECT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->status, PaymentStatus::kAuthorized);
    return *p;
  }

  Payment Captured(const std::string& request_id, const std::string& token = "tok_approve") {
    Payment p = Authorized(request_id, token);
    absl::StatusOr<Payment> captured =
        service_.Capture({absl::StrCat("cap-", request_id), p.id, Money{}});
    EXPECT_TRUE(captured.ok()) << captured.status();
    return *captured;
  }

  MemoryPaymentRepository repository_;
  SimulatedGateway simulator_;
  testing::CountingGateway gateway_{&simulator_};
  PaymentService service_{&repository_, &gateway_};
};

// ---- authorize -------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, AuthorizeApprovedTokenReturnsAuthorizedPaymentWithReference) {
  absl::StatusOr<Payment> p = Authorize("auth-1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->status, PaymentStatus::kAuthorized);
  EXPECT_EQ(p->gateway_reference, SimulatedGateway::ReferenceFor("auth-1"));
  EXPECT_EQ(p->amount, (Money{"USD", 1000}));
  EXPECT_EQ(p->version, 2);
  EXPECT_EQ(repository_.Get(p->id)->status, PaymentStatus::kAuthorized);
}

TEST_F(PaymentServiceTest, AuthorizeDeclinedTokenReturnsDeclinedPaymentNotAnError) {
  absl::StatusOr<Payment> p = Authorize("auth-2", "tok_insufficient_funds");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->status, PaymentStatus::kDeclined);
  EXPECT_EQ(p->decline_reason, "insufficient funds");
}

TEST_F(PaymentServiceTest, AuthorizeReplayReturnsFirstPaymentWithoutCallingGatewayAgain) {
  absl::StatusOr<Payment> first = Authorize("auth-3");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Payment> replay = Authorize("auth-3");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->id, first->id);
  EXPECT_EQ(replay->version, first->version);
  EXPECT_EQ(gateway_.CallCount("auth-3"), 1);
}

TEST_F(PaymentServiceTest, AuthorizeReplayOfDeclinedPaymentStaysDeclined) {
  ASSERT_TRUE(Authorize("auth-4", "tok_decline").ok());
  absl::StatusOr<Payment> replay = Authorize("auth-4", "tok_decline");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->status, PaymentStatus::kDeclined);
  EXPECT_EQ(replay->decline_reason, "card declined");
}

TEST_F(PaymentServiceTest, AuthorizeWithReusedRequestIdForDifferentRequestIsAlreadyExists) {
  ASSERT_TRUE(Authorize("auth-5", "tok_approve", 1000).ok());
  EXPECT_EQ(Authorize("auth-5", "tok_approve", 2000).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Authorize("auth-5", "tok_approve", 1000, "order-2").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(PaymentServiceTest, AuthorizeGatewayUnavailableLeavesPendingAndRetryCompletesIt) {
  absl::StatusOr<Payment> failed = Authorize("auth-6", "tok_transient_2");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  absl::StatusOr<PaymentPage> page = repository_.List(PaymentListQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->payments.size(), 1u);
  EXPECT_EQ(page->payments[0].status, PaymentStatus::kPending);

  EXPECT_EQ(Authorize("auth-6", "tok_transient_2").status().code(), absl::StatusCode::kUnavailable);
  absl::StatusOr<Payment> retried = Authorize("auth-6", "tok_transient_2");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->id, page->payments[0].id);
  EXPECT_EQ(retried->status, PaymentStatus::kAuthorized);
  EXPECT_EQ(gateway_.CallCount("auth-6"), 3);
}

TEST_F(PaymentServiceTest, AuthorizeSlowGatewayPastDeadlineIsDeadlineExceededAndStaysPending) {
  absl::StatusOr<Payment> p =
      service_.Authorize(AuthorizeRequest{"auth-7", "order-1", Money{"USD", 100}, "tok_slow_5000"},
                         absl::Now() + absl::Milliseconds(30));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<PaymentPage> page = repository_.List(PaymentListQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->payments.size(), 1u);
  EXPECT_EQ(page->payments[0].status, PaymentStatus::kPending);
}

TEST_F(PaymentServiceTest, AuthorizeInvalidRequestIsInvalidArgumentAndStoresNothing) {
  absl::StatusOr<Payment> p = Authorize("auth-8", "tok_approve", 0);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(p.status()), "amount.amount_minor");
  EXPECT_TRUE(repository_.List(PaymentListQuery{})->payments.empty());
  EXPECT_EQ(gateway_.CallCount("auth-8"), 0);
}

// ---- capture ---------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, CaptureWithoutAmountCapturesEverythingAuthorized) {
  Payment p = Authorized("auth-c1");
  absl::StatusOr<Payment> captured = service_.Capture({"cap-1", p.id, Money{}});
  ASSERT_TRUE(captured.ok()) << captured.status();
  EXPECT_EQ(captured->status, PaymentStatus::kCaptured);
  EXPECT_EQ(captured->captured_minor, 1000);
  EXPECT_EQ(gateway_.CallCount("cap-1"), 1);
  EXPECT_EQ(repository_.GetOperation("cap-1")->amount_minor, 1000);
}

TEST_F(PaymentServiceTest, PartialCaptureCapturesThatAmount) {
  Payment p = Authorized("auth-c2");
  absl::StatusOr<Payment> captured = service_.Capture({"cap-2", p.id, Money{"USD", 250}});
  ASSERT_TRUE(captured.ok()) << captured.status();
  EXPECT_EQ(captured->captured(), (Money{"USD", 250}));
}

TEST_F(PaymentServiceTest, CaptureAboveAuthorizedAmountIsFailedPreconditionWithoutGatewayCall) {
  Payment p = Authorized("auth-c3");
  absl::StatusOr<Payment> captured = service_.Capture({"cap-3", p.id, Money{"USD", 1001}});
  EXPECT_EQ(captured.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway_.CallCount("cap-3"), 0);
  EXPECT_EQ(repository_.Get(p.id)->status, PaymentStatus::kAuthorized);
}

TEST_F(PaymentServiceTest, CaptureReplayReturnsCurrentPaymentWithoutCallingGatewayAgain) {
  Payment p = Authorized("auth-c4");
  ASSERT_TRUE(service_.Capture({"cap-4", p.id, Money{"USD", 300}}).ok());
  ASSERT_TRUE(service_.Refund({"ref-4", p.id, Money{"USD", 100}, ""}).ok());
  absl::StatusOr<Payment> replay = service_.Capture({"cap-4", p.id, Money{"USD", 300}});
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->status, PaymentStatus::kPartiallyRefunded);  // Current state.
  EXPECT_EQ(replay->captured_minor, 300);
  EXPECT_EQ(gateway_.CallCount("cap-4"), 1);
}

TEST_F(PaymentServiceTest, CaptureWithReusedRequestIdForDifferentAmountIsAlreadyExists) {
  Payment p = Authorized("auth-c5");
  ASSERT_TRUE(service_.Capture({"cap-5", p.id, Money{"USD", 300}}).ok());
  EXPECT_EQ(service_.Capture({"cap-5", p.id, Money{"USD", 400}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  // Nor may a capture's request_id be reused for a refund.
  EXPECT_EQ(service_.Refund({"cap-5", p.id, Money{}, ""}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(PaymentServiceTest, CaptureOfDeclinedPaymentIsFailedPrecondition) {
  absl::StatusOr<Payment> p = Authorize("auth-c7", "tok_decline");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(service_.Capture({"cap-7", p->id, Money{}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PaymentServiceTest, CaptureUnknownPaymentIsNotFoundAndBadIdIsInvalidArgument) {
  EXPECT_EQ(
      service_.Capture({"cap-8", "0190a6c4-0000-7000-8000-000000000000", Money{}}).status().code(),
      absl::StatusCode::kNotFound);
  absl::StatusOr<Payment> bad = service_.Capture({"cap-9", "not-a-uuid", Money{}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(bad.status()), "payment_id");
}

TEST_F(PaymentServiceTest, CaptureInAnotherCurrencyIsInvalidArgument) {
  Payment p = Authorized("auth-c10");
  absl::StatusOr<Payment> captured = service_.Capture({"cap-10", p.id, Money{"EUR", 100}});
  EXPECT_EQ(captured.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(captured.status()), "amount.currency_code");
}

TEST_F(PaymentServiceTest, CaptureAcceptsUpperCasePaymentId) {
  Payment p = Authorized("auth-c11");
  absl::StatusOr<Payment> captured =
      service_.Capture({"cap-11", absl::AsciiStrToUpper(p.id), Money{}});
  ASSERT_TRUE(captured.ok()) << captured.status();
  EXPECT_EQ(captured->id, p.id);
}

// ---- gateway failures after authorization ----------------------------------------------------

TEST_F(PaymentServiceTest, TransientGatewayFailureOnCaptureRecordsNothingAndRetrySucceeds) {
  ASSERT_EQ(Authorize("auth-t1", "tok_transient_1").status().code(),
            absl::StatusCode::kUnavailable);
  Payment p = Authorized("auth-t1", "tok_transient_1");
  absl::StatusOr<Payment> failed = service_.Capture({"cap-t1", p.id, Money{}});
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(repository_.GetOperation("cap-t1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repository_.Get(p.id)->status, PaymentStatus::kAuthorized);
  absl::StatusOr<Payment> retried = service_.Capture({"cap-t1", p.id, Money{}});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->status, PaymentStatus::kCaptured);
}

TEST_F(PaymentServiceTest, RefundFailsTokenMakesRefundUnavailableAndRecordsNothing) {
  Payment p = Captured("auth-t2", "tok_refund_fails");
  EXPECT_EQ(p.status, PaymentStatus::kCaptured);
  absl::StatusOr<Payment> refund = service_.Refund({"ref-t2", p.id, Money{}, "returned"});
  EXPECT_EQ(refund.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(repository_.Get(p.id)->status, PaymentStatus::kCaptured);
  EXPECT_EQ(repository_.GetOperation("ref-t2").status().code(), absl::StatusCode::kNotFound);
}

// ---- void ------------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, VoidOfAuthorizedPaymentIsVoided) {
  Payment p = Authorized("auth-v1");
  absl::StatusOr<Payment> voided = service_.Void({"void-1", p.id});
  ASSERT_TRUE(voided.ok()) << voided.status();
  EXPECT_EQ(voided->status, PaymentStatus::kVoided);
  EXPECT_EQ(gateway_.CallCount("void-1"), 1);
}

TEST_F(PaymentServiceTest, VoidOfVoidedPaymentSucceedsWithoutEffect) {
  Payment p = Authorized("auth-v2");
  absl::StatusOr<Payment> first = service_.Void({"void-2a", p.id});
  ASSERT_TRUE(first.ok());
  absl::StatusOr<Payment> second = service_.Void({"void-2b", p.id});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status, PaymentStatus::kVoided);
  EXPECT_EQ(second->version, first->version);
  EXPECT_EQ(gateway_.CallCount("void-2b"), 0);
}

TEST_F(PaymentServiceTest, VoidOfDeclinedPaymentSucceedsWithoutEffect) {
  absl::StatusOr<Payment> p = Authorize("auth-v3", "tok_decline");
  ASSERT_TRUE(p.ok());
  absl::StatusOr<Payment> voided = service_.Void({"void-3", p->id});
  ASSERT_TRUE(voided.ok()) << voided.status();
  EXPECT_EQ(voided->status, PaymentStatus::kDeclined);
  EXPECT_EQ(voided->version, p->version);
}

TEST_F(PaymentServiceTest, VoidOfCapturedPaymentIsFailedPrecondition) {
  Payment p = Captured("auth-v4");
  EXPECT_EQ(service_.Void({"void-4", p.id}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway_.CallCount("void-4"), 0);
}

TEST_F(PaymentServiceTest, VoidOfPendingPaymentAbandonsItAndLaterAuthorizeReplayKeepsItVoided) {
  ASSERT_EQ(Authorize("auth-v5", "tok_transient_1").status().code(),
            absl::StatusCode::kUnavailable);
  const std::string id = repository_.List(PaymentListQuery{})->payments.at(0).id;
  ASSERT_EQ(service_.Void({"void-5", id}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(repository_.Get(id)->status, PaymentStatus::kPending);
  absl::StatusOr<Payment> voided = service_.Void({"void-5", id});  // Retried: 2nd call passes.
  ASSERT_TRUE(voided.ok()) << voided.status();
  EXPECT_EQ(voided->status, PaymentStatus::kVoided);
  absl::StatusOr<Payment> replay = Authorize("auth-v5", "tok_transient_1");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->status, PaymentStatus::kVoided);
}

TEST_F(PaymentServiceTest, VoidReplayReturnsCurrentPayment) {
  Payment p = Authorized("auth-v6");
  ASSERT_TRUE(service_.Void({"void-6", p.id}).ok());
  absl::StatusOr<Payment> replay = service_.Void({"void-6", p.id});
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->status, PaymentStatus::kVoided);
  EXPECT_EQ(gateway_.CallCount("void-6"), 1);
}

// ---- refund ----------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, PartialRefundsAddUpToFullRefund) {
  Payment p = Captured("auth-r1");
  absl::StatusOr<Payment> part = service_.Refund({"ref-1a", p.id, Money{"USD", 400}, "one item"});
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_EQ(part->status, PaymentStatus::kPartiallyRefunded);
  EXPECT_EQ(part->refunded_minor, 400);
  absl::StatusOr<Payment> rest = service_.Refund({"ref-1b", p.id, Money{}, "the rest"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->status, PaymentStatus::kRefunded);
  EXPECT_EQ(rest->refunded_minor, 1000);
  EXPECT_EQ(repository_.GetOperation("ref-1b")->amount_minor, 600);
  EXPECT_EQ(repository_.GetOperation("ref-1a")->reason, "one item");
}

TEST_F(PaymentServiceTest, RefundAboveWhatIsLeftIsFailedPreconditionWithoutGatewayCall) {
  Payment p = Captured("auth-r2");
  ASSERT_TRUE(service_.Refund({"ref-2a", p.id, Money{"USD", 700}, ""}).ok());
  EXPECT_EQ(service_.Refund({"ref-2b", p.id, Money{"USD", 301}, ""}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway_.CallCount("ref-2b"), 0);
}

TEST_F(PaymentServiceTest, RefundOfUncapturedPaymentIsFailedPrecondition) {
  Payment p = Authorized("auth-r3");
  EXPECT_EQ(service_.Refund({"ref-3", p.id, Money{}, ""}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PaymentServiceTest, RefundReplayReturnsPaymentWithoutRefundingTwice) {
  Payment p = Captured("auth-r4");
  ASSERT_TRUE(service_.Refund({"ref-4", p.id, Money{"USD", 100}, "x"}).ok());
  absl::StatusOr<Payment> replay = service_.Refund({"ref-4", p.id, Money{"USD", 100}, "x"});
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->refunded_minor, 100);
  EXPECT_EQ(gateway_.CallCount("ref-4"), 1);
  EXPECT_EQ(service_.Refund({"ref-4", p.id, Money{"USD", 100}, "y"}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(PaymentServiceTest, RefundReasonTooLongIsInvalidArgument) {
  Payment p = Captured("auth-r5");
  absl::StatusOr<Payment> refund = service_.Refund({"ref-5", p.id, Money{}, std::string(501, 'r')});
  EXPECT_EQ(refund.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(refund.status()), "reason");
}

// ---- read ------------------------------------------------------------------------------------

TEST_F(PaymentServiceTest, GetReturnsPaymentAndRejectsMalformedId) {
  Payment p = Authorized("auth-g1");
  absl::StatusOr<Payment> got = service_.Get(p.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, p.id);
  EXPECT_EQ(service_.Get("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(service_.Get("0190a6c4-0000-7000-8000-000000000000").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PaymentServiceTest, ListPagesThroughEveryPaymentWithTokens) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(
        Authorize(absl::StrCat("list-", i), "tok_approve", 100, i < 5 ? "order-a" : "order-b")
            .ok());
  }
  std::set<std::string> ids;
  ListPaymentsParams params{"order-a", 2, ""};
  int pages = 0;
  do {
    absl::StatusOr<ListPaymentsResult> page = service_.List(params);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Payment& p : page->payments) {
      EXPECT_EQ(p.order_id, "order-a");
      EXPECT_TRUE(ids.insert(p.id).second);
    }
    params.page_token = page->next_page_token;
    ++pages;
  } while (!params.page_token.empty() && pages < 10);
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(pages, 3);
}

TEST_F(PaymentServiceTest, ListDefaultsToFiftyAndRejectsPageSizeAboveMaximum) {
  for (int i = 0; i < 51; ++i) ASSERT_TRUE(Authorize(absl::StrCat("many-", i)).ok());
  absl::StatusOr<ListPaymentsResult> page = service_.List({"", 0, ""});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->payments.size(), 50u);
  EXPECT_FALSE(page->next_page_token.empty());
  absl::StatusOr<ListPaymentsResult> too_big = service_.List({"", 1001, ""});
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(too_big.status()), "page_size");
  EXPECT_TRUE(service_.List({"", 1000, ""}).ok());
}

TEST_F(PaymentServiceTest, ListPageTokenOfAnotherFilterIsInvalidArgument) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Authorize(absl::StrCat("tok-", i)).ok());
  absl::StatusOr<ListPaymentsResult> page = service_.List({"", 1, ""});
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_FALSE(page->next_page_token.empty());
  absl::StatusOr<ListPaymentsResult> other = service_.List({"order-1", 1, page->next_page_token});
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(other.status()), "page_token");
  EXPECT_EQ(service_.List({"", 1, "garbage!"}).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- gRPC handler ----------------------------------------------------------------------------

TEST_F(PaymentServiceTest, HandlerAuthorizesAndRendersEveryField) {
  PaymentServiceHandler handler(&service_);
  grpc::ServerContext context;
  v1::AuthorizePaymentRequest request;
  request.set_request_id("h-1");
  request.set_order_id("order-h");
  request.mutable_amount()->set_currency_code("EUR");
  request.mutable_amount()->set_amount_minor(4200);
  request.set_payment_token("tok_approve");
  v1::Payment response;
  grpc::Status status = handler.AuthorizePayment(&context, &request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), v1::PAYMENT_STATUS_AUTHORIZED);
  EXPECT_EQ(response.order_id(), "order-h");
  EXPECT_EQ(response.request_id(), "h-1");
  EXPECT_EQ(response.amount().currency_code(), "EUR");
  EXPECT_EQ(response.amount().amount_minor(), 4200);
  EXPECT_EQ(response.captured().currency_code(), "EUR");
  EXPECT_EQ(response.captured().amount_minor(), 0);
  EXPECT_EQ(response.gateway_reference(), SimulatedGateway::ReferenceFor("h-1"));
  EXPECT_EQ(response.version(), 2);
  EXPECT_GT(response.create_time().seconds(), 0);

  v1::CapturePaymentRequest capture;
  capture.set_request_id("h-cap");
  capture.set_payment_id(response.payment_id());
  v1::Payment captured;
  grpc::ServerContext capture_context;
  status = handler.CapturePayment(&capture_context, &capture, &captured);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(captured.status(), v1::PAYMENT_STATUS_CAPTURED);
  EXPECT_EQ(captured.captured().amount_minor(), 4200);
}

TEST_F(PaymentServiceTest, HandlerMapsDomainErrorsToGrpcCodes) {
  PaymentServiceHandler handler(&service_);
  grpc::ServerContext context;
  v1::GetPaymentRequest get;
  get.set_payment_id("0190a6c4-0000-7000-8000-000000000000");
  v1::Payment response;
  EXPECT_EQ(handler.GetPayment(&context, &get, &response).error_code(), grpc::NOT_FOUND);

  v1::AuthorizePaymentRequest bad;
  bad.set_request_id("h-bad");
  bad.set_order_id("order-h");
  bad.set_payment_token("tok_approve");  // No amount.
  EXPECT_EQ(handler.AuthorizePayment(&context, &bad, &response).error_code(),
            grpc::INVALID_ARGUMENT);

  Payment p = Captured("h-2");
  v1::VoidPaymentRequest void_request;
  void_request.set_request_id("h-void");
  void_request.set_payment_id(p.id);
  EXPECT_EQ(handler.VoidPayment(&context, &void_request, &response).error_code(),
            grpc::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace order_platform::payments
