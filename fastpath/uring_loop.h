// The io_uring I/O engine of a fast path event loop (--io_engine=io_uring). Internal to
// fastpath::Server; ProbeIoUring (server.h) says whether it can run.
//
// A turn of the loop:
//   1. one io_uring_enter submits everything the previous turn queued (the sends of every
//      connection that has replies, receives to arm, cancellations) and waits for at least one
//      completion (or the sweep tick);
//   2. every completion is handled: a receive hands its bytes to the shared connection logic
//      (event_loop.h: parse, one Executor batch per receive, replies encoded in order), a send
//      completion consumes what the socket took;
//   3. each connection touched in 2 gets EndTurn once: its replies are queued as ONE send SQE
//      (not submitted yet), backpressure and the state machine are applied.
// So at pipeline 1 a turn costs one syscall for all of its connections, where epoll costs a
// read() and a send() per connection plus an epoll_wait.
//
// Receives: one multishot IORING_OP_RECV per connection, with buffers chosen by the kernel from
// a ring of provided buffers shared by the loop's connections (kBufCount x kBufSize), so an
// idle connection holds no receive buffer. A buffer goes back to the ring as soon as its bytes
// were handled: a connection holding a partial frame (or frames paused by backpressure) copies
// the rest into its own `in` buffer, as the epoll engine does with its scratch block. Pausing a
// connection (backpressure, shutdown) cancels its receive; resuming arms a new one.
//
// Sends: at most one send in flight per connection, from `sending`, which the kernel owns until
// the completion arrives; replies computed meanwhile go to `out` and are sent next. Both buffers
// come from a small per-loop pool, so steady state allocates nothing. Short sends are resumed
// from where they stopped (no MSG_WAITALL, so the idle timeout sees a slow reader's progress).
//
// Lifetime: a connection (and its `sending` buffer) is freed only when no operation the kernel
// holds refers to it (Connection::ops_in_flight, which counts receives, sends and the
// cancellations that target them). When the loop ends it cancels everything and waits for the
// last completions before the ring and its buffers are freed.
//
// The ring uses IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (completion work runs only inside
// the loop's own io_uring_enter, never interrupting it) and is created disabled by Init (on the
// server's thread) and enabled by the loop thread, its only submitter.
#ifndef CRABCACHE_FASTPATH_URING_LOOP_H_
#define CRABCACHE_FASTPATH_URING_LOOP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "fastpath/buffer.h"
#include "fastpath/event_loop.h"

struct io_uring;
struct io_uring_buf_ring;
struct io_uring_cqe;
struct io_uring_sqe;

namespace crabcache::fastpath::internal {

struct UringConnection;

// Thread-safety and ownership: as EventLoop; also owns its ring and the provided buffers.
class UringLoop final : public EventLoop {
 public:
  explicit UringLoop(const LoopConfig& config);
  ~UringLoop() override;

  // kUnavailable if this process cannot use io_uring as the loop needs it.
  absl::Status Init() override;

 private:
  void Run() override;
  Connection* NewConnection(int fd) override;
  Buffer* Out(Connection* c) override;
  size_t Unsent(const Connection* c) const override;
  bool Flush(Connection* c) override;
  void UpdateInterest(Connection* c) override;
  void CloseIo(Connection* c) override;
  uint64_t HeldBytes(const Connection* c) const override;
  uint64_t LoopBytes() const override;

  // Submits what is queued and waits up to `timeout_ms` for a completion.
  void SubmitAndWait(int timeout_ms);
  void HandleCompletions();
  void Dispatch(const io_uring_cqe* cqe);
  void OnWake(const io_uring_cqe* cqe);
  void OnRecv(UringConnection* c, const io_uring_cqe* cqe);
  void OnSend(UringConnection* c, const io_uring_cqe* cqe);
  void EndTurns();
  // At the end of Run: waits (bounded) until the kernel holds no operation on a connection.
  void DrainInFlight();

  io_uring_sqe* GetSqe();
  void ArmWake();
  void ArmRecv(UringConnection* c);
  void Cancel(UringConnection* c, uint64_t tag);
  void ReturnBuffer(unsigned id);
  // `sending` is empty and the kernel is done with it: back to the pool (or freed).
  void Recycle(Buffer* buffer);
  void Touch(UringConnection* c);

  // Owned by the loop thread (created by Init before the thread starts).
  std::unique_ptr<io_uring> ring_;
  bool ring_ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;  // Shares one mapping with the buffers.
  char* bufs_ = nullptr;
  size_t mapping_bytes_ = 0;
  bool wake_armed_ = false;
  bool stopping_ = false;  // Run ended: no more re-arming.
  // The kernel might still write into the mapping (DrainInFlight timed out): never unmap it.
  bool keep_mapping_ = false;
  std::vector<UringConnection*> turn_;  // Connections touched by this turn's completions.
  std::vector<Buffer> spare_;           // Empty output blocks for reuse.
  uint64_t spare_bytes_ = 0;
};

}  // namespace crabcache::fastpath::internal

#endif  // CRABCACHE_FASTPATH_URING_LOOP_H_
