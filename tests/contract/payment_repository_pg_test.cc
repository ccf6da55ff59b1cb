// The PaymentRepository contract on PostgreSQL: a fresh, migrated database per test, with the
// repository's batching on and off; and how the shared statements carry several payments.
#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_payment_repository.h"
#include "db/pool.h"
#include "tests/contract/payment_repository_contract.h"
#include "tests/support/answer_dropping_proxy.h"
#include "tests/support/pg_stats.h"
#include "tests/support/test_postgres.h"

namespace order_platform::payments {
namespace {

template <int kMaxBatch>
struct PgImpl {
  class Env final : public PaymentRepositoryEnv {
   public:
    Env()
        : dsn_(testing::CreateTestDatabase("payments_contract")),
          pool_(db::PoolOptions{.dsn = dsn_, .size = 10}),
          repository_(&pool_, {.max_batch = kMaxBatch}) {
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

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, PaymentRepositoryContractTest, PgImpl<64>);
INSTANTIATE_TYPED_TEST_SUITE_P(PostgresUnbatched, PaymentRepositoryContractTest, PgImpl<1>);

// Writes queued behind a shared statement that waits on a lock held by another connection.
// A shared pending-payment insert that committed but whose answer was lost with its connection:
// the re-run finds the request id taken, and the payment it finds is this call's own (same id),
// so the call reports it created, as if the answer had arrived; the gateway is then called, not
// skipped as for a replay.
TEST(PgPaymentLostAnswerTest, ACreateWhoseCommittedAnswerWasLostIsStillReportedCreated) {
  const std::string dsn = testing::CreateTestDatabase("payments_lost_answer");
  ASSERT_TRUE(db::Migrator(dsn, *db::EmbeddedMigrations("payments")).Up().ok());
  testing::AnswerDroppingProxy proxy(dsn);
  db::ConnectionPool pool(db::PoolOptions{.dsn = proxy.dsn(), .size = 4});
  db::PgPaymentRepository repository(&pool);
  const Payment payment = SamplePayment("auth-lost-answer", "order-lost");

  proxy.DropNextAnswerTo("payments.insert");
  const absl::StatusOr<CreatePaymentResult> created = repository.CreatePending(payment);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(proxy.dropped(), 1);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->payment.id, payment.id);
  pqxx::connection direct(dsn);
  pqxx::nontransaction read(direct);
  EXPECT_EQ(
      read.exec1("SELECT count(*) FROM payments.payments WHERE request_id = 'auth-lost-answer'")[0]
          .as<int>(),
      1);

  // A later authorization with the same request (a new payment id) is a replay.
  const Payment replay = SamplePayment("auth-lost-answer", "order-lost");
  ASSERT_NE(replay.id, payment.id);
  const absl::StatusOr<CreatePaymentResult> again = repository.CreatePending(replay);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->payment.id, payment.id);
}

class PgPaymentBatchTest : public ::testing::Test {
 protected:
  PgPaymentBatchTest()
      : dsn_(testing::CreateTestDatabase("payments_batch")),
        pool_(db::PoolOptions{.dsn = dsn_, .size = 10}),
        repository_(&pool_, {.max_batch = 64, .lock_timeout = absl::Minutes(1)}) {
    EXPECT_TRUE(db::Migrator(dsn_, *db::EmbeddedMigrations("payments")).Up().ok());
  }

  // Runs `lock_sql` in an open transaction, starts writes[0] and waits until it waits on that
  // lock, queues the others one at a time (`queued` counts them), then rolls back and joins.
  void RunBehindAHeldLock(const std::string& lock_sql,
                          const std::vector<std::function<void()>>& writes,
                          const std::function<int64_t()>& queued) {
    pqxx::connection locker(dsn_);
    pqxx::work lock(locker);
    lock.exec(lock_sql);
    std::vector<std::thread> threads;
    threads.emplace_back(writes[0]);
    WaitFor("the first statement waits on the lock", [&] { return testing::LockWaits(dsn_) == 1; });
    for (size_t i = 1; i < writes.size(); ++i) {
      threads.emplace_back(writes[i]);
      WaitFor("the write queues", [&] { return queued() == static_cast<int64_t>(i); });
    }
    lock.abort();
    for (std::thread& t : threads) t.join();
  }

  // CreatePending of payments.at(name) for each of `names`, in that order: the first (request id
  // auth-held) waits on an open transaction's claim of auth-held for a payment of its own, the
  // others queue behind it; then that transaction rolls back. Results by name.
  std::map<std::string, absl::StatusOr<CreatePaymentResult>> CreateBehindAHeldClaim(
      const std::map<std::string, Payment>& payments, const std::vector<std::string>& names) {
    std::map<std::string, absl::StatusOr<CreatePaymentResult>> results;
    std::vector<std::function<void()>> writes;
    for (const std::string& name : names) {
      writes.push_back([&, name] {
        absl::StatusOr<CreatePaymentResult> r = repository_.CreatePending(payments.at(name));
        absl::MutexLock l(&mu_);
        results.emplace(name, std::move(r));
      });
    }
    RunBehindAHeldLock(
        "WITH p AS (INSERT INTO payments.payments (id, order_id, request_id, request_fingerprint,"
        " payment_token, currency, amount_minor, captured_minor, refunded_minor, status,"
        " decline_reason, gateway_reference) VALUES (gen_random_uuid(), 'o-x', 'auth-held', 0,"
        " 'tok', 'USD', 1, 0, 0, 'pending', '', '') RETURNING id)"
        " INSERT INTO payments.operations (request_id, payment_id, kind, amount_minor,"
        " request_fingerprint) SELECT 'auth-held', id, 'authorize', 1, 0 FROM p",
        writes, [&] { return repository_.WriteStats().queued; });
    return results;
  }

  static void WaitFor(const std::string& what, const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) absl::SleepFor(absl::Milliseconds(10));
    EXPECT_TRUE(done()) << what;
  }

  std::string dsn_;
  db::ConnectionPool pool_;
  db::PgPaymentRepository repository_;
  absl::Mutex mu_;
};

// Payments created while a CreatePending statement waits (on an open transaction's claim of
// the same request id) share the next statement; one whose request id is already in that
// statement goes in a later one and gets the first payment back (created=false).
TEST_F(PgPaymentBatchTest, CreatesQueuedBehindAStatementShareTheNext) {
  const std::map<std::string, Payment> payments = {{"held", SamplePayment("auth-held", "o-held")},
                                                   {"a", SamplePayment("auth-a", "o-a", 100)},
                                                   {"b", SamplePayment("auth-b", "o-b", 200)},
                                                   {"a-again", SamplePayment("auth-a", "o-a")},
                                                   {"c", SamplePayment("auth-c", "o-c", 300)}};
  const auto results = CreateBehindAHeldClaim(payments, {"held", "a", "b", "a-again", "c"});
  for (const char* name : {"held", "a", "b", "c"}) {
    ASSERT_TRUE(results.at(name).ok()) << name << ": " << results.at(name).status();
    EXPECT_TRUE(results.at(name)->created) << name;
    EXPECT_EQ(results.at(name)->payment.amount, payments.at(name).amount) << name;
  }
  ASSERT_TRUE(results.at("a-again").ok()) << results.at("a-again").status();
  EXPECT_FALSE(results.at("a-again")->created);
  EXPECT_EQ(results.at("a-again")->payment.id, payments.at("a").id);
  // a, b and c in one statement (one transaction: one now()).
  EXPECT_EQ(results.at("a")->payment.create_time, results.at("b")->payment.create_time);
  EXPECT_EQ(results.at("a")->payment.create_time, results.at("c")->payment.create_time);
  const db::GroupCommitStats stats = repository_.WriteStats();
  EXPECT_EQ(stats.batches, 3);  // held; a, b, c; a-again.
  EXPECT_EQ(stats.items, 5);
  for (const char* name : {"held", "a", "b", "c"}) {
    absl::StatusOr<Payment> got = repository_.Get(payments.at(name).id);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_EQ(got->request_id, payments.at(name).request_id);
    EXPECT_EQ(got->status, PaymentStatus::kPending);
  }
}

// A shared statement the database refuses for one write's value (here a CHECK the domain would
// never let through) fails for all its writes; each is then written alone, so only the bad one
// fails, with the status it would have had on its own.
TEST_F(PgPaymentBatchTest, AStatementRefusedForOneWriteFailsOnlyThatWrite) {
  Payment bad = SamplePayment("auth-bad", "o-bad", 100);
  bad.amount.minor = 0;  // CHECK (amount_minor > 0).
  const std::map<std::string, Payment> payments = {{"held", SamplePayment("auth-held", "o-held")},
                                                   {"a", SamplePayment("auth-a", "o-a", 100)},
                                                   {"bad", bad},
                                                   {"b", SamplePayment("auth-b", "o-b", 200)}};
  const auto results = CreateBehindAHeldClaim(payments, {"held", "a", "bad", "b"});
  for (const char* name : {"held", "a", "b"}) {
    ASSERT_TRUE(results.at(name).ok()) << name << ": " << results.at(name).status();
    EXPECT_TRUE(results.at(name)->created) << name;
    EXPECT_TRUE(repository_.Get(payments.at(name).id).ok()) << name;
  }
  EXPECT_EQ(results.at("bad").status().code(), absl::StatusCode::kFailedPrecondition)
      << results.at("bad").status();
  EXPECT_EQ(repository_.Get(bad.id).status().code(), absl::StatusCode::kNotFound);
  // a and b were written alone after the shared statement failed: two transactions.
  EXPECT_NE(results.at("a")->payment.create_time, results.at("b")->payment.create_time);
  const db::GroupCommitStats stats = repository_.WriteStats();
  EXPECT_EQ(stats.batches, 2);  // held; a, bad, b.
  EXPECT_EQ(stats.items, 4);
}

// Operations applied while an ApplyOperation statement waits (on a payment row locked
// elsewhere) share the next statement, each saving its payment and recording itself. One whose
// payment moved on since it was read (cap-3) is skipped by that statement and applied alone under
// the payment's lock; a second capture of a payment already in that statement (cap-1b) goes in a
// later one, finds the payment captured, and is refused, recording nothing.
TEST_F(PgPaymentBatchTest, OperationsQueuedBehindAStatementShareTheNext) {
  std::vector<Payment> stored;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<CreatePaymentResult> created =
        repository_.CreatePending(SamplePayment(absl::StrCat("auth-", i), "o", 1000));
    ASSERT_TRUE(created.ok()) << created.status();
    absl::StatusOr<Payment> authorized = repository_.Update(
        created->payment, [](Payment& p) { return p.MarkAuthorized(absl::StrCat("ref-", p.id)); });
    ASSERT_TRUE(authorized.ok()) << authorized.status();
    stored.push_back(*authorized);
  }
  // Payment 3 moves on after it was read (a save that changes nothing but its version).
  ASSERT_TRUE(repository_.Update(stored[3], [](Payment&) { return absl::OkStatus(); }).ok());
  const db::GroupCommitStats before = repository_.WriteStats();
  const std::vector<std::pair<int, PaymentOperation>> ops = {
      {0, SampleOperation("cap-0", stored[0], OperationKind::kCapture, 100)},
      {1, SampleOperation("cap-1", stored[1], OperationKind::kCapture, 200)},
      {2, SampleOperation("cap-2", stored[2], OperationKind::kCapture, 300)},
      {3, SampleOperation("cap-3", stored[3], OperationKind::kCapture, 400)},
      {1, SampleOperation("cap-1b", stored[1], OperationKind::kCapture, 50)}};
  std::vector<absl::StatusOr<ApplyOperationResult>> results(ops.size(),
                                                            absl::UnknownError("not run"));
  std::vector<std::function<void()>> writes;
  for (size_t i = 0; i < ops.size(); ++i) {
    writes.push_back([&, i] {
      const int64_t amount = ops[i].second.amount_minor;
      results[i] = repository_.ApplyOperation(ops[i].second, stored[ops[i].first],
                                              [&](Payment& p) { return p.Capture(amount); });
    });
  }
  RunBehindAHeldLock(
      absl::StrCat("SELECT 1 FROM payments.payments WHERE id = '", stored[0].id, "' FOR UPDATE"),
      writes, [&] { return repository_.WriteStats().queued - before.queued; });
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_TRUE(results[i]->applied) << i;
    EXPECT_EQ(results[i]->payment.status, PaymentStatus::kCaptured) << i;
    EXPECT_EQ(results[i]->payment.captured_minor, ops[i].second.amount_minor) << i;
    EXPECT_EQ(results[i]->payment.version, stored[i].version + (i == 3 ? 2 : 1)) << i;
    absl::StatusOr<PaymentOperation> recorded = repository_.GetOperation(ops[i].second.request_id);
    ASSERT_TRUE(recorded.ok()) << i << ": " << recorded.status();
    EXPECT_EQ(recorded->payment_id, stored[i].id);
    EXPECT_EQ(recorded->amount_minor, ops[i].second.amount_minor);
    absl::StatusOr<Payment> got = repository_.Get(stored[i].id);
    ASSERT_TRUE(got.ok()) << i << ": " << got.status();
    EXPECT_EQ(got->captured_minor, ops[i].second.amount_minor) << i;
  }
  // cap-1 and cap-2 in one statement (one transaction: one now()); cap-3 alone after it.
  EXPECT_EQ(results[1]->operation.create_time, results[2]->operation.create_time);
  EXPECT_EQ(results[1]->payment.update_time, results[2]->payment.update_time);
  EXPECT_NE(results[1]->operation.create_time, results[3]->operation.create_time);
  EXPECT_EQ(results[4].status().code(), absl::StatusCode::kFailedPrecondition)
      << results[4].status();
  EXPECT_EQ(repository_.GetOperation("cap-1b").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Payment> p1 = repository_.Get(stored[1].id);
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_EQ(p1->version, stored[1].version + 1);
  // The held one, cap-1, cap-2 and cap-3 together, then cap-1b.
  const db::GroupCommitStats after = repository_.WriteStats();
  EXPECT_EQ(after.batches - before.batches, 3);
  EXPECT_EQ(after.items - before.items, 5);
}

}  // namespace
}  // namespace order_platform::payments
