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
#include "db/pg_workflow_store.h"
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
  // host:port serving Prometheus metrics over HTTP at /metrics (port 0 picks a free port, see
  // Platform::metrics_port()); empty: metrics are recorded but not served.
  std::string metrics_listen = "0.0.0.0:9464";

  // Saga coordinator: runs in a process that runs the orders service (it shares the orders
  // database, where CreateOrder starts each order's workflow).
  bool coordinator = true;
  int coordinator_workers = 64;
  // See db::WorkflowStoreOptions::max_checkpoint_batch.
  int max_checkpoint_batch = 64;
  // See db::WriteBatchOptions::max_batch (the order, payment and inventory repositories).
  int max_write_batch = 64;
  absl::Duration workflow_lease = absl::Seconds(15);
  absl::Duration workflow_retention = absl::Hours(24 * 7);
  // Where the coordinator reaches the participants; empty: this process.
  std::string inventory_target;
  std::string payments_target;
  // PlaceOrder's workflow deadline: an order not confirmed this long after CreateOrder is
  // rejected and its compensations run (infinite: none).
  absl::Duration place_order_deadline = absl::Hours(1);
  // How long CancelOrder waits for the order to become CANCELLED before answering.
  absl::Duration cancel_wait = absl::Seconds(5);
  // WaitWorkflow calls that may wait at once (no thread each, but its call's memory and a re-read
  // a second); more are refused with RESOURCE_EXHAUSTED.
  int max_workflow_waits = 1000;
};

// The schemas a service owns, migrated on its database: orders also holds the saga schema.
std::vector<std::string> SchemasOf(const std::string& service);

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

  // Starts serving gRPC and, unless metrics_listen is empty, metrics. UNAVAILABLE if an address
  // cannot be bound.
  absl::Status Start();
  // The bound port (after Start).
  int port() const { return port_; }
  // The bound metrics port (after Start), 0 when metrics are not served.
  int metrics_port() const;
  // Health goes NOT_SERVING, new calls are refused, in-flight calls get `shutdown_grace` to
  // finish, then the server stops. Idempotent; thread-safe.
  void Shutdown();
  // Blocks until the server has stopped.
  void Wait();
  // Wakes the saga coordinator (if this process runs one) to look for runnable work.
  void PokeCoordinator();
  // Start-and-run for workflows this process starts (saga::Engine::OfferLease / Adopt); without
  // a running coordinator OfferLease leaves the start unowned and AdoptWorkflow just pokes.
  void OfferLease(db::WorkflowStart* start);
  void AdoptWorkflow(const db::WorkflowStart& start);
  // Whether this process's coordinator holds the workflow (saga::Engine::IsRunning).
  bool CoordinatorRuns(const std::string& workflow_id);

 private:
  struct Parts;
  explicit Platform(PlatformConfig config);
  absl::Status StartCoordinator();

  PlatformConfig config_;
  std::unique_ptr<Parts> parts_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Runs `migrate <up|down N|version|force V>` for the selected services' schemas; prints one line
// per schema. Returns the process exit code.
int RunMigrateCommand(const PlatformConfig& config, const std::vector<std::string>& args);

}  // namespace order_platform::server
