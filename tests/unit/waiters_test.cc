// WorkflowWaiters: announcements reach the watches of that workflow only, Close calls every
// watch (and later ones at once), a destroyed watch is never called, and no more than the limit
// are registered at once.
#include "saga/waiters.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace order_platform::saga {
namespace {

// A watch's callback that counts its calls.
struct Counter {
  std::atomic<int> calls{0};
  std::function<void()> Callback() {
    return [this] { ++calls; };
  }
};

TEST(WorkflowWaitersTest, AnnouncementCallsTheWatchesOfThatWorkflowOnly) {
  WorkflowWaiters waiters;
  Counter one, two;
  auto watch_one = *waiters.Register("wf-1", one.Callback());
  auto watch_two = *waiters.Register("wf-2", two.Callback());
  waiters.Notify("wf-1");
  EXPECT_EQ(one.calls, 1);
  EXPECT_EQ(two.calls, 0);
  waiters.Notify("wf-1");  // Each announcement is passed on.
  EXPECT_EQ(one.calls, 2);
}

TEST(WorkflowWaitersTest, AnnouncementsBeforeTheWatchAreNotRemembered) {
  WorkflowWaiters waiters;
  waiters.Notify("wf-1");  // Before anyone watched: the caller reads the workflow after Register.
  Counter counter;
  auto watch = *waiters.Register("wf-1", counter.Callback());
  EXPECT_EQ(counter.calls, 0);
}

TEST(WorkflowWaitersTest, EveryWatchOfTheWorkflowIsCalledAndADestroyedOneNever) {
  WorkflowWaiters waiters;
  Counter first, second;
  auto watch_first = *waiters.Register("wf-1", first.Callback());
  auto watch_second = *waiters.Register("wf-1", second.Callback());
  EXPECT_EQ(waiters.waiting(), 2u);
  waiters.Notify("wf-1");
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(second.calls, 1);
  watch_first.reset();
  EXPECT_EQ(waiters.waiting(), 1u);
  waiters.Notify("wf-1");
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(second.calls, 2);
  watch_second.reset();
  EXPECT_EQ(waiters.waiting(), 0u);
}

TEST(WorkflowWaitersTest, CloseCallsEveryWatchNowAndLaterOnesAtOnce) {
  WorkflowWaiters waiters;
  Counter before, after;
  auto watch_before = *waiters.Register("wf-1", before.Callback());
  waiters.Close();
  EXPECT_TRUE(waiters.closed());
  EXPECT_EQ(before.calls, 1);
  auto watch_after = *waiters.Register("wf-2", after.Callback());
  EXPECT_EQ(after.calls, 1);  // Called from Register itself.
  waiters.Close();            // Irreversible, and once.
  EXPECT_EQ(before.calls, 1);
}

// Destroying a watch waits for a callback in progress: afterwards it is not running and never
// will, so its owner may go away.
TEST(WorkflowWaitersTest, DestroyingAWatchWaitsForItsCallbackInProgress) {
  WorkflowWaiters waiters;
  std::atomic<bool> in_callback{false};
  std::atomic<bool> finished{false};
  auto watch = *waiters.Register("wf-1", [&] {
    in_callback = true;
    absl::SleepFor(absl::Milliseconds(100));
    finished = true;
  });
  std::thread announcer([&] { waiters.Notify("wf-1"); });
  while (!in_callback) absl::SleepFor(absl::Milliseconds(1));
  watch.reset();
  EXPECT_TRUE(finished);
  announcer.join();
}

TEST(WorkflowWaitersTest, WatchesBeyondTheLimitAreRefusedUntilOneLeaves) {
  WorkflowWaiters waiters(/*max_waiters=*/2);
  Counter counter;
  auto first = *waiters.Register("wf-1", counter.Callback());
  auto second = *waiters.Register("wf-2", counter.Callback());
  absl::StatusOr<std::unique_ptr<WorkflowWaiters::Watch>> third =
      waiters.Register("wf-3", counter.Callback());
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(waiters.waiting(), 2u);
  first.reset();
  absl::StatusOr<std::unique_ptr<WorkflowWaiters::Watch>> admitted =
      waiters.Register("wf-3", counter.Callback());
  ASSERT_TRUE(admitted.ok()) << admitted.status();
  waiters.Notify("wf-3");
  EXPECT_EQ(counter.calls, 1);
  EXPECT_EQ(waiters.waiting(), 2u);
}

}  // namespace
}  // namespace order_platform::saga
