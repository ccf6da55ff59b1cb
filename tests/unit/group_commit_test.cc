// GroupCommit: writes made while a batch is in flight share the next one, never two that
// conflict, never more than max_batch; a throwing send fails its batch only; max_batch 1 sends
// each write alone and at once.
#include "db/group_commit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace order_platform::db {
namespace {

struct Write {
  std::string key;
  absl::Status status = absl::UnknownError("not sent");
  int batch = -1;  // Which batch carried it (0-based).
};

// A GroupCommit whose first batch is held until Release(), recording each batch's keys.
class HeldQueue {
 public:
  explicit HeldQueue(int max_batch, bool throw_on_second = false)
      : queue_(
            max_batch,
            [this, throw_on_second](const std::vector<Write*>& batch) {
              const int index = batches_sent_++;
              if (index == 0) {
                first_in_flight_.Notify();
                release_.WaitForNotification();
              }
              std::vector<std::string> keys;
              for (Write* w : batch) {
                w->batch = index;
                keys.push_back(w->key);
              }
              {
                absl::MutexLock lock(&mu_);
                batches_.push_back(keys);
              }
              if (throw_on_second && index == 1) throw std::runtime_error("send failed");
              for (Write* w : batch) w->status = absl::OkStatus();
            },
            [](const Write& a, const Write& b) { return a.key == b.key; }) {}

  GroupCommit<Write>& queue() { return queue_; }
  void WaitFirstInFlight() { first_in_flight_.WaitForNotification(); }
  void Release() { release_.Notify(); }
  std::vector<std::vector<std::string>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

  // Submits writes[0], waits until it is in flight, submits the others one at a time (each
  // queued before the next, so the queue's order is theirs), releases the first batch and
  // waits for all.
  void SubmitBehindTheFirst(std::vector<Write>& writes) {
    std::vector<std::thread> threads;
    threads.emplace_back([&] { queue_.Submit(writes[0]); });
    WaitFirstInFlight();
    for (size_t i = 1; i < writes.size(); ++i) {
      threads.emplace_back([&, i] { queue_.Submit(writes[i]); });
      const auto queued = static_cast<int64_t>(i);
      for (int n = 0; n < 2000 && queue_.Stats().queued < queued; ++n) {
        absl::SleepFor(absl::Milliseconds(1));
      }
      EXPECT_EQ(queue_.Stats().queued, queued);  // Not ASSERT: the threads must be joined.
    }
    Release();
    for (std::thread& t : threads) t.join();
  }

 private:
  GroupCommit<Write> queue_;
  absl::Notification first_in_flight_;
  absl::Notification release_;
  std::atomic<int> batches_sent_{0};
  absl::Mutex mu_;
  std::vector<std::vector<std::string>> batches_ ABSL_GUARDED_BY(mu_);
};

TEST(GroupCommitTest, WritesQueuedBehindABatchInFlightShareTheNextOldestFirst) {
  HeldQueue held(/*max_batch=*/8);
  std::vector<Write> writes = {{"a"}, {"b"}, {"c"}, {"d"}};
  held.SubmitBehindTheFirst(writes);
  EXPECT_THAT(held.batches(), ::testing::ElementsAre(::testing::ElementsAre("a"),
                                                     ::testing::ElementsAre("b", "c", "d")));
  for (const Write& w : writes) EXPECT_TRUE(w.status.ok()) << w.key;
  const GroupCommitStats stats = held.queue().Stats();
  EXPECT_EQ(stats.batches, 2);
  EXPECT_EQ(stats.items, 4);
  EXPECT_EQ(stats.queued, 0);
}

TEST(GroupCommitTest, ConflictingWritesNeverShareABatch) {
  HeldQueue held(/*max_batch=*/8);
  std::vector<Write> writes = {{"a"}, {"b"}, {"b"}, {"c"}, {"b"}};
  held.SubmitBehindTheFirst(writes);
  EXPECT_THAT(held.batches(),
              ::testing::ElementsAre(::testing::ElementsAre("a"), ::testing::ElementsAre("b", "c"),
                                     ::testing::ElementsAre("b"), ::testing::ElementsAre("b")));
  EXPECT_EQ(writes[1].batch, 1);
  EXPECT_EQ(writes[2].batch, 2);
  EXPECT_EQ(writes[4].batch, 3);
}

TEST(GroupCommitTest, ABatchCarriesAtMostMaxBatchWrites) {
  HeldQueue held(/*max_batch=*/2);
  std::vector<Write> writes = {{"a"}, {"b"}, {"c"}, {"d"}, {"e"}};
  held.SubmitBehindTheFirst(writes);
  EXPECT_THAT(held.batches(),
              ::testing::ElementsAre(::testing::ElementsAre("a"), ::testing::ElementsAre("b", "c"),
                                     ::testing::ElementsAre("d", "e")));
}

TEST(GroupCommitTest, ASendThatThrowsFailsItsOwnBatchOnly) {
  HeldQueue held(/*max_batch=*/2, /*throw_on_second=*/true);
  std::vector<Write> writes = {{"a"}, {"b"}, {"c"}, {"d"}};
  held.SubmitBehindTheFirst(writes);
  EXPECT_TRUE(writes[0].status.ok());
  EXPECT_EQ(writes[1].status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(writes[2].status.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(writes[3].status.ok());
}

TEST(GroupCommitTest, WithBatchingOffEachWriteIsSentAloneWithoutWaiting) {
  // The first send blocks until the second has been sent: only concurrent sends finish.
  absl::Notification second_sent;
  std::atomic<int> sends{0};
  GroupCommit<Write> queue(
      1,
      [&](const std::vector<Write*>& batch) {
        ASSERT_EQ(batch.size(), 1u);
        if (sends++ == 0) {
          ASSERT_TRUE(second_sent.WaitForNotificationWithTimeout(absl::Seconds(10)));
        } else {
          second_sent.Notify();
        }
        batch[0]->status = absl::OkStatus();
      },
      [](const Write& a, const Write& b) { return a.key == b.key; });
  EXPECT_FALSE(queue.batching());
  Write first{"a"}, second{"a"};
  std::thread t([&] { queue.Submit(first); });
  while (sends.load() == 0) absl::SleepFor(absl::Milliseconds(1));
  queue.Submit(second);
  t.join();
  EXPECT_TRUE(first.status.ok());
  EXPECT_TRUE(second.status.ok());
  EXPECT_EQ(queue.Stats().batches, 2);
}

}  // namespace
}  // namespace order_platform::db
