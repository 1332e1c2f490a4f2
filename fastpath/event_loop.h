// One fast path event-loop thread: an epoll set, the connections handed to it, and the per-turn
// read/parse/execute/encode/write cycle. Internal to fastpath::Server.
#ifndef CRABCACHE_FASTPATH_EVENT_LOOP_H_
#define CRABCACHE_FASTPATH_EVENT_LOOP_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/command.h"
#include "core/executor.h"
#include "core/mutex.h"
#include "fastpath/buffer.h"
#include "fastpath/codec.h"
#include "fastpath/server.h"

namespace crabcache::fastpath::internal {

struct LoopConfig {
  const core::Executor* executor = nullptr;
  const core::Clock* clock = nullptr;
  Limits limits;
  size_t output_soft_limit = 0;
  size_t output_hard_limit = 0;
  core::Millis idle_timeout_ms = 0;  // 0: off.
  core::Millis linger_ms = 0;
  size_t read_budget_bytes = 0;
  size_t max_batch_commands = 0;
  const auth::TokenStore* tokens = nullptr;  // Non-null: connections must authenticate.
  int max_auth_failures = 3;
  // Shared with the acceptor, which increments it; loops decrement it when they close.
  std::atomic<int64_t>* open_connections = nullptr;
};

// Counters with a single writer (the loop thread): relaxed load + store, no locked instruction;
// any thread may read them.
struct LoopCounters {
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> slow_consumer_disconnects{0};
  std::atomic<uint64_t> idle_timeout_closes{0};
  std::array<std::atomic<uint64_t>, kNumParseErrors> protocol_errors{};
  std::array<std::atomic<uint64_t>, kNumAuthFailures> auth_failures{};
  std::atomic<uint64_t> buffer_bytes{0};  // Gauge: capacity of every buffer the loop holds.
};

struct Connection;

// Thread-safety: Adopt, BeginShutdown and AddStats may be called from any thread; everything else
// runs on the loop's own thread (Run). Ownership: owns its epoll and wake fds and every adopted
// connection; `config` pointers are not owned and must outlive the loop.
class EventLoop {
 public:
  explicit EventLoop(const LoopConfig& config);
  ~EventLoop();  // REQUIRES: the thread was joined (or never started).
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  absl::Status Init();
  void Start();
  void Join();

  // Takes ownership of a connected, non-blocking socket; the loop serves it from its next turn.
  void Adopt(int fd);
  // Stops reading requests, flushes the replies already computed, closes every connection once
  // flushed or at `deadline`, and ends the thread. Idempotent.
  void BeginShutdown(absl::Time deadline);

  void AddStats(ServerStats* stats) const;

 private:
  void Run();
  void OnWake();
  void OnEvent(Connection* c, uint32_t events);
  void OnReadable(Connection* c);
  void OnWritable(Connection* c);
  void Discard(Connection* c);
  bool Process(Connection* c, Buffer* in);
  bool Authenticate(Connection* c, std::string_view token);
  void Reject(Connection* c, Buffer* in, std::string_view message);
  bool RunBatch(Connection* c);
  bool Flush(Connection* c);
  void EndTurn(Connection* c);
  void UpdateInterest(Connection* c);
  void Sweep();
  void StartShutdown();
  void AddConnection(int fd);
  void Close(Connection* c, bool graceful);
  void Account(Connection* c);
  Buffer* Out(Connection* c);
  void Reap();
  void CloseFd(int fd);

  // Immutable after construction.
  const LoopConfig config_;
  const core::Millis tick_ms_;

  // Owned by the loop thread (fds are created by Init before the thread starts).
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::vector<Connection*> conns_;
  std::vector<Connection*> graveyard_;  // Closed this turn; freed after the event batch.
  std::vector<core::Command> batch_;
  ReplyEncoder encoder_;
  Buffer scratch_in_;               // Reads land here when the connection holds no partial frame.
  Buffer scratch_out_;              // Replies land here when the connection holds no unsent output.
  uint64_t scratch_accounted_ = 0;  // Scratch capacity included in counters_.buffer_bytes.
  core::Millis now_ = 0;
  core::Millis next_sweep_ = 0;
  bool shutting_down_ = false;
  absl::Time shutdown_deadline_ = absl::InfiniteFuture();

  LoopCounters counters_;

  core::Mutex mu_;
  std::vector<int> pending_fds_ ABSL_GUARDED_BY(mu_);
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time requested_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace crabcache::fastpath::internal

#endif  // CRABCACHE_FASTPATH_EVENT_LOOP_H_
