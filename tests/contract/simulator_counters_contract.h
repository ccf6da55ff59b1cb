// The SimulatorCounters contract: one typed test suite that every implementation must pass.
// Instantiate it with a type whose static `Make()` returns a fresh, empty SimulatorCountersEnv
// (see simulator_counters_memory_test.cc and simulator_counters_pg_test.cc).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/payments/simulator_counters.h"

namespace order_platform::payments {

// Owns a counter store (and whatever backs it) for one test.
class SimulatorCountersEnv {
 public:
  virtual ~SimulatorCountersEnv() = default;
  virtual SimulatorCounters& counters() = 0;
};

template <typename Impl>
class SimulatorCountersContractTest : public ::testing::Test {
 protected:
  void SetUp() override { env_ = Impl::Make(); }
  SimulatorCounters& counters() { return env_->counters(); }

  // Increments and returns the new count; fails the test (returning -1) on an error.
  int64_t Increment(const std::string& key, SimulatorCounter counter) {
    absl::StatusOr<int64_t> count = counters().Increment(key, counter);
    EXPECT_TRUE(count.ok()) << count.status();
    return count.ok() ? *count : -1;
  }

 private:
  std::unique_ptr<SimulatorCountersEnv> env_;
};

TYPED_TEST_SUITE_P(SimulatorCountersContractTest);

TYPED_TEST_P(SimulatorCountersContractTest, IncrementStartsAtOneAndCountsUp) {
  EXPECT_EQ(this->Increment("key-1", SimulatorCounter::kCalls), 1);
  EXPECT_EQ(this->Increment("key-1", SimulatorCounter::kCalls), 2);
  EXPECT_EQ(this->Increment("key-1", SimulatorCounter::kCalls), 3);
}

TYPED_TEST_P(SimulatorCountersContractTest, KeysAndCountersAreCountedSeparately) {
  EXPECT_EQ(this->Increment("key-a", SimulatorCounter::kCalls), 1);
  EXPECT_EQ(this->Increment("key-a", SimulatorCounter::kCalls), 2);
  EXPECT_EQ(this->Increment("key-a", SimulatorCounter::kVoids), 1);
  EXPECT_EQ(this->Increment("key-b", SimulatorCounter::kCalls), 1);
  EXPECT_EQ(this->Increment("key-a", SimulatorCounter::kVoids), 2);
  EXPECT_EQ(this->Increment("key-a", SimulatorCounter::kCalls), 3);
  // Keys are compared exactly.
  EXPECT_EQ(this->Increment("KEY-A", SimulatorCounter::kCalls), 1);
  EXPECT_EQ(this->Increment("", SimulatorCounter::kCalls), 1);
}

TYPED_TEST_P(SimulatorCountersContractTest, ConcurrentIncrementsReturnEachCountOnce) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 25;
  absl::Mutex mu;
  std::vector<int64_t> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        const int64_t count = this->Increment("shared", SimulatorCounter::kCalls);
        absl::MutexLock lock(&mu);
        seen.push_back(count);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::sort(seen.begin(), seen.end());
  std::vector<int64_t> expected(kThreads * kIncrements);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int64_t>(i) + 1;
  EXPECT_EQ(seen, expected);
}

REGISTER_TYPED_TEST_SUITE_P(SimulatorCountersContractTest, IncrementStartsAtOneAndCountsUp,
                            KeysAndCountersAreCountedSeparately,
                            ConcurrentIncrementsReturnEachCountOnce);

}  // namespace order_platform::payments
