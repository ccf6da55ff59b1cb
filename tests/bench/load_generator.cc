// load_generator: a gRPC load generator for OrderService.
//
// N threads each own a stub and issue one call at a time (CreateOrder, GetOrder or a mix) for
// --warmup, then for --duration while recording every call's latency; the threads share a few
// channels (one per --threads_per_channel threads), each with distinct channel arguments so each
// is its own HTTP/2 connection. Closed loop by default (each thread calls again as soon as its
// call returns); with --rate, open loop at that many calls per second. For get_order and mixed, a
// pool of orders is created first and reads pick from it at random. Output (stdout):
//
//   rpc=create_order concurrency=32 duration_s=10.0 ok=12345 errors=0 throughput_rps=1234.5
//       p50_ms=1.234 p99_ms=4.567 p999_ms=8.901 mean_ms=1.500 max_ms=12.345
//       client_cpu_s=3.210 offered_rps=0.0                                          (one line)
//   create_order: 1234.5 req/s over 10.0 s with 32 clients; latency p50 ...     (for people)
//
// client_cpu_s is this process's CPU over the measured window; offered_rps is --rate.
// Exit status: 0 on success, 1 when the error ratio exceeds --max_error_ratio (or nothing
// succeeded, or the target is unreachable), 2 on bad flags.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "OrderService address, host:port.");
ABSL_FLAG(std::string, rpc, "create_order", "What to call: create_order, get_order or mixed.");
ABSL_FLAG(int, concurrency, 32, "Client threads, each with its own stub and one call in flight.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured run time.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2), "Unmeasured run time before --duration.");
ABSL_FLAG(int, items, 3, "Items per created order (distinct SKUs).");
ABSL_FLAG(int, customers, 1000, "Distinct customer ids the created orders are spread over.");
ABSL_FLAG(int, threads_per_channel, 8, "Client threads sharing one channel (connection).");
ABSL_FLAG(int, get_pool_size, 2000,
          "Orders created before a get_order or mixed run; reads pick one at random.");
ABSL_FLAG(double, mixed_create_fraction, 0.2,
          "For --rpc=mixed: fraction of calls that are CreateOrder (the rest GetOrder).");
ABSL_FLAG(double, rate, 0,
          "Open loop: total calls per second spread over the threads, latency measured from "
          "each call's due time; 0 = closed loop (each thread calls again as soon as it can).");
ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(10),
          "How long to wait for every channel to connect before giving up.");
ABSL_FLAG(std::string, window_file, "",
          "When set, this file is created the moment the measured window begins (lets a script "
          "sample the server's CPU over the same window).");
ABSL_FLAG(double, max_error_ratio, 0.01,
          "Exit non-zero when errors / (ok + errors) in the measured window exceeds this.");

namespace {

namespace pb = order_platform::orders::v1;
using Clock = std::chrono::steady_clock;

enum class Rpc { kCreateOrder, kGetOrder, kMixed };

// What one thread saw in the measured window. Owned by that thread until it is joined.
struct ThreadStats {
  std::vector<int64_t> latencies_ns;  // Successful calls only.
  int64_t errors = 0;
  std::map<grpc::StatusCode, int64_t> errors_by_code;
  std::string first_error;

  void RecordError(const grpc::Status& status) {
    ++errors;
    ++errors_by_code[status.error_code()];
    if (first_error.empty()) first_error = status.error_message();
  }
};

// Builds CreateOrder requests with run-unique request ids. Not thread-safe: one per thread.
class RequestFactory {
 public:
  RequestFactory(const std::string& run_id, int thread_index, int items, int customers)
      : prefix_(absl::StrCat("bench-", run_id, "-", thread_index, "-")),
        items_(items),
        customer_(1, std::max(customers, 1)),
        rng_(std::random_device{}()) {}

  pb::CreateOrderRequest Next() {
    pb::CreateOrderRequest request;
    request.set_request_id(absl::StrCat(prefix_, next_sequence_++));
    request.set_customer_id(absl::StrCat("customer-", customer_(rng_)));
    request.set_payment_token("tok_approve");
    std::uniform_int_distribution<int> quantity(1, 5);
    std::uniform_int_distribution<int64_t> price(100, 10000);
    for (int i = 1; i <= items_; ++i) {
      pb::OrderItem* item = request.add_items();
      item->set_sku(absl::StrCat("SKU-", i));
      item->set_quantity(quantity(rng_));
      item->mutable_unit_price()->set_currency_code("USD");
      item->mutable_unit_price()->set_amount_minor(price(rng_));
    }
    return request;
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  const std::string prefix_;
  const int items_;
  std::uniform_int_distribution<int> customer_;
  std::mt19937_64 rng_;
  int64_t next_sequence_ = 0;
};

std::string RandomRunId() {
  std::random_device device;
  return absl::StrFormat("%08x%08x", device(), device());
}

std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  return context;
}

// Channels to `target`, each its own connection: channel arguments that differ keep gRPC from
// sharing one subchannel between them.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& target, int count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("order_platform.bench.channel_index", i);
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

bool ConnectAll(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                absl::Duration timeout) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  for (const auto& channel : channels) {
    if (!channel->WaitForConnected(deadline)) return false;
  }
  return true;
}

// Creates `count` orders with `concurrency` threads; returns their ids (empty on total failure).
std::vector<std::string> CreateOrderPool(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels, int threads_per_channel,
    int concurrency, int count, const std::string& run_id) {
  std::vector<std::vector<std::string>> ids(concurrency);
  std::vector<ThreadStats> stats(concurrency);
  std::vector<std::thread> threads;
  threads.reserve(concurrency);
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto stub = pb::OrderService::NewStub(channels[t / threads_per_channel]);
      RequestFactory factory(absl::StrCat(run_id, "pool"), t, absl::GetFlag(FLAGS_items),
                             absl::GetFlag(FLAGS_customers));
      for (int i = t; i < count; i += concurrency) {
        auto context = NewContext(absl::GetFlag(FLAGS_rpc_timeout));
        pb::CreateOrderResponse response;
        grpc::Status status = stub->CreateOrder(context.get(), factory.Next(), &response);
        if (status.ok()) {
          ids[t].push_back(response.order().order_id());
        } else {
          stats[t].RecordError(status);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::string> all;
  for (auto& part : ids) all.insert(all.end(), part.begin(), part.end());
  for (const ThreadStats& s : stats) {
    if (s.errors > 0) {
      std::fprintf(stderr, "load_generator: %lld CreateOrder calls failed while seeding: %s\n",
                   static_cast<long long>(s.errors), s.first_error.c_str());
      break;
    }
  }
  return all;
}

// CPU time (user + system) this process has used so far, in seconds.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Nearest-rank percentile of sorted `values` (q in (0, 1]), in milliseconds.
double PercentileMs(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load_generator --target=host:port --rpc=create_order|get_order|mixed --concurrency=N "
      "--duration=10s --warmup=2s");
  absl::ParseCommandLine(argc, argv);

  const std::string rpc_name = absl::GetFlag(FLAGS_rpc);
  Rpc rpc;
  if (rpc_name == "create_order") {
    rpc = Rpc::kCreateOrder;
  } else if (rpc_name == "get_order") {
    rpc = Rpc::kGetOrder;
  } else if (rpc_name == "mixed") {
    rpc = Rpc::kMixed;
  } else {
    std::fprintf(stderr, "load_generator: --rpc must be create_order, get_order or mixed\n");
    return 2;
  }
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int threads_per_channel = absl::GetFlag(FLAGS_threads_per_channel);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const int items = absl::GetFlag(FLAGS_items);
  if (concurrency < 1 || threads_per_channel < 1 || duration <= absl::ZeroDuration() ||
      warmup < absl::ZeroDuration() || items < 1 || absl::GetFlag(FLAGS_customers) < 1 ||
      absl::GetFlag(FLAGS_rate) < 0) {
    std::fprintf(stderr,
                 "load_generator: --concurrency, --threads_per_channel, --items, --customers "
                 "must be >= 1, --duration > 0, --warmup >= 0, --rate >= 0\n");
    return 2;
  }

  const std::string target = absl::GetFlag(FLAGS_target);
  const int channel_count = (concurrency + threads_per_channel - 1) / threads_per_channel;
  const auto channels = MakeChannels(target, channel_count);
  if (!ConnectAll(channels, absl::GetFlag(FLAGS_connect_timeout))) {
    std::fprintf(stderr, "load_generator: cannot connect to %s\n", target.c_str());
    return 1;
  }

  const std::string run_id = RandomRunId();
  std::vector<std::string> pool;
  if (rpc != Rpc::kCreateOrder) {
    pool = CreateOrderPool(channels, threads_per_channel, concurrency,
                           std::max(absl::GetFlag(FLAGS_get_pool_size), 1), run_id);
    if (pool.empty()) {
      std::fprintf(stderr, "load_generator: could not create any order to read\n");
      return 1;
    }
  }

  const double create_fraction = absl::GetFlag(FLAGS_mixed_create_fraction);
  const double rate = absl::GetFlag(FLAGS_rate);
  const absl::Duration rpc_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_begin = start + absl::ToChronoNanoseconds(warmup);
  const Clock::time_point measure_end = measure_begin + absl::ToChronoNanoseconds(duration);

  std::vector<ThreadStats> stats(concurrency);
  std::vector<std::thread> threads;
  threads.reserve(concurrency);
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto stub = pb::OrderService::NewStub(channels[t / threads_per_channel]);
      RequestFactory factory(run_id, t, items, absl::GetFlag(FLAGS_customers));
      std::uniform_int_distribution<size_t> pick(0, pool.empty() ? 0 : pool.size() - 1);
      std::bernoulli_distribution creates(rpc == Rpc::kCreateOrder ? 1.0
                                          : rpc == Rpc::kGetOrder  ? 0.0
                                                                   : create_fraction);
      ThreadStats& mine = stats[t];
      mine.latencies_ns.reserve(1 << 16);
      pb::CreateOrderResponse create_response;
      pb::GetOrderRequest get_request;
      pb::Order get_response;
      // Open loop (--rate): this thread's calls are due every `interval`, staggered across
      // threads; latency counts from the due time, so a slow call also delays (and is charged
      // to) the ones queued behind it rather than hiding them (no coordinated omission).
      const Clock::duration interval = rate > 0
                                           ? std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(concurrency / rate))
                                           : Clock::duration::zero();
      Clock::time_point due = start + interval * t / concurrency;
      while (true) {
        const bool create = creates(factory.rng());
        pb::CreateOrderRequest create_request;
        if (create) {
          create_request = factory.Next();
        } else {
          get_request.set_order_id(pool[pick(factory.rng())]);
        }
        auto context = NewContext(rpc_timeout);
        Clock::time_point begin;
        if (rate > 0) {
          if (due >= measure_end) break;
          std::this_thread::sleep_until(due);
          begin = due;
          due += interval;
        } else {
          begin = Clock::now();
          if (begin >= measure_end) break;
        }
        grpc::Status status =
            create ? stub->CreateOrder(context.get(), create_request, &create_response)
                   : stub->GetOrder(context.get(), get_request, &get_response);
        const Clock::time_point end = Clock::now();
        if (begin < measure_begin) continue;
        if (status.ok() && !create && get_response.order_id() != get_request.order_id()) {
          status = grpc::Status(grpc::StatusCode::INTERNAL, "GetOrder returned another order");
        }
        if (status.ok()) {
          mine.latencies_ns.push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
        } else {
          mine.RecordError(status);
        }
      }
    });
  }
  // The client's own CPU over the measured window; --window_file marks its start.
  std::this_thread::sleep_until(measure_begin);
  const double cpu_begin = ProcessCpuSeconds();
  if (const std::string window_file = absl::GetFlag(FLAGS_window_file); !window_file.empty()) {
    std::ofstream(window_file) << "measuring\n";
  }
  for (std::thread& thread : threads) thread.join();
  const double client_cpu_s = ProcessCpuSeconds() - cpu_begin;

  std::vector<int64_t> latencies;
  int64_t errors = 0;
  std::map<grpc::StatusCode, int64_t> errors_by_code;
  std::string first_error;
  for (ThreadStats& s : stats) {
    latencies.insert(latencies.end(), s.latencies_ns.begin(), s.latencies_ns.end());
    errors += s.errors;
    for (const auto& [code, n] : s.errors_by_code) errors_by_code[code] += n;
    if (first_error.empty()) first_error = s.first_error;
  }
  std::sort(latencies.begin(), latencies.end());
  const int64_t ok = static_cast<int64_t>(latencies.size());
  const double seconds = absl::ToDoubleSeconds(duration);
  double mean_ms = 0;
  for (int64_t ns : latencies) mean_ms += static_cast<double>(ns) / 1e6;
  if (ok > 0) mean_ms /= static_cast<double>(ok);
  const double throughput = static_cast<double>(ok) / seconds;
  const double p50 = PercentileMs(latencies, 0.50);
  const double p99 = PercentileMs(latencies, 0.99);
  const double p999 = PercentileMs(latencies, 0.999);
  const double max_ms = ok > 0 ? static_cast<double>(latencies.back()) / 1e6 : 0;

  std::printf(
      "rpc=%s concurrency=%d duration_s=%.1f ok=%lld errors=%lld throughput_rps=%.1f "
      "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f mean_ms=%.3f max_ms=%.3f client_cpu_s=%.3f "
      "offered_rps=%.1f\n",
      rpc_name.c_str(), concurrency, seconds, static_cast<long long>(ok),
      static_cast<long long>(errors), throughput, p50, p99, p999, mean_ms, max_ms, client_cpu_s,
      rate);
  std::printf(
      "%s: %.1f req/s over %.1f s with %d clients on %d connections; latency p50 %.2f ms, "
      "p99 %.2f ms, p99.9 %.2f ms; %lld errors\n",
      rpc_name.c_str(), throughput, seconds, concurrency, channel_count, p50, p99, p999,
      static_cast<long long>(errors));
  for (const auto& [code, n] : errors_by_code) {
    std::fprintf(stderr, "load_generator: %lld errors with gRPC code %d\n",
                 static_cast<long long>(n), static_cast<int>(code));
  }
  if (!first_error.empty()) {
    std::fprintf(stderr, "load_generator: first error: %s\n", first_error.c_str());
  }

  const double error_ratio =
      ok + errors > 0 ? static_cast<double>(errors) / static_cast<double>(ok + errors) : 1.0;
  if (ok == 0 || error_ratio > absl::GetFlag(FLAGS_max_error_ratio)) {
    std::fprintf(stderr, "load_generator: error ratio %.4f exceeds %.4f\n", error_ratio,
                 absl::GetFlag(FLAGS_max_error_ratio));
    return 1;
  }
  return 0;
}
