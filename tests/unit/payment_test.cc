// The payment entity: status names, the state machine with its amount rules, request validation
// and request fingerprints.
#include "services/payments/payment.h"

#include <gtest/gtest.h>

#include "services/common/errors.h"
#include "services/common/ids.h"

namespace order_platform::payments {
namespace {

AuthorizeRequest ValidRequest() {
  return AuthorizeRequest{"req-1", "order-1", Money{"USD", 1000}, "tok_approve"};
}

Payment PaymentIn(PaymentStatus status, int64_t amount = 1000, int64_t captured = 0,
                  int64_t refunded = 0) {
  absl::StatusOr<Payment> payment = MakePendingPayment(ValidRequest());
  EXPECT_TRUE(payment.ok()) << payment.status();
  payment->amount.minor = amount;
  payment->status = status;
  payment->captured_minor = captured;
  payment->refunded_minor = refunded;
  return *payment;
}

Payment Captured(int64_t captured, int64_t refunded = 0) {
  return PaymentIn(refunded == 0 ? PaymentStatus::kCaptured : PaymentStatus::kPartiallyRefunded,
                   1000, captured, refunded);
}

// ---- names ---------------------------------------------------------------------------------

TEST(PaymentStatusTest, NamesRoundTripThroughParse) {
  for (PaymentStatus s :
       {PaymentStatus::kPending, PaymentStatus::kAuthorized, PaymentStatus::kDeclined,
        PaymentStatus::kCaptured, PaymentStatus::kVoided, PaymentStatus::kPartiallyRefunded,
        PaymentStatus::kRefunded}) {
    EXPECT_EQ(ParsePaymentStatus(PaymentStatusName(s)), s);
  }
  EXPECT_STREQ(PaymentStatusName(PaymentStatus::kPartiallyRefunded), "partially_refunded");
  EXPECT_EQ(ParsePaymentStatus("settled"), std::nullopt);
}

TEST(PaymentStatusTest, DeclinedVoidedAndRefundedAreTerminal) {
  EXPECT_TRUE(IsTerminal(PaymentStatus::kDeclined));
  EXPECT_TRUE(IsTerminal(PaymentStatus::kVoided));
  EXPECT_TRUE(IsTerminal(PaymentStatus::kRefunded));
  EXPECT_FALSE(IsTerminal(PaymentStatus::kPending));
  EXPECT_FALSE(IsTerminal(PaymentStatus::kAuthorized));
  EXPECT_FALSE(IsTerminal(PaymentStatus::kCaptured));
  EXPECT_FALSE(IsTerminal(PaymentStatus::kPartiallyRefunded));
}

TEST(OperationKindTest, NamesRoundTripThroughParse) {
  for (OperationKind k : {OperationKind::kCapture, OperationKind::kVoid, OperationKind::kRefund}) {
    EXPECT_EQ(ParseOperationKind(OperationKindName(k)), k);
  }
  EXPECT_EQ(ParseOperationKind("authorize"), std::nullopt);
}

// ---- authorization ---------------------------------------------------------------------------

TEST(PaymentTest, MakePendingPaymentBuildsPendingPaymentWithUuidAndFingerprint) {
  absl::StatusOr<Payment> payment = MakePendingPayment(ValidRequest());
  ASSERT_TRUE(payment.ok()) << payment.status();
  EXPECT_TRUE(IsCanonicalUuid(payment->id));
  EXPECT_EQ(payment->status, PaymentStatus::kPending);
  EXPECT_EQ(payment->order_id, "order-1");
  EXPECT_EQ(payment->request_id, "req-1");
  EXPECT_EQ(payment->amount, (Money{"USD", 1000}));
  EXPECT_EQ(payment->captured(), (Money{"USD", 0}));
  EXPECT_EQ(payment->request_fingerprint, AuthorizeFingerprint(ValidRequest()));
  EXPECT_EQ(payment->version, 1);
}

TEST(PaymentTest, PendingPaymentCanBeAuthorizedWithReference) {
  Payment p = PaymentIn(PaymentStatus::kPending);
  ASSERT_TRUE(p.MarkAuthorized("sim_1").ok());
  EXPECT_EQ(p.status, PaymentStatus::kAuthorized);
  EXPECT_EQ(p.gateway_reference, "sim_1");
}

TEST(PaymentTest, PendingPaymentCanBeDeclinedWithReason) {
  Payment p = PaymentIn(PaymentStatus::kPending);
  ASSERT_TRUE(p.MarkDeclined("card declined").ok());
  EXPECT_EQ(p.status, PaymentStatus::kDeclined);
  EXPECT_EQ(p.decline_reason, "card declined");
}

TEST(PaymentTest, AuthorizingAnythingButPendingIsFailedPrecondition) {
  for (PaymentStatus s : {PaymentStatus::kAuthorized, PaymentStatus::kDeclined,
                          PaymentStatus::kCaptured, PaymentStatus::kVoided}) {
    Payment p = PaymentIn(s);
    EXPECT_EQ(p.MarkAuthorized("x").code(), absl::StatusCode::kFailedPrecondition)
        << PaymentStatusName(s);
    EXPECT_EQ(p.MarkDeclined("x").code(), absl::StatusCode::kFailedPrecondition)
        << PaymentStatusName(s);
    EXPECT_EQ(p.status, s);
  }
}

// ---- capture ---------------------------------------------------------------------------------

TEST(PaymentTest, CaptureOfZeroCapturesTheWholeAuthorizedAmount) {
  Payment p = PaymentIn(PaymentStatus::kAuthorized);
  ASSERT_TRUE(p.Capture(0).ok());
  EXPECT_EQ(p.status, PaymentStatus::kCaptured);
  EXPECT_EQ(p.captured_minor, 1000);
}

TEST(PaymentTest, PartialCaptureTakesOnlyThatAmount) {
  Payment p = PaymentIn(PaymentStatus::kAuthorized);
  ASSERT_TRUE(p.Capture(400).ok());
  EXPECT_EQ(p.status, PaymentStatus::kCaptured);
  EXPECT_EQ(p.captured(), (Money{"USD", 400}));
}

TEST(PaymentTest, CaptureOfExactlyTheAuthorizedAmountSucceeds) {
  Payment p = PaymentIn(PaymentStatus::kAuthorized);
  ASSERT_TRUE(p.Capture(1000).ok());
  EXPECT_EQ(p.captured_minor, 1000);
}

TEST(PaymentTest, CaptureAboveAuthorizedAmountIsFailedPrecondition) {
  Payment p = PaymentIn(PaymentStatus::kAuthorized);
  absl::Status status = p.Capture(1001);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("USD 10.00"), absl::string_view::npos) << status;
  EXPECT_EQ(p.status, PaymentStatus::kAuthorized);
  EXPECT_EQ(p.captured_minor, 0);
}

TEST(PaymentTest, NegativeCaptureIsInvalidArgumentOnAmount) {
  Payment p = PaymentIn(PaymentStatus::kAuthorized);
  absl::Status status = p.Capture(-1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "amount.amount_minor");
}

TEST(PaymentTest, CaptureOfPaymentThatIsNotAuthorizedIsFailedPrecondition) {
  for (PaymentStatus s :
       {PaymentStatus::kPending, PaymentStatus::kDeclined, PaymentStatus::kCaptured,
        PaymentStatus::kVoided, PaymentStatus::kPartiallyRefunded, PaymentStatus::kRefunded}) {
    Payment p = PaymentIn(s);
    absl::Status status = p.Capture(0);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << PaymentStatusName(s);
    EXPECT_NE(status.message().find(PaymentStatusName(s)), absl::string_view::npos) << status;
    EXPECT_EQ(p.status, s);
  }
}

// ---- void ------------------------------------------------------------------------------------

TEST(PaymentTest, VoidOfAuthorizedPaymentReleasesTheHold) {
  Payment p = PaymentIn(PaymentStatus::kAuthorized);
  EXPECT_FALSE(p.VoidIsNoOp());
  ASSERT_TRUE(p.Void().ok());
  EXPECT_EQ(p.status, PaymentStatus::kVoided);
}

TEST(PaymentTest, VoidOfPendingPaymentAbandonsTheAuthorization) {
  Payment p = PaymentIn(PaymentStatus::kPending);
  ASSERT_TRUE(p.Void().ok());
  EXPECT_EQ(p.status, PaymentStatus::kVoided);
}

TEST(PaymentTest, VoidOfVoidedOrDeclinedPaymentIsNoOp) {
  for (PaymentStatus s : {PaymentStatus::kVoided, PaymentStatus::kDeclined}) {
    Payment p = PaymentIn(s);
    EXPECT_TRUE(p.VoidIsNoOp());
    EXPECT_TRUE(p.Void().ok()) << PaymentStatusName(s);
    EXPECT_EQ(p.status, s);
  }
}

TEST(PaymentTest, VoidOfCapturedPaymentIsFailedPrecondition) {
  for (PaymentStatus s :
       {PaymentStatus::kCaptured, PaymentStatus::kPartiallyRefunded, PaymentStatus::kRefunded}) {
    Payment p = PaymentIn(s, 1000, 1000, s == PaymentStatus::kCaptured ? 0 : 500);
    absl::Status status = p.Void();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << PaymentStatusName(s);
    EXPECT_NE(status.message().find("refund"), absl::string_view::npos) << status;
    EXPECT_EQ(p.status, s);
  }
}

// ---- refund ----------------------------------------------------------------------------------

TEST(PaymentTest, RefundOfZeroRefundsEverythingCaptured) {
  Payment p = Captured(800);
  ASSERT_TRUE(p.Refund(0).ok());
  EXPECT_EQ(p.status, PaymentStatus::kRefunded);
  EXPECT_EQ(p.refunded_minor, 800);
}

TEST(PaymentTest, PartialRefundLeavesPaymentPartiallyRefunded) {
  Payment p = Captured(800);
  ASSERT_TRUE(p.Refund(300).ok());
  EXPECT_EQ(p.status, PaymentStatus::kPartiallyRefunded);
  EXPECT_EQ(p.refunded(), (Money{"USD", 300}));
}

TEST(PaymentTest, RefundsAddUpToTheCapturedAmountAndThenRefunded) {
  Payment p = Captured(800);
  ASSERT_TRUE(p.Refund(300).ok());
  ASSERT_TRUE(p.Refund(200).ok());
  EXPECT_EQ(p.status, PaymentStatus::kPartiallyRefunded);
  ASSERT_TRUE(p.Refund(300).ok());
  EXPECT_EQ(p.status, PaymentStatus::kRefunded);
  EXPECT_EQ(p.refunded_minor, 800);
}

TEST(PaymentTest, RefundOfZeroAfterPartialRefundRefundsTheRest) {
  Payment p = Captured(800, 300);
  ASSERT_TRUE(p.Refund(0).ok());
  EXPECT_EQ(p.status, PaymentStatus::kRefunded);
  EXPECT_EQ(p.refunded_minor, 800);
}

TEST(PaymentTest, RefundAboveCapturedAmountIsFailedPrecondition) {
  Payment p = Captured(800);
  absl::Status status = p.Refund(801);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.status, PaymentStatus::kCaptured);
  EXPECT_EQ(p.refunded_minor, 0);
}

TEST(PaymentTest, RefundAboveWhatIsLeftIsFailedPrecondition) {
  Payment p = Captured(800, 500);
  absl::Status status = p.Refund(301);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("USD 3.00"), absl::string_view::npos) << status;
  EXPECT_EQ(p.refunded_minor, 500);
}

TEST(PaymentTest, RefundOfFullyRefundedPaymentIsFailedPrecondition) {
  Payment p = PaymentIn(PaymentStatus::kRefunded, 1000, 1000, 1000);
  EXPECT_EQ(p.Refund(0).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PaymentTest, RefundOfPaymentThatWasNeverCapturedIsFailedPrecondition) {
  for (PaymentStatus s : {PaymentStatus::kPending, PaymentStatus::kAuthorized,
                          PaymentStatus::kDeclined, PaymentStatus::kVoided}) {
    Payment p = PaymentIn(s);
    EXPECT_EQ(p.Refund(0).code(), absl::StatusCode::kFailedPrecondition) << PaymentStatusName(s);
    EXPECT_EQ(p.status, s);
  }
}

TEST(PaymentTest, NegativeRefundIsInvalidArgumentOnAmount) {
  Payment p = Captured(800);
  absl::Status status = p.Refund(-5);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "amount.amount_minor");
}

// ---- request validation ----------------------------------------------------------------------

struct BadRequestCase {
  const char* name;
  void (*mutate)(AuthorizeRequest&);
  const char* field;
};

class AuthorizeValidationTest : public ::testing::TestWithParam<BadRequestCase> {};

TEST_P(AuthorizeValidationTest, BadRequestIsInvalidArgumentNamingTheField) {
  AuthorizeRequest request = ValidRequest();
  GetParam().mutate(request);
  absl::Status status = ValidateAuthorizeRequest(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(FieldOf(status), GetParam().field) << status;
  EXPECT_EQ(MakePendingPayment(request).status(), status);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, AuthorizeValidationTest,
    ::testing::Values(
        BadRequestCase{"MissingRequestId", [](AuthorizeRequest& r) { r.request_id.clear(); },
                       "request_id"},
        BadRequestCase{"LongRequestId",
                       [](AuthorizeRequest& r) { r.request_id = std::string(129, 'r'); },
                       "request_id"},
        BadRequestCase{"MissingOrderId", [](AuthorizeRequest& r) { r.order_id.clear(); },
                       "order_id"},
        BadRequestCase{"LongOrderId",
                       [](AuthorizeRequest& r) { r.order_id = std::string(65, 'o'); }, "order_id"},
        BadRequestCase{"OrderIdWithSpace", [](AuthorizeRequest& r) { r.order_id = "order 1"; },
                       "order_id"},
        BadRequestCase{"ZeroAmount", [](AuthorizeRequest& r) { r.amount.minor = 0; },
                       "amount.amount_minor"},
        BadRequestCase{"NegativeAmount", [](AuthorizeRequest& r) { r.amount.minor = -1; },
                       "amount.amount_minor"},
        BadRequestCase{"MissingCurrency", [](AuthorizeRequest& r) { r.amount.currency.clear(); },
                       "amount.currency_code"},
        BadRequestCase{"UnknownCurrency", [](AuthorizeRequest& r) { r.amount.currency = "XXX"; },
                       "amount.currency_code"},
        BadRequestCase{"MissingToken", [](AuthorizeRequest& r) { r.payment_token.clear(); },
                       "payment_token"},
        BadRequestCase{"LongToken",
                       [](AuthorizeRequest& r) { r.payment_token = std::string(129, 't'); },
                       "payment_token"}),
    [](const ::testing::TestParamInfo<BadRequestCase>& info) { return info.param.name; });

TEST(AuthorizeValidationTest, LongestAllowedFieldsAreValid) {
  AuthorizeRequest request = ValidRequest();
  request.request_id = std::string(128, 'r');
  request.order_id = std::string(64, 'o');
  request.payment_token = std::string(128, 't');
  EXPECT_TRUE(ValidateAuthorizeRequest(request).ok());
}

TEST(OperationAmountTest, UnsetOrZeroAmountMeansTheWholeAmount) {
  const Payment p = PaymentIn(PaymentStatus::kAuthorized);
  EXPECT_EQ(OperationAmountMinor(p, Money{}).value(), 0);
  EXPECT_EQ(OperationAmountMinor(p, Money{"USD", 0}).value(), 0);
  EXPECT_EQ(OperationAmountMinor(p, Money{"USD", 250}).value(), 250);
}

TEST(OperationAmountTest, AmountWithoutCurrencyIsInvalidArgument) {
  absl::Status status = ValidateOperationAmount(Money{"", 100});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "amount.currency_code");
}

TEST(OperationAmountTest, NegativeAmountIsInvalidArgument) {
  absl::Status status = ValidateOperationAmount(Money{"USD", -1});
  EXPECT_EQ(FieldOf(status), "amount.amount_minor");
}

TEST(OperationAmountTest, AmountInAnotherCurrencyThanThePaymentIsInvalidArgument) {
  const Payment p = PaymentIn(PaymentStatus::kAuthorized);
  absl::StatusOr<int64_t> minor = OperationAmountMinor(p, Money{"EUR", 100});
  EXPECT_EQ(minor.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(minor.status()), "amount.currency_code");
}

// ---- fingerprints ----------------------------------------------------------------------------

TEST(FingerprintTest, AuthorizeFingerprintChangesWithEveryField) {
  const uint64_t base = AuthorizeFingerprint(ValidRequest());
  EXPECT_EQ(AuthorizeFingerprint(ValidRequest()), base);
  AuthorizeRequest r = ValidRequest();
  r.request_id = "other";  // The key itself is not part of the fingerprint.
  EXPECT_EQ(AuthorizeFingerprint(r), base);
  r = ValidRequest();
  r.order_id = "order-2";
  EXPECT_NE(AuthorizeFingerprint(r), base);
  r = ValidRequest();
  r.amount.minor = 1001;
  EXPECT_NE(AuthorizeFingerprint(r), base);
  r = ValidRequest();
  r.amount.currency = "EUR";
  EXPECT_NE(AuthorizeFingerprint(r), base);
  r = ValidRequest();
  r.payment_token = "tok_decline";
  EXPECT_NE(AuthorizeFingerprint(r), base);
}

TEST(FingerprintTest, OperationFingerprintsDistinguishKindPaymentAmountAndReason) {
  EXPECT_EQ(CaptureFingerprint("p1", Money{}), CaptureFingerprint("p1", Money{"USD", 0}));
  EXPECT_NE(CaptureFingerprint("p1", Money{}), CaptureFingerprint("p1", Money{"USD", 5}));
  EXPECT_NE(CaptureFingerprint("p1", Money{}), CaptureFingerprint("p2", Money{}));
  EXPECT_NE(CaptureFingerprint("p1", Money{}), RefundFingerprint("p1", Money{}, ""));
  EXPECT_NE(VoidFingerprint("p1"), VoidFingerprint("p2"));
  EXPECT_NE(RefundFingerprint("p1", Money{}, "a"), RefundFingerprint("p1", Money{}, "b"));
}

}  // namespace
}  // namespace order_platform::payments
