// A bounded, thread-safe pool of PostgreSQL connections (libpqxx).
//
// Connections are opened lazily up to `size`, handed out as RAII leases, and replaced when they
// break, so a server keeps serving after PostgreSQL restarts. Acquire never blocks longer than
// `checkout_timeout`: a full pool yields RESOURCE_EXHAUSTED, an unreachable server UNAVAILABLE.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "db/observer.h"

namespace order_platform::db {

struct PoolOptions {
  // libpq connection string: URI ("postgresql://user@host:port/db") or key=value form.
  std::string dsn;
  // Maximum open connections.
  int size = 16;
  // How long Acquire waits for a free connection before RESOURCE_EXHAUSTED.
  absl::Duration checkout_timeout = absl::Seconds(5);
  // libpq connect_timeout for new connections (rounded up to whole seconds, min 2).
  absl::Duration connect_timeout = absl::Seconds(5);
  // Reported in pg_stat_activity.
  std::string application_name = "order_platform";
  // Run-time settings of every connection of this pool ("name=value", e.g.
  // "enable_seqscan=off"), sent at connect as libpq's `options` ("-c name=value ...").
  std::vector<std::string> settings = {};
  // Told about checkouts, statements and errors on this pool (db/observer.h); not owned, must
  // outlive the pool. nullptr: nothing is reported.
  DbObserver* observer = nullptr;
};

struct PoolStats {
  int size = 0;     // Configured maximum.
  int open = 0;     // Connections currently open (idle + in use).
  int in_use = 0;   // Leased out.
  int waiting = 0;  // Callers blocked in Acquire.
  int64_t connects = 0;          // Connections opened since start.
  int64_t broken = 0;            // Connections discarded as broken.
  int64_t checkout_timeouts = 0; // Acquire calls that gave up.
};

class ConnectionPool {
 public:
  // A leased connection, returned to the pool on destruction. Not thread-safe; use it from one
  // thread at a time. Must not outlive the pool.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();

    pqxx::connection& connection() { return *conn_; }
    // Discards the connection on return instead of reusing it (call after a connection error).
    void MarkBroken() { broken_ = true; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn);
    ConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  explicit ConnectionPool(PoolOptions options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection, waiting up to checkout_timeout for one to be free. RESOURCE_EXHAUSTED when the
  // pool stays full, UNAVAILABLE when a new connection cannot be opened. Thread-safe.
  absl::StatusOr<Lease> Acquire();

  // Opens one connection and runs `SELECT 1`; UNAVAILABLE with libpq's reason on failure.
  absl::Status Ping();

  PoolStats Stats() const;
  const PoolOptions& options() const { return options_; }

 private:
  absl::StatusOr<Lease> AcquireUnobserved();
  void Release(std::unique_ptr<pqxx::connection> conn, bool broken);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect();

  const PoolOptions options_;
  const std::string conninfo_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t connects_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t broken_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t checkout_timeouts_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace order_platform::db
