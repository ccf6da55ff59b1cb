#include "db/pg_simulator_counters.h"

#include <pqxx/pqxx>
#include <string>

#include "db/transaction.h"

namespace order_platform::db {
namespace {

// Creates the count at 1 or adds one to it, and returns the count after the increment.
constexpr Statement kIncrementCounter{
    "payments.increment_simulator_counter",
    "INSERT INTO payments.simulator_counters AS c (idempotency_key, counter, calls)"
    " VALUES ($1, $2, 1)"
    " ON CONFLICT (idempotency_key, counter)"
    " DO UPDATE SET calls = c.calls + 1, updated_at = now()"
    " RETURNING calls"};

}  // namespace

absl::StatusOr<int64_t> PgSimulatorCounters::Increment(absl::string_view idempotency_key,
                                                       payments::SimulatorCounter counter) {
  int64_t count = 0;
  const std::string key(idempotency_key);
  const std::string name(payments::SimulatorCounterName(counter));
  // Not idempotent: re-running it after the outcome became unknown would count twice, so such a
  // loss is UNAVAILABLE, which the gateway passes on as a transient failure.
  absl::Status status = RunTransaction(
      pool_, {.mode = TxMode::kAutocommit}, [&](pqxx::transaction_base& tx) -> absl::Status {
        count = Exec(tx, kIncrementCounter, key, name)[0][0].as<int64_t>();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return count;
}

}  // namespace order_platform::db
