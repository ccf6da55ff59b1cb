// Test support: the real `order_platform` binary serving every service with its saga coordinator,
// on one database, with stubs to each service. For crash and chaos tests, which start, kill and
// restart such processes (see server_process.h for the process itself).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"
#include "tests/support/server_process.h"

namespace order_platform::testing {

// `serve` flags for one process on `dsn` listening on 127.0.0.1:port: migrations applied at
// start, a 2 s workflow lease (a killed process's workflows are taken over quickly), a 2 s
// shutdown grace, warnings only in the log, no metrics endpoint.
std::vector<std::string> CoordinatorArgs(const std::string& dsn, int port);

// Waits until 127.0.0.1:port accepts TCP connections, `process` exits, or 15 s pass. Creating a
// channel only then spares WaitServing gRPC's reconnect backoff (1 s, 1.6 s, 2.6 s, ...) while a
// fresh server is still migrating.
void WaitPortOpen(int port, ServerProcess& process);

// One coordinator process and stubs to it. `ready` tells whether it served within 15 s.
struct PlatformServer {
  // On `port`, or a free one when 0; `env` entries ("NAME=value") are added to the process's.
  explicit PlatformServer(const std::string& dsn, int port = 0, std::vector<std::string> env = {});

  // The last `bytes` of the process's log.
  std::string LogTail(size_t bytes = 4000) const;

  int port;
  ServerProcess process;
  std::shared_ptr<grpc::Channel> channel;
  bool ready = false;
  std::unique_ptr<orders::v1::OrderService::Stub> orders;
  std::unique_ptr<inventory::v1::InventoryService::Stub> inventory;
  std::unique_ptr<payments::v1::PaymentService::Stub> payments;
  std::unique_ptr<saga::v1::WorkflowService::Stub> workflows;
};

}  // namespace order_platform::testing
