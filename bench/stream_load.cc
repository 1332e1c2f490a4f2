#include "bench/stream_load.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/run_control.h"
#include "fastpath/buffer.h"

namespace crabcache::bench {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxInput = 256u << 20;  // A reply larger than this is an error.
constexpr uint64_t kStallNs = 10'000'000'000ull;
constexpr uint64_t kDrainNs = 5'000'000'000ull;
constexpr size_t kPrefillBatchBytes = 1 << 20;
constexpr uint64_t kMaxPrefillBatch = 512;

struct Pending {
  uint64_t key;
  Op op;
};

// One connection's state. Owned and used by one Worker (one thread).
struct Conn {
  int fd = -1;
  fastpath::Buffer out;  // Requests not yet written.
  fastpath::Buffer in;   // Bytes read and not yet parsed.
  std::vector<Pending> pending;
  size_t replied = 0;
  uint64_t batch_start_ns = 0;
  bool want_write = false;
  // Prefill: the keys [next_key, end_key) are still to be written.
  uint64_t next_key = 0;
  uint64_t end_key = 0;

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (fd >= 0) close(fd);
  }
};

// One event loop over some connections. Not thread-safe: each Worker runs on one thread; the
// RunControl is the only state it shares.
class Worker {
 public:
  Worker(const Protocol& protocol, const KeySpace& keys, const LoadOptions& options, uint64_t seed)
      : protocol_(protocol),
        keys_(keys),
        options_(options),
        picker_(options.get_ratio),
        rng_(seed),
        key_buf_(keys.key_size(), '\0'),
        value_buf_(keys.value_size(), '\0') {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    if (epfd_ >= 0) close(epfd_);
  }

  absl::Status Open(int connections) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
    for (int i = 0; i < connections; ++i) {
      auto fd = ConnectTcp(options_.host, options_.port);
      if (!fd.ok()) return fd.status();
      auto conn = std::make_unique<Conn>();
      conn->fd = *fd;
      conn->pending.reserve(static_cast<size_t>(options_.pipeline));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = conn.get();
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, conn->fd, &ev) != 0) {
        return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
      }
      conns_.push_back(std::move(conn));
    }
    return absl::OkStatus();
  }

  // SETs keys [first, last), split over this worker's connections. Reports failures to
  // `control` and returns when every key is acknowledged or the run failed.
  void RunPrefill(uint64_t first, uint64_t last, RunControl* control) {
    control_ = control;
    prefill_ = true;
    const uint64_t per_batch = std::clamp<uint64_t>(
        kPrefillBatchBytes / (keys_.key_size() + keys_.value_size() + 32), 1, kMaxPrefillBatch);
    prefill_batch_ = per_batch;
    const uint64_t n = conns_.size();
    for (uint64_t i = 0; i < n; ++i) {
      conns_[i]->next_key = first + (last - first) * i / n;
      conns_[i]->end_key = first + (last - first) * (i + 1) / n;
    }
    Loop();
  }

  // The measured load; returns after the control's stop phase once in-flight batches drained.
  void RunLoad(RunControl* control) {
    control_ = control;
    prefill_ = false;
    Loop();
  }

  const LoadResult& result() const { return result_; }

 private:
  void Loop() {
    for (auto& c : conns_) StartBatch(*c);
    epoll_event events[64];
    last_progress_ns_ = NowNs();
    uint64_t stop_seen_ns = 0;
    while (true) {
      const int n = epoll_wait(epfd_, events, 64, 10);
      if (n < 0 && errno != EINTR) {
        return control_->Fail(absl::StrCat("epoll_wait: ", strerror(errno)));
      }
      for (int i = 0; i < n && !failed_; ++i) {
        Conn& c = *static_cast<Conn*>(events[i].data.ptr);
        if (events[i].events & EPOLLOUT) Flush(c);
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) OnReadable(c);
      }
      if (failed_) return;
      const uint64_t now = NowNs();
      if (in_flight_ == 0 && (prefill_ || control_->stopping())) return;
      if (prefill_ && control_->stopping()) return;  // Another worker failed.
      if (in_flight_ > 0 && now - last_progress_ns_ > kStallNs) {
        return control_->Fail(absl::StrCat("no reply from the server for ", kStallNs / 1e9,
                                           " s with ", in_flight_, " batches in flight"));
      }
      if (control_->stopping()) {
        if (stop_seen_ns == 0) stop_seen_ns = now;
        if (now - stop_seen_ns > kDrainNs) {
          return control_->Fail(absl::StrCat(in_flight_, " batches still unanswered ",
                                             kDrainNs / 1e9, " s after the run stopped"));
        }
      }
    }
  }

  void StartBatch(Conn& c) {
    c.pending.clear();
    c.replied = 0;
    if (prefill_) {
      const uint64_t n = std::min(prefill_batch_, c.end_key - c.next_key);
      for (uint64_t i = 0; i < n; ++i) AppendRequest(c, c.next_key++, Op::kSet);
    } else {
      if (control_->stopping()) return;
      for (int i = 0; i < options_.pipeline; ++i) {
        const uint64_t key = rng_.Below(keys_.keys());
        AppendRequest(c, key, picker_.NextIsGet(rng_) ? Op::kGet : Op::kSet);
      }
    }
    if (c.pending.empty()) return;
    ++in_flight_;
    c.batch_start_ns = NowNs();
    Flush(c);
  }

  void AppendRequest(Conn& c, uint64_t key, Op op) {
    keys_.WriteKey(key, key_buf_.data());
    if (op == Op::kGet) {
      protocol_.AppendGet(key_buf_, &c.out);
    } else {
      keys_.WriteValue(key, value_buf_.data());
      protocol_.AppendSet(key_buf_, value_buf_, &c.out);
    }
    c.pending.push_back({key, op});
  }

  void Flush(Conn& c) {
    while (!c.out.empty()) {
      const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.Consume(static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        return Fail(absl::StrCat("write to the server failed: ", strerror(errno)));
      }
    }
    const bool want = !c.out.empty();
    if (want != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
      ev.data.ptr = &c;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = want;
    }
  }

  void OnReadable(Conn& c) {
    if (c.in.size() > kMaxInput) return Fail("a reply larger than 256 MiB");
    c.in.Reserve(kReadChunk);
    const ssize_t n = recv(c.fd, c.in.tail(), c.in.tail_room(), 0);
    if (n == 0) return Fail("the server closed a connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return Fail(absl::StrCat("read from the server failed: ", strerror(errno)));
    }
    c.in.Commit(static_cast<size_t>(n));
    const uint64_t now = NowNs();
    last_progress_ns_ = now;
    const bool measuring = !prefill_ && control_->measuring();
    uint64_t answered = 0;
    while (c.replied < c.pending.size()) {
      Reply reply;
      const long used = protocol_.ParseReply(c.in.view(), &reply);
      if (used < 0) {
        return Fail(
            absl::StrCat("malformed ", std::string(protocol_.name()), " reply from the server"));
      }
      if (used == 0) break;
      const Pending& p = c.pending[c.replied];
      const Check check = CheckReply(keys_, p.op, p.key, reply);
      if (!Acceptable(check, !options_.prefill)) {
        return Fail(DescribeFailure(keys_, p.op, p.key, reply, check));
      }
      if (measuring && p.op == Op::kGet) {
        ++result_.gets;
        if (check == Check::kHit) ++result_.get_hits;
      }
      c.in.Consume(static_cast<size_t>(used));
      ++c.replied;
      ++answered;
    }
    result_.verified += answered;
    if (measuring && answered > 0) {
      result_.latency_ns.Record(now - c.batch_start_ns, answered);
      result_.ops += answered;
      control_->AddMeasured(answered);
    }
    if (c.replied < c.pending.size()) return;
    if (!c.in.empty()) return Fail("the server sent bytes nobody asked for");
    --in_flight_;
    StartBatch(c);
  }

  void Fail(std::string message) {
    failed_ = true;
    control_->Fail(std::move(message));
  }

  const Protocol& protocol_;
  const KeySpace& keys_;
  const LoadOptions& options_;
  const OpPicker picker_;
  Rng rng_;
  std::string key_buf_;
  std::string value_buf_;
  int epfd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  RunControl* control_ = nullptr;
  bool prefill_ = false;
  uint64_t prefill_batch_ = 1;
  int in_flight_ = 0;
  bool failed_ = false;
  uint64_t last_progress_ns_ = 0;
  LoadResult result_;
};

// Runs fn(worker) on one thread per worker and waits for all.
template <typename Fn>
void OnEveryWorker(std::vector<std::unique_ptr<Worker>>& workers, Fn fn) {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers.size(); ++i) threads.emplace_back([&, i] { fn(*workers[i], i); });
  fn(*workers[0], 0);
  for (auto& t : threads) t.join();
}

}  // namespace

absl::StatusOr<int> ConnectTcp(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  int error = 0;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      error = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("connect to ", host, ":", port, ": ", strerror(error)));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

absl::StatusOr<LoadResult> RunStreamLoad(const Protocol& protocol, const KeySpace& keys,
                                         const LoadOptions& options) {
  if (options.connections < 1 || options.pipeline < 1 || options.threads < 1) {
    return absl::InvalidArgumentError("connections, pipeline and threads must be >= 1");
  }
  const int threads = std::min(options.threads, options.connections);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(protocol, keys, options, options.seed + t));
    const int conns = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    if (absl::Status s = workers.back()->Open(conns); !s.ok()) return s;
  }
  LoadResult total;
  if (options.prefill || options.load_only) {
    RunControl prefill;
    const uint64_t start = NowNs();
    OnEveryWorker(workers, [&](Worker& w, size_t i) {
      w.RunPrefill(keys.keys() * i / workers.size(), keys.keys() * (i + 1) / workers.size(),
                   &prefill);
    });
    if (std::string failure = prefill.failure(); !failure.empty()) {
      return absl::DataLossError("prefill: " + failure);
    }
    total.prefill_seconds = static_cast<double>(NowNs() - start) / 1e9;
    if (options.load_only) {
      for (auto& w : workers) total.Merge(w->result());
      return total;
    }
  }
  RunControl control;
  return DriveWorkers(options, control, workers, total,
                      [&control](auto& w) { w.RunLoad(&control); });
}

}  // namespace crabcache::bench
