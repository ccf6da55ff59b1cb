// WorkflowWaiters: announcements reach the waiters of that workflow only, are not lost when they
// come before the wait, Close ends every wait, and no more than the limit wait at once.
#include "saga/waiters.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace order_platform::saga {
namespace {

TEST(WorkflowWaitersTest, AnnouncementWakesTheWaiterOfThatWorkflow) {
  WorkflowWaiters waiters;
  auto waiter = *waiters.Watch("wf-1");
  std::thread announcer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    waiters.Notify("wf-1");
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(waiter->WaitUntil(absl::Now() + absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  announcer.join();
}

TEST(WorkflowWaitersTest, AnnouncementBeforeTheWaitIsKeptAndConsumedOnce) {
  WorkflowWaiters waiters;
  auto waiter = *waiters.Watch("wf-1");
  waiters.Notify("wf-1");
  EXPECT_TRUE(waiter->WaitUntil(absl::Now()));  // Already announced: no wait needed.
  EXPECT_FALSE(waiter->WaitUntil(absl::Now() + absl::Milliseconds(20)));  // Consumed.
}

TEST(WorkflowWaitersTest, OtherWorkflowsAndEarlierAnnouncementsDoNotWake) {
  WorkflowWaiters waiters;
  waiters.Notify("wf-1");  // Before anyone watched: not remembered.
  auto waiter = *waiters.Watch("wf-1");
  waiters.Notify("wf-2");
  const absl::Time start = absl::Now();
  EXPECT_FALSE(waiter->WaitUntil(start + absl::Milliseconds(50)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST(WorkflowWaitersTest, EveryWaiterOfTheWorkflowIsWoken) {
  WorkflowWaiters waiters;
  auto first = *waiters.Watch("wf-1");
  auto second = *waiters.Watch("wf-1");
  EXPECT_EQ(waiters.waiting(), 2u);
  waiters.Notify("wf-1");
  EXPECT_TRUE(first->WaitUntil(absl::Now()));
  EXPECT_TRUE(second->WaitUntil(absl::Now()));
  first.reset();
  EXPECT_EQ(waiters.waiting(), 1u);
  second.reset();
  EXPECT_EQ(waiters.waiting(), 0u);
}

TEST(WorkflowWaitersTest, CloseEndsEveryWaitNowAndLater) {
  WorkflowWaiters waiters;
  auto waiter = *waiters.Watch("wf-1");
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    waiters.Close();
  });
  const absl::Time start = absl::Now();
  EXPECT_FALSE(waiter->WaitUntil(absl::Now() + absl::Seconds(30)));  // Woken, not announced.
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  closer.join();
  EXPECT_TRUE(waiters.closed());
  auto later = *waiters.Watch("wf-2");
  const absl::Time again = absl::Now();
  EXPECT_FALSE(later->WaitUntil(absl::Now() + absl::Seconds(30)));
  EXPECT_LT(absl::Now() - again, absl::Seconds(5));
}

TEST(WorkflowWaitersTest, WaitersBeyondTheLimitAreRefusedUntilOneLeaves) {
  WorkflowWaiters waiters(/*max_waiters=*/2);
  auto first = *waiters.Watch("wf-1");
  auto second = *waiters.Watch("wf-2");
  absl::StatusOr<std::unique_ptr<WorkflowWaiters::Waiter>> third = waiters.Watch("wf-3");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(waiters.waiting(), 2u);
  first.reset();
  absl::StatusOr<std::unique_ptr<WorkflowWaiters::Waiter>> admitted = waiters.Watch("wf-3");
  ASSERT_TRUE(admitted.ok()) << admitted.status();
  waiters.Notify("wf-3");
  EXPECT_TRUE((*admitted)->WaitUntil(absl::Now()));
  EXPECT_EQ(waiters.waiting(), 2u);
}

}  // namespace
}  // namespace order_platform::saga
