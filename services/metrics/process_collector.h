// Metrics of the running process, read from /proc/self at every scrape, with the names and
// meanings of the Prometheus client libraries' process collector (client_golang, client_java):
//   process_cpu_seconds_total       counter  user + system CPU time
//   process_resident_memory_bytes   gauge    resident set size
//   process_virtual_memory_bytes    gauge    virtual memory size
//   process_open_fds                gauge    open file descriptors
//   process_max_fds                 gauge    soft limit on open file descriptors
//   process_threads                 gauge    OS threads
//   process_start_time_seconds      gauge    start time, seconds since the Unix epoch
// Linux only; a value that cannot be read is left out of the scrape rather than reported wrong.
#pragma once

#include <optional>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace order_platform::metrics {

// Appends a family of one unlabelled sample (a counter or a gauge) to a collector's output;
// nothing when `value` is unknown.
void AddSingleSample(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help,
                     prometheus::MetricType type, std::optional<double> value);

class ProcessCollector final : public prometheus::Collectable {
 public:
  // Thread-safe; each call reads /proc afresh.
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace order_platform::metrics
