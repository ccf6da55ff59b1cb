#include "db/pg_workflow_store.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "db/row_time.h"
#include "db/transaction.h"
#include "services/common/errors.h"

namespace order_platform::db {
namespace {

using saga::StepRecord;
using saga::WorkflowRecord;
using saga::WorkflowStatus;

constexpr absl::string_view kFencedPayload = "type.order-platform/fenced";
constexpr absl::string_view kCancelRequestedPayload = "type.order-platform/cancel-requested";

absl::Status Fenced(const Fence& fence) {
  absl::Status status = absl::AbortedError(
      absl::StrCat("lease on workflow ", fence.workflow_id, " (epoch ", fence.epoch,
                   ") was lost to another worker"));
  status.SetPayload(kFencedPayload, absl::Cord("1"));
  return status;
}

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }
std::string Unhex(const pqxx::field& f) {
  return f.is_null() ? std::string() : absl::HexStringToBytes(f.as<std::string>());
}
int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// One column list and one mapper for every read of a workflow row.
#define OP_WORKFLOW_COLUMNS                                                                     \
  "w.id, w.type, w.business_key, encode(w.input, 'hex'), w.status, w.status_reason, "           \
  "encode(w.result, 'hex'), w.compensation_cause, w.cancel_requested, w.cancel_reason, "        \
  "w.past_pivot, coalesce(w.owner, ''), w.lease_epoch, " OP_EPOCH_US("w.next_run_at") ", "      \
  OP_EPOCH_US("w.lease_expires_at") ", " OP_EPOCH_US("w.deadline_at") ", " OP_EPOCH_US(        \
      "w.created_at") ", " OP_EPOCH_US("w.updated_at") ", " OP_EPOCH_US("w.finished_at")          \
  ", w.failure_reason"
constexpr int kWorkflowColumnCount = 20;

WorkflowRecord WorkflowFromRow(const pqxx::row& row) {
  WorkflowRecord w;
  w.id = row[0].as<std::string>();
  w.type = row[1].as<std::string>();
  w.business_key = row[2].as<std::string>();
  w.input = Unhex(row[3]);
  w.status = saga::ParseWorkflowStatus(row[4].as<std::string>()).value_or(WorkflowStatus::kRunning);
  w.status_reason = row[5].as<std::string>();
  w.result = Unhex(row[6]);
  w.compensation_cause = row[7].as<std::string>();
  w.cancel_requested = row[8].as<bool>();
  w.cancel_reason = row[9].as<std::string>();
  w.past_pivot = row[10].as<bool>();
  w.owner = row[11].as<std::string>();
  w.lease_epoch = row[12].as<int64_t>();
  w.next_run_at = TimeFromField(row[13]);
  w.lease_expires_at = TimeFromField(row[14]);
  w.deadline_at = row[15].is_null() ? absl::InfiniteFuture() : TimeFromField(row[15]);
  w.created_at = TimeFromField(row[16]);
  w.updated_at = TimeFromField(row[17]);
  w.finished_at = TimeFromField(row[18]);
  w.failure_reason = row[19].as<std::string>();
  return w;
}

#define OP_STEP_COLUMNS                                                                        \
  "s.seq, s.name, s.kind, s.status, s.attempts, encode(s.result, 'hex'), s.error_code, "       \
  "s.error_message, s.compensation, encode(s.compensation_args, 'hex'), s.pivot, "             \
  "s.compensates_seq, " OP_EPOCH_US("s.started_at") ", " OP_EPOCH_US("s.finished_at") ", "     \
  OP_EPOCH_US("s.next_attempt_at")

StepRecord StepFromRow(const pqxx::row& row) {
  StepRecord s;
  s.seq = row[0].as<int>();
  s.name = row[1].as<std::string>();
  s.kind = saga::ParseStepKind(row[2].as<std::string>()).value_or(saga::StepKind::kForward);
  s.status = saga::ParseStepStatus(row[3].as<std::string>()).value_or(saga::StepStatus::kRunning);
  s.attempts = row[4].as<int>();
  s.result = Unhex(row[5]);
  s.error_code = static_cast<absl::StatusCode>(row[6].as<int>());
  s.error_message = row[7].as<std::string>();
  s.compensation = row[8].as<std::string>();
  s.compensation_args = Unhex(row[9]);
  s.pivot = row[10].as<bool>();
  s.compensates_seq = row[11].as<int>();
  s.started_at = TimeFromField(row[12]);
  s.finished_at = TimeFromField(row[13]);
  s.next_attempt_at = TimeFromField(row[14]);
  return s;
}

// The fence: touch the workflow row only if this worker still holds the lease.
#define OP_FENCE(extra_set)                                                                    \
  "UPDATE saga.workflows SET updated_at = now()" extra_set                                     \
  " WHERE id = $1 AND owner = $2 AND lease_epoch = $3 RETURNING id"

// An unowned start is announced (NOTIFY) for any worker; one inserted under the starter's own
// lease ($6 owner, $7 lease ms) is not: the starter runs it.
constexpr Statement kStartWorkflow{
    "saga.start",
    "WITH w AS ("
    "  INSERT INTO saga.workflows (id, type, business_key, input, status, deadline_at, owner,"
    "    lease_epoch, lease_expires_at)"
    "  VALUES ($1, $2, $3, decode($4, 'hex'), 'running',"
    "          CASE WHEN $5::bigint < 0 THEN NULL ELSE now() + $5 * interval '1 millisecond' END,"
    "          " OP_START_LEASE("$6", "$7") ")"
    "  ON CONFLICT (id) DO NOTHING RETURNING id, owner) "
    "SELECT w.id, CASE WHEN w.owner IS NULL THEN pg_notify('saga_runnable', w.id) END FROM w"};

constexpr Statement kClaim{
    "saga.claim",
    "WITH c AS ("
    "  SELECT id, owner AS previous_owner FROM saga.workflows"
    "  WHERE status IN ('running', 'waiting', 'compensating') AND next_run_at <= now()"
    "    AND (lease_expires_at IS NULL OR lease_expires_at < now())"
    "  ORDER BY next_run_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
    "UPDATE saga.workflows w SET owner = $1, lease_epoch = w.lease_epoch + 1,"
    "  lease_expires_at = now() + $2::bigint * interval '1 millisecond', updated_at = now(),"
    "  status = CASE WHEN w.status = 'waiting' THEN 'running' ELSE w.status END "
    "FROM c WHERE w.id = c.id "
    "RETURNING " OP_WORKFLOW_COLUMNS
    ", c.previous_owner IS NOT NULL,"
    "  EXISTS (SELECT 1 FROM saga.steps s WHERE s.workflow_id = w.id),"
    "  (extract(epoch from w.deadline_at - now()) * 1000000)::bigint"};

constexpr Statement kLoadSteps{
    "saga.load_steps",
    "SELECT " OP_STEP_COLUMNS " FROM saga.steps s WHERE s.workflow_id = $1 ORDER BY s.seq"};

#define OP_STEP_INSERT                                                                          \
  "INSERT INTO saga.steps (workflow_id, seq, name, kind, status, attempts, result, error_code," \
  " error_message, compensation, compensation_args, pivot, compensates_seq, finished_at,"       \
  " next_attempt_at) "                                                                          \
  "SELECT f.id, $4, $5, $6, $7, $8, decode($9, 'hex'), $10, $11, $12, decode($13, 'hex'), $14,"  \
  " $15, CASE WHEN $7 IN ('succeeded', 'failed') THEN now() END,"                               \
  " CASE WHEN $16::bigint < 0 THEN NULL ELSE now() + $16 * interval '1 millisecond' END FROM f"

#define OP_STEP_UPDATE                                                                          \
  "UPDATE saga.steps s SET status = $5, attempts = $6, result = decode($7, 'hex'),"             \
  " error_code = $8, error_message = $9,"                                                       \
  " finished_at = CASE WHEN $5 IN ('succeeded', 'failed') THEN now() END,"                      \
  " next_attempt_at = CASE WHEN $10::bigint < 0 THEN NULL"                                      \
  "   ELSE now() + $10 * interval '1 millisecond' END "                                         \
  "FROM f WHERE s.workflow_id = f.id AND s.seq = $4 RETURNING s.seq"

// $17 status, $18 delay ms: park the workflow and release its lease.
#define OP_SUSPEND_FENCE                                                                        \
  OP_FENCE(", status = $17, next_run_at = now() + $18::bigint * interval '1 millisecond',"      \
           " owner = NULL, lease_expires_at = NULL")

constexpr Statement kInsertStepAndSuspend{
    "saga.insert_step_suspend", "WITH f AS (" OP_SUSPEND_FENCE ") " OP_STEP_INSERT " RETURNING seq"};

// $1..$11 as OP_STEP_UPDATE expects, then $12 status and $13 delay ms.
constexpr Statement kSaveStepAndSuspend{
    "saga.save_step_suspend",
    "WITH f AS (" OP_FENCE(", status = $12, next_run_at = now() + $13::bigint * interval "
                           "'1 millisecond', owner = NULL, lease_expires_at = NULL,"
                           " past_pivot = past_pivot OR $11") ") " OP_STEP_UPDATE};

constexpr Statement kSuspend{
    "saga.suspend",
    OP_FENCE(", status = $4, next_run_at = now() + $5::bigint * interval '1 millisecond',"
             " owner = NULL, lease_expires_at = NULL")};

constexpr Statement kFenceOnly{"saga.fence", OP_FENCE(", past_pivot = past_pivot OR $4")};

constexpr Statement kCancelRequested{
    "saga.cancel_requested", "SELECT cancel_requested FROM saga.workflows WHERE id = $1"};

// Step rows as parallel arrays, inserted or updated in one statement, for the fenced workflow
// rows in `f`: `source` joins f (no row: fenced, nothing written) to the unnest of the arrays as
// t. started/finished are microseconds before now() (-1: now() for started, NULL or now() by
// status for finished).
#define OP_UPSERT_STEPS(source)                                                                 \
  "INSERT INTO saga.steps AS s (workflow_id, seq, name, kind, status, attempts, result,"        \
  " error_code, error_message, compensation, compensation_args, pivot, compensates_seq,"        \
  " started_at, finished_at, next_attempt_at) "                                                 \
  "SELECT f.id, t.seq, t.name, t.kind, t.status, t.attempts, decode(t.result, 'hex'),"          \
  " t.error_code, t.error_message, t.compensation, decode(t.args, 'hex'), t.pivot,"             \
  " t.compensates_seq,"                                                                         \
  " CASE WHEN t.started_us < 0 THEN now()"                                                      \
  "   ELSE now() - t.started_us * interval '1 microsecond' END,"                                \
  " CASE WHEN t.status NOT IN ('succeeded', 'failed') THEN NULL"                                \
  "   WHEN t.finished_us < 0 THEN now()"                                                        \
  "   ELSE now() - t.finished_us * interval '1 microsecond' END,"                               \
  " CASE WHEN t.retry_ms < 0 THEN NULL ELSE now() + t.retry_ms * interval '1 millisecond' END " \
  "FROM " source                                                                                \
  " ON CONFLICT (workflow_id, seq) DO UPDATE SET status = EXCLUDED.status,"                     \
  " attempts = EXCLUDED.attempts, result = EXCLUDED.result, error_code = EXCLUDED.error_code,"  \
  " error_message = EXCLUDED.error_message, finished_at = EXCLUDED.finished_at,"                \
  " next_attempt_at = EXCLUDED.next_attempt_at"
#define OP_STEP_ARRAY_COLUMNS                                                                 \
  "seq, name, kind, status, attempts, result, error_code, error_message, compensation, args," \
  " pivot, compensates_seq, started_us, finished_us, retry_ms"

// The checkpoints of several workflows (or one), each fenced on its own: $1..$6 one element per
// workflow (id, owner, epoch, and the end it records: status, '' for none, reason, result), and
// the step rows as arrays from $7 on, each row tagged with its workflow's ordinal ($7, 1-based).
// Returns the ordinals whose fence held. `w.id = ANY($1)` keeps the workflows on their primary
// key whatever the plan cached while the table was small (joined to x alone, a generic plan
// made then hash-joins a sequential scan of every workflow), and takes the rows in id order, as
// Heartbeat's index scan takes its own (a deadlock PostgreSQL still detects is retried by
// RunTransaction). A pivot's checkpoint is kWriteStepsAtPivot.
constexpr Statement kWriteCheckpoints{
    "saga.write_checkpoints",
    "WITH x AS MATERIALIZED (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[],"
    "  $4::text[], $5::text[], $6::text[]) WITH ORDINALITY"
    "  AS x(id, owner, epoch, end_status, end_reason, end_result, ord) ORDER BY id),"
    " f AS (UPDATE saga.workflows w SET updated_at = now(),"
    "  status = CASE WHEN x.end_status = '' THEN w.status ELSE x.end_status END,"
    "  status_reason = CASE WHEN x.end_status = '' THEN w.status_reason ELSE x.end_reason END,"
    "  result = CASE WHEN x.end_status = '' THEN w.result ELSE decode(x.end_result, 'hex') END,"
    "  owner = CASE WHEN x.end_status = '' THEN w.owner END,"
    "  lease_expires_at = CASE WHEN x.end_status = '' THEN w.lease_expires_at END,"
    "  finished_at = CASE WHEN x.end_status = '' THEN w.finished_at"
    "   WHEN x.end_status = 'needs_attention' THEN NULL ELSE now() END"
    "  FROM x WHERE w.id = ANY($1::text[]) AND w.id = x.id AND w.owner = x.owner"
    "   AND w.lease_epoch = x.epoch"
    "  RETURNING x.ord, w.id),"
    " s AS (" OP_UPSERT_STEPS(
        "f JOIN unnest($7::bigint[], $8::int[], $9::text[], $10::text[], $11::text[], $12::int[],"
        "  $13::text[], $14::int[], $15::text[], $16::text[], $17::text[], $18::bool[], $19::int[],"
        "  $20::bigint[], $21::bigint[], $22::bigint[]) AS t(ord, " OP_STEP_ARRAY_COLUMNS ")"
        " ON t.ord = f.ord") ")"
    " SELECT ord FROM f"};
// The pivot's checkpoint ($1..$3 the fence, the step rows as arrays from $4 on): refuses to pass
// the pivot once a cancel was requested. RequestCancel checks past_pivot under the same row
// lock, so exactly one of the two wins.
constexpr Statement kWriteStepsAtPivot{
    "saga.write_steps_at_pivot",
    "WITH f AS (UPDATE saga.workflows SET updated_at = now(), past_pivot = true"
    "  WHERE id = $1 AND owner = $2 AND lease_epoch = $3 AND NOT cancel_requested RETURNING id),"
    " s AS (" OP_UPSERT_STEPS(
        "f, unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[],"
        "  $10::int[], $11::text[], $12::text[], $13::text[], $14::bool[], $15::int[],"
        "  $16::bigint[], $17::bigint[], $18::bigint[]) AS t(" OP_STEP_ARRAY_COLUMNS ")") ")"
    " SELECT id FROM f"};

constexpr Statement kUpsertStepSucceeded{
    "saga.upsert_step_succeeded",
    "INSERT INTO saga.steps (workflow_id, seq, name, kind, status, attempts, result, pivot,"
    " finished_at) VALUES ($1, $2, $3, $4, 'succeeded', $5, decode($6, 'hex'), $7, now())"
    " ON CONFLICT (workflow_id, seq) DO UPDATE SET status = 'succeeded',"
    " attempts = EXCLUDED.attempts, result = EXCLUDED.result, finished_at = now(),"
    " next_attempt_at = NULL"};

constexpr Statement kConsumeSignal{
    "saga.consume_signal",
    "UPDATE saga.signals SET consumed_seq = $3 WHERE id = ("
    "  SELECT id FROM saga.signals WHERE workflow_id = $1 AND name = $2 AND consumed_seq IS NULL"
    "  ORDER BY id LIMIT 1 FOR UPDATE) RETURNING encode(payload, 'hex')"};

// A cancel's reason is the operator's or customer's words, read from the row (a cancel may
// arrive while the run holds an older snapshot).
#define OP_COMPENSATION_REASON \
  "CASE WHEN $4 = 'cancelled' THEN coalesce(nullif(cancel_reason, ''), 'cancelled') ELSE $5 END"
constexpr Statement kBeginCompensation{
    "saga.begin_compensation",
    "UPDATE saga.workflows SET updated_at = now(), status = 'compensating',"
    " compensation_cause = $4, status_reason = " OP_COMPENSATION_REASON ","
    " failure_reason = " OP_COMPENSATION_REASON
    " WHERE id = $1 AND owner = $2 AND lease_epoch = $3 RETURNING failure_reason"};

constexpr Statement kRelease{"saga.release",
                             OP_FENCE(", owner = NULL, lease_expires_at = NULL")};

constexpr Statement kHeartbeat{
    "saga.heartbeat",
    "UPDATE saga.workflows SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'"
    " WHERE owner = $1 AND id = ANY($2::text[]) RETURNING id, lease_epoch, cancel_requested"};

constexpr Statement kSelectWorkflow{
    "saga.select", "SELECT " OP_WORKFLOW_COLUMNS " FROM saga.workflows w WHERE w.id = $1"};
// The workflow with its steps in one round trip: one row per step (the workflow's columns
// repeated), or one row with NULL step columns when it has none.
constexpr Statement kSelectWorkflowWithSteps{
    "saga.select_with_steps",
    "SELECT " OP_WORKFLOW_COLUMNS ", " OP_STEP_COLUMNS
    " FROM saga.workflows w LEFT JOIN saga.steps s ON s.workflow_id = w.id"
    " WHERE w.id = $1 ORDER BY s.seq"};
constexpr Statement kSelectWorkflowForUpdate{
    "saga.select_for_update",
    "SELECT " OP_WORKFLOW_COLUMNS " FROM saga.workflows w WHERE w.id = $1 FOR UPDATE"};

constexpr Statement kRequestCancel{
    "saga.request_cancel",
    "UPDATE saga.workflows SET cancel_requested = true, cancel_reason = $2, next_run_at = now(),"
    " updated_at = now() WHERE id = $1 RETURNING pg_notify('saga_runnable', id)"};

constexpr Statement kInsertSignal{
    "saga.insert_signal",
    "INSERT INTO saga.signals (workflow_id, name, payload, request_id)"
    " VALUES ($1, $2, decode($3, 'hex'), $4) ON CONFLICT (workflow_id, request_id) DO NOTHING"};

constexpr Statement kWakeWaiting{
    "saga.wake_waiting",
    "UPDATE saga.workflows SET next_run_at = now(), updated_at = now()"
    " WHERE id = $1 AND status IN ('waiting', 'running') AND next_run_at > now()"
    " RETURNING pg_notify('saga_runnable', id)"};

constexpr Statement kRetryGaveUpStep{
    "saga.retry_step",
    "UPDATE saga.steps SET status = 'retry_scheduled', attempts = 0, next_attempt_at = now()"
    " WHERE workflow_id = $1 AND seq = (SELECT max(seq) FROM saga.steps"
    " WHERE workflow_id = $1 AND status = 'failed')"};

constexpr Statement kRetryWorkflow{
    "saga.retry",
    "UPDATE saga.workflows SET status = CASE WHEN compensation_cause = '' THEN 'running'"
    " ELSE 'compensating' END, status_reason = failure_reason, next_run_at = now(),"
    " finished_at = NULL, retry_request_id = $2,"
    " updated_at = now() WHERE id = $1 RETURNING pg_notify('saga_runnable', id)"};

constexpr Statement kSelectRetryRequestId{
    "saga.select_retry_request_id",
    "SELECT coalesce(retry_request_id, '') FROM saga.workflows WHERE id = $1"};

// Newest first, keyset-paged by (created_at, id) < ($1 µs, $2), created in [$3 µs, $4 µs), $5
// rows. One statement per filter combination, so that each keeps a plan on its own index
// (workflows_type_created_idx, workflows_status_created_idx) however it is cached: a single
// statement with `($n = '' OR type = $n)` has one generic plan for all of them, which walks
// every workflow to find a rare status.
#define OP_LIST_WORKFLOWS(where)                                                                 \
  "SELECT " OP_WORKFLOW_COLUMNS                                                                  \
  " FROM saga.workflows w"                                                                       \
  " WHERE (w.created_at, w.id) < ('epoch'::timestamptz + $1::bigint * interval '1 microsecond'," \
  " $2) AND w.created_at >= 'epoch'::timestamptz + $3::bigint * interval '1 microsecond'"        \
  " AND w.created_at < 'epoch'::timestamptz + $4::bigint * interval '1 microsecond' " where      \
  " ORDER BY w.created_at DESC, w.id DESC LIMIT $5"
constexpr Statement kListWorkflows{"saga.list", OP_LIST_WORKFLOWS("")};
constexpr Statement kListWorkflowsByType{"saga.list_by_type", OP_LIST_WORKFLOWS("AND w.type = $6")};
constexpr Statement kListWorkflowsByStatus{"saga.list_by_status",
                                           OP_LIST_WORKFLOWS("AND w.status = $6")};
constexpr Statement kListWorkflowsByTypeAndStatus{
    "saga.list_by_type_status", OP_LIST_WORKFLOWS("AND w.status = $6 AND w.type = $7")};

constexpr Statement kCountByStatus{
    "saga.count_by_status",
    "SELECT status, count(*) FROM saga.workflows WHERE status IN"
    " ('running', 'waiting', 'compensating', 'needs_attention') GROUP BY status"};

constexpr Statement kOldestRunnable{
    "saga.oldest_runnable",
    "SELECT coalesce(extract(epoch from now() - min(next_run_at)), 0)::float8"
    " FROM saga.workflows WHERE status IN ('running', 'waiting', 'compensating')"
    " AND next_run_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at < now())"};

constexpr Statement kDeleteFinished{
    "saga.delete_finished",
    "DELETE FROM saga.workflows WHERE id IN (SELECT id FROM saga.workflows"
    " WHERE finished_at < now() - $1::bigint * interval '1 millisecond' LIMIT $2)"};

constexpr int64_t kEndOfTimeMicros = 253402300799000000;
constexpr int64_t kBeginningOfTimeMicros = -62135596800000000;  // 0001-01-01.

int64_t MicrosOr(absl::Time t, int64_t fallback) {
  return t == absl::InfinitePast() || t == absl::InfiniteFuture() ? fallback
                                                                  : absl::ToUnixMicros(t);
}

// FAILED_PRECONDITION for an operator action on a workflow that already ended.
absl::Status RefuseFinished(const WorkflowRecord& w) {
  if (!IsTerminal(w.status)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("workflow ", w.id, " is already ", saga::WorkflowStatusName(w.status)));
}

absl::StatusOr<WorkflowRecord> LockedWorkflow(pqxx::transaction_base& tx, const std::string& id) {
  pqxx::result r = Exec(tx, kSelectWorkflowForUpdate, id);
  if (r.empty()) return NotFound("workflow", id);
  return WorkflowFromRow(r[0]);
}

int64_t MicrosAgo(absl::Time t, absl::Time now) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return -1;
  return std::max<int64_t>(0, absl::ToInt64Microseconds(now - t));
}

// Step rows as the array parameters of OP_UPSERT_STEPS, each tagged with the ordinal of its
// workflow in the statement (kWriteCheckpoints; kWriteStepsAtPivot has one workflow and no
// ordinals).
struct StepArrays {
  std::string ord, seq, name, kind, status, attempts, result, error_code, error_message,
      compensation, args, pivot, compensates_seq, started, finished, retry;
};

class StepColumns {
 public:
  void Add(int64_t ord, const std::vector<StepRecord>& steps, absl::Time now) {
    for (const StepRecord& step : steps) {
      ord_.push_back(ord);
      seq_.push_back(step.seq);
      name_.push_back(step.name);
      kind_.push_back(std::string(saga::StepKindName(step.kind)));
      status_.push_back(std::string(saga::StepStatusName(step.status)));
      attempts_.push_back(step.attempts);
      result_.push_back(Hex(step.result));
      error_code_.push_back(static_cast<int>(step.error_code));
      error_message_.push_back(step.error_message);
      compensation_.push_back(step.compensation);
      args_.push_back(Hex(step.compensation_args));
      pivot_.push_back(step.pivot ? 1 : 0);
      compensates_seq_.push_back(step.compensates_seq);
      started_.push_back(MicrosAgo(step.started_at, now));
      finished_.push_back(MicrosAgo(step.finished_at, now));
      retry_.push_back(step.next_attempt_at == absl::InfinitePast()
                           ? -1
                           : std::max<int64_t>(0, Millis(step.next_attempt_at - now)));
    }
  }

  StepArrays Arrays() const {
    StepArrays out;
    out.ord = IntArray(ord_);
    out.seq = IntArray(seq_);
    out.name = TextArray(name_);
    out.kind = TextArray(kind_);
    out.status = TextArray(status_);
    out.attempts = IntArray(attempts_);
    out.result = TextArray(result_);
    out.error_code = IntArray(error_code_);
    out.error_message = TextArray(error_message_);
    out.compensation = TextArray(compensation_);
    out.args = TextArray(args_);
    out.pivot = "{";
    for (size_t i = 0; i < pivot_.size(); ++i) {
      if (i > 0) out.pivot.push_back(',');
      out.pivot.push_back(pivot_[i] ? 't' : 'f');
    }
    out.pivot.push_back('}');
    out.compensates_seq = IntArray(compensates_seq_);
    out.started = IntArray(started_);
    out.finished = IntArray(finished_);
    out.retry = IntArray(retry_);
    return out;
  }

 private:
  std::vector<int64_t> ord_, seq_, attempts_, error_code_, pivot_, compensates_seq_, started_,
      finished_, retry_;
  std::vector<std::string> name_, kind_, status_, result_, error_message_, compensation_, args_;
};

// Whether `steps` record a pivot's success (their checkpoint is kWriteStepsAtPivot's).
bool PassesPivot(const std::vector<StepRecord>& steps) {
  return std::any_of(steps.begin(), steps.end(), [](const StepRecord& step) {
    return step.pivot && step.status == saga::StepStatus::kSucceeded;
  });
}

}  // namespace

absl::Status CancelRequested() {
  absl::Status status = absl::CancelledError("a cancel was requested before the pivot");
  status.SetPayload(kCancelRequestedPayload, absl::Cord("1"));
  return status;
}

bool IsCancelRequested(const absl::Status& status) {
  return status.GetPayload(kCancelRequestedPayload).has_value();
}

bool IsFenced(const absl::Status& status) {
  return status.GetPayload(kFencedPayload).has_value();
}

absl::StatusOr<bool> PgWorkflowStore::StartInTransaction(pqxx::transaction_base& tx,
                                                         const WorkflowStart& start) {
  const int64_t timeout_ms =
      start.timeout == absl::InfiniteDuration() ? -1 : Millis(start.timeout);
  pqxx::result r = Exec(tx, kStartWorkflow, start.id, start.type, start.business_key,
                        Hex(start.input), timeout_ms, start.owner, Millis(start.lease));
  return !r.empty();
}

absl::StatusOr<bool> PgWorkflowStore::Start(const WorkflowStart& start) {
  bool created = false;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      OP_ASSIGN_OR_RETURN(created, StartInTransaction(tx, start));
                                      return absl::OkStatus();
                                    }));
  return created;
}

absl::StatusOr<std::vector<ClaimedWorkflow>> PgWorkflowStore::Claim(const std::string& owner,
                                                                    absl::Duration lease,
                                                                    int limit) {
  std::vector<ClaimedWorkflow> claimed;
  // Planned with index access only, as the heartbeat is: a plan chosen while the table was young
  // (a sequential scan and a sort, cheapest then) would be kept by the connection and scan every
  // workflow at each claim as the table grows, instead of the runnable index.
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.idempotent = true}, [&](pqxx::transaction_base& tx) -> absl::Status {
        claimed.clear();
        IndexOnlyPlansUntilCommit(tx);
        for (const pqxx::row& row : Exec(tx, kClaim, owner, Millis(lease), limit)) {
          ClaimedWorkflow c;
          c.workflow = WorkflowFromRow(row);
          c.takeover = row[kWorkflowColumnCount].as<bool>();
          c.has_steps = row[kWorkflowColumnCount + 1].as<bool>();
          // The deadline as the time left on the database clock, from now on this one: the run
          // compares it with its own clock.
          if (!row[kWorkflowColumnCount + 2].is_null()) {
            c.workflow.deadline_at =
                absl::Now() + absl::Microseconds(row[kWorkflowColumnCount + 2].as<int64_t>());
          }
          claimed.push_back(std::move(c));
        }
        return absl::OkStatus();
      }));
  return claimed;
}

absl::StatusOr<std::vector<StepRecord>> PgWorkflowStore::LoadSteps(
    const std::string& workflow_id) {
  std::vector<StepRecord> steps;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      steps.clear();
                                      for (const pqxx::row& row : Exec(tx, kLoadSteps, workflow_id)) {
                                        steps.push_back(StepFromRow(row));
                                      }
                                      return absl::OkStatus();
                                    }));
  return steps;
}

struct CheckpointWrite {
  const Fence* fence = nullptr;
  const std::vector<StepRecord>* steps = nullptr;
  std::string end_status;  // Empty: the workflow goes on.
  std::string end_reason;
  std::string end_result;  // Hex.
  absl::Status status;     // Set once a statement carried the write.
};

namespace {

// kWriteCheckpoints for `writes` (no two of the same workflow). Returns, per write, whether its
// fence held (what it wrote is written); the others wrote nothing.
std::vector<bool> ExecCheckpoints(pqxx::transaction_base& tx,
                                  const std::vector<CheckpointWrite*>& writes) {
  std::vector<std::string> ids, owners, end_statuses, end_reasons, end_results;
  std::vector<int64_t> epochs;
  StepColumns columns;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < writes.size(); ++i) {
    const CheckpointWrite& write = *writes[i];
    ids.push_back(write.fence->workflow_id);
    owners.push_back(write.fence->owner);
    epochs.push_back(write.fence->epoch);
    end_statuses.push_back(write.end_status);
    end_reasons.push_back(write.end_reason);
    end_results.push_back(write.end_result);
    columns.Add(static_cast<int64_t>(i) + 1, *write.steps, now);
  }
  const StepArrays a = columns.Arrays();
  pqxx::result r =
      Exec(tx, kWriteCheckpoints, TextArray(ids), TextArray(owners), IntArray(epochs),
           TextArray(end_statuses), TextArray(end_reasons), TextArray(end_results), a.ord, a.seq,
           a.name, a.kind, a.status, a.attempts, a.result, a.error_code, a.error_message,
           a.compensation, a.args, a.pivot, a.compensates_seq, a.started, a.finished, a.retry);
  std::vector<bool> held(writes.size(), false);
  for (const pqxx::row& row : r) held.at(row[0].as<int64_t>() - 1) = true;
  return held;
}

// The fenced checkpoint of `steps` in `tx`: kWriteCheckpoints, or, with a succeeded pivot among
// them, kWriteStepsAtPivot, refused with CancelRequested() once a cancel was requested. Fenced()
// when the lease is gone; nothing is written then.
absl::Status ExecCheckpoint(pqxx::transaction_base& tx, const Fence& fence,
                            const std::vector<StepRecord>& steps) {
  if (!PassesPivot(steps)) {
    CheckpointWrite write{.fence = &fence, .steps = &steps};
    IndexOnlyPlansUntilCommit(tx);
    return ExecCheckpoints(tx, {&write})[0] ? absl::OkStatus() : Fenced(fence);
  }
  StepColumns columns;
  columns.Add(1, steps, absl::Now());
  const StepArrays a = columns.Arrays();
  if (!Exec(tx, kWriteStepsAtPivot, fence.workflow_id, fence.owner, fence.epoch, a.seq, a.name,
            a.kind, a.status, a.attempts, a.result, a.error_code, a.error_message, a.compensation,
            a.args, a.pivot, a.compensates_seq, a.started, a.finished, a.retry)
           .empty()) {
    return absl::OkStatus();
  }
  pqxx::result cancel = Exec(tx, kCancelRequested, fence.workflow_id);
  return !cancel.empty() && cancel[0][0].as<bool>() ? CancelRequested() : Fenced(fence);
}

}  // namespace

PgWorkflowStore::PgWorkflowStore(ConnectionPool* pool, WorkflowStoreOptions options)
    : pool_(*pool),
      options_(options),
      checkpoint_pool_(BatchPoolOptions(pool->options(),
                                        {.max_batch = options.max_checkpoint_batch,
                                         .lock_timeout = options.checkpoint_lock_timeout},
                                        1, "_checkpoints")),
      checkpoints_(
          options.max_checkpoint_batch,
          [this](const std::vector<CheckpointWrite*>& batch) { WriteBatch(batch); },
          [](const CheckpointWrite& a, const CheckpointWrite& b) {
            return a.fence->workflow_id == b.fence->workflow_id;
          }) {}

absl::Status PgWorkflowStore::WriteSteps(const Fence& fence, const std::vector<StepRecord>& steps) {
  if (steps.empty()) return absl::OkStatus();
  if (PassesPivot(steps)) {
    return RunTransaction(pool_, {.mode = TxMode::kAutocommit},
                          [&](pqxx::transaction_base& tx) -> absl::Status {
                            return ExecCheckpoint(tx, fence, steps);
                          });
  }
  CheckpointWrite write{.fence = &fence, .steps = &steps};
  return WriteCheckpoint(write);
}

absl::Status PgWorkflowStore::WriteCheckpoint(CheckpointWrite& write) {
  checkpoints_.Submit(write);
  return write.status;
}

void PgWorkflowStore::WriteBatch(const std::vector<CheckpointWrite*>& batch) {
  std::vector<bool> held;
  const absl::Status status = RunTransaction(checkpoint_pool_, {.mode = TxMode::kAutocommit},
                                             [&](pqxx::transaction_base& tx) -> absl::Status {
                                               held = ExecCheckpoints(tx, batch);
                                               return absl::OkStatus();
                                             });
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.statements;
    if (status.ok()) stats_.checkpoints += static_cast<int64_t>(batch.size());
  }
  if (status.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->status = held[i] ? absl::OkStatus() : Fenced(*batch[i]->fence);
    }
    return;
  }
  // A value the database refused (bad data, a violated constraint: StatusFromDbException) is one
  // write's: each is sent alone, so that it fails only its own run. Anything else (connection
  // lost or pool exhausted, deadlock retries spent) would fail them alone just the same.
  const bool bad_value = status.code() == absl::StatusCode::kInvalidArgument ||
                         status.code() == absl::StatusCode::kFailedPrecondition ||
                         status.code() == absl::StatusCode::kAlreadyExists;
  if (batch.size() > 1 && bad_value) {
    for (CheckpointWrite* write : batch) WriteBatch({write});
    return;
  }
  for (CheckpointWrite* write : batch) write->status = status;
}

CheckpointBatchStats PgWorkflowStore::CheckpointStats() const {
  absl::MutexLock lock(&stats_mu_);
  CheckpointBatchStats stats = stats_;
  stats.queued = checkpoints_.Stats().queued;
  return stats;
}

absl::Status PgWorkflowStore::SaveStepAndSuspend(const Fence& fence, const StepRecord& step,
                                                 bool insert,
                                                 std::optional<absl::Duration> retry_delay,
                                                 WorkflowStatus status, absl::Duration delay) {
  const int64_t retry_ms = retry_delay ? Millis(*retry_delay) : int64_t{-1};
  const int64_t delay_ms = std::max<int64_t>(0, Millis(delay));
  return RunTransaction(
      pool_, {.mode = TxMode::kAutocommit}, [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r;
        if (insert) {
          r = Exec(tx, kInsertStepAndSuspend, fence.workflow_id, fence.owner, fence.epoch,
                   step.seq, step.name, saga::StepKindName(step.kind),
                   saga::StepStatusName(step.status), step.attempts, Hex(step.result),
                   static_cast<int>(step.error_code), step.error_message, step.compensation,
                   Hex(step.compensation_args), step.pivot, step.compensates_seq, retry_ms,
                   saga::WorkflowStatusName(status), delay_ms);
        } else {
          r = Exec(tx, kSaveStepAndSuspend, fence.workflow_id, fence.owner, fence.epoch, step.seq,
                   saga::StepStatusName(step.status), step.attempts, Hex(step.result),
                   static_cast<int>(step.error_code), step.error_message, retry_ms,
                   step.pivot && step.status == saga::StepStatus::kSucceeded,
                   saga::WorkflowStatusName(status), delay_ms);
        }
        return r.empty() ? Fenced(fence) : absl::OkStatus();
      });
}

absl::Status PgWorkflowStore::Suspend(const Fence& fence, WorkflowStatus status,
                                      absl::Duration delay) {
  return RunTransaction(
      pool_, {.mode = TxMode::kAutocommit}, [&](pqxx::transaction_base& tx) -> absl::Status {
        return Exec(tx, kSuspend, fence.workflow_id, fence.owner, fence.epoch,
                    saga::WorkflowStatusName(status), std::max<int64_t>(0, Millis(delay)))
                       .empty()
                   ? Fenced(fence)
                   : absl::OkStatus();
      });
}

absl::StatusOr<std::string> PgWorkflowStore::RunLocalStep(
    const Fence& fence, const StepRecord& step,
    absl::FunctionRef<absl::StatusOr<std::string>(pqxx::transaction_base&)> fn,
    const std::vector<StepRecord>& pending) {
  std::string result;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_ASSIGN_OR_RETURN(result, fn(tx));
    std::vector<StepRecord> rows = pending;
    StepRecord done = step;
    done.Settle(saga::StepStatus::kSucceeded);
    done.result = result;
    done.error_code = absl::StatusCode::kOk;
    done.error_message.clear();
    rows.push_back(std::move(done));
    // The fence comes last, in the checkpoint's own statement: it holds the workflow row
    // until the commit all the same, and a stale or cancelled run rolls its write back.
    return ExecCheckpoint(tx, fence, rows);
  }));
  return result;
}

absl::StatusOr<std::optional<std::string>> PgWorkflowStore::ConsumeSignal(
    const Fence& fence, const StepRecord& step, const std::string& signal_name) {
  std::optional<std::string> payload;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    payload.reset();
    if (Exec(tx, kFenceOnly, fence.workflow_id, fence.owner, fence.epoch, false).empty()) {
      return Fenced(fence);
    }
    pqxx::result r = Exec(tx, kConsumeSignal, fence.workflow_id, signal_name, step.seq);
    if (r.empty()) return absl::OkStatus();
    payload = Unhex(r[0][0]);
    Exec(tx, kUpsertStepSucceeded, fence.workflow_id, step.seq, step.name,
         saga::StepKindName(step.kind), step.attempts, Hex(*payload), false);
    return absl::OkStatus();
  }));
  return payload;
}

absl::StatusOr<std::string> PgWorkflowStore::BeginCompensation(const Fence& fence,
                                                               const std::string& cause,
                                                               const std::string& reason) {
  std::string recorded;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit}, [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r =
            Exec(tx, kBeginCompensation, fence.workflow_id, fence.owner, fence.epoch, cause, reason);
        if (r.empty()) return Fenced(fence);
        recorded = r[0][0].as<std::string>();
        return absl::OkStatus();
      }));
  return recorded;
}

absl::Status PgWorkflowStore::Finish(
    const Fence& fence, const saga::FinishInfo& info, const std::string& result,
    const std::function<absl::Status(pqxx::transaction_base&, const saga::FinishInfo&)>&
        on_finish,
    const std::vector<StepRecord>& pending) {
  CheckpointWrite write{.fence = &fence,
                        .steps = &pending,
                        .end_status = std::string(saga::WorkflowStatusName(info.status)),
                        .end_reason = info.reason,
                        .end_result = Hex(result)};
  // Without a hook: the end and the last checkpoints are one checkpoint write, carried with
  // other workflows' checkpoints. With one, the hook's business write comes first and the fenced
  // end last, as in a local step, so every transaction that locks both takes the business row
  // before the workflow row (no deadlock with a stale run's local step); a fenced end rolls the
  // hook's write back.
  if (!on_finish) return WriteCheckpoint(write);
  return RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_RETURN_IF_ERROR(on_finish(tx, info));
    IndexOnlyPlansUntilCommit(tx);
    return ExecCheckpoints(tx, {&write})[0] ? absl::OkStatus() : Fenced(fence);
  });
}

absl::Status PgWorkflowStore::Release(const Fence& fence) {
  return RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        Exec(tx, kRelease, fence.workflow_id, fence.owner, fence.epoch);
        return absl::OkStatus();
      });
}

absl::StatusOr<std::map<std::string, LeaseState>> PgWorkflowStore::Heartbeat(
    const std::string& owner, const std::vector<std::string>& workflow_ids, absl::Duration lease) {
  std::map<std::string, LeaseState> held;
  if (workflow_ids.empty()) return held;
  const std::string ids = TextArray(workflow_ids);
  // Planned with index access only: `owner` has no index, and a plan chosen while the table was
  // young (a sequential scan, cheapest then) would otherwise be kept by the connection and scan
  // every workflow at each beat as the table grows. One beat per interval: the transaction's
  // extra round trips cost nothing that matters.
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.idempotent = true}, [&](pqxx::transaction_base& tx) -> absl::Status {
        held.clear();
        IndexOnlyPlansUntilCommit(tx);
        for (const pqxx::row& row : Exec(tx, kHeartbeat, owner, ids, Millis(lease))) {
          held[row[0].as<std::string>()] = LeaseState{row[1].as<int64_t>(), row[2].as<bool>()};
        }
        return absl::OkStatus();
      }));
  return held;
}

absl::StatusOr<WorkflowRecord> PgWorkflowStore::RequestCancel(const std::string& workflow_id,
                                                              const std::string& reason) {
  WorkflowRecord out;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_ASSIGN_OR_RETURN(out, LockedWorkflow(tx, workflow_id));
    OP_RETURN_IF_ERROR(RefuseFinished(out));
    if (out.past_pivot) {
      return absl::FailedPreconditionError(absl::StrCat(
          "workflow ", workflow_id, " is past its pivot step and can only run to completion"));
    }
    if (out.cancel_requested || out.status == WorkflowStatus::kCompensating) return absl::OkStatus();
    Exec(tx, kRequestCancel, workflow_id, reason);
    out.cancel_requested = true;
    out.cancel_reason = reason;
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<WorkflowRecord> PgWorkflowStore::Signal(const std::string& workflow_id,
                                                       const std::string& name,
                                                       const std::string& payload,
                                                       const std::string& request_id) {
  WorkflowRecord out;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_ASSIGN_OR_RETURN(out, LockedWorkflow(tx, workflow_id));
    OP_RETURN_IF_ERROR(RefuseFinished(out));
    Exec(tx, kInsertSignal, workflow_id, name, Hex(payload), request_id);
    Exec(tx, kWakeWaiting, workflow_id);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<WorkflowRecord> PgWorkflowStore::Retry(const std::string& workflow_id,
                                                      const std::string& request_id) {
  WorkflowRecord out;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_ASSIGN_OR_RETURN(out, LockedWorkflow(tx, workflow_id));
    if (out.status != WorkflowStatus::kNeedsAttention) {
      // The last retry's request id again: its answer was lost, and the workflow has moved on.
      if (!request_id.empty() &&
          Exec(tx, kSelectRetryRequestId, workflow_id)[0][0].as<std::string>() == request_id) {
        return absl::OkStatus();
      }
      return absl::FailedPreconditionError(absl::StrCat("workflow ", workflow_id, " is ",
                                                        saga::WorkflowStatusName(out.status),
                                                        ", not needs_attention"));
    }
    Exec(tx, kRetryGaveUpStep, workflow_id);
    Exec(tx, kRetryWorkflow, workflow_id, request_id);
    out = WorkflowFromRow(Exec(tx, kSelectWorkflow, workflow_id)[0]);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<WorkflowRecord> PgWorkflowStore::Get(const std::string& workflow_id,
                                                    bool with_steps) {
  absl::StatusOr<WorkflowRecord> out;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r =
            Exec(tx, with_steps ? kSelectWorkflowWithSteps : kSelectWorkflow, workflow_id);
        if (r.empty()) {
          out = NotFound("workflow", workflow_id);
          return absl::OkStatus();
        }
        WorkflowRecord w = WorkflowFromRow(r[0]);
        if (with_steps) {
          for (const pqxx::row& row : r) {
            const pqxx::row step = row.slice(kWorkflowColumnCount, row.size());
            if (!step[0].is_null()) w.steps.push_back(StepFromRow(step));
          }
        }
        out = std::move(w);
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<WorkflowPage> PgWorkflowStore::List(const WorkflowListQuery& query) {
  const int64_t cursor_us = query.after ? absl::ToUnixMicros(query.after->time) : kEndOfTimeMicros;
  const std::string cursor_id = query.after ? query.after->id : std::string(200, '\x7f');
  std::vector<WorkflowRecord> rows;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        rows.clear();
        const int64_t from = MicrosOr(query.created_from, kBeginningOfTimeMicros);
        const int64_t to = MicrosOr(query.created_to, kEndOfTimeMicros);
        const int64_t limit = int64_t{query.page_size} + 1;
        pqxx::result r;
        if (query.type && query.status) {
          r = Exec(tx, kListWorkflowsByTypeAndStatus, cursor_us, cursor_id, from, to, limit,
                   saga::WorkflowStatusName(*query.status), *query.type);
        } else if (query.status) {
          r = Exec(tx, kListWorkflowsByStatus, cursor_us, cursor_id, from, to, limit,
                   saga::WorkflowStatusName(*query.status));
        } else if (query.type) {
          r = Exec(tx, kListWorkflowsByType, cursor_us, cursor_id, from, to, limit, *query.type);
        } else {
          r = Exec(tx, kListWorkflows, cursor_us, cursor_id, from, to, limit);
        }
        for (const pqxx::row& row : r) rows.push_back(WorkflowFromRow(row));
        return absl::OkStatus();
      }));
  WorkflowPage page;
  if (rows.size() > static_cast<size_t>(query.page_size)) {
    rows.resize(query.page_size);
    page.next = PageCursor{rows.back().created_at, rows.back().id};
  }
  page.workflows = std::move(rows);
  return page;
}

absl::StatusOr<StatusCounts> PgWorkflowStore::CountByStatus() {
  StatusCounts counts;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        counts.clear();
        for (const pqxx::row& row : Exec(tx, kCountByStatus)) {
          if (auto s = saga::ParseWorkflowStatus(row[0].as<std::string>())) {
            counts[*s] = row[1].as<int64_t>();
          }
        }
        return absl::OkStatus();
      }));
  return counts;
}

absl::StatusOr<double> PgWorkflowStore::OldestRunnableAgeSeconds() {
  double age = 0;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      age = Exec(tx, kOldestRunnable)[0][0].as<double>();
                                      return absl::OkStatus();
                                    }));
  return age;
}

absl::StatusOr<int64_t> PgWorkflowStore::DeleteFinished(absl::Duration retention, int limit) {
  int64_t deleted = 0;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        deleted = Exec(tx, kDeleteFinished, Millis(retention), limit).affected_rows();
        return absl::OkStatus();
      }));
  return deleted;
}

}  // namespace order_platform::db
