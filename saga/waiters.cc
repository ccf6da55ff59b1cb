#include "saga/waiters.h"

namespace order_platform::saga {

WorkflowWaiters::Waiter::~Waiter() {
  absl::MutexLock lock(&owner_.mu_);
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

std::unique_ptr<WorkflowWaiters::Waiter> WorkflowWaiters::Watch(std::string workflow_id) {
  std::unique_ptr<Waiter> waiter(new Waiter(this, std::move(workflow_id)));
  absl::MutexLock lock(&mu_);
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
  size_t n = 0;
  for (const auto& [id, waiters] : waiters_) n += waiters.size();
  return n;
}

}  // namespace order_platform::saga
