#include "fastpath/uring_loop.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/log.h"
#include "fastpath/server.h"

namespace crabcache::fastpath {
namespace internal {
namespace {

constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;
// Provided receive buffers, shared by the loop's connections. A receive takes a whole buffer
// whatever it holds, so the count bounds how many connections can receive in one turn without
// the kernel running out (then a receive ends with ENOBUFS and is re-armed next turn); the size
// bounds one receive. 4 KiB holds a pipeline of 64 requests of the benchmark's mix.
constexpr unsigned kBufCount = 256;
constexpr unsigned kBufSize = 4096;
constexpr unsigned kBufGroup = 0;
// Output blocks up to kKeepSpare are kept for reuse, up to kMaxSpareBytes in all.
constexpr size_t kKeepSpare = 64 << 10;
constexpr size_t kMaxSpareBytes = 1 << 20;
constexpr unsigned kCqeBatch = 64;

constexpr unsigned kRingFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL |
                                IORING_SETUP_CQSIZE;

// What a completion is about: the low bits of user_data; the rest is the UringConnection.
constexpr uint64_t kTagWake = 0;  // No connection.
constexpr uint64_t kTagRecv = 1;
constexpr uint64_t kTagSend = 2;
constexpr uint64_t kTagCancel = 3;
constexpr uint64_t kTagMask = 3;

[[noreturn]] void Die(const char* what, int error) {
  std::fprintf(stderr, "crabcache fastpath: %s: %s\n", what, std::strerror(error));
  std::abort();
}

std::string Errno(const char* what, int error) { return absl::StrCat(what, ": ", strerror(error)); }

std::string SetUpError(int error) {
  const char* hint = "";
  switch (error) {
    case EINVAL:      // A flag this kernel does not know (DEFER_TASKRUN is the newest, 6.1).
    case EOPNOTSUPP:  // No IORING_FEAT_EXT_ARG (SetUpRing).
      hint = " (the io_uring loop needs Linux 6.1 or later)";
      break;
    case EPERM:   // kernel.io_uring_disabled, or a seccomp filter that answers EPERM.
    case ENOSYS:  // No io_uring in this kernel, or a seccomp filter (Docker's answers ENOSYS).
      hint = " (io_uring is disabled: seccomp profile or kernel.io_uring_disabled)";
      break;
  }
  return absl::StrCat(Errno("io_uring_setup", error), hint);
}

// Creates a disabled ring with kRingFlags; 0 or -errno.
int SetUpRing(unsigned entries, io_uring* ring) {
  io_uring_params params{};
  params.flags = kRingFlags;
  params.cq_entries = kCqEntries;
  const int r = io_uring_queue_init_params(entries, ring, &params);
  if (r < 0) return r;
  if ((params.features & IORING_FEAT_EXT_ARG) == 0) {
    io_uring_queue_exit(ring);
    return -EOPNOTSUPP;
  }
  return 0;
}

// liburing 2.3 declares io_uring_enable_rings but does not export it.
int EnableRing(io_uring* ring) {
  return io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
}

}  // namespace

struct UringConnection final : Connection {
  Buffer sending;               // Owned by the kernel while send_in_flight.
  bool recv_armed = false;      // A multishot receive is in the kernel (until its last CQE).
  bool recv_cancelled = false;  // Its cancellation is queued or done.
  bool send_in_flight = false;
  bool in_turn = false;  // Listed in turn_ for EndTurn.
};
static_assert(alignof(UringConnection) > kTagMask, "tags live in the pointer's low bits");

namespace {

uint64_t UserData(UringConnection* c, uint64_t tag) { return reinterpret_cast<uintptr_t>(c) | tag; }

}  // namespace

UringLoop::UringLoop(const LoopConfig& config)
    : EventLoop(config), ring_(std::make_unique<io_uring>()) {}

UringLoop::~UringLoop() {
  if (ring_ready_) io_uring_queue_exit(ring_.get());
  if (mapping_bytes_ != 0 && !keep_mapping_) munmap(buf_ring_, mapping_bytes_);
}

absl::Status UringLoop::Init() {
  if (absl::Status s = EventLoop::Init(); !s.ok()) return s;
  if (const int r = SetUpRing(kSqEntries, ring_.get()); r < 0) {
    return absl::UnavailableError(SetUpError(-r));
  }
  ring_ready_ = true;
  // One mapping: the ring of buffer descriptors (page-aligned, as the kernel requires), then
  // the buffers.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t ring_bytes = (kBufCount * sizeof(io_uring_buf) + page - 1) / page * page;
  mapping_bytes_ = ring_bytes + size_t{kBufCount} * kBufSize;
  void* mem =
      mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    mapping_bytes_ = 0;
    return absl::ResourceExhaustedError(Errno("mmap of the receive buffers", errno));
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  bufs_ = static_cast<char*>(mem) + ring_bytes;
  io_uring_buf_ring_init(buf_ring_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring_);
  reg.ring_entries = kBufCount;
  reg.bgid = kBufGroup;
  if (const int r = io_uring_register_buf_ring(ring_.get(), &reg, 0); r < 0) {
    return absl::UnavailableError(Errno("IORING_REGISTER_PBUF_RING", -r));
  }
  const int mask = io_uring_buf_ring_mask(kBufCount);
  for (unsigned i = 0; i < kBufCount; ++i) {
    io_uring_buf_ring_add(buf_ring_, bufs_ + size_t{i} * kBufSize, kBufSize,
                          static_cast<unsigned short>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring_, kBufCount);
  spare_.reserve(kMaxSpareBytes / 256);
  return absl::OkStatus();
}

void UringLoop::Run() {
  if (const int r = EnableRing(ring_.get()); r < 0) Die("IORING_REGISTER_ENABLE_RINGS", -r);
  for (;;) {
    const int timeout_ms = WaitMs();
    if (timeout_ms < 0) break;
    SubmitAndWait(timeout_ms);
    now_ = config_.clock->NowMs();
    HandleCompletions();
    EndTurns();
    FinishTurn();
  }
  CloseAll();
  DrainInFlight();
  for (Buffer& b : spare_) b.Release();
  spare_.clear();
  spare_bytes_ = 0;
  counters_.buffer_bytes.store(0, std::memory_order_relaxed);
}

void UringLoop::SubmitAndWait(int timeout_ms) {
  if (!wake_armed_ && !stopping_) ArmWake();
  __kernel_timespec ts{};
  ts.tv_sec = timeout_ms / 1000;
  ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
  io_uring_cqe* cqe = nullptr;
  const int r = io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, &ts, nullptr);
  // ETIME: the tick. EINTR: a signal (the process blocks its signals in this thread, but a
  // debugger or profiler may still interrupt). EBUSY/EBADR: the completion queue overflowed
  // into the kernel's list; handling the completions makes room.
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EBADR && r != -EAGAIN) {
    Die("io_uring_enter", -r);
  }
}

void UringLoop::HandleCompletions() {
  io_uring_cqe* cqes[kCqeBatch];
  for (;;) {
    const unsigned n = io_uring_peek_batch_cqe(ring_.get(), cqes, kCqeBatch);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) Dispatch(cqes[i]);
    io_uring_cq_advance(ring_.get(), n);
  }
}

void UringLoop::Dispatch(const io_uring_cqe* cqe) {
  auto* c = reinterpret_cast<UringConnection*>(cqe->user_data & ~kTagMask);
  switch (cqe->user_data & kTagMask) {
    case kTagWake:
      OnWake(cqe);
      break;
    case kTagRecv:
      OnRecv(c, cqe);
      break;
    case kTagSend:
      OnSend(c, cqe);
      break;
    case kTagCancel:
      --c->ops_in_flight;  // ENOENT or EALREADY are fine: the operation ended on its own.
      break;
  }
}

void UringLoop::EndTurns() {
  // Indexing, not iterators: nothing appends during the loop, but keep it obviously safe.
  for (size_t i = 0; i < turn_.size(); ++i) {
    UringConnection* c = turn_[i];
    c->in_turn = false;
    if (c->fd >= 0) EndTurn(c);
  }
  turn_.clear();
}

void UringLoop::OnWake(const io_uring_cqe* cqe) {
  if ((cqe->flags & IORING_CQE_F_MORE) == 0) wake_armed_ = false;
  uint64_t value;
  (void)!read(wake_fd_, &value, sizeof(value));
  TakeHandoff();
}

void UringLoop::OnRecv(UringConnection* c, const io_uring_cqe* cqe) {
  const int res = cqe->res;
  const bool has_buffer = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
  const unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
  if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
    c->recv_armed = false;
    c->recv_cancelled = false;
    --c->ops_in_flight;
  }
  if (c->fd >= 0) {
    Touch(c);
    if (res > 0) {
      Add(counters_.bytes_in, static_cast<uint64_t>(res));
      // Lingering or draining: dropped. Open: run (or keep, while paused).
      if (c->state == ConnState::kOpen && has_buffer) {
        OnInput(c, std::string_view(bufs_ + size_t{id} * kBufSize, static_cast<size_t>(res)));
      }
    } else if (res == 0) {
      c->peer_closed = true;
    } else if (res != -ENOBUFS && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
      Close(c, /*graceful=*/false);  // ECONNRESET and the like.
    }
  }
  // The bytes were parsed, executed and answered, or copied: the buffer is free.
  if (has_buffer) ReturnBuffer(id);
}

void UringLoop::OnSend(UringConnection* c, const io_uring_cqe* cqe) {
  --c->ops_in_flight;
  c->send_in_flight = false;
  const int res = cqe->res;
  if (c->fd < 0) {
    Recycle(&c->sending);
    return;
  }
  Touch(c);
  if (res > 0) {
    c->sending.Consume(static_cast<size_t>(res));
    Add(counters_.bytes_out, static_cast<uint64_t>(res));
    c->stalled_since = now_;
  } else if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ENOBUFS) {
    Close(c, /*graceful=*/false);  // EPIPE, ECONNRESET: the peer is gone.
    return;
  }
  // A short send is resumed by EndTurn's Flush; a finished one frees the block.
  if (c->sending.empty()) Recycle(&c->sending);
}

void UringLoop::Touch(UringConnection* c) {
  if (c->in_turn) return;
  c->in_turn = true;
  turn_.push_back(c);
}

Connection* UringLoop::NewConnection(int fd) {
  auto* c = new UringConnection;
  c->fd = fd;
  ArmRecv(c);
  return c;
}

Buffer* UringLoop::Out(Connection* c) {
  if (c->out.capacity() == 0 && !spare_.empty()) {
    spare_bytes_ -= spare_.back().capacity();
    c->out.Swap(spare_.back());
    spare_.pop_back();
  }
  return &c->out;
}

size_t UringLoop::Unsent(const Connection* conn) const {
  const auto* c = static_cast<const UringConnection*>(conn);
  return c->out.size() + c->sending.size();
}

bool UringLoop::Flush(Connection* conn) {
  auto* c = static_cast<UringConnection*>(conn);
  if (c->send_in_flight) return true;
  if (c->sending.empty()) {
    if (c->out.empty()) return true;
    c->sending.Swap(c->out);
  }
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_send(sqe, c->fd, c->sending.data(), c->sending.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, UserData(c, kTagSend));
  c->send_in_flight = true;
  ++c->ops_in_flight;
  return true;
}

void UringLoop::UpdateInterest(Connection* conn) {
  auto* c = static_cast<UringConnection*>(conn);
  // Writes need no interest: a queued send completes when the socket takes the bytes.
  bool want_recv = false;
  switch (c->state) {
    case ConnState::kOpen:
      want_recv = !c->paused && !c->peer_closed;
      break;
    case ConnState::kLingering:  // Discard input until EOF, even while the ERROR is unsent.
      want_recv = !c->peer_closed;
      break;
    case ConnState::kDraining:
      break;
  }
  if (want_recv && !c->recv_armed) {
    ArmRecv(c);
  } else if (!want_recv && c->recv_armed && !c->recv_cancelled) {
    Cancel(c, kTagRecv);
    c->recv_cancelled = true;
  }
  // A live connection always waits for something: a receive, or a send in flight.
  assert(c->recv_armed || c->send_in_flight);
}

void UringLoop::CloseIo(Connection* conn) {
  auto* c = static_cast<UringConnection*>(conn);
  // The fd is closed right after this; the kernel keeps the file open for the operations it
  // holds until they end, which the cancellations make prompt.
  if (c->recv_armed && !c->recv_cancelled) {
    Cancel(c, kTagRecv);
    c->recv_cancelled = true;
  }
  if (c->send_in_flight) {
    Cancel(c, kTagSend);  // `sending` is recycled when its completion arrives.
  } else {
    Recycle(&c->sending);
  }
}

uint64_t UringLoop::HeldBytes(const Connection* conn) const {
  const auto* c = static_cast<const UringConnection*>(conn);
  return c->in.capacity() + c->out.capacity() + c->sending.capacity();
}

uint64_t UringLoop::LoopBytes() const { return uint64_t{kBufCount} * kBufSize + spare_bytes_; }

io_uring_sqe* UringLoop::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe != nullptr) return sqe;
  // The submission queue is full (a turn touching more than kSqEntries operations): hand what
  // is queued to the kernel now; completions wait for the turn's io_uring_enter.
  const int r = io_uring_submit(ring_.get());
  if (r < 0 && r != -EBUSY && r != -EBADR && r != -EAGAIN) Die("io_uring_submit", -r);
  sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) Die("io_uring_get_sqe", EBUSY);
  return sqe;
}

void UringLoop::ArmWake() {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_poll_multishot(sqe, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(sqe, kTagWake);
  wake_armed_ = true;
}

void UringLoop::ArmRecv(UringConnection* c) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_recv_multishot(sqe, c->fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufGroup;
  io_uring_sqe_set_data64(sqe, UserData(c, kTagRecv));
  c->recv_armed = true;
  c->recv_cancelled = false;
  ++c->ops_in_flight;
}

void UringLoop::Cancel(UringConnection* c, uint64_t tag) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel64(sqe, UserData(c, tag), 0);
  // The cancellation refers to `c` too: `c` outlives it, so the user_data it matches can never
  // belong to a newer connection allocated at the same address.
  io_uring_sqe_set_data64(sqe, UserData(c, kTagCancel));
  ++c->ops_in_flight;
}

void UringLoop::ReturnBuffer(unsigned id) {
  io_uring_buf_ring_add(buf_ring_, bufs_ + size_t{id} * kBufSize, kBufSize,
                        static_cast<unsigned short>(id), io_uring_buf_ring_mask(kBufCount), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void UringLoop::Recycle(Buffer* buffer) {
  if (buffer->capacity() == 0) return;
  buffer->Clear();
  if (buffer->capacity() <= kKeepSpare && spare_bytes_ + buffer->capacity() <= kMaxSpareBytes) {
    spare_bytes_ += buffer->capacity();
    spare_.push_back(std::move(*buffer));
  } else {
    buffer->Release();
  }
}

void UringLoop::DrainInFlight() {
  stopping_ = true;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!graveyard_.empty() && absl::Now() < deadline) {
    SubmitAndWait(100);
    HandleCompletions();
    for (UringConnection* c : turn_) c->in_turn = false;
    turn_.clear();
    Reap();
  }
  if (!graveyard_.empty()) {
    // Never seen; if it happens, leaking is the safe choice: the kernel may still write into
    // a receive buffer or read from a send buffer.
    keep_mapping_ = true;
    core::Log(core::LogLevel::kError, "fastpath: io_uring operations did not end at shutdown",
              {{"connections", absl::StrCat(graveyard_.size())}});
  }
}

}  // namespace internal

namespace {

// The probe's provided buffer ring: the descriptor page, then two small buffers.
struct alignas(4096) ProbeBuffers {
  io_uring_buf entries[2];
  char pad[4096 - 2 * sizeof(io_uring_buf)];
  char bufs[2][64];
};

// Waits up to 100 ms for completions and hands each to `on_cqe`.
template <typename F>
absl::Status Reap(io_uring* ring, F on_cqe) {
  __kernel_timespec ts{};
  ts.tv_nsec = 100 * 1000 * 1000;
  io_uring_cqe* cqe = nullptr;
  const int r = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
  if (r < 0 && r != -ETIME && r != -EINTR) {
    return absl::UnavailableError(internal::Errno("io_uring_enter", -r));
  }
  while (io_uring_peek_cqe(ring, &cqe) == 0) {
    on_cqe(*cqe);
    io_uring_cqe_seen(ring, cqe);
  }
  return absl::OkStatus();
}

// A multishot receive into the provided buffers on one end of a socket pair and a send on the
// other: the operations the loop uses, with the flags it uses. Returns once the receive has
// ended (its buffers are free again) or reports that it did not (*receive_ended false).
absl::Status ExerciseRing(io_uring* ring, ProbeBuffers* buffers, bool* receive_ended) {
  *receive_ended = true;
  auto* br = reinterpret_cast<io_uring_buf_ring*>(buffers);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br);
  reg.ring_entries = 2;
  reg.bgid = internal::kBufGroup;
  if (const int r = io_uring_register_buf_ring(ring, &reg, 0); r < 0) {
    return absl::UnavailableError(internal::Errno("IORING_REGISTER_PBUF_RING", -r));
  }
  if (const int r = internal::EnableRing(ring); r < 0) {
    return absl::UnavailableError(internal::Errno("IORING_REGISTER_ENABLE_RINGS", -r));
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::UnavailableError(internal::Errno("socketpair", errno));
  }
  for (unsigned short i = 0; i < 2; ++i) {
    io_uring_buf_ring_add(br, buffers->bufs[i], sizeof(buffers->bufs[i]), i,
                          io_uring_buf_ring_mask(2), i);
  }
  io_uring_buf_ring_advance(br, 2);
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = internal::kBufGroup;
  io_uring_sqe_set_data64(sqe, internal::kTagRecv);
  sqe = io_uring_get_sqe(ring);
  io_uring_prep_send(sqe, sv[1], "probe", 5, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, internal::kTagSend);

  absl::Status status = absl::OkStatus();
  bool received = false, sent = false, cancelled = false;
  *receive_ended = false;
  auto on_cqe = [&](const io_uring_cqe& cqe) {
    if (cqe.user_data == internal::kTagSend) {
      if (cqe.res != 5) status = absl::UnavailableError("IORING_OP_SEND failed");
      sent = true;
    } else if (cqe.user_data == internal::kTagRecv) {
      if ((cqe.flags & IORING_CQE_F_MORE) == 0) *receive_ended = true;
      if (received) return;  // The cancellation's completion.
      received = true;
      if (cqe.res < 0) {
        status = absl::UnavailableError(internal::Errno("multishot IORING_OP_RECV", -cqe.res));
      } else if (cqe.res != 5 || (cqe.flags & IORING_CQE_F_BUFFER) == 0 ||
                 (cqe.flags & IORING_CQE_F_MORE) == 0) {
        status = absl::UnavailableError("multishot IORING_OP_RECV is not supported");
      }
    }
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (!*receive_ended && absl::Now() < deadline) {
    if (absl::Status s = Reap(ring, on_cqe); !s.ok()) {
      status.Update(s);
      break;
    }
    if (received && sent && !cancelled && !*receive_ended) {
      sqe = io_uring_get_sqe(ring);
      io_uring_prep_cancel64(sqe, internal::kTagRecv, 0);
      io_uring_sqe_set_data64(sqe, internal::kTagCancel);
      cancelled = true;
    }
  }
  close(sv[0]);
  close(sv[1]);
  if (status.ok() && !(received && sent)) {
    status = absl::UnavailableError("io_uring probe: no completion within 2 s");
  }
  return status;
}

}  // namespace

absl::Status ProbeIoUring() {
  io_uring ring;
  if (const int r = internal::SetUpRing(8, &ring); r < 0) {
    return absl::UnavailableError(internal::SetUpError(-r));
  }
  auto buffers = std::make_unique<ProbeBuffers>();
  bool receive_ended = true;
  const absl::Status status = ExerciseRing(&ring, buffers.get(), &receive_ended);
  io_uring_queue_exit(&ring);
  // A receive that did not end might still write into its buffers: leak them rather than free.
  if (!receive_ended) (void)buffers.release();
  return status;
}

}  // namespace crabcache::fastpath
