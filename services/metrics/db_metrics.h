// PostgreSQL metrics: connection pool state, checkout waits, statement durations, errors by
// SQLSTATE class and schema versions. db/ reports through db::DbObserver (db/observer.h); this
// file turns those reports into Prometheus series, so db/ never includes Prometheus.
//
// Every series carries `database`: a short name the composition root chooses for a pool (the
// services that share it, e.g. "inventory,orders,payments") — never a DSN, which may hold a
// password.
//
// Usage:
//   DbMetrics db_metrics(registry);
//   options.observer = db_metrics.Observer("orders");
//   auto pool = std::make_unique<db::ConnectionPool>(options);
//   db_metrics.AddPool("orders", pool.get());
//   db_metrics.SetMigrationVersion("orders", 1);
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "db/group_commit.h"
#include "db/observer.h"
#include "db/pool.h"
#include "services/metrics/metrics_registry.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace order_platform::metrics {

// Buckets of order_platform_db_query_duration_seconds and _checkout_wait_seconds: 100 us to 10 s.
const std::vector<double>& DbSecondsBuckets();

// Thread-safe. Must outlive every pool given an observer of it; pools added with AddPool must
// outlive this object or stop being scraped first (MetricsRegistry::StopServing).
class DbMetrics {
 public:
  explicit DbMetrics(MetricsRegistry& registry);
  ~DbMetrics();
  DbMetrics(const DbMetrics&) = delete;
  DbMetrics& operator=(const DbMetrics&) = delete;

  // The observer recording under database=`database`; owned by this object. The same name
  // returns the same observer.
  db::DbObserver* Observer(const std::string& database);

  // Reports `pool`'s Stats() under database=`database` at every scrape (open, in use, waiting,
  // configured size, connects, broken connections, checkout timeouts).
  void AddPool(const std::string& database, const db::ConnectionPool* pool);

  // Reports the group-commit queue behind `stats` under writes=`writes` at every scrape
  // (statements sent, writes they carried, writes queued now). Same lifetime rule as AddPool.
  void AddBatches(const std::string& writes, std::function<db::GroupCommitStats()> stats);

  // Sets order_platform_db_migration_version{schema}.
  void SetMigrationVersion(const std::string& schema, int64_t version);

 private:
  class PoolObserver;
  class PoolCollector;

  prometheus::Family<prometheus::Histogram>& checkout_wait_;
  prometheus::Family<prometheus::Histogram>& query_duration_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Gauge>& migration_version_;
  const std::shared_ptr<PoolCollector> pools_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<PoolObserver>> observers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::metrics
