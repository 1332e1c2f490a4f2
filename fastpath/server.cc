#include "fastpath/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "fastpath/epoll_loop.h"
#include "fastpath/event_loop.h"
#include "fastpath/listen.h"
#include "fastpath/uring_loop.h"

namespace crabcache::fastpath {
namespace internal {

// Owns the listening socket and deals accepted connections round-robin to the loops.
//
// Why one acceptor rather than SO_REUSEPORT per loop: the kernel spreads SO_REUSEPORT
// connections by a hash of the 4-tuple, which leaves loops unevenly loaded with few long-lived
// connections (50 connections over 2 loops often split 30/20), a busy loop cannot hand work on,
// max_connections would need a shared count anyway, and any process of the same user could bind
// the same port and take a share of the connections. Accepting costs one eventfd write per
// connection, never anything per command.
//
// Thread-safety: Start and Stop are called by Server under its mutex; the counters may be read
// from any thread.
class Acceptor {
 public:
  // Refused connections the loops linger on at most; beyond this a refusal is answered and
  // closed at once (a reset is then possible if the client had written), so a flood of refused
  // connections cannot hold more than this many descriptors.
  static constexpr int64_t kMaxLingeringRefusals = 128;

  Acceptor(int listen_fd, size_t max_connections, std::vector<EventLoop*> loops,
           std::atomic<int64_t>* open, std::atomic<int64_t>* lingering, std::string refusal)
      : listen_fd_(listen_fd),
        max_connections_(max_connections),
        loops_(std::move(loops)),
        open_(open),
        lingering_(lingering),
        refusal_(std::move(refusal)) {}
  ~Acceptor() {
    Stop();
    if (stop_fd_ >= 0) close(stop_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  absl::Status Init() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || stop_fd_ < 0) {
      return absl::InternalError(absl::StrCat("acceptor: ", strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = stop_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) != 0 || !Watch(true)) {
      return absl::InternalError(absl::StrCat("acceptor epoll_ctl: ", strerror(errno)));
    }
    return absl::OkStatus();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Ends the thread and closes the listening socket. Idempotent.
  void Stop() {
    if (thread_.joinable()) {
      const uint64_t one = 1;
      (void)!write(stop_fd_, &one, sizeof(one));
      thread_.join();
    }
    if (listen_fd_ >= 0) {
      close(listen_fd_);
      listen_fd_ = -1;
    }
  }

  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  bool Watch(bool on) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    return epoll_ctl(epoll_fd_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listen_fd_, &ev) == 0;
  }

  void Run() {
    bool backing_off = false;
    for (;;) {
      epoll_event events[2];
      const int n = epoll_wait(epoll_fd_, events, 2, backing_off ? 100 : -1);
      if (n < 0 && errno != EINTR) {
        core::Log(core::LogLevel::kError, "fastpath acceptor: epoll_wait failed",
                  {{"error", strerror(errno)}});
        return;
      }
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == stop_fd_) return;
      }
      if (backing_off) {
        // Out of descriptors a moment ago: try again now.
        backing_off = false;
        Watch(true);
      }
      if (!AcceptAll()) {
        backing_off = true;
        Watch(false);
      }
    }
  }

  // Accepts until the backlog is empty. Returns false when out of descriptors or memory (the
  // caller stops watching the socket for a moment instead of spinning on it).
  bool AcceptAll() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        switch (errno) {
          case EINTR:
          case ECONNABORTED:
            continue;
          case EAGAIN:
            return true;
          case EMFILE:
          case ENFILE:
          case ENOBUFS:
          case ENOMEM:
            core::Log(core::LogLevel::kWarning, "fastpath: cannot accept, backing off",
                      {{"error", strerror(errno)}});
            return false;
          default:
            core::Log(core::LogLevel::kWarning, "fastpath: accept failed",
                      {{"error", strerror(errno)}});
            return true;
        }
      }
      // Only this thread increments the counts, so check-then-add cannot overshoot.
      if (open_->load(std::memory_order_relaxed) >= static_cast<int64_t>(max_connections_)) {
        Refuse(fd);
        continue;
      }
      open_->fetch_add(1, std::memory_order_relaxed);
      accepted_.fetch_add(1, std::memory_order_relaxed);
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      HandOver(fd, /*refused=*/false);
    }
  }

  // Tells the client why. A loop delivers the ERROR and closes without a reset (EventLoop::Adopt);
  // past kMaxLingeringRefusals this thread answers and closes at once, never blocking.
  void Refuse(int fd) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    if (lingering_->load(std::memory_order_relaxed) < kMaxLingeringRefusals) {
      lingering_->fetch_add(1, std::memory_order_relaxed);
      HandOver(fd, /*refused=*/true);
      return;
    }
    Buffer reply;
    EncodeError(&reply, refusal_);
    (void)!send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    DrainSocket(fd);  // What already arrived; later bytes may still draw a reset.
    close(fd);
  }

  void HandOver(int fd, bool refused) {
    loops_[next_loop_]->Adopt(fd, refused);
    next_loop_ = (next_loop_ + 1) % loops_.size();
  }

  int listen_fd_;
  const size_t max_connections_;
  const std::vector<EventLoop*> loops_;
  std::atomic<int64_t>* const open_;
  std::atomic<int64_t>* const lingering_;
  const std::string refusal_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  size_t next_loop_ = 0;  // Acceptor thread only.
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace internal

std::string_view IoEngineName(IoEngine engine) {
  switch (engine) {
    case IoEngine::kAuto:
      return "auto";
    case IoEngine::kEpoll:
      return "epoll";
    case IoEngine::kIoUring:
      return "io_uring";
  }
  return "unknown";
}

bool ParseIoEngine(std::string_view name, IoEngine* engine) {
  for (IoEngine e : {IoEngine::kAuto, IoEngine::kEpoll, IoEngine::kIoUring}) {
    if (name == IoEngineName(e)) {
      *engine = e;
      return true;
    }
  }
  return false;
}

std::string_view AuthFailureName(AuthFailure failure) {
  switch (failure) {
    case AuthFailure::kMissing:
      return "missing";
    case AuthFailure::kInvalid:
      return "invalid";
    case AuthFailure::kTimeout:
      return "timeout";
    case AuthFailure::kRevoked:
      return "revoked";
  }
  return "unknown";
}

namespace {

absl::Status Validate(const ServerOptions& o) {
  if (o.port < 0 || o.port > 65535) return absl::InvalidArgumentError("port out of range");
  if (o.threads < 0 || o.threads > 1024) {
    return absl::InvalidArgumentError("threads must be between 0 and 1024");
  }
  if (o.limits.max_key_bytes == 0 || o.limits.max_key_bytes > kMaxConfigurableBytes) {
    return absl::InvalidArgumentError("max_key_bytes must be between 1 and 512 MiB");
  }
  if (o.limits.max_value_bytes > kMaxConfigurableBytes) {
    return absl::InvalidArgumentError("max_value_bytes must be at most 512 MiB");
  }
  if (o.max_connections == 0) return absl::InvalidArgumentError("max_connections must be > 0");
  if (o.output_soft_limit == 0 || o.output_soft_limit > o.output_hard_limit) {
    return absl::InvalidArgumentError(
        "output limits must satisfy 0 < output_soft_limit <= output_hard_limit");
  }
  if (o.output_hard_limit <= o.limits.max_value_bytes + kReplyHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output_hard_limit (", o.output_hard_limit, ") must exceed max_value_bytes (",
        o.limits.max_value_bytes, ") + ", kReplyHeaderBytes,
        " (the reply to a GET of the largest value), or such a reply could never be sent"));
  }
  if (o.idle_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout must not be negative");
  }
  if (o.read_budget_bytes < 4096) {
    return absl::InvalidArgumentError("read_budget_bytes must be at least 4096");
  }
  if (o.max_batch_commands == 0) {
    return absl::InvalidArgumentError("max_batch_commands must be > 0");
  }
  if (o.max_auth_failures < 1 || o.max_auth_failures > 255) {
    return absl::InvalidArgumentError("max_auth_failures must be between 1 and 255");
  }
  if (o.io_engine != IoEngine::kAuto && o.io_engine != IoEngine::kEpoll &&
      o.io_engine != IoEngine::kIoUring) {
    return absl::InvalidArgumentError("io_engine must be auto, epoll or io_uring");
  }
  return absl::OkStatus();
}

// The loops of one engine, initialised (not started).
absl::StatusOr<std::vector<std::unique_ptr<internal::EventLoop>>> MakeLoops(
    IoEngine engine, const internal::LoopConfig& config, int threads) {
  std::vector<std::unique_ptr<internal::EventLoop>> loops;
  for (int i = 0; i < threads; ++i) {
    std::unique_ptr<internal::EventLoop> loop;
    if (engine == IoEngine::kIoUring) {
      loop = std::make_unique<internal::UringLoop>(config);
    } else {
      loop = std::make_unique<internal::EpollLoop>(config);
    }
    if (absl::Status s = loop->Init(); !s.ok()) return s;
    loops.push_back(std::move(loop));
  }
  return loops;
}

int CpusAvailable() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

Server::Server(const ServerOptions& options, int port)
    : options_(options),
      port_(port),
      open_connections_(new std::atomic<int64_t>(0)),
      lingering_refusals_(new std::atomic<int64_t>(0)) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      const core::Executor* executor) {
  if (executor == nullptr) return absl::InvalidArgumentError("executor is null");
  if (absl::Status s = Validate(options); !s.ok()) return s;
  // The engine: io_uring when asked for (or auto) and the probe passes.
  IoEngine engine = IoEngine::kEpoll;
  std::string fallback;
  if (options.io_engine != IoEngine::kEpoll) {
    const absl::Status probe =
        options.io_uring_probe != nullptr ? options.io_uring_probe() : ProbeIoUring();
    if (probe.ok()) {
      engine = IoEngine::kIoUring;
    } else if (options.io_engine == IoEngine::kIoUring) {
      return absl::FailedPreconditionError(
          absl::StrCat("io_engine io_uring is unavailable: ", probe.message()));
    } else {
      fallback = std::string(probe.message());
    }
  }
  absl::StatusOr<net::ListeningSocket> listening =
      net::ListenTcp(options.address, options.port, options.listen_backlog);
  if (!listening.ok()) {
    return absl::Status(listening.status().code(),
                        absl::StrCat("fast path: ", listening.status().message()));
  }
  const auto [listen_fd, port] = *listening;

  std::unique_ptr<Server> server(new Server(options, port));
  internal::LoopConfig config;
  config.executor = executor;
  config.clock = options.clock != nullptr ? options.clock : core::SystemClock();
  config.limits = options.limits;
  config.output_soft_limit = options.output_soft_limit;
  config.output_hard_limit = options.output_hard_limit;
  config.idle_timeout_ms =
      static_cast<core::Millis>(absl::ToInt64Milliseconds(options.idle_timeout));
  config.linger_ms = 2000;
  config.read_budget_bytes = options.read_budget_bytes;
  config.max_batch_commands = options.max_batch_commands;
  config.open_connections = server->open_connections_.get();
  config.lingering_refusals = server->lingering_refusals_.get();
  config.refusal_message =
      absl::StrCat("RESOURCE_EXHAUSTED: max_connections (", options.max_connections, ") reached");
  config.tokens = options.tokens;
  config.max_auth_failures = options.max_auth_failures;

  const int threads = options.threads > 0 ? options.threads : CpusAvailable();
  auto made = MakeLoops(engine, config, threads);
  if (!made.ok() && engine == IoEngine::kIoUring && options.io_engine == IoEngine::kAuto) {
    // The probe passed but a loop's ring could not be set up (memory, a ring limit).
    fallback = std::string(made.status().message());
    engine = IoEngine::kEpoll;
    made = MakeLoops(engine, config, threads);
  }
  if (!made.ok()) {
    close(listen_fd);
    if (engine == IoEngine::kIoUring) {
      return absl::FailedPreconditionError(
          absl::StrCat("io_engine io_uring is unavailable: ", made.status().message()));
    }
    return made.status();
  }
  server->loops_ = *std::move(made);
  server->io_engine_ = engine;
  server->fallback_reason_ = fallback;
  if (!fallback.empty()) {
    core::Log(core::LogLevel::kWarning, "fast path: io_uring is unavailable, using epoll",
              {{"reason", fallback}});
  }
  std::vector<internal::EventLoop*> loops;
  for (auto& loop : server->loops_) loops.push_back(loop.get());
  server->acceptor_ = std::make_unique<internal::Acceptor>(
      listen_fd, options.max_connections, loops, server->open_connections_.get(),
      server->lingering_refusals_.get(), config.refusal_message);
  if (absl::Status s = server->acceptor_->Init(); !s.ok()) return s;
  for (auto& loop : server->loops_) loop->Start();
  server->acceptor_->Start();
  return server;
}

Server::~Server() { Shutdown(absl::InfinitePast()); }

void Server::StopAccepting() {
  core::MutexLock lock(&mu_);
  if (stopped_accepting_) return;
  stopped_accepting_ = true;
  if (acceptor_ != nullptr) acceptor_->Stop();
}

void Server::Shutdown(absl::Time deadline) {
  core::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (!stopped_accepting_) {
    stopped_accepting_ = true;
    if (acceptor_ != nullptr) acceptor_->Stop();
  }
  for (auto& loop : loops_) loop->BeginShutdown(deadline);
  for (auto& loop : loops_) loop->Join();
}

ServerStats Server::Stats() const {
  ServerStats s;
  s.connections_open = open_connections_->load(std::memory_order_relaxed);
  if (acceptor_ != nullptr) {
    s.connections_accepted = acceptor_->accepted();
    s.connections_rejected = acceptor_->rejected();
  }
  for (const auto& loop : loops_) loop->AddStats(&s);
  return s;
}

}  // namespace crabcache::fastpath
