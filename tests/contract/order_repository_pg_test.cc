// The OrderRepository contract on PostgreSQL: a fresh, migrated database per test, with the
// repository's batching on and off; and how the shared Create statement carries several orders.
#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_order_repository.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "tests/contract/order_repository_contract.h"
#include "tests/support/answer_dropping_proxy.h"
#include "tests/support/pg_stats.h"
#include "tests/support/test_postgres.h"

namespace order_platform::orders {
namespace {

template <int kMaxBatch>
struct PgImpl {
  class Env final : public OrderRepositoryEnv {
   public:
    Env()
        : dsn_(testing::CreateTestDatabase("orders_contract")),
          pool_(db::PoolOptions{.dsn = dsn_, .size = 8}),
          repository_(&pool_, {.max_batch = kMaxBatch}) {
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

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, OrderRepositoryContractTest, PgImpl<64>);
INSTANTIATE_TYPED_TEST_SUITE_P(PostgresUnbatched, OrderRepositoryContractTest, PgImpl<1>);

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

// Orders created while a Create statement waits (here on an open transaction's insert of the
// same request id) share the next statement, each with its items and its workflow; a second
// order with a request id already in that statement goes in a later one and gets the first
// order back (created=false).
// Orders created behind a shared Create statement that waits on an open transaction's insert of
// the same request id ("req-held"), with the PlaceOrder launcher set (leased workflows).
// A shared CreateOrder statement that committed but whose answer was lost with its connection.
// The idempotent re-run inserts nothing (the request id is taken), so the order is answered
// alone, found by its request id; it is this call's own order (same id), so the call reports it
// created and hands its workflow to the starter at once, as if the answer had arrived (reported
// as a replay, the workflow would wait for its lease to expire).
TEST(PgOrderRepositoryLostAnswerTest, ACreateWhoseCommittedAnswerWasLostIsStillReportedCreated) {
  const std::string dsn = testing::CreateTestDatabase("orders_lost_answer");
  for (const char* schema : {"orders", "saga"}) {
    ASSERT_TRUE(db::Migrator(dsn, *db::EmbeddedMigrations(schema)).Up().ok()) << schema;
  }
  testing::AnswerDroppingProxy proxy(dsn);
  db::ConnectionPool pool(db::PoolOptions{.dsn = proxy.dsn(), .size = 4});
  db::PgOrderRepository repository(&pool);
  absl::Mutex mu;
  std::vector<std::string> started;
  repository.SetWorkflowLauncher(
      [](const Order& order) {
        return db::WorkflowStart{.type = "PlaceOrder",
                                 .id = order.workflow_id,
                                 .business_key = order.id,
                                 .input = "input",
                                 .owner = "coordinator-x",
                                 .lease = absl::Seconds(30)};
      },
      [&](const db::WorkflowStart& start) {
        absl::MutexLock lock(&mu);
        started.push_back(start.id);
      });
  const Order order = SampleOrder("alice", "req-lost-answer");

  proxy.DropNextAnswerTo("orders.insert_with_workflows");
  const absl::StatusOr<CreateOrderResult> created = repository.Create(order);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(proxy.dropped(), 1);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->order.id, order.id);
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(started, std::vector<std::string>{order.workflow_id});
  }
  pqxx::connection direct(dsn);
  pqxx::nontransaction read(direct);
  EXPECT_EQ(read.exec1("SELECT count(*) FROM orders.orders WHERE request_id = 'req-lost-answer'")[0]
                .as<int>(),
            1);
  EXPECT_EQ(read.exec1("SELECT count(*) FROM orders.order_items WHERE order_id = " +
                       read.quote(order.id) + "::uuid")[0]
                .as<int>(),
            static_cast<int>(order.items.size()));
  EXPECT_EQ(read.exec1("SELECT count(*) FROM saga.workflows WHERE id = " +
                       read.quote(order.workflow_id))[0]
                .as<int>(),
            1);

  // A later CreateOrder with the same request (a new order id) is a replay, and starts nothing.
  const Order replay = SampleOrder("alice", "req-lost-answer");
  ASSERT_NE(replay.id, order.id);
  const absl::StatusOr<CreateOrderResult> again = repository.Create(replay);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->order.id, order.id);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(started.size(), 1u);
}

class PgOrderRepositoryBatchTest : public ::testing::Test {
 protected:
  PgOrderRepositoryBatchTest()
      : dsn_(testing::CreateTestDatabase("orders_batch")),
        pool_(db::PoolOptions{.dsn = dsn_, .size = 8}),
        repository_(&pool_, {.max_batch = 64, .lock_timeout = absl::Minutes(1)}) {
    for (const char* schema : {"orders", "saga"}) {
      EXPECT_TRUE(db::Migrator(dsn_, *db::EmbeddedMigrations(schema)).Up().ok()) << schema;
    }
    repository_.SetWorkflowLauncher(
        [](const Order& order) {
          return db::WorkflowStart{.type = "PlaceOrder",
                                   .id = order.workflow_id,
                                   .business_key = order.id,
                                   .input = "input-" + order.request_id,
                                   .owner = "coordinator-x",
                                   .lease = absl::Seconds(30)};
        },
        [&](const db::WorkflowStart& start) {
          absl::MutexLock lock(&mu_);
          started_.push_back(start.id);
        });
  }

  // Creates orders.at(name) for each of `names`, in that order: the first (request id req-held)
  // waits on the open transaction's insert, the others queue behind it one at a time; then that
  // transaction rolls back. Results by name.
  std::map<std::string, absl::StatusOr<CreateOrderResult>> CreateBehindAHeldInsert(
      const std::map<std::string, Order>& orders, const std::vector<std::string>& names) {
    pqxx::connection locker(dsn_);
    pqxx::work lock(locker);
    lock.exec(
        "INSERT INTO orders.orders (id, customer_id, status, status_reason, currency, total_minor,"
        " workflow_id, payment_token, request_id, request_fingerprint) VALUES"
        " (gen_random_uuid(), 'x', 'pending', '', 'USD', 1, 'wf-x', 'tok', 'req-held', 0)");
    std::map<std::string, absl::StatusOr<CreateOrderResult>> results;
    auto create = [&](const std::string& name) {
      return std::thread([&, name] {
        absl::StatusOr<CreateOrderResult> r = repository_.Create(orders.at(name));
        absl::MutexLock l(&mu_);
        results.emplace(name, std::move(r));
      });
    };
    auto wait_for = [](const std::string& what, const std::function<bool()>& done) {
      for (int i = 0; i < 1000 && !done(); ++i) absl::SleepFor(absl::Milliseconds(10));
      EXPECT_TRUE(done()) << what;
    };
    const int64_t queued_before = repository_.CreateStats().queued;
    std::vector<std::thread> threads;
    threads.push_back(create(names.front()));
    wait_for("the first statement waits on the held insert",
             [&] { return testing::LockWaits(dsn_) == 1; });
    for (size_t i = 1; i < names.size(); ++i) {
      threads.push_back(create(names[i]));
      const auto queued = queued_before + static_cast<int64_t>(i);
      wait_for(names[i], [&] { return repository_.CreateStats().queued == queued; });
    }
    lock.abort();
    for (std::thread& t : threads) t.join();
    return results;
  }

  std::string dsn_;
  db::ConnectionPool pool_;
  db::PgOrderRepository repository_;
  absl::Mutex mu_;
  std::vector<std::string> started_ ABSL_GUARDED_BY(mu_);
};

// Orders created while a Create statement waits share the next statement, each with its items
// and its workflow; one whose request id exists already (d-again), in the middle of it, is
// skipped by it and answered alone; a second order with a request id already in that statement
// (a-again) goes in a later one. Both get the first order back (created=false).
TEST_F(PgOrderRepositoryBatchTest, CreatesQueuedBehindAStatementShareTheNextWithTheirWorkflows) {
  const std::map<std::string, Order> orders = {
      {"held", SampleOrder("alice", "req-held")},  {"a", SampleOrder("bob", "req-a", 2)},
      {"b", SampleOrder("carol", "req-b", 1)},     {"a-again", SampleOrder("bob", "req-a", 3)},
      {"c", SampleOrder("dave", "req-c", 3)},      {"d", SampleOrder("erin", "req-d", 2)},
      {"d-again", SampleOrder("erin", "req-d", 1)}};
  // d exists before the statements under test: d-again, in the middle of the shared one, is
  // skipped by it and answered alone.
  ASSERT_TRUE(repository_.Create(orders.at("d")).ok());
  const db::GroupCommitStats before = repository_.CreateStats();

  const auto results =
      CreateBehindAHeldInsert(orders, {"held", "a", "b", "d-again", "a-again", "c"});

  for (const char* name : {"held", "a", "b", "c"}) {
    ASSERT_TRUE(results.at(name).ok()) << name << ": " << results.at(name).status();
    EXPECT_TRUE(results.at(name)->created) << name;
  }
  for (const auto& [again, first] :
       std::vector<std::pair<std::string, std::string>>{{"a-again", "a"}, {"d-again", "d"}}) {
    ASSERT_TRUE(results.at(again).ok()) << again << ": " << results.at(again).status();
    EXPECT_FALSE(results.at(again)->created) << again;
    EXPECT_EQ(results.at(again)->order.id, orders.at(first).id) << again;
    EXPECT_EQ(results.at(again)->order.items.size(), orders.at(first).items.size()) << again;
  }
  // a, b and c in one statement (one transaction: one now()).
  EXPECT_EQ(results.at("a")->order.create_time, results.at("b")->order.create_time);
  EXPECT_EQ(results.at("a")->order.create_time, results.at("c")->order.create_time);
  // The held one, the four queued behind it together, then a-again.
  const db::GroupCommitStats stats = repository_.CreateStats();
  EXPECT_EQ(stats.batches - before.batches, 3);
  EXPECT_EQ(stats.items - before.items, 6);
  EXPECT_EQ(stats.queued, 0);

  for (const char* name : {"held", "a", "b", "c", "d"}) {
    const Order& order = orders.at(name);
    absl::StatusOr<Order> stored = repository_.Get(order.id);
    ASSERT_TRUE(stored.ok()) << name << ": " << stored.status();
    ASSERT_EQ(stored->items.size(), order.items.size()) << name;
    for (size_t i = 0; i < order.items.size(); ++i) {
      EXPECT_EQ(stored->items[i].sku, order.items[i].sku) << name << " line " << i + 1;
      EXPECT_EQ(stored->items[i].quantity, order.items[i].quantity) << name << " line " << i + 1;
    }
  }
  pqxx::connection conn(dsn_);
  pqxx::nontransaction tx(conn);
  // Every order's lines are numbered 1..n in its own item order.
  for (const pqxx::row& row :
       tx.exec("SELECT o.request_id, array_agg(i.line_no ORDER BY i.line_no)::text,"
               " count(*) FROM orders.orders o JOIN orders.order_items i ON i.order_id = o.id"
               " GROUP BY o.request_id")) {
    const int n = row[2].as<int>();
    std::string expected = "{";
    for (int i = 1; i <= n; ++i) absl::StrAppend(&expected, i > 1 ? "," : "", i);
    EXPECT_EQ(row[1].as<std::string>(), expected + "}") << row[0].as<std::string>();
  }
  const pqxx::result workflows = tx.exec(
      "SELECT w.id, w.business_key, convert_from(w.input, 'UTF8'), w.status, o.request_id,"
      " o.id::text, w.owner, w.lease_epoch, w.lease_expires_at > now() + interval '20 seconds'"
      " FROM saga.workflows w JOIN orders.orders o ON o.workflow_id = w.id ORDER BY o.request_id");
  ASSERT_EQ(workflows.size(), 5u);
  for (const pqxx::row& row : workflows) {
    const std::string request_id = row[4].as<std::string>();
    EXPECT_EQ(row[1].as<std::string>(), row[5].as<std::string>()) << request_id;
    EXPECT_EQ(row[2].as<std::string>(), "input-" + request_id);
    EXPECT_EQ(row[3].as<std::string>(), "running") << request_id;
    EXPECT_EQ(row[6].as<std::string>(), "coordinator-x") << request_id;
    EXPECT_EQ(row[7].as<int>(), 1) << request_id;
    EXPECT_TRUE(row[8].as<bool>()) << request_id;
  }
  absl::MutexLock l(&mu_);
  EXPECT_EQ(started_.size(), 5u);
}

// A shared statement the database refuses for one order's value (a CHECK the domain would never
// let through) fails for all its orders; each is then created alone, so only the bad one fails,
// with the status it would have had on its own, and every other order gets its workflow.
TEST_F(PgOrderRepositoryBatchTest, AStatementRefusedForOneOrderFailsOnlyThatOrder) {
  Order bad = SampleOrder("bob", "req-bad");
  bad.customer_id = std::string(65, 'x');  // CHECK (length(customer_id) BETWEEN 1 AND 64).
  const std::map<std::string, Order> orders = {{"held", SampleOrder("alice", "req-held")},
                                               {"a", SampleOrder("carol", "req-a", 2)},
                                               {"bad", bad},
                                               {"b", SampleOrder("dave", "req-b", 1)}};
  const auto results = CreateBehindAHeldInsert(orders, {"held", "a", "bad", "b"});
  for (const char* name : {"held", "a", "b"}) {
    ASSERT_TRUE(results.at(name).ok()) << name << ": " << results.at(name).status();
    EXPECT_TRUE(results.at(name)->created) << name;
    EXPECT_TRUE(repository_.Get(orders.at(name).id).ok()) << name;
  }
  EXPECT_EQ(results.at("bad").status().code(), absl::StatusCode::kFailedPrecondition)
      << results.at("bad").status();
  EXPECT_EQ(repository_.Get(bad.id).status().code(), absl::StatusCode::kNotFound);
  // a and b were created alone after the shared statement failed: two transactions.
  EXPECT_NE(results.at("a")->order.create_time, results.at("b")->order.create_time);
  const db::GroupCommitStats stats = repository_.CreateStats();
  EXPECT_EQ(stats.batches, 2);  // held; a, bad, b.
  EXPECT_EQ(stats.items, 4);
  pqxx::connection conn(dsn_);
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM saga.workflows")[0].as<int>(), 3);
  absl::MutexLock l(&mu_);
  EXPECT_EQ(started_.size(), 3u);
}

}  // namespace
}  // namespace order_platform::orders
