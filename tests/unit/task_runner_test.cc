// TaskRunner: tasks run when due (in due order), a cancelled task never runs, a task may add
// tasks, a task added earlier than the one the timer waits for is not delayed by it, a blocked
// task holds up no other, and Stop drops what has not started.
#include "saga/task_runner.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace order_platform::saga {
namespace {

TEST(TaskRunnerTest, TasksRunWhenDueInDueOrder) {
  TaskRunner runner(1);
  absl::Mutex mu;
  std::vector<std::string> order;
  absl::Notification added, done;
  auto record = [&](std::string name) {
    absl::MutexLock lock(&mu);
    order.push_back(std::move(name));
  };
  // The only thread is held until all three are added, so none runs early however slowly this
  // thread adds them; then they run by due time, not in the order added.
  runner.Run([&] { added.WaitForNotification(); });
  const absl::Time start = absl::Now();
  runner.RunAt(start + absl::Milliseconds(120), [&] {
    record("late");
    done.Notify();
  });
  runner.RunAt(start + absl::Milliseconds(60), [&] { record("soon"); });
  runner.RunAt(start + absl::Milliseconds(1), [&] { record("first"); });
  added.Notify();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(120));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "soon", "late"}));
}

TEST(TaskRunnerTest, ACancelledTaskNeverRunsAndIsReleased) {
  TaskRunner runner(2);
  std::atomic<int> ran{0};
  auto captured = std::make_shared<int>(0);
  const TaskRunner::TaskId id =
      runner.RunAt(absl::Now() + absl::Hours(1), [&ran, captured] { ++ran; });
  EXPECT_EQ(runner.pending(), 1u);
  EXPECT_TRUE(runner.Cancel(id));
  EXPECT_EQ(captured.use_count(), 1);  // What it captured went with it.
  EXPECT_FALSE(runner.Cancel(id));     // Gone already.
  EXPECT_EQ(runner.pending(), 0u);
  absl::Notification ran_now;
  const TaskRunner::TaskId now = runner.Run([&] { ran_now.Notify(); });
  ASSERT_TRUE(ran_now.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(runner.Cancel(now));  // It ran: nothing to cancel.
  EXPECT_EQ(ran, 0);
}

// The only thread waits for a task an hour away; a task added for now runs now.
TEST(TaskRunnerTest, AnEarlierTaskIsNotHeldBehindALaterOne) {
  TaskRunner runner(1);
  runner.RunAt(absl::Now() + absl::Hours(1), [] {});
  absl::SleepFor(absl::Milliseconds(20));  // The thread is asleep until the hour.
  absl::Notification ran;
  const absl::Time start = absl::Now();
  runner.RunAt(start + absl::Milliseconds(30), [&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(runner.pending(), 1u);  // The hour's task is still there.
}

// A task that blocks (a read waiting for a connection, say) holds up only itself: with a second
// worker, the tasks due behind it run meanwhile, timers among them.
TEST(TaskRunnerTest, ABlockedTaskDoesNotHoldUpTheOthers) {
  TaskRunner runner(2);
  absl::Notification blocked, release, immediate, timed;
  runner.Run([&] {
    blocked.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(20));
  });
  ASSERT_TRUE(blocked.WaitForNotificationWithTimeout(absl::Seconds(10)));
  runner.Run([&] { immediate.Notify(); });
  runner.RunAt(absl::Now() + absl::Milliseconds(50), [&] { timed.Notify(); });
  EXPECT_TRUE(immediate.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(timed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  release.Notify();
}

TEST(TaskRunnerTest, ATaskMayAddAndCancelTasks) {
  TaskRunner runner(1);
  absl::Notification second;
  std::atomic<bool> cancelled_ran{false};
  runner.Run([&] {
    const TaskRunner::TaskId doomed =
        runner.RunAt(absl::Now() + absl::Milliseconds(10), [&] { cancelled_ran = true; });
    runner.Cancel(doomed);
    runner.RunAt(absl::Now() + absl::Milliseconds(20), [&] { second.Notify(); });
  });
  ASSERT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(cancelled_ran);
}

TEST(TaskRunnerTest, StopWaitsForRunningTasksAndDropsTheRest) {
  auto runner = std::make_unique<TaskRunner>(2);
  absl::Notification started;
  std::atomic<bool> finished{false};
  std::atomic<bool> dropped_ran{false};
  runner->Run([&] {
    started.Notify();
    absl::SleepFor(absl::Milliseconds(100));
    finished = true;
  });
  runner->RunAt(absl::Now() + absl::Seconds(30), [&] { dropped_ran = true; });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  runner->Stop();
  EXPECT_TRUE(finished);  // The running task ended before Stop returned.
  EXPECT_EQ(runner->pending(), 0u);
  EXPECT_EQ(runner->RunAt(absl::Now(), [&] { dropped_ran = true; }), 0u);  // Refused after Stop.
  runner.reset();  // A second Stop, from the destructor.
  EXPECT_FALSE(dropped_ran);
}

}  // namespace
}  // namespace order_platform::saga
