#include "bench/stream_load.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/run_control.h"

namespace crabcache::bench {
namespace {

absl::StatusOr<int> Connect(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("connect ", host, ":", port, ": ", strerror(errno)));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

struct Pending {
  uint64_t key;
  bool is_get;
};

// One connection's state; owned by one worker thread.
struct Conn {
  int fd = -1;
  std::string out;
  size_t out_off = 0;
  std::string in;
  size_t in_off = 0;
  std::vector<Pending> pending;
  size_t replied = 0;
  uint64_t batch_start_ns = 0;
  bool want_write = false;
  ~Conn() {
    if (fd >= 0) close(fd);
  }
};

class Worker {
 public:
  Worker(const Protocol& protocol, const LoadOptions& options, RunControl* control, uint64_t seed)
      : protocol_(protocol), options_(options), control_(control), rng_(seed) {}

  absl::Status Open(int connections) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return absl::InternalError("epoll_create1 failed");
    for (int i = 0; i < connections; ++i) {
      auto fd = Connect(options_.host, options_.port);
      if (!fd.ok()) return fd.status();
      auto conn = std::make_unique<Conn>();
      conn->fd = *fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = conn.get();
      epoll_ctl(epfd_, EPOLL_CTL_ADD, conn->fd, &ev);
      conns_.push_back(std::move(conn));
    }
    return absl::OkStatus();
  }

  void Run() {
    for (auto& c : conns_) StartBatch(*c);
    epoll_event events[64];
    uint64_t idle_since = 0;
    while (true) {
      const int n = epoll_wait(epfd_, events, 64, 10);
      for (int i = 0; i < n; ++i) {
        Conn& c = *static_cast<Conn*>(events[i].data.ptr);
        if (events[i].events & EPOLLOUT) Flush(c);
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) OnReadable(c);
      }
      if (!control_->stopping()) continue;
      // Stopping: wait (bounded) for outstanding replies so no connection is cut mid-batch.
      if (in_flight_ == 0) break;
      if (idle_since == 0) idle_since = NowNs();
      if (NowNs() - idle_since > 5'000'000'000ull) break;
    }
  }

  LoadResult& result() { return result_; }

 private:
  void StartBatch(Conn& c) {
    if (control_->stopping()) return;
    c.pending.clear();
    c.replied = 0;
    c.out.clear();
    c.out_off = 0;
    for (int i = 0; i < options_.pipeline; ++i) {
      const uint64_t key = rng_() % options_.keys;
      const bool is_get = std::uniform_real_distribution<double>(0, 1)(rng_) < options_.get_ratio;
      key_buf_ = KeyFor(key, options_.key_size);
      if (is_get) {
        protocol_.AppendGet(key_buf_, &c.out);
      } else {
        protocol_.AppendSet(key_buf_, ValueFor(key, options_.value_size), &c.out);
      }
      c.pending.push_back({key, is_get});
    }
    ++in_flight_;
    c.batch_start_ns = NowNs();
    Flush(c);
  }

  void Flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = write(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        control_->Fail(absl::StrCat("write failed: ", strerror(errno)));
        return;
      }
    }
    const bool want = c.out_off < c.out.size();
    if (want != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
      ev.data.ptr = &c;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = want;
    }
  }

  void OnReadable(Conn& c) {
    char buf[64 * 1024];
    const ssize_t n = read(c.fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      control_->Fail(n == 0 ? "server closed a connection"
                            : absl::StrCat("read: ", strerror(errno)));
      return;
    }
    if (n < 0) return;
    c.in.append(buf, static_cast<size_t>(n));
    while (c.replied < c.pending.size()) {
      Reply reply;
      const long used = protocol_.ParseReply(std::string_view(c.in).substr(c.in_off), &reply);
      if (used < 0) return control_->Fail("malformed reply from server");
      if (used == 0) break;
      if (!Verify(c.pending[c.replied], reply)) return;
      c.in_off += static_cast<size_t>(used);
      ++c.replied;
    }
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    }
    if (c.replied == c.pending.size()) FinishBatch(c);
  }

  bool Verify(const Pending& p, const Reply& reply) {
    if (p.is_get) {
      ++gets_;
      if (reply.kind == ReplyKind::kValue) {
        if (reply.value == ValueFor(p.key, options_.value_size)) {
          ++get_hits_;
          return true;
        }
        control_->Fail(absl::StrCat("wrong value for key ", p.key));
        return false;
      }
      if (reply.kind == ReplyKind::kNull && !options_.prefill) return true;
    } else if (reply.kind == ReplyKind::kOk) {
      return true;
    }
    control_->Fail(absl::StrCat("unexpected reply to ", p.is_get ? "GET" : "SET", " of key ", p.key,
                                reply.kind == ReplyKind::kError ? ": " : "",
                                reply.kind == ReplyKind::kError ? std::string(reply.value) : ""));
    return false;
  }

  void FinishBatch(Conn& c) {
    --in_flight_;
    if (control_->measuring()) {
      const uint64_t latency = NowNs() - c.batch_start_ns;
      for (size_t i = 0; i < c.pending.size(); ++i) result_.latency_ns.Record(latency);
      result_.ops += c.pending.size();
      result_.gets += gets_;
      result_.get_hits += get_hits_;
      control_->AddMeasured(c.pending.size());
    }
    gets_ = get_hits_ = 0;
    StartBatch(c);
  }

  const Protocol& protocol_;
  const LoadOptions& options_;
  RunControl* const control_;
  std::mt19937_64 rng_;
  int epfd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::string key_buf_;
  int in_flight_ = 0;
  uint64_t gets_ = 0;
  uint64_t get_hits_ = 0;
  LoadResult result_;

 public:
  ~Worker() {
    if (epfd_ >= 0) close(epfd_);
  }
};

absl::Status Prefill(const Protocol& protocol, const LoadOptions& options) {
  auto fd = Connect(options.host, options.port);
  if (!fd.ok()) return fd.status();
  Conn c;
  c.fd = *fd;
  constexpr uint64_t kChunk = 512;
  for (uint64_t start = 0; start < options.keys; start += kChunk) {
    const uint64_t end = std::min(options.keys, start + kChunk);
    c.out.clear();
    for (uint64_t k = start; k < end; ++k) {
      protocol.AppendSet(KeyFor(k, options.key_size), ValueFor(k, options.value_size), &c.out);
    }
    for (size_t off = 0; off < c.out.size();) {
      const ssize_t n = write(c.fd, c.out.data() + off, c.out.size() - off);
      if (n <= 0) return absl::UnavailableError("prefill write failed");
      off += static_cast<size_t>(n);
    }
    for (uint64_t k = start; k < end;) {
      Reply reply;
      const long used = protocol.ParseReply(std::string_view(c.in).substr(c.in_off), &reply);
      if (used < 0) return absl::DataLossError("prefill: malformed reply");
      if (used == 0) {
        char buf[64 * 1024];
        const ssize_t n = read(c.fd, buf, sizeof(buf));
        if (n <= 0) return absl::UnavailableError("prefill: server closed the connection");
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (reply.kind != ReplyKind::kOk) {
        return absl::DataLossError(absl::StrCat("prefill: SET of key ", k, " was not OK"));
      }
      c.in_off += static_cast<size_t>(used);
      ++k;
    }
    c.in.erase(0, c.in_off);
    c.in_off = 0;
  }
  return absl::OkStatus();
}

}  // namespace

std::string KeyFor(uint64_t i, int key_size) {
  std::string key = absl::StrCat("key:", i);
  if (static_cast<int>(key.size()) < key_size) key.insert(4, key_size - key.size(), '0');
  return key;
}

std::string ValueFor(uint64_t i, int value_size) {
  std::string value = absl::StrCat(i, ":");
  value.resize(static_cast<size_t>(value_size), static_cast<char>('a' + i % 26));
  return value;
}

absl::StatusOr<LoadResult> RunStreamLoad(const Protocol& protocol, const LoadOptions& options) {
  if (options.connections < 1 || options.pipeline < 1 || options.threads < 1 || options.keys < 1) {
    return absl::InvalidArgumentError("connections, pipeline, threads and keys must be >= 1");
  }
  if (options.prefill) {
    if (absl::Status s = Prefill(protocol, options); !s.ok()) return s;
  }
  RunControl control;
  const int threads = std::min(options.threads, options.connections);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(protocol, options, &control, options.seed + t));
    const int conns = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    if (absl::Status s = workers.back()->Open(conns); !s.ok()) return s;
  }
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });
  const double seconds = control.Drive(options);
  for (auto& t : running) t.join();
  if (const std::string failure = control.failure(); !failure.empty()) {
    return absl::DataLossError(failure);
  }
  LoadResult total;
  for (auto& w : workers) {
    total.ops += w->result().ops;
    total.gets += w->result().gets;
    total.get_hits += w->result().get_hits;
    total.latency_ns.Merge(w->result().latency_ns);
  }
  total.seconds = seconds;
  return total;
}

}  // namespace crabcache::bench
