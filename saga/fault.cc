#include "saga/fault.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"

namespace order_platform::saga {
namespace {

struct FaultSpec {
  absl::Mutex mu;
  std::string point ABSL_GUARDED_BY(mu);
  int target ABSL_GUARDED_BY(mu) = 1;
  int hits ABSL_GUARDED_BY(mu) = 0;
  std::atomic<bool> enabled{false};
};

void Parse(FaultSpec& spec, absl::string_view value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(spec.mu) {
  spec.hits = 0;
  spec.target = 1;
  const size_t colon = value.find(':');
  spec.point = std::string(value.substr(0, colon));
  if (colon != absl::string_view::npos) {
    int n = 1;
    if (absl::SimpleAtoi(value.substr(colon + 1), &n) && n > 0) spec.target = n;
  }
  spec.enabled = !spec.point.empty();
}

FaultSpec& Spec() {
  static FaultSpec* spec = [] {
    auto* s = new FaultSpec;
    if (const char* env = std::getenv("ORDER_PLATFORM_FAULT"); env != nullptr && *env != '\0') {
      absl::MutexLock lock(&s->mu);
      Parse(*s, env);
    }
    return s;
  }();
  return *spec;
}

}  // namespace

void FaultPoint(absl::string_view point) {
  FaultSpec& spec = Spec();
  if (!spec.enabled.load(std::memory_order_relaxed)) return;
  absl::MutexLock lock(&spec.mu);
  if (spec.point != point) return;
  if (++spec.hits < spec.target) return;
  std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"fault injected: aborting\",\"point\":\"%s\"}\n",
               spec.point.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace order_platform::saga
