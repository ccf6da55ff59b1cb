// Test support: PostgreSQL's statistics (per table, per backend) as a test reads them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include <pqxx/pqxx>

namespace order_platform::testing {

// Rows read by sequential scans of each table ("schema.table") of `dsn`'s database. A backend
// reports its counts at most once a second and may keep up to 10 s of them while idle, but always
// reports them when it exits: so every other client connection to the database is ended first
// (pools replace them on their next checkout), and the counts are read once they are all gone.
// Throws if they are not gone within 20 s. Ending the connections also ends their cached plans.
inline std::map<std::string, int64_t> SeqTuplesRead(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  const std::string others =
      " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
      " AND backend_type = 'client backend'";
  tx.exec("SELECT pg_terminate_backend(pid)" + others);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (tx.exec("SELECT count(*)" + others)[0][0].as<int>() > 0) {
    if (std::chrono::steady_clock::now() > give_up) {
      throw std::runtime_error("other connections to the database did not end");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  tx.exec("SELECT pg_stat_clear_snapshot()");
  std::map<std::string, int64_t> read;
  for (const pqxx::row& row :
       tx.exec("SELECT schemaname || '.' || relname, seq_tup_read FROM pg_stat_user_tables")) {
    read[row[0].as<std::string>()] = row[1].as<int64_t>();
  }
  return read;
}

// Backends of `dsn`'s database waiting for a heavyweight lock now (a row lock, a unique index
// entry another transaction is inserting): how a test sees that a statement it started waits on
// the lock it holds elsewhere.
inline int LockWaits(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx
      .exec1(
          "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
          " AND wait_event_type = 'Lock'")[0]
      .as<int>();
}

}  // namespace order_platform::testing
