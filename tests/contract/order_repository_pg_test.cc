// The OrderRepository contract on PostgreSQL: a fresh, migrated database per test.
#include "db/migrations.h"
#include "db/pg_order_repository.h"
#include "db/pool.h"
#include "db/transaction.h"
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

// TransitionInTransaction (the saga's confirm step): one statement when allowed, the domain's
// answer when not, and nothing written in either refusal.
TEST(PgOrderRepositoryTest, TransitionInTransactionMovesAllowedStatusAndRefusesTheRest) {
  const std::string dsn = testing::CreateTestDatabase("orders_transition");
  ASSERT_TRUE(db::Migrator(dsn, *db::EmbeddedMigrations("orders")).Up().ok());
  db::ConnectionPool pool(db::PoolOptions{.dsn = dsn, .size = 2});
  db::PgOrderRepository repository(&pool);
  const Order order = SampleOrder("alice", "req-transition");
  ASSERT_TRUE(repository.Create(order).ok());
  auto transition = [&](const std::string& id, OrderStatus to) {
    return db::RunTransaction(pool, {}, [&](pqxx::transaction_base& tx) {
      return db::PgOrderRepository::TransitionInTransaction(tx, id, to, "why");
    });
  };

  ASSERT_TRUE(transition(order.id, OrderStatus::kConfirmed).ok());
  absl::StatusOr<Order> confirmed = repository.Get(order.id);
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();
  EXPECT_EQ(confirmed->status, OrderStatus::kConfirmed);
  EXPECT_EQ(confirmed->status_reason, "why");
  EXPECT_EQ(confirmed->version, 2);
  EXPECT_EQ(confirmed->items.size(), order.items.size());

  const absl::Status again = transition(order.id, OrderStatus::kConfirmed);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_NE(again.message().find("is confirmed and cannot become confirmed"), std::string::npos)
      << again;
  EXPECT_EQ(transition(order.id, OrderStatus::kRejected).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(transition("01890000-0000-7000-8000-000000000000", OrderStatus::kConfirmed).code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<Order> unchanged = repository.Get(order.id);
  ASSERT_TRUE(unchanged.ok()) << unchanged.status();
  EXPECT_EQ(unchanged->status, OrderStatus::kConfirmed);
  EXPECT_EQ(unchanged->version, 2);
}

}  // namespace
}  // namespace order_platform::orders
