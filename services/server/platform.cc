#include "services/server/platform.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "db/migrations.h"
#include "db/pg_inventory_repository.h"
#include "db/pg_order_repository.h"
#include "db/pg_payment_repository.h"
#include "services/common/errors.h"
#include "services/common/log.h"
#include "services/inventory/inventory_handler.h"
#include "services/inventory/inventory_service.h"
#include "services/orders/order_handler.h"
#include "services/orders/order_service.h"
#include "services/payments/payment_handler.h"
#include "services/payments/payment_service.h"
#include "services/payments/simulated_gateway.h"

namespace order_platform::server {
namespace {

// gRPC service names reported by the health service, per platform service.
const std::map<std::string, std::string>& HealthNames() {
  static const auto* names = new std::map<std::string, std::string>{
      {"orders", "order_platform.orders.v1.OrderService"},
      {"payments", "order_platform.payments.v1.PaymentService"},
      {"inventory", "order_platform.inventory.v1.InventoryService"},
  };
  return *names;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ResolveDatabaseUrls(
    const PlatformConfig& config) {
  if (config.services.empty()) return InvalidField("services", "at least one service is required");
  std::set<std::string> seen;
  std::map<std::string, std::string> urls;
  for (const std::string& service : config.services) {
    if (std::find(std::begin(kAllServices), std::end(kAllServices), service) ==
        std::end(kAllServices)) {
      return InvalidField("services", absl::StrCat("unknown service \"", service, "\" (known: ",
                                                   absl::StrJoin(kAllServices, ","), ")"));
    }
    if (!seen.insert(service).second) {
      return InvalidField("services", absl::StrCat("\"", service, "\" is listed twice"));
    }
    auto it = config.service_database_urls.find(service);
    std::string url = it != config.service_database_urls.end() && !it->second.empty()
                          ? it->second
                          : config.database_url;
    if (url.empty()) {
      return InvalidField(absl::StrCat(service, "_database_url"),
                          "no database configured: set --database_url or "
                          "ORDER_PLATFORM_DATABASE_URL");
    }
    urls[service] = std::move(url);
  }
  return urls;
}

// Everything the server owns, in construction order (destroyed in reverse).
struct Platform::Parts {
  std::map<std::string, std::unique_ptr<db::ConnectionPool>> pools;  // By DSN.

  std::unique_ptr<db::PgOrderRepository> order_repository;
  std::unique_ptr<orders::OrderService> order_service;
  std::unique_ptr<orders::OrderServiceHandler> order_handler;

  std::unique_ptr<payments::SimulatedGateway> gateway;
  std::unique_ptr<db::PgPaymentRepository> payment_repository;
  std::unique_ptr<payments::PaymentService> payment_service;
  std::unique_ptr<payments::PaymentServiceHandler> payment_handler;

  std::unique_ptr<db::PgInventoryRepository> inventory_repository;
  std::unique_ptr<inventory::InventoryService> inventory_service;
  std::unique_ptr<inventory::InventoryServiceHandler> inventory_handler;

  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
};

Platform::Platform(PlatformConfig config)
    : config_(std::move(config)), parts_(std::make_unique<Parts>()) {}

Platform::~Platform() {
  Shutdown();
  Wait();
}

absl::StatusOr<std::unique_ptr<Platform>> Platform::Create(const PlatformConfig& config) {
  OP_ASSIGN_OR_RETURN(auto urls, ResolveDatabaseUrls(config));
  if (config.pool_size < 1 || config.pool_size > 1000) {
    return InvalidField("pool_size", "must be between 1 and 1000");
  }
  std::unique_ptr<Platform> platform(new Platform(config));
  Parts& parts = *platform->parts_;

  for (const auto& [service, url] : urls) {
    OP_ASSIGN_OR_RETURN(db::MigrationSet set, db::EmbeddedMigrations(service));
    db::Migrator migrator(url, std::move(set));
    if (config.auto_migrate) {
      OP_ASSIGN_OR_RETURN(int64_t version, migrator.Up());
      Log(LogLevel::kInfo, "schema migrated",
          {{"schema", service}, {"version", absl::StrCat(version)}});
    }
    OP_RETURN_IF_ERROR(migrator.CheckCurrent());
    std::unique_ptr<db::ConnectionPool>& pool = parts.pools[url];
    if (pool == nullptr) {
      db::PoolOptions options;
      options.dsn = url;
      options.size = config.pool_size;
      options.checkout_timeout = config.pool_checkout_timeout;
      pool = std::make_unique<db::ConnectionPool>(options);
    }
  }

  auto pool_for = [&](const std::string& service) { return parts.pools.at(urls.at(service)).get(); };
  if (urls.count("orders")) {
    parts.order_repository = std::make_unique<db::PgOrderRepository>(pool_for("orders"));
    parts.order_service = std::make_unique<orders::OrderService>(parts.order_repository.get());
    parts.order_handler =
        std::make_unique<orders::OrderServiceHandler>(parts.order_service.get());
  }
  if (urls.count("payments")) {
    parts.gateway = std::make_unique<payments::SimulatedGateway>();
    parts.payment_repository = std::make_unique<db::PgPaymentRepository>(pool_for("payments"));
    parts.payment_service = std::make_unique<payments::PaymentService>(
        parts.payment_repository.get(), parts.gateway.get());
    parts.payment_handler =
        std::make_unique<payments::PaymentServiceHandler>(parts.payment_service.get());
  }
  if (urls.count("inventory")) {
    parts.inventory_repository =
        std::make_unique<db::PgInventoryRepository>(pool_for("inventory"));
    parts.inventory_service =
        std::make_unique<inventory::InventoryService>(parts.inventory_repository.get());
    parts.inventory_handler =
        std::make_unique<inventory::InventoryServiceHandler>(parts.inventory_service.get());
  }
  return platform;
}

absl::Status Platform::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen_address, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(4 << 20);
  Parts& parts = *parts_;
  if (parts.order_handler) builder.RegisterService(parts.order_handler.get());
  if (parts.payment_handler) builder.RegisterService(parts.payment_handler.get());
  if (parts.inventory_handler) builder.RegisterService(parts.inventory_handler.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.listen_address, " (address in use?)"));
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const std::string& service : config_.services) {
    health->SetServingStatus(HealthNames().at(service), true);
  }
  Log(LogLevel::kInfo, "server started",
      {{"listen", config_.listen_address},
       {"port", absl::StrCat(port_)},
       {"services", absl::StrJoin(config_.services, ",")}});
  return absl::OkStatus();
}

void Platform::Shutdown() {
  {
    absl::MutexLock lock(&parts_->shutdown_mu);
    if (parts_->shut_down || server_ == nullptr) return;
    parts_->shut_down = true;
  }
  Log(LogLevel::kInfo, "shutting down",
      {{"grace", absl::FormatDuration(config_.shutdown_grace)}});
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoSeconds(config_.shutdown_grace));
  Log(LogLevel::kInfo, "server stopped", {});
}

void Platform::Wait() {
  if (server_ != nullptr) server_->Wait();
}

int RunMigrateCommand(const PlatformConfig& config, const std::vector<std::string>& args) {
  auto usage = [] {
    std::fprintf(stderr, "usage: order_platform migrate up | down N | version | force V\n");
    return 2;
  };
  if (args.empty()) return usage();
  const std::string& verb = args[0];
  int64_t number = 0;
  if ((verb == "down" || verb == "force") &&
      (args.size() != 2 || !absl::SimpleAtoi(args[1], &number))) {
    return usage();
  }
  if ((verb == "up" || verb == "version") && args.size() != 1) return usage();
  if (verb != "up" && verb != "down" && verb != "version" && verb != "force") return usage();

  absl::StatusOr<std::map<std::string, std::string>> urls = ResolveDatabaseUrls(config);
  if (!urls.ok()) {
    std::fprintf(stderr, "migrate: %s\n", std::string(urls.status().message()).c_str());
    return 2;
  }
  int exit_code = 0;
  for (const auto& [schema, url] : *urls) {
    absl::StatusOr<db::MigrationSet> set = db::EmbeddedMigrations(schema);
    if (!set.ok()) {
      std::fprintf(stderr, "%s: %s\n", schema.c_str(), std::string(set.status().message()).c_str());
      exit_code = 1;
      continue;
    }
    db::Migrator migrator(url, *std::move(set));
    absl::Status status;
    std::string line;
    if (verb == "version") {
      absl::StatusOr<db::SchemaVersion> v = migrator.Version();
      status = v.status();
      if (v.ok()) {
        line = absl::StrCat("version ", v->version, v->dirty ? " (dirty)" : "", ", binary needs ",
                            migrator.set().LatestVersion());
      }
    } else if (verb == "force") {
      status = migrator.Force(number);
      line = absl::StrCat("forced to version ", number);
    } else {
      absl::StatusOr<int64_t> v =
          verb == "up" ? migrator.Up() : migrator.Down(static_cast<int>(number));
      status = v.status();
      if (v.ok()) line = absl::StrCat("at version ", *v);
    }
    if (status.ok()) {
      std::printf("%s: %s\n", schema.c_str(), line.c_str());
    } else {
      std::fprintf(stderr, "%s: %s\n", schema.c_str(), std::string(status.message()).c_str());
      exit_code = 1;
    }
  }
  return exit_code;
}

}  // namespace order_platform::server
