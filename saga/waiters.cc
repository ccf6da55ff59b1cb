#include "saga/waiters.h"

#include "absl/strings/str_cat.h"

namespace order_platform::saga {

WorkflowWaiters::Watch::~Watch() {
  absl::MutexLock lock(&owner_.mu_);
  --owner_.count_;
  auto it = owner_.watches_.find(workflow_id_);
  if (it == owner_.watches_.end()) return;
  it->second.erase(this);
  if (it->second.empty()) owner_.watches_.erase(it);
}

absl::StatusOr<std::unique_ptr<WorkflowWaiters::Watch>> WorkflowWaiters::Register(
    std::string workflow_id, std::function<void()> on_announced) {
  absl::MutexLock lock(&mu_);
  if (count_ >= max_waiters_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(max_waiters_,
                     " calls already wait for workflows (the server's limit); retry "
                     "later or read the workflow with GetWorkflow"));
  }
  ++count_;
  std::unique_ptr<Watch> watch(new Watch(this, std::move(workflow_id), std::move(on_announced)));
  watches_[watch->workflow_id_].insert(watch.get());
  if (closed_) watch->on_announced_();
  return watch;
}

void WorkflowWaiters::Notify(absl::string_view workflow_id) {
  absl::MutexLock lock(&mu_);
  auto it = watches_.find(workflow_id);
  if (it == watches_.end()) return;
  for (Watch* watch : it->second) watch->on_announced_();
}

void WorkflowWaiters::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  for (auto& [id, watches] : watches_) {
    for (Watch* watch : watches) watch->on_announced_();
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
