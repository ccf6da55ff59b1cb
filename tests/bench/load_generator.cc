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
//
// --rpc=place_order measures whole PlaceOrder sagas instead of calls. It first makes sure the
// catalog SKU-1..SKU-<--skus> exists with plenty of stock (UpsertProduct, idempotent: a second
// run replays the same request ids and writes nothing; --seed_only stops there,
// --seed_products=false skips it). Then each thread loops: CreateOrder (3
// distinct random SKUs of the catalog, tok_approve), then WorkflowService.WaitWorkflow on the
// order's workflow until it is terminal, then the next order. A saga's latency is the
// workflow's recorded end_time (PostgreSQL's clock, the start of the transaction that finished
// it) minus the moment CreateOrder was sent (this host's clock; same clock when the server and
// its database run on this machine). WaitWorkflow is a long poll the server answers when the
// workflow settles (its engine announces the end), so the client notices the end within about
// one call; a wait that times out (30 s, or --saga_timeout) is repeated. Sagas count in the
// window when their end_time falls in it; throughput is COMPLETED sagas per second.
// The key=value line then adds: sagas= (terminal in the window, any status), completed=
// compensated= failed= cancelled= needs_attention=, timeouts= (not terminal within
// --saga_timeout), create_errors=, poll_errors=, polls= (WaitWorkflow calls sent in the window;
// usually 2 autocommit reads in PostgreSQL: a look before waiting, the answer after),
// polls_per_saga=, detect_ms= (mean time from end_time until this client saw it),
// create_p50_ms= (the CreateOrder call alone), all_sagas= and all_polls= (the whole run, warmup and the sagas still running at the end of
// the window included: what database counters over the whole run should be divided by) and
// step_<name>_p50_ms= for the gaps between the workflow's recorded timestamps: queue (start to
// the first step's start), each step (previous end to its end; the first from its own start)
// and finish (last step's end to the workflow's end).
//
// Exit status: 0 on success, 1 when the error ratio exceeds --max_error_ratio (or nothing
// succeeded, or the target is unreachable), 2 on bad flags.
#include <grpcpp/grpcpp.h>
#include <google/protobuf/util/time_util.h>
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "OrderService address, host:port.");
ABSL_FLAG(std::string, rpc, "create_order",
          "What to call: create_order, get_order, mixed, or place_order (whole PlaceOrder sagas: "
          "CreateOrder, then wait for the workflow to end).");
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
ABSL_FLAG(std::string, window_end_file, "",
          "When set, this file is created the moment the measured window ends.");
ABSL_FLAG(int, skus, 1000,
          "For --rpc=place_order: catalog size; each order takes --items distinct SKUs of "
          "SKU-1..SKU-<skus> at random (small values make the product rows hot).");
ABSL_FLAG(bool, seed_products, true,
          "For --rpc=place_order: UpsertProduct the catalog first (idempotent request ids).");
ABSL_FLAG(int64_t, seed_on_hand, 1000000000, "Stock of each seeded product.");
ABSL_FLAG(bool, seed_only, false,
          "For --rpc=place_order: seed the products (--skus, --seed_on_hand) and exit.");
ABSL_FLAG(absl::Duration, saga_timeout, absl::Seconds(60),
          "For --rpc=place_order: give up waiting for a saga after this long (a timeout error).");
ABSL_FLAG(double, max_error_ratio, 0.01,
          "Exit non-zero when errors / (ok + errors) in the measured window exceeds this.");

namespace {

namespace pb = order_platform::orders::v1;
namespace inv = order_platform::inventory::v1;
namespace wf = order_platform::saga::v1;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

enum class Rpc { kCreateOrder, kGetOrder, kMixed, kPlaceOrder };

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
  // With `sku_count` > 0, each order takes `items` distinct SKUs of SKU-1..SKU-<sku_count> at
  // random; otherwise always SKU-1..SKU-<items>.
  RequestFactory(const std::string& run_id, int thread_index, int items, int customers,
                 int sku_count = 0)
      : prefix_(absl::StrCat("bench-", run_id, "-", thread_index, "-")),
        items_(items),
        sku_count_(sku_count),
        customer_(1, std::max(customers, 1)),
        rng_(std::random_device{}()) {}

  pb::CreateOrderRequest Next() {
    pb::CreateOrderRequest request;
    request.set_request_id(absl::StrCat(prefix_, next_sequence_++));
    request.set_customer_id(absl::StrCat("customer-", customer_(rng_)));
    request.set_payment_token("tok_approve");
    std::uniform_int_distribution<int> quantity(1, 5);
    std::uniform_int_distribution<int64_t> price(100, 10000);
    std::vector<int> skus;
    if (sku_count_ > 0) {
      std::uniform_int_distribution<int> sku(1, sku_count_);
      std::set<int> picked;
      while (static_cast<int>(picked.size()) < std::min(items_, sku_count_)) picked.insert(sku(rng_));
      skus.assign(picked.begin(), picked.end());
      std::shuffle(skus.begin(), skus.end(), rng_);
    } else {
      for (int i = 1; i <= items_; ++i) skus.push_back(i);
    }
    for (int n : skus) {
      pb::OrderItem* item = request.add_items();
      item->set_sku(absl::StrCat("SKU-", n));
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
  const int sku_count_;
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

// ---- place_order ---------------------------------------------------------------------------

int64_t UnixNanos(const google::protobuf::Timestamp& t) {
  return t.seconds() * int64_t{1000000000} + t.nanos();
}

int64_t UnixNanos(SysClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool IsTerminal(wf::WorkflowStatus status) {
  switch (status) {
    case wf::WORKFLOW_STATUS_COMPLETED:
    case wf::WORKFLOW_STATUS_COMPENSATED:
    case wf::WORKFLOW_STATUS_CANCELLED:
    case wf::WORKFLOW_STATUS_FAILED:
    case wf::WORKFLOW_STATUS_NEEDS_ATTENTION:
      return true;
    default:
      return false;
  }
}

const char* StatusKey(wf::WorkflowStatus status) {
  switch (status) {
    case wf::WORKFLOW_STATUS_COMPLETED: return "completed";
    case wf::WORKFLOW_STATUS_COMPENSATED: return "compensated";
    case wf::WORKFLOW_STATUS_CANCELLED: return "cancelled";
    case wf::WORKFLOW_STATUS_FAILED: return "failed";
    case wf::WORKFLOW_STATUS_NEEDS_ATTENTION: return "needs_attention";
    default: return "other";
  }
}

// Makes sure SKU-1..SKU-<count> exist with `on_hand` units. The request ids depend only on the
// SKU and the stock, so a later run replays them (no write) instead of resetting the stock.
bool SeedProducts(const std::vector<std::shared_ptr<grpc::Channel>>& channels, int count,
                  int64_t on_hand) {
  constexpr int kThreads = 8;
  std::vector<ThreadStats> stats(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = inv::InventoryService::NewStub(channels[t % channels.size()]);
      for (int i = 1 + t; i <= count; i += kThreads) {
        inv::UpsertProductRequest request;
        request.set_request_id(absl::StrCat("bench-seed-SKU-", i, "-", on_hand));
        request.set_sku(absl::StrCat("SKU-", i));
        request.set_name(absl::StrCat("Bench product ", i));
        request.mutable_unit_price()->set_currency_code("USD");
        request.mutable_unit_price()->set_amount_minor(1000);
        request.set_on_hand(on_hand);
        inv::Product product;
        auto context = NewContext(absl::GetFlag(FLAGS_rpc_timeout));
        grpc::Status status = stub->UpsertProduct(context.get(), request, &product);
        if (!status.ok()) stats[t].RecordError(status);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const ThreadStats& s : stats) {
    if (s.errors > 0) {
      std::fprintf(stderr, "load_generator: seeding products failed: %s\n", s.first_error.c_str());
      return false;
    }
  }
  return true;
}

// One saga as this client saw it. Times are Unix nanoseconds (system clock).
struct SagaRecord {
  int64_t create_begin_ns = 0;  // CreateOrder sent.
  int64_t end_ns = 0;           // The workflow's end_time (update_time if it has none).
  int64_t create_ns = 0;        // The CreateOrder call alone.
  int64_t detect_ns = 0;        // From end_ns until a poll saw it terminal.
  wf::WorkflowStatus status = wf::WORKFLOW_STATUS_UNSPECIFIED;
  // Gaps between the workflow's recorded timestamps (completed sagas only), in step order.
  std::vector<std::pair<std::string, int64_t>> gaps;
};

struct SagaThreadStats : ThreadStats {
  std::vector<SagaRecord> sagas;
  int64_t create_errors = 0;  // CreateOrder calls sent in the window that failed.
  int64_t poll_errors = 0;    // WaitWorkflow calls that failed (the saga kept being waited for).
  int64_t timeouts = 0;       // Sagas created in the window that were not terminal in time.
  int64_t polls = 0;          // WaitWorkflow calls sent in the window.
  int64_t all_polls = 0;      // WaitWorkflow calls sent, whole run (warmup and tail too).
  int64_t all_timeouts = 0;   // Sagas not terminal in time, whole run.
};

// queue (workflow start -> first step's start), then each step (previous end -> its end; the
// first one from its own start), then finish (last step's end -> the workflow's end).
std::vector<std::pair<std::string, int64_t>> Gaps(const wf::Workflow& w) {
  std::vector<std::pair<std::string, int64_t>> gaps;
  if (w.steps_size() == 0 || !w.has_end_time()) return gaps;
  int64_t previous = UnixNanos(w.steps(0).start_time());
  gaps.emplace_back("queue", previous - UnixNanos(w.start_time()));
  for (const wf::Step& step : w.steps()) {
    if (!step.has_end_time()) continue;
    const int64_t end = UnixNanos(step.end_time());
    gaps.emplace_back(step.name(), end - previous);
    previous = end;
  }
  gaps.emplace_back("finish", UnixNanos(w.end_time()) - previous);
  return gaps;
}

void PlaceOrderThread(const std::shared_ptr<grpc::Channel>& channel, const std::string& run_id,
                      int t, Clock::time_point measure_begin, Clock::time_point measure_end,
                      SagaThreadStats& mine) {
  auto orders = pb::OrderService::NewStub(channel);
  auto workflows = wf::WorkflowService::NewStub(channel);
  RequestFactory factory(run_id, t, absl::GetFlag(FLAGS_items), absl::GetFlag(FLAGS_customers),
                         absl::GetFlag(FLAGS_skus));
  const absl::Duration rpc_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  const absl::Duration saga_timeout_flag = absl::GetFlag(FLAGS_saga_timeout);
  const auto saga_timeout = absl::ToChronoNanoseconds(saga_timeout_flag);
  // Each wait ends by itself before the call's deadline (the server answers 50 ms early).
  const google::protobuf::Duration wait_timeout =
      google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(
          std::min({absl::Seconds(30), saga_timeout_flag, rpc_timeout - absl::Milliseconds(100)})));
  mine.sagas.reserve(1 << 14);
  while (Clock::now() < measure_end) {
    const pb::CreateOrderRequest request = factory.Next();
    pb::CreateOrderResponse created;
    auto context = NewContext(rpc_timeout);
    const Clock::time_point c0 = Clock::now();
    const SysClock::time_point s0 = SysClock::now();
    grpc::Status status = orders->CreateOrder(context.get(), request, &created);
    const Clock::time_point c1 = Clock::now();
    const bool created_in_window = c0 >= measure_begin;
    if (!status.ok()) {
      if (created_in_window) {
        ++mine.create_errors;
        mine.RecordError(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    wf::WaitWorkflowRequest wait;
    wait.set_workflow_id(created.order().workflow_id());
    *wait.mutable_timeout() = wait_timeout;
    wf::Workflow workflow;
    bool terminal = false;
    while (true) {
      const Clock::time_point p = Clock::now();
      if (p - c0 > saga_timeout) break;
      if (p >= measure_begin && p < measure_end) ++mine.polls;
      ++mine.all_polls;
      auto wait_context = NewContext(rpc_timeout);
      grpc::Status waited = workflows->WaitWorkflow(wait_context.get(), wait, &workflow);
      if (waited.ok() && IsTerminal(workflow.status())) {
        terminal = true;
        break;
      }
      if (!waited.ok()) {
        ++mine.poll_errors;
        if (mine.first_error.empty()) mine.first_error = waited.error_message();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    const int64_t seen_ns = UnixNanos(SysClock::now());
    if (!terminal) {
      ++mine.all_timeouts;
      if (created_in_window) {
        ++mine.timeouts;
        mine.RecordError(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                      absl::StrCat("saga ", wait.workflow_id(), " not terminal after ",
                                                   absl::FormatDuration(
                                                       absl::GetFlag(FLAGS_saga_timeout)))));
      }
      continue;
    }
    SagaRecord record;
    record.create_begin_ns = UnixNanos(s0);
    record.end_ns = UnixNanos(workflow.has_end_time() ? workflow.end_time() : workflow.update_time());
    record.create_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(c1 - c0).count();
    record.detect_ns = seen_ns - record.end_ns;
    record.status = workflow.status();
    if (record.status == wf::WORKFLOW_STATUS_COMPLETED) record.gaps = Gaps(workflow);
    mine.sagas.push_back(std::move(record));
  }
}

int RunPlaceOrder(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                  int threads_per_channel, int concurrency, const std::string& run_id) {
  const int skus = absl::GetFlag(FLAGS_skus);
  if (skus < 1 || absl::GetFlag(FLAGS_seed_on_hand) < 1 ||
      absl::GetFlag(FLAGS_rpc_timeout) < absl::Milliseconds(200)) {
    std::fprintf(stderr,
                 "load_generator: --skus, --seed_on_hand must be >= 1, --rpc_timeout >= 200ms\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_seed_products) &&
      !SeedProducts(channels, skus, absl::GetFlag(FLAGS_seed_on_hand))) {
    return 1;
  }
  if (absl::GetFlag(FLAGS_seed_only)) {
    std::printf("seeded SKU-1..SKU-%d\n", skus);
    return 0;
  }
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const Clock::time_point start = Clock::now();
  const SysClock::time_point sys_start = SysClock::now();
  const Clock::time_point measure_begin = start + absl::ToChronoNanoseconds(warmup);
  const Clock::time_point measure_end = measure_begin + absl::ToChronoNanoseconds(duration);
  const int64_t window_begin_ns = UnixNanos(sys_start) + absl::ToInt64Nanoseconds(warmup);
  const int64_t window_end_ns = window_begin_ns + absl::ToInt64Nanoseconds(duration);

  std::vector<SagaThreadStats> stats(concurrency);
  std::vector<std::thread> threads;
  threads.reserve(concurrency);
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      PlaceOrderThread(channels[t / threads_per_channel], run_id, t, measure_begin, measure_end,
                       stats[t]);
    });
  }
  std::this_thread::sleep_until(measure_begin);
  const double cpu_begin = ProcessCpuSeconds();
  if (const std::string file = absl::GetFlag(FLAGS_window_file); !file.empty()) {
    std::ofstream(file) << "measuring\n";
  }
  std::this_thread::sleep_until(measure_end);
  const double client_cpu_s = ProcessCpuSeconds() - cpu_begin;
  if (const std::string file = absl::GetFlag(FLAGS_window_end_file); !file.empty()) {
    std::ofstream(file) << "done\n";
  }
  for (std::thread& thread : threads) thread.join();  // In-flight sagas run to their end.

  std::vector<int64_t> latencies, creates, detects;
  std::map<std::string, int64_t> by_status;
  std::vector<std::string> gap_order;
  std::map<std::string, std::vector<int64_t>> gaps;
  int64_t create_errors = 0, poll_errors = 0, timeouts = 0, polls = 0, sagas = 0;
  int64_t all_sagas = 0, all_polls = 0;
  std::map<grpc::StatusCode, int64_t> errors_by_code;
  std::string first_error;
  for (const SagaThreadStats& s : stats) {
    create_errors += s.create_errors;
    poll_errors += s.poll_errors;
    timeouts += s.timeouts;
    polls += s.polls;
    all_polls += s.all_polls;
    all_sagas += static_cast<int64_t>(s.sagas.size()) + s.all_timeouts;
    for (const auto& [code, n] : s.errors_by_code) errors_by_code[code] += n;
    if (first_error.empty()) first_error = s.first_error;
    for (const SagaRecord& r : s.sagas) {
      if (r.end_ns < window_begin_ns || r.end_ns >= window_end_ns) continue;
      ++sagas;
      ++by_status[StatusKey(r.status)];
      detects.push_back(r.detect_ns);
      if (r.status != wf::WORKFLOW_STATUS_COMPLETED) continue;
      latencies.push_back(r.end_ns - r.create_begin_ns);
      creates.push_back(r.create_ns);
      for (const auto& [name, ns] : r.gaps) {
        if (gaps.find(name) == gaps.end()) gap_order.push_back(name);
        gaps[name].push_back(ns);
      }
    }
  }
  std::sort(latencies.begin(), latencies.end());
  std::sort(creates.begin(), creates.end());
  const int64_t completed = static_cast<int64_t>(latencies.size());
  const int64_t errors = (sagas - completed) + create_errors + timeouts;
  const double seconds = absl::ToDoubleSeconds(duration);
  double mean_ms = 0, detect_ms = 0;
  for (int64_t ns : latencies) mean_ms += static_cast<double>(ns) / 1e6;
  if (completed > 0) mean_ms /= static_cast<double>(completed);
  for (int64_t ns : detects) detect_ms += static_cast<double>(ns) / 1e6;
  if (!detects.empty()) detect_ms /= static_cast<double>(detects.size());
  const double throughput = static_cast<double>(completed) / seconds;
  const double p50 = PercentileMs(latencies, 0.50);
  const double p99 = PercentileMs(latencies, 0.99);
  const double p999 = PercentileMs(latencies, 0.999);
  const double max_ms = completed > 0 ? static_cast<double>(latencies.back()) / 1e6 : 0;
  std::string steps;
  for (const std::string& name : gap_order) {
    std::vector<int64_t>& v = gaps[name];
    std::sort(v.begin(), v.end());
    absl::StrAppendFormat(&steps, " step_%s_p50_ms=%.3f", name, PercentileMs(v, 0.5));
  }
  std::printf(
      "rpc=place_order concurrency=%d duration_s=%.1f ok=%lld errors=%lld throughput_rps=%.1f "
      "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f mean_ms=%.3f max_ms=%.3f client_cpu_s=%.3f "
      "offered_rps=0.0 sagas=%lld completed=%lld compensated=%lld failed=%lld cancelled=%lld "
      "needs_attention=%lld timeouts=%lld create_errors=%lld poll_errors=%lld polls=%lld "
      "polls_per_saga=%.2f detect_ms=%.3f create_p50_ms=%.3f all_sagas=%lld all_polls=%lld%s\n",
      concurrency, seconds, static_cast<long long>(completed), static_cast<long long>(errors),
      throughput, p50, p99, p999, mean_ms, max_ms, client_cpu_s, static_cast<long long>(sagas),
      static_cast<long long>(completed), static_cast<long long>(by_status["compensated"]),
      static_cast<long long>(by_status["failed"]), static_cast<long long>(by_status["cancelled"]),
      static_cast<long long>(by_status["needs_attention"]), static_cast<long long>(timeouts),
      static_cast<long long>(create_errors), static_cast<long long>(poll_errors),
      static_cast<long long>(polls),
      sagas > 0 ? static_cast<double>(polls) / static_cast<double>(sagas) : 0.0, detect_ms,
      PercentileMs(creates, 0.5), static_cast<long long>(all_sagas),
      static_cast<long long>(all_polls), steps.c_str());
  std::printf(
      "place_order: %.1f completed sagas/s over %.1f s with %d clients; CreateOrder to end "
      "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms; %lld terminal (%lld completed, %lld "
      "compensated, %lld failed, %lld cancelled, %lld needs attention), %lld timeouts, %lld "
      "CreateOrder errors; %.2f polls/saga\n",
      throughput, seconds, concurrency, p50, p99, p999, static_cast<long long>(sagas),
      static_cast<long long>(completed), static_cast<long long>(by_status["compensated"]),
      static_cast<long long>(by_status["failed"]), static_cast<long long>(by_status["cancelled"]),
      static_cast<long long>(by_status["needs_attention"]), static_cast<long long>(timeouts),
      static_cast<long long>(create_errors),
      sagas > 0 ? static_cast<double>(polls) / static_cast<double>(sagas) : 0.0);
  for (const auto& [code, n] : errors_by_code) {
    std::fprintf(stderr, "load_generator: %lld errors with gRPC code %d\n",
                 static_cast<long long>(n), static_cast<int>(code));
  }
  if (poll_errors > 0) {
    std::fprintf(stderr, "load_generator: %lld WaitWorkflow calls failed\n",
                 static_cast<long long>(poll_errors));
  }
  if (!first_error.empty()) {
    std::fprintf(stderr, "load_generator: first error: %s\n", first_error.c_str());
  }
  const double error_ratio = completed + errors > 0 ? static_cast<double>(errors) /
                                                          static_cast<double>(completed + errors)
                                                    : 1.0;
  if (completed == 0 || error_ratio > absl::GetFlag(FLAGS_max_error_ratio)) {
    std::fprintf(stderr, "load_generator: error ratio %.4f exceeds %.4f\n", error_ratio,
                 absl::GetFlag(FLAGS_max_error_ratio));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load_generator --target=host:port --rpc=create_order|get_order|mixed|place_order "
      "--concurrency=N "
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
  } else if (rpc_name == "place_order") {
    rpc = Rpc::kPlaceOrder;
  } else {
    std::fprintf(stderr,
                 "load_generator: --rpc must be create_order, get_order, mixed or place_order\n");
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
  if (rpc == Rpc::kPlaceOrder) {
    if (absl::GetFlag(FLAGS_rate) > 0) {
      std::fprintf(stderr, "load_generator: --rate is not supported with --rpc=place_order\n");
      return 2;
    }
    return RunPlaceOrder(channels, threads_per_channel, concurrency, run_id);
  }
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
  if (const std::string file = absl::GetFlag(FLAGS_window_end_file); !file.empty()) {
    std::this_thread::sleep_until(measure_end);
    std::ofstream(file) << "done\n";
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
