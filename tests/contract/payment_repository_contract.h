// The PaymentRepository contract: one typed test suite that every implementation must pass.
// Instantiate it with a type whose static `Make()` returns a fresh, empty PaymentRepositoryEnv
// (see payment_repository_memory_test.cc and payment_repository_pg_test.cc).
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/common/errors.h"
#include "services/payments/payment.h"
#include "services/payments/payment_repository.h"

namespace order_platform::payments {

// Owns a repository (and whatever backs it) for one test.
class PaymentRepositoryEnv {
 public:
  virtual ~PaymentRepositoryEnv() = default;
  virtual PaymentRepository& repository() = 0;
};

inline constexpr char kUnknownPaymentId[] = "0190a6c4-0000-7000-8000-000000000000";

inline Payment SamplePayment(const std::string& request_id, const std::string& order_id = "o-1",
                             int64_t amount_minor = 1000) {
  absl::StatusOr<Payment> payment = MakePendingPayment(
      AuthorizeRequest{request_id, order_id, Money{"USD", amount_minor}, "tok_approve"});
  EXPECT_TRUE(payment.ok()) << payment.status();
  return *payment;
}

inline PaymentOperation SampleOperation(const std::string& request_id, const Payment& payment,
                                        OperationKind kind, int64_t amount_minor) {
  PaymentOperation op;
  op.request_id = request_id;
  op.payment_id = payment.id;
  op.kind = kind;
  op.amount_minor = amount_minor;
  op.request_fingerprint = CaptureFingerprint(payment.id, Money{"USD", amount_minor});
  op.reason = kind == OperationKind::kRefund ? "damaged in transit" : "";
  return op;
}

template <typename Impl>
class PaymentRepositoryContractTest : public ::testing::Test {
 protected:
  void SetUp() override { env_ = Impl::Make(); }
  PaymentRepository& repo() { return env_->repository(); }

  // Stores `payment` and moves it to AUTHORIZED; returns the stored payment.
  Payment CreateAuthorized(const Payment& payment) {
    absl::StatusOr<CreatePaymentResult> created = repo().CreatePending(payment);
    EXPECT_TRUE(created.ok()) << created.status();
    absl::StatusOr<Payment> authorized =
        repo().Update(created.ok() ? created->payment : payment,
                      [](Payment& p) { return p.MarkAuthorized("sim_ref"); });
    EXPECT_TRUE(authorized.ok()) << authorized.status();
    return authorized.ok() ? *authorized : payment;
  }

 private:
  std::unique_ptr<PaymentRepositoryEnv> env_;
};

TYPED_TEST_SUITE_P(PaymentRepositoryContractTest);

TYPED_TEST_P(PaymentRepositoryContractTest, CreatePendingThenGetReturnsEveryField) {
  const Payment payment = SamplePayment("req-1", "order-42", 1999);
  absl::StatusOr<CreatePaymentResult> created = this->repo().CreatePending(payment);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->payment.version, 1);
  EXPECT_NE(created->payment.create_time, absl::InfinitePast());

  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, payment.id);
  EXPECT_EQ(got->order_id, "order-42");
  EXPECT_EQ(got->request_id, "req-1");
  EXPECT_EQ(got->request_fingerprint, payment.request_fingerprint);
  EXPECT_EQ(got->payment_token, "tok_approve");
  EXPECT_EQ(got->amount, (Money{"USD", 1999}));
  EXPECT_EQ(got->captured_minor, 0);
  EXPECT_EQ(got->refunded_minor, 0);
  EXPECT_EQ(got->status, PaymentStatus::kPending);
  EXPECT_EQ(got->decline_reason, "");
  EXPECT_EQ(got->gateway_reference, "");
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->create_time, created->payment.create_time);
  EXPECT_EQ(got->update_time, created->payment.update_time);
}

TYPED_TEST_P(PaymentRepositoryContractTest, CreatePendingWithSameRequestIdReturnsFirstPayment) {
  const Payment first = SamplePayment("req-dup", "o-1", 1000);
  ASSERT_TRUE(this->repo().CreatePending(first).ok());
  const Payment second = SamplePayment("req-dup", "o-2", 5000);  // Different id and request.
  absl::StatusOr<CreatePaymentResult> replay = this->repo().CreatePending(second);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->created);
  EXPECT_EQ(replay->payment.id, first.id);
  EXPECT_EQ(replay->payment.order_id, "o-1");
  EXPECT_EQ(replay->payment.request_fingerprint, first.request_fingerprint);
  EXPECT_EQ(this->repo().Get(second.id).status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ConcurrentDuplicateCreatePendingYieldsOnePayment) {
  constexpr int kThreads = 8;
  std::vector<Payment> candidates;
  for (int i = 0; i < kThreads; ++i) candidates.push_back(SamplePayment("req-race"));
  std::atomic<int> created{0};
  std::set<std::string> ids;
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<CreatePaymentResult> r = this->repo().CreatePending(candidates[i]);
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->created) created++;
      absl::MutexLock lock(&mu);
      ids.insert(r->payment.id);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(ids.size(), 1u);
  PaymentListQuery all;
  absl::StatusOr<PaymentPage> page = this->repo().List(all);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->payments.size(), 1u);
}

TYPED_TEST_P(PaymentRepositoryContractTest, GetUnknownIsNotFound) {
  EXPECT_EQ(this->repo().Get(kUnknownPaymentId).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->repo().GetOperation("no-such-request").status().code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST_P(PaymentRepositoryContractTest, UpdateSavesChangeAndBumpsVersion) {
  const Payment payment = SamplePayment("u-1");
  absl::StatusOr<CreatePaymentResult> created = this->repo().CreatePending(payment);
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<Payment> updated = this->repo().Update(
      created->payment, [](Payment& p) { return p.MarkDeclined("card declined"); });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->status, PaymentStatus::kDeclined);
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, PaymentStatus::kDeclined);
  EXPECT_EQ(got->decline_reason, "card declined");
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->update_time, updated->update_time);
  EXPECT_GE(got->update_time, got->create_time);
}

TYPED_TEST_P(PaymentRepositoryContractTest, UpdateSavesAmountsAndReference) {
  Payment payment = this->CreateAuthorized(SamplePayment("u-amounts"));
  EXPECT_EQ(payment.gateway_reference, "sim_ref");
  absl::StatusOr<Payment> updated = this->repo().Update(payment, [](Payment& p) {
    OP_RETURN_IF_ERROR(p.Capture(600));
    return p.Refund(100);
  });
  ASSERT_TRUE(updated.ok()) << updated.status();
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, PaymentStatus::kPartiallyRefunded);
  EXPECT_EQ(got->captured_minor, 600);
  EXPECT_EQ(got->refunded_minor, 100);
  EXPECT_EQ(got->gateway_reference, "sim_ref");
  EXPECT_EQ(got->version, 3);
}

TYPED_TEST_P(PaymentRepositoryContractTest, UpdateClosureErrorRollsBack) {
  const Payment payment = SamplePayment("u-2");
  absl::StatusOr<CreatePaymentResult> created = this->repo().CreatePending(payment);
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<Payment> updated = this->repo().Update(created->payment, [](Payment& p) {
    p.decline_reason = "half-done";
    p.status = PaymentStatus::kDeclined;
    return absl::FailedPreconditionError("refused");
  });
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->status, PaymentStatus::kPending);
  EXPECT_EQ(got->decline_reason, "");
}

TYPED_TEST_P(PaymentRepositoryContractTest, UpdateUnknownIsNotFound) {
  Payment ghost = SamplePayment("never-stored");
  ghost.id = kUnknownPaymentId;
  absl::StatusOr<Payment> updated =
      this->repo().Update(ghost, [](Payment&) { return absl::OkStatus(); });
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ConcurrentUpdatesAreSerialized) {
  const Payment payment = SamplePayment("u-3");
  ASSERT_TRUE(this->repo().CreatePending(payment).ok());
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      // All but the first to save hold a stale read.
      absl::StatusOr<Payment> r = this->repo().Update(payment, [](Payment& p) {
        p.decline_reason += "x";
        return absl::OkStatus();
      });
      EXPECT_TRUE(r.ok()) << r.status();
    });
  }
  for (auto& t : threads) t.join();
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, 1 + kThreads);
  EXPECT_EQ(got->decline_reason, std::string(kThreads, 'x'));  // No lost update.
}

TYPED_TEST_P(PaymentRepositoryContractTest, ApplyOperationSavesPaymentAndRecordsOperation) {
  const Payment payment = this->CreateAuthorized(SamplePayment("a-1"));
  const PaymentOperation op = SampleOperation("cap-1", payment, OperationKind::kCapture, 700);
  absl::StatusOr<ApplyOperationResult> applied =
      this->repo().ApplyOperation(op, payment, [](Payment& p) { return p.Capture(700); });
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(applied->applied);
  EXPECT_EQ(applied->payment.status, PaymentStatus::kCaptured);
  EXPECT_EQ(applied->payment.captured_minor, 700);
  EXPECT_EQ(applied->payment.version, payment.version + 1);
  EXPECT_NE(applied->operation.create_time, absl::InfinitePast());

  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, PaymentStatus::kCaptured);
  EXPECT_EQ(got->captured_minor, 700);

  absl::StatusOr<PaymentOperation> recorded = this->repo().GetOperation("cap-1");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->request_id, "cap-1");
  EXPECT_EQ(recorded->payment_id, payment.id);
  EXPECT_EQ(recorded->kind, OperationKind::kCapture);
  EXPECT_EQ(recorded->amount_minor, 700);
  EXPECT_EQ(recorded->request_fingerprint, op.request_fingerprint);
  EXPECT_EQ(recorded->create_time, applied->operation.create_time);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ApplyOperationRecordsRefundReason) {
  Payment payment = this->CreateAuthorized(SamplePayment("a-reason"));
  ASSERT_TRUE(this->repo()
                  .ApplyOperation(SampleOperation("cap-r", payment, OperationKind::kCapture, 0),
                                  payment, [](Payment& p) { return p.Capture(0); })
                  .ok());
  absl::StatusOr<ApplyOperationResult> refunded =
      // `payment` is stale now (the capture moved it on): the refund applies to the stored one.
      this->repo().ApplyOperation(SampleOperation("ref-r", payment, OperationKind::kRefund, 250),
                                  payment, [](Payment& p) { return p.Refund(250); });
  ASSERT_TRUE(refunded.ok()) << refunded.status();
  EXPECT_EQ(refunded->payment.status, PaymentStatus::kPartiallyRefunded);
  absl::StatusOr<PaymentOperation> recorded = this->repo().GetOperation("ref-r");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->kind, OperationKind::kRefund);
  EXPECT_EQ(recorded->reason, "damaged in transit");
  EXPECT_EQ(recorded->amount_minor, 250);
}

TYPED_TEST_P(PaymentRepositoryContractTest, OperationReplayChangesNothing) {
  const Payment payment = this->CreateAuthorized(SamplePayment("a-2"));
  const PaymentOperation op = SampleOperation("cap-2", payment, OperationKind::kCapture, 400);
  absl::StatusOr<ApplyOperationResult> first =
      this->repo().ApplyOperation(op, payment, [](Payment& p) { return p.Capture(400); });
  ASSERT_TRUE(first.ok()) << first.status();

  // The replay carries another fingerprint and amount, and a read of the payment as it is now
  // (taken after the record); the first record wins and what mutate did is not kept.
  PaymentOperation again = op;
  again.amount_minor = 999;
  again.request_fingerprint = op.request_fingerprint + 1;
  absl::StatusOr<ApplyOperationResult> replay =
      this->repo().ApplyOperation(again, first->payment, [&](Payment& p) { return p.Void(); });
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->applied);
  EXPECT_EQ(replay->operation.amount_minor, 400);
  EXPECT_EQ(replay->operation.request_fingerprint, op.request_fingerprint);
  EXPECT_EQ(replay->payment.id, payment.id);
  EXPECT_EQ(replay->payment.version, first->payment.version);
  EXPECT_EQ(replay->payment.status, PaymentStatus::kCaptured);

  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, first->payment.version);
  EXPECT_EQ(got->captured_minor, 400);
}

TYPED_TEST_P(PaymentRepositoryContractTest, OperationReplayForAnotherPaymentReturnsRecordedOne) {
  const Payment a = this->CreateAuthorized(SamplePayment("a-3"));
  const Payment b = this->CreateAuthorized(SamplePayment("a-4"));
  ASSERT_TRUE(this->repo()
                  .ApplyOperation(SampleOperation("void-x", a, OperationKind::kVoid, 0), a,
                                  [](Payment& p) { return p.Void(); })
                  .ok());
  absl::StatusOr<ApplyOperationResult> replay =
      this->repo().ApplyOperation(SampleOperation("void-x", b, OperationKind::kVoid, 0), b,
                                  [](Payment& p) { return p.Void(); });
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->applied);
  EXPECT_EQ(replay->operation.payment_id, a.id);
  EXPECT_EQ(replay->payment.id, a.id);
  absl::StatusOr<Payment> got_b = this->repo().Get(b.id);
  ASSERT_TRUE(got_b.ok()) << got_b.status();
  EXPECT_EQ(got_b->status, PaymentStatus::kAuthorized);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ApplyOperationClosureErrorRollsBackPaymentAndRecord) {
  const Payment payment = this->CreateAuthorized(SamplePayment("a-5"));
  const PaymentOperation op = SampleOperation("cap-5", payment, OperationKind::kCapture, 5000);
  absl::StatusOr<ApplyOperationResult> result =
      this->repo().ApplyOperation(op, payment, [](Payment& p) {
    p.decline_reason = "half-done";
    return p.Capture(5000);  // Above the authorized amount.
  });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->repo().GetOperation("cap-5").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, payment.version);
  EXPECT_EQ(got->status, PaymentStatus::kAuthorized);
  EXPECT_EQ(got->decline_reason, "");

  // Nothing was recorded, so the request_id can still be applied.
  absl::StatusOr<ApplyOperationResult> retry =
      this->repo().ApplyOperation(op, payment, [](Payment& p) { return p.Capture(0); });
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->applied);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ApplyOperationOnUnknownPaymentIsNotFound) {
  Payment ghost = SamplePayment("never-stored");
  ghost.id = kUnknownPaymentId;
  absl::StatusOr<ApplyOperationResult> result =
      this->repo().ApplyOperation(SampleOperation("void-ghost", ghost, OperationKind::kVoid, 0),
                                  ghost, [](Payment& p) { return p.Void(); });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->repo().GetOperation("void-ghost").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ConcurrentDuplicateOperationsApplyOnce) {
  const Payment payment = this->CreateAuthorized(SamplePayment("a-6", "o-6", 10000));
  const PaymentOperation op = SampleOperation("cap-race", payment, OperationKind::kCapture, 0);
  constexpr int kThreads = 8;
  std::atomic<int> applied{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<ApplyOperationResult> r =
          this->repo().ApplyOperation(op, payment, [&](Payment& p) { return p.Capture(0); });
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->payment.status, PaymentStatus::kCaptured);
      if (r->applied) applied++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(applied.load(), 1);
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, payment.version + 1);
}

// A request_id names one request of one kind: an authorization's request_id cannot be recorded
// as an operation, nor an operation's used to create a payment.
TYPED_TEST_P(PaymentRepositoryContractTest, RequestIdsAreUniqueAcrossAuthorizationsAndOperations) {
  const Payment payment = this->CreateAuthorized(SamplePayment("shared-auth"));
  EXPECT_EQ(this->repo().GetOperation("shared-auth").status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<ApplyOperationResult> capture =
      this->repo().ApplyOperation(SampleOperation("shared-auth", payment, OperationKind::kCapture, 0),
                                  payment, [&](Payment& p) { return p.Capture(0); });
  EXPECT_EQ(capture.status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, payment.version);
  EXPECT_EQ(got->status, PaymentStatus::kAuthorized);

  const PaymentOperation capture_op =
      SampleOperation("shared-cap", payment, OperationKind::kCapture, 0);
  ASSERT_TRUE(
      this->repo().ApplyOperation(capture_op, payment, [](Payment& p) { return p.Capture(0); }).ok());
  const Payment other = SamplePayment("shared-cap", "o-other");
  EXPECT_EQ(this->repo().CreatePending(other).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(this->repo().Get(other.id).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<PaymentOperation> recorded = this->repo().GetOperation("shared-cap");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->kind, OperationKind::kCapture);
  EXPECT_EQ(recorded->payment_id, payment.id);
}

// Racing authorizations and captures under one request_id: exactly one of them is recorded; the
// others replay it (same kind) or get ALREADY_EXISTS (other kind).
TYPED_TEST_P(PaymentRepositoryContractTest, ConcurrentAuthorizationAndOperationShareNoRequestId) {
  const Payment payment = this->CreateAuthorized(SamplePayment("a-7", "o-7", 10000));
  constexpr int kThreads = 8;
  std::vector<Payment> candidates;
  for (int i = 0; i < kThreads; ++i) candidates.push_back(SamplePayment("race-shared", "o-new"));
  const PaymentOperation op = SampleOperation("race-shared", payment, OperationKind::kCapture, 0);
  std::atomic<int> created{0};
  std::atomic<int> applied{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      absl::Status status;
      if (i % 2 == 0) {
        absl::StatusOr<CreatePaymentResult> r = this->repo().CreatePending(candidates[i]);
        if (r.ok() && r->created) created++;
        status = r.status();
      } else {
        absl::StatusOr<ApplyOperationResult> r =
            this->repo().ApplyOperation(op, payment, [](Payment& p) { return p.Capture(0); });
        if (r.ok() && r->applied) applied++;
        status = r.status();
      }
      EXPECT_TRUE(status.ok() || absl::IsAlreadyExists(status)) << status;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load() + applied.load(), 1);
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status,
            applied.load() == 1 ? PaymentStatus::kCaptured : PaymentStatus::kAuthorized);
  absl::StatusOr<PaymentOperation> recorded = this->repo().GetOperation("race-shared");
  if (applied.load() == 1) {
    EXPECT_TRUE(recorded.ok()) << recorded.status();
  } else {
    EXPECT_EQ(recorded.status().code(), absl::StatusCode::kAlreadyExists);
  }
}

TYPED_TEST_P(PaymentRepositoryContractTest, GetForOperationWithNothingRecordedReturnsThePayment) {
  const Payment payment = this->CreateAuthorized(SamplePayment("g-1", "o-g1", 1500));
  absl::StatusOr<PaymentForOperation> found = this->repo().GetForOperation(payment.id, "cap-g1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->recorded.has_value());
  absl::StatusOr<Payment> got = this->repo().Get(payment.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(found->payment.id, payment.id);
  EXPECT_EQ(found->payment.order_id, "o-g1");
  EXPECT_EQ(found->payment.request_id, "g-1");
  EXPECT_EQ(found->payment.request_fingerprint, got->request_fingerprint);
  EXPECT_EQ(found->payment.payment_token, "tok_approve");
  EXPECT_EQ(found->payment.amount, (Money{"USD", 1500}));
  EXPECT_EQ(found->payment.status, PaymentStatus::kAuthorized);
  EXPECT_EQ(found->payment.gateway_reference, "sim_ref");
  EXPECT_EQ(found->payment.version, got->version);
  EXPECT_EQ(found->payment.create_time, got->create_time);
  EXPECT_EQ(found->payment.update_time, got->update_time);
  // A read: nothing was recorded.
  EXPECT_EQ(this->repo().GetOperation("cap-g1").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(PaymentRepositoryContractTest, GetForOperationReturnsRecordedOperationAndPaymentNow) {
  const Payment payment = this->CreateAuthorized(SamplePayment("g-2"));
  const PaymentOperation op = SampleOperation("cap-g2", payment, OperationKind::kCapture, 600);
  ASSERT_TRUE(
      this->repo().ApplyOperation(op, payment, [](Payment& p) { return p.Capture(600); }).ok());
  absl::StatusOr<ApplyOperationResult> refunded =
      this->repo().ApplyOperation(SampleOperation("ref-g2", payment, OperationKind::kRefund, 100),
                                  payment, [](Payment& p) { return p.Refund(100); });
  ASSERT_TRUE(refunded.ok()) << refunded.status();

  absl::StatusOr<PaymentForOperation> found = this->repo().GetForOperation(payment.id, "cap-g2");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->recorded.has_value());
  EXPECT_EQ(found->recorded->request_id, "cap-g2");
  EXPECT_EQ(found->recorded->payment_id, payment.id);
  EXPECT_EQ(found->recorded->kind, OperationKind::kCapture);
  EXPECT_EQ(found->recorded->amount_minor, 600);
  EXPECT_EQ(found->recorded->request_fingerprint, op.request_fingerprint);
  EXPECT_NE(found->recorded->create_time, absl::InfinitePast());
  // The payment as it is now, after the later refund too.
  EXPECT_EQ(found->payment.id, payment.id);
  EXPECT_EQ(found->payment.status, PaymentStatus::kPartiallyRefunded);
  EXPECT_EQ(found->payment.refunded_minor, 100);
  EXPECT_EQ(found->payment.version, refunded->payment.version);

  absl::StatusOr<PaymentForOperation> refund = this->repo().GetForOperation(payment.id, "ref-g2");
  ASSERT_TRUE(refund.ok()) << refund.status();
  ASSERT_TRUE(refund->recorded.has_value());
  EXPECT_EQ(refund->recorded->kind, OperationKind::kRefund);
  EXPECT_EQ(refund->recorded->reason, "damaged in transit");
}

// A request_id recorded for payment A, asked for with payment B (or a payment that does not
// exist): the answer is A's record and A as it is now, so the caller can replay or refuse it.
TYPED_TEST_P(PaymentRepositoryContractTest, GetForOperationReturnsAnotherPaymentsOperation) {
  const Payment a = this->CreateAuthorized(SamplePayment("g-3a"));
  const Payment b = this->CreateAuthorized(SamplePayment("g-3b"));
  ASSERT_TRUE(this->repo()
                  .ApplyOperation(SampleOperation("void-g3", a, OperationKind::kVoid, 0), a,
                                  [](Payment& p) { return p.Void(); })
                  .ok());
  for (const std::string& asked : {b.id, std::string(kUnknownPaymentId)}) {
    SCOPED_TRACE(asked);
    absl::StatusOr<PaymentForOperation> found = this->repo().GetForOperation(asked, "void-g3");
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->recorded.has_value());
    EXPECT_EQ(found->recorded->payment_id, a.id);
    EXPECT_EQ(found->recorded->kind, OperationKind::kVoid);
    EXPECT_EQ(found->payment.id, a.id);
    EXPECT_EQ(found->payment.status, PaymentStatus::kVoided);
  }
}

TYPED_TEST_P(PaymentRepositoryContractTest,
             GetForOperationUnderAnAuthorizationsRequestIdIsAlreadyExists) {
  const Payment payment = this->CreateAuthorized(SamplePayment("g-4"));
  const Payment other = this->CreateAuthorized(SamplePayment("g-4-other"));
  for (const std::string& asked : {payment.id, other.id, std::string(kUnknownPaymentId)}) {
    SCOPED_TRACE(asked);
    EXPECT_EQ(this->repo().GetForOperation(asked, "g-4").status().code(),
              absl::StatusCode::kAlreadyExists);
  }
}

TYPED_TEST_P(PaymentRepositoryContractTest, GetForOperationOnUnknownPaymentIsNotFound) {
  ASSERT_TRUE(this->repo().CreatePending(SamplePayment("g-5")).ok());
  EXPECT_EQ(this->repo().GetForOperation(kUnknownPaymentId, "cap-g5").status().code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST_P(PaymentRepositoryContractTest, ListPagesNewestFirstWithoutGapsOrDuplicates) {
  constexpr int kPayments = 23;
  for (int i = 0; i < kPayments; ++i) {
    ASSERT_TRUE(this->repo()
                    .CreatePending(SamplePayment(absl::StrCat("l-", i), i % 2 ? "o-a" : "o-b"))
                    .ok());
  }
  std::vector<Payment> all;
  PaymentListQuery query;
  query.page_size = 5;
  int pages = 0;
  for (; pages < 10; ++pages) {
    absl::StatusOr<PaymentPage> page = this->repo().List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->payments.size(), 5u);
    all.insert(all.end(), page->payments.begin(), page->payments.end());
    if (!page->next) break;
    query.after = page->next;
  }
  EXPECT_EQ(pages, 4);  // 5 + 5 + 5 + 5 + 3.
  ASSERT_EQ(all.size(), static_cast<size_t>(kPayments));
  std::set<std::string> ids;
  for (size_t i = 0; i < all.size(); ++i) {
    ids.insert(all[i].id);
    if (i > 0) {
      EXPECT_TRUE(std::tie(all[i - 1].create_time, all[i - 1].id) >
                  std::tie(all[i].create_time, all[i].id))
          << "not newest first at " << i;
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kPayments));
}

TYPED_TEST_P(PaymentRepositoryContractTest, ListFiltersByOrder) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(this->repo()
                    .CreatePending(SamplePayment(absl::StrCat("f-", i), i < 5 ? "o-x" : "o-y"))
                    .ok());
  }
  PaymentListQuery query;
  query.order_id = "o-x";
  query.page_size = 3;
  std::set<std::string> ids;
  for (int pages = 0; pages < 5; ++pages) {
    absl::StatusOr<PaymentPage> page = this->repo().List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Payment& p : page->payments) {
      EXPECT_EQ(p.order_id, "o-x");
      ids.insert(p.id);
    }
    if (!page->next) break;
    query.after = page->next;
  }
  EXPECT_EQ(ids.size(), 5u);

  PaymentListQuery none;
  none.order_id = "o-none";
  absl::StatusOr<PaymentPage> empty = this->repo().List(none);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->payments.empty());
  EXPECT_FALSE(empty->next.has_value());
}

TYPED_TEST_P(PaymentRepositoryContractTest, ListOfExactlyOnePageHasNoNextCursor) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(this->repo().CreatePending(SamplePayment(absl::StrCat("e-", i))).ok());
  }
  PaymentListQuery query;
  query.page_size = 4;
  absl::StatusOr<PaymentPage> page = this->repo().List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->payments.size(), 4u);
  EXPECT_FALSE(page->next.has_value());
}

REGISTER_TYPED_TEST_SUITE_P(
    PaymentRepositoryContractTest, CreatePendingThenGetReturnsEveryField,
    CreatePendingWithSameRequestIdReturnsFirstPayment,
    ConcurrentDuplicateCreatePendingYieldsOnePayment, GetUnknownIsNotFound,
    UpdateSavesChangeAndBumpsVersion, UpdateSavesAmountsAndReference, UpdateClosureErrorRollsBack,
    UpdateUnknownIsNotFound, ConcurrentUpdatesAreSerialized,
    ApplyOperationSavesPaymentAndRecordsOperation, ApplyOperationRecordsRefundReason,
    OperationReplayChangesNothing, OperationReplayForAnotherPaymentReturnsRecordedOne,
    ApplyOperationClosureErrorRollsBackPaymentAndRecord, ApplyOperationOnUnknownPaymentIsNotFound,
    ConcurrentDuplicateOperationsApplyOnce, RequestIdsAreUniqueAcrossAuthorizationsAndOperations,
    ConcurrentAuthorizationAndOperationShareNoRequestId,
    GetForOperationWithNothingRecordedReturnsThePayment,
    GetForOperationReturnsRecordedOperationAndPaymentNow,
    GetForOperationReturnsAnotherPaymentsOperation,
    GetForOperationUnderAnAuthorizationsRequestIdIsAlreadyExists,
    GetForOperationOnUnknownPaymentIsNotFound, ListPagesNewestFirstWithoutGapsOrDuplicates,
    ListFiltersByOrder, ListOfExactlyOnePageHasNoNextCursor);

}  // namespace order_platform::payments
