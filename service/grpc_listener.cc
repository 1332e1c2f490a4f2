#include "service/grpc_listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace crabcache::service {
namespace {

// Connections accepted per wake-up before looking at the stop request again.
constexpr int kAcceptBurst = 64;
// Out of descriptors (or kernel memory): how long to stop accepting before trying again.
constexpr int kBackoffMs = 100;

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

// A listening TCP socket bound to `address` (nullptr: the wildcard of `family`) and `port`, or
// -1 with errno set.
int BindOne(const sockaddr* address, socklen_t length, int family, bool dual_stack) {
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  const int zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) ||
      bind(fd, address, length) != 0 || listen(fd, SOMAXCONN) != 0) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// Binds like gRPC's own listener: a wildcard address ("0.0.0.0" or "::") gets the IPv6 wildcard
// with IPv4 mapped in, else the IPv4 wildcard; anything else its first resolved address.
absl::StatusOr<int> Bind(const std::string& host, int port) {
  if (host == "0.0.0.0" || host == "::") {
    sockaddr_in6 any6{};
    any6.sin6_family = AF_INET6;
    any6.sin6_addr = in6addr_any;
    any6.sin6_port = htons(static_cast<uint16_t>(port));
    int fd = BindOne(reinterpret_cast<const sockaddr*>(&any6), sizeof(any6), AF_INET6, true);
    if (fd >= 0) return fd;
    if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL) {
      return absl::UnavailableError(Errno("bind [::]"));
    }
    sockaddr_in any4{};
    any4.sin_family = AF_INET;
    any4.sin_addr.s_addr = htonl(INADDR_ANY);
    any4.sin_port = htons(static_cast<uint16_t>(port));
    fd = BindOne(reinterpret_cast<const sockaddr*>(&any4), sizeof(any4), AF_INET, false);
    if (fd >= 0) return fd;
    return absl::UnavailableError(Errno("bind 0.0.0.0"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = BindOne(a->ai_addr, a->ai_addrlen, a->ai_family, false);
    if (fd < 0) error = Errno("bind");
  }
  freeaddrinfo(found);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(host, ":", port, ": ", error));
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcListener>> GrpcListener::Listen(
    const GrpcListenerOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port out of range: ", options.port));
  }
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("max_connections must be positive");
  }
  absl::StatusOr<int> fd = Bind(options.address, options.port);
  if (!fd.ok()) return fd.status();
  const int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    const std::string error = Errno("eventfd");
    close(*fd);
    return absl::InternalError(error);
  }
  return std::unique_ptr<GrpcListener>(new GrpcListener(options, *fd, wake, BoundPort(*fd)));
}

GrpcListener::GrpcListener(const GrpcListenerOptions& options, int listen_fd, int wake_fd, int port)
    : options_(options), port_(port), wake_fd_(wake_fd), listen_fd_(listen_fd) {}

GrpcListener::~GrpcListener() {
  StopAccepting();
  close(wake_fd_);
}

void GrpcListener::Start(std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  core::MutexLock lock(&mu_);
  if (stopped_ || thread_.joinable()) return;
  acceptor_ = std::move(acceptor);
  thread_ = std::thread([this] { Run(); });
}

void GrpcListener::StopAccepting() {
  std::thread thread;
  {
    core::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    thread = std::move(thread_);
  }
  if (thread.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread.join();
  }
  close(listen_fd_);
  listen_fd_ = -1;
}

int64_t GrpcListener::open_connections() {
  core::MutexLock lock(&mu_);
  SweepLocked();
  return static_cast<int64_t>(handed_.size());
}

void GrpcListener::Run() {
  bool backing_off = false;
  for (;;) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    // While backing off, only a stop request ends the wait early.
    const int n = poll(fds, backing_off ? 1 : 2, backing_off ? kBackoffMs : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      core::Log(core::LogLevel::kError, "grpc listener: poll failed",
                {{"listener", options_.name}, {"error", std::strerror(errno)}});
      return;
    }
    if (fds[0].revents != 0) return;  // StopAccepting.
    backing_off = false;
    for (int i = 0; i < kAcceptBurst; ++i) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        Admit(fd);
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        backing_off = true;  // The connection waits in the backlog; try again shortly.
        core::Log(core::LogLevel::kWarning, "grpc listener: cannot accept, backing off",
                  {{"listener", options_.name}, {"error", std::strerror(errno)}});
      }
      break;  // EAGAIN: the backlog is empty.
    }
  }
}

void GrpcListener::Admit(int fd) {
  struct stat st {};
  bool admit = false;
  if (fstat(fd, &st) == 0) {
    core::MutexLock lock(&mu_);
    // handed_ only overestimates the open connections, so it is swept only near the cap.
    if (handed_.size() >= options_.max_connections) SweepLocked();
    admit = handed_.size() < options_.max_connections;
    if (admit) handed_.push_back({fd, st.st_dev, st.st_ino});
  }
  if (!admit) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    close(fd);
    return;
  }
  // Accepted sockets inherit TCP_NODELAY from gRPC's own listener; this one is ours.
  const int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  accepted_.fetch_add(1, std::memory_order_relaxed);
  grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters connection;
  connection.listener_fd = listen_fd_;
  connection.fd = fd;
  acceptor_->HandleNewConnection(&connection);  // gRPC owns fd from here on.
}

void GrpcListener::SweepLocked() {
  for (size_t i = 0; i < handed_.size();) {
    struct stat st {};
    const Handed& h = handed_[i];
    if (fstat(h.fd, &st) == 0 && st.st_dev == h.dev && st.st_ino == h.ino) {
      ++i;
    } else {
      handed_[i] = handed_.back();
      handed_.pop_back();
    }
  }
}

}  // namespace crabcache::service
