#include "services/metrics/metrics_registry.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/text_serializer.h"
#include "services/metrics/process_collector.h"

// The release version; a build may override it (CMake: -DORDER_PLATFORM_VERSION=...).
#ifndef ORDER_PLATFORM_VERSION
#define ORDER_PLATFORM_VERSION "0.1.0"
#endif
#ifndef ORDER_PLATFORM_COMMIT
#define ORDER_PLATFORM_COMMIT "unknown"
#endif

namespace order_platform::metrics {

absl::string_view BuildVersion() { return ORDER_PLATFORM_VERSION; }
absl::string_view BuildCommit() { return ORDER_PLATFORM_COMMIT; }

class MetricsRegistry::Root final : public prometheus::Collectable {
 public:
  explicit Root(std::shared_ptr<prometheus::Registry> registry) : registry_(std::move(registry)) {}

  void Add(std::shared_ptr<prometheus::Collectable> collectable) {
    absl::MutexLock lock(&mu_);
    collectables_.push_back(std::move(collectable));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out = registry_->Collect();
    absl::MutexLock lock(&mu_);
    for (const auto& collectable : collectables_) {
      std::vector<prometheus::MetricFamily> more = collectable->Collect();
      out.insert(out.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
    }
    return out;
  }

 private:
  const std::shared_ptr<prometheus::Registry> registry_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_ ABSL_GUARDED_BY(mu_);
};

MetricsRegistry::MetricsRegistry()
    : registry_(std::make_shared<prometheus::Registry>()),
      root_(std::make_shared<Root>(registry_)) {
  root_->Add(std::make_shared<ProcessCollector>());
  prometheus::BuildGauge()
      .Name("order_platform_build_info")
      .Help("Always 1; the labels name the version and commit this binary was built from.")
      .Register(*registry_)
      .Add({{"version", std::string(BuildVersion())}, {"commit", std::string(BuildCommit())}})
      .Set(1);
}

MetricsRegistry::~MetricsRegistry() { StopServing(); }

void MetricsRegistry::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  root_->Add(std::move(collectable));
}

absl::Status MetricsRegistry::Serve(const std::string& listen) {
  absl::MutexLock lock(&mu_);
  if (exposer_ != nullptr) return absl::FailedPreconditionError("metrics are already served");
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(listen);
    exposer->RegisterCollectable(root_);
    const std::vector<int> ports = exposer->GetListeningPorts();
    port_ = ports.empty() ? 0 : ports.front();
    exposer_ = std::move(exposer);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen, " (address in use?): ", e.what()));
  }
  return absl::OkStatus();
}

void MetricsRegistry::StopServing() {
  std::unique_ptr<prometheus::Exposer> exposer;
  {
    absl::MutexLock lock(&mu_);
    exposer = std::move(exposer_);
    port_ = 0;
  }
  exposer.reset();  // Joins the HTTP threads outside the lock.
}

int MetricsRegistry::port() const {
  absl::MutexLock lock(&mu_);
  return port_;
}

std::string MetricsRegistry::Scrape() const {
  return prometheus::TextSerializer().Serialize(root_->Collect());
}

}  // namespace order_platform::metrics
