#include "fastpath/event_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace crabcache::fastpath::internal {
namespace {

// Reads into the scratch buffer are this large; a connection's own input buffer reserves at
// least this much (or the rest of the frame it is waiting for, within the read budget).
constexpr size_t kReadChunk = 64 << 10;
constexpr int kMaxEvents = 256;
// The loop keeps a scratch output block up to this size between turns; bigger ones (a turn that
// answered large values) go back to the allocator.
constexpr size_t kKeepScratchOut = 1 << 20;
// Unsent output left in the scratch block after a short write: copied to the connection when
// small, the whole block handed over when large.
constexpr size_t kHandOverBytes = 64 << 10;
// Bytes a graceful close reads and drops so that close() sends FIN rather than RST.
constexpr size_t kDrainOnCloseBytes = 1 << 20;

constexpr std::string_view kAuthDisabled =
    "FAILED_PRECONDITION: auth is not enabled on this server";
constexpr std::string_view kAuthRequired =
    "UNAUTHENTICATED: this server requires AUTH with a token as the first request";
constexpr std::string_view kAuthInvalid = "UNAUTHENTICATED: invalid token";
constexpr std::string_view kAuthTooMany =
    "UNAUTHENTICATED: invalid token; too many failed attempts, closing the connection";
constexpr std::string_view kAuthRevoked =
    "UNAUTHENTICATED: the token of this connection was revoked; reconnect with a valid token";
static_assert(kMaxTokenBytes >= auth::kMaxTokenBytes, "the parser must admit every valid token");

// Single-writer counter update: no locked instruction on the hot path.
void Add(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "crabcache fastpath: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

enum class ConnState : uint8_t {
  kOpen,       // Serving requests.
  kLingering,  // Malformed frame answered: flush, half-close, drop input until EOF or timeout.
  kDraining,   // Server shutting down: flush, then close.
};

// One client connection; owned and touched only by its loop's thread.
struct Connection {
  int fd = -1;          // -1 once closed.
  uint32_t events = 0;  // What is registered with epoll now.
  ConnState state = ConnState::kOpen;
  bool paused = false;       // Backpressure: no reading or executing until output drains.
  bool peer_closed = false;  // Read returned 0: answer what is buffered, then close.
  bool write_shut = false;   // shutdown(SHUT_WR) done (lingering).
  size_t index = 0;          // Position in EventLoop::conns_.
  size_t need_hint = 0;      // Size of the partial frame held in `in`, as far as known.
  // Held only while non-empty (a partial frame or frames paused by backpressure; unsent replies).
  Buffer in;
  Buffer out;
  core::Millis frame_started = 0;    // When the partial frame in `in` began; 0: none.
  core::Millis stalled_since = 0;    // Paused: the last time output made progress.
  core::Millis linger_deadline = 0;  // Lingering: close at this time at the latest.
  uint64_t accounted_bytes = 0;      // Buffer capacity included in counters_.buffer_bytes.
  // Authentication (only when the loop has tokens).
  bool authenticated = false;
  uint8_t auth_failures = 0;
  core::Millis accepted_at = 0;
  auth::Grant grant;  // Which token let it in, to notice its revocation.
};

EventLoop::EventLoop(const LoopConfig& config)
    : config_(config),
      tick_ms_(config.idle_timeout_ms == 0
                   ? 1000
                   : std::clamp<core::Millis>(config.idle_timeout_ms / 4, 5, 1000)) {}

EventLoop::~EventLoop() {
  for (Connection* c : conns_) {
    if (c->fd >= 0) CloseFd(c->fd);
    delete c;
  }
  Reap();
  {
    core::MutexLock lock(&mu_);
    for (int fd : pending_fds_) CloseFd(fd);
    pending_fds_.clear();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status EventLoop::Init() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // The wake fd is the only registration without a Connection.
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  scratch_in_.Reserve(kReadChunk);
  batch_.reserve(config_.max_batch_commands);
  return absl::OkStatus();
}

void EventLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void EventLoop::Adopt(int fd) {
  {
    core::MutexLock lock(&mu_);
    pending_fds_.push_back(fd);
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void EventLoop::BeginShutdown(absl::Time deadline) {
  {
    core::MutexLock lock(&mu_);
    if (shutdown_requested_) return;
    shutdown_requested_ = true;
    requested_deadline_ = deadline;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void EventLoop::AddStats(ServerStats* s) const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  s->bytes_in += counters_.bytes_in.load(kRelaxed);
  s->bytes_out += counters_.bytes_out.load(kRelaxed);
  s->slow_consumer_disconnects += counters_.slow_consumer_disconnects.load(kRelaxed);
  s->idle_timeout_closes += counters_.idle_timeout_closes.load(kRelaxed);
  for (size_t i = 0; i < kNumParseErrors; ++i) {
    s->protocol_errors[i] += counters_.protocol_errors[i].load(kRelaxed);
  }
  for (size_t i = 0; i < kNumAuthFailures; ++i) {
    s->auth_failures[i] += counters_.auth_failures[i].load(kRelaxed);
  }
  s->buffer_bytes += counters_.buffer_bytes.load(kRelaxed);
}

void EventLoop::Run() {
  epoll_event events[kMaxEvents];
  now_ = config_.clock->NowMs();
  next_sweep_ = now_ + tick_ms_;
  for (;;) {
    int timeout_ms = static_cast<int>(tick_ms_);
    if (shutting_down_) {
      if (conns_.empty()) break;
      const absl::Duration left = shutdown_deadline_ - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      timeout_ms = std::min<int64_t>(
          timeout_ms, absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    }
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    now_ = config_.clock->NowMs();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        OnWake();
      } else {
        OnEvent(static_cast<Connection*>(events[i].data.ptr), events[i].events);
      }
    }
    Reap();
    if (now_ >= next_sweep_) {
      Sweep();
      Reap();
      next_sweep_ = now_ + tick_ms_;
    }
  }
  // Shutdown: whatever is still open had its chance to flush.
  while (!conns_.empty()) Close(conns_.back(), /*graceful=*/false);
  Reap();
  scratch_in_.Release();
  scratch_out_.Release();
  counters_.buffer_bytes.store(0, std::memory_order_relaxed);
}

void EventLoop::OnWake() {
  uint64_t value;
  (void)!read(wake_fd_, &value, sizeof(value));
  std::vector<int> fds;
  bool shutdown;
  absl::Time deadline;
  {
    core::MutexLock lock(&mu_);
    fds.swap(pending_fds_);
    shutdown = shutdown_requested_;
    deadline = requested_deadline_;
  }
  for (int fd : fds) {
    if (shutdown || shutting_down_) {
      CloseFd(fd);
    } else {
      AddConnection(fd);
    }
  }
  if (shutdown && !shutting_down_) {
    shutdown_deadline_ = deadline;
    StartShutdown();
  }
}

void EventLoop::AddConnection(int fd) {
  auto* c = new Connection;
  c->fd = fd;
  c->events = EPOLLIN;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    core::Log(core::LogLevel::kWarning, "fastpath: epoll_ctl add failed",
              {{"error", strerror(errno)}});
    CloseFd(fd);
    delete c;
    return;
  }
  c->accepted_at = now_;
  c->index = conns_.size();
  conns_.push_back(c);
}

void EventLoop::StartShutdown() {
  shutting_down_ = true;
  for (size_t i = conns_.size(); i-- > 0;) {
    Connection* c = conns_[i];
    if (c->state == ConnState::kLingering && c->out.empty()) {
      Close(c, /*graceful=*/true);
      continue;
    }
    c->state = ConnState::kDraining;
    c->paused = false;
    c->in.Release();
    if (c->out.empty()) {
      Close(c, /*graceful=*/true);
    } else {
      UpdateInterest(c);
      Account(c);
    }
  }
}

void EventLoop::OnEvent(Connection* c, uint32_t events) {
  if (c->fd < 0) return;
  if (events & EPOLLERR) {
    Close(c, /*graceful=*/false);
    return;
  }
  if (events & EPOLLOUT) {
    OnWritable(c);
    if (c->fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLHUP)) {
    if (c->state == ConnState::kOpen && !c->paused && !c->peer_closed) {
      OnReadable(c);
    } else if (c->state == ConnState::kLingering) {
      Discard(c);
    } else if (events & EPOLLHUP) {
      // Both directions are gone: nothing we hold can be delivered any more.
      Close(c, /*graceful=*/false);
    }
  }
}

void EventLoop::OnReadable(Connection* c) {
  size_t budget = config_.read_budget_bytes;
  for (;;) {
    // Without a partial frame of its own, the connection reads into the loop's scratch block.
    Buffer* in = c->in.empty() ? &scratch_in_ : &c->in;
    size_t room = kReadChunk;
    if (in == &c->in && c->need_hint > in->size()) {
      room = std::max(room, c->need_hint - in->size());
    }
    room = std::min(room, budget);
    char* dst = in->Reserve(room);
    const ssize_t n = read(c->fd, dst, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c, /*graceful=*/false);
      return;
    }
    if (n == 0) {
      c->peer_closed = true;
    } else {
      in->Commit(static_cast<size_t>(n));
      Add(counters_.bytes_in, static_cast<uint64_t>(n));
      budget -= static_cast<size_t>(n);
    }
    if (!Process(c, in)) return;
    // Keep what the turn could not use: a partial frame, or frames held back by backpressure.
    if (in == &scratch_in_ && !scratch_in_.empty()) {
      c->in.Append(scratch_in_.view());
      scratch_in_.Clear();
    }
    // A short read means the socket is drained (level-triggered epoll reports any later data).
    if (n == 0 || static_cast<size_t>(n) < room || budget == 0 || c->paused ||
        c->state != ConnState::kOpen) {
      break;
    }
  }
  EndTurn(c);
}

// Parses every complete frame of `in`, runs them in batches, and encodes the replies. Returns
// false if the connection was closed.
bool EventLoop::Process(Connection* c, Buffer* in) {
  const bool auth_on = config_.tokens != nullptr;
  if (auth_on && c->authenticated && !config_.tokens->StillValid(&c->grant)) {
    Add(counters_.auth_failures[static_cast<size_t>(AuthFailure::kRevoked)], 1);
    Reject(c, in, kAuthRevoked);
    return true;
  }
  const std::string_view data = in->view();
  size_t pos = 0;
  bool malformed = false;
  ParseResult bad;
  std::string_view reject;  // Non-empty: answer this, then close.
  while (!c->paused) {
    // Before AUTH, anything else is refused from its first byte: nothing a stranger sends is
    // buffered beyond one AUTH frame.
    if (auth_on && !c->authenticated && pos < data.size() &&
        static_cast<uint8_t>(data[pos]) != static_cast<uint8_t>(Opcode::kAuth)) {
      Add(counters_.auth_failures[static_cast<size_t>(AuthFailure::kMissing)], 1);
      reject = kAuthRequired;
      break;
    }
    ParseResult r = Parse(data.substr(pos), config_.limits);
    if (r.status == ParseResult::Status::kFrame) {
      if (r.request.op == Opcode::kAuth) {
        // Replies stay in request order: run what precedes the AUTH first.
        if (!RunBatch(c)) return false;
        if (c->paused) break;
        pos += r.consumed;
        if (!auth_on) {
          EncodeError(Out(c), kAuthDisabled);
        } else if (!Authenticate(c, r.request.token)) {
          reject = kAuthTooMany;
          break;
        }
        continue;
      }
      batch_.push_back(r.request.command);
      pos += r.consumed;
      if (batch_.size() >= config_.max_batch_commands && !RunBatch(c)) return false;
      continue;
    }
    if (r.status == ParseResult::Status::kNeedMore) {
      c->need_hint = r.needed;
      break;
    }
    malformed = true;
    bad = r;
    break;
  }
  // The batch views `in`: run it before `in` changes.
  if (!RunBatch(c)) return false;
  if (malformed) {
    Add(counters_.protocol_errors[static_cast<size_t>(bad.error)], 1);
    Reject(c, in, ParseErrorMessage(bad, config_.limits));
    return true;
  }
  if (!reject.empty()) {
    Reject(c, in, reject);
    return true;
  }
  in->Consume(pos);
  if (in->empty()) {
    c->frame_started = 0;
    c->need_hint = 0;
  } else if (!c->paused && (pos > 0 || c->frame_started == 0)) {
    c->frame_started = now_;  // A new partial frame began.
  }
  return true;
}

// Checks an AUTH token and answers it (OK or ERROR). Returns false when this failure used up the
// connection's allowance: the caller answers kAuthTooMany instead and closes.
bool EventLoop::Authenticate(Connection* c, std::string_view token) {
  auth::Grant grant;
  if (config_.tokens->Check(token, &grant)) {
    c->authenticated = true;
    c->grant = grant;
    EncodeOk(Out(c));
    return true;
  }
  Add(counters_.auth_failures[static_cast<size_t>(AuthFailure::kInvalid)], 1);
  if (++c->auth_failures >= config_.max_auth_failures) return false;
  EncodeError(Out(c), kAuthInvalid);
  return true;
}

// Answers `message` after the replies already encoded, drops the rest of the input, and closes
// once that is flushed (lingering: half-close, then discard what the client still sends).
void EventLoop::Reject(Connection* c, Buffer* in, std::string_view message) {
  EncodeError(Out(c), message);
  in->Clear();
  c->in.Release();
  c->state = ConnState::kLingering;
  c->linger_deadline = now_ + config_.linger_ms;
  c->frame_started = 0;
  c->need_hint = 0;
}

bool EventLoop::RunBatch(Connection* c) {
  if (batch_.empty()) return true;
  Buffer* out = Out(c);
  encoder_.Reset(out, config_.output_hard_limit);
  config_.executor->Execute(core::Frontend::kFastPath, batch_, encoder_);
  batch_.clear();
  if (encoder_.overflowed()) {
    Add(counters_.slow_consumer_disconnects, 1);
    Close(c, /*graceful=*/false);
    return false;
  }
  if (out->size() >= config_.output_soft_limit) {
    if (!Flush(c)) return false;
    if (Out(c)->size() >= config_.output_soft_limit) {
      c->paused = true;
      c->stalled_since = now_;
    }
  }
  return true;
}

Buffer* EventLoop::Out(Connection* c) { return c->out.empty() ? &scratch_out_ : &c->out; }

// One send() of the pending output; what the socket does not take moves into the connection's
// own buffer. Returns false if the connection was closed.
bool EventLoop::Flush(Connection* c) {
  Buffer* out = Out(c);
  if (out->empty()) return true;
  ssize_t n;
  do {
    n = send(c->fd, out->data(), out->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Close(c, /*graceful=*/false);
      return false;
    }
    n = 0;
  }
  if (n > 0) {
    out->Consume(static_cast<size_t>(n));
    Add(counters_.bytes_out, static_cast<uint64_t>(n));
    c->stalled_since = now_;
  }
  if (out == &scratch_out_ && !scratch_out_.empty()) {
    if (scratch_out_.size() >= kHandOverBytes) {
      c->out.Swap(scratch_out_);
    } else {
      c->out.Append(scratch_out_.view());
    }
    scratch_out_.Clear();
  }
  if (c->out.empty() && c->out.capacity() != 0) c->out.Release();
  return true;
}

void EventLoop::EndTurn(Connection* c) {
  // Flush, and resume a paused connection as soon as its output is down to half the soft limit
  // (whichever send got it there), so a paused connection always waits for EPOLLOUT with
  // output pending, never for nothing.
  for (;;) {
    if (!Flush(c)) return;
    if (c->state != ConnState::kOpen || !c->paused ||
        c->out.size() > config_.output_soft_limit / 2) {
      break;
    }
    c->paused = false;
    if (c->in.empty()) break;
    if (!Process(c, &c->in)) return;
  }
  const bool flushed = c->out.empty();
  switch (c->state) {
    case ConnState::kOpen:
      if (c->peer_closed && flushed && !c->paused) {
        Close(c, /*graceful=*/true);
        return;
      }
      break;
    case ConnState::kLingering:
      if (flushed && !c->write_shut) {
        shutdown(c->fd, SHUT_WR);
        c->write_shut = true;
      }
      break;
    case ConnState::kDraining:
      if (flushed) {
        Close(c, /*graceful=*/true);
        return;
      }
      break;
  }
  if (c->in.empty() && c->in.capacity() != 0) c->in.Release();
  if (scratch_out_.capacity() > kKeepScratchOut) scratch_out_.Release();
  UpdateInterest(c);
  Account(c);
}

void EventLoop::OnWritable(Connection* c) { EndTurn(c); }

// Lingering after a malformed frame: read and drop input until the peer closes.
void EventLoop::Discard(Connection* c) {
  for (int i = 0; i < 4; ++i) {
    const ssize_t n = read(c->fd, scratch_in_.Reserve(kReadChunk), kReadChunk);
    if (n > 0) {
      Add(counters_.bytes_in, static_cast<uint64_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c, /*graceful=*/false);  // EOF (the peer read our ERROR and left) or an error.
    return;
  }
  EndTurn(c);
}

void EventLoop::UpdateInterest(Connection* c) {
  uint32_t want = 0;
  switch (c->state) {
    case ConnState::kOpen:
      if (!c->paused && !c->peer_closed) want |= EPOLLIN;
      if (!c->out.empty()) want |= EPOLLOUT;
      break;
    case ConnState::kLingering:
      want = c->out.empty() ? EPOLLIN : EPOLLOUT;
      break;
    case ConnState::kDraining:
      want = EPOLLOUT;
      break;
  }
  // A live connection always waits for something; "nothing" would strand it.
  assert(want != 0);
  if (want == c->events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = c;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
    Close(c, /*graceful=*/false);
    return;
  }
  c->events = want;
}

void EventLoop::Sweep() {
  const core::Millis idle = config_.idle_timeout_ms;
  auto older_than = [this](core::Millis since, core::Millis age) {
    return now_ >= since && now_ - since >= age;
  };
  for (size_t i = conns_.size(); i-- > 0;) {
    Connection* c = conns_[i];
    if (c->state == ConnState::kLingering) {
      if (now_ >= c->linger_deadline) Close(c, /*graceful=*/false);
      continue;
    }
    if (idle == 0 || c->state != ConnState::kOpen) continue;
    if (config_.tokens != nullptr && !c->authenticated && older_than(c->accepted_at, idle)) {
      Add(counters_.auth_failures[static_cast<size_t>(AuthFailure::kTimeout)], 1);
      Close(c, /*graceful=*/false);
    } else if (c->paused) {
      if (older_than(c->stalled_since, idle)) {
        Add(counters_.slow_consumer_disconnects, 1);
        Close(c, /*graceful=*/false);
      }
    } else if (c->frame_started != 0 && older_than(c->frame_started, idle)) {
      Add(counters_.idle_timeout_closes, 1);
      Close(c, /*graceful=*/false);
    }
  }
}

void EventLoop::Account(Connection* c) {
  const uint64_t bytes = c->in.capacity() + c->out.capacity();
  const uint64_t scratch = scratch_in_.capacity() + scratch_out_.capacity();
  // Per connection by delta, the scratch blocks by value: one gauge for everything held.
  const uint64_t total = counters_.buffer_bytes.load(std::memory_order_relaxed) -
                         c->accounted_bytes + bytes - scratch_accounted_ + scratch;
  counters_.buffer_bytes.store(total, std::memory_order_relaxed);
  c->accounted_bytes = bytes;
  scratch_accounted_ = scratch;
}

void EventLoop::Close(Connection* c, bool graceful) {
  if (c->fd < 0) return;
  if (graceful) {
    // Drop unread input so close() sends FIN, not RST (which could discard replies in flight).
    size_t drained = 0;
    while (drained < kDrainOnCloseBytes) {
      const ssize_t n = read(c->fd, scratch_in_.Reserve(kReadChunk), kReadChunk);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  }
  CloseFd(c->fd);
  c->fd = -1;
  Connection* last = conns_.back();
  conns_[c->index] = last;
  last->index = c->index;
  conns_.pop_back();
  c->in.Release();
  c->out.Release();
  // Scratch blocks only ever hold the current connection's bytes.
  scratch_in_.Clear();
  scratch_out_.Clear();
  Account(c);
  graveyard_.push_back(c);
}

void EventLoop::CloseFd(int fd) {
  close(fd);
  config_.open_connections->fetch_sub(1, std::memory_order_relaxed);
}

void EventLoop::Reap() {
  for (Connection* c : graveyard_) delete c;
  graveyard_.clear();
}

}  // namespace crabcache::fastpath::internal
