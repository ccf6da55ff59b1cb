#include "db/migrations.h"

#include <algorithm>
#include <map>
#include <pqxx/pqxx>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "db/transaction.h"
#include "services/common/errors.h"

namespace order_platform::db {
namespace {

constexpr int64_t kAdvisoryLockBase = 0x6f70'6d69'6700;  // "opmig": keyed per schema below.

struct ParsedName {
  int64_t version;
  std::string name;
  bool up;
};

std::optional<ParsedName> ParseFileName(absl::string_view file) {
  // NNNN_name.up.sql | NNNN_name.down.sql
  bool up;
  absl::string_view stem;
  if (absl::ConsumeSuffix(&file, ".up.sql")) {
    up = true;
  } else if (absl::ConsumeSuffix(&file, ".down.sql")) {
    up = false;
  } else {
    return std::nullopt;
  }
  stem = file;
  const size_t underscore = stem.find('_');
  if (underscore == absl::string_view::npos) return std::nullopt;
  int64_t version = 0;
  if (!absl::SimpleAtoi(stem.substr(0, underscore), &version) || version <= 0) {
    return std::nullopt;
  }
  return ParsedName{version, std::string(stem.substr(underscore + 1)), up};
}

int64_t LockKey(const std::string& schema) {
  int64_t h = 0;
  for (char c : schema) h = h * 131 + static_cast<unsigned char>(c);
  return kAdvisoryLockBase ^ (h & 0xffff'ffff);
}

// Holds a session advisory lock on `conn` for the migrator's lifetime.
class SchemaLock {
 public:
  SchemaLock(pqxx::connection& conn, int64_t key) : conn_(conn), key_(key) {
    pqxx::nontransaction tx(conn_);
    tx.exec_params("SELECT pg_advisory_lock($1)", key_);
  }
  ~SchemaLock() {
    try {
      pqxx::nontransaction tx(conn_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", key_);
    } catch (...) {
      // The lock dies with the session anyway.
    }
  }

 private:
  pqxx::connection& conn_;
  int64_t key_;
};

void EnsureVersionTable(pqxx::connection& conn, const std::string& schema) {
  pqxx::work tx(conn);
  tx.exec("CREATE SCHEMA IF NOT EXISTS " + tx.quote_name(schema));
  tx.exec("CREATE TABLE IF NOT EXISTS " + tx.quote_name(schema) +
          ".schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)");
  tx.commit();
}

SchemaVersion ReadVersion(pqxx::transaction_base& tx, const std::string& schema) {
  pqxx::result exists = tx.exec_params(
      "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND "
      "table_name = 'schema_migrations'",
      schema);
  if (exists.empty()) return {};
  pqxx::result r = tx.exec("SELECT version, dirty FROM " + tx.quote_name(schema) +
                           ".schema_migrations ORDER BY version DESC LIMIT 1");
  if (r.empty()) return {};
  return SchemaVersion{r[0][0].as<int64_t>(), r[0][1].as<bool>()};
}

void WriteVersion(pqxx::transaction_base& tx, const std::string& schema, int64_t version) {
  const std::string table = tx.quote_name(schema) + ".schema_migrations";
  tx.exec("DELETE FROM " + table);
  if (version > 0) tx.exec_params("INSERT INTO " + table + " VALUES ($1, false)", version);
}

template <typename Fn>
absl::StatusOr<int64_t> Guarded(Fn fn) {
  try {
    return fn();
  } catch (...) {
    bool lost = false;
    return StatusFromDbException(&lost);
  }
}

absl::Status DirtyError(const std::string& schema, int64_t version) {
  return absl::FailedPreconditionError(absl::StrCat(
      "schema ", schema, " is dirty at version ", version,
      ": a migration failed half-way; repair it by hand, then run `order_platform migrate force ",
      version, "`"));
}

}  // namespace

std::vector<std::string> EmbeddedSchemas() {
  std::set<std::string> schemas;
  for (const EmbeddedFile& f : EmbeddedMigrationFiles()) {
    const absl::string_view path = f.path;
    schemas.insert(std::string(path.substr(0, path.find('/'))));
  }
  return {schemas.begin(), schemas.end()};
}

absl::StatusOr<MigrationSet> EmbeddedMigrations(absl::string_view schema) {
  std::map<int64_t, Migration> by_version;
  std::map<int64_t, std::pair<bool, bool>> seen;  // up, down
  for (const EmbeddedFile& f : EmbeddedMigrationFiles()) {
    absl::string_view path = f.path;
    const size_t slash = path.find('/');
    if (path.substr(0, slash) != schema) continue;
    std::optional<ParsedName> parsed = ParseFileName(path.substr(slash + 1));
    if (!parsed) return absl::InternalError(absl::StrCat("malformed migration file name ", path));
    Migration& m = by_version[parsed->version];
    if (!m.name.empty() && m.name != parsed->name) {
      return absl::InternalError(absl::StrCat("two migrations with version ", parsed->version,
                                              " in schema ", schema));
    }
    m.version = parsed->version;
    m.name = parsed->name;
    (parsed->up ? m.up_sql : m.down_sql) = f.contents;
    (parsed->up ? seen[m.version].first : seen[m.version].second) = true;
  }
  if (by_version.empty()) return NotFound("migration schema", schema);
  MigrationSet set{std::string(schema), {}};
  for (auto& [version, m] : by_version) {
    if (!seen[version].first || !seen[version].second) {
      return absl::InternalError(absl::StrCat("migration ", schema, "/", version, "_", m.name,
                                              " needs both an .up.sql and a .down.sql file"));
    }
    set.migrations.push_back(std::move(m));
  }
  return set;
}

Migrator::Migrator(std::string dsn, MigrationSet set) : dsn_(std::move(dsn)), set_(std::move(set)) {}

absl::StatusOr<SchemaVersion> Migrator::Version() {
  SchemaVersion out;
  absl::StatusOr<int64_t> ok = Guarded([&]() -> int64_t {
    pqxx::connection conn(dsn_);
    pqxx::read_transaction tx(conn);
    out = ReadVersion(tx, set_.schema);
    return out.version;
  });
  if (!ok.ok()) return ok.status();
  return out;
}

namespace {

// Runs one migration's SQL and records `new_version`, in one transaction.
void ApplyMigration(pqxx::connection& conn, const std::string& schema, const std::string& sql,
                    int64_t new_version) {
  pqxx::work tx(conn);
  tx.exec("SET LOCAL search_path TO " + tx.quote_name(schema) + ", public");
  tx.exec(sql);
  WriteVersion(tx, schema, new_version);
  tx.commit();
}

// Connects, takes the schema's advisory lock, ensures the version table, refuses a dirty schema,
// then lets `migrate(conn, current_version)` apply migrations and return the new version.
template <typename Fn>
absl::StatusOr<int64_t> UnderSchemaLock(const std::string& dsn, const std::string& schema,
                                        Fn migrate) {
  absl::Status failure;
  absl::StatusOr<int64_t> result = Guarded([&]() -> int64_t {
    pqxx::connection conn(dsn);
    SchemaLock lock(conn, LockKey(schema));
    EnsureVersionTable(conn, schema);
    SchemaVersion v;
    {
      pqxx::read_transaction tx(conn);
      v = ReadVersion(tx, schema);
    }
    if (v.dirty) {
      failure = DirtyError(schema, v.version);
      return v.version;
    }
    return migrate(conn, v.version);
  });
  if (!failure.ok()) return failure;
  return result;
}

}  // namespace

absl::StatusOr<int64_t> Migrator::Up() {
  return UnderSchemaLock(dsn_, set_.schema, [&](pqxx::connection& conn, int64_t current) {
    for (const Migration& m : set_.migrations) {
      if (m.version <= current) continue;
      ApplyMigration(conn, set_.schema, m.up_sql, m.version);
      current = m.version;
    }
    return current;
  });
}

absl::StatusOr<int64_t> Migrator::Down(int steps) {
  if (steps < 1) return absl::InvalidArgumentError("down needs a number of steps >= 1");
  return UnderSchemaLock(dsn_, set_.schema, [&](pqxx::connection& conn, int64_t current) {
    for (auto it = set_.migrations.rbegin(); it != set_.migrations.rend() && steps > 0; ++it) {
      if (it->version > current) continue;
      const int64_t previous =
          std::next(it) != set_.migrations.rend() ? std::next(it)->version : 0;
      ApplyMigration(conn, set_.schema, it->down_sql, previous);
      current = previous;
      --steps;
    }
    return current;
  });
}

absl::Status Migrator::Force(int64_t version) {
  if (version < 0) return absl::InvalidArgumentError("version must be >= 0");
  return Guarded([&]() -> int64_t {
           pqxx::connection conn(dsn_);
           SchemaLock lock(conn, LockKey(set_.schema));
           EnsureVersionTable(conn, set_.schema);
           pqxx::work tx(conn);
           WriteVersion(tx, set_.schema, version);
           tx.commit();
           return version;
         })
      .status();
}

absl::Status Migrator::CheckCurrent() {
  OP_ASSIGN_OR_RETURN(SchemaVersion v, Version());
  const int64_t need = set_.LatestVersion();
  if (v.dirty) return DirtyError(set_.schema, v.version);
  if (v.version < need) {
    return absl::FailedPreconditionError(
        absl::StrCat("schema ", set_.schema, " is at version ", v.version,
                     " but this server needs version ", need,
                     ": run `order_platform migrate up` (with the same database flags) first"));
  }
  if (v.version > need) {
    return absl::FailedPreconditionError(absl::StrCat(
        "schema ", set_.schema, " is at version ", v.version, ", newer than this server's ", need,
        ": deploy a newer server, or run `order_platform migrate down ", v.version - need, "`"));
  }
  return absl::OkStatus();
}

}  // namespace order_platform::db
