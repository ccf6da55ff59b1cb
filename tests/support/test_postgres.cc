// Implementation of the test PostgreSQL server (see test_postgres.h): a private cluster per
// process driven through initdb/pg_ctl child processes, and database creation through libpq.
#include "tests/support/test_postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>  // Debian/Ubuntu without -I/usr/include/postgresql
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace order_platform::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kDsnEnv[] = "ORDER_PLATFORM_TEST_DSN";
constexpr char kBinDirEnv[] = "ORDER_PLATFORM_TEST_PG_BINDIR";
constexpr char kKeepDatabasesEnv[] = "ORDER_PLATFORM_TEST_KEEP_DATABASES";
constexpr char kLogPrefix[] = "[test_postgres] ";
constexpr char kCannotSwitchUserHint[] =
    "when root, initdb/pg_ctl must run as an unprivileged user; inside a user namespace that maps "
    "only root (Bazel's linux-sandbox) that is impossible: run PostgreSQL tests unsandboxed "
    "(tags = [\"no-sandbox\"] or --strategy=TestRunner=standalone) or set ORDER_PLATFORM_TEST_DSN";
constexpr int kStartAttempts = 5;  // a kernel-chosen port can be taken before postgres binds it

// ---------------------------------------------------------------------------------------------
// Diagnostics.

[[noreturn]] void Fatal(const std::string& message) {
  std::fprintf(stderr, "%sFATAL: %s\n", kLogPrefix, message.c_str());
  std::fflush(stderr);
  std::abort();  // skips exit handlers; the watchdog (see StartWatchdog) removes the cluster
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string ReadFile(const std::string& path, std::streamoff from = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(from);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The last `lines` lines of `text`, indented, for error messages.
std::string Tail(const std::string& text, int lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
  }
  const std::string tail = text.substr(pos == std::string::npos ? 0 : pos + 1);
  std::string indented;
  std::istringstream in(tail);
  for (std::string line; std::getline(in, line);) indented += "    " + line + "\n";
  return indented;
}

std::string LogTail(const std::string& path, std::streamoff from = 0) {
  return "--- " + path + " (tail) ---\n" + Tail(ReadFile(path, from), 40);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------
// Child processes.

// Who a child runs as: the current user, or (when root) the unprivileged server user.
struct Identity {
  bool drop_root = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

struct SpawnOptions {
  const Identity* identity = nullptr;  // null: run as the current user
  std::string cwd = "/";
  std::string output_path;  // stdout+stderr appended here; empty: /dev/null
  int stdin_fd = -1;        // -1: /dev/null
  bool new_session = false;
  std::vector<std::string> env;
};

// Duplicates `fd` to a descriptor >= 10 with FD_CLOEXEC so that the child's dup2 calls onto 0..2
// cannot clobber it.
int HighFd(int fd) {
  const int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  if (high < 0) Fatal("fcntl(F_DUPFD_CLOEXEC): " + ErrnoText(errno));
  return high;
}

void ChildFail(const char* what) {
  const int err = errno;
  const char* text = strerror(err);  // not async-signal-safe in theory; glibc's is fine in practice
  (void)!write(2, "[test_postgres child] ", 22);
  (void)!write(2, what, strlen(what));
  (void)!write(2, ": ", 2);
  (void)!write(2, text, strlen(text));
  (void)!write(2, "\n", 1);
  _exit(127);
}

// Starts argv[0] (an absolute path) with `options`; returns its pid. Everything the child needs is
// prepared before fork(), since the parent may be multi-threaded.
pid_t Spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (const std::string& var : options.env) c_env.push_back(const_cast<char*>(var.c_str()));
  c_env.push_back(nullptr);

  const int dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (dev_null < 0) Fatal("open(/dev/null): " + ErrnoText(errno));
  int out = dev_null;
  if (!options.output_path.empty()) {
    out = open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) Fatal("open(" + options.output_path + "): " + ErrnoText(errno));
  }
  const int child_in = HighFd(options.stdin_fd >= 0 ? options.stdin_fd : dev_null);
  const int child_out = HighFd(out);
  if (out != dev_null) close(out);
  close(dev_null);

  const Identity* identity = options.identity;
  const bool drop = identity != nullptr && identity->drop_root;
  const uid_t uid = drop ? identity->uid : 0;
  const gid_t gid = drop ? identity->gid : 0;
  const long max_fd = std::min(sysconf(_SC_OPEN_MAX) > 0 ? sysconf(_SC_OPEN_MAX) : 1024L, 65536L);
  sigset_t no_signals;
  sigemptyset(&no_signals);

  const pid_t pid = fork();
  if (pid < 0) Fatal("fork: " + ErrnoText(errno));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (options.new_session && setsid() < 0) ChildFail("setsid");
    sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    if (dup2(child_in, 0) < 0 || dup2(child_out, 1) < 0 || dup2(child_out, 2) < 0) {
      ChildFail("dup2");
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
    {
      for (long fd = 3; fd < max_fd; ++fd) close(static_cast<int>(fd));
    }
    if (drop) {
      if (setgroups(1, &gid) != 0) ChildFail("setgroups");
      if (setgid(gid) != 0) ChildFail("setgid");
      if (setuid(uid) != 0) ChildFail("setuid to the server user");
    }
    if (chdir(options.cwd.c_str()) != 0) ChildFail("chdir");
    execve(c_argv[0], c_argv.data(), c_env.data());
    ChildFail(c_argv[0]);
  }
  close(child_in);
  close(child_out);
  return pid;
}

// Waits for `pid`; returns its exit code (128+signal if killed).
int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Fatal("waitpid: " + ErrnoText(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

int Run(const std::vector<std::string>& argv, const SpawnOptions& options) {
  return Wait(Spawn(argv, options));
}

// ---------------------------------------------------------------------------------------------
// Locating PostgreSQL and the server user.

bool IsExecutable(const fs::path& path) { return access(path.c_str(), X_OK) == 0; }

std::string FindBinDir() {
  if (const char* env = std::getenv(kBinDirEnv); env != nullptr && *env != '\0') {
    if (!IsExecutable(fs::path(env) / "pg_ctl")) {
      Fatal(std::string(kBinDirEnv) + "=" + env + " has no executable pg_ctl");
    }
    return env;
  }
  const fs::path root = "/usr/lib/postgresql";
  if (IsExecutable(root / "15/bin/pg_ctl")) return (root / "15/bin").string();
  int best = -1;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(root, ec)) {
    const std::string version = entry.path().filename().string();
    char* end = nullptr;
    const long major = std::strtol(version.c_str(), &end, 10);
    if (end == version.c_str() || *end != '\0') continue;  // only purely numeric versions
    if (major > best && IsExecutable(entry.path() / "bin/pg_ctl")) best = static_cast<int>(major);
  }
  if (best < 0) {
    Fatal("no PostgreSQL server binaries: neither /usr/lib/postgresql/*/bin/pg_ctl nor " +
          std::string(kBinDirEnv) + " (install the postgresql package: deploy/install-deps.sh), " +
          "or set " + kDsnEnv + " to a running server");
  }
  return (root / std::to_string(best) / "bin").string();
}

Identity ServerIdentity() {
  Identity identity;
  if (geteuid() != 0) return identity;
  for (const char* name : {"postgres", "nobody"}) {
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    if (getpwnam_r(name, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
        found->pw_uid != 0) {
      identity.drop_root = true;
      identity.uid = found->pw_uid;
      identity.gid = found->pw_gid;
      identity.name = name;
      return identity;
    }
  }
  Fatal(
      "running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL "
      "(PostgreSQL refuses to run as root)");
}

// ---------------------------------------------------------------------------------------------
// libpq helpers.

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

// Connects to `dsn` (URI or key=value). Returns null and sets `error` on failure.
PgConn Connect(const std::string& dsn, std::string* error) {
  // Later keywords override earlier ones, so the DSN's own settings win over these defaults.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"10", "order_platform_test", dsn.c_str(), nullptr};
  PgConn conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn == nullptr) {
    *error = "out of memory";
    return nullptr;
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    *error = PQerrorMessage(conn.get());
    while (!error->empty() && error->back() == '\n') error->pop_back();
    return nullptr;
  }
  return conn;
}

// Runs a statement that returns no rows or a result set; false and `error` on failure.
bool Exec(PGconn* conn, const std::string& sql, std::string* error) {
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  if (!ok) {
    *error = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
    while (!error->empty() && error->back() == '\n') error->pop_back();
  }
  PQclear(result);
  return ok;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) quoted += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// `dsn` with its database replaced by `database` (which must be made of [a-z0-9_]).
std::string WithDatabase(const std::string& dsn, const std::string& database) {
  std::string result;
  const size_t scheme_end = dsn.find("://");
  const bool is_uri = dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0;
  if (is_uri) {
    const size_t query_start = std::min(dsn.find('?'), dsn.size());
    const size_t path_start = std::min(dsn.find('/', scheme_end + 3), query_start);
    result = dsn.substr(0, path_start) + "/" + database;
    // Keep the query parameters except a dbname=, which would override the path.
    std::string query;
    std::istringstream params(dsn.substr(std::min(query_start + 1, dsn.size())));
    for (std::string param; std::getline(params, param, '&');) {
      if (param.empty() || param.rfind("dbname=", 0) == 0) continue;
      query += (query.empty() ? "?" : "&") + param;
    }
    result += query;
  } else {
    result = dsn + " dbname=" + database;  // in key=value strings the last setting wins
  }
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(result.c_str(), &parse_error);
  bool names_database = false;
  for (PQconninfoOption* option = options; option != nullptr && option->keyword != nullptr;
       ++option) {
    if (std::strcmp(option->keyword, "dbname") == 0) {
      names_database = option->val != nullptr && database == option->val;
    }
  }
  const std::string parse_message = parse_error != nullptr ? parse_error : "";
  PQfreemem(parse_error);
  PQconninfoFree(options);
  if (!names_database) {
    Fatal("cannot derive a DSN for database " + database + " from '" + dsn + "' (got '" + result +
          "'" + (parse_message.empty() ? "" : ": " + parse_message) + ")");
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The private cluster.

class PrivateCluster {
 public:
  // Creates, initializes and starts the cluster; Fatal on failure.
  void Start();
  void Stop(StopMode mode);
  void Restart();
  const std::string& dsn() const { return dsn_; }
  // Exit handler: stops the server and removes the directory (only in the creating process).
  void CleanUp();

 private:
  SpawnOptions Options(const std::string& output_path) const;
  std::vector<std::string> Env() const;
  // Creates the temp dir (watched by the watchdog) and hands it to the server user.
  void CreateDirectory();
  void StartWatchdog();
  void InitDb();
  void WriteSettings(int port);
  // Runs pg_ctl start; true once the server accepts connections, false if the port was taken.
  bool PgCtlStart();
  void WaitUntilAccepting();

  std::mutex mu_;
  std::string bin_dir_;
  Identity identity_;
  std::string dir_;       // the temp dir: data/, initdb.log, postgres.log, pg_ctl.log
  std::string data_dir_;  // also the unix socket directory
  int port_ = 0;
  bool running_ = false;
  pid_t owner_pid_ = 0;
  std::string dsn_;
};

std::vector<std::string> PrivateCluster::Env() const {
  std::vector<std::string> env = {"PATH=" + bin_dir_ + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C",
                                  "HOME=" + dir_};
  if (const char* tz = std::getenv("TZ"); tz != nullptr) env.push_back(std::string("TZ=") + tz);
  return env;
}

SpawnOptions PrivateCluster::Options(const std::string& output_path) const {
  SpawnOptions options;
  options.identity = &identity_;
  options.cwd = dir_;
  options.output_path = output_path;
  options.env = Env();
  return options;
}

void PrivateCluster::CreateDirectory() {
  // /tmp rather than TMPDIR/TEST_TMPDIR: the path must be reachable by the server user when root
  // (TEST_TMPDIR under Bazel lives below /root/.cache) and short enough for a unix socket path.
  std::string pattern = "/tmp/op_test_pg.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) Fatal("mkdtemp(" + pattern + "): " + ErrnoText(errno));
  dir_ = pattern;
  data_dir_ = dir_ + "/data";
  StartWatchdog();  // from here on the directory is removed however this process ends
  if (identity_.drop_root && chown(dir_.c_str(), identity_.uid, identity_.gid) != 0) {
    Fatal("chown " + dir_ + " to " + identity_.name + ": " + ErrnoText(errno) + " (" +
          kCannotSwitchUserHint + ")");
  }
  // Proves both that we can switch to the server user and that it can write the directory.
  const std::string check_log = dir_ + "/access_check.log";
  SpawnOptions options = Options(check_log);
  options.cwd = "/";
  if (Run({"/bin/sh", "-c", "test -w \"$1\" && test -x \"$1\"", "sh", dir_}, options) != 0) {
    Fatal("the server user '" + identity_.name + "' cannot use " + dir_ + " (" +
          kCannotSwitchUserHint + ")\n" + LogTail(check_log));
  }
  unlink(check_log.c_str());
}

void PrivateCluster::StartWatchdog() {
  // The watchdog reads a pipe whose only writer is this process (O_CLOEXEC keeps pg_ctl and the
  // postmaster from inheriting it). EOF means this process is gone, however it ended; if the
  // server is still up it gets SIGQUIT (immediate shutdown), then the directory is removed.
  static constexpr char kScript[] =
      "trap '' INT TERM HUP\n"
      "read -r unused || :\n"
      "pid=$(sed -n 1p \"$2/postmaster.pid\" 2>/dev/null) || :\n"
      "if [ -n \"$pid\" ] && kill -QUIT \"$pid\" 2>/dev/null; then\n"
      "  i=0\n"
      "  while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
      "  kill -0 \"$pid\" 2>/dev/null && kill -KILL \"$pid\"\n"
      "fi\n"
      "rm -rf \"$1\"\n";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) Fatal("pipe2: " + ErrnoText(errno));
  SpawnOptions options;  // as the current user: root may need to remove server-owned files
  options.stdin_fd = fds[0];
  options.new_session = true;  // not killed along with the test's process group
  options.env = {"PATH=/usr/bin:/bin"};
  Spawn({"/bin/sh", "-c", kScript, "op_test_pg_watchdog", dir_, data_dir_}, options);
  close(fds[0]);
  // fds[1] stays open (and unused) for the life of this process. The watchdog is not waited for;
  // it outlives us and is reparented to init.
}

void PrivateCluster::InitDb() {
  const std::string log = dir_ + "/initdb.log";
  const int code = Run({bin_dir_ + "/initdb", "-D", data_dir_, "--auth=trust", "-U", "postgres",
                        "--encoding=UTF8", "--locale=C", "--no-sync"},
                       Options(log));
  if (code != 0) Fatal("initdb failed (exit " + std::to_string(code) + ")\n" + LogTail(log));
  std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
  conf << "\n# Added by tests/support/test_postgres.cc\ninclude 'test_postgres.conf'\n";
  if (!conf.flush()) Fatal("cannot append to " + data_dir_ + "/postgresql.conf");
}

void PrivateCluster::WriteSettings(int port) {
  const std::string path = data_dir_ + "/test_postgres.conf";
  std::ofstream conf(path, std::ios::trunc);
  // synchronous_commit stays on: with fsync off it costs nothing, and with it off a commit
  // acknowledged just before StopPrivateServer(kImmediate) is lost after the restart.
  conf << "listen_addresses = '127.0.0.1'\n"
       << "port = " << port << "\n"
       << "unix_socket_directories = '" << data_dir_ << "'\n"
       << "max_connections = 300\n"
       << "fsync = off\n"
       << "synchronous_commit = on\n"
       << "full_page_writes = off\n"
       << "logging_collector = off\n"
       << "log_line_prefix = '%m [%p] %q%u@%d '\n";
  if (!conf.flush()) Fatal("cannot write " + path);
  conf.close();
  if (identity_.drop_root) (void)!chown(path.c_str(), identity_.uid, identity_.gid);
}

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fatal("socket: " + ErrnoText(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int err = errno;
    close(fd);
    Fatal("cannot bind a TCP socket on 127.0.0.1: " + ErrnoText(err));
  }
  close(fd);
  return ntohs(address.sin_port);
}

bool PrivateCluster::PgCtlStart() {
  const std::string server_log = dir_ + "/postgres.log";
  std::error_code ec;
  const auto log_size = fs::file_size(server_log, ec);
  const std::streamoff log_offset = ec ? 0 : static_cast<std::streamoff>(log_size);
  const std::string pg_ctl_log = dir_ + "/pg_ctl.log";
  const int code = Run(
      {bin_dir_ + "/pg_ctl", "start", "-D", data_dir_, "-l", server_log, "-w", "-t", "120", "-s"},
      Options(pg_ctl_log));
  if (code == 0) {
    running_ = true;
    WaitUntilAccepting();
    return true;
  }
  const std::string new_log = ReadFile(server_log, log_offset);
  if (new_log.find("could not bind") != std::string::npos ||
      new_log.find("could not create any TCP/IP sockets") != std::string::npos) {
    return false;
  }
  Fatal("pg_ctl start failed (exit " + std::to_string(code) + ")\n" + LogTail(pg_ctl_log) +
        LogTail(server_log, log_offset));
}

void PrivateCluster::WaitUntilAccepting() {
  // pg_ctl -w already waited for the postmaster to report "ready"; this also proves TCP works.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    const char* keywords[] = {"dbname", "connect_timeout", nullptr};
    const char* values[] = {dsn_.c_str(), "5", nullptr};
    if (PQpingParams(keywords, values, /*expand_dbname=*/1) == PQPING_OK) return;
    if (std::chrono::steady_clock::now() > deadline) {
      Fatal("server started but " + dsn_ + " does not accept connections\n" +
            LogTail(dir_ + "/postgres.log"));
    }
    usleep(20 * 1000);
  }
}

void PrivateCluster::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto start_time = std::chrono::steady_clock::now();
  owner_pid_ = getpid();
  bin_dir_ = FindBinDir();
  identity_ = ServerIdentity();
  CreateDirectory();
  InitDb();
  const double init_seconds = SecondsSince(start_time);
  for (int attempt = 1;; ++attempt) {
    port_ = PickFreePort();
    dsn_ = "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
    WriteSettings(port_);
    if (PgCtlStart()) break;
    if (attempt == kStartAttempts) {
      Fatal("could not bind a free port in " + std::to_string(kStartAttempts) + " attempts\n" +
            LogTail(dir_ + "/postgres.log"));
    }
  }
  std::fprintf(stderr, "%sprivate PostgreSQL at %s (dir %s%s; initdb %.2fs, total %.2fs)\n",
               kLogPrefix, dsn_.c_str(), dir_.c_str(),
               identity_.drop_root ? (", user " + identity_.name).c_str() : "", init_seconds,
               SecondsSince(start_time));
}

void PrivateCluster::Stop(StopMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_) return;
  const std::string log = dir_ + "/pg_ctl.log";
  const int code =
      Run({bin_dir_ + "/pg_ctl", "stop", "-D", data_dir_, "-m",
           mode == StopMode::kImmediate ? "immediate" : "fast", "-w", "-t", "120", "-s"},
          Options(log));
  if (code != 0) {
    Fatal("pg_ctl stop failed (exit " + std::to_string(code) + ")\n" + LogTail(log) +
          LogTail(dir_ + "/postgres.log"));
  }
  running_ = false;
}

void PrivateCluster::Restart() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return;
  if (!PgCtlStart()) {
    Fatal("cannot restart: port " + std::to_string(port_) +
          " was taken while the server was down\n" + LogTail(dir_ + "/postgres.log"));
  }
}

void PrivateCluster::CleanUp() {
  std::lock_guard<std::mutex> lock(mu_);
  if (getpid() != owner_pid_) return;  // a fork()ed child exiting (e.g. a gtest death test)
  if (running_) {
    Run({bin_dir_ + "/pg_ctl", "stop", "-D", data_dir_, "-m", "immediate", "-w", "-t", "60", "-s"},
        Options(""));
    running_ = false;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);  // the watchdog retries when this process is gone
}

PrivateCluster* private_cluster = nullptr;  // set once by TestServerDsn(), never freed

std::string InitServer() {
  if (const char* env = std::getenv(kDsnEnv); env != nullptr && *env != '\0') {
    const std::string dsn = env;
    std::string error;
    if (Connect(dsn, &error) == nullptr) {
      Fatal(std::string(kDsnEnv) + "=" + dsn + " does not accept connections: " + error);
    }
    return dsn;
  }
  private_cluster = new PrivateCluster();
  private_cluster->Start();
  std::atexit([] { private_cluster->CleanUp(); });
  return private_cluster->dsn();
}

PrivateCluster& RequirePrivateCluster(const char* function) {
  TestServerDsn();
  if (private_cluster == nullptr) {
    Fatal(std::string(function) + " needs the private cluster, but " + kDsnEnv +
          " is set (use UsingPrivateServer() to check first)");
  }
  return *private_cluster;
}

// ---------------------------------------------------------------------------------------------
// Databases created on an external server, dropped at exit.

struct CreatedDatabases {
  std::mutex mu;
  std::vector<std::string> names;
  bool drop_registered = false;
};

CreatedDatabases& Created() {
  static CreatedDatabases* const created = new CreatedDatabases();
  return *created;
}

void DropCreatedDatabases() {
  CreatedDatabases& created = Created();
  std::lock_guard<std::mutex> lock(created.mu);
  if (created.names.empty()) return;
  std::string error;
  PgConn conn = Connect(TestServerDsn(), &error);
  for (const std::string& name : created.names) {
    // WITH (FORCE) (PostgreSQL 13+) also ends connections the test left open.
    if (conn == nullptr ||
        (!Exec(conn.get(), "DROP DATABASE IF EXISTS " + QuoteIdentifier(name) + " WITH (FORCE)",
               &error) &&
         !Exec(conn.get(), "DROP DATABASE IF EXISTS " + QuoteIdentifier(name), &error))) {
      std::fprintf(stderr, "%swarning: could not drop test database %s: %s\n", kLogPrefix,
                   name.c_str(), error.c_str());
    }
  }
  created.names.clear();
}

bool KeepDatabases() {
  const char* keep = std::getenv(kKeepDatabasesEnv);
  return keep != nullptr && *keep != '\0' && std::strcmp(keep, "0") != 0;
}

std::string SanitizePrefix(const std::string& prefix) {
  std::string name;
  for (char c : prefix) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    name += keep ? c : '_';
  }
  if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) name = "t_" + name;
  return name.substr(0, 32);
}

}  // namespace

const std::string& TestServerDsn() {
  static const std::string* const dsn = new std::string(InitServer());
  return *dsn;
}

bool UsingPrivateServer() {
  TestServerDsn();
  return private_cluster != nullptr;
}

std::string CreateTestDatabase(const std::string& name_prefix) {
  static std::atomic<int> counter{0};
  const std::string& server_dsn = TestServerDsn();
  char random_part[9];
  std::snprintf(random_part, sizeof(random_part), "%08x",
                static_cast<unsigned>(std::random_device{}()));
  const std::string name = SanitizePrefix(name_prefix) + "_" + std::to_string(getpid()) + "_" +
                           std::to_string(++counter) + "_" + random_part;

  std::string error;
  PgConn conn = Connect(server_dsn, &error);
  if (conn == nullptr) Fatal("cannot connect to " + server_dsn + ": " + error);
  if (!Exec(conn.get(), "CREATE DATABASE " + QuoteIdentifier(name) + " TEMPLATE template0",
            &error)) {
    Fatal("CREATE DATABASE " + name + " on " + server_dsn + " failed: " + error);
  }
  conn.reset();

  if (private_cluster == nullptr && !KeepDatabases()) {
    CreatedDatabases& created = Created();
    std::lock_guard<std::mutex> lock(created.mu);
    if (!created.drop_registered) {
      created.drop_registered = true;
      std::atexit(DropCreatedDatabases);
    }
    created.names.push_back(name);
  }

  const std::string dsn = WithDatabase(server_dsn, name);
  if (Connect(dsn, &error) == nullptr) Fatal("created " + name + " but cannot connect: " + error);
  return dsn;
}

void StopPrivateServer(StopMode mode) { RequirePrivateCluster("StopPrivateServer").Stop(mode); }

void StartPrivateServer() { RequirePrivateCluster("StartPrivateServer").Restart(); }

}  // namespace order_platform::testing
