// order_platform: the server binary. `order_platform [serve] [flags]` runs the selected services;
// `order_platform migrate up | down N | version | force V` manages their schemas.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "services/common/log.h"
#include "services/server/flags.h"
#include "services/server/platform.h"

using order_platform::LogLevel;
namespace server = order_platform::server;

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("order_platform [serve|migrate ...] [--flags]");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  // The system Abseil is built with Mutex deadlock detection on, which records every lock
  // acquisition in a global graph (about 1% of the server's CPU under load). Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  server::ConfigureLogging();
  const server::PlatformConfig config = server::ConfigFromFlags();
  if (!args.empty() && args[0] == "migrate") return server::RunMigrateCommand(config, {args.begin() + 1, args.end()});
  if (!args.empty() && args[0] != "serve") {
    std::fprintf(stderr, "unknown command \"%s\"; try serve or migrate\n", args[0].c_str());
    return 2;
  }

  // Block SIGINT/SIGTERM in every thread; this one waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto platform = server::Platform::Create(config);
  absl::Status started = platform.ok() ? (*platform)->Start() : platform.status();
  if (!started.ok()) {
    order_platform::Log(LogLevel::kError, "cannot start", {{"error", started.message()}});
    return 1;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  order_platform::Log(LogLevel::kInfo, "signal received", {{"signal", strsignal(signal_number)}});
  (*platform)->Shutdown();
  (*platform)->Wait();
  return 0;
}
