// Test support: runs gRPC services in-process on a loopback port and hands out a real channel,
// so service tests call the handlers through generated stubs over HTTP/2.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace order_platform::testing {

class GrpcTestServer {
 public:
  // Starts a server on 127.0.0.1 (free port) with `services` (not owned; they must outlive it).
  explicit GrpcTestServer(const std::vector<grpc::Service*>& services);
  ~GrpcTestServer();

  // A new channel to the server.
  std::shared_ptr<grpc::Channel> Channel() const;
  int port() const { return port_; }

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A client context with a deadline `seconds` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(int seconds = 10);

}  // namespace order_platform::testing
