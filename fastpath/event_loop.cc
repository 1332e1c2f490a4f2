#include "fastpath/event_loop.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"

namespace crabcache::fastpath::internal {
namespace {

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

}  // namespace

void DrainSocket(int fd) {
  char sink[16 << 10];
  size_t drained = 0;
  while (drained < kDrainOnCloseBytes) {
    const ssize_t n = read(fd, sink, sizeof(sink));
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

size_t PauseMark(const LoopConfig& config) {
  const size_t largest_reply = config.limits.max_value_bytes + kReplyHeaderBytes;
  const size_t below_hard =
      config.output_hard_limit > largest_reply ? config.output_hard_limit - largest_reply : 1;
  return std::max<size_t>(1, std::min(config.output_soft_limit, below_hard));
}

EventLoop::EventLoop(const LoopConfig& config)
    : config_(config),
      pause_at_(PauseMark(config)),
      tick_ms_(config.idle_timeout_ms == 0
                   ? 1000
                   : std::clamp<core::Millis>(config.idle_timeout_ms / 4, 5, 1000)) {}

EventLoop::~EventLoop() {
  for (Connection* c : conns_) {
    if (c->fd >= 0) CloseFd(c->fd, c->refused);
    delete c;
  }
  // A connection the kernel may still refer to (only if an engine could not wait for its
  // operations to end) is leaked rather than freed under the kernel's feet.
  for (Connection* c : graveyard_) {
    if (c->ops_in_flight == 0) delete c;
  }
  {
    core::MutexLock lock(&mu_);
    for (const Handoff& h : pending_fds_) CloseFd(h.fd, h.refused);
    pending_fds_.clear();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status EventLoop::Init() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  batch_.reserve(config_.max_batch_commands);
  batch_ends_.reserve(config_.max_batch_commands);
  return absl::OkStatus();
}

void EventLoop::Start() {
  thread_ = std::thread([this] {
    now_ = config_.clock->NowMs();
    next_sweep_ = now_ + tick_ms_;
    Run();
  });
}

void EventLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void EventLoop::Adopt(int fd, bool refused) {
  {
    core::MutexLock lock(&mu_);
    pending_fds_.push_back(Handoff{fd, refused});
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

int EventLoop::WaitMs() const {
  int timeout_ms = static_cast<int>(tick_ms_);
  if (shutting_down_) {
    if (conns_.empty()) return -1;
    const absl::Duration left = shutdown_deadline_ - absl::Now();
    if (left <= absl::ZeroDuration()) return -1;
    timeout_ms = static_cast<int>(std::min<int64_t>(
        timeout_ms, absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)))));
  }
  return timeout_ms;
}

void EventLoop::TakeHandoff() {
  std::vector<Handoff> fds;
  bool shutdown;
  absl::Time deadline;
  {
    core::MutexLock lock(&mu_);
    fds.swap(pending_fds_);
    shutdown = shutdown_requested_;
    deadline = requested_deadline_;
  }
  for (const Handoff& h : fds) {
    if (shutdown || shutting_down_) {
      CloseFd(h.fd, h.refused);
    } else {
      AddConnection(h.fd, h.refused);
    }
  }
  if (shutdown && !shutting_down_) {
    shutdown_deadline_ = deadline;
    StartShutdown();
  }
}

void EventLoop::FinishTurn() {
  Reap();
  if (now_ >= next_sweep_) {
    Sweep();
    Reap();
    next_sweep_ = now_ + tick_ms_;
  }
}

void EventLoop::CloseAll() {
  // Shutdown: whatever is still open had its chance to flush.
  while (!conns_.empty()) Close(conns_.back(), /*graceful=*/false);
  Reap();
}

void EventLoop::AddConnection(int fd, bool refused) {
  Connection* c = NewConnection(fd);
  if (c == nullptr) {
    CloseFd(fd, refused);
    return;
  }
  c->accepted_at = now_;
  c->index = conns_.size();
  conns_.push_back(c);
  if (refused) {
    c->refused = true;
    Reject(c, config_.refusal_message);
    EndTurn(c);
  }
}

void EventLoop::StartShutdown() {
  shutting_down_ = true;
  for (size_t i = conns_.size(); i-- > 0;) {
    Connection* c = conns_[i];
    if (c->state == ConnState::kLingering && Unsent(c) == 0) {
      Close(c, /*graceful=*/true);
      continue;
    }
    c->state = ConnState::kDraining;
    c->paused = false;
    c->in.Release();
    if (Unsent(c) == 0) {
      Close(c, /*graceful=*/true);
    } else {
      UpdateInterest(c);
      Account(c);
    }
  }
}

bool EventLoop::OnInput(Connection* c, std::string_view fresh) {
  if (!c->in.empty()) {
    c->in.Append(fresh);
    return ProcessOwnInput(c);
  }
  const size_t used = Process(c, fresh);
  if (used == kClosed) return false;
  if (c->state != ConnState::kOpen) {
    DropInput(c);
  } else if (used < fresh.size()) {
    // Keep what the turn could not use: a partial frame, or frames held back by backpressure.
    c->in.Append(fresh.substr(used));
  }
  return true;
}

bool EventLoop::ProcessOwnInput(Connection* c) {
  const size_t used = Process(c, c->in.view());
  if (used == kClosed) return false;
  if (c->state != ConnState::kOpen) {
    DropInput(c);
  } else {
    c->in.Consume(used);
  }
  return true;
}

void EventLoop::DropInput(Connection* c) {
  c->in.Release();
  c->frame_started = 0;
  c->need_hint = 0;
}

size_t EventLoop::Process(Connection* c, std::string_view data) {
  assert(batch_.empty());  // Views of another connection's input must never run here.
  const bool auth_on = config_.tokens != nullptr;
  if (auth_on && c->authenticated && !config_.tokens->StillValid(&c->grant)) {
    Add(counters_.auth_failures[static_cast<size_t>(AuthFailure::kRevoked)], 1);
    Reject(c, kAuthRevoked);
    return 0;
  }
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
        if (RunBatch(c, &pos) == BatchRun::kClosed) return kClosed;
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
      batch_ends_.push_back(pos);
      if (batch_.size() >= config_.max_batch_commands && RunBatch(c, &pos) == BatchRun::kClosed) {
        return kClosed;
      }
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
  // The batch views `data`: run it before the caller moves or drops the input.
  const BatchRun run = RunBatch(c, &pos);
  if (run == BatchRun::kClosed) return kClosed;
  // Paused part-way through the batch: the frames from `pos` on, and whatever error follows
  // them, are looked at again once the output drains.
  if (run == BatchRun::kRanAll) {
    if (malformed) {
      Add(counters_.protocol_errors[static_cast<size_t>(bad.error)], 1);
      Reject(c, ParseErrorMessage(bad, config_.limits));
      return pos;
    }
    if (!reject.empty()) {
      Reject(c, reject);
      return pos;
    }
  }
  if (pos == data.size()) {
    c->frame_started = 0;
    c->need_hint = 0;
  } else if (!c->paused && (pos > 0 || c->frame_started == 0)) {
    c->frame_started = now_;  // A new partial frame began.
  }
  return pos;
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

// Answers `message` after the replies already encoded and closes once that is flushed
// (lingering: half-close, then discard what the client still sends). The caller drops the input.
void EventLoop::Reject(Connection* c, std::string_view message) {
  EncodeError(Out(c), message);
  c->state = ConnState::kLingering;
  c->linger_deadline = now_ + config_.linger_ms;
}

EventLoop::BatchRun EventLoop::RunBatch(Connection* c, size_t* pos) {
  BatchRun run = BatchRun::kRanAll;
  size_t done = 0;  // Commands of batch_ that ran.
  while (done < batch_.size()) {
    Buffer* out = Out(c);
    // Replies the kernel already holds count too: stop once the unsent total reaches the mark.
    const size_t elsewhere = Unsent(c) - out->size();
    encoder_.Reset(out, pause_at_ > elsewhere ? pause_at_ - elsewhere : 0);
    done += config_.executor->Execute(core::Frontend::kFastPath,
                                      absl::MakeConstSpan(batch_).subspan(done), encoder_);
    if (Unsent(c) < pause_at_) continue;
    if (!Flush(c)) {
      run = BatchRun::kClosed;
      break;
    }
    if (Unsent(c) < pause_at_) continue;  // The socket took enough: run the rest now.
    c->paused = true;
    c->stalled_since = now_;
    if (done < batch_.size()) {
      // The frames from here on wait, unexecuted, until the output drains.
      *pos = batch_ends_[done - 1];
      run = BatchRun::kStopped;
    }
    break;
  }
  // Always emptied: the commands view this connection's input, which the caller moves or frees.
  batch_.clear();
  batch_ends_.clear();
  return run;
}

void EventLoop::EndTurn(Connection* c) {
  // Flush, and resume a paused connection as soon as its output is down to half the pause mark
  // (whichever send got it there), so a paused connection always waits for its output to drain
  // with output pending, never for nothing.
  for (;;) {
    if (!Flush(c)) return;
    if (c->state != ConnState::kOpen || !c->paused || Unsent(c) > pause_at_ / 2) {
      break;
    }
    c->paused = false;
    if (c->in.empty()) break;
    if (!ProcessOwnInput(c)) return;
  }
  const bool flushed = Unsent(c) == 0;
  switch (c->state) {
    case ConnState::kOpen:
      if (c->peer_closed && flushed && !c->paused) {
        Close(c, /*graceful=*/true);
        return;
      }
      break;
    case ConnState::kLingering:
      if (flushed && c->peer_closed) {
        Close(c, /*graceful=*/false);  // The peer read our ERROR and left.
        return;
      }
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
  UpdateInterest(c);
  if (c->fd >= 0) Account(c);
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
  const uint64_t bytes = HeldBytes(c);
  const uint64_t loop = LoopBytes();
  // Per connection by delta, the loop's own blocks by value: one gauge for everything held.
  const uint64_t total = counters_.buffer_bytes.load(std::memory_order_relaxed) -
                         c->accounted_bytes + bytes - loop_accounted_ + loop;
  counters_.buffer_bytes.store(total, std::memory_order_relaxed);
  c->accounted_bytes = bytes;
  loop_accounted_ = loop;
}

void EventLoop::Close(Connection* c, bool graceful) {
  if (c->fd < 0) return;
  // Drop unread input so close() sends FIN, not RST (which could discard replies in flight).
  if (graceful) DrainSocket(c->fd);
  CloseIo(c);
  CloseFd(c->fd, c->refused);
  c->fd = -1;
  Connection* last = conns_.back();
  conns_[c->index] = last;
  last->index = c->index;
  conns_.pop_back();
  c->in.Release();
  c->out.Release();
  Account(c);
  graveyard_.push_back(c);
}

void EventLoop::CloseFd(int fd, bool refused) {
  close(fd);
  (refused ? config_.lingering_refusals : config_.open_connections)
      ->fetch_sub(1, std::memory_order_relaxed);
}

void EventLoop::Reap() {
  size_t kept = 0;
  for (Connection* c : graveyard_) {
    if (c->ops_in_flight != 0) {
      graveyard_[kept++] = c;
      continue;
    }
    Account(c);  // Whatever it held until its last operation ended.
    delete c;
  }
  graveyard_.resize(kept);
}

}  // namespace crabcache::fastpath::internal
