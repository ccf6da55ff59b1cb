// Test support: the real `order_platform` binary as a child process, for end-to-end, crash and
// chaos tests. The binary's path comes from the test's first argument or ORDER_PLATFORM_BIN.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"

namespace order_platform::testing {

// Path of the server binary under test. Set once by the test's main (SetServerBinary).
const std::string& ServerBinary();
void SetServerBinary(std::string path);
// Parses argv[1] / ORDER_PLATFORM_BIN into SetServerBinary; false (after printing usage) if
// neither names an executable.
bool InitServerBinaryFromArgs(int argc, char** argv);

// A free TCP port on 127.0.0.1 (bound once and released; fine for tests).
int FreePort();

// A child process running the server binary with `args`, its stdout+stderr captured in a file.
// `env` entries ("NAME=value") are added to the inherited environment. Killed (SIGKILL) on
// destruction if still running.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> args, std::vector<std::string> env = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit code (128 + signal when killed).
  int Wait();
  // Waits up to `timeout`; nullopt-like -1 when still running.
  int WaitFor(absl::Duration timeout);
  bool exited() const { return exited_; }
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  std::string log_path_;
};

// Runs the binary to completion: {exit code, output}.
std::pair<int, std::string> RunServerBinary(std::vector<std::string> args);

// A channel to 127.0.0.1:port.
std::shared_ptr<grpc::Channel> LocalChannel(int port);

// Polls grpc.health.v1 until `service` ("" = whole server) is SERVING, up to `timeout`.
bool WaitServing(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "",
                 absl::Duration timeout = absl::Seconds(15));

// A client context with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> Deadline(absl::Duration timeout = absl::Seconds(10));

}  // namespace order_platform::testing
