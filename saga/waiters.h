// Waiting for workflows to settle without polling the database.
//
// A workflow settles when its end is recorded: a terminal status or NEEDS_ATTENTION. The engine of
// this process calls Notify after it records one (EngineOptions::on_settled), and
// WorkflowService.WaitWorkflow blocks on a Waiter until then. Workflows that another process
// settles are not announced here (there is no cross-process notification: a NOTIFY per workflow
// end would serialize every end on PostgreSQL's notify lock), so waiters also re-read the
// database from time to time.
//
//   OP_ASSIGN_OR_RETURN(std::unique_ptr<WorkflowWaiters::Waiter> waiter,
//                       waiters.Watch(id));  // before reading
//   ... read the workflow; if it has not settled: waiter->WaitUntil(deadline) ...
//
// A wait holds the thread of the call that waits, so the registry admits at most `max_waiters`
// at once; the next is refused (RESOURCE_EXHAUSTED) rather than taking one more thread.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace order_platform::saga {

class WorkflowWaiters {
 public:
  // One caller's interest in one workflow, from Watch until destroyed.
  class Waiter {
   public:
    ~Waiter();
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    // Blocks until the workflow is announced (by Notify, since Watch; an announcement before
    // this call counts), until `deadline`, or until the registry is closed. True when announced;
    // an announcement is consumed, so the next call waits for another.
    bool WaitUntil(absl::Time deadline);

   private:
    friend class WorkflowWaiters;
    Waiter(WorkflowWaiters* owner, std::string workflow_id)
        : owner_(*owner), workflow_id_(std::move(workflow_id)) {}

    WorkflowWaiters& owner_;
    const std::string workflow_id_;
    // Guarded by owner_.mu_. One condition variable per waiter: an announcement wakes only the
    // waiters of its workflow, however many others wait.
    bool announced_ = false;
    absl::CondVar cv_;
  };

  explicit WorkflowWaiters(size_t max_waiters = std::numeric_limits<size_t>::max())
      : max_waiters_(max_waiters) {}
  WorkflowWaiters(const WorkflowWaiters&) = delete;
  WorkflowWaiters& operator=(const WorkflowWaiters&) = delete;

  // Registers interest in `workflow_id`. Register before reading the workflow's state, so an end
  // recorded between the read and the wait is not missed. RESOURCE_EXHAUSTED when `max_waiters`
  // waiters are registered already.
  absl::StatusOr<std::unique_ptr<Waiter>> Watch(std::string workflow_id);

  // Announces that `workflow_id` settled. Cheap when nobody waits for it; thread-safe.
  void Notify(absl::string_view workflow_id);

  // Wakes every waiter and makes every later WaitUntil return at once (at shutdown, so long
  // polls end instead of holding the server up). Irreversible.
  void Close();
  bool closed() const;

  // Waiters registered now (for tests).
  size_t waiting() const;

 private:
  const size_t max_waiters_;
  mutable absl::Mutex mu_;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, absl::flat_hash_set<Waiter*>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::saga
