// The InventoryRepository contract on PostgreSQL: a fresh, migrated database per test, with the
// repository's batching on and off. Also checks that the schema itself refuses overselling when a
// writer bypasses the repository, and how batched statements share, order and fail their writes.
#include <gmock/gmock.h>

#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_inventory_repository.h"
#include "db/pool.h"
#include "tests/contract/inventory_repository_contract.h"
#include "tests/support/pg_stats.h"
#include "tests/support/test_postgres.h"

namespace order_platform::inventory {
namespace {

class PgEnv final : public InventoryRepositoryEnv {
 public:
  explicit PgEnv(db::WriteBatchOptions options = {})
      : dsn_(testing::CreateTestDatabase("inventory_contract")),
        pool_(db::PoolOptions{.dsn = dsn_, .size = 16}),
        repository_(&pool_, options) {
    absl::StatusOr<int64_t> migrated =
        db::Migrator(dsn_, *db::EmbeddedMigrations("inventory")).Up();
    EXPECT_TRUE(migrated.ok()) << migrated.status();
  }
  InventoryRepository& repository() override { return repository_; }
  db::PgInventoryRepository& pg() { return repository_; }
  const std::string& dsn() const { return dsn_; }

 private:
  std::string dsn_;
  db::ConnectionPool pool_;
  db::PgInventoryRepository repository_;
};

struct PgImpl {
  static std::unique_ptr<InventoryRepositoryEnv> Make() { return std::make_unique<PgEnv>(); }
};

struct PgUnbatchedImpl {
  static std::unique_ptr<InventoryRepositoryEnv> Make() {
    return std::make_unique<PgEnv>(db::WriteBatchOptions{.max_batch = 1});
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, InventoryRepositoryContractTest, PgImpl);
INSTANTIATE_TYPED_TEST_SUITE_P(PostgresUnbatched, InventoryRepositoryContractTest, PgUnbatchedImpl);

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

// Batched statements. Each test holds one row locked from another connection so that a first
// statement waits on it, queues the writes under test behind it one at a time (so the queue's
// order is theirs), and lets go.
class InventoryBatchTest : public ::testing::Test {
 protected:
  // A first statement must wait on the held lock for as long as the test needs to queue the
  // others behind it, however loaded the machine: the lock timeout is long here.
  explicit InventoryBatchTest(db::WriteBatchOptions options = {.lock_timeout = absl::Minutes(1)})
      : env_(options) {}

  void Upsert(const std::string& sku, int64_t on_hand) {
    ASSERT_TRUE(env_.repository().UpsertProduct(SampleProduct(sku, on_hand), 0).ok());
  }
  Product Read(const std::string& sku) {
    absl::StatusOr<Product> p = env_.repository().GetProduct(sku);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : Product{};
  }

  // Holds `lock_sql` (a SELECT ... FOR UPDATE) in a transaction, runs writes[0] until it waits on
  // that lock, queues the others behind it one at a time (`queued` says how many are queued),
  // then lets go and waits for all.
  void RunBehindAHeldLock(const std::string& lock_sql,
                          const std::vector<std::function<void()>>& writes,
                          const std::function<int64_t()>& queued) {
    pqxx::connection locker(env_.dsn());
    pqxx::work lock(locker);
    lock.exec(lock_sql);
    std::vector<std::thread> threads;
    threads.emplace_back(writes[0]);
    WaitFor("the first statement waits for the lock", [&] { return LockWaits() == 1; });
    for (size_t i = 1; i < writes.size(); ++i) {
      threads.emplace_back(writes[i]);
      WaitFor("the write queues", [&] { return queued() == static_cast<int64_t>(i); });
    }
    lock.abort();
    for (std::thread& t : threads) t.join();
  }

  int LockWaits() { return testing::LockWaits(env_.dsn()); }

  static void WaitFor(const std::string& what, const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(done()) << what;
  }

  PgEnv env_;
};

// Orders competing for one SKU in one statement: its availability is counted cumulatively, so
// the statement never oversells; one it refuses only because an earlier order in it was short
// anyway is then decided alone and reserved; shortages and unknown SKUs get their own errors.
TEST_F(InventoryBatchTest, ReservesQueuedBehindAStatementShareTheNextAndNeverOversell) {
  Upsert("SKU-X", 5);
  Upsert("SKU-Y", 10);
  Upsert("SKU-Z", 10);
  const db::GroupCommitStats before = env_.pg().ReserveStats();
  std::map<std::string, absl::StatusOr<ReserveResult>> results;
  absl::Mutex mu;
  auto reserve = [&](const std::string& order, std::vector<ReservationItem> items) {
    return [&, order, items] {
      absl::StatusOr<ReserveResult> r = env_.repository().Reserve(SampleReservation(order, items));
      absl::MutexLock lock(&mu);
      results.emplace(order, std::move(r));
    };
  };
  RunBehindAHeldLock(
      "SELECT 1 FROM inventory.products WHERE sku = 'SKU-Z' FOR UPDATE",
      {reserve("o-held", {{"SKU-Z", 1}}), reserve("o-a", {{"SKU-Y", 1}, {"SKU-X", 3}}),
       reserve("o-b", {{"SKU-X", 3}}), reserve("o-c", {{"SKU-X", 2}, {"SKU-Y", 2}}),
       reserve("o-unknown", {{"SKU-NOPE", 1}}), reserve("o-d", {{"SKU-Y", 1}})},
      [&] { return env_.pg().ReserveStats().queued; });
  for (const char* order : {"o-held", "o-a", "o-c", "o-d"}) {
    ASSERT_TRUE(results.at(order).ok()) << order << ": " << results.at(order).status();
    EXPECT_TRUE(results.at(order)->created) << order;
    EXPECT_EQ(results.at(order)->reservation.status, ReservationStatus::kHeld);
  }
  EXPECT_EQ(results.at("o-b").status().code(), absl::StatusCode::kFailedPrecondition)
      << results.at("o-b").status();
  EXPECT_THAT(std::string(results.at("o-b").status().message()),
              ::testing::HasSubstr("for sku SKU-X: requested 3"));
  EXPECT_EQ(results.at("o-unknown").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("SKU-X").reserved, 5);
  EXPECT_EQ(Read("SKU-Y").reserved, 4);
  // o-a and o-d were reserved by one statement (one transaction: one now()); o-c, refused there
  // for o-b's demand, alone after.
  EXPECT_EQ(results.at("o-a")->reservation.create_time, results.at("o-d")->reservation.create_time);
  EXPECT_NE(results.at("o-a")->reservation.create_time, results.at("o-c")->reservation.create_time);
  EXPECT_EQ(Read("SKU-Z").reserved, 1);
  // Items keep their order (line numbers), in the shared statement as alone.
  absl::StatusOr<Reservation> a = env_.repository().GetReservation("o-a");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->items.size(), 2u);
  EXPECT_EQ(a->items[0].sku, "SKU-Y");
  EXPECT_EQ(a->items[1].sku, "SKU-X");
  EXPECT_EQ(a->items[1].quantity, 3);
  absl::StatusOr<Reservation> c = env_.repository().GetReservation("o-c");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->items.size(), 2u);
  EXPECT_EQ(c->items[0].sku, "SKU-X");
  EXPECT_EQ(c->items[1].sku, "SKU-Y");
  EXPECT_EQ(c->items[1].quantity, 2);
  // The held one, then the five queued behind it together.
  const db::GroupCommitStats after = env_.pg().ReserveStats();
  EXPECT_EQ(after.batches - before.batches, 2);
  EXPECT_EQ(after.items - before.items, 6);
}

// Commits of reservations sharing products move each product's stock by their total; one not
// held is decided alone (FAILED_PRECONDITION); a second commit of one order goes in a later
// statement and finds it committed.
TEST_F(InventoryBatchTest, CommitsQueuedBehindAStatementShareTheNextAndMoveStockOnce) {
  Upsert("SKU-X", 10);
  Upsert("SKU-Y", 10);
  for (const char* order : {"o-0", "o-1", "o-2", "o-3", "o-5"}) {
    ASSERT_TRUE(
        env_.repository().Reserve(SampleReservation(order, {{"SKU-X", 2}, {"SKU-Y", 1}})).ok());
  }
  ASSERT_TRUE(env_.repository().Release("o-5").ok());
  const db::GroupCommitStats before = env_.pg().SettleStats();
  std::vector<absl::StatusOr<Reservation>> results(6, absl::UnknownError("not run"));
  auto commit = [&](int i, const std::string& order) {
    return [&, i, order] { results[i] = env_.repository().Commit(order); };
  };
  RunBehindAHeldLock("SELECT 1 FROM inventory.reservations WHERE order_id = 'o-0' FOR UPDATE",
                     {commit(0, "o-0"), commit(1, "o-1"), commit(2, "o-2"), commit(3, "o-3"),
                      commit(4, "o-5"), commit(5, "o-1")},
                     [&] { return env_.pg().SettleStats().queued; });
  for (int i : {0, 1, 2, 3, 5}) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->status, ReservationStatus::kCommitted) << i;
    EXPECT_EQ(results[i]->items.size(), 2u) << i;
  }
  EXPECT_EQ(results[4].status().code(), absl::StatusCode::kFailedPrecondition)
      << results[4].status();
  EXPECT_EQ(Read("SKU-X").on_hand, 2);
  EXPECT_EQ(Read("SKU-X").reserved, 0);
  EXPECT_EQ(Read("SKU-Y").on_hand, 6);
  EXPECT_EQ(Read("SKU-Y").reserved, 0);
  // The held one, the four queued behind it (o-1 once), then o-1's second commit.
  const db::GroupCommitStats after = env_.pg().SettleStats();
  EXPECT_EQ(after.batches - before.batches, 3);
  EXPECT_EQ(after.items - before.items, 6);
}

class InventoryBatchLockTimeoutTest : public InventoryBatchTest {
 protected:
  InventoryBatchLockTimeoutTest()
      : InventoryBatchTest({.max_batch = 64, .lock_timeout = absl::Milliseconds(300)}) {}
};

// A statement stuck on a row another transaction holds gives up after the lock timeout: its
// order waits alone for the row, and the orders queued behind it go on after that timeout
// instead of waiting for the row too.
TEST_F(InventoryBatchLockTimeoutTest, AHeldProductStallsTheOthersOnlyForTheLockTimeout) {
  Upsert("SKU-X", 5);
  Upsert("SKU-W", 5);
  pqxx::connection locker(env_.dsn());
  pqxx::work lock(locker);
  lock.exec("SELECT 1 FROM inventory.products WHERE sku = 'SKU-X' FOR UPDATE");
  absl::StatusOr<ReserveResult> stalled = absl::UnknownError("not run");
  std::thread t([&] {
    stalled = env_.repository().Reserve(SampleReservation("o-x", {{"SKU-X", 1}}));
  });
  WaitFor("the first statement waits for the lock", [&] { return LockWaits() == 1; });
  absl::StatusOr<ReserveResult> other = absl::UnknownError("not run");
  absl::Notification other_done;
  std::thread u([&] {
    other = env_.repository().Reserve(SampleReservation("o-w", {{"SKU-W", 1}}));
    other_done.Notify();
  });
  const bool went_on = other_done.WaitForNotificationWithTimeout(absl::Seconds(10));
  EXPECT_EQ(Read("SKU-X").reserved, 0);  // Still held: o-x has not been written.
  lock.abort();
  t.join();
  u.join();
  EXPECT_TRUE(went_on) << "o-w waited for o-x's lock";
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(other->created);
  ASSERT_TRUE(stalled.ok()) << stalled.status();
  EXPECT_TRUE(stalled->created);
  EXPECT_EQ(Read("SKU-X").reserved, 1);
}

}  // namespace
}  // namespace order_platform::inventory
