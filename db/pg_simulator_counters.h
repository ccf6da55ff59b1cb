// SimulatorCounters in the payments database (table payments.simulator_counters, migration
// payments/0002): every process of the payments service on one database shares the counts, and
// they survive restarts. Each Increment is one autocommit statement (an upsert returning the new
// count), so concurrent increments of one count serialize on its row. Thread-safe.
#pragma once

#include "db/pool.h"
#include "services/payments/simulator_counters.h"

namespace order_platform::db {

class PgSimulatorCounters final : public payments::SimulatorCounters {
 public:
  // `pool` must outlive this object and point at a database migrated to the `payments` schema.
  explicit PgSimulatorCounters(ConnectionPool* pool) : pool_(*pool) {}

  // Errors as RunTransaction's: UNAVAILABLE when the database is unreachable or the connection
  // was lost after the statement was sent (the count may then have been incremented),
  // RESOURCE_EXHAUSTED when the pool stayed full, INTERNAL otherwise (e.g. schema not migrated).
  absl::StatusOr<int64_t> Increment(absl::string_view idempotency_key,
                                    payments::SimulatorCounter counter) override;

 private:
  ConnectionPool& pool_;
};

}  // namespace order_platform::db
