#include "services/payments/simulated_gateway.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/errors.h"
#include "services/common/validation.h"
#include "services/payments/memory_simulator_counters.h"

namespace order_platform::payments {
namespace {

constexpr absl::string_view kDecline = "tok_decline";
constexpr absl::string_view kInsufficientFunds = "tok_insufficient_funds";
constexpr absl::string_view kTransientPrefix = "tok_transient_";
constexpr absl::string_view kSlowPrefix = "tok_slow_";
constexpr absl::string_view kRefundFails = "tok_refund_fails";
constexpr absl::string_view kVoidFails = "tok_void_fails";
constexpr absl::string_view kVoidFailsPrefix = "tok_void_fails_";

// The non-negative number after `prefix` in `token`, or -1 when `token` is not prefix + digits.
int64_t NumberAfter(absl::string_view token, absl::string_view prefix) {
  if (!absl::ConsumePrefix(&token, prefix) || token.empty()) return -1;
  for (char c : token) {
    if (c < '0' || c > '9') return -1;
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(token, &n)) return -1;
  return n;
}

}  // namespace

SimulatedGateway::SimulatedGateway()
    : SimulatedGateway(std::make_unique<MemorySimulatorCounters>()) {}

SimulatedGateway::SimulatedGateway(std::unique_ptr<SimulatorCounters> counters)
    : counters_(std::move(counters)) {}

std::string SimulatedGateway::ReferenceFor(absl::string_view idempotency_key) {
  return absl::StrFormat("sim_%016x", Fingerprint(idempotency_key));
}

absl::StatusOr<int64_t> SimulatedGateway::Count(const GatewayRequest& request,
                                                SimulatorCounter counter) {
  absl::StatusOr<int64_t> count = counters_->Increment(request.idempotency_key, counter);
  if (!count.ok()) {
    return absl::UnavailableError(
        absl::StrCat("simulated gateway: cannot count ", SimulatorCounterName(counter), " of ",
                     request.idempotency_key, ": ", count.status().ToString()));
  }
  return count;
}

absl::Status SimulatedGateway::Simulate(Kind kind, const GatewayRequest& request) {
  const absl::string_view token = request.payment_token;
  // Counted only when the outcome depends on the count (N > 0).
  if (const int64_t failures = NumberAfter(token, kTransientPrefix); failures > 0) {
    OP_ASSIGN_OR_RETURN(const int64_t call, Count(request, SimulatorCounter::kCalls));
    if (call <= failures) {
      return absl::UnavailableError(absl::StrCat("simulated gateway: transient failure ", call,
                                                 " of ", failures, " for ",
                                                 request.idempotency_key));
    }
  }
  if (const int64_t delay_ms = NumberAfter(token, kSlowPrefix); delay_ms >= 0) {
    const absl::Time done = absl::Now() + absl::Milliseconds(delay_ms);
    if (request.deadline < done) {
      absl::SleepFor(std::max(absl::ZeroDuration(), request.deadline - absl::Now()));
      return absl::DeadlineExceededError(
          absl::StrCat("simulated gateway: deadline passed during a ", delay_ms, " ms call"));
    }
    absl::SleepFor(done - absl::Now());
  }
  if (kind == Kind::kRefund && token == kRefundFails) {
    return absl::UnavailableError("simulated gateway: refunds are failing for this token");
  }
  if (kind == Kind::kVoid) {
    if (token == kVoidFails) {
      return absl::UnavailableError("simulated gateway: voids are failing for this token");
    }
    if (const int64_t failures = NumberAfter(token, kVoidFailsPrefix); failures > 0) {
      OP_ASSIGN_OR_RETURN(const int64_t void_call, Count(request, SimulatorCounter::kVoids));
      if (void_call <= failures) {
        return absl::UnavailableError(absl::StrCat("simulated gateway: void failure ", void_call,
                                                   " of ", failures, " for ",
                                                   request.idempotency_key));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AuthorizationResult> SimulatedGateway::Authorize(const GatewayRequest& request) {
  if (absl::Status status = Simulate(Kind::kAuthorize, request); !status.ok()) return status;
  AuthorizationResult result;
  if (request.payment_token == kDecline) {
    result.decline_reason = "card declined";
  } else if (request.payment_token == kInsufficientFunds) {
    result.decline_reason = "insufficient funds";
  } else {
    result.approved = true;
    result.reference = ReferenceFor(request.idempotency_key);
  }
  return result;
}

absl::Status SimulatedGateway::Capture(const GatewayRequest& request) {
  return Simulate(Kind::kCapture, request);
}

absl::Status SimulatedGateway::Void(const GatewayRequest& request) {
  return Simulate(Kind::kVoid, request);
}

absl::Status SimulatedGateway::Refund(const GatewayRequest& request) {
  return Simulate(Kind::kRefund, request);
}

}  // namespace order_platform::payments
