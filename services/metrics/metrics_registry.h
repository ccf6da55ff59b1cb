// The process's Prometheus metrics: one registry that every metric of the platform is added to,
// the process and build-info metrics every process reports, and the HTTP endpoint that serves
// them at /metrics (prometheus-cpp's Exposer, its own port).
//
// Usage (the composition root, services/server/platform.cc):
//   metrics::MetricsRegistry metrics;                   // process_* and build info included
//   metrics::GrpcServerMetrics grpc_metrics(metrics);   // grpc_server_*
//   OP_RETURN_IF_ERROR(metrics.Serve("0.0.0.0:9464"));
// Names, types and labels of every metric are documented in docs/METRICS.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace order_platform::metrics {

// The version and commit this binary was built from (compile definitions ORDER_PLATFORM_VERSION
// and ORDER_PLATFORM_COMMIT; "unknown" commit when the build did not stamp one).
absl::string_view BuildVersion();
absl::string_view BuildCommit();

// Default --metrics_listen.
inline constexpr absl::string_view kDefaultMetricsListen = "0.0.0.0:9464";

class MetricsRegistry {
 public:
  // An empty registry plus process_* (ProcessCollector) and order_platform_build_info.
  MetricsRegistry();
  // Stops serving first, so no scrape runs while the metrics go away.
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Where metric families are created (prometheus::BuildCounter()...Register(registry())).
  // Thread-safe, as prometheus::Registry is.
  prometheus::Registry& registry() { return *registry_; }

  // Adds a collector that computes its metrics at each scrape (e.g. from /proc or pool stats).
  // Its names must not clash with the registry's. Thread-safe.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);

  // Serves every metric as text at http://<listen>/metrics (`listen` is "host:port"). Call at
  // most once. UNAVAILABLE when the address cannot be bound.
  absl::Status Serve(const std::string& listen);
  // Stops the HTTP endpoint (no-op when not serving). Thread-safe.
  void StopServing();
  // The port being served, 0 when not serving.
  int port() const;

  // Every metric in the Prometheus text exposition format: what a scrape of /metrics returns.
  std::string Scrape() const;

 private:
  // What the exposer serves: the registry plus every added collectable.
  class Root;

  const std::shared_ptr<prometheus::Registry> registry_;
  const std::shared_ptr<Root> root_;

  mutable absl::Mutex mu_;
  std::unique_ptr<prometheus::Exposer> exposer_ ABSL_GUARDED_BY(mu_);
  int port_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace order_platform::metrics
