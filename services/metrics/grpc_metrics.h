// gRPC metrics, recorded by interceptors, with the names, labels and meanings of
// go-grpc-prometheus so existing dashboards and alerts work unchanged:
//
//   grpc_{server,client}_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_{server,client}_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_{server,client}_msg_received_total{grpc_type,grpc_service,grpc_method}
//   grpc_{server,client}_msg_sent_total{grpc_type,grpc_service,grpc_method}
//   grpc_{server,client}_handling_seconds{grpc_type,grpc_service,grpc_method}  (histogram)
//
// grpc_type is unary, client_stream, server_stream or bidi_stream; grpc_service the fully
// qualified service ("order_platform.orders.v1.OrderService"); grpc_method the method name
// ("CreateOrder"); grpc_code the canonical code name (OK, InvalidArgument, Unavailable, ...).
// Label values come from the server's registered methods and the channel's stubs, never from
// request data: the server counts only the methods of the services named to InitializeMethods,
// so a call to a method it does not implement is not counted.
//
// Usage:
//   GrpcServerMetrics server_metrics(registry);
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
//   f.push_back(server_metrics.NewInterceptorFactory());
//   builder.experimental().SetInterceptorCreators(std::move(f));
//
//   GrpcClientMetrics client_metrics(registry);
//   auto channel = CreateInstrumentedChannel(target, creds, {}, &client_metrics);
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/metrics/metrics_registry.h"

namespace order_platform::metrics {

// The canonical name of `code` as go-grpc-prometheus reports it (Go's codes.Code.String()):
// "OK", "Canceled", "InvalidArgument", "DeadlineExceeded", ..., "Unauthenticated".
absl::string_view CanonicalCodeName(grpc::StatusCode code);

// Buckets of grpc_*_handling_seconds: the Go client's defaults (.005 ... 10 s) with three finer
// ones below 5 ms, because most calls of this platform are a single indexed PostgreSQL
// statement and finish in about a millisecond.
const std::vector<double>& HandlingSecondsBuckets();

namespace internal {
class RpcMetrics;
}  // namespace internal

// Server-side RPC metrics. Must outlive every server built with its interceptor factories.
// Thread-safe.
class GrpcServerMetrics {
 public:
  explicit GrpcServerMetrics(MetricsRegistry& registry);
  ~GrpcServerMetrics();

  // Registers every method of `services` (fully qualified names such as
  // "order_platform.orders.v1.OrderService" or "grpc.health.v1.Health", looked up in the
  // generated protobuf descriptor pool; names not found there are skipped) and creates all their
  // series with zero values, grpc_server_handled_total for every code included, as
  // go-grpc-prometheus's InitializeMetrics does, so rates and alerts work before the first call.
  // Only registered methods are counted. Call before the server starts.
  void InitializeMethods(absl::Span<const std::string> services);

  // A factory for ServerBuilder::experimental().SetInterceptorCreators. Each call returns a new
  // factory recording into these metrics.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

 private:
  std::unique_ptr<internal::RpcMetrics> rpc_;
};

// Client-side RPC metrics, for calls this process makes to other services. Must outlive every
// channel built with its interceptor factories. Thread-safe.
class GrpcClientMetrics {
 public:
  explicit GrpcClientMetrics(MetricsRegistry& registry);
  ~GrpcClientMetrics();

  // A factory for grpc::experimental::CreateCustomChannelWithInterceptors.
  std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> NewInterceptorFactory();

 private:
  std::unique_ptr<internal::RpcMetrics> rpc_;
};

// A channel to `target` whose calls are recorded in `metrics` (grpc_client_*). `metrics` must
// outlive the channel.
std::shared_ptr<grpc::Channel> CreateInstrumentedChannel(
    const std::string& target, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& arguments, GrpcClientMetrics* metrics);

}  // namespace order_platform::metrics
