#include "tests/support/grpc_test_server.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace order_platform::testing {

GrpcTestServer::GrpcTestServer(const std::vector<grpc::Service*>& services) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  for (grpc::Service* service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    std::fprintf(stderr, "GrpcTestServer: cannot start a server on 127.0.0.1\n");
    std::abort();
  }
}

GrpcTestServer::~GrpcTestServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

std::shared_ptr<grpc::Channel> GrpcTestServer::Channel() const {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                             grpc::InsecureChannelCredentials());
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(int seconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

}  // namespace order_platform::testing
