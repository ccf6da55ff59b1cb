// A TCP proxy in front of PostgreSQL that loses one answer on purpose: what a client sees when its
// connection dies after the server ran (and, in autocommit, committed) a statement but before the
// reply arrived. Tests of "the write happened, the caller was not told" use it:
//
//   testing::AnswerDroppingProxy proxy(dsn);
//   db::ConnectionPool pool(db::PoolOptions{.dsn = proxy.dsn()});
//   proxy.DropNextAnswerTo("orders.insert_with_workflows");  // a prepared statement's name
//   ... the next execution of that statement is forwarded; the server's answer, up to and
//   including its ReadyForQuery, is read and thrown away; then both sides of that connection are
//   closed ...
//   proxy.DropNextCommitAnswer();  // likewise for the next transaction's COMMIT
//
// An execution is recognised by its Bind message (unnamed portal, the statement's name), in the
// bytes the client sends; so the proxied connections run without TLS or GSS encryption.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace order_platform::testing {

class AnswerDroppingProxy {
 public:
  // Proxies to the host and port of `dsn` (a postgresql:// URI), from a free local port.
  explicit AnswerDroppingProxy(const std::string& dsn);
  ~AnswerDroppingProxy();
  AnswerDroppingProxy(const AnswerDroppingProxy&) = delete;
  AnswerDroppingProxy& operator=(const AnswerDroppingProxy&) = delete;

  // `dsn` pointed at the proxy, with encryption off.
  const std::string& dsn() const { return dsn_; }

  // Arms the proxy: the next execution of the prepared statement `name` loses its answer (once).
  void DropNextAnswerTo(const std::string& name);
  // Arms the proxy: the next COMMIT (a simple query, as libpqxx sends it) loses its answer, on
  // whichever connection sends it (once): the transaction is committed, the client is not told.
  void DropNextCommitAnswer();
  // Arms the proxy until StopDropping: each statement execution (Bind) or simple query (BEGIN,
  // COMMIT, ...) loses its answer with `probability`, drawn from a generator seeded with `seed`.
  void DropAnswersAtRandom(double probability, uint64_t seed);
  void StopDropping();
  // Answers dropped so far.
  int dropped() const { return dropped_.load(); }

 private:
  struct Link;
  void Accept();
  void ClientToServer(Link* link);
  void ServerToClient(Link* link);

  std::string upstream_host_;
  int upstream_port_ = 0;
  int listen_fd_ = -1;
  std::string dsn_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> dropped_{0};
  absl::Mutex mu_;
  std::string armed_ ABSL_GUARDED_BY(mu_);  // The statement whose next answer is lost.
  bool commit_armed_ ABSL_GUARDED_BY(mu_) = false;
  double random_probability_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Link>> links_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

}  // namespace order_platform::testing
