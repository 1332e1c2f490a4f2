// The epoll I/O engine of a fast path event loop (the default; see uring_loop.h for the other).
// Internal to fastpath::Server.
//
// One epoll set per loop, level-triggered. On a readable event the loop reads until the socket
// is drained or read_budget_bytes were read, handing each read to the shared connection logic
// (event_loop.h), then writes the replies with one send(); what the socket does not take waits
// for EPOLLOUT. Per request at pipeline 1 that is one read() and one send() plus a share of
// epoll_wait.
//
// Steady state allocates nothing: reads land in a per-loop scratch block and replies are
// encoded into a per-loop scratch block; a connection only gets buffers of its own while it
// holds a partial frame or unsent replies, and gives them back once they are empty.
#ifndef CRABCACHE_FASTPATH_EPOLL_LOOP_H_
#define CRABCACHE_FASTPATH_EPOLL_LOOP_H_

#include <cstdint>

#include "absl/status/status.h"
#include "fastpath/buffer.h"
#include "fastpath/event_loop.h"

namespace crabcache::fastpath::internal {

struct EpollConnection;

// Thread-safety and ownership: as EventLoop; also owns its epoll fd.
class EpollLoop final : public EventLoop {
 public:
  explicit EpollLoop(const LoopConfig& config) : EventLoop(config) {}
  ~EpollLoop() override;

  absl::Status Init() override;

 private:
  void Run() override;
  Connection* NewConnection(int fd) override;
  Buffer* Out(Connection* c) override { return c->out.empty() ? &scratch_out_ : &c->out; }
  size_t Unsent(const Connection* c) const override {
    return c->out.empty() ? scratch_out_.size() : c->out.size();
  }
  bool Flush(Connection* c) override;
  void UpdateInterest(Connection* c) override;
  void CloseIo(Connection* c) override;
  uint64_t LoopBytes() const override { return scratch_in_.capacity() + scratch_out_.capacity(); }

  void OnWake();
  void OnEvent(EpollConnection* c, uint32_t events);
  void OnReadable(Connection* c);
  void Discard(Connection* c);

  // Owned by the loop thread (created by Init before the thread starts).
  int epoll_fd_ = -1;
  Buffer scratch_in_;   // Reads land here when the connection holds no partial frame.
  Buffer scratch_out_;  // Replies land here when the connection holds no unsent output.
};

}  // namespace crabcache::fastpath::internal

#endif  // CRABCACHE_FASTPATH_EPOLL_LOOP_H_
