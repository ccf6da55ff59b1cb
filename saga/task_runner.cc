#include "saga/task_runner.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace order_platform::saga {

TaskRunner::TaskRunner(int threads) {
  absl::MutexLock lock(&stop_mu_);
  threads_.reserve(static_cast<size_t>(std::max(threads, 1)));
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Loop(); });
}

TaskRunner::~TaskRunner() { Stop(); }

TaskRunner::TaskId TaskRunner::RunAt(absl::Time when, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return 0;
  const TaskId id = ++last_id_;
  const Key key{when, id};
  // A new earliest task moves every waiting thread's deadline; otherwise one free thread will do.
  const bool earliest = tasks_.empty() || key < tasks_.begin()->first;
  tasks_.emplace(key, std::move(task));
  due_.emplace(id, when);
  if (earliest) {
    wake_.SignalAll();
  } else {
    wake_.Signal();
  }
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
    wake_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void TaskRunner::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      wake_.Wait(&mu_);
      continue;
    }
    auto first = tasks_.begin();
    const absl::Time due = first->first.first;
    if (due > absl::Now()) {
      wake_.WaitWithDeadline(&mu_, due);
      continue;
    }
    std::function<void()> task = std::move(first->second);
    due_.erase(first->first.second);
    tasks_.erase(first);
    mu_.Unlock();
    task();
    task = nullptr;  // Whatever the task captured is released before the lock is taken again.
    mu_.Lock();
  }
}

}  // namespace order_platform::saga
