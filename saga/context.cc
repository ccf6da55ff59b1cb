#include "saga/context.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "db/transaction.h"
#include "saga/fault.h"
#include "services/common/errors.h"

namespace order_platform::saga {
namespace {

constexpr absl::string_view kSuspendedPayload = "type.order-platform/suspended";

absl::Status SuspendedStatus() {
  absl::Status status = absl::UnavailableError("workflow suspended until its next wake-up");
  status.SetPayload(kSuspendedPayload, absl::Cord("1"));
  return status;
}

double Random01() {
  thread_local absl::BitGen gen;
  return absl::Uniform(gen, 0.0, 1.0);
}

// Transient database failures of a local step are retried; others are terminal.
bool IsTransientDbError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kAborted ||
         status.code() == absl::StatusCode::kResourceExhausted ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

void SetError(StepRecord& step, const absl::Status& error) {
  step.error_code = error.code();
  step.error_message = std::string(error.message());
}

}  // namespace

bool IsSuspension(const absl::Status& status) {
  return status.GetPayload(kSuspendedPayload).has_value();
}

WorkflowContext::WorkflowContext(db::PgWorkflowStore* store, EngineObserver* observer,
                                 db::Fence fence, const WorkflowRecord& workflow,
                                 std::vector<StepRecord> history,
                                 std::shared_ptr<RunSignals> signals)
    : store_(*store),
      observer_(*observer),
      fence_(std::move(fence)),
      type_(workflow.type),
      business_key_(workflow.business_key),
      deadline_(workflow.deadline_at),
      cancel_reason_(workflow.cancel_reason),
      signals_(std::move(signals)),
      past_pivot_(workflow.past_pivot) {
  for (StepRecord& step : history) {
    if (step.kind != StepKind::kCompensation) history_[step.seq] = std::move(step);
  }
}

absl::Status WorkflowContext::Stopped() const { return stop_status_; }

std::vector<StepRecord> WorkflowContext::TakePending() {
  std::vector<StepRecord> out;
  out.swap(pending_);
  return out;
}

absl::Status WorkflowContext::FlushPending() {
  if (pending_.empty()) return absl::OkStatus();
  OP_RETURN_IF_ERROR(Persist(store_.WriteSteps(fence_, pending_)));
  pending_.clear();
  FaultPoint("after_checkpoint");
  return absl::OkStatus();
}

absl::Status WorkflowContext::WriteWithPending(StepRecord step) {
  std::vector<StepRecord> rows = TakePending();
  const bool outcome = !rows.empty() || step.status == StepStatus::kSucceeded ||
                       step.status == StepStatus::kFailed;
  rows.push_back(std::move(step));
  OP_RETURN_IF_ERROR(Persist(store_.WriteSteps(fence_, rows)));
  if (outcome) FaultPoint("after_checkpoint");  // A step's outcome is durable.
  return absl::OkStatus();
}

absl::Duration WorkflowContext::WakeDelay(absl::Duration delay) const {
  if (past_pivot_ || deadline_ == absl::InfiniteFuture()) return delay;
  // Just past the deadline, so the run that wakes finds it passed and compensates.
  return std::min(delay,
                  std::max(deadline_ - absl::Now(), absl::ZeroDuration()) + absl::Milliseconds(10));
}

absl::Time WorkflowContext::CallDeadline(const StepOptions& options) const {
  const absl::Time deadline = absl::Now() + options.timeout;
  // The pivot's own call is not cut short: once it may have taken effect the workflow goes
  // forward, and a pivot without a compensation could not be undone.
  return past_pivot_ || options.pivot ? deadline : std::min(deadline, deadline_);
}

absl::Status WorkflowContext::SaveStepAndSuspend(const StepRecord& step, bool insert,
                                                 absl::Duration delay) {
  const absl::Duration wake = WakeDelay(delay);
  OP_RETURN_IF_ERROR(Persist(
      store_.SaveStepAndSuspend(fence_, step, insert, delay, WorkflowStatus::kWaiting, wake)));
  return Suspend(wake);
}

absl::Status WorkflowContext::Suspend(absl::Duration delay, bool persisted) {
  if (!persisted) {
    delay = WakeDelay(delay);
    OP_RETURN_IF_ERROR(FlushPending());
    OP_RETURN_IF_ERROR(Persist(store_.Suspend(fence_, WorkflowStatus::kWaiting, delay)));
  }
  suspended_ = true;
  suspend_delay_ = delay;
  stop_status_ = SuspendedStatus();
  return stop_status_;
}

absl::Status WorkflowContext::Persist(absl::Status write) {
  if (db::IsFenced(write) || signals_->lease_lost.load()) {
    fenced_ = true;
    stop_status_ = write.ok() ? absl::AbortedError("lease lost") : write;
    return stop_status_;
  }
  if (!write.ok() && !db::IsCancelRequested(write)) {
    // Not the step's outcome but the engine's own write: the run stops here (every later step
    // returns this too) and the workflow runs again from what was written.
    store_failed_ = true;
    stop_status_ = write;
    return stop_status_;
  }
  return write;
}

absl::Status WorkflowContext::CheckBoundary() {
  if (signals_->lease_lost.load()) {
    fenced_ = true;
    stop_status_ = absl::AbortedError("lease lost");
    return stop_status_;
  }
  if (past_pivot_) return absl::OkStatus();
  if (signals_->cancel_requested.load()) {
    cancelled_ = true;
    stop_status_ = absl::CancelledError(
        cancel_reason_.empty() ? "workflow cancelled" : absl::StrCat("cancelled: ", cancel_reason_));
    return stop_status_;
  }
  if (absl::Now() > deadline_) {
    stop_status_ = absl::DeadlineExceededError(kDeadlineExceededReason);
    return stop_status_;
  }
  return absl::OkStatus();
}

absl::Status WorkflowContext::Begin(const std::string& name, StepKind kind,
                                    const StepRecord** recorded) {
  OP_RETURN_IF_ERROR(Stopped());
  const int seq = ++next_seq_;
  *recorded = nullptr;
  auto it = history_.find(seq);
  if (it != history_.end()) {
    if (it->second.name != name || it->second.kind != kind) {
      nondeterministic_ = true;
      stop_status_ = absl::InternalError(absl::StrCat(
          "non-deterministic workflow: step ", seq, " is \"", name, "\" but was recorded as \"",
          it->second.name, "\""));
      return stop_status_;
    }
    *recorded = &it->second;
    // Finished steps replay without crossing a boundary.
    if (it->second.status == StepStatus::kSucceeded || it->second.status == StepStatus::kFailed) {
      return absl::OkStatus();
    }
  }
  return CheckBoundary();
}

absl::StatusOr<std::string> WorkflowContext::Step(
    const StepOptions& options,
    const std::function<absl::StatusOr<std::string>(const StepCall&)>& fn) {
  const StepRecord* recorded = nullptr;
  OP_RETURN_IF_ERROR(Begin(options.name, StepKind::kForward, &recorded));
  StepRecord step;
  bool row_exists = recorded != nullptr;
  if (recorded != nullptr) {
    if (recorded->status == StepStatus::kSucceeded) {
      past_pivot_ = past_pivot_ || recorded->pivot;
      return recorded->result;
    }
    if (recorded->status == StepStatus::kFailed) return recorded->error();
    step = *recorded;
    if (step.status == StepStatus::kRetryScheduled) {
      const absl::Duration remaining = step.next_attempt_at - absl::Now();
      if (remaining > absl::Milliseconds(20)) return Suspend(remaining, /*persisted=*/false);
    }
  } else {
    step.seq = next_seq_;
    step.name = options.name;
    step.kind = StepKind::kForward;
    step.status = StepStatus::kRunning;
    step.compensation = options.compensation;
    step.compensation_args = options.compensation_args;
    step.pivot = options.pivot;
    if (!options.compensation.empty()) {
      // The obligation to compensate is durable before the call is issued (with the buffered
      // checkpoints of the steps before it).
      OP_RETURN_IF_ERROR(WriteWithPending(step));
      row_exists = true;
    }
  }

  FaultPoint("before_remote_call");
  StepCall call{fence_.workflow_id, absl::StrCat(fence_.workflow_id, "/", options.name),
                step.attempts + 1, CallDeadline(options)};
  const absl::Time started = absl::Now();
  absl::StatusOr<std::string> result = fn(call);
  FaultPoint("after_remote_call");
  step.attempts++;
  const absl::Duration took = absl::Now() - started;

  if (result.ok()) {
    observer_.StepAttempt(type_, options.name, "succeeded", took);
    step.Settle(StepStatus::kSucceeded);
    step.result = *result;
    step.error_code = absl::StatusCode::kOk;
    step.error_message.clear();
    if (!row_exists) step.started_at = started;
    step.finished_at = absl::Now();  // Written later, with the next write.
    if (options.pivot) {
      // Passing the pivot changes what a cancel may do: recorded before anything else happens,
      // and refused once a cancel was accepted (the run then compensates, this step included
      // when it owes a compensation; the earlier checkpoints stay buffered for that).
      std::vector<StepRecord> rows = pending_;
      rows.push_back(step);
      const absl::Status written = store_.WriteSteps(fence_, rows);
      if (db::IsCancelRequested(written)) {
        cancelled_ = true;
        stop_status_ = written;
        return stop_status_;
      }
      OP_RETURN_IF_ERROR(Persist(written));
      pending_.clear();
      FaultPoint("after_checkpoint");
    } else {
      pending_.push_back(step);
    }
    past_pivot_ = past_pivot_ || options.pivot;
    return result;
  }
  SetError(step, result.status());
  RetryPolicy policy = options.retry;
  if (past_pivot_) policy.maximum_attempts = 0;  // After the pivot: forward only, retry on.
  if (policy.ShouldRetry(result.status(), step.attempts)) {
    observer_.StepAttempt(type_, options.name, "retry", took);
    const absl::Duration delay = policy.DelayAfter(step.attempts, Random01());
    step.status = StepStatus::kRetryScheduled;
    OP_RETURN_IF_ERROR(FlushPending());
    return SaveStepAndSuspend(step, !row_exists, delay);
  }
  observer_.StepAttempt(type_, options.name, "failed", took);
  step.Settle(StepStatus::kFailed);
  if (!row_exists) step.started_at = started;
  OP_RETURN_IF_ERROR(WriteWithPending(step));
  return result.status();
}

absl::StatusOr<std::string> WorkflowContext::LocalStep(
    const StepOptions& options,
    absl::FunctionRef<absl::StatusOr<std::string>(pqxx::transaction_base&)> fn) {
  const StepRecord* recorded = nullptr;
  OP_RETURN_IF_ERROR(Begin(options.name, StepKind::kForward, &recorded));
  StepRecord step;
  if (recorded != nullptr) {
    if (recorded->status == StepStatus::kSucceeded) {
      past_pivot_ = past_pivot_ || recorded->pivot;
      return recorded->result;
    }
    if (recorded->status == StepStatus::kFailed) return recorded->error();
    step = *recorded;
    const absl::Duration remaining = step.next_attempt_at - absl::Now();
    if (remaining > absl::Milliseconds(20)) return Suspend(remaining, /*persisted=*/false);
  } else {
    step.seq = next_seq_;
    step.name = options.name;
    step.kind = StepKind::kForward;
    step.pivot = options.pivot;
  }
  const bool row_exists = recorded != nullptr;
  step.attempts++;
  FaultPoint("before_local_commit");
  const absl::Time started = absl::Now();
  absl::StatusOr<std::string> result = store_.RunLocalStep(fence_, step, fn, pending_);
  const absl::Duration took = absl::Now() - started;
  if (result.ok()) {
    pending_.clear();
    observer_.StepAttempt(type_, options.name, "succeeded", took);
    FaultPoint("after_checkpoint");
    past_pivot_ = past_pivot_ || options.pivot;
    return result;
  }
  OP_RETURN_IF_ERROR(Persist(db::IsFenced(result.status()) ? result.status() : absl::OkStatus()));
  if (db::IsOutcomeUnknown(result.status())) {
    // The connection died during COMMIT: the step may have committed with its checkpoint. Not
    // the step's outcome, and nothing may be written over that checkpoint: the run stops as
    // when an engine write fails, and the workflow runs again from what was committed (the step
    // replays its recorded result, or runs again if it did not commit).
    return Persist(result.status());
  }
  if (db::IsCancelRequested(result.status())) {
    cancelled_ = true;
    stop_status_ = result.status();
    return stop_status_;
  }
  SetError(step, result.status());
  if (IsTransientDbError(result.status()) &&
      options.retry.ShouldRetry(result.status(), step.attempts)) {
    observer_.StepAttempt(type_, options.name, "retry", took);
    const absl::Duration delay = options.retry.DelayAfter(step.attempts, Random01());
    step.status = StepStatus::kRetryScheduled;
    OP_RETURN_IF_ERROR(FlushPending());
    return SaveStepAndSuspend(step, !row_exists, delay);
  }
  observer_.StepAttempt(type_, options.name, "failed", took);
  step.Settle(StepStatus::kFailed);
  OP_RETURN_IF_ERROR(WriteWithPending(step));
  return result.status();
}

absl::Status WorkflowContext::Sleep(const std::string& name, absl::Duration duration) {
  const StepRecord* recorded = nullptr;
  OP_RETURN_IF_ERROR(Begin(name, StepKind::kTimer, &recorded));
  OP_RETURN_IF_ERROR(FlushPending());
  if (recorded == nullptr) {
    StepRecord step;
    step.seq = next_seq_;
    step.name = name;
    step.kind = StepKind::kTimer;
    step.status = StepStatus::kWaiting;
    if (duration <= absl::ZeroDuration()) {
      step.Settle(StepStatus::kSucceeded);
      return Persist(store_.WriteSteps(fence_, {step}));
    }
    return SaveStepAndSuspend(step, /*insert=*/true, duration);
  }
  if (recorded->status == StepStatus::kSucceeded) return absl::OkStatus();
  const absl::Duration remaining = recorded->next_attempt_at - absl::Now();
  if (remaining > absl::Milliseconds(20)) return Suspend(remaining, /*persisted=*/false);
  StepRecord step = *recorded;
  step.Settle(StepStatus::kSucceeded);
  return Persist(store_.WriteSteps(fence_, {step}));
}

absl::StatusOr<std::string> WorkflowContext::WaitForSignal(const std::string& signal_name,
                                                           absl::Duration timeout) {
  const std::string name = absl::StrCat("signal:", signal_name);
  const StepRecord* recorded = nullptr;
  OP_RETURN_IF_ERROR(Begin(name, StepKind::kSignal, &recorded));
  OP_RETURN_IF_ERROR(FlushPending());
  if (recorded != nullptr && recorded->status == StepStatus::kSucceeded) return recorded->result;
  if (recorded != nullptr && recorded->status == StepStatus::kFailed) return recorded->error();

  StepRecord step;
  if (recorded != nullptr) {
    step = *recorded;
  } else {
    step.seq = next_seq_;
    step.name = name;
    step.kind = StepKind::kSignal;
  }
  step.attempts++;
  absl::StatusOr<std::optional<std::string>> payload =
      store_.ConsumeSignal(fence_, step, signal_name);
  OP_RETURN_IF_ERROR(Persist(payload.status()));
  if (payload->has_value()) return **payload;

  if (recorded == nullptr) {
    step.status = StepStatus::kWaiting;
    return SaveStepAndSuspend(step, /*insert=*/true, timeout);
  }
  const absl::Duration remaining = recorded->next_attempt_at - absl::Now();
  if (remaining > absl::Milliseconds(20)) {
    return SaveStepAndSuspend(step, /*insert=*/false, remaining);
  }
  const absl::Status timed_out = absl::DeadlineExceededError(
      absl::StrCat("no signal \"", signal_name, "\" within ", absl::FormatDuration(timeout)));
  step.Settle(StepStatus::kFailed);
  SetError(step, timed_out);
  OP_RETURN_IF_ERROR(Persist(store_.WriteSteps(fence_, {step})));
  return timed_out;
}

}  // namespace order_platform::saga
