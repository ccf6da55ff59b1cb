// What the database layer reports about its own work, for metrics: connection checkouts,
// statement durations and errors. db/ calls this interface and knows nothing of Prometheus;
// services/metrics/db_metrics.h implements it.
//
// Give one to a pool with PoolOptions::observer; RunTransaction and Exec then report the work
// done on that pool's connections. Every method has an empty default, so an observer overrides
// only what it needs.
#pragma once

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace order_platform::db {

// Error class reported for a connection that broke, could not be opened, or was lost with the
// outcome unknown (these carry no server SQLSTATE).
inline constexpr absl::string_view kConnectionErrorClass = "connection";
// Error class reported for a client-side libpqxx error without a SQLSTATE (e.g. a conversion).
inline constexpr absl::string_view kClientErrorClass = "client";

// Implementations must be thread-safe (they are called from every thread that uses the pool),
// fast (they run on the request path) and must not throw. An observer must outlive every pool
// it is given to.
class DbObserver {
 public:
  virtual ~DbObserver() = default;

  // ConnectionPool::Acquire returned after `wait` (including the time to open a new connection,
  // if it did). `ok` is false when it gave up (pool full) or could not connect.
  virtual void OnCheckout(absl::Duration wait, bool ok) {}

  // The named statement `name` (a db::Statement name: a constant, so bounded) ran on this pool's
  // connection inside RunTransaction and took `duration`; `ok` is false when it threw.
  virtual void OnStatement(absl::string_view name, absl::Duration duration, bool ok) {}

  // A database error happened: `error_class` is the two-character SQLSTATE class ("23"
  // integrity, "40" transaction rollback, "08" connection, "57" operator intervention, ...),
  // kConnectionErrorClass or kClientErrorClass. Called once per failed attempt, so a
  // serialization failure that RunTransaction retried is counted too.
  virtual void OnError(absl::string_view error_class) {}
};

}  // namespace order_platform::db
