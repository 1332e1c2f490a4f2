#include "fastpath/epoll_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "crabcache fastpath: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

struct EpollConnection final : Connection {
  uint32_t events = 0;  // What is registered with epoll now.
};

EpollLoop::~EpollLoop() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status EpollLoop::Init() {
  if (absl::Status s = EventLoop::Init(); !s.ok()) return s;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // The wake fd is the only registration without a Connection.
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  scratch_in_.Reserve(kReadChunk);
  return absl::OkStatus();
}

void EpollLoop::Run() {
  epoll_event events[kMaxEvents];
  for (;;) {
    const int timeout_ms = WaitMs();
    if (timeout_ms < 0) break;
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    now_ = config_.clock->NowMs();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        OnWake();
      } else {
        OnEvent(static_cast<EpollConnection*>(events[i].data.ptr), events[i].events);
      }
    }
    FinishTurn();
  }
  CloseAll();
  scratch_in_.Release();
  scratch_out_.Release();
  counters_.buffer_bytes.store(0, std::memory_order_relaxed);
}

void EpollLoop::OnWake() {
  uint64_t value;
  (void)!read(wake_fd_, &value, sizeof(value));
  TakeHandoff();
}

Connection* EpollLoop::NewConnection(int fd) {
  auto* c = new EpollConnection;
  c->fd = fd;
  c->events = EPOLLIN;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    core::Log(core::LogLevel::kWarning, "fastpath: epoll_ctl add failed",
              {{"error", strerror(errno)}});
    delete c;
    return nullptr;
  }
  return c;
}

void EpollLoop::OnEvent(EpollConnection* c, uint32_t events) {
  if (c->fd < 0) return;
  if (events & EPOLLERR) {
    Close(c, /*graceful=*/false);
    return;
  }
  if (events & EPOLLOUT) {
    EndTurn(c);
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

void EpollLoop::OnReadable(Connection* c) {
  size_t budget = config_.read_budget_bytes;
  for (;;) {
    // Without a partial frame of its own, the connection reads into the loop's scratch block;
    // with one, straight into its own buffer (a large value is copied once, not twice).
    const bool own = !c->in.empty();
    Buffer* in = own ? &c->in : &scratch_in_;
    size_t room = kReadChunk;
    if (own && c->need_hint > in->size()) room = std::max(room, c->need_hint - in->size());
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
    const bool open = own ? ProcessOwnInput(c) : OnInput(c, scratch_in_.view());
    scratch_in_.Clear();
    if (!open) return;
    // A short read means the socket is drained (level-triggered epoll reports any later data).
    if (n == 0 || static_cast<size_t>(n) < room || budget == 0 || c->paused ||
        c->state != ConnState::kOpen) {
      break;
    }
  }
  EndTurn(c);
}

// One send() of the pending output; what the socket does not take moves into the connection's
// own buffer. Returns false if the connection was closed.
bool EpollLoop::Flush(Connection* c) {
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
  if (scratch_out_.capacity() > kKeepScratchOut) scratch_out_.Release();
  return true;
}

// Lingering after a malformed frame: read and drop input until the peer closes.
void EpollLoop::Discard(Connection* c) {
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

void EpollLoop::UpdateInterest(Connection* conn) {
  auto* c = static_cast<EpollConnection*>(conn);
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

void EpollLoop::CloseIo(Connection*) {
  // close() takes the fd out of the epoll set. The scratch blocks only ever hold the current
  // connection's bytes.
  scratch_in_.Clear();
  scratch_out_.Clear();
}

}  // namespace crabcache::fastpath::internal
