#include "saga/task_runner.h"

#include <algorithm>
#include <limits>

#include "absl/time/clock.h"

namespace order_platform::saga {

TaskRunner::TaskRunner(int threads) {
  absl::MutexLock lock(&stop_mu_);
  const int workers = std::max(threads, 1);
  threads_.reserve(static_cast<size_t>(workers) + 1);
  threads_.emplace_back([this] { TimerLoop(); });
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

TaskRunner::~TaskRunner() { Stop(); }

TaskRunner::TaskId TaskRunner::RunAt(absl::Time when, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return 0;
  const TaskId id = ++last_id_;
  tasks_.emplace(Key{when, id}, std::move(task));
  due_.emplace(id, when);
  if (when <= absl::Now()) {
    work_.Signal();  // Due: one worker takes it.
  } else if (when <= handed_out_) {
    // The wall clock stepped back behind a time the timer has handed out already: it starts
    // over from the earliest task, so this one is not skipped.
    handed_out_ = absl::InfinitePast();
    timer_armed_ = when;
    timer_.Signal();
  } else if (when < timer_armed_) {
    timer_armed_ = when;  // The timer thread sleeps until later: it re-arms for this one.
    timer_.Signal();
  }
  // Otherwise the timer thread comes to it after the earlier ones: nobody is woken.
  return id;
}

TaskRunner::TaskId TaskRunner::Run(std::function<void()> task) {
  return RunAt(absl::Now(), std::move(task));
}

bool TaskRunner::Cancel(TaskId id) {
  std::function<void()> dropped;  // Destroyed after the lock is released.
  absl::MutexLock lock(&mu_);
  auto it = due_.find(id);
  if (it == due_.end()) return false;
  auto task = tasks_.find(Key{it->second, id});
  dropped = std::move(task->second);
  tasks_.erase(task);
  due_.erase(it);
  return true;
}

size_t TaskRunner::pending() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

void TaskRunner::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  std::map<Key, std::function<void()>> dropped;  // Destroyed after mu_ is released.
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(tasks_);
    due_.clear();
    work_.SignalAll();
    timer_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void TaskRunner::TimerLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    auto next = tasks_.upper_bound(Key{handed_out_, std::numeric_limits<TaskId>::max()});
    if (next == tasks_.end()) {
      timer_armed_ = absl::InfiniteFuture();
      timer_.Wait(&mu_);
      continue;
    }
    const absl::Time due = next->first.first;
    if (due > absl::Now()) {
      timer_armed_ = due;
      timer_.WaitWithDeadline(&mu_, due);
      continue;
    }
    handed_out_ = due;
    work_.Signal();
  }
}

void TaskRunner::WorkerLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    auto first = tasks_.begin();
    if (first == tasks_.end() || first->first.first > absl::Now()) {
      work_.Wait(&mu_);
      continue;
    }
    std::function<void()> task = std::move(first->second);
    due_.erase(first->first.second);
    tasks_.erase(first);
    // More are due: another worker takes the next, rather than it waiting behind this one.
    if (!tasks_.empty() && tasks_.begin()->first.first <= absl::Now()) work_.Signal();
    mu_.Unlock();
    task();
    task = nullptr;  // Whatever the task captured is released before the lock is taken again.
    mu_.Lock();
  }
}

}  // namespace order_platform::saga
