// WorkflowContext: how workflow code calls steps, durably.
//
// A workflow function is re-run from the top whenever its workflow is (re)claimed: after a
// crash, after a durable wait (retry backoff, Sleep, WaitForSignal) or on another worker.
// Steps are numbered in call order; a step whose outcome is checkpointed returns the recorded
// result or error instead of running again (replay).
//
// The determinism rule: given the same input and the same step results, a workflow function
// must call the same steps, with the same names, in the same order. So it must not branch on
// the clock, random numbers, environment or any I/O except through steps. A name that differs
// from the recorded one at the same position is reported as non-determinism and the workflow is
// parked for an operator (NEEDS_ATTENTION).
//
// Batched checkpoints: a remote step's success is not written on its own. It is buffered and
// written with the workflow's next write — the next step's compensation obligation, a local
// step's transaction, a suspension, or the end of the workflow — so a 5-step saga spends one
// engine transaction per compensable step plus one to finish. This is safe because remote steps
// are idempotent by key (guarantee 4): a crash before the buffer is written re-runs the call,
// which returns the recorded outcome; and an obligation row written before the call keeps the
// step compensable meanwhile. Failures, retries and pivot steps are written at once.
//
// Suspension: when a step must wait (a retry's backoff, a timer, a signal not yet sent) the
// context records the wake-up time and returns a "suspended" status; every later call returns it
// too, and the engine ignores what the function returns. Workflow code just propagates errors
// (OP_ASSIGN_OR_RETURN) and never needs to know.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/pg_workflow_store.h"
#include "saga/observer.h"
#include "saga/retry_policy.h"
#include "saga/workflow.h"

namespace order_platform::saga {

struct StepOptions {
  // Unique within the workflow; part of the idempotency key.
  std::string name;
  RetryPolicy retry;
  // Deadline of each attempt, handed to the step (and propagated to its gRPC call); before the
  // pivot, never past the workflow's deadline.
  absl::Duration timeout = absl::Seconds(10);
  // Registered compensation that undoes this step, and its arguments. Recorded durably before
  // the step's first attempt, so a step that timed out but may have succeeded is still undone.
  std::string compensation;
  std::string compensation_args;
  // After a pivot step succeeds the workflow only goes forward: no cancel, no compensation.
  bool pivot = false;
};

// What a remote step's function receives.
struct StepCall {
  std::string workflow_id;
  // "<workflow id>/<step name>": stable across re-runs; send it as the request id.
  std::string idempotency_key;
  int attempt = 1;
  absl::Time deadline;
};

// Shared between a running workflow and the engine's heartbeat.
struct RunSignals {
  std::atomic<bool> lease_lost{false};
  std::atomic<bool> cancel_requested{false};
};

class WorkflowContext {
 public:
  // `store` and `observer` must outlive the context; `history` is the workflow's step rows.
  WorkflowContext(db::PgWorkflowStore* store, EngineObserver* observer, db::Fence fence,
                  const WorkflowRecord& workflow, std::vector<StepRecord> history,
                  std::shared_ptr<RunSignals> signals);

  const std::string& workflow_id() const { return fence_.workflow_id; }
  const std::string& business_key() const { return business_key_; }

  // A remote step: at-least-once, retried per options.retry with durable backoff. Returns the
  // step's result bytes, or its terminal error (recorded, so replay returns it too).
  absl::StatusOr<std::string> Step(
      const StepOptions& options,
      const std::function<absl::StatusOr<std::string>(const StepCall&)>& fn);

  // A local step: `fn`'s writes and the step's checkpoint commit in one transaction (exactly
  // once). Transient database errors are retried durably; others are terminal.
  absl::StatusOr<std::string> LocalStep(
      const StepOptions& options,
      absl::FunctionRef<absl::StatusOr<std::string>(pqxx::transaction_base&)> fn);

  // A durable timer: returns OK once `duration` (database clock) has passed since it was first
  // reached. Holds no thread while waiting.
  absl::Status Sleep(const std::string& name, absl::Duration duration);

  // Waits for the signal `signal_name` (SignalWorkflow), consuming the oldest one sent — also one
  // sent before the wait began. DEADLINE_EXCEEDED (recorded) when `timeout` passes first.
  absl::StatusOr<std::string> WaitForSignal(const std::string& signal_name,
                                            absl::Duration timeout);

  // Outcome flags the engine reads after the function returns.
  bool suspended() const { return suspended_; }
  bool fenced() const { return fenced_; }
  // The engine's own write failed (database unreachable, pool exhausted, ...): the run stopped,
  // and the workflow must run again from its checkpoints; no step failed.
  bool store_failed() const { return store_failed_; }
  // Why the run stopped (OK while it has not).
  absl::Status stop_status() const { return stop_status_; }
  bool cancelled() const { return cancelled_; }
  bool nondeterministic() const { return nondeterministic_; }
  bool past_pivot() const { return past_pivot_; }
  // The wake-up delay of a suspension (for the engine's local timer).
  absl::Duration suspend_delay() const { return suspend_delay_; }

  // Buffered checkpoints not yet written. The engine writes them with the workflow's end
  // (TakePending) or on their own (FlushPending) before any other write of its own.
  std::vector<StepRecord> TakePending();
  absl::Status FlushPending();

 private:
  // Common prologue of every durable call: the next seq and its recorded row, if any. Returns a
  // non-OK status when the run must unwind (suspended, fenced, cancelled, non-deterministic).
  absl::Status Begin(const std::string& name, StepKind kind, const StepRecord** recorded);
  // Unwinds the run until `delay` from now. `persisted`: the wake-up time and the lease release
  // were already written (by SaveStepAndSuspend, with the WakeDelay it wrote, so the local timer
  // never fires before the row is due); otherwise they are written here, capped the same way.
  absl::Status Suspend(absl::Duration delay, bool persisted = true);
  // Writes `step` (its retry or wake-up `delay` from now, inserted or updated), parks the
  // workflow until WakeDelay(delay) and unwinds the run.
  absl::Status SaveStepAndSuspend(const StepRecord& step, bool insert, absl::Duration delay);
  // The workflow's deadline bounds, before the pivot, every wait and every remote call but the
  // pivot's own: a wait wakes just past it (and the run then compensates), a call's deadline is
  // at most it. (A local step's transaction is not cut short.)
  absl::Duration WakeDelay(absl::Duration delay) const;
  absl::Time CallDeadline(const StepOptions& options) const;
  absl::Status Stopped() const;
  absl::Status Persist(absl::Status write);
  // Writes `step` together with the buffered checkpoints, in one statement.
  absl::Status WriteWithPending(StepRecord step);
  absl::Status CheckBoundary();

  db::PgWorkflowStore& store_;
  EngineObserver& observer_;
  const db::Fence fence_;
  const std::string type_;
  const std::string business_key_;
  const absl::Time deadline_;
  const std::string cancel_reason_;
  std::map<int, StepRecord> history_;
  std::shared_ptr<RunSignals> signals_;
  std::vector<StepRecord> pending_;  // Succeeded remote steps whose checkpoint is buffered.
  int next_seq_ = 0;
  bool past_pivot_ = false;
  bool suspended_ = false;
  bool fenced_ = false;
  bool store_failed_ = false;
  bool cancelled_ = false;
  bool nondeterministic_ = false;
  absl::Status stop_status_;
  absl::Duration suspend_delay_ = absl::ZeroDuration();
};

// The status a suspended context returns from every call.
bool IsSuspension(const absl::Status& status);

}  // namespace order_platform::saga
