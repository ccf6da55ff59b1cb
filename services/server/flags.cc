#include "services/server/flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "services/common/log.h"

ABSL_FLAG(std::string, services, "orders,payments,inventory",
          "Comma-separated services to run in this process.");
ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC listen address (host:port).");
ABSL_FLAG(std::string, database_url, "",
          "PostgreSQL DSN for every service (default: $ORDER_PLATFORM_DATABASE_URL).");
ABSL_FLAG(std::string, orders_database_url, "",
          "DSN for the orders service (default: --database_url; env "
          "ORDER_PLATFORM_ORDERS_DATABASE_URL).");
ABSL_FLAG(std::string, payments_database_url, "",
          "DSN for the payments service (default: --database_url; env "
          "ORDER_PLATFORM_PAYMENTS_DATABASE_URL).");
ABSL_FLAG(std::string, inventory_database_url, "",
          "DSN for the inventory service (default: --database_url; env "
          "ORDER_PLATFORM_INVENTORY_DATABASE_URL).");
ABSL_FLAG(int, pool_size, 16, "PostgreSQL connections per database.");
ABSL_FLAG(absl::Duration, pool_checkout_timeout, absl::Seconds(5),
          "How long a request waits for a free database connection.");
ABSL_FLAG(bool, auto_migrate, false,
          "Apply pending schema migrations at start (otherwise refuse to start on an old schema).");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long in-flight calls may run after SIGTERM/SIGINT.");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9464",
          "Prometheus metrics HTTP address (host:port), served at /metrics; empty disables.");
ABSL_FLAG(bool, coordinator, true,
          "Run the saga coordinator in this process (only where the orders service runs).");
ABSL_FLAG(int, coordinator_workers, 64, "Workflows the coordinator runs at once.");
ABSL_FLAG(int, max_checkpoint_batch, 64,
          "Checkpoints of different workflows written together in one statement at most (they "
          "are batched while a previous one is in flight); 1 writes each on its own.");
ABSL_FLAG(int, max_write_batch, 64,
          "Business writes of one kind (CreateOrder's order and workflow; a payment's pending "
          "insert; a capture, void or refund; a stock reservation; its release, commit or "
          "return) made for different requests written together in one "
          "statement at most (they are batched while a previous one is in flight); 1 writes each "
          "on its own.");
ABSL_FLAG(absl::Duration, workflow_lease, absl::Seconds(15),
          "How long a coordinator owns a running workflow without renewing its lease.");
ABSL_FLAG(absl::Duration, workflow_retention, absl::Hours(24 * 7),
          "Finished workflows older than this are deleted (0 keeps them).");
ABSL_FLAG(std::string, inventory_target, "",
          "host:port of the InventoryService the coordinator calls (default: this process).");
ABSL_FLAG(std::string, payments_target, "",
          "host:port of the PaymentService the coordinator calls (default: this process).");
ABSL_FLAG(absl::Duration, place_order_deadline, absl::Hours(1),
          "An order not confirmed this long after CreateOrder is rejected (stock released, "
          "authorization voided); inf for no deadline.");
ABSL_FLAG(absl::Duration, cancel_wait, absl::Seconds(5),
          "How long CancelOrder waits for the order to become CANCELLED.");
ABSL_FLAG(int, max_workflow_waits, 1000,
          "WaitWorkflow calls that may wait at once (no thread each, but its call's memory, about "
          "20 KB, and a re-read a second while it waits); more are refused with "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, log_level, "info", "Minimum log level: debug, info, warning, error.");

namespace order_platform::server {
namespace {

std::string FlagOrEnv(const std::string& flag_value, const char* env) {
  if (!flag_value.empty()) return flag_value;
  const char* value = std::getenv(env);
  return value != nullptr ? value : "";
}

}  // namespace

PlatformConfig ConfigFromFlags() {
  PlatformConfig config;
  config.services = absl::StrSplit(absl::GetFlag(FLAGS_services), ',', absl::SkipWhitespace());
  for (std::string& s : config.services) s = std::string(absl::StripAsciiWhitespace(s));
  config.listen_address = absl::GetFlag(FLAGS_listen);
  config.database_url =
      FlagOrEnv(absl::GetFlag(FLAGS_database_url), "ORDER_PLATFORM_DATABASE_URL");
  config.service_database_urls["orders"] =
      FlagOrEnv(absl::GetFlag(FLAGS_orders_database_url), "ORDER_PLATFORM_ORDERS_DATABASE_URL");
  config.service_database_urls["payments"] = FlagOrEnv(
      absl::GetFlag(FLAGS_payments_database_url), "ORDER_PLATFORM_PAYMENTS_DATABASE_URL");
  config.service_database_urls["inventory"] = FlagOrEnv(
      absl::GetFlag(FLAGS_inventory_database_url), "ORDER_PLATFORM_INVENTORY_DATABASE_URL");
  config.pool_size = absl::GetFlag(FLAGS_pool_size);
  config.pool_checkout_timeout = absl::GetFlag(FLAGS_pool_checkout_timeout);
  config.auto_migrate = absl::GetFlag(FLAGS_auto_migrate);
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.coordinator = absl::GetFlag(FLAGS_coordinator);
  config.coordinator_workers = absl::GetFlag(FLAGS_coordinator_workers);
  config.max_checkpoint_batch = absl::GetFlag(FLAGS_max_checkpoint_batch);
  config.max_write_batch = absl::GetFlag(FLAGS_max_write_batch);
  config.workflow_lease = absl::GetFlag(FLAGS_workflow_lease);
  config.workflow_retention = absl::GetFlag(FLAGS_workflow_retention);
  config.inventory_target = absl::GetFlag(FLAGS_inventory_target);
  config.payments_target = absl::GetFlag(FLAGS_payments_target);
  config.place_order_deadline = absl::GetFlag(FLAGS_place_order_deadline);
  config.cancel_wait = absl::GetFlag(FLAGS_cancel_wait);
  config.max_workflow_waits = absl::GetFlag(FLAGS_max_workflow_waits);
  return config;
}

void ConfigureLogging() {
  const std::string level = absl::AsciiStrToLower(absl::GetFlag(FLAGS_log_level));
  if (level == "debug") SetMinLogLevel(LogLevel::kDebug);
  if (level == "warning") SetMinLogLevel(LogLevel::kWarning);
  if (level == "error") SetMinLogLevel(LogLevel::kError);
}

}  // namespace order_platform::server
