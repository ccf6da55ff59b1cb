// Composition root: builds the connection pools, repositories, domain services and gRPC handlers
// for the selected services, and runs them in one gRPC server with health checking and
// reflection. All wiring of the platform lives here; main.cc only parses flags.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/pool.h"

namespace order_platform::server {

// The services one process can run.
inline constexpr const char* kAllServices[] = {"orders", "payments", "inventory"};

struct PlatformConfig {
  // Subset of kAllServices to run; each owns the PostgreSQL schema of the same name.
  std::vector<std::string> services = {"orders", "payments", "inventory"};
  // host:port to listen on; port 0 picks a free port (see Platform::port()).
  std::string listen_address = "0.0.0.0:50051";
  // DSN used by every service without its own entry in `service_database_urls`.
  std::string database_url;
  // Per-service DSN overrides, keyed by service name.
  std::map<std::string, std::string> service_database_urls;
  // Connections per distinct database.
  int pool_size = 16;
  absl::Duration pool_checkout_timeout = absl::Seconds(5);
  // Apply pending migrations at start instead of refusing to start on an old schema.
  bool auto_migrate = false;
  // How long in-flight calls may run after shutdown begins.
  absl::Duration shutdown_grace = absl::Seconds(10);
};

// Validates `config` (known, non-duplicate services; a DSN for each) and returns the DSN each
// selected service uses. INVALID_ARGUMENT naming the flag otherwise.
absl::StatusOr<std::map<std::string, std::string>> ResolveDatabaseUrls(
    const PlatformConfig& config);

class Platform {
 public:
  // Connects, checks (or, with auto_migrate, applies) each service's schema version, and builds
  // the services. FAILED_PRECONDITION when a schema is older than this binary needs, saying what
  // to run; UNAVAILABLE when a database cannot be reached.
  static absl::StatusOr<std::unique_ptr<Platform>> Create(const PlatformConfig& config);
  ~Platform();

  // Starts serving. UNAVAILABLE if the address cannot be bound.
  absl::Status Start();
  // The bound port (after Start).
  int port() const { return port_; }
  // Health goes NOT_SERVING, new calls are refused, in-flight calls get `shutdown_grace` to
  // finish, then the server stops. Idempotent; thread-safe.
  void Shutdown();
  // Blocks until the server has stopped.
  void Wait();

 private:
  struct Parts;
  explicit Platform(PlatformConfig config);

  PlatformConfig config_;
  std::unique_ptr<Parts> parts_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Runs `migrate <up|down N|version|force V>` for the selected services' schemas; prints one line
// per schema. Returns the process exit code.
int RunMigrateCommand(const PlatformConfig& config, const std::vector<std::string>& args);

}  // namespace order_platform::server
