// The vocabulary of the saga engine: workflow and step records as stored, their statuses, and
// the definition of a workflow type (its code, its compensations, its finish hook).
//
// The engine knows nothing of orders: workflows are registered by type name, take and return
// opaque bytes (serialized protobuf messages by convention), and call steps through a
// WorkflowContext (context.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/transaction_base>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "saga/retry_policy.h"

namespace order_platform::saga {

// The status reason of a workflow that failed because its deadline passed before its pivot.
inline constexpr absl::string_view kDeadlineExceededReason = "workflow deadline exceeded";

enum class WorkflowStatus {
  kRunning,         // Runnable or running forward.
  kWaiting,         // Waiting for a timer, a retry or a signal.
  kCompensating,    // Running compensations after a failure or a cancel.
  kCompleted,       // Terminal: the workflow function returned OK.
  kCompensated,     // Terminal: failed, and every compensation ran.
  kCancelled,       // Terminal: cancelled, and every compensation ran.
  kFailed,          // Terminal: failed with nothing to compensate.
  kNeedsAttention,  // A compensation or a post-pivot step gave up; an operator must retry.
};
const char* WorkflowStatusName(WorkflowStatus status);
std::optional<WorkflowStatus> ParseWorkflowStatus(absl::string_view name);
bool IsTerminal(WorkflowStatus status);

enum class StepKind { kForward, kCompensation, kTimer, kSignal };
const char* StepKindName(StepKind kind);
std::optional<StepKind> ParseStepKind(absl::string_view name);

enum class StepStatus { kRunning, kSucceeded, kFailed, kRetryScheduled, kWaiting };
const char* StepStatusName(StepStatus status);
std::optional<StepStatus> ParseStepStatus(absl::string_view name);

// One checkpoint row.
struct StepRecord {
  int seq = 0;
  std::string name;
  StepKind kind = StepKind::kForward;
  StepStatus status = StepStatus::kRunning;
  int attempts = 0;
  std::string result;  // Succeeded: the step's output bytes.
  absl::StatusCode error_code = absl::StatusCode::kOk;
  std::string error_message;
  std::string compensation;       // Registered compensation name; empty: none.
  std::string compensation_args;  // Its recorded arguments.
  bool pivot = false;
  int compensates_seq = 0;  // Compensation rows: the forward step they undo.
  absl::Time started_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();
  absl::Time next_attempt_at = absl::InfinitePast();

  // Gives the row a new status whose times the store stamps when it writes the row (finished_at
  // for succeeded/failed, no wake-up time); a caller that knows the finish time sets it after.
  void Settle(StepStatus new_status) {
    status = new_status;
    finished_at = absl::InfinitePast();
    next_attempt_at = absl::InfinitePast();
  }

  absl::Status error() const {
    return error_code == absl::StatusCode::kOk ? absl::OkStatus()
                                               : absl::Status(error_code, error_message);
  }
};

struct WorkflowRecord {
  std::string id;
  std::string type;
  std::string business_key;
  std::string input;
  WorkflowStatus status = WorkflowStatus::kRunning;
  std::string status_reason;
  std::string result;
  std::string compensation_cause;  // "failed" | "cancelled" | "" (forward).
  std::string failure_reason;      // Why compensation began (kept across operator retries).
  bool cancel_requested = false;
  std::string cancel_reason;
  bool past_pivot = false;
  std::string owner;
  int64_t lease_epoch = 0;
  absl::Time next_run_at = absl::InfinitePast();
  absl::Time lease_expires_at = absl::InfinitePast();
  absl::Time deadline_at = absl::InfiniteFuture();
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();
  std::vector<StepRecord> steps;  // Filled by reads that ask for history.
};

// What a terminal transition tells the workflow's finish hook.
struct FinishInfo {
  std::string workflow_id;
  std::string business_key;
  std::string input;
  WorkflowStatus status;  // Terminal or kNeedsAttention.
  std::string reason;     // Human-readable; empty for kCompleted.
};

class WorkflowContext;

// Compensation handlers receive the arguments recorded when the forward step was defined and an
// idempotency key stable across re-runs. Returning OK means "undone (or nothing to undo)".
struct CompensationCall {
  std::string workflow_id;
  std::string idempotency_key;
  std::string args;
  absl::Time deadline;
};
using CompensationFn = std::function<absl::Status(const CompensationCall&)>;

struct WorkflowDefinition {
  std::string type;
  // The workflow's code. Must be deterministic given its input and the results of its steps
  // (see context.h). Returns the output bytes, or the error that fails the workflow.
  std::function<absl::StatusOr<std::string>(WorkflowContext&, const std::string& input)> run;
  // Compensations this workflow's steps may name, by name.
  std::map<std::string, CompensationFn> compensations;
  RetryPolicy compensation_retry = RetryPolicy::Forever();
  // Maximum attempts for compensations before the workflow needs attention (0: forever).
  int compensation_max_attempts = 20;
  // Called in the same transaction that records a terminal (or needs-attention) status, so the
  // business state (e.g. the order's status) and the workflow's status commit together. May be
  // empty.
  std::function<absl::Status(pqxx::transaction_base&, const FinishInfo&)> on_finish;
  // The terminal statuses on_finish has work for (empty: all). For the others the end is
  // recorded in one autocommit statement instead of a transaction.
  std::function<bool(WorkflowStatus)> on_finish_applies;
  // Called once that transaction has committed, on the worker thread, for effects outside the
  // database (e.g. business metrics). Not called when recording the end failed; the workflow is
  // then re-run. Must be fast and must not throw. May be empty.
  std::function<void(const FinishInfo&)> after_finish;
};

}  // namespace order_platform::saga
