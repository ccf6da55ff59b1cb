// Self-test of tests/support/test_postgres: a created database is real, empty and isolated, and
// the private server comes back, with its committed data, after StopPrivateServer and
// StartPrivateServer.
#include <gtest/gtest.h>

#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>  // Debian/Ubuntu without -I/usr/include/postgresql
#endif

#include <memory>
#include <string>

#include "tests/support/test_postgres.h"

namespace order_platform::testing {
namespace {

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

PgConn Connect(const std::string& dsn) {
  PgConn conn(PQconnectdb(dsn.c_str()));
  // Silences "terminating connection due to immediate shutdown" notices on stderr.
  if (conn != nullptr)
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

bool IsConnected(const PgConn& conn) {
  return conn != nullptr && PQstatus(conn.get()) == CONNECTION_OK;
}

// Runs `sql` and returns the first column of its first row ("" for none); sets *error (else
// clears it) on failure.
std::string Query(PGconn* conn, const std::string& sql, std::string* error) {
  error->clear();
  PGresult* result = PQexec(conn, sql.c_str());
  std::string value;
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_TUPLES_OK) {
    if (PQntuples(result) > 0) value = PQgetvalue(result, 0, 0);
  } else if (status != PGRES_COMMAND_OK) {
    *error = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
    if (error->empty()) *error = "query failed";
  }
  PQclear(result);
  return value;
}

std::string QueryDsn(const std::string& dsn, const std::string& sql, std::string* error) {
  PgConn conn = Connect(dsn);
  if (!IsConnected(conn)) {
    *error = conn != nullptr ? PQerrorMessage(conn.get()) : "out of memory";
    return "";
  }
  return Query(conn.get(), sql, error);
}

TEST(TestPostgresTest, CreatedDatabaseAcceptsQueries) {
  const std::string dsn = CreateTestDatabase("Selftest-Suite");
  std::string error;
  EXPECT_EQ(QueryDsn(dsn, "SELECT 1", &error), "1") << error;
  const std::string name = QueryDsn(dsn, "SELECT current_database()", &error);
  EXPECT_EQ(error, "");
  EXPECT_EQ(name.rfind("selftest_suite_", 0), 0u) << name;
  EXPECT_LE(name.size(), 63u);
  EXPECT_EQ(
      QueryDsn(dsn, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
               &error),
      "0")
      << error;
}

TEST(TestPostgresTest, DatabasesAreIsolated) {
  const std::string first = CreateTestDatabase("iso");
  const std::string second = CreateTestDatabase("iso");
  ASSERT_NE(first, second);
  std::string error;
  QueryDsn(first, "CREATE TABLE only_in_first (id int)", &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(QueryDsn(second, "SELECT to_regclass('only_in_first') IS NULL", &error), "t") << error;
  EXPECT_EQ(QueryDsn(first, "SELECT to_regclass('only_in_first') IS NULL", &error), "f") << error;
}

TEST(TestPostgresTest, CommittedDataSurvivesStopAndStart) {
  if (!UsingPrivateServer()) {
    GTEST_SKIP() << "ORDER_PLATFORM_TEST_DSN is set: restarting needs the private cluster";
  }
  const std::string dsn = CreateTestDatabase("restart");
  std::string error;
  QueryDsn(dsn, "CREATE TABLE marker (value int); INSERT INTO marker VALUES (42)", &error);
  ASSERT_EQ(error, "");
  PgConn before = Connect(dsn);
  ASSERT_TRUE(IsConnected(before)) << PQerrorMessage(before.get());

  for (StopMode mode : {StopMode::kImmediate, StopMode::kFast}) {
    SCOPED_TRACE(mode == StopMode::kImmediate ? "immediate" : "fast");
    QueryDsn(dsn, "UPDATE marker SET value = value + 1", &error);
    ASSERT_EQ(error, "");

    StopPrivateServer(mode);
    // The server is really down: the open connection breaks and a new one is refused.
    Query(before.get(), "SELECT 1", &error);
    EXPECT_NE(error, "");
    EXPECT_FALSE(IsConnected(Connect(dsn)));
    StopPrivateServer(mode);  // no-op when stopped

    StartPrivateServer();
    StartPrivateServer();  // no-op when running
    PgConn after = Connect(dsn);
    ASSERT_TRUE(IsConnected(after)) << PQerrorMessage(after.get());
    EXPECT_EQ(Query(after.get(), "SELECT value FROM marker", &error),
              mode == StopMode::kImmediate ? "43" : "44")
        << error;
    before = std::move(after);
  }
}

TEST(TestPostgresDeathTest, RestartNeedsThePrivateCluster) {
  if (UsingPrivateServer()) {
    GTEST_SKIP() << "only meaningful with ORDER_PLATFORM_TEST_DSN set";
  }
  EXPECT_DEATH(StopPrivateServer(), "needs the private cluster");
  EXPECT_DEATH(StartPrivateServer(), "needs the private cluster");
}

}  // namespace
}  // namespace order_platform::testing
