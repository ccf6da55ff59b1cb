#include "services/metrics/process_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace order_platform::metrics {
namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The fields of /proc/self/stat after "(comm)", which may itself hold spaces and parentheses.
// Index 0 is field 3 of proc(5) (state).
std::optional<std::vector<std::string>> StatFields() {
  std::optional<std::string> stat = ReadFile("/proc/self/stat");
  if (!stat) return std::nullopt;
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  return std::vector<std::string>(
      absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipWhitespace()));
}

// Field `n` (numbered as in proc(5)) of /proc/self/stat.
std::optional<double> StatField(const std::vector<std::string>& fields, size_t n) {
  double value = 0;
  if (n < 3 || n - 3 >= fields.size() || !absl::SimpleAtod(fields[n - 3], &value)) {
    return std::nullopt;
  }
  return value;
}

// Seconds since the epoch at which the system booted ("btime" in /proc/stat).
std::optional<double> BootTime() {
  std::optional<std::string> stat = ReadFile("/proc/stat");
  if (!stat) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      double value = 0;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  const int own_fd = dirfd(dir);
  const std::string own = std::to_string(own_fd);
  double count = 0;
  while (dirent* entry = readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name == "." || name == ".." || name == own) continue;
    ++count;
  }
  closedir(dir);
  return count;
}

}  // namespace

void AddSingleSample(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help,
                     prometheus::MetricType type, std::optional<double> value) {
  if (!value) return;
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = *value;
  } else {
    metric.gauge.value = *value;
  }
  family.metric.push_back(std::move(metric));
  out.push_back(std::move(family));
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));

  std::optional<double> cpu, threads, start, virtual_bytes, resident_bytes;
  if (std::optional<std::vector<std::string>> fields = StatFields()) {
    const std::optional<double> utime = StatField(*fields, 14);
    const std::optional<double> stime = StatField(*fields, 15);
    if (utime && stime && ticks > 0) cpu = (*utime + *stime) / ticks;
    threads = StatField(*fields, 20);
    const std::optional<double> start_ticks = StatField(*fields, 22);
    const std::optional<double> boot = BootTime();
    if (start_ticks && boot && ticks > 0) start = *boot + *start_ticks / ticks;
    virtual_bytes = StatField(*fields, 23);
    if (std::optional<double> pages = StatField(*fields, 24); pages && page_size > 0) {
      resident_bytes = *pages * page_size;
    }
  }
  std::optional<double> max_fds;
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    max_fds = static_cast<double>(limit.rlim_cur);
  }

  AddSingleSample(out, "process_cpu_seconds_total",
                  "Total user and system CPU time spent in seconds.", MetricType::Counter, cpu);
  AddSingleSample(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                  MetricType::Gauge, resident_bytes);
  AddSingleSample(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  MetricType::Gauge, virtual_bytes);
  AddSingleSample(out, "process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                  OpenFds());
  AddSingleSample(out, "process_max_fds", "Maximum number of open file descriptors.",
                  MetricType::Gauge, max_fds);
  AddSingleSample(out, "process_threads", "Number of OS threads in the process.", MetricType::Gauge,
                  threads);
  AddSingleSample(out, "process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                  start);
  return out;
}

}  // namespace order_platform::metrics
