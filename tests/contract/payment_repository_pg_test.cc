// The PaymentRepository contract on PostgreSQL: a fresh, migrated database per test.
#include "db/migrations.h"
#include "db/pg_payment_repository.h"
#include "db/pool.h"
#include "tests/contract/payment_repository_contract.h"
#include "tests/support/test_postgres.h"

namespace order_platform::payments {
namespace {

struct PgImpl {
  class Env final : public PaymentRepositoryEnv {
   public:
    Env()
        : dsn_(testing::CreateTestDatabase("payments_contract")),
          pool_(db::PoolOptions{.dsn = dsn_, .size = 10}),
          repository_(&pool_) {
      absl::StatusOr<int64_t> migrated =
          db::Migrator(dsn_, *db::EmbeddedMigrations("payments")).Up();
      EXPECT_TRUE(migrated.ok()) << migrated.status();
    }
    PaymentRepository& repository() override { return repository_; }

   private:
    std::string dsn_;
    db::ConnectionPool pool_;
    db::PgPaymentRepository repository_;
  };
  static std::unique_ptr<PaymentRepositoryEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, PaymentRepositoryContractTest, PgImpl);

}  // namespace
}  // namespace order_platform::payments
