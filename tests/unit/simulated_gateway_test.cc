// The simulated payment gateway: every test token of payments.proto behaves as documented,
// deterministically and safely under concurrent use; only the tokens whose outcome depends on a
// count keep one, and a failing counter store is a transient failure, never a crash.
#include "services/payments/simulated_gateway.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/payments/memory_simulator_counters.h"

namespace order_platform::payments {
namespace {

GatewayRequest Request(const std::string& token, const std::string& key = "key-1") {
  GatewayRequest request;
  request.idempotency_key = key;
  request.payment_token = token;
  request.amount = Money{"USD", 1000};
  return request;
}

// A simulator counting in memory, with its counts in view.
class CountedGateway {
 public:
  CountedGateway() {
    auto counters = std::make_unique<MemorySimulatorCounters>();
    counters_ = counters.get();
    gateway_ = std::make_unique<SimulatedGateway>(std::move(counters));
  }
  SimulatedGateway& gateway() { return *gateway_; }
  const MemorySimulatorCounters& counters() const { return *counters_; }

 private:
  MemorySimulatorCounters* counters_ = nullptr;  // Owned by gateway_.
  std::unique_ptr<SimulatedGateway> gateway_;
};

// A counter store that is down.
class FailingCounters final : public SimulatorCounters {
 public:
  explicit FailingCounters(absl::Status status) : status_(std::move(status)) {}
  absl::StatusOr<int64_t> Increment(absl::string_view, SimulatorCounter) override {
    ++calls_;
    return status_;
  }
  int calls() const { return calls_.load(); }

 private:
  const absl::Status status_;
  std::atomic<int> calls_{0};
};

void ExpectEveryCallApproved(SimulatedGateway& gateway, const std::string& token) {
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request(token, "auth"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->approved);
  EXPECT_EQ(auth->reference, SimulatedGateway::ReferenceFor("auth"));
  EXPECT_TRUE(auth->decline_reason.empty());
  EXPECT_TRUE(gateway.Capture(Request(token, "capture")).ok());
  EXPECT_TRUE(gateway.Void(Request(token, "void")).ok());
  EXPECT_TRUE(gateway.Refund(Request(token, "refund")).ok());
}

TEST(SimulatedGatewayTest, ApproveTokenApprovesEveryCall) {
  SimulatedGateway gateway;
  ExpectEveryCallApproved(gateway, "tok_approve");
}

TEST(SimulatedGatewayTest, UnknownTokenApprovesEveryCall) {
  SimulatedGateway gateway;
  ExpectEveryCallApproved(gateway, "tok_anything_else");
  ExpectEveryCallApproved(gateway, "tok_transient_x");  // Not a number: an ordinary token.
  ExpectEveryCallApproved(gateway, "tok_slow_");
}

TEST(SimulatedGatewayTest, DeclineTokenDeclinesAuthorizationAsCardDeclined) {
  SimulatedGateway gateway;
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_decline"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_FALSE(auth->approved);
  EXPECT_EQ(auth->decline_reason, "card declined");
  EXPECT_TRUE(auth->reference.empty());
}

TEST(SimulatedGatewayTest, InsufficientFundsTokenDeclinesAuthorizationWithThatReason) {
  SimulatedGateway gateway;
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_insufficient_funds"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_FALSE(auth->approved);
  EXPECT_EQ(auth->decline_reason, "insufficient funds");
}

TEST(SimulatedGatewayTest, TransientTokenFailsFirstNCallsPerKeyThenApproves) {
  CountedGateway counted;
  SimulatedGateway& gateway = counted.gateway();
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_transient_2", "a"));
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kUnavailable) << i;
  }
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_transient_2", "a"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->approved);
  EXPECT_TRUE(gateway.Authorize(Request("tok_transient_2", "a")).ok());
  EXPECT_EQ(counted.counters().Count("a", SimulatorCounter::kCalls), 4);

  // A different key starts its own count, for every kind of call.
  EXPECT_EQ(gateway.Capture(Request("tok_transient_2", "c")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(gateway.Capture(Request("tok_transient_2", "c")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(gateway.Capture(Request("tok_transient_2", "c")).ok());
  EXPECT_EQ(gateway.Refund(Request("tok_transient_1", "r")).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(gateway.Refund(Request("tok_transient_1", "r")).ok());
  EXPECT_EQ(gateway.Void(Request("tok_transient_1", "v")).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(gateway.Void(Request("tok_transient_1", "v")).ok());
}

TEST(SimulatedGatewayTest, TransientZeroNeverFails) {
  SimulatedGateway gateway;
  EXPECT_TRUE(gateway.Authorize(Request("tok_transient_0")).ok());
}

TEST(SimulatedGatewayTest, SlowTokenWaitsThenApproves) {
  SimulatedGateway gateway;
  const absl::Time start = absl::Now();
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_slow_100"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->approved);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

TEST(SimulatedGatewayTest, SlowTokenPastTheDeadlineIsDeadlineExceededAtTheDeadline) {
  SimulatedGateway gateway;
  GatewayRequest request = Request("tok_slow_5000");
  const absl::Time start = absl::Now();
  request.deadline = start + absl::Milliseconds(50);
  absl::Status status = gateway.Capture(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(45));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST(SimulatedGatewayTest, RefundFailsTokenApprovesEverythingButRefund) {
  SimulatedGateway gateway;
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_refund_fails", "a"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->approved);
  EXPECT_TRUE(gateway.Capture(Request("tok_refund_fails", "c")).ok());
  EXPECT_TRUE(gateway.Void(Request("tok_refund_fails", "v")).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(gateway.Refund(Request("tok_refund_fails", "r")).code(),
              absl::StatusCode::kUnavailable);
  }
}

TEST(SimulatedGatewayTest, VoidFailsNTokenFailsFirstNVoidsPerKeyThenVoids) {
  CountedGateway counted;
  SimulatedGateway& gateway = counted.gateway();
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_void_fails_2", "a"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->approved);
  EXPECT_TRUE(gateway.Capture(Request("tok_void_fails_2", "c")).ok());
  EXPECT_TRUE(gateway.Refund(Request("tok_void_fails_2", "r")).ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(gateway.Void(Request("tok_void_fails_2", "v")).code(),
              absl::StatusCode::kUnavailable)
        << i;
  }
  EXPECT_TRUE(gateway.Void(Request("tok_void_fails_2", "v")).ok());
  EXPECT_TRUE(gateway.Void(Request("tok_void_fails_2", "v")).ok());
  EXPECT_EQ(counted.counters().Count("v", SimulatorCounter::kVoids), 4);
  // Each key counts its own voids; other calls under a key do not use up its failures.
  EXPECT_TRUE(gateway.Capture(Request("tok_void_fails_1", "shared")).ok());
  EXPECT_EQ(gateway.Void(Request("tok_void_fails_1", "shared")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(gateway.Void(Request("tok_void_fails_1", "shared")).ok());
  EXPECT_TRUE(gateway.Void(Request("tok_void_fails_0", "zero")).ok());
  // Only Void calls are counted for this token.
  EXPECT_EQ(counted.counters().Count("shared", SimulatorCounter::kVoids), 2);
  EXPECT_EQ(counted.counters().Count("shared", SimulatorCounter::kCalls), 0);
  EXPECT_EQ(counted.counters().Count("c", SimulatorCounter::kVoids), 0);
}

TEST(SimulatedGatewayTest, VoidFailsTokenFailsEveryVoidButApprovesTheRest) {
  SimulatedGateway gateway;
  absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_void_fails", "a"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->approved);
  EXPECT_TRUE(gateway.Capture(Request("tok_void_fails", "c")).ok());
  EXPECT_TRUE(gateway.Refund(Request("tok_void_fails", "r")).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(gateway.Void(Request("tok_void_fails", "v")).code(),
              absl::StatusCode::kUnavailable)
        << i;
  }
  // Not a number after the prefix: an ordinary token.
  EXPECT_TRUE(gateway.Void(Request("tok_void_fails_x", "w")).ok());
}

TEST(SimulatedGatewayTest, ReferenceIsDeterministicPerIdempotencyKey) {
  SimulatedGateway first;
  SimulatedGateway second;
  const std::string a = first.Authorize(Request("tok_approve", "k1"))->reference;
  EXPECT_EQ(a, second.Authorize(Request("tok_approve", "k1"))->reference);
  EXPECT_EQ(a, first.Authorize(Request("tok_approve", "k1"))->reference);
  EXPECT_NE(a, first.Authorize(Request("tok_approve", "k2"))->reference);
  EXPECT_EQ(a.rfind("sim_", 0), 0u) << a;
  EXPECT_EQ(a.size(), 4u + 16u) << a;
}

TEST(SimulatedGatewayTest, ConcurrentCallsWithOneKeyCountEveryCallOnce) {
  CountedGateway counted;
  SimulatedGateway& gateway = counted.gateway();
  constexpr int kThreads = 8;
  constexpr int kCalls = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        if (!gateway.Authorize(Request("tok_transient_10", "shared")).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 10);
  EXPECT_EQ(counted.counters().Count("shared", SimulatorCounter::kCalls), kThreads * kCalls);
}

// The simulator keeps no state for a token whose outcome does not depend on a count: a long run
// of ordinary payments holds no memory (and writes no row) per payment.
TEST(SimulatedGatewayTest, TokensWithoutACountKeepNoCounters) {
  CountedGateway counted;
  SimulatedGateway& gateway = counted.gateway();
  for (const char* token : {"tok_approve", "tok_decline", "tok_insufficient_funds", "tok_slow_0",
                            "tok_refund_fails", "tok_void_fails", "tok_transient_0",
                            "tok_void_fails_0", "tok_transient_x", "tok_anything_else"}) {
    SCOPED_TRACE(token);
    for (int i = 0; i < 20; ++i) {
      const std::string key = absl::StrCat(token, "-", i);
      (void)gateway.Authorize(Request(token, key));
      (void)gateway.Capture(Request(token, key));
      (void)gateway.Void(Request(token, key));
      (void)gateway.Refund(Request(token, key));
    }
  }
  // tok_void_fails_<N> counts its Void calls only.
  EXPECT_TRUE(gateway.Authorize(Request("tok_void_fails_3", "vf")).ok());
  EXPECT_TRUE(gateway.Capture(Request("tok_void_fails_3", "vf")).ok());
  EXPECT_TRUE(gateway.Refund(Request("tok_void_fails_3", "vf")).ok());
  EXPECT_EQ(counted.counters().size(), 0u);
}

TEST(SimulatedGatewayTest, CounterStoreErrorIsUnavailableForCountedTokens) {
  for (const absl::Status& down :
       {absl::UnavailableError("database down"), absl::InternalError("relation does not exist"),
        absl::ResourceExhaustedError("pool full")}) {
    SCOPED_TRACE(down.ToString());
    auto counters = std::make_unique<FailingCounters>(down);
    const FailingCounters& store = *counters;
    SimulatedGateway gateway(std::move(counters));

    absl::StatusOr<AuthorizationResult> auth = gateway.Authorize(Request("tok_transient_1", "t"));
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kUnavailable) << auth.status();
    EXPECT_NE(auth.status().message().find(down.message()), absl::string_view::npos)
        << auth.status();
    EXPECT_EQ(gateway.Capture(Request("tok_transient_1", "t")).code(),
              absl::StatusCode::kUnavailable);
    EXPECT_EQ(gateway.Void(Request("tok_void_fails_2", "v")).code(),
              absl::StatusCode::kUnavailable);
    EXPECT_EQ(store.calls(), 3);

    // Tokens that keep no count do not need the store.
    ExpectEveryCallApproved(gateway, "tok_approve");
    EXPECT_TRUE(gateway.Capture(Request("tok_void_fails_2", "v")).ok());
    EXPECT_EQ(store.calls(), 3);
  }
}

}  // namespace
}  // namespace order_platform::payments
