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
#include "db/pg_simulator_counters.h"
#include "services/common/errors.h"
#include "services/common/log.h"
#include "services/inventory/inventory_handler.h"
#include "services/inventory/inventory_service.h"
#include "services/orders/order_handler.h"
#include "services/orders/order_service.h"
#include "services/payments/payment_handler.h"
#include "services/payments/payment_service.h"
#include "services/payments/simulated_gateway.h"
#include "saga/engine.h"
#include "saga/waiters.h"
#include "saga/workflow_handler.h"
#include "saga/workflows/order_workflows.h"
#include "db/pg_workflow_store.h"
#include "services/metrics/business_metrics.h"
#include "services/metrics/db_metrics.h"
#include "services/metrics/grpc_metrics.h"
#include "services/metrics/metrics_registry.h"
#include "services/metrics/saga_metrics.h"

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

std::vector<std::string> SchemasOf(const std::string& service) {
  if (service == "orders") return {"orders", "saga"};
  return {service};
}

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
  explicit Parts(const PlatformConfig& config)
      : workflow_waiters(static_cast<size_t>(config.max_workflow_waits)) {}
  // No scrape may read a pool or service while they are destroyed.
  ~Parts() { metrics.StopServing(); }

  // Metrics outlive everything that reports to them (docs/METRICS.md).
  metrics::MetricsRegistry metrics;
  metrics::GrpcServerMetrics grpc_metrics{metrics};
  metrics::GrpcClientMetrics grpc_client_metrics{metrics};  // Calls to participants.
  metrics::DbMetrics db_metrics{metrics};
  metrics::BusinessMetrics business_metrics{metrics};
  metrics::SagaMetrics saga_metrics{metrics};  // The coordinator's engine and workflow store.

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

  // The saga coordinator (with the orders service): its own pool on the orders database.
  std::unique_ptr<db::ConnectionPool> workflow_pool;
  std::unique_ptr<db::PgWorkflowStore> workflow_store;
  std::unique_ptr<saga::EngineOrderWorkflows> order_workflows;
  saga::WorkflowWaiters workflow_waiters;  // WaitWorkflow calls, woken by the engine.
  std::unique_ptr<saga::WorkflowServiceHandler> workflow_handler;
  std::shared_ptr<grpc::Channel> inventory_channel;
  std::shared_ptr<grpc::Channel> payments_channel;
  std::unique_ptr<inventory::v1::InventoryService::Stub> inventory_stub;
  std::unique_ptr<payments::v1::PaymentService::Stub> payments_stub;
  std::unique_ptr<saga::Engine> engine;

  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
};

Platform::Platform(PlatformConfig config)
    : config_(std::move(config)), parts_(std::make_unique<Parts>(config_)) {}

Platform::~Platform() {
  Shutdown();
  Wait();
}

absl::StatusOr<std::unique_ptr<Platform>> Platform::Create(const PlatformConfig& config) {
  OP_ASSIGN_OR_RETURN(auto urls, ResolveDatabaseUrls(config));
  if (config.pool_size < 1 || config.pool_size > 1000) {
    return InvalidField("pool_size", "must be between 1 and 1000");
  }
  if (config.max_checkpoint_batch < 1) {
    return InvalidField("max_checkpoint_batch", "must be at least 1");
  }
  if (config.max_write_batch < 1) {
    return InvalidField("max_write_batch", "must be at least 1");
  }
  if (config.max_workflow_waits < 1) {
    return InvalidField("max_workflow_waits", "must be at least 1");
  }
  if (config.place_order_deadline < absl::Seconds(1)) {
    return InvalidField("place_order_deadline", "must be at least 1s (inf: none)");
  }
  std::unique_ptr<Platform> platform(new Platform(config));
  Parts& parts = *platform->parts_;

  // A pool's `database` metric label: the services sharing it (a DSN may hold a password).
  std::map<std::string, std::string> database_label;  // By DSN.
  for (const auto& [service, url] : urls) {
    std::string& label = database_label[url];
    absl::StrAppend(&label, label.empty() ? "" : ",", service);
  }

  for (const auto& [service, url] : urls) {
   for (const std::string& schema : SchemasOf(service)) {
    OP_ASSIGN_OR_RETURN(db::MigrationSet set, db::EmbeddedMigrations(schema));
    db::Migrator migrator(url, std::move(set));
    if (config.auto_migrate) {
      OP_ASSIGN_OR_RETURN(int64_t version, migrator.Up());
      Log(LogLevel::kInfo, "schema migrated",
          {{"schema", schema}, {"version", absl::StrCat(version)}});
    }
    OP_RETURN_IF_ERROR(migrator.CheckCurrent());
    parts.db_metrics.SetMigrationVersion(schema, migrator.set().LatestVersion());
   }
    std::unique_ptr<db::ConnectionPool>& pool = parts.pools[url];
    if (pool == nullptr) {
      db::PoolOptions options;
      options.dsn = url;
      options.size = config.pool_size;
      options.checkout_timeout = config.pool_checkout_timeout;
      options.observer = parts.db_metrics.Observer(database_label.at(url));
      pool = std::make_unique<db::ConnectionPool>(options);
      parts.db_metrics.AddPool(database_label.at(url), pool.get());
    }
  }

  auto pool_for = [&](const std::string& service) { return parts.pools.at(urls.at(service)).get(); };
  if (urls.count("orders")) {
    parts.order_repository = std::make_unique<db::PgOrderRepository>(
        pool_for("orders"), db::WriteBatchOptions{.max_batch = config.max_write_batch});
    db::PgOrderRepository* orders = parts.order_repository.get();
    parts.db_metrics.AddPool("order_batches", &orders->batch_pool());
    parts.db_metrics.AddBatches("orders_create", [orders] { return orders->CreateStats(); });
    parts.order_service = std::make_unique<orders::OrderService>(parts.order_repository.get(),
                                                                 &parts.business_metrics);
    parts.order_handler =
        std::make_unique<orders::OrderServiceHandler>(parts.order_service.get());

    // CreateOrder starts each order's PlaceOrder workflow in the order's own statement;
    // cancellations go through the workflows. The coordinator gets its own pool so workflow
    // bookkeeping never waits behind client requests. A worker holds one of its connections only
    // for a short engine write or a local step's transaction (checkpoints have their own
    // connection, participants are called over gRPC), so it need not grow with the workers.
    db::PoolOptions workflow_pool_options;
    workflow_pool_options.dsn = urls.at("orders");
    workflow_pool_options.size = std::clamp(config.coordinator_workers + 4, 4, 32);
    workflow_pool_options.checkout_timeout = config.pool_checkout_timeout;
    workflow_pool_options.application_name = "order_platform_saga";
    workflow_pool_options.observer = parts.db_metrics.Observer("saga");
    parts.workflow_pool = std::make_unique<db::ConnectionPool>(workflow_pool_options);
    parts.db_metrics.AddPool("saga", parts.workflow_pool.get());
    parts.workflow_store = std::make_unique<db::PgWorkflowStore>(
        parts.workflow_pool.get(),
        db::WorkflowStoreOptions{.max_checkpoint_batch = config.max_checkpoint_batch});
    parts.db_metrics.AddPool("saga_checkpoints", &parts.workflow_store->checkpoint_pool());
    Platform* self = platform.get();
    auto poke = [self] { self->PokeCoordinator(); };
    // Each new order's PlaceOrder workflow is inserted leased to this process's coordinator
    // when it has room, and handed to it after the commit: no claim, no queueing delay.
    parts.order_repository->SetWorkflowLauncher(
        [self, deadline = config.place_order_deadline](const orders::Order& order) {
          db::WorkflowStart start = saga::PlaceOrderStart(order, deadline);
          self->OfferLease(&start);
          return start;
        },
        [self](const db::WorkflowStart& start) { self->AdoptWorkflow(start); });
    parts.order_workflows =
        std::make_unique<saga::EngineOrderWorkflows>(parts.workflow_store.get(), poke);
    parts.order_service->SetWorkflows(parts.order_workflows.get(), config.cancel_wait);
    parts.workflow_handler = std::make_unique<saga::WorkflowServiceHandler>(
        parts.workflow_store.get(), poke, &parts.workflow_waiters,
        [self](const std::string& id) { return self->CoordinatorRuns(id); });
  }
  if (urls.count("payments")) {
    // Counts for tok_transient_<N> / tok_void_fails_<N> live in the payments database, so they
    // survive restarts and are shared by replicas.
    parts.gateway = std::make_unique<payments::SimulatedGateway>(
        std::make_unique<db::PgSimulatorCounters>(pool_for("payments")));
    parts.payment_repository = std::make_unique<db::PgPaymentRepository>(
        pool_for("payments"), db::WriteBatchOptions{.max_batch = config.max_write_batch});
    db::PgPaymentRepository* payments = parts.payment_repository.get();
    parts.db_metrics.AddPool("payment_batches", &payments->batch_pool());
    parts.db_metrics.AddBatches("payments", [payments] { return payments->WriteStats(); });
    parts.payment_service = std::make_unique<payments::PaymentService>(
        parts.payment_repository.get(), parts.gateway.get(), &parts.business_metrics);
    parts.payment_handler =
        std::make_unique<payments::PaymentServiceHandler>(parts.payment_service.get());
  }
  if (urls.count("inventory")) {
    parts.inventory_repository = std::make_unique<db::PgInventoryRepository>(
        pool_for("inventory"), db::WriteBatchOptions{.max_batch = config.max_write_batch});
    db::PgInventoryRepository* inventory = parts.inventory_repository.get();
    parts.db_metrics.AddPool("inventory_batches", &inventory->batch_pool());
    parts.db_metrics.AddBatches("inventory_reserve",
                                [inventory] { return inventory->ReserveStats(); });
    parts.db_metrics.AddBatches("inventory_settle",
                                [inventory] { return inventory->SettleStats(); });
    parts.inventory_service = std::make_unique<inventory::InventoryService>(
        parts.inventory_repository.get(), &parts.business_metrics);
    parts.inventory_handler =
        std::make_unique<inventory::InventoryServiceHandler>(parts.inventory_service.get());
  }
  return platform;
}

absl::Status Platform::Start() {
  Parts& parts = *parts_;
  if (!config_.metrics_listen.empty()) {
    OP_RETURN_IF_ERROR(parts.metrics.Serve(config_.metrics_listen));
    Log(LogLevel::kInfo, "metrics endpoint started",
        {{"listen", config_.metrics_listen},
         {"port", absl::StrCat(parts.metrics.port())},
         {"path", "/metrics"}});
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen_address, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(4 << 20);
  // Keep polling threads around instead of creating and destroying one per burst of calls
  // (measured: ~20-30% less server CPU per call at 32 concurrent clients).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              std::max(8, 2 * config_.pool_size));
  // grpc_server_* metrics of every method served, each starting at zero.
  std::vector<std::string> grpc_services = {"grpc.health.v1.Health",
                                            "grpc.reflection.v1alpha.ServerReflection"};
  for (const std::string& service : config_.services) {
    grpc_services.push_back(HealthNames().at(service));
  }
  if (parts.workflow_handler) grpc_services.push_back("order_platform.saga.v1.WorkflowService");
  parts.grpc_metrics.InitializeMethods(grpc_services);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(parts.grpc_metrics.NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (parts.order_handler) builder.RegisterService(parts.order_handler.get());
  if (parts.payment_handler) builder.RegisterService(parts.payment_handler.get());
  if (parts.inventory_handler) builder.RegisterService(parts.inventory_handler.get());
  if (parts.workflow_handler) builder.RegisterService(parts.workflow_handler.get());
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
  if (parts.workflow_handler) {
    health->SetServingStatus("order_platform.saga.v1.WorkflowService", true);
  }
  Log(LogLevel::kInfo, "server started",
      {{"listen", config_.listen_address},
       {"port", absl::StrCat(port_)},
       {"services", absl::StrJoin(config_.services, ",")}});
  if (parts.workflow_store != nullptr && config_.coordinator) OP_RETURN_IF_ERROR(StartCoordinator());
  return absl::OkStatus();
}

absl::Status Platform::StartCoordinator() {
  Parts& parts = *parts_;
  // Participants are always reached over gRPC (instrumented: grpc_client_*): in another process
  // over the network, in this one over gRPC's in-process transport, which goes through the same
  // server path (interceptors, deadlines, status codes) without sockets and HTTP/2 framing.
  auto channel_to = [&](const std::string& target) {
    if (!target.empty()) {
      return metrics::CreateInstrumentedChannel(target, grpc::InsecureChannelCredentials(), {},
                                                &parts.grpc_client_metrics);
    }
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
    factories.push_back(parts.grpc_client_metrics.NewInterceptorFactory());
    return server_->experimental().InProcessChannelWithInterceptors(grpc::ChannelArguments(),
                                                                    std::move(factories));
  };
  parts.inventory_channel = channel_to(config_.inventory_target);
  parts.payments_channel = channel_to(config_.payments_target);
  parts.inventory_stub = inventory::v1::InventoryService::NewStub(parts.inventory_channel);
  parts.payments_stub = payments::v1::PaymentService::NewStub(parts.payments_channel);
  saga::OrderParticipants participants{parts.inventory_stub.get(), parts.payments_stub.get()};
  saga::OrderWorkflowOptions workflow_options;
  workflow_options.events = &parts.business_metrics;  // Orders confirmed and rejected.

  saga::EngineOptions options;
  options.workers = config_.coordinator_workers;
  options.lease = config_.workflow_lease;
  options.heartbeat_interval = config_.workflow_lease / 3;
  options.retention = config_.workflow_retention;
  options.listen_dsn = parts.workflow_pool->options().dsn;
  saga::WorkflowWaiters* waiters = &parts.workflow_waiters;
  options.on_settled = [waiters](absl::string_view id) { waiters->Notify(id); };
  auto engine =
      std::make_unique<saga::Engine>(parts.workflow_store.get(), options, &parts.saga_metrics);
  OP_RETURN_IF_ERROR(engine->Register(saga::PlaceOrderWorkflow(participants, workflow_options)));
  OP_RETURN_IF_ERROR(engine->Register(saga::RefundOrderWorkflow(participants, workflow_options)));
  parts.saga_metrics.AddStore(parts.workflow_store.get());
  OP_RETURN_IF_ERROR(engine->Start());
  {
    absl::MutexLock lock(&parts.shutdown_mu);
    parts.engine = std::move(engine);
  }
  return absl::OkStatus();
}

void Platform::PokeCoordinator() {
  absl::MutexLock lock(&parts_->shutdown_mu);
  if (parts_->engine != nullptr) parts_->engine->Poke();
}

void Platform::OfferLease(db::WorkflowStart* start) {
  absl::MutexLock lock(&parts_->shutdown_mu);
  if (parts_->engine != nullptr) parts_->engine->OfferLease(start);
}

bool Platform::CoordinatorRuns(const std::string& workflow_id) {
  absl::MutexLock lock(&parts_->shutdown_mu);
  return parts_->engine != nullptr && parts_->engine->IsRunning(workflow_id);
}

void Platform::AdoptWorkflow(const db::WorkflowStart& start) {
  absl::MutexLock lock(&parts_->shutdown_mu);
  if (parts_->engine != nullptr) parts_->engine->Adopt(start);
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
  // The coordinator stops first: its steps call this process's services, which must still serve.
  std::unique_ptr<saga::Engine> engine;
  {
    absl::MutexLock lock(&parts_->shutdown_mu);
    engine = std::move(parts_->engine);
  }
  if (engine != nullptr) engine->Stop(config_.shutdown_grace / 2);
  parts_->workflow_waiters.Close();  // Long polls answer now instead of holding the drain.
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoSeconds(config_.shutdown_grace));
  Log(LogLevel::kInfo, "server stopped", {});
}

int Platform::metrics_port() const { return parts_->metrics.port(); }

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
  std::vector<std::pair<std::string, std::string>> targets;  // (schema, url)
  for (const auto& [service, url] : *urls) {
    for (const std::string& schema : SchemasOf(service)) targets.emplace_back(schema, url);
  }
  for (const auto& [schema, url] : targets) {
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
