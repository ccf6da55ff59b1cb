// The connection pool and transaction runner against PostgreSQL: bounded size, checkout timeout,
// error translation, retry of serialization failures, and replacement of broken connections.
#include <atomic>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "gtest/gtest.h"
#include "tests/support/test_postgres.h"

namespace order_platform::db {
namespace {

constexpr Statement kSelectOne{"test.select_one", "SELECT $1::int + 1"};

class PoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dsn_ = new std::string(testing::CreateTestDatabase("pool"));
    pqxx::connection conn(*dsn_);
    pqxx::work tx(conn);
    tx.exec("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL CHECK (n >= 0))");
    tx.exec("INSERT INTO counter VALUES (1, 0)");
    tx.exec("CREATE TABLE uniq (k text PRIMARY KEY)");
    tx.commit();
  }
  static std::string* dsn_;
};
std::string* PoolTest::dsn_ = nullptr;

TEST_F(PoolTest, NeverOpensMoreThanItsSize) {
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 3});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) {
        absl::Status s = RunTransaction(pool, {}, [&](pqxx::transaction_base& tx) {
          EXPECT_EQ(Exec(tx, kSelectOne, 41)[0][0].as<int>(), 42);
          return absl::OkStatus();
        });
        if (!s.ok()) failures++;
        EXPECT_LE(pool.Stats().open, 3);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(pool.Stats().connects, 3);
  EXPECT_EQ(pool.Stats().in_use, 0);
}

TEST_F(PoolTest, SettingsApplyToEveryConnectionInBothDsnForms) {
  // The test DSN is a URI; the same database in key=value form too.
  const std::string uri = *dsn_;
  std::string keyvalue;
  {
    pqxx::connection conn(uri);
    keyvalue = absl::StrCat("host=", conn.hostname(), " port=", conn.port(),
                            " dbname=", conn.dbname(), " user=", conn.username());
  }
  for (const std::string& dsn : {uri, keyvalue}) {
    ConnectionPool pool(
        PoolOptions{.dsn = dsn, .size = 2, .settings = {"enable_seqscan=off", "work_mem=8MB"}});
    absl::Status s = RunTransaction(pool, {}, [&](pqxx::transaction_base& tx) {
      EXPECT_EQ(tx.exec1("SHOW enable_seqscan")[0].as<std::string>(), "off") << dsn;
      EXPECT_EQ(tx.exec1("SHOW work_mem")[0].as<std::string>(), "8MB") << dsn;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s << " " << dsn;
  }
}

TEST_F(PoolTest, FullPoolTimesOutWithResourceExhausted) {
  ConnectionPool pool(
      PoolOptions{.dsn = *dsn_, .size = 1, .checkout_timeout = absl::Milliseconds(200)});
  absl::StatusOr<ConnectionPool::Lease> held = pool.Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<ConnectionPool::Lease> second = pool.Acquire();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_EQ(pool.Stats().checkout_timeouts, 1);
}

TEST_F(PoolTest, UnreachableServerIsUnavailableNotAHang) {
  ConnectionPool pool(PoolOptions{.dsn = "postgresql://postgres@127.0.0.1:1/nothing",
                                  .size = 2,
                                  .connect_timeout = absl::Seconds(2)});
  absl::Status s = RunTransaction(pool, {}, [](pqxx::transaction_base&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(pool.Ping().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PoolTest, ConstraintViolationsMapToPreciseCodes) {
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 2});
  absl::Status check = RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
    tx.exec("UPDATE counter SET n = -1 WHERE id = 1");
    return absl::OkStatus();
  });
  EXPECT_EQ(check.code(), absl::StatusCode::kFailedPrecondition) << check;
  ASSERT_TRUE(RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
                tx.exec("INSERT INTO uniq VALUES ('a')");
                return absl::OkStatus();
              }).ok());
  absl::Status unique = RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
    tx.exec("INSERT INTO uniq VALUES ('a')");
    return absl::OkStatus();
  });
  EXPECT_EQ(unique.code(), absl::StatusCode::kAlreadyExists) << unique;
  absl::Status bad_data = RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
    tx.exec("SELECT 'x'::int");
    return absl::OkStatus();
  });
  EXPECT_EQ(bad_data.code(), absl::StatusCode::kInvalidArgument) << bad_data;
  absl::Status syntax = RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
    tx.exec("SELEC 1");
    return absl::OkStatus();
  });
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInternal) << syntax;
}

TEST_F(PoolTest, AStatementTimeoutIsDeadlineExceededAndKeepsTheConnection) {
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 1, .settings = {"statement_timeout=50"}});
  absl::Status timed_out = RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
    tx.exec("SELECT pg_sleep(5)");
    return absl::OkStatus();
  });
  EXPECT_EQ(timed_out.code(), absl::StatusCode::kDeadlineExceeded) << timed_out;
  EXPECT_EQ(pool.Stats().broken, 0);
  EXPECT_TRUE(RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
                tx.exec("SELECT 1");
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(pool.Stats().connects, 1);
}

TEST_F(PoolTest, ErrorFromTheUnitRollsBack) {
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 2});
  absl::Status s = RunTransaction(pool, {}, [](pqxx::transaction_base& tx) {
    tx.exec("INSERT INTO uniq VALUES ('rolled-back')");
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  int64_t count = -1;
  ASSERT_TRUE(RunTransaction(pool, {.mode = TxMode::kAutocommit, .idempotent = true},
                             [&](pqxx::transaction_base& tx) {
                               count = tx.exec("SELECT count(*) FROM uniq WHERE k = 'rolled-back'")[0][0]
                                           .as<int64_t>();
                               return absl::OkStatus();
                             })
                  .ok());
  EXPECT_EQ(count, 0);
}

TEST_F(PoolTest, SerializationFailuresAreRetried) {
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 8});
  constexpr int kThreads = 6;
  constexpr int kIncrements = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kIncrements; ++j) {
        absl::Status s = RunTransaction(
            pool, {.mode = TxMode::kSerializable, .max_attempts = 50},
            [](pqxx::transaction_base& tx) {
              const int n = tx.exec("SELECT n FROM counter WHERE id = 1")[0][0].as<int>();
              tx.exec_params("UPDATE counter SET n = $1 WHERE id = 1", n + 1);
              return absl::OkStatus();
            });
        if (!s.ok()) {
          failures++;
          ADD_FAILURE() << s;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int n = -1;
  ASSERT_TRUE(RunTransaction(pool, {}, [&](pqxx::transaction_base& tx) {
                n = tx.exec("SELECT n FROM counter WHERE id = 1")[0][0].as<int>();
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(n, kThreads * kIncrements);  // No lost update under SERIALIZABLE with retries.
}

TEST_F(PoolTest, BrokenConnectionsAreReplacedAfterServerRestart) {
  if (!testing::UsingPrivateServer()) GTEST_SKIP() << "needs the private cluster";
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 4});
  auto select = [&] {
    return RunTransaction(pool, {.mode = TxMode::kAutocommit, .idempotent = true},
                          [](pqxx::transaction_base& tx) {
                            EXPECT_EQ(Exec(tx, kSelectOne, 1)[0][0].as<int>(), 2);
                            return absl::OkStatus();
                          });
  };
  ASSERT_TRUE(select().ok());
  testing::StopPrivateServer(testing::StopMode::kImmediate);
  EXPECT_EQ(select().code(), absl::StatusCode::kUnavailable);
  testing::StartPrivateServer();
  absl::Status after = select();
  EXPECT_TRUE(after.ok()) << after;
  EXPECT_GE(pool.Stats().broken, 1);
}

TEST_F(PoolTest, NonIdempotentWriteLostMidFlightReportsUnknownOutcome) {
  if (!testing::UsingPrivateServer()) GTEST_SKIP() << "needs the private cluster";
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 2});
  absl::Notification started;
  std::thread killer([&] {
    started.WaitForNotification();
    testing::StopPrivateServer(testing::StopMode::kImmediate);
  });
  absl::Status s = RunTransaction(pool, {.mode = TxMode::kAutocommit},
                                  [&](pqxx::transaction_base& tx) {
                                    started.Notify();
                                    tx.exec("SELECT pg_sleep(5)");
                                    return absl::OkStatus();
                                  });
  killer.join();
  testing::StartPrivateServer();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("outcome"), absl::string_view::npos) << s;
}

TEST_F(PoolTest, IdleConnectionClosedByTheServerIsReplacedBeforeAWriteUsesIt) {
  ConnectionPool pool(PoolOptions{.dsn = *dsn_, .size = 2, .application_name = "pool_health_test"});
  int k = 0;
  // A write that must not be retried blindly: its connection must be good before it is sent.
  auto insert = [&] {
    const std::string key = "health-" + std::to_string(++k);
    return RunTransaction(pool, {.mode = TxMode::kAutocommit}, [&](pqxx::transaction_base& tx) {
      tx.exec_params("INSERT INTO uniq (k) VALUES ($1)", key);
      return absl::OkStatus();
    });
  };
  ASSERT_TRUE(insert().ok());
  ASSERT_EQ(pool.Stats().open, 1);

  // The server ends the idle connection (an administrator, idle_session_timeout, a failover).
  pqxx::connection admin(*dsn_);
  pqxx::nontransaction q(admin);
  const std::string ours =
      " FROM pg_stat_activity WHERE application_name = 'pool_health_test'"
      " AND datname = current_database()";
  q.exec("SELECT pg_terminate_backend(pid)" + ours);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (q.exec("SELECT count(*)" + ours)[0][0].as<int>() > 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::SleepFor(absl::Milliseconds(50));  // The close reaches the client's socket.

  const absl::Status after = insert();
  EXPECT_TRUE(after.ok()) << after;
  EXPECT_EQ(pool.Stats().broken, 1);
  EXPECT_EQ(q.exec("SELECT count(*) FROM uniq WHERE k LIKE 'health-%'")[0][0].as<int>(), 2);
}

}  // namespace
}  // namespace order_platform::db
