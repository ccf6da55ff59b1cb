#include "services/metrics/db_metrics.h"

#include <utility>
#include <vector>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace order_platform::metrics {

const std::vector<double>& DbSecondsBuckets() {
  static const auto* buckets =
      new std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                              0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *buckets;
}

// Error classes with a series from the start: connection loss, SQLSTATE 08 (connection), 23
// (integrity), 40 (serialization failure, deadlock), 53 (insufficient resources), 57 (operator
// intervention: shutdown, cancel).
constexpr const char* kWatchedErrorClasses[] = {"connection", "08", "23", "40", "53", "57"};

// Records the reports of one pool. Series per statement and per error class are created on first
// use and cached, so the request path takes a reader lock and no allocation.
class DbMetrics::PoolObserver final : public db::DbObserver {
 public:
  PoolObserver(DbMetrics* metrics, std::string database)
      : metrics_(*metrics),
        database_(std::move(database)),
        checkout_wait_(metrics_.checkout_wait_.Add({{"database", database_}}, DbSecondsBuckets())) {
    // The classes operators watch exist from the start at 0, so the first error of a class is a
    // step that rate() and increase() see (a series born at 1 is not).
    for (const char* error_class : kWatchedErrorClasses) {
      Cached(errors_, error_class, [&] {
        return &metrics_.errors_.Add({{"database", database_}, {"sqlstate_class", error_class}});
      });
    }
  }

  void OnCheckout(absl::Duration wait, bool ok) override {
    checkout_wait_.Observe(absl::ToDoubleSeconds(wait));
  }

  void OnStatement(absl::string_view name, absl::Duration duration, bool ok) override {
    Cached(statements_, name, [&] {
      return &metrics_.query_duration_.Add(
          {{"database", database_}, {"statement", std::string(name)}}, DbSecondsBuckets());
    }).Observe(absl::ToDoubleSeconds(duration));
  }

  void OnError(absl::string_view error_class) override {
    Cached(errors_, error_class, [&] {
      return &metrics_.errors_.Add(
          {{"database", database_}, {"sqlstate_class", std::string(error_class)}});
    }).Increment();
  }

 private:
  template <typename T, typename Make>
  T& Cached(absl::flat_hash_map<std::string, T*>& cache, absl::string_view key, Make make) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = cache.find(key); it != cache.end()) return *it->second;
    }
    T* metric = make();  // Family::Add returns the existing series for the same labels.
    absl::MutexLock lock(&mu_);
    cache.emplace(std::string(key), metric);
    return *metric;
  }

  DbMetrics& metrics_;
  const std::string database_;
  prometheus::Histogram& checkout_wait_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Histogram*> statements_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Counter*> errors_ ABSL_GUARDED_BY(mu_);
};

// Reads every added pool's Stats() at scrape time.
class DbMetrics::PoolCollector final : public prometheus::Collectable {
 public:
  void Add(const std::string& database, const db::ConnectionPool* pool) {
    absl::MutexLock lock(&mu_);
    pools_.emplace_back(database, pool);
  }

  void AddBatches(const std::string& writes, std::function<db::GroupCommitStats()> stats) {
    absl::MutexLock lock(&mu_);
    batches_.emplace_back(writes, std::move(stats));
  }

  void Clear() {
    absl::MutexLock lock(&mu_);
    pools_.clear();
    batches_.clear();
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    static constexpr Spec<db::PoolStats> kPoolSpecs[] = {
        {"order_platform_db_pool_connections_max", "Configured maximum of open connections.",
         MetricType::Gauge, [](const db::PoolStats& s) { return double(s.size); }},
        {"order_platform_db_pool_connections_open", "Open connections, idle or in use.",
         MetricType::Gauge, [](const db::PoolStats& s) { return double(s.open); }},
        {"order_platform_db_pool_connections_in_use", "Connections leased out to a request.",
         MetricType::Gauge, [](const db::PoolStats& s) { return double(s.in_use); }},
        {"order_platform_db_pool_waiting", "Requests waiting for a free connection.",
         MetricType::Gauge, [](const db::PoolStats& s) { return double(s.waiting); }},
        {"order_platform_db_pool_connects_total", "Connections opened.", MetricType::Counter,
         [](const db::PoolStats& s) { return double(s.connects); }},
        {"order_platform_db_pool_broken_connections_total",
         "Connections discarded because they broke.", MetricType::Counter,
         [](const db::PoolStats& s) { return double(s.broken); }},
        {"order_platform_db_pool_checkout_timeouts_total",
         "Checkouts that gave up because every connection stayed busy.", MetricType::Counter,
         [](const db::PoolStats& s) { return double(s.checkout_timeouts); }},
    };
    static constexpr Spec<db::GroupCommitStats> kBatchSpecs[] = {
        {"order_platform_db_batch_statements_total",
         "Statements sent by a group-commit queue, each carrying the writes of one or more "
         "callers (those made while the previous one was in flight).",
         MetricType::Counter, [](const db::GroupCommitStats& s) { return double(s.batches); }},
        {"order_platform_db_batched_writes_total",
         "Writes carried by those statements; divided by the statements, the mean batch.",
         MetricType::Counter, [](const db::GroupCommitStats& s) { return double(s.items); }},
        {"order_platform_db_batched_writes_queued",
         "Writes waiting for the statement in flight to end (they go in the next one).",
         MetricType::Gauge, [](const db::GroupCommitStats& s) { return double(s.queued); }},
    };
    std::vector<std::pair<std::string, db::PoolStats>> pools;
    std::vector<std::pair<std::string, db::GroupCommitStats>> batches;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [database, pool] : pools_) pools.emplace_back(database, pool->Stats());
      for (const auto& [writes, read] : batches_) batches.emplace_back(writes, read());
    }
    std::vector<prometheus::MetricFamily> out;
    AddFamilies(kPoolSpecs, "database", pools, out);
    AddFamilies(kBatchSpecs, "writes", batches, out);
    return out;
  }

 private:
  template <typename Stats>
  struct Spec {
    const char* name;
    const char* help;
    prometheus::MetricType type;
    double (*value)(const Stats&);
  };

  // One family per spec with one sample per row, labelled `label` = the row's name; nothing
  // when there are no rows.
  template <typename Stats, size_t N>
  static void AddFamilies(const Spec<Stats> (&specs)[N], const char* label,
                          const std::vector<std::pair<std::string, Stats>>& rows,
                          std::vector<prometheus::MetricFamily>& out) {
    if (rows.empty()) return;
    for (const Spec<Stats>& spec : specs) {
      prometheus::MetricFamily family;
      family.name = spec.name;
      family.help = spec.help;
      family.type = spec.type;
      for (const auto& [name, stats] : rows) {
        prometheus::ClientMetric metric;
        metric.label.push_back({label, name});
        if (spec.type == prometheus::MetricType::Counter) {
          metric.counter.value = spec.value(stats);
        } else {
          metric.gauge.value = spec.value(stats);
        }
        family.metric.push_back(std::move(metric));
      }
      out.push_back(std::move(family));
    }
  }

  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, const db::ConnectionPool*>> pools_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::function<db::GroupCommitStats()>>> batches_
      ABSL_GUARDED_BY(mu_);
};

DbMetrics::DbMetrics(MetricsRegistry& registry)
    : checkout_wait_(prometheus::BuildHistogram()
                         .Name("order_platform_db_checkout_wait_seconds")
                         .Help("Time a request waited for a pooled connection, including "
                               "opening a new one; failed checkouts included.")
                         .Register(registry.registry())),
      query_duration_(prometheus::BuildHistogram()
                          .Name("order_platform_db_query_duration_seconds")
                          .Help("Duration of one named SQL statement, failed ones included.")
                          .Register(registry.registry())),
      errors_(prometheus::BuildCounter()
                  .Name("order_platform_db_errors_total")
                  .Help("Database errors by SQLSTATE class (\"23\", \"40\", ...), "
                        "\"connection\" for lost or refused connections, \"client\" for "
                        "client-side errors.")
                  .Register(registry.registry())),
      migration_version_(prometheus::BuildGauge()
                             .Name("order_platform_db_migration_version")
                             .Help("Schema migration version the database is at.")
                             .Register(registry.registry())),
      pools_(std::make_shared<PoolCollector>()) {
  registry.AddCollectable(pools_);
}

DbMetrics::~DbMetrics() { pools_->Clear(); }

db::DbObserver* DbMetrics::Observer(const std::string& database) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<PoolObserver>& observer = observers_[database];
  if (observer == nullptr) observer = std::make_unique<PoolObserver>(this, database);
  return observer.get();
}

void DbMetrics::AddPool(const std::string& database, const db::ConnectionPool* pool) {
  pools_->Add(database, pool);
}

void DbMetrics::AddBatches(const std::string& writes, std::function<db::GroupCommitStats()> stats) {
  pools_->AddBatches(writes, std::move(stats));
}

void DbMetrics::SetMigrationVersion(const std::string& schema, int64_t version) {
  migration_version_.Add({{"schema", schema}}).Set(static_cast<double>(version));
}

}  // namespace order_platform::metrics
