// Group commit: writes that callers make at the same time share one statement.
//
// PostgreSQL spends far more on a statement (a round trip, executor start-up, a commit and its
// WAL flush) than on one more row in it, so a store whose callers write concurrently sends their
// writes together. GroupCommit<Item> is the queue that does it:
//   - Submit(item) queues the item and returns once a batch carrying it was sent. The caller
//     sends the batch itself when none is in flight, with every queued item it can carry (oldest
//     first, up to `max_batch`); otherwise it waits, and when the batch in flight returns one of
//     the waiting callers sends the next with everything queued by then.
//   - Nothing waits on purpose: at low load a batch is one item, and batches grow only while a
//     statement is in flight, so their size follows the load.
//   - Two items for which `conflict(a, b)` holds (two writes of one row, say) never share a batch:
//     the later one waits for the next. `conflict` must not throw.
//   - `send` is called with the batch and must set every item's outcome in the item (its
//     `absl::Status status` member and whatever else Item carries). An exception it throws fails
//     every item of the batch with INTERNAL.
//   - max_batch <= 1 turns batching off: each Submit sends its item alone, at once, concurrently
//     with the others.
// Thread-safe. Used by PgWorkflowStore (checkpoints) and by the order, payment and inventory
// repositories (their hottest business writes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace order_platform::db {

// Batches sent and items they carried since the queue was made, and items queued now.
struct GroupCommitStats {
  int64_t batches = 0;
  int64_t items = 0;
  int64_t queued = 0;

  // Adds another queue's (a repository reports its kinds of statement together).
  GroupCommitStats& operator+=(const GroupCommitStats& other) {
    batches += other.batches;
    items += other.items;
    queued += other.queued;
    return *this;
  }
};

template <typename Item>
class GroupCommit {
 public:
  using SendFn = std::function<void(const std::vector<Item*>&)>;
  using ConflictFn = std::function<bool(const Item&, const Item&)>;

  GroupCommit(int max_batch, SendFn send, ConflictFn conflict)
      : max_batch_(max_batch), send_(std::move(send)), conflict_(std::move(conflict)) {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  bool batching() const { return max_batch_ > 1; }

  // Returns once `item` was sent (its outcome is in it).
  void Submit(Item& item) {
    if (!batching()) {
      SendAlone({&item});
      return;
    }
    Slot slot{&item};
    absl::MutexLock lock(&mu_);
    queued_.push_back(&slot);
    const auto done_or_free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return slot.done || !sending_;
    };
    for (;;) {
      mu_.Await(absl::Condition(&done_or_free));
      if (slot.done) return;
      // No batch in flight: this thread sends the next one. Nothing below throws between taking
      // items off the queue and marking them done (room is reserved first; Send catches).
      std::vector<Slot*> slots;
      std::vector<Item*> batch;
      slots.reserve(static_cast<size_t>(max_batch_));
      batch.reserve(static_cast<size_t>(max_batch_));
      for (auto it = queued_.begin();
           it != queued_.end() && static_cast<int>(batch.size()) < max_batch_;) {
        const Item& next = *(*it)->item;
        if (std::any_of(batch.begin(), batch.end(),
                        [&](const Item* in) { return conflict_(*in, next); })) {
          ++it;
          continue;
        }
        batch.push_back((*it)->item);
        slots.push_back(*it);
        it = queued_.erase(it);
      }
      sending_ = true;
      ++stats_.batches;
      stats_.items += static_cast<int64_t>(batch.size());
      mu_.Unlock();
      Send(batch);
      mu_.Lock();
      sending_ = false;
      // The submitters wake (under the lock) only after this: none of their items is touched
      // again.
      for (Slot* s : slots) s->done = true;
    }
  }

  GroupCommitStats Stats() const {
    absl::MutexLock lock(&mu_);
    GroupCommitStats stats = stats_;
    stats.queued = static_cast<int64_t>(queued_.size());
    return stats;
  }

 private:
  struct Slot {
    Item* item;
    bool done = false;
  };

  void SendAlone(const std::vector<Item*>& batch) {
    {
      absl::MutexLock lock(&mu_);
      ++stats_.batches;
      stats_.items += static_cast<int64_t>(batch.size());
    }
    Send(batch);
  }

  void Send(const std::vector<Item*>& batch) {
    try {
      send_(batch);
    } catch (...) {
      for (Item* item : batch) item->status = absl::InternalError("batched write failed");
    }
  }

  const int max_batch_;
  const SendFn send_;
  const ConflictFn conflict_;
  mutable absl::Mutex mu_;
  std::deque<Slot*> queued_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  GroupCommitStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::db
