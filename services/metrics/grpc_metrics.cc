#include "services/metrics/grpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/create_channel.h>

#include <atomic>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"

namespace order_platform::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

// grpc::StatusCode values are 0 (OK) .. 16 (UNAUTHENTICATED).
constexpr int kCodeCount = 17;

constexpr absl::string_view kCodeNames[kCodeCount] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

int CodeIndex(grpc::StatusCode code) {
  const int index = static_cast<int>(code);
  return index >= 0 && index < kCodeCount ? index : static_cast<int>(grpc::StatusCode::UNKNOWN);
}

// go-grpc-prometheus's grpc_type values; the server and client enums share this order.
absl::string_view RpcTypeName(int type) {
  switch (type) {
    case 0:
      return "unary";
    case 1:
      return "client_stream";
    case 2:
      return "server_stream";
    case 3:
      return "bidi_stream";
  }
  return {};
}

}  // namespace

absl::string_view CanonicalCodeName(grpc::StatusCode code) { return kCodeNames[CodeIndex(code)]; }

const std::vector<double>& HandlingSecondsBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

namespace internal {

// The metric families of one side (server or client) and the series of each method seen.
class RpcMetrics {
 public:
  // The series of one method.
  struct Method {
    prometheus::Labels labels;  // grpc_type, grpc_service, grpc_method.
    prometheus::Counter* started = nullptr;
    prometheus::Counter* msg_received = nullptr;
    prometheus::Counter* msg_sent = nullptr;
    prometheus::Histogram* handling = nullptr;
    // Created on first use of each code (or by InitializeMethods).
    std::array<std::atomic<prometheus::Counter*>, kCodeCount> handled{};
  };

  RpcMetrics(prometheus::Registry& registry, absl::string_view side)
      : server_(side == "server"),
        started_(prometheus::BuildCounter()
                     .Name(absl::StrCat("grpc_", side, "_started_total"))
                     .Help(server_ ? "Total number of RPCs started on the server."
                                   : "Total number of RPCs started on the client.")
                     .Register(registry)),
        handled_(prometheus::BuildCounter()
                     .Name(absl::StrCat("grpc_", side, "_handled_total"))
                     .Help(server_ ? "Total number of RPCs completed on the server, regardless "
                                     "of success or failure."
                                   : "Total number of RPCs completed by the client, regardless "
                                     "of success or failure.")
                     .Register(registry)),
        received_(prometheus::BuildCounter()
                      .Name(absl::StrCat("grpc_", side, "_msg_received_total"))
                      .Help(server_ ? "Total number of RPC stream messages received on the server."
                                    : "Total number of RPC stream messages received by the client.")
                      .Register(registry)),
        sent_(prometheus::BuildCounter()
                  .Name(absl::StrCat("grpc_", side, "_msg_sent_total"))
                  .Help(server_ ? "Total number of gRPC stream messages sent by the server."
                                : "Total number of gRPC stream messages sent by the client.")
                  .Register(registry)),
        handling_(prometheus::BuildHistogram()
                      .Name(absl::StrCat("grpc_", side, "_handling_seconds"))
                      .Help(server_ ? "Histogram of response latency (seconds) of gRPC that had "
                                      "been application-level handled by the server."
                                    : "Histogram of response latency (seconds) of the gRPC until "
                                      "it is finished by the application.")
                      .Register(registry)) {}

  bool server() const { return server_; }

  // The series of `full_method` ("/package.Service/Method") of RPC type `type` (the
  // ServerRpcInfo/ClientRpcInfo Type as int). Created on first use when `create`; nullptr when
  // not found and not created, the name is not of that form or the type not one of the four.
  Method* Find(absl::string_view full_method, int type, bool create) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = methods_.find(full_method); it != methods_.end()) return it->second.get();
    }
    if (!create) return nullptr;
    const absl::string_view type_name = RpcTypeName(type);
    if (type_name.empty() || !absl::ConsumePrefix(&full_method, "/")) return nullptr;
    const size_t slash = full_method.find('/');
    if (slash == absl::string_view::npos || slash == 0 || slash + 1 == full_method.size() ||
        full_method.find('/', slash + 1) != absl::string_view::npos) {
      return nullptr;
    }
    auto method = std::make_unique<Method>();
    method->labels = {{"grpc_type", std::string(type_name)},
                      {"grpc_service", std::string(full_method.substr(0, slash))},
                      {"grpc_method", std::string(full_method.substr(slash + 1))}};
    method->started = &started_.Add(method->labels);
    method->msg_received = &received_.Add(method->labels);
    method->msg_sent = &sent_.Add(method->labels);
    method->handling = &handling_.Add(method->labels, HandlingSecondsBuckets());
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = methods_.try_emplace(absl::StrCat("/", full_method), std::move(method));
    return it->second.get();
  }

  prometheus::Counter& Handled(Method& method, grpc::StatusCode code) {
    std::atomic<prometheus::Counter*>& slot = method.handled[CodeIndex(code)];
    prometheus::Counter* counter = slot.load(std::memory_order_acquire);
    if (counter == nullptr) {
      prometheus::Labels labels = method.labels;
      labels["grpc_code"] = std::string(CanonicalCodeName(code));
      counter = &handled_.Add(labels);  // Idempotent: racing callers get the same counter.
      slot.store(counter, std::memory_order_release);
    }
    return *counter;
  }

 private:
  const bool server_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Histogram>& handling_;

  absl::Mutex mu_;
  // Keyed by "/package.Service/Method".
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

namespace {

// Records one call: started when created, messages as they pass, handled and handling time when
// the status is sent (server) or received (client).
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(internal::RpcMetrics* metrics, internal::RpcMetrics::Method* method)
      : metrics_(*metrics), method_(*method), start_(absl::Now()) {
    method_.started->Increment();
  }

  // A call that ended without a status passing through (not expected) counts as cancelled, so
  // started and handled always agree.
  ~MetricsInterceptor() override { Finish(grpc::StatusCode::CANCELLED); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {  // nullptr: the read found no message.
      method_.msg_received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      method_.msg_sent->Increment();
    }
    if (metrics_.server() &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Finish(methods->GetSendStatus().error_code());
    }
    if (!metrics_.server() &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_STATUS)) {
      Finish(methods->GetRecvStatus()->error_code());
    }
    methods->Proceed();
  }

 private:
  void Finish(grpc::StatusCode code) {
    if (finished_.exchange(true)) return;
    metrics_.Handled(method_, code).Increment();
    method_.handling->Observe(absl::ToDoubleSeconds(absl::Now() - start_));
  }

  internal::RpcMetrics& metrics_;
  internal::RpcMetrics::Method& method_;
  const absl::Time start_;
  std::atomic<bool> finished_{false};
};

class ServerFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ServerFactory(internal::RpcMetrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    // Only methods registered by InitializeMethods: the server hands calls to methods it does
    // not implement to interceptors too, with whatever name the client sent.
    internal::RpcMetrics::Method* method =
        metrics_->Find(info->method(), static_cast<int>(info->type()), /*create=*/false);
    return method == nullptr ? nullptr : new MetricsInterceptor(metrics_, method);
  }

 private:
  internal::RpcMetrics* const metrics_;
};

class ClientFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ClientFactory(internal::RpcMetrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    // Method names come from this process's stubs, so every method is counted.
    internal::RpcMetrics::Method* method =
        metrics_->Find(info->method(), static_cast<int>(info->type()), /*create=*/true);
    return method == nullptr ? nullptr : new MetricsInterceptor(metrics_, method);
  }

 private:
  internal::RpcMetrics* const metrics_;
};

}  // namespace

GrpcServerMetrics::GrpcServerMetrics(MetricsRegistry& registry)
    : rpc_(std::make_unique<internal::RpcMetrics>(registry.registry(), "server")) {}
GrpcServerMetrics::~GrpcServerMetrics() = default;

void GrpcServerMetrics::InitializeMethods(absl::Span<const std::string> services) {
  // grpc.health.v1 is served by gRPC's built-in service, which brings no protobuf descriptor:
  // referencing the generated one links it into the binary.
  grpc::health::v1::HealthCheckRequest::descriptor();
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      // Same numbering as ServerRpcInfo::Type: unary, client, server, bidi streaming.
      const int type = (m->client_streaming() ? 1 : 0) + (m->server_streaming() ? 2 : 0);
      internal::RpcMetrics::Method* method = rpc_->Find(
          absl::StrCat("/", service->full_name(), "/", m->name()), type, /*create=*/true);
      if (method == nullptr) continue;
      for (int code = 0; code < kCodeCount; ++code) {
        rpc_->Handled(*method, static_cast<grpc::StatusCode>(code));
      }
    }
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
GrpcServerMetrics::NewInterceptorFactory() {
  return std::make_unique<ServerFactory>(rpc_.get());
}

GrpcClientMetrics::GrpcClientMetrics(MetricsRegistry& registry)
    : rpc_(std::make_unique<internal::RpcMetrics>(registry.registry(), "client")) {}
GrpcClientMetrics::~GrpcClientMetrics() = default;

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
GrpcClientMetrics::NewInterceptorFactory() {
  return std::make_unique<ClientFactory>(rpc_.get());
}

std::shared_ptr<grpc::Channel> CreateInstrumentedChannel(
    const std::string& target, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& arguments, GrpcClientMetrics* metrics) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(metrics->NewInterceptorFactory());
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, arguments,
                                                                 std::move(factories));
}

}  // namespace order_platform::metrics
