// The InventoryRepository contract on PostgreSQL: a fresh, migrated database per test. Also
// checks that the schema itself refuses overselling when a writer bypasses the repository.
#include <pqxx/pqxx>

#include "db/migrations.h"
#include "db/pg_inventory_repository.h"
#include "db/pool.h"
#include "tests/contract/inventory_repository_contract.h"
#include "tests/support/test_postgres.h"

namespace order_platform::inventory {
namespace {

class PgEnv final : public InventoryRepositoryEnv {
 public:
  PgEnv()
      : dsn_(testing::CreateTestDatabase("inventory_contract")),
        pool_(db::PoolOptions{.dsn = dsn_, .size = 16}),
        repository_(&pool_) {
    absl::StatusOr<int64_t> migrated =
        db::Migrator(dsn_, *db::EmbeddedMigrations("inventory")).Up();
    EXPECT_TRUE(migrated.ok()) << migrated.status();
  }
  InventoryRepository& repository() override { return repository_; }
  const std::string& dsn() const { return dsn_; }

 private:
  std::string dsn_;
  db::ConnectionPool pool_;
  db::PgInventoryRepository repository_;
};

struct PgImpl {
  static std::unique_ptr<InventoryRepositoryEnv> Make() { return std::make_unique<PgEnv>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, InventoryRepositoryContractTest, PgImpl);

// The last line of defence: even SQL that skips the repository's checks cannot reserve more
// than is on hand, nor sell stock that is not there.
TEST(InventorySchemaTest, CheckConstraintsRefuseOverselling) {
  PgEnv env;
  ASSERT_TRUE(env.repository().UpsertProduct(SampleProduct("SKU-A", 2), 0).ok());
  pqxx::connection conn(env.dsn());
  pqxx::work tx(conn);
  for (const char* sql :
       {"UPDATE inventory.products SET reserved = 3 WHERE sku = 'SKU-A'",
        "UPDATE inventory.products SET on_hand = -1, reserved = 0 WHERE sku = 'SKU-A'",
        "UPDATE inventory.products SET on_hand = 1, reserved = 2 WHERE sku = 'SKU-A'"}) {
    pqxx::subtransaction sub(tx);
    EXPECT_THROW(sub.exec(sql), pqxx::check_violation) << sql;
  }
}

// The down migration removes every inventory table and the up migration restores a working
// schema.
TEST(InventorySchemaTest, MigrationDownThenUpRestoresWorkingSchema) {
  PgEnv env;
  db::Migrator migrator(env.dsn(), *db::EmbeddedMigrations("inventory"));
  absl::StatusOr<int64_t> down = migrator.Down(1);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(*down, 0);
  {
    pqxx::connection conn(env.dsn());
    pqxx::nontransaction tx(conn);
    EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_tables WHERE schemaname = 'inventory'"
                      " AND tablename <> 'schema_migrations'")[0][0]
                  .as<int>(),
              0);
  }
  absl::StatusOr<int64_t> up = migrator.Up();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_TRUE(env.repository().UpsertProduct(SampleProduct("SKU-A", 2), 0).ok());
}

}  // namespace
}  // namespace order_platform::inventory
