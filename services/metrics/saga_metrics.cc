#include "services/metrics/saga_metrics.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "saga/workflow.h"
#include "services/metrics/process_collector.h"

namespace order_platform::metrics {
namespace {

using saga::WorkflowStatus;

// The `workflow` label of workflows whose type is not registered here.
constexpr char kOtherType[] = "other";

// The outcomes of order_platform_workflows_finished_total: the terminal statuses and
// needs_attention, named by saga::WorkflowStatusName.
constexpr WorkflowStatus kFinishOutcomes[] = {
    WorkflowStatus::kCompleted, WorkflowStatus::kCompensated,    WorkflowStatus::kCancelled,
    WorkflowStatus::kFailed,    WorkflowStatus::kNeedsAttention,
};
// The statuses of order_platform_workflows: every one a workflow can be in before it ends.
constexpr WorkflowStatus kGaugeStatuses[] = {
    WorkflowStatus::kRunning,
    WorkflowStatus::kWaiting,
    WorkflowStatus::kCompensating,
    WorkflowStatus::kNeedsAttention,
};
// What saga::EngineObserver::StepAttempt reports.
constexpr absl::string_view kStepOutcomes[] = {"succeeded", "retry", "failed"};
constexpr size_t kRetryOutcome = 1;

double Seconds(absl::Duration duration) {
  return std::max(0.0, absl::ToDoubleSeconds(duration));  // Clocks of two hosts may disagree.
}

}  // namespace

const std::vector<double>& WorkflowSecondsBuckets() {
  static const auto* buckets = new std::vector<double>{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                       5,    10,    30,   60,  120,  300, 600};
  return *buckets;
}

const std::vector<double>& StepSecondsBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

struct SagaMetrics::TypeSeries {
  std::string label;
  prometheus::Counter* started = nullptr;
  prometheus::Counter* takeovers = nullptr;
  prometheus::Histogram* duration = nullptr;
  std::array<prometheus::Counter*, std::size(kFinishOutcomes)> finished{};
};

struct SagaMetrics::StepSeries {
  prometheus::Histogram* duration = nullptr;
  prometheus::Counter* retries = nullptr;
  std::array<prometheus::Counter*, std::size(kStepOutcomes)> attempts{};
};

struct SagaMetrics::CompensationSeries {
  prometheus::Counter* ok = nullptr;
  prometheus::Counter* failed = nullptr;
};

// Reads the workflow gauges from the store at scrape time, at most once per `cache_for`. The
// lock is held during the read, so concurrent scrapes share one read and Clear() waits for a
// read in progress.
class SagaMetrics::StoreCollector final : public prometheus::Collectable {
 public:
  void Set(db::PgWorkflowStore* store, absl::Duration cache_for) {
    absl::MutexLock lock(&mu_);
    store_ = store;
    cache_for_ = cache_for;
    next_read_ = absl::InfinitePast();
  }

  void Clear() {
    absl::MutexLock lock(&mu_);
    store_ = nullptr;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    absl::MutexLock lock(&mu_);
    if (store_ == nullptr) return out;
    const absl::Time now = absl::Now();
    if (now >= next_read_) {
      next_read_ = now + cache_for_;
      counts_.reset();
      lag_.reset();
      if (absl::StatusOr<db::StatusCounts> counts = store_->CountByStatus(); counts.ok()) {
        counts_ = *std::move(counts);
      }
      if (absl::StatusOr<double> lag = store_->OldestRunnableAgeSeconds(); lag.ok()) lag_ = *lag;
    }
    if (counts_.has_value()) {
      prometheus::MetricFamily family;
      family.name = "order_platform_workflows";
      family.help =
          "Workflows by status, in the whole store: running (runnable or running), waiting "
          "(timer, retry backoff or signal), compensating, needs_attention (for an operator).";
      family.type = prometheus::MetricType::Gauge;
      for (WorkflowStatus status : kGaugeStatuses) {
        prometheus::ClientMetric metric;
        metric.label.push_back({"status", saga::WorkflowStatusName(status)});
        auto it = counts_->find(status);
        metric.gauge.value = it == counts_->end() ? 0 : static_cast<double>(it->second);
        family.metric.push_back(std::move(metric));
      }
      out.push_back(std::move(family));
    }
    // The checkpoint statements are counted in memory: read at every scrape.
    const db::CheckpointBatchStats checkpoints = store_->CheckpointStats();
    AddSingleSample(out, "order_platform_workflow_checkpoint_statements_total",
                    "Statements sent to write workflow checkpoints (step outcomes, obligations, "
                    "ends without a business write), each carrying those of one or more "
                    "workflows; checkpoints_total / this is the mean batch.",
                    prometheus::MetricType::Counter, static_cast<double>(checkpoints.statements));
    AddSingleSample(out, "order_platform_workflow_checkpoints_total",
                    "Workflow checkpoints carried by the statements that succeeded (a fenced "
                    "one, which wrote nothing, included).",
                    prometheus::MetricType::Counter, static_cast<double>(checkpoints.checkpoints));
    AddSingleSample(
        out, "order_platform_workflow_checkpoints_queued",
        "Checkpoints waiting for the statement in flight to end (they go in the next one).",
        prometheus::MetricType::Gauge, static_cast<double>(checkpoints.queued));
    if (lag_.has_value()) {
      prometheus::MetricFamily family;
      family.name = "order_platform_workflow_dispatch_lag_seconds";
      family.help =
          "How long the oldest runnable workflow has been due without being claimed (0 when "
          "none is).";
      family.type = prometheus::MetricType::Gauge;
      prometheus::ClientMetric metric;
      metric.gauge.value = std::max(0.0, *lag_);
      family.metric.push_back(std::move(metric));
      out.push_back(std::move(family));
    }
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  db::PgWorkflowStore* store_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Duration cache_for_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time next_read_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  mutable std::optional<db::StatusCounts> counts_ ABSL_GUARDED_BY(mu_);
  mutable std::optional<double> lag_ ABSL_GUARDED_BY(mu_);
};

SagaMetrics::SagaMetrics(MetricsRegistry& registry)
    : started_(prometheus::BuildCounter()
                   .Name("order_platform_workflows_started_total")
                   .Help("Workflows started: claimed by a coordinator for the first time.")
                   .Register(registry.registry())),
      finished_(prometheus::BuildCounter()
                    .Name("order_platform_workflows_finished_total")
                    .Help("Workflows ended, by outcome: completed, compensated, cancelled, "
                          "failed, needs_attention.")
                    .Register(registry.registry())),
      duration_(prometheus::BuildHistogram()
                    .Name("order_platform_workflow_duration_seconds")
                    .Help("Time from a workflow's start to its end (any outcome).")
                    .Register(registry.registry())),
      step_attempts_(prometheus::BuildCounter()
                         .Name("order_platform_workflow_step_attempts_total")
                         .Help("Attempts of workflow steps, by outcome: succeeded, retry (failed, "
                               "to be retried), failed (failed for good).")
                         .Register(registry.registry())),
      step_duration_(prometheus::BuildHistogram()
                         .Name("order_platform_workflow_step_duration_seconds")
                         .Help("Duration of one attempt of a workflow step.")
                         .Register(registry.registry())),
      retries_(prometheus::BuildCounter()
                   .Name("order_platform_workflow_retries_total")
                   .Help("Step attempts that failed and were scheduled to be retried.")
                   .Register(registry.registry())),
      compensations_(prometheus::BuildCounter()
                         .Name("order_platform_workflow_compensations_total")
                         .Help("Attempts of compensations, by outcome: ok, failed.")
                         .Register(registry.registry())),
      takeovers_(prometheus::BuildCounter()
                     .Name("order_platform_workflow_lease_takeovers_total")
                     .Help("Workflows claimed after their previous owner's lease expired "
                           "(a coordinator died or stalled).")
                     .Register(registry.registry())),
      store_(std::make_shared<StoreCollector>()) {
  registry.AddCollectable(store_);
}

SagaMetrics::~SagaMetrics() { store_->Clear(); }

void SagaMetrics::AddStore(db::PgWorkflowStore* store, absl::Duration cache_for) {
  store_->Set(store, cache_for);
}

void SagaMetrics::WorkflowRegistered(absl::string_view type) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<TypeSeries>& series = types_[type];
  if (series != nullptr) return;
  series = std::make_unique<TypeSeries>();
  series->label = std::string(type);
  const prometheus::Labels labels = {{"workflow", series->label}};
  series->started = &started_.Add(labels);
  series->takeovers = &takeovers_.Add(labels);
  series->duration = &duration_.Add(labels, WorkflowSecondsBuckets());
  for (size_t i = 0; i < std::size(kFinishOutcomes); ++i) {
    series->finished[i] = &finished_.Add(
        {{"workflow", series->label}, {"outcome", saga::WorkflowStatusName(kFinishOutcomes[i])}});
  }
}

SagaMetrics::TypeSeries& SagaMetrics::SeriesOfType(absl::string_view type) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = types_.find(type); it != types_.end()) return *it->second;
    if (auto it = types_.find(kOtherType); it != types_.end()) return *it->second;
  }
  WorkflowRegistered(kOtherType);
  absl::ReaderMutexLock lock(&mu_);
  return *types_.at(kOtherType);
}

SagaMetrics::StepSeries& SagaMetrics::SeriesOfStep(absl::string_view type, absl::string_view step) {
  const std::string& workflow = SeriesOfType(type).label;
  const std::string key = absl::StrCat(workflow, "\n", step);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = steps_.find(key); it != steps_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<StepSeries>& series = steps_[key];
  if (series == nullptr) {
    series = std::make_unique<StepSeries>();
    const prometheus::Labels labels = {{"workflow", workflow}, {"step", std::string(step)}};
    series->duration = &step_duration_.Add(labels, StepSecondsBuckets());
    series->retries = &retries_.Add(labels);
    for (size_t i = 0; i < std::size(kStepOutcomes); ++i) {
      prometheus::Labels with_outcome = labels;
      with_outcome["outcome"] = std::string(kStepOutcomes[i]);
      series->attempts[i] = &step_attempts_.Add(with_outcome);
    }
  }
  return *series;
}

SagaMetrics::CompensationSeries& SagaMetrics::SeriesOfCompensation(absl::string_view type,
                                                                   absl::string_view compensation) {
  const std::string& workflow = SeriesOfType(type).label;
  const std::string key = absl::StrCat(workflow, "\n", compensation);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = compensations_series_.find(key); it != compensations_series_.end()) {
      return *it->second;
    }
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<CompensationSeries>& series = compensations_series_[key];
  if (series == nullptr) {
    series = std::make_unique<CompensationSeries>();
    const std::string name(compensation);
    series->ok =
        &compensations_.Add({{"workflow", workflow}, {"compensation", name}, {"outcome", "ok"}});
    series->failed = &compensations_.Add(
        {{"workflow", workflow}, {"compensation", name}, {"outcome", "failed"}});
  }
  return *series;
}

void SagaMetrics::WorkflowStarted(absl::string_view type) {
  SeriesOfType(type).started->Increment();
}

void SagaMetrics::WorkflowFinished(absl::string_view type, absl::string_view outcome,
                                   absl::Duration duration) {
  TypeSeries& series = SeriesOfType(type);
  for (size_t i = 0; i < std::size(kFinishOutcomes); ++i) {
    if (outcome == saga::WorkflowStatusName(kFinishOutcomes[i])) {
      series.finished[i]->Increment();
      series.duration->Observe(Seconds(duration));
      return;
    }
  }
}

void SagaMetrics::StepAttempt(absl::string_view type, absl::string_view step,
                              absl::string_view outcome, absl::Duration duration) {
  StepSeries& series = SeriesOfStep(type, step);
  for (size_t i = 0; i < std::size(kStepOutcomes); ++i) {
    if (outcome == kStepOutcomes[i]) {
      series.attempts[i]->Increment();
      series.duration->Observe(Seconds(duration));
      if (i == kRetryOutcome) series.retries->Increment();
      return;
    }
  }
}

void SagaMetrics::CompensationAttempt(absl::string_view type, absl::string_view compensation,
                                      bool ok) {
  CompensationSeries& series = SeriesOfCompensation(type, compensation);
  (ok ? series.ok : series.failed)->Increment();
}

void SagaMetrics::LeaseTakeover(absl::string_view type) {
  SeriesOfType(type).takeovers->Increment();
}

}  // namespace order_platform::metrics
