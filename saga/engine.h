// The saga engine: runs registered workflows durably on any number of coordinator processes
// sharing one `saga` schema.
//
// Work distribution: a dispatcher thread claims runnable workflows (due, lease free or expired)
// in short transactions with FOR UPDATE SKIP LOCKED and hands them to worker threads; no row lock
// is held while a step runs. A heartbeat thread renews the leases of running workflows; a worker
// that loses its lease (paused past it, then resumed) is fenced: its writes are refused and it
// stops. New work is announced with NOTIFY and picked up at once by a LISTEN connection; polling
// every `poll_interval` is the fallback. Durable waits hold no thread: a waiting workflow is a
// row with a wake-up time.
//
// Failure handling: when a workflow fails before its pivot, or is cancelled, the engine runs the
// compensations of its completed (and possibly completed) steps in reverse order, each retried
// under the definition's compensation policy; one that gives up parks the workflow in
// NEEDS_ATTENTION with a reason, for an operator to retry. A failure after the pivot also needs
// attention. Terminal statuses are recorded together with the definition's on_finish hook.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "db/pg_workflow_store.h"
#include "saga/context.h"
#include "saga/observer.h"
#include "saga/workflow.h"

namespace order_platform::saga {

struct EngineOptions {
  // This process's identity in leases; default "<host>:<pid>:<random>".
  std::string owner;
  // Workflows run concurrently (worker threads).
  int workers = 8;
  absl::Duration lease = absl::Seconds(15);
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // Fallback polling when no notification arrives.
  absl::Duration poll_interval = absl::Seconds(1);
  // DSN for the LISTEN connection; empty disables LISTEN/NOTIFY (polling only).
  std::string listen_dsn;
  // Finished workflows older than this are deleted (in batches, every minute). Zero disables.
  absl::Duration retention = absl::Hours(24 * 7);
  // Called with a workflow's id after this engine recorded its end (a terminal status or
  // needs attention), e.g. WorkflowWaiters::Notify. From worker threads: thread-safe and cheap.
  std::function<void(absl::string_view workflow_id)> on_settled;
};

class Engine {
 public:
  // `store` (and `observer`, if given) must outlive the engine.
  Engine(db::PgWorkflowStore* store, EngineOptions options, EngineObserver* observer = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Registers a workflow type. Call before Start. INVALID_ARGUMENT on a duplicate or empty type.
  absl::Status Register(WorkflowDefinition definition);

  // Starts the dispatcher, workers, heartbeat and listener threads.
  absl::Status Start();
  // Stops claiming, waits for running segments to reach a step boundary (bounded by `grace`),
  // releases their leases, and joins the threads. Idempotent.
  void Stop(absl::Duration grace = absl::Seconds(10));

  // Starts a workflow in a transaction of its own (for starts inside a business transaction use
  // db::PgWorkflowStore::StartInTransaction). Returns false when the id exists already
  // (idempotent start: the existing workflow is kept). INVALID_ARGUMENT for an unregistered type.
  absl::StatusOr<bool> StartWorkflow(const db::WorkflowStart& start);

  // Wakes the dispatcher (e.g. right after a local start).
  void Poke();

  // Whether this engine holds the workflow: queued or running under its lease. Its end will be
  // announced through EngineOptions::on_settled. Thread-safe.
  bool IsRunning(const std::string& workflow_id) const;

  // Start-and-run: a process that starts a workflow can run it itself without a claim round
  // trip. OfferLease fills in `start`'s owner and lease when this engine runs and has room
  // (queued work below the worker count, and no claim owed); the caller inserts the workflow
  // leased so, and after
  // the commit hands it over with Adopt. Unowned starts (no room, or a start that did not
  // commit) are claimed as usual; a lease never adopted (process died) expires and is claimed.
  void OfferLease(db::WorkflowStart* start);
  // Runs a workflow inserted under a lease from OfferLease; for an unowned start just pokes.
  void Adopt(const db::WorkflowStart& start);

  const std::string& owner() const { return options_.owner; }
  db::PgWorkflowStore& store() { return store_; }

 private:
  // The run of a workflow this engine holds (queued or executing), one entry per workflow id:
  // the run of its latest claim. A run whose lease was claimed again (by this engine: it ran past
  // its lease) is signalled lease_lost and replaced; it keeps its own signals until it ends.
  struct Running {
    std::string type;
    int64_t epoch = 0;  // The lease epoch of its claim.
    std::shared_ptr<RunSignals> signals;
  };
  // A claimed workflow waiting for a worker, with its run's signals.
  struct Queued {
    db::ClaimedWorkflow claimed;
    std::shared_ptr<RunSignals> signals;
  };

  void DispatchLoop();
  void WorkerLoop();
  void HeartbeatLoop();
  void ListenLoop();
  void RetentionLoop();

  // Runs one segment of a claimed workflow to a terminal status or a suspension.
  void RunSegment(const db::ClaimedWorkflow& claimed, const std::shared_ptr<RunSignals>& signals);
  // Runs the compensations still owed, then finishes; returns when done or suspended.
  void Compensate(const db::Fence& fence, const WorkflowDefinition& definition,
                  const WorkflowRecord& workflow, const std::string& cause,
                  const RunSignals& signals);
  void FinishWorkflow(const db::Fence& fence, const WorkflowDefinition* definition,
                      const WorkflowRecord& workflow, WorkflowStatus status,
                      const std::string& reason, const std::string& result,
                      const std::vector<StepRecord>& pending = {});
  void ScheduleLocalWake(absl::Duration delay);
  // Queues a leased workflow for the workers.
  void EnqueueLocked(db::ClaimedWorkflow claimed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  db::PgWorkflowStore& store_;
  EngineOptions options_;
  EngineObserver default_observer_;
  EngineObserver& observer_;
  std::map<std::string, WorkflowDefinition> definitions_;  // Immutable after Start.

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool poked_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_local_wake_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Since when a claim has been owed with every worker busy (InfiniteFuture: none is).
  absl::Time owed_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // Claimed and not yet finished.
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> threads_;
};

}  // namespace order_platform::saga
