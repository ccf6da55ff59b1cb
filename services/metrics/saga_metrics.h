// Saga engine metrics: what the coordinator's engine reports through saga::EngineObserver
// (saga/observer.h), and gauges read from the workflow store at scrape time.
//
//   order_platform_workflows_started_total{workflow}                        first claims
//   order_platform_workflows_finished_total{workflow,outcome}               ends, by status
//   order_platform_workflow_duration_seconds{workflow}                      start to end
//   order_platform_workflow_step_attempts_total{workflow,step,outcome}      succeeded|retry|failed
//   order_platform_workflow_step_duration_seconds{workflow,step}            one attempt
//   order_platform_workflow_retries_total{workflow,step}                    attempts to be retried
//   order_platform_workflow_compensations_total{workflow,compensation,outcome}  ok|failed
//   order_platform_workflow_lease_takeovers_total{workflow}                 expired leases taken
//   order_platform_workflows{status}                  running|waiting|compensating|needs_attention
//   order_platform_workflow_dispatch_lag_seconds      age of the oldest runnable, unclaimed one
//
// Labels are bounded: `workflow` is a type registered with the engine (anything else, e.g. a row
// of a type this build does not know, counts as "other"); `step` and `compensation` are names in
// workflow code; outcomes and statuses are fixed sets. Every registered type's started,
// finished (each outcome), duration and takeover series exist from registration with value 0;
// step and compensation series appear with their first attempt, all their outcomes at once.
//
// The two gauges count every workflow in the database, whichever coordinator runs it: with
// several coordinators each reports the same values (aggregate with max, not sum).
//
// Usage:
//   SagaMetrics saga_metrics(registry);
//   saga::Engine engine(&store, options, &saga_metrics);
//   engine.Register(PlaceOrderWorkflow(...));  // Creates PlaceOrder's series.
//   saga_metrics.AddStore(&store);
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "db/pg_workflow_store.h"
#include "saga/observer.h"
#include "services/metrics/metrics_registry.h"

namespace prometheus {
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace order_platform::metrics {

// Buckets of order_platform_workflow_duration_seconds: 10 ms to 10 minutes. A PlaceOrder without
// retries takes tens of milliseconds; retry backoffs add seconds; longer ones waited for a
// participant or an operator.
const std::vector<double>& WorkflowSecondsBuckets();
// Buckets of order_platform_workflow_step_duration_seconds: 0.5 ms to 10 s, those of
// grpc_*_handling_seconds (a step is one participant call or one local transaction).
const std::vector<double>& StepSecondsBuckets();

// Thread-safe. Must outlive every engine it observes; a store given to AddStore must outlive
// this object or stop being scraped first (MetricsRegistry::StopServing).
class SagaMetrics final : public saga::EngineObserver {
 public:
  explicit SagaMetrics(MetricsRegistry& registry);
  ~SagaMetrics() override;
  SagaMetrics(const SagaMetrics&) = delete;
  SagaMetrics& operator=(const SagaMetrics&) = delete;

  // saga::EngineObserver.
  void WorkflowRegistered(absl::string_view type) override;
  void WorkflowStarted(absl::string_view type) override;
  void WorkflowFinished(absl::string_view type, absl::string_view outcome,
                        absl::Duration duration) override;
  void StepAttempt(absl::string_view type, absl::string_view step, absl::string_view outcome,
                   absl::Duration duration) override;
  void CompensationAttempt(absl::string_view type, absl::string_view compensation,
                           bool ok) override;
  void LeaseTakeover(absl::string_view type) override;

  // Reports order_platform_workflows{status} and order_platform_workflow_dispatch_lag_seconds
  // from `store` (two short queries), re-read at most once per `cache_for` however often it is
  // scraped. A failed read leaves both out of the scrape until the next read. Call once.
  void AddStore(db::PgWorkflowStore* store, absl::Duration cache_for = absl::Seconds(1));

 private:
  class StoreCollector;
  struct TypeSeries;
  struct StepSeries;
  struct CompensationSeries;

  // The series of `type`: its own when registered, else those of "other".
  TypeSeries& SeriesOfType(absl::string_view type);
  StepSeries& SeriesOfStep(absl::string_view type, absl::string_view step);
  CompensationSeries& SeriesOfCompensation(absl::string_view type, absl::string_view compensation);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& finished_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& step_attempts_;
  prometheus::Family<prometheus::Histogram>& step_duration_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& compensations_;
  prometheus::Family<prometheus::Counter>& takeovers_;
  const std::shared_ptr<StoreCollector> store_;

  // Series are created on first use and never removed, so a reference stays valid once handed
  // out; lookups take the reader lock.
  absl::Mutex mu_;
  // By workflow label: the registered types, and "other" once used.
  absl::flat_hash_map<std::string, std::unique_ptr<TypeSeries>> types_ ABSL_GUARDED_BY(mu_);
  // By "<workflow label>\n<step or compensation>".
  absl::flat_hash_map<std::string, std::unique_ptr<StepSeries>> steps_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<CompensationSeries>> compensations_series_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::metrics
