// The OrderRepository contract on PostgreSQL: a fresh, migrated database per test.
#include "db/migrations.h"
#include "db/pg_order_repository.h"
#include "db/pool.h"
#include "tests/contract/order_repository_contract.h"
#include "tests/support/test_postgres.h"

namespace order_platform::orders {
namespace {

struct PgImpl {
  class Env final : public OrderRepositoryEnv {
   public:
    Env()
        : dsn_(testing::CreateTestDatabase("orders_contract")),
          pool_(db::PoolOptions{.dsn = dsn_, .size = 8}),
          repository_(&pool_) {
      absl::StatusOr<int64_t> migrated =
          db::Migrator(dsn_, *db::EmbeddedMigrations("orders")).Up();
      EXPECT_TRUE(migrated.ok()) << migrated.status();
    }
    OrderRepository& repository() override { return repository_; }

   private:
    std::string dsn_;
    db::ConnectionPool pool_;
    db::PgOrderRepository repository_;
  };
  static std::unique_ptr<OrderRepositoryEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, OrderRepositoryContractTest, PgImpl);

}  // namespace
}  // namespace order_platform::orders
