#include "saga/waiters.h"

#include "absl/strings/str_cat.h"

namespace order_platform::saga {

WorkflowWaiters::Waiter::~Waiter() {
  absl::MutexLock lock(&owner_.mu_);
  --owner_.count_;
  auto it = owner_.waiters_.find(workflow_id_);
  if (it == owner_.waiters_.end()) return;
  it->second.erase(this);
  if (it->second.empty()) owner_.waiters_.erase(it);
}

bool WorkflowWaiters::Waiter::WaitUntil(absl::Time deadline) {
  absl::MutexLock lock(&owner_.mu_);
  while (!announced_ && !owner_.closed_) {
    if (cv_.WaitWithDeadline(&owner_.mu_, deadline)) break;  // Timed out.
  }
  const bool announced = announced_;
  announced_ = false;
  return announced;
}

absl::StatusOr<std::unique_ptr<WorkflowWaiters::Waiter>> WorkflowWaiters::Watch(
    std::string workflow_id) {
  absl::MutexLock lock(&mu_);
  if (count_ >= max_waiters_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(max_waiters_,
                     " calls already wait for workflows (the server's limit); retry "
                     "later or read the workflow with GetWorkflow"));
  }
  ++count_;
  std::unique_ptr<Waiter> waiter(new Waiter(this, std::move(workflow_id)));
  waiters_[waiter->workflow_id_].insert(waiter.get());
  return waiter;
}

void WorkflowWaiters::Notify(absl::string_view workflow_id) {
  absl::MutexLock lock(&mu_);
  auto it = waiters_.find(workflow_id);
  if (it == waiters_.end()) return;
  for (Waiter* waiter : it->second) {
    waiter->announced_ = true;
    waiter->cv_.Signal();
  }
}

void WorkflowWaiters::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (auto& [id, waiters] : waiters_) {
    for (Waiter* waiter : waiters) waiter->cv_.Signal();
  }
}

bool WorkflowWaiters::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

size_t WorkflowWaiters::waiting() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

}  // namespace order_platform::saga
