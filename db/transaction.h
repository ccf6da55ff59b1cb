// Running units of work against PostgreSQL, and the one place where libpqxx exceptions become
// absl::Status values.
//
// Usage:
//   OP_RETURN_IF_ERROR(RunTransaction(pool, {}, [&](pqxx::transaction_base& tx) {
//     pqxx::result r = Exec(tx, kSelectOrder, id);
//     ...
//     return absl::OkStatus();
//   }));
// Query helpers take `pqxx::transaction_base&`, so the same helper runs as a single autocommit
// statement or inside a larger transaction.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "db/observer.h"
#include "db/pool.h"

namespace order_platform::db {

// A named SQL statement, prepared once per connection on first use. Declare each as a constant
// beside the code that runs it; parameters are always bound, never concatenated.
struct Statement {
  const char* name;
  const char* sql;
};

namespace internal {

// Times one Exec and reports it to the DbObserver of the pool whose RunTransaction is running on
// this thread (no-op outside RunTransaction or without an observer).
class StatementTimer {
 public:
  explicit StatementTimer(const Statement& statement);
  ~StatementTimer();
  StatementTimer(const StatementTimer&) = delete;
  StatementTimer& operator=(const StatementTimer&) = delete;

 private:
  DbObserver* const observer_;
  const char* const name_;
  absl::Time start_;
  int uncaught_exceptions_ = 0;
};

}  // namespace internal

// Runs `statement` with bound `args` in `tx`, preparing it on this connection if needed.
// Arguments are passed by const reference: they may be sent twice. Inside RunTransaction its
// duration is reported to the pool's DbObserver under the statement's name.
template <typename... Args>
pqxx::result Exec(pqxx::transaction_base& tx, const Statement& statement, const Args&... args) {
  internal::StatementTimer timer(statement);
  try {
    return tx.exec_prepared(statement.name, args...);
  } catch (const pqxx::argument_error&) {
    // Not yet defined on this connection: define it (the server prepares it on first use).
  }
  tx.conn().prepare(statement.name, statement.sql);
  return tx.exec_prepared(statement.name, args...);
}

enum class TxMode {
  // BEGIN ... COMMIT at READ COMMITTED; use row locks (FOR UPDATE) for read-modify-write.
  kReadCommitted,
  // BEGIN ISOLATION LEVEL SERIALIZABLE ... COMMIT.
  kSerializable,
  // No BEGIN/COMMIT: each statement commits on its own. For single-statement work (one round
  // trip) and reads.
  kAutocommit,
};

struct TxOptions {
  TxMode mode = TxMode::kReadCommitted;
  // Whether re-running the whole unit after its outcome became unknown (connection lost during
  // COMMIT, or during an autocommit write) is harmless, e.g. because it is keyed by a request id.
  // When false such a loss is reported as UNAVAILABLE saying the outcome is unknown.
  bool idempotent = false;
  // Attempts in total for retryable failures (serialization failure, deadlock, a connection
  // that broke before anything was sent).
  int max_attempts = 4;
};

// Runs `fn` in a transaction on a pooled connection and commits if it returns OK; rolls back
// and returns its status otherwise. Serialization failures, deadlocks and dead pooled
// connections are retried up to max_attempts with jittered backoff, so `fn` may run more than
// once and must have no side effects outside `tx` and its captured outputs (reset them at the
// start of `fn`). Database errors are translated by StatusFromDbException. The pool's
// DbObserver, if any, is told each error's SQLSTATE class and each Exec's duration.
absl::Status RunTransaction(ConnectionPool& pool, const TxOptions& options,
                            absl::FunctionRef<absl::Status(pqxx::transaction_base&)> fn);

// Sends one shared statement for the writes of a GroupCommit batch: `exec` runs it in autocommit
// on `pool`, and every write gets the outcome as its `status`. The statement must be keyed (by
// request or order id) so that re-running it after a lost connection writes nothing twice: it is
// re-run, and the writes it applied the first time are then answered alone by their callers.
template <typename Write>
absl::Status RunSharedStatement(ConnectionPool& pool, const std::vector<Write*>& batch,
                                absl::FunctionRef<void(pqxx::transaction_base&)> exec) {
  const absl::Status status =
      RunTransaction(pool, {.mode = TxMode::kAutocommit, .idempotent = true},
                     [&](pqxx::transaction_base& tx) -> absl::Status {
                       exec(tx);
                       return absl::OkStatus();
                     });
  for (Write* write : batch) write->status = status;
  return status;
}

// Translates the exception being handled (call only inside a catch block) to a status:
// connection loss -> UNAVAILABLE, statement timeout or cancel -> DEADLINE_EXCEEDED (the
// connection stays usable), serialization failure/deadlock -> ABORTED,
// unique violation -> ALREADY_EXISTS, check/foreign-key violation -> FAILED_PRECONDITION,
// bad data -> INVALID_ARGUMENT, anything else -> INTERNAL. Sets *connection_lost when the
// connection can no longer be used.
absl::Status StatusFromDbException(bool* connection_lost);

// SQLSTATE payload key attached to translated statuses (e.g. "40001").
inline constexpr absl::string_view kSqlStatePayload = "type.order-platform/sqlstate";

// Whether `status` is RunTransaction's "connection lost before the outcome was known" (a
// non-idempotent unit that may or may not have committed): the caller must find out from the
// database, not assume either.
bool IsOutcomeUnknown(const absl::Status& status);

// Planner settings ("name=value") under which a statement that joins parameter arrays to tables
// is planned only as nested loops with an index probe per array element, whatever the tables'
// statistics: a generic plan cached while a table was small would otherwise hash-join a scan of
// the whole table at every execution as it grows. A pool whose connections run only such
// statements has them from the start (PoolOptions::settings); a transaction that runs one among
// other work sets them just before (IndexOnlyPlansUntilCommit).
const std::vector<std::string>& IndexOnlyPlanSettings();
// SET LOCAL of IndexOnlyPlanSettings() in `tx`, to its end.
void IndexOnlyPlansUntilCommit(pqxx::transaction_base& tx);

// How a repository shares its write statements between concurrent callers (GroupCommit).
struct WriteBatchOptions {
  // Writes of one kind made while a statement of that kind is in flight are sent together by the
  // next, up to this many in one statement. 1: each is a statement of its own, sent at once.
  int max_batch = 64;
  // How long a shared statement waits for a row another transaction holds locked before it
  // fails: one statement carries many callers' writes, so one held row must not stall them all
  // for longer. Its writes are then made one by one.
  absl::Duration lock_timeout = absl::Seconds(2);
};

// Options of the pool for a repository's shared statements, to the database of `pool`:
// `in_flight` connections when batching (one per kind of statement: one statement of a kind is in
// flight at a time), else as many as `pool` has (each write is sent at once); with
// IndexOnlyPlanSettings() and `batch.lock_timeout`, so that one row held locked elsewhere fails
// the statement that carries everyone's writes after that long instead of stalling them all.
// Reported as `pool`'s application name followed by `suffix`.
PoolOptions BatchPoolOptions(const PoolOptions& pool, const WriteBatchOptions& batch, int in_flight,
                             absl::string_view suffix);

// A PostgreSQL array literal ({"a","b"}) for binding a text[] / uuid[] parameter.
std::string TextArray(const std::vector<std::string>& values);

// A PostgreSQL array literal for an integer array parameter.
template <typename Int>
std::string IntArray(const std::vector<Int>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += std::to_string(values[i]);
  }
  out.push_back('}');
  return out;
}

}  // namespace order_platform::db
