#include "saga/workflow.h"

namespace order_platform::saga {
namespace {

template <typename Enum, size_t N>
std::optional<Enum> ParseByName(absl::string_view name, const Enum (&all)[N],
                                const char* (*name_of)(Enum)) {
  for (Enum value : all) {
    if (name == name_of(value)) return value;
  }
  return std::nullopt;
}

constexpr WorkflowStatus kAllWorkflowStatuses[] = {
    WorkflowStatus::kRunning,     WorkflowStatus::kWaiting,   WorkflowStatus::kCompensating,
    WorkflowStatus::kCompleted,   WorkflowStatus::kCompensated, WorkflowStatus::kCancelled,
    WorkflowStatus::kFailed,      WorkflowStatus::kNeedsAttention};
constexpr StepKind kAllStepKinds[] = {StepKind::kForward, StepKind::kCompensation,
                                      StepKind::kTimer, StepKind::kSignal};
constexpr StepStatus kAllStepStatuses[] = {StepStatus::kRunning, StepStatus::kSucceeded,
                                           StepStatus::kFailed, StepStatus::kRetryScheduled,
                                           StepStatus::kWaiting};

}  // namespace

const char* WorkflowStatusName(WorkflowStatus status) {
  switch (status) {
    case WorkflowStatus::kRunning:
      return "running";
    case WorkflowStatus::kWaiting:
      return "waiting";
    case WorkflowStatus::kCompensating:
      return "compensating";
    case WorkflowStatus::kCompleted:
      return "completed";
    case WorkflowStatus::kCompensated:
      return "compensated";
    case WorkflowStatus::kCancelled:
      return "cancelled";
    case WorkflowStatus::kFailed:
      return "failed";
    case WorkflowStatus::kNeedsAttention:
      return "needs_attention";
  }
  return "running";
}

std::optional<WorkflowStatus> ParseWorkflowStatus(absl::string_view name) {
  return ParseByName(name, kAllWorkflowStatuses, &WorkflowStatusName);
}

bool IsTerminal(WorkflowStatus status) {
  return status == WorkflowStatus::kCompleted || status == WorkflowStatus::kCompensated ||
         status == WorkflowStatus::kCancelled || status == WorkflowStatus::kFailed;
}

const char* StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kForward:
      return "forward";
    case StepKind::kCompensation:
      return "compensation";
    case StepKind::kTimer:
      return "timer";
    case StepKind::kSignal:
      return "signal";
  }
  return "forward";
}

std::optional<StepKind> ParseStepKind(absl::string_view name) {
  return ParseByName(name, kAllStepKinds, &StepKindName);
}

const char* StepStatusName(StepStatus status) {
  switch (status) {
    case StepStatus::kRunning:
      return "running";
    case StepStatus::kSucceeded:
      return "succeeded";
    case StepStatus::kFailed:
      return "failed";
    case StepStatus::kRetryScheduled:
      return "retry_scheduled";
    case StepStatus::kWaiting:
      return "waiting";
  }
  return "running";
}

std::optional<StepStatus> ParseStepStatus(absl::string_view name) {
  return ParseByName(name, kAllStepStatuses, &StepStatusName);
}

}  // namespace order_platform::saga
