// Schema migrations against PostgreSQL: every schema goes up, down to zero and up again cleanly;
// concurrent migrators apply each migration once; the version check says what to run.
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "db/migrations.h"
#include "gtest/gtest.h"
#include "tests/support/test_postgres.h"

namespace order_platform::db {
namespace {

int64_t CountTables(const std::string& dsn, const std::string& schema) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx.exec_params1("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 "
                         "AND table_name <> 'schema_migrations'",
                         schema)[0]
      .as<int64_t>();
}

class MigrationsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MigrationsTest, UpDownUpLeavesACompleteSchema) {
  const std::string dsn = testing::CreateTestDatabase("migrations_" + GetParam());
  absl::StatusOr<MigrationSet> set = EmbeddedMigrations(GetParam());
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_GE(set->LatestVersion(), 1);
  Migrator migrator(dsn, *set);

  absl::StatusOr<SchemaVersion> before = migrator.Version();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->version, 0);
  EXPECT_EQ(migrator.CheckCurrent().code(), absl::StatusCode::kFailedPrecondition);

  absl::StatusOr<int64_t> up = migrator.Up();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(*up, set->LatestVersion());
  EXPECT_TRUE(migrator.CheckCurrent().ok());
  const int64_t tables = CountTables(dsn, GetParam());
  EXPECT_GT(tables, 0);

  // Up again is a no-op.
  up = migrator.Up();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(*up, set->LatestVersion());

  absl::StatusOr<int64_t> down = migrator.Down(static_cast<int>(set->migrations.size()));
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(*down, 0);
  EXPECT_EQ(CountTables(dsn, GetParam()), 0) << "down migrations must drop what up created";

  up = migrator.Up();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(CountTables(dsn, GetParam()), tables);
}

TEST_P(MigrationsTest, ConcurrentMigratorsApplyEachMigrationOnce) {
  const std::string dsn = testing::CreateTestDatabase("migrations_race_" + GetParam());
  absl::StatusOr<MigrationSet> set = EmbeddedMigrations(GetParam());
  ASSERT_TRUE(set.ok());
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<int64_t>> results(4, absl::UnknownError("not run"));
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = Migrator(dsn, *set).Up(); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, set->LatestVersion());
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemas, MigrationsTest,
                         ::testing::Values("orders", "payments", "inventory", "saga"));

TEST(MigrationsCheckTest, OlderSchemaIsRefusedWithTheCommandToRun) {
  const std::string dsn = testing::CreateTestDatabase("migrations_old");
  absl::StatusOr<MigrationSet> set = EmbeddedMigrations("orders");
  ASSERT_TRUE(set.ok());
  Migrator migrator(dsn, *set);
  absl::Status status = migrator.CheckCurrent();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("order_platform migrate up"), absl::string_view::npos)
      << status;
}

TEST(MigrationsCheckTest, NewerOrDirtySchemaIsRefused) {
  const std::string dsn = testing::CreateTestDatabase("migrations_newer");
  absl::StatusOr<MigrationSet> set = EmbeddedMigrations("orders");
  ASSERT_TRUE(set.ok());
  Migrator migrator(dsn, *set);
  ASSERT_TRUE(migrator.Up().ok());
  ASSERT_TRUE(migrator.Force(set->LatestVersion() + 5).ok());
  absl::Status status = migrator.CheckCurrent();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("newer"), absl::string_view::npos) << status;

  {
    pqxx::connection conn(dsn);
    pqxx::work tx(conn);
    tx.exec("UPDATE orders.schema_migrations SET dirty = true");
    tx.commit();
  }
  status = migrator.CheckCurrent();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("dirty"), absl::string_view::npos) << status;
  EXPECT_EQ(migrator.Up().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MigrationsCheckTest, EmbeddedSetsAreWellFormed) {
  const std::vector<std::string> schemas = EmbeddedSchemas();
  EXPECT_EQ(schemas, (std::vector<std::string>{"inventory", "orders", "payments", "saga"}));
  EXPECT_EQ(EmbeddedMigrations("nope").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace order_platform::db
