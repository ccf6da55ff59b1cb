#include "tests/support/answer_dropping_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace order_platform::testing {

struct AnswerDroppingProxy::Link {
  int client_fd = -1;
  int server_fd = -1;
  // Set when the client executed the armed statement: the server's next answer is dropped.
  std::atomic<bool> doomed{false};
  std::thread to_server;
  std::thread to_client;

  void Cut() const {
    shutdown(client_fd, SHUT_RDWR);
    shutdown(server_fd, SHUT_RDWR);
  }
};

namespace {

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Whether `bytes` hold a Bind message of the unnamed portal to the prepared statement `name`:
// 'B', a 4-byte length, the portal's name ("": one NUL), the statement's name, NUL.
bool BindsTo(std::string_view bytes, std::string_view name) {
  for (size_t at = bytes.find(name); at != std::string_view::npos; at = bytes.find(name, at + 1)) {
    if (at >= 6 && bytes[at - 6] == 'B' && bytes[at - 1] == '\0' &&
        at + name.size() < bytes.size() && bytes[at + name.size()] == '\0') {
      return true;
    }
  }
  return false;
}

// Whether `bytes` hold the simple query "COMMIT": 'Q', a 4-byte length, the text, NUL.
bool QueriesCommit(std::string_view bytes) {
  constexpr std::string_view kCommit("COMMIT\0", 7);
  for (size_t at = bytes.find(kCommit); at != std::string_view::npos;
       at = bytes.find(kCommit, at + 1)) {
    if (at >= 5 && bytes[at - 5] == 'Q') return true;
  }
  return false;
}

int ConnectTo(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

}  // namespace

AnswerDroppingProxy::AnswerDroppingProxy(const std::string& dsn) {
  // postgresql://[user@]host:port/database[?options]
  const size_t scheme = dsn.find("://");
  const size_t authority = scheme == std::string::npos ? std::string::npos : scheme + 3;
  const size_t path = dsn.find('/', authority);
  const size_t at = dsn.rfind('@', path);
  const size_t host_begin = (at != std::string::npos && at >= authority) ? at + 1 : authority;
  const size_t colon = dsn.rfind(':', path);
  if (authority == std::string::npos || path == std::string::npos || colon == std::string::npos ||
      colon < host_begin ||
      !absl::SimpleAtoi(dsn.substr(colon + 1, path - colon - 1), &upstream_port_)) {
    throw std::invalid_argument("AnswerDroppingProxy: expected postgresql://[user@]host:port/db");
  }
  upstream_host_ = dsn.substr(host_begin, colon - host_begin);

  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("AnswerDroppingProxy: cannot listen");
  }
  const int port = ntohs(address.sin_port);
  dsn_ = absl::StrCat(dsn.substr(0, host_begin), "127.0.0.1:", port, dsn.substr(path),
                      dsn.find('?', path) == std::string::npos ? "?" : "&",
                      "sslmode=disable&gssencmode=disable");
  acceptor_ = std::thread([this] { Accept(); });
}

AnswerDroppingProxy::~AnswerDroppingProxy() {
  stopping_ = true;
  acceptor_.join();
  close(listen_fd_);
  std::vector<std::unique_ptr<Link>> links;
  {
    absl::MutexLock lock(&mu_);
    links.swap(links_);
  }
  for (const std::unique_ptr<Link>& link : links) link->Cut();
  for (const std::unique_ptr<Link>& link : links) {
    link->to_server.join();
    link->to_client.join();
    close(link->client_fd);
    close(link->server_fd);
  }
}

void AnswerDroppingProxy::DropNextAnswerTo(const std::string& name) {
  absl::MutexLock lock(&mu_);
  armed_ = name;
}

void AnswerDroppingProxy::DropNextCommitAnswer() {
  absl::MutexLock lock(&mu_);
  commit_armed_ = true;
}

void AnswerDroppingProxy::DropAnswersAtRandom(double probability, uint64_t seed) {
  absl::MutexLock lock(&mu_);
  random_probability_ = probability;
  random_.seed(seed);
}

void AnswerDroppingProxy::StopDropping() {
  absl::MutexLock lock(&mu_);
  random_probability_ = 0;
  armed_.clear();
  commit_armed_ = false;
}

void AnswerDroppingProxy::Accept() {
  while (!stopping_) {
    pollfd waiting{listen_fd_, POLLIN, 0};
    if (poll(&waiting, 1, 100) <= 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    const int server = ConnectTo(upstream_host_, upstream_port_);
    if (server < 0) {
      close(client);
      continue;
    }
    auto link = std::make_unique<Link>();
    link->client_fd = client;
    link->server_fd = server;
    Link* raw = link.get();
    absl::MutexLock lock(&mu_);
    raw->to_server = std::thread([this, raw] { ClientToServer(raw); });
    raw->to_client = std::thread([this, raw] { ServerToClient(raw); });
    links_.push_back(std::move(link));
  }
}

void AnswerDroppingProxy::ClientToServer(Link* link) {
  char buffer[16384];
  while (true) {
    const ssize_t n = recv(link->client_fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    {
      // The client sends its next message only after the previous answer's ReadyForQuery, so
      // the answer to this one is the next thing the server sends, and starts a message.
      absl::MutexLock lock(&mu_);
      const std::string_view bytes(buffer, static_cast<size_t>(n));
      if (!armed_.empty() && BindsTo(bytes, armed_)) {
        armed_.clear();
        link->doomed = true;
      } else if (commit_armed_ && QueriesCommit(bytes)) {
        commit_armed_ = false;
        link->doomed = true;
      } else if (random_probability_ > 0 && (bytes[0] == 'B' || bytes[0] == 'Q') &&
                 std::uniform_real_distribution<double>(0, 1)(random_) < random_probability_) {
        link->doomed = true;
      }
    }
    if (!SendAll(link->server_fd, buffer, static_cast<size_t>(n))) break;
  }
  link->Cut();
}

void AnswerDroppingProxy::ServerToClient(Link* link) {
  char buffer[16384];
  std::string dropped;  // The doomed answer so far.
  while (true) {
    const ssize_t n = recv(link->server_fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    if (!link->doomed) {
      if (!SendAll(link->client_fd, buffer, static_cast<size_t>(n))) break;
      continue;
    }
    // Backend messages: a type byte, then a 4-byte big-endian length that counts itself.
    dropped.append(buffer, static_cast<size_t>(n));
    size_t at = 0;
    bool ready = false;
    while (!ready && dropped.size() - at >= 5) {
      const auto* p = reinterpret_cast<const unsigned char*>(dropped.data() + at + 1);
      const uint32_t length =
          (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
      if (dropped.size() - at < 1 + length) break;
      ready = dropped[at] == 'Z';
      at += 1 + length;
    }
    dropped.erase(0, at);
    if (ready) {  // The statement has run to its end: lose the answer with the connection.
      dropped_++;
      break;
    }
  }
  link->Cut();
}

}  // namespace order_platform::testing
