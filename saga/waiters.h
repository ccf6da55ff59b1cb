// Waiting for workflows to settle without polling the database.
//
// A workflow settles when its end is recorded: a terminal status or NEEDS_ATTENTION. The engine of
// this process calls Notify after it records one (EngineOptions::on_settled), and
// WorkflowService.WaitWorkflow answers when its watch is told. Workflows that another process
// settles are not announced here (there is no cross-process notification: a NOTIFY per workflow
// end would serialize every end on PostgreSQL's notify lock), so waiters also re-read the
// database from time to time.
//
//   OP_ASSIGN_OR_RETURN(std::unique_ptr<WorkflowWaiters::Watch> watch,
//                       waiters.Register(id, [] { /* post the answer */ }));  // before reading
//   ... read the workflow; if it has not settled, wait for the callback (or a re-read) ...
//
// A watch holds no thread: it is an entry in a map until it is destroyed. The registry still
// admits at most `max_waiters` watches at once (each wait holds its call's memory); the next is
// refused (RESOURCE_EXHAUSTED).
#pragma once

#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace order_platform::saga {

class WorkflowWaiters {
 public:
  // One caller's interest in one workflow, from Register until destroyed. Destroying it (from any
  // thread but the callback's own call) guarantees the callback is not running and will not run.
  class Watch {
   public:
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    friend class WorkflowWaiters;
    Watch(WorkflowWaiters* owner, std::string workflow_id, std::function<void()> on_announced)
        : owner_(*owner),
          workflow_id_(std::move(workflow_id)),
          on_announced_(std::move(on_announced)) {}

    WorkflowWaiters& owner_;
    const std::string workflow_id_;
    const std::function<void()> on_announced_;
  };

  explicit WorkflowWaiters(size_t max_waiters = std::numeric_limits<size_t>::max())
      : max_waiters_(max_waiters) {}
  WorkflowWaiters(const WorkflowWaiters&) = delete;
  WorkflowWaiters& operator=(const WorkflowWaiters&) = delete;

  // Registers interest in `workflow_id`: `on_announced` is called each time Notify announces it,
  // and once at Close (at once if the registry is closed already). Register before reading the
  // workflow's state, so an end recorded between the read and the wait is not missed. The callback
  // runs under the registry's lock: it must be quick, must not block and must not call back into
  // the registry (post the work elsewhere). RESOURCE_EXHAUSTED when `max_waiters` watches exist.
  absl::StatusOr<std::unique_ptr<Watch>> Register(std::string workflow_id,
                                                  std::function<void()> on_announced);

  // Announces that `workflow_id` settled. Cheap when nobody waits for it; thread-safe.
  void Notify(absl::string_view workflow_id);

  // Calls every watch's callback, and makes later Register calls call theirs at once (at shutdown,
  // so long polls end instead of holding the server up). Irreversible.
  void Close();
  bool closed() const;

  // Watches registered now (for tests and metrics).
  size_t waiting() const;

 private:
  const size_t max_waiters_;
  mutable absl::Mutex mu_;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, absl::flat_hash_set<Watch*>> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::saga
