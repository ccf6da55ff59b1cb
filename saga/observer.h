// What the engine reports as it works, for metrics and logs. The engine calls these from its
// worker threads; implementations must be thread-safe and cheap. Label-like arguments come from
// bounded sets (workflow types and step names are code, never data).
#pragma once

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace order_platform::saga {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // A workflow type was registered with the engine (Engine::Register): the set of types this
  // engine runs, e.g. to create their metric series before the first workflow.
  virtual void WorkflowRegistered(absl::string_view type) {}
  // A workflow was claimed for the first time (lease epoch 1): it starts running. Counted once
  // per workflow, whichever engine claims it; re-runs after a wait, a crash or a takeover are not
  // starts.
  virtual void WorkflowStarted(absl::string_view type) {}
  // A workflow reached a terminal status or needs attention. `outcome` is the status name
  // (completed, compensated, cancelled, failed, needs_attention); `duration` runs from its start
  // (creation). One an operator retries after needs_attention is reported again when it ends.
  virtual void WorkflowFinished(absl::string_view type, absl::string_view outcome,
                                absl::Duration duration) {}
  // One attempt of a step ended. `outcome`: succeeded, retry, failed.
  virtual void StepAttempt(absl::string_view type, absl::string_view step,
                           absl::string_view outcome, absl::Duration duration) {}
  // One attempt of a compensation ended (`ok` or not).
  virtual void CompensationAttempt(absl::string_view type, absl::string_view compensation,
                                   bool ok) {}
  // A workflow was claimed whose previous owner's lease had expired.
  virtual void LeaseTakeover(absl::string_view type) {}
};

}  // namespace order_platform::saga
