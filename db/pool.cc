#include "db/pool.h"

#include <poll.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace order_platform::db {
namespace {

// Appends libpq options to a DSN in either URI or key=value form.
std::string WithOptions(const PoolOptions& options) {
  const int64_t timeout_s = std::max<int64_t>(2, absl::ToInt64Seconds(options.connect_timeout));
  const bool uri = absl::StartsWith(options.dsn, "postgresql://") ||
                   absl::StartsWith(options.dsn, "postgres://");
  std::string settings;
  for (const std::string& setting : options.settings) {
    absl::StrAppend(&settings, settings.empty() ? "" : " ", "-c ", setting);
  }
  std::string out = options.dsn;
  if (uri) {
    absl::StrAppend(&out, absl::StrContains(out, "?") ? "&" : "?", "connect_timeout=", timeout_s,
                    "&application_name=", options.application_name);
    if (!settings.empty()) {
      absl::StrAppend(
          &out, "&options=",
          absl::StrReplaceAll(
              settings, {{"%", "%25"}, {" ", "%20"}, {"=", "%3D"}, {"&", "%26"}, {"#", "%23"}}));
    }
  } else {
    absl::StrAppend(&out, " connect_timeout=", timeout_s,
                    " application_name=", options.application_name);
    if (!settings.empty()) absl::StrAppend(&out, " options='", settings, "'");
  }
  return out;
}

// Whether an idle connection may still be used, in one syscall and no round trip. An idle
// connection has nothing to read unless the server ended it (a FATAL message, then EOF: a restart,
// an administrator, idle_session_timeout), so a readable socket means it is gone. Checked before
// a connection is handed out, so a statement that must not be re-sent blindly (a non-idempotent
// autocommit write) never goes out on a connection that was already dead.
bool StillOpen(const pqxx::connection& conn) {
  if (!conn.is_open()) return false;
  pollfd fd{conn.sock(), POLLIN, 0};
  if (fd.fd < 0) return false;
  return ::poll(&fd, 1, 0) <= 0;  // An interrupted poll (-1) says nothing: use it as before.
}

}  // namespace

ConnectionPool::Lease::Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn)
    : pool_(pool), conn_(std::move(conn)) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {
  other.pool_ = nullptr;
}

ConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_), broken_);
}

ConnectionPool::ConnectionPool(PoolOptions options)
    : options_(std::move(options)), conninfo_(WithOptions(options_)) {}

ConnectionPool::~ConnectionPool() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> ConnectionPool::Connect() {
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo_);
    return conn;
  } catch (const std::exception& e) {
    std::string why = e.what();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", why));
  }
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire() {
  if (options_.observer == nullptr) return AcquireUnobserved();
  const absl::Time start = absl::Now();
  absl::StatusOr<Lease> lease = AcquireUnobserved();
  options_.observer->OnCheckout(absl::Now() - start, lease.ok());
  if (absl::IsUnavailable(lease.status())) options_.observer->OnError(kConnectionErrorClass);
  return lease;
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::AcquireUnobserved() {
  const absl::Time deadline = absl::Now() + options_.checkout_timeout;
  std::vector<std::unique_ptr<pqxx::connection>> dead;
  {
    absl::MutexLock lock(&mu_);
    ++waiting_;
    auto can_proceed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.size;
    };
    const bool ready = mu_.AwaitWithDeadline(absl::Condition(&can_proceed), deadline);
    --waiting_;
    if (!ready) {
      ++checkout_timeouts_;
      return absl::ResourceExhaustedError(
          absl::StrCat("all ", options_.size, " database connections are busy (waited ",
                       absl::FormatDuration(options_.checkout_timeout), ")"));
    }
    if (!idle_.empty()) {
      std::unique_ptr<pqxx::connection> conn = std::move(idle_.back());
      idle_.pop_back();
      if (StillOpen(*conn)) return Lease(this, std::move(conn));
      // Ended by the server: its slot is reused for a fresh connection. The other idle ones are
      // checked when their turn comes (they may have ended one by one, as idle_session_timeout
      // ends them).
      ++broken_;
      dead.push_back(std::move(conn));
    } else {
      ++open_;  // Reserve a slot; connect outside the lock.
    }
  }
  dead.clear();  // Closing sockets outside the lock.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = Connect();
  absl::MutexLock lock(&mu_);
  if (!conn.ok()) {
    --open_;
    return conn.status();
  }
  ++connects_;
  return Lease(this, *std::move(conn));
}

void ConnectionPool::Release(std::unique_ptr<pqxx::connection> conn, bool broken) {
  const bool reusable = !broken && conn->is_open();
  std::vector<std::unique_ptr<pqxx::connection>> discard;
  {
    absl::MutexLock lock(&mu_);
    if (reusable) {
      idle_.push_back(std::move(conn));
      return;
    }
    // A broken connection usually means the server restarted: the idle ones are dead too.
    ++broken_;
    open_ -= 1 + static_cast<int>(idle_.size());
    broken_ += static_cast<int64_t>(idle_.size());
    discard.swap(idle_);
  }
  // Closing sockets outside the lock.
  conn.reset();
  discard.clear();
}

absl::Status ConnectionPool::Ping() {
  absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = Connect();
  if (!conn.ok()) return conn.status();
  try {
    pqxx::nontransaction tx(**conn);
    tx.exec("SELECT 1");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("PostgreSQL ping failed: ", e.what()));
  }
}

PoolStats ConnectionPool::Stats() const {
  absl::MutexLock lock(&mu_);
  PoolStats stats;
  stats.size = options_.size;
  stats.open = open_;
  stats.in_use = open_ - static_cast<int>(idle_.size());
  stats.waiting = waiting_;
  stats.connects = connects_;
  stats.broken = broken_;
  stats.checkout_timeouts = checkout_timeouts_;
  return stats;
}

}  // namespace order_platform::db
