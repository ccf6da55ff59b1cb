#include "db/transaction.h"

#include <exception>
#include <cstring>
#include <optional>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace order_platform::db {
namespace {

absl::Status WithSqlState(absl::Status status, const std::string& sqlstate) {
  if (!sqlstate.empty()) status.SetPayload(kSqlStatePayload, absl::Cord(sqlstate));
  return status;
}

// The first line of a libpq message without its "ERROR:" prefix: the DETAIL lines that follow
// can quote row contents, which must not reach callers or logs.
std::string Trimmed(const char* what) {
  std::string s = what;
  s = s.substr(0, s.find('\n'));
  for (const char* prefix : {"ERROR:  ", "FATAL:  "}) {
    if (s.rfind(prefix, 0) == 0) s = s.substr(std::strlen(prefix));
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

bool IsRetryableConflict(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted &&
         status.GetPayload(kSqlStatePayload).has_value();
}

// The observer of the pool whose RunTransaction runs on this thread (fn runs synchronously).
thread_local DbObserver* current_observer = nullptr;

// Makes `observer` current for the life of this object (restoring the previous one, so nested
// units of work on other pools report to their own).
class ScopedObserver {
 public:
  explicit ScopedObserver(DbObserver* observer) : previous_(current_observer) {
    current_observer = observer;
  }
  ~ScopedObserver() { current_observer = previous_; }

 private:
  DbObserver* const previous_;
};

// The error class a translated database error is counted under (db/observer.h).
std::string ErrorClass(const absl::Status& status, bool connection_lost) {
  if (connection_lost) return std::string(kConnectionErrorClass);
  absl::optional<absl::Cord> sqlstate = status.GetPayload(kSqlStatePayload);
  if (!sqlstate.has_value() || sqlstate->size() < 2) return std::string(kClientErrorClass);
  // A SQLSTATE is five characters of [0-9A-Z]; its first two name the class.
  std::string state(*sqlstate);
  state.resize(2);
  for (char c : state) {
    if (!absl::ascii_isdigit(c) && !absl::ascii_isupper(c)) return std::string(kClientErrorClass);
  }
  return state;
}

constexpr absl::string_view kOutcomeUnknownPayload = "type.order-platform/outcome-unknown";

absl::Status OutcomeUnknown(const absl::Status& cause) {
  absl::Status status = absl::UnavailableError(absl::StrCat(
      "connection to PostgreSQL lost before the outcome was known; retry with the same "
      "request_id to settle it (",
      cause.message(), ")"));
  status.SetPayload(kOutcomeUnknownPayload, absl::Cord("1"));
  return status;
}

}  // namespace

namespace internal {

StatementTimer::StatementTimer(const Statement& statement)
    : observer_(current_observer), name_(statement.name) {
  if (observer_ != nullptr) {
    start_ = absl::Now();
    uncaught_exceptions_ = std::uncaught_exceptions();
  }
}

StatementTimer::~StatementTimer() {
  if (observer_ == nullptr) return;
  observer_->OnStatement(name_, absl::Now() - start_,
                         std::uncaught_exceptions() == uncaught_exceptions_);
}

}  // namespace internal

absl::Status StatusFromDbException(bool* connection_lost) {
  *connection_lost = false;
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    *connection_lost = true;
    return OutcomeUnknown(absl::UnavailableError(Trimmed(e.what())));
  } catch (const pqxx::statement_completion_unknown& e) {
    *connection_lost = true;
    return OutcomeUnknown(absl::UnavailableError(Trimmed(e.what())));
  } catch (const pqxx::serialization_failure& e) {
    // libpqxx 6 derives these from transaction_rollback, not sql_error: no sqlstate() here.
    return WithSqlState(absl::AbortedError(absl::StrCat("transaction conflict: ", Trimmed(e.what()))),
                        "40001");
  } catch (const pqxx::deadlock_detected& e) {
    return WithSqlState(absl::AbortedError(absl::StrCat("deadlock: ", Trimmed(e.what()))), "40P01");
  } catch (const pqxx::transaction_rollback& e) {
    return WithSqlState(absl::AbortedError(absl::StrCat("transaction rolled back: ", Trimmed(e.what()))),
                        "40000");
  } catch (const pqxx::broken_connection& e) {
    *connection_lost = true;
    return absl::UnavailableError(absl::StrCat("database unavailable: ", Trimmed(e.what())));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    const std::string msg = Trimmed(e.what());
    const std::string cls = state.substr(0, 2);
    // A statement timeout or a cancel (57014) ended the statement, not the connection.
    if (state == "57014") return WithSqlState(absl::DeadlineExceededError(msg), state);
    if (cls == "08" || cls == "57" || state == "25006") {  // Connection, shutdown, read-only.
      *connection_lost = cls != "25";
      return WithSqlState(absl::UnavailableError(absl::StrCat("database unavailable: ", msg)),
                          state);
    }
    if (state == "40001" || state == "40P01") {
      return WithSqlState(absl::AbortedError(absl::StrCat("transaction conflict: ", msg)), state);
    }
    if (state == "23505") return WithSqlState(absl::AlreadyExistsError(msg), state);
    if (state == "23514" || state == "23503" || state == "23P01") {
      return WithSqlState(absl::FailedPreconditionError(msg), state);
    }
    if (cls == "22") return WithSqlState(absl::InvalidArgumentError(msg), state);
    if (cls == "53") return WithSqlState(absl::UnavailableError(msg), state);
    return WithSqlState(absl::InternalError(absl::StrCat("database error: ", msg)), state);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("database client error: ", Trimmed(e.what())));
  }
}

bool IsOutcomeUnknown(const absl::Status& status) {
  return status.GetPayload(kOutcomeUnknownPayload).has_value();
}

absl::Status RunTransaction(ConnectionPool& pool, const TxOptions& options,
                            absl::FunctionRef<absl::Status(pqxx::transaction_base&)> fn) {
  thread_local absl::BitGen jitter;
  DbObserver* const observer = pool.options().observer;
  const ScopedObserver scoped_observer(observer);
  absl::Status last;
  for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
    if (attempt > 1) {
      // Jittered exponential backoff: 2ms, 4ms, 8ms ... (x0.5..1.5).
      const double base_ms = 2.0 * (1 << std::min(attempt - 2, 6));
      absl::SleepFor(absl::Milliseconds(base_ms * absl::Uniform(jitter, 0.5, 1.5)));
    }
    absl::StatusOr<ConnectionPool::Lease> lease = pool.Acquire();
    if (!lease.ok()) return lease.status();
    // Whether anything may have been committed if the connection drops now.
    bool maybe_committed = false;
    try {
      absl::Status status;
      switch (options.mode) {
        case TxMode::kAutocommit: {
          pqxx::nontransaction tx(lease->connection());
          maybe_committed = true;
          status = fn(tx);
          maybe_committed = false;
          break;
        }
        case TxMode::kReadCommitted: {
          pqxx::work tx(lease->connection());
          status = fn(tx);
          if (status.ok()) {
            maybe_committed = true;
            tx.commit();
            maybe_committed = false;
          }
          break;
        }
        case TxMode::kSerializable: {
          pqxx::transaction<pqxx::serializable> tx(lease->connection());
          status = fn(tx);
          if (status.ok()) {
            maybe_committed = true;
            tx.commit();
            maybe_committed = false;
          }
          break;
        }
      }
      return status;  // fn's own error: rolled back by the transaction's destructor.
    } catch (...) {
      bool connection_lost = false;
      last = StatusFromDbException(&connection_lost);
      if (observer != nullptr) observer->OnError(ErrorClass(last, connection_lost));
      if (connection_lost) lease->MarkBroken();
      if (connection_lost) {
        if (maybe_committed && !options.idempotent) {
          return IsOutcomeUnknown(last) ? last : OutcomeUnknown(last);
        }
        // Nothing committed, or re-running is harmless: retry on a fresh connection.
        continue;
      }
      if (IsRetryableConflict(last)) continue;
      return last;
    }
  }
  return last;
}

const std::vector<std::string>& IndexOnlyPlanSettings() {
  static const auto* const settings = new std::vector<std::string>{
      "enable_seqscan=off", "enable_hashjoin=off", "enable_mergejoin=off"};
  return *settings;
}

void IndexOnlyPlansUntilCommit(pqxx::transaction_base& tx) {
  std::string sql;
  for (const std::string& setting : IndexOnlyPlanSettings()) {
    absl::StrAppend(&sql, "SET LOCAL ", setting, ";");
  }
  tx.exec(sql);
}

PoolOptions BatchPoolOptions(const PoolOptions& pool, const WriteBatchOptions& batch, int in_flight,
                             absl::string_view suffix) {
  PoolOptions out = pool;
  out.size = batch.max_batch > 1 ? in_flight : pool.size;
  out.application_name = absl::StrCat(pool.application_name, suffix);
  out.settings.insert(out.settings.end(), IndexOnlyPlanSettings().begin(),
                      IndexOnlyPlanSettings().end());
  out.settings.push_back(
      absl::StrCat("lock_timeout=", absl::ToInt64Milliseconds(batch.lock_timeout)));
  return out;
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace order_platform::db
