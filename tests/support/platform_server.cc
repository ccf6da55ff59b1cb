#include "tests/support/platform_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace order_platform::testing {

std::vector<std::string> CoordinatorArgs(const std::string& dsn, int port) {
  return {"serve",
          "--database_url=" + dsn,
          absl::StrCat("--listen=127.0.0.1:", port),
          "--auto_migrate",
          "--workflow_lease=2s",
          "--shutdown_grace=2s",
          "--log_level=warning",
          "--metrics_listen="};
}

void WaitPortOpen(int port, ServerProcess& process) {
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  while (absl::Now() < give_up && process.WaitFor(absl::ZeroDuration()) == -1) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool open = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (open) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

PlatformServer::PlatformServer(const std::string& dsn, int port_or_zero,
                               std::vector<std::string> env)
    : port(port_or_zero != 0 ? port_or_zero : FreePort()),
      process(CoordinatorArgs(dsn, port), std::move(env)) {
  WaitPortOpen(port, process);
  channel = LocalChannel(port);
  ready = WaitServing(channel);
  orders = orders::v1::OrderService::NewStub(channel);
  inventory = inventory::v1::InventoryService::NewStub(channel);
  payments = payments::v1::PaymentService::NewStub(channel);
  workflows = saga::v1::WorkflowService::NewStub(channel);
}

std::string PlatformServer::LogTail(size_t bytes) const {
  const std::string log = process.Log();
  return log.size() <= bytes ? log : "..." + log.substr(log.size() - bytes);
}

}  // namespace order_platform::testing
