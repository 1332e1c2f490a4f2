#include "service/grpc_listener.h"

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
#include "fastpath/listen.h"

namespace crabcache::service {
namespace {

// Connections accepted per wake-up before looking at the stop request again.
constexpr int kAcceptBurst = 64;
// Out of descriptors (or kernel memory): how long to stop accepting before trying again.
constexpr int kBackoffMs = 100;

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcListener>> GrpcListener::Listen(
    const GrpcListenerOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port out of range: ", options.port));
  }
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("max_connections must be positive");
  }
  absl::StatusOr<net::ListeningSocket> listening =
      net::ListenTcp(options.address, options.port, SOMAXCONN);
  if (!listening.ok()) {
    return absl::Status(listening.status().code(),
                        absl::StrCat("grpc: ", listening.status().message()));
  }
  const int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    const std::string error = Errno("eventfd");
    close(listening->fd);
    return absl::InternalError(error);
  }
  return std::unique_ptr<GrpcListener>(
      new GrpcListener(options, listening->fd, wake, listening->port));
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
