// TaskRunner: a few threads that run short tasks now or at a given time.
//
// WorkflowService.WaitWorkflow uses one so that a long poll holds no thread while it waits: the
// call's database reads, its re-reads on a schedule and its timeout are tasks here, and between
// them the call is only a timer entry and a waiter registration.
//
//   TaskRunner runner(/*threads=*/4);
//   TaskRunner::TaskId timer = runner.RunAt(absl::Now() + absl::Seconds(1), [] { ... });
//   runner.Cancel(timer);  // Not yet started: it never runs.
//
// Tasks due at the same time run in the order they were added; with more than one thread they
// may run concurrently, so a task must synchronize whatever it shares. A task may add or cancel
// tasks. Thread-safe.
//
// Waking a thread costs a context switch, so only what needs one is woken: a task due now wakes
// one worker, and one timer thread sleeps until the earliest task in the future, so adding a
// task due after it (a timeout, say) wakes nobody.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace order_platform::saga {

class TaskRunner {
 public:
  // Identifies a task added to this runner (never 0).
  using TaskId = uint64_t;

  // Starts `threads` (at least 1) threads that run the tasks, and one that keeps the time.
  explicit TaskRunner(int threads);
  // Stop().
  ~TaskRunner();
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // Runs `task` on one of the threads once `when` has come (at once when it has passed). After
  // Stop the task is dropped (and 0 returned).
  TaskId RunAt(absl::Time when, std::function<void()> task);
  // Runs `task` as soon as a thread is free: after the tasks already due, in the order added.
  TaskId Run(std::function<void()> task);

  // Removes a task that has not started, so it never runs; false when it started, ran, was
  // cancelled already or never existed. The task (and what it captured) is destroyed outside the
  // runner's lock, as it is after it ran, so a destructor may add or cancel tasks.
  bool Cancel(TaskId id);

  // Tasks added and not yet started.
  size_t pending() const;

  // Drops the tasks not yet started, waits for the running ones and joins the threads. Idempotent
  // (also when called concurrently); must not be called from a task.
  void Stop();

 private:
  using Key = std::pair<absl::Time, TaskId>;  // Ordered by due time, then by order added.

  void TimerLoop();
  void WorkerLoop();

  mutable absl::Mutex mu_;
  absl::CondVar work_;   // Workers wait here for a task that is due.
  absl::CondVar timer_;  // The timer thread waits here (until the earliest task in the future).
  std::map<Key, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TaskId, absl::Time> due_ ABSL_GUARDED_BY(mu_);  // For Cancel.
  TaskId last_id_ ABSL_GUARDED_BY(mu_) = 0;
  // When the timer thread wakes next (it re-arms when an earlier task comes).
  absl::Time timer_armed_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Tasks due at or before this time have had a worker woken for them by the timer thread.
  absl::Time handed_out_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex stop_mu_;  // Serializes Stop: one caller joins the threads.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(stop_mu_);
};

}  // namespace order_platform::saga
