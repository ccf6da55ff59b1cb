// The saga engine's durable state in PostgreSQL (schema `saga`): workflows with their leases,
// steps (checkpoints) and signals. Every write made on behalf of a running workflow is fenced:
// it applies only while the writer still holds the workflow's lease (owner + lease epoch), so a
// paused, stale worker cannot write after another took over. Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "db/group_commit.h"
#include "db/pool.h"
#include "saga/workflow.h"
#include "services/common/page_token.h"

namespace order_platform::db {

// Channel on which new or newly runnable work is announced (LISTEN/NOTIFY).
inline constexpr const char* kWorkflowChannel = "saga_runnable";

// The owner, lease_epoch and lease_expires_at values of a workflow inserted under its starter's
// lease (owner parameter empty: unowned), for the INSERTs that start workflows.
#define OP_START_LEASE(owner, lease_ms)                                                       \
  "nullif(" owner "::text, ''), CASE WHEN " owner " = '' THEN 0 ELSE 1 END,"                  \
  " CASE WHEN " owner " = '' THEN NULL ELSE now() + " lease_ms "::bigint * interval '1 millisecond' END"

// The identity under which a worker writes for a workflow it leased.
struct Fence {
  std::string workflow_id;
  std::string owner;
  int64_t epoch = 0;
};

// True for the status returned when a fenced write found the lease gone.
bool IsFenced(const absl::Status& status);

// The status a pivot step gets when a cancel was requested first (the workflow must compensate).
absl::Status CancelRequested();
bool IsCancelRequested(const absl::Status& status);

struct WorkflowStart {
  std::string type;
  std::string id;
  std::string business_key;
  std::string input;
  // The workflow's deadline, from its start (database clock): a workflow not past its pivot by
  // then stops, fails and compensates; its waits end and its calls are cut off at it. Infinite:
  // none.
  absl::Duration timeout = absl::InfiniteDuration();
  // When set, the workflow is inserted already leased to this owner (epoch 1) for `lease`: the
  // starting process runs it at once, without a claim (see Engine::OfferLease). Empty: inserted
  // unleased, for any worker to claim.
  std::string owner = {};
  absl::Duration lease = absl::ZeroDuration();
};

struct ClaimedWorkflow {
  saga::WorkflowRecord workflow;  // Without steps.
  bool takeover = false;          // The lease was taken from an owner whose lease expired.
  bool has_steps = false;
};

struct LeaseState {
  int64_t epoch = 0;
  bool cancel_requested = false;
};

struct WorkflowListQuery {
  std::optional<std::string> type;
  std::optional<saga::WorkflowStatus> status;
  absl::Time created_from = absl::InfinitePast();
  absl::Time created_to = absl::InfiniteFuture();
  int32_t page_size = 50;
  std::optional<PageCursor> after;  // (created_at, id), newest first.
};

struct WorkflowPage {
  std::vector<saga::WorkflowRecord> workflows;
  std::optional<PageCursor> next;
};

// Counts of workflows by status, for gauges.
using StatusCounts = std::map<saga::WorkflowStatus, int64_t>;

struct WorkflowStoreOptions {
  // Checkpoints that runs of different workflows make at the same time (WriteSteps, and Finish
  // without a business write) are written together, up to this many in one statement: while one
  // statement is in flight the next ones queue, and the next statement takes them all. One
  // statement costs PostgreSQL much more than one more row in it. 1: each checkpoint is a
  // statement of its own, sent at once.
  int max_checkpoint_batch = 64;
  // How long a checkpoint statement waits for a workflow row another transaction holds locked
  // (an open operator transaction, say) before it fails: one statement in flight carries every
  // workflow's checkpoint, so one held row must not stall them all for longer. Its writers stop
  // their runs, and the workflows run again a second later.
  absl::Duration checkpoint_lock_timeout = absl::Seconds(5);
};

// Checkpoint statements sent since the store was made, the checkpoints written by them, and
// the checkpoints queued now for the next statement.
struct CheckpointBatchStats {
  int64_t statements = 0;
  int64_t checkpoints = 0;
  int64_t queued = 0;
};

// One workflow's checkpoint (its fence, steps and maybe its end) inside a checkpoint statement.
struct CheckpointWrite;

class PgWorkflowStore {
 public:
  // `pool` must outlive the store and point at a database migrated to the `saga` schema. The
  // store opens its own connections for checkpoint statements (one when they are batched, else
  // as many as `pool` may), to the same database with the same options.
  explicit PgWorkflowStore(ConnectionPool* pool, WorkflowStoreOptions options = {});

  // Inserts a runnable workflow inside the caller's transaction (so it commits with the business
  // write that starts it) and announces it. Returns false when a workflow with that id exists
  // (nothing written).
  static absl::StatusOr<bool> StartInTransaction(pqxx::transaction_base& tx,
                                                 const WorkflowStart& start);
  // Same, in a transaction of its own.
  absl::StatusOr<bool> Start(const WorkflowStart& start);

  // Leases up to `limit` runnable workflows (due, lease free or expired) to `owner` for `lease`,
  // skipping rows other workers are claiming (FOR UPDATE SKIP LOCKED).
  absl::StatusOr<std::vector<ClaimedWorkflow>> Claim(const std::string& owner,
                                                     absl::Duration lease, int limit);
  // The step history of a workflow, by seq.
  absl::StatusOr<std::vector<saga::StepRecord>> LoadSteps(const std::string& workflow_id);

  // Writes several step rows (new ones inserted, existing ones updated) in one statement: the
  // engine's buffered checkpoints, together with other workflows' checkpoints made at the same
  // time (WorkflowStoreOptions::max_checkpoint_batch). A succeeded pivot marks the workflow past
  // its pivot, or is refused with CancelRequested() (nothing written) once a cancel was
  // requested; such a write is sent alone. Each row's started_at / finished_at (this process's
  // clock, InfinitePast when unset) is recorded as that long before the database's now(). Fenced:
  // a write whose lease is gone gets Fenced() and writes nothing, without failing the others.
  absl::Status WriteSteps(const Fence& fence, const std::vector<saga::StepRecord>& steps);
  // Updates (or, when `insert`, inserts) a step row, then parks the workflow in `status` until `delay`
  // from now and releases the lease, in one transaction. Fenced.
  absl::Status SaveStepAndSuspend(const Fence& fence, const saga::StepRecord& step, bool insert,
                                  std::optional<absl::Duration> retry_delay,
                                  saga::WorkflowStatus status, absl::Duration delay);
  // Parks the workflow in `status` until `delay` from now and releases the lease. Fenced.
  absl::Status Suspend(const Fence& fence, saga::WorkflowStatus status, absl::Duration delay);
  // Runs `fn` and records `step` as succeeded with fn's result in one transaction (local step:
  // business write + checkpoint commit together), together with the `pending` checkpoints of
  // earlier steps (as WriteSteps). fn's error rolls everything back and is returned. Fenced: the
  // fence is checked in the checkpoint's statement after fn (4 round trips, not 5), so a stale
  // run's write is rolled back. A pivot step is refused with CancelRequested() once a cancel was
  // requested.
  absl::StatusOr<std::string> RunLocalStep(
      const Fence& fence, const saga::StepRecord& step,
      absl::FunctionRef<absl::StatusOr<std::string>(pqxx::transaction_base&)> fn,
      const std::vector<saga::StepRecord>& pending = {});
  // Consumes the oldest pending signal `signal_name` and records it as `step`'s result, in one
  // transaction. nullopt when none is pending. Fenced.
  absl::StatusOr<std::optional<std::string>> ConsumeSignal(const Fence& fence,
                                                           const saga::StepRecord& step,
                                                           const std::string& signal_name);
  // Switches a workflow to compensating with a cause ("failed"/"cancelled") and reason (for a
  // cancel, the reason given with the cancel request). Returns the reason recorded. Fenced.
  absl::StatusOr<std::string> BeginCompensation(const Fence& fence, const std::string& cause,
                                                const std::string& reason);
  // Records a terminal status (or needs-attention), releases the lease, and runs `on_finish` in
  // the same transaction, together with the `pending` checkpoints (as WriteSteps). Without
  // `on_finish` it is written together with other workflows' checkpoints, as WriteSteps. Fenced.
  absl::Status Finish(
      const Fence& fence, const saga::FinishInfo& info, const std::string& result,
      const std::function<absl::Status(pqxx::transaction_base&, const saga::FinishInfo&)>&
          on_finish,
      const std::vector<saga::StepRecord>& pending = {});
  // Releases the lease of a workflow this worker stops running (shutdown), keeping it runnable.
  absl::Status Release(const Fence& fence);

  // Extends the leases `owner` holds on `workflow_ids`. Returns the ones still held, with their
  // cancel flags; the others were lost.
  absl::StatusOr<std::map<std::string, LeaseState>> Heartbeat(
      const std::string& owner, const std::vector<std::string>& workflow_ids,
      absl::Duration lease);

  // Operator actions. NOT_FOUND for unknown ids; FAILED_PRECONDITION when the state forbids it.
  absl::StatusOr<saga::WorkflowRecord> RequestCancel(const std::string& workflow_id,
                                                     const std::string& reason);
  absl::StatusOr<saga::WorkflowRecord> Signal(const std::string& workflow_id,
                                              const std::string& name,
                                              const std::string& payload,
                                              const std::string& request_id);
  // Retry of a NEEDS_ATTENTION workflow, recorded under `request_id`: repeating the last retry's
  // request id (its answer lost, the workflow moved on since) answers with the workflow as it is
  // now instead of FAILED_PRECONDITION.
  absl::StatusOr<saga::WorkflowRecord> Retry(const std::string& workflow_id,
                                             const std::string& request_id);

  // Visibility.
  absl::StatusOr<saga::WorkflowRecord> Get(const std::string& workflow_id, bool with_steps);
  absl::StatusOr<WorkflowPage> List(const WorkflowListQuery& query);
  absl::StatusOr<StatusCounts> CountByStatus();
  // Seconds the oldest due, unleased workflow has been waiting to run (0 when none).
  absl::StatusOr<double> OldestRunnableAgeSeconds();

  // Deletes up to `limit` finished workflows whose finish is older than `retention`. Returns how
  // many were deleted.
  absl::StatusOr<int64_t> DeleteFinished(absl::Duration retention, int limit);

  CheckpointBatchStats CheckpointStats() const;
  // The connections of the checkpoint statements (for pool metrics).
  const ConnectionPool& checkpoint_pool() const { return checkpoint_pool_; }

 private:
  // Returns once a checkpoint statement carried `write` (checkpoints_).
  absl::Status WriteCheckpoint(CheckpointWrite& write);
  // One statement for `batch`; sets each write's status.
  void WriteBatch(const std::vector<CheckpointWrite*>& batch);

  ConnectionPool& pool_;
  const WorkflowStoreOptions options_;
  // Connections that plan with index access only (no sequential scan, hash or merge join): the
  // checkpoint statement joins its arrays to saga.workflows, and a plan cached while the table
  // was small would otherwise scan it whole at every checkpoint as it grows.
  ConnectionPool checkpoint_pool_;
  // One workflow's write per statement at most.
  GroupCommit<CheckpointWrite> checkpoints_;
  mutable absl::Mutex stats_mu_;
  CheckpointBatchStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace order_platform::db
