#include "saga/engine.h"

#include <unistd.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "db/transaction.h"
#include "saga/fault.h"
#include "services/common/errors.h"
#include "services/common/log.h"

namespace order_platform::saga {
namespace {

// How long a run that could not write a checkpoint waits before the workflow runs again.
constexpr absl::Duration kCheckpointFailurePause = absl::Seconds(1);

std::string DefaultOwner() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  absl::BitGen gen;
  return absl::StrCat(host, ":", getpid(), ":", absl::Uniform<uint32_t>(gen));
}

double Random01() {
  thread_local absl::BitGen gen;
  return absl::Uniform(gen, 0.0, 1.0);
}

// Forward steps whose compensation is owed: done, possibly done, or interrupted mid-call.
bool OwesCompensation(const StepRecord& step) {
  if (step.kind != StepKind::kForward || step.compensation.empty()) return false;
  switch (step.status) {
    case StepStatus::kSucceeded:
    case StepStatus::kRunning:
      return true;
    case StepStatus::kRetryScheduled:
      return step.attempts > 0 && MayHaveTakenEffect(step.error());
    case StepStatus::kFailed:
      return MayHaveTakenEffect(step.error());
    case StepStatus::kWaiting:
      return false;
  }
  return false;
}

void LogWorkflow(LogLevel level, absl::string_view message, const std::string& workflow_id,
                 absl::string_view detail = {}) {
  Log(level, message, {{"workflow_id", workflow_id}, {"detail", detail}});
}

class Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& conn, Engine* engine)
      : pqxx::notification_receiver(conn, db::kWorkflowChannel), engine_(engine) {}
  void operator()(const std::string&, int) override { engine_->Poke(); }

 private:
  Engine* engine_;
};

}  // namespace

Engine::Engine(db::PgWorkflowStore* store, EngineOptions options, EngineObserver* observer)
    : store_(*store),
      options_(std::move(options)),
      observer_(observer != nullptr ? *observer : default_observer_) {
  if (options_.owner.empty()) options_.owner = DefaultOwner();
  options_.workers = std::max(1, options_.workers);
}

Engine::~Engine() { Stop(absl::Seconds(5)); }

absl::Status Engine::Register(WorkflowDefinition definition) {
  if (definition.type.empty() || !definition.run) {
    return absl::InvalidArgumentError("a workflow definition needs a type and a run function");
  }
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("register workflows before Start");
  const std::string type = definition.type;
  if (!definitions_.emplace(type, std::move(definition)).second) {
    return absl::InvalidArgumentError(absl::StrCat("workflow type ", type, " registered twice"));
  }
  observer_.WorkflowRegistered(type);
  return absl::OkStatus();
}

absl::Status Engine::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return absl::OkStatus();
  started_ = true;
  threads_.emplace_back([this] { DispatchLoop(); });
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  threads_.emplace_back([this] { HeartbeatLoop(); });
  if (!options_.listen_dsn.empty()) threads_.emplace_back([this] { ListenLoop(); });
  if (options_.retention > absl::ZeroDuration()) threads_.emplace_back([this] { RetentionLoop(); });
  Log(LogLevel::kInfo, "saga engine started",
      {{"owner", options_.owner}, {"workers", absl::StrCat(options_.workers)}});
  return absl::OkStatus();
}

void Engine::Stop(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    // Segments already running finish at their next step boundary or suspension; give them
    // `grace`, then signal them as if their leases were lost (they stop writing).
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_ == 0; };
    const int queued = static_cast<int>(queue_.size());
    std::deque<Queued> unstarted;
    unstarted.swap(queue_);
    active_ -= queued;
    for (const Queued& q : unstarted) {
      auto it = running_.find(q.claimed.workflow.id);
      if (it != running_.end() && it->second.signals == q.signals) running_.erase(it);
    }
    mu_.Unlock();
    for (const Queued& q : unstarted) {
      const WorkflowRecord& w = q.claimed.workflow;
      (void)store_.Release({w.id, options_.owner, w.lease_epoch});
    }
    mu_.Lock();
    if (!mu_.AwaitWithTimeout(absl::Condition(&idle), grace)) {
      for (auto& [id, running] : running_) running.signals->lease_lost = true;
    }
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  Log(LogLevel::kInfo, "saga engine stopped", {{"owner", options_.owner}});
}

absl::StatusOr<bool> Engine::StartWorkflow(const db::WorkflowStart& start) {
  if (definitions_.find(start.type) == definitions_.end()) {
    return InvalidField("workflow_type", absl::StrCat("unknown workflow type ", start.type));
  }
  OP_ASSIGN_OR_RETURN(bool created, store_.Start(start));
  Poke();
  return created;
}

void Engine::Poke() {
  absl::MutexLock lock(&mu_);
  poked_ = true;
}

bool Engine::IsRunning(const std::string& workflow_id) const {
  absl::MutexLock lock(&mu_);
  return running_.count(workflow_id) > 0;
}

void Engine::OfferLease(db::WorkflowStart* start) {
  absl::MutexLock lock(&mu_);
  if (!started_ || stopping_ || static_cast<int>(queue_.size()) >= options_.workers) return;
  // Work announced and not yet claimed (a claim owed while every worker is busy) goes first:
  // under a steady stream of starts run here, the workers would never be free for the claim,
  // and a workflow inserted unowned (when the queue was full, or by another process) would
  // wait until the stream stopped. Refused, this start is inserted unowned too, and the claims
  // take them all in next_run_at order.
  if (poked_) return;
  if (definitions_.find(start->type) == definitions_.end()) return;
  start->owner = options_.owner;
  start->lease = options_.lease;
}

void Engine::Adopt(const db::WorkflowStart& start) {
  if (start.owner != options_.owner) {
    Poke();
    return;
  }
  db::ClaimedWorkflow claimed;
  WorkflowRecord& w = claimed.workflow;
  w.id = start.id;
  w.type = start.type;
  w.business_key = start.business_key;
  w.input = start.input;
  w.status = WorkflowStatus::kRunning;
  w.owner = start.owner;
  w.lease_epoch = 1;
  w.created_at = absl::Now();
  w.deadline_at = start.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                             : w.created_at + start.timeout;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      observer_.WorkflowStarted(w.type);
      EnqueueLocked(std::move(claimed));
      return;
    }
  }
  // Stopping: give the lease back so another worker need not wait for it to expire.
  (void)store_.Release({start.id, start.owner, 1});
}

void Engine::EnqueueLocked(db::ClaimedWorkflow claimed) {
  Running& running = running_[claimed.workflow.id];
  if (running.signals != nullptr && running.epoch >= claimed.workflow.lease_epoch) {
    // An older claim than the run here (a start adopted after the dispatcher claimed the
    // workflow): the run here keeps it, and this one never runs.
    LogWorkflow(LogLevel::kWarning, "an older claim of a workflow run here is dropped",
                claimed.workflow.id);
    return;
  }
  active_++;
  auto signals = std::make_shared<RunSignals>();
  signals->cancel_requested = claimed.workflow.cancel_requested;
  if (running.signals != nullptr) {
    // A run of this workflow is still here (queued, or executing past its lease, say while its
    // heartbeat could not be written) and its lease was claimed again at a later epoch: that run
    // lost it. It stops at its next step boundary, every write it tries is fenced, and when it
    // ends it leaves this run's entry alone.
    running.signals->lease_lost = true;
    LogWorkflow(LogLevel::kWarning,
                "claimed again while a run of it is still here; stopping that run",
                claimed.workflow.id);
  }
  running = Running{claimed.workflow.type, claimed.workflow.lease_epoch, signals};
  queue_.push_back(Queued{std::move(claimed), std::move(signals)});
}

void Engine::ScheduleLocalWake(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  next_local_wake_ = std::min(next_local_wake_, absl::Now() + delay);
}

void Engine::DispatchLoop() {
  while (true) {
    int free_slots = 0;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time deadline = std::min(absl::Now() + options_.poll_interval, next_local_wake_);
      // Woken early by a poke with a slot free, or by a local wake due before this deadline
      // (a short retry scheduled while waiting): the latter only moves the deadline.
      auto ready = [this, deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (poked_ && active_ < options_.workers) || next_local_wake_ < deadline;
      };
      const bool woken = mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
      if (stopping_) return;
      const absl::Time now = absl::Now();
      if (woken && !(poked_ && active_ < options_.workers) && next_local_wake_ > now) continue;
      // Time to claim: a poke, a local wake that is due, or the poll. With no slot free, the
      // claim is owed (poked_) and happens as soon as a worker finishes.
      if (next_local_wake_ <= now) next_local_wake_ = absl::InfiniteFuture();
      free_slots = options_.workers - active_;
      if (free_slots <= 0) {
        // Every worker is busy. Starts run here (Adopt) can keep them so for as long as the
        // stream of starts lasts, so a claim owed for a poll interval is made anyway, into the
        // local queue (FIFO, bounded like Adopt's): claimable work waits a poll interval or so,
        // never until the stream stops.
        if (owed_since_ == absl::InfiniteFuture()) owed_since_ = now;
        const int room = options_.workers - static_cast<int>(queue_.size());
        poked_ = true;
        if (now - owed_since_ < options_.poll_interval || room <= 0) continue;
        free_slots = room;
      }
      poked_ = false;
      owed_since_ = absl::InfiniteFuture();
    }
    absl::StatusOr<std::vector<db::ClaimedWorkflow>> claimed =
        store_.Claim(options_.owner, options_.lease, free_slots);
    if (!claimed.ok()) {
      Log(LogLevel::kWarning, "claiming workflows failed", {{"error", claimed.status().message()}});
      absl::SleepFor(std::min(options_.poll_interval, absl::Seconds(1)));
      continue;
    }
    absl::MutexLock lock(&mu_);
    for (db::ClaimedWorkflow& c : *claimed) {
      if (c.workflow.lease_epoch == 1) observer_.WorkflowStarted(c.workflow.type);
      if (c.takeover) observer_.LeaseTakeover(c.workflow.type);
      EnqueueLocked(std::move(c));
    }
    // A full batch suggests more is runnable: claim again as soon as a slot frees up.
    if (static_cast<int>(claimed->size()) == free_slots) poked_ = true;
  }
}

void Engine::WorkerLoop() {
  while (true) {
    Queued next;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // Stopping.
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    RunSegment(next.claimed, next.signals);
    absl::MutexLock lock(&mu_);
    active_--;
    // Only this run's entry: a later claim of the same workflow may have replaced it.
    auto it = running_.find(next.claimed.workflow.id);
    if (it != running_.end() && it->second.signals == next.signals) running_.erase(it);
    // No claim just because a slot freed up: a poke, due wake or poll that came while every
    // worker was busy left poked_ set, and the dispatcher claims as soon as this slot is free.
    // (A claim per finished workflow found nothing almost every time: one statement per saga.)
  }
}

void Engine::HeartbeatLoop() {
  while (true) {
    // The runs as they are now: what the answer says is applied to these runs, not to whichever
    // run holds the id by the time it arrives (a later claim of the same workflow, say).
    std::map<std::string, Running> runs;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.heartbeat_interval)) return;
      runs = running_;
    }
    if (runs.empty()) continue;
    std::vector<std::string> ids;
    ids.reserve(runs.size());
    for (const auto& [id, run] : runs) ids.push_back(id);
    absl::StatusOr<std::map<std::string, db::LeaseState>> held =
        store_.Heartbeat(options_.owner, ids, options_.lease);
    if (!held.ok()) {
      Log(LogLevel::kWarning, "lease heartbeat failed", {{"error", held.status().message()}});
      continue;
    }
    for (const auto& [id, run] : runs) {
      auto h = held->find(id);
      if (h != held->end() && h->second.epoch == run.epoch) {
        if (h->second.cancel_requested) run.signals->cancel_requested = true;
        continue;
      }
      // Renewed at a later epoch: this engine claimed it again, and that claim's run took over
      // (this one was told so when it was replaced). Missing from `held`: another worker took
      // it (its lease expired), or it was let go by its own run since the runs were read (its
      // end, a suspension or a release committed: the run is on its way out). Only a workflow
      // owned now by another worker, or by this one at another epoch, is a lost lease.
      bool lost = h != held->end();
      if (!lost) {
        absl::StatusOr<WorkflowRecord> now = store_.Get(id, /*with_steps=*/false);
        // Gone (a finished workflow deleted) counts as let go; a failed read as taken.
        lost = now.ok() ? !now->owner.empty() &&
                              (now->owner != options_.owner || now->lease_epoch != run.epoch)
                        : !absl::IsNotFound(now.status());
      }
      if (lost && !run.signals->lease_lost.exchange(true)) {
        LogWorkflow(LogLevel::kWarning, "lease lost; stopping this run", id);
      }
    }
  }
}

void Engine::ListenLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    try {
      pqxx::connection conn(options_.listen_dsn);
      Listener listener(conn, this);
      Poke();  // Catch up on anything announced while not listening.
      while (true) {
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) return;
        }
        conn.await_notification(0, 200000);
      }
    } catch (const std::exception& e) {
      Log(LogLevel::kWarning, "workflow listener lost its connection; polling meanwhile",
          {{"error", e.what()}});
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Seconds(1))) return;
    }
  }
}

void Engine::RetentionLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Minutes(1))) return;
    }
    constexpr int kBatch = 1000;
    int64_t total = 0;
    for (int round = 0; round < 100; ++round) {
      absl::StatusOr<int64_t> deleted = store_.DeleteFinished(options_.retention, kBatch);
      if (!deleted.ok()) break;
      total += *deleted;
      if (*deleted < kBatch) break;
    }
    if (total > 0) {
      Log(LogLevel::kInfo, "deleted finished workflows past retention",
          {{"count", absl::StrCat(total)}});
    }
  }
}

void Engine::FinishWorkflow(const db::Fence& fence, const WorkflowDefinition* definition,
                            const WorkflowRecord& workflow, WorkflowStatus status,
                            const std::string& reason, const std::string& result,
                            const std::vector<StepRecord>& pending) {
  FinishInfo info{workflow.id, workflow.business_key, workflow.input, status, reason};
  static const std::function<absl::Status(pqxx::transaction_base&, const FinishInfo&)> kNoHook;
  const bool hook = definition != nullptr && definition->on_finish &&
                    (!definition->on_finish_applies || definition->on_finish_applies(status));
  absl::Status finished =
      store_.Finish(fence, info, result, hook ? definition->on_finish : kNoHook, pending);
  if (db::IsOutcomeUnknown(finished)) {
    // The connection died during the end's COMMIT: the row says whether it committed (a run
    // ends only from running or compensating, so finding `status` there means it did).
    absl::StatusOr<WorkflowRecord> row = store_.Get(workflow.id, /*with_steps=*/false);
    if (row.ok() && row->status == status) finished = absl::OkStatus();
  }
  if (!finished.ok()) {
    LogWorkflow(LogLevel::kWarning, "could not record the workflow's end; it will be re-run",
                workflow.id, finished.message());
    return;
  }
  if (definition != nullptr && definition->after_finish) definition->after_finish(info);
  if (options_.on_settled) options_.on_settled(workflow.id);
  observer_.WorkflowFinished(workflow.type, WorkflowStatusName(status),
                             absl::Now() - workflow.created_at);
  LogWorkflow(status == WorkflowStatus::kNeedsAttention ? LogLevel::kError : LogLevel::kInfo,
              absl::StrCat("workflow ", WorkflowStatusName(status)), workflow.id, reason);
}

void Engine::RunSegment(const db::ClaimedWorkflow& claimed,
                        const std::shared_ptr<RunSignals>& signals) {
  // Replaced by a later claim of the same workflow while it was queued: every write would be
  // refused anyway.
  if (signals->lease_lost.load()) return;
  const WorkflowRecord& workflow = claimed.workflow;
  const db::Fence fence{workflow.id, options_.owner, workflow.lease_epoch};
  auto def_it = definitions_.find(workflow.type);
  if (def_it == definitions_.end()) {
    FinishWorkflow(fence, nullptr, workflow, WorkflowStatus::kNeedsAttention,
                   absl::StrCat("no workflow type \"", workflow.type, "\" is registered here"),
                   "");
    return;
  }
  const WorkflowDefinition& definition = def_it->second;

  if (workflow.status == WorkflowStatus::kCompensating) {
    Compensate(fence, definition, workflow, workflow.compensation_cause, *signals);
    return;
  }
  auto begin_compensation = [&](const std::string& cause, const std::string& reason) {
    absl::StatusOr<std::string> recorded = store_.BeginCompensation(fence, cause, reason);
    if (!recorded.ok()) return;
    WorkflowRecord updated = workflow;
    updated.status_reason = *recorded;
    updated.failure_reason = *recorded;
    Compensate(fence, definition, updated, cause, *signals);
  };
  if (!workflow.past_pivot && workflow.cancel_requested) {
    begin_compensation("cancelled", "cancelled");
    return;
  }
  if (!workflow.past_pivot && absl::Now() > workflow.deadline_at) {
    begin_compensation("failed", std::string(kDeadlineExceededReason));
    return;
  }

  std::vector<StepRecord> history;
  if (claimed.has_steps) {
    absl::StatusOr<std::vector<StepRecord>> loaded = store_.LoadSteps(workflow.id);
    if (!loaded.ok()) {
      (void)store_.Release(fence);
      return;
    }
    history = *std::move(loaded);
  }
  WorkflowContext context(&store_, &observer_, fence, workflow, std::move(history), signals);
  FaultPoint("after_start");
  absl::StatusOr<std::string> result = definition.run(context, workflow.input);

  if (context.fenced()) {
    LogWorkflow(LogLevel::kWarning, "run stopped: lease lost", workflow.id);
    return;
  }
  if (context.store_failed()) {
    // A checkpoint was not written (or its outcome is unknown): no step failed, so nothing is
    // compensated. The workflow runs again from its checkpoints after a pause, here or
    // elsewhere; if even the release fails, its lease expires and another worker takes it.
    LogWorkflow(LogLevel::kWarning, "run stopped: a checkpoint could not be written", workflow.id,
                std::string(context.stop_status().message()));
    if (store_.Suspend(fence, WorkflowStatus::kRunning, kCheckpointFailurePause).ok()) {
      ScheduleLocalWake(kCheckpointFailurePause);
    }
    return;
  }
  if (context.suspended()) {
    ScheduleLocalWake(context.suspend_delay());
    return;
  }
  // The buffered checkpoints of the last steps are written with the workflow's end, or before
  // compensation begins.
  if (context.nondeterministic()) {
    FinishWorkflow(fence, &definition, workflow, WorkflowStatus::kNeedsAttention,
                   std::string(result.status().message()), "", context.TakePending());
    return;
  }
  if (context.cancelled()) {
    if (!context.FlushPending().ok()) return;  // Fenced or database down: re-run later.
    begin_compensation("cancelled", "cancelled");
    return;
  }
  if (result.ok()) {
    FinishWorkflow(fence, &definition, workflow, WorkflowStatus::kCompleted, "", *result,
                   context.TakePending());
    return;
  }
  const std::string reason(result.status().message());
  if (context.past_pivot()) {
    FinishWorkflow(fence, &definition, workflow, WorkflowStatus::kNeedsAttention,
                   absl::StrCat("failed after the pivot: ", reason), "", context.TakePending());
    return;
  }
  if (!context.FlushPending().ok()) return;
  begin_compensation("failed", reason);
}

void Engine::Compensate(const db::Fence& fence, const WorkflowDefinition& definition,
                        const WorkflowRecord& workflow, const std::string& cause,
                        const RunSignals& signals) {
  absl::StatusOr<std::vector<StepRecord>> loaded = store_.LoadSteps(workflow.id);
  if (!loaded.ok()) {
    (void)store_.Release(fence);
    return;
  }
  std::map<int, StepRecord> compensation_rows;  // By the forward seq they undo.
  std::vector<StepRecord> owed;
  int max_seq = 0;
  for (const StepRecord& step : *loaded) {
    max_seq = std::max(max_seq, step.seq);
    if (step.kind == StepKind::kCompensation) compensation_rows[step.compensates_seq] = step;
    if (OwesCompensation(step)) owed.push_back(step);
  }
  std::sort(owed.begin(), owed.end(),
            [](const StepRecord& a, const StepRecord& b) { return a.seq > b.seq; });

  for (const StepRecord& forward : owed) {
    StepRecord row;
    bool exists = false;
    if (auto it = compensation_rows.find(forward.seq); it != compensation_rows.end()) {
      if (it->second.status == StepStatus::kSucceeded) continue;
      row = it->second;
      exists = true;
      const absl::Duration remaining = row.next_attempt_at - absl::Now();
      if (row.status == StepStatus::kRetryScheduled && remaining > absl::Milliseconds(20)) {
        (void)store_.SaveStepAndSuspend(fence, row, false, remaining,
                                        WorkflowStatus::kCompensating, remaining);
        ScheduleLocalWake(remaining);
        return;
      }
    } else {
      row.seq = ++max_seq;
      row.name = absl::StrCat("compensate:", forward.name);
      row.kind = StepKind::kCompensation;
      row.status = StepStatus::kRunning;
      row.compensates_seq = forward.seq;
    }
    auto fn = definition.compensations.find(forward.compensation);
    if (fn == definition.compensations.end()) {
      FinishWorkflow(fence, &definition, workflow, WorkflowStatus::kNeedsAttention,
                     absl::StrCat("no compensation named \"", forward.compensation,
                                  "\" is registered for ", workflow.type),
                     "");
      return;
    }
    if (signals.lease_lost.load()) return;
    CompensationCall call{workflow.id, absl::StrCat(workflow.id, "/compensate/", forward.name),
                          forward.compensation_args, absl::Now() + absl::Seconds(10)};
    absl::Status undone = fn->second(call);
    FaultPoint("in_compensation");
    row.attempts++;
    observer_.CompensationAttempt(workflow.type, forward.compensation, undone.ok());
    if (undone.ok()) {
      row.Settle(StepStatus::kSucceeded);
      row.error_code = absl::StatusCode::kOk;
      row.error_message.clear();
      absl::Status saved = store_.WriteSteps(fence, {row});
      if (!saved.ok()) return;  // Fenced or database down: whoever runs next redoes it.
      FaultPoint("after_compensation_checkpoint");
      continue;
    }
    row.error_code = undone.code();
    row.error_message = std::string(undone.message());
    if (definition.compensation_max_attempts > 0 &&
        row.attempts >= definition.compensation_max_attempts) {
      row.Settle(StepStatus::kFailed);
      absl::Status saved = store_.WriteSteps(fence, {row});
      if (!saved.ok()) return;
      FinishWorkflow(fence, &definition, workflow, WorkflowStatus::kNeedsAttention,
                     absl::StrCat("compensation ", forward.compensation, " of step ", forward.name,
                                  " failed ", row.attempts, " times: ", undone.message()),
                     "");
      return;
    }
    const absl::Duration delay = definition.compensation_retry.DelayAfter(row.attempts, Random01());
    row.status = StepStatus::kRetryScheduled;
    (void)store_.SaveStepAndSuspend(fence, row, !exists, delay, WorkflowStatus::kCompensating,
                                    delay);
    ScheduleLocalWake(delay);
    return;
  }
  const bool cancelled = cause == "cancelled";
  std::string reason = workflow.failure_reason.empty() ? workflow.status_reason
                                                      : workflow.failure_reason;
  if (reason.empty()) reason = cancelled ? "cancelled" : "failed";
  FinishWorkflow(fence, &definition, workflow,
                 cancelled ? WorkflowStatus::kCancelled
                           : (owed.empty() ? WorkflowStatus::kFailed : WorkflowStatus::kCompensated),
                 reason, "");
}

}  // namespace order_platform::saga
