// SimulatorCounters on PostgreSQL: the shared contract, then the simulated gateway over it as the
// server wires it — counts survive a new gateway (a restarted server) and are shared by gateways
// on one database (several processes), tokens without a count write no row, and a counter store
// that fails (schema missing, database down) makes the gateway call UNAVAILABLE.
#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "absl/strings/str_cat.h"
#include "db/migrations.h"
#include "db/pg_simulator_counters.h"
#include "db/pool.h"
#include "services/payments/simulated_gateway.h"
#include "tests/contract/simulator_counters_contract.h"
#include "tests/support/test_postgres.h"

namespace order_platform::payments {
namespace {

std::string MigratedDatabase(const std::string& name) {
  const std::string dsn = testing::CreateTestDatabase(name);
  absl::StatusOr<int64_t> migrated = db::Migrator(dsn, *db::EmbeddedMigrations("payments")).Up();
  EXPECT_TRUE(migrated.ok()) << migrated.status();
  return dsn;
}

struct PgImpl {
  class Env final : public SimulatorCountersEnv {
   public:
    Env()
        : pool_(db::PoolOptions{.dsn = MigratedDatabase("simulator_counters"), .size = 8}),
          counters_(&pool_) {}
    SimulatorCounters& counters() override { return counters_; }

   private:
    db::ConnectionPool pool_;
    db::PgSimulatorCounters counters_;
  };
  static std::unique_ptr<SimulatorCountersEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, SimulatorCountersContractTest, PgImpl);

// One server process's simulator: its own pool on `dsn`, counting in the database.
class ServerGateway {
 public:
  explicit ServerGateway(const std::string& dsn)
      : pool_(db::PoolOptions{.dsn = dsn, .size = 2, .checkout_timeout = absl::Seconds(2)}),
        gateway_(std::make_unique<db::PgSimulatorCounters>(&pool_)) {}
  SimulatedGateway& operator*() { return gateway_; }
  SimulatedGateway* operator->() { return &gateway_; }

 private:
  db::ConnectionPool pool_;
  SimulatedGateway gateway_;
};

GatewayRequest Request(const std::string& token, const std::string& key) {
  GatewayRequest request;
  request.idempotency_key = key;
  request.payment_token = token;
  request.amount = Money{"EUR", 1000};
  return request;
}

int64_t CounterRows(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx.exec1("SELECT count(*) FROM payments.simulator_counters")[0].as<int64_t>();
}

TEST(SimulatedGatewayOnPostgresTest, CountsSurviveANewGatewayOnTheSameDatabase) {
  const std::string dsn = MigratedDatabase("simulator_restart");
  {
    ServerGateway before_crash(dsn);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(before_crash->Authorize(Request("tok_transient_3", "auth-r")).status().code(),
                absl::StatusCode::kUnavailable);
    }
    EXPECT_EQ(before_crash->Void(Request("tok_void_fails_2", "void-r")).code(),
              absl::StatusCode::kUnavailable);
  }
  // A new process: the count goes on where the first one left it.
  ServerGateway after_restart(dsn);
  absl::StatusOr<AuthorizationResult> third =
      after_restart->Authorize(Request("tok_transient_3", "auth-r"));
  EXPECT_EQ(third.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(third.status().message().find("3 of 3"), absl::string_view::npos) << third.status();
  absl::StatusOr<AuthorizationResult> fourth =
      after_restart->Authorize(Request("tok_transient_3", "auth-r"));
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  EXPECT_TRUE(fourth->approved);
  EXPECT_EQ(after_restart->Void(Request("tok_void_fails_2", "void-r")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(after_restart->Void(Request("tok_void_fails_2", "void-r")).ok());
  EXPECT_EQ(CounterRows(dsn), 2);
}

TEST(SimulatedGatewayOnPostgresTest, GatewaysOnOneDatabaseShareCounts) {
  const std::string dsn = MigratedDatabase("simulator_shared");
  ServerGateway a(dsn);
  ServerGateway b(dsn);
  // Retries of one request spread over two processes fail N times in total, not N per process.
  EXPECT_EQ(a->Capture(Request("tok_transient_4", "cap-s")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b->Capture(Request("tok_transient_4", "cap-s")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a->Capture(Request("tok_transient_4", "cap-s")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b->Capture(Request("tok_transient_4", "cap-s")).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(a->Capture(Request("tok_transient_4", "cap-s")).ok());
  EXPECT_TRUE(b->Capture(Request("tok_transient_4", "cap-s")).ok());
}

TEST(SimulatedGatewayOnPostgresTest, TokensWithoutACountWriteNoRows) {
  const std::string dsn = MigratedDatabase("simulator_no_rows");
  ServerGateway gateway(dsn);
  for (const char* token :
       {"tok_approve", "tok_decline", "tok_insufficient_funds", "tok_refund_fails",
        "tok_void_fails", "tok_transient_0", "tok_void_fails_0", "tok_slow_0", "tok_other"}) {
    SCOPED_TRACE(token);
    for (int i = 0; i < 5; ++i) {
      const std::string key = absl::StrCat(token, "-", i);
      (void)gateway->Authorize(Request(token, key));
      (void)gateway->Capture(Request(token, key));
      (void)gateway->Void(Request(token, key));
      (void)gateway->Refund(Request(token, key));
    }
  }
  EXPECT_TRUE(gateway->Capture(Request("tok_void_fails_1", "vf")).ok());  // Only voids count.
  EXPECT_EQ(CounterRows(dsn), 0);

  EXPECT_EQ(gateway->Authorize(Request("tok_transient_1", "counted")).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(CounterRows(dsn), 1);
}

TEST(SimulatedGatewayOnPostgresTest, UnmigratedSchemaIsUnavailableNotACrash) {
  ServerGateway gateway(testing::CreateTestDatabase("simulator_unmigrated"));
  absl::StatusOr<AuthorizationResult> auth =
      gateway->Authorize(Request("tok_transient_1", "no-table"));
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kUnavailable) << auth.status();
  EXPECT_EQ(gateway->Void(Request("tok_void_fails_1", "no-table")).code(),
            absl::StatusCode::kUnavailable);
  // Tokens without a count never touch the database.
  EXPECT_TRUE(gateway->Authorize(Request("tok_approve", "no-table-approve")).ok());
}

TEST(SimulatedGatewayOnPostgresTest, DatabaseDownIsUnavailableAndCountingResumes) {
  if (!testing::UsingPrivateServer()) {
    GTEST_SKIP() << "needs the private test cluster to stop and start it";
  }
  const std::string dsn = MigratedDatabase("simulator_down");
  ServerGateway gateway(dsn);
  EXPECT_EQ(gateway->Authorize(Request("tok_transient_2", "outage")).status().code(),
            absl::StatusCode::kUnavailable);

  testing::StopPrivateServer(testing::StopMode::kImmediate);
  absl::StatusOr<AuthorizationResult> during =
      gateway->Authorize(Request("tok_transient_2", "outage"));
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable) << during.status();
  EXPECT_NE(during.status().message().find("cannot count"), absl::string_view::npos)
      << during.status();
  EXPECT_TRUE(gateway->Authorize(Request("tok_approve", "outage-approve")).ok());
  testing::StartPrivateServer();

  // The failed increment did not count: the second failure is still owed, then it approves.
  absl::StatusOr<AuthorizationResult> owed =
      gateway->Authorize(Request("tok_transient_2", "outage"));
  EXPECT_EQ(owed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(owed.status().message().find("transient failure 2 of 2"), absl::string_view::npos)
      << owed.status();
  absl::StatusOr<AuthorizationResult> after =
      gateway->Authorize(Request("tok_transient_2", "outage"));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->approved);
}

}  // namespace
}  // namespace order_platform::payments
