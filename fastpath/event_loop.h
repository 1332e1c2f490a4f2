// The engine-independent half of a fast path event-loop thread: the connections handed to it,
// what a connection does with the bytes it receives (parse, AUTH, one batch per read through
// the executor, replies encoded in request order), backpressure, timeouts, lingering closes,
// graceful shutdown and the loop's counters. Internal to fastpath::Server.
//
// The seam: an I/O engine (EpollLoop in epoll_loop.h, UringLoop in uring_loop.h) derives from
// EventLoop, owns the thread's wait for events, moves bytes between sockets and buffers, and
// implements the few virtual hooks below (where replies go, how they are sent, what the
// connection waits for, how its I/O is torn down). Everything a client can observe is decided
// here, once, for both engines.
#ifndef CRABCACHE_FASTPATH_EVENT_LOOP_H_
#define CRABCACHE_FASTPATH_EVENT_LOOP_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
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
  // REQUIRES: 0 < output_soft_limit <= output_hard_limit and
  // output_hard_limit > limits.max_value_bytes + kReplyHeaderBytes (Server::Start checks them).
  size_t output_soft_limit = 0;
  size_t output_hard_limit = 0;
  core::Millis idle_timeout_ms = 0;  // 0: off.
  core::Millis linger_ms = 0;
  size_t read_budget_bytes = 0;  // epoll: bytes read from one connection per readable event.
  size_t max_batch_commands = 0;
  const auth::TokenStore* tokens = nullptr;  // Non-null: connections must authenticate.
  int max_auth_failures = 3;
  // Shared with the acceptor, which increments it; loops decrement it when they close.
  std::atomic<int64_t>* open_connections = nullptr;
  // Refused connections (over max_connections) a loop lingers on: the acceptor increments it,
  // loops decrement it when they close one. They are not open connections.
  std::atomic<int64_t>* lingering_refusals = nullptr;
  // The ERROR message a refused connection gets.
  std::string refusal_message;
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

// Backpressure's pause mark: the unsent output at which a connection's batch stops and the
// connection pauses. It is the soft limit, lowered when needed so that one more reply (at most
// max_value_bytes + kReplyHeaderBytes) can never take the unsent output past the hard limit.
size_t PauseMark(const LoopConfig& config);

// Reads and drops what the peer sent and we never read (at most 1 MiB, never blocking on a
// non-blocking socket), so that close() sends FIN rather than RST.
void DrainSocket(int fd);

// Single-writer counter update: no locked instruction on the hot path.
inline void Add(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

enum class ConnState : uint8_t {
  kOpen,       // Serving requests.
  kLingering,  // Malformed frame answered: flush, half-close, drop input until EOF or timeout.
  kDraining,   // Server shutting down: flush, then close.
};

// One client connection; owned and touched only by its loop's thread. Engines derive from it to
// keep their own I/O state next to it.
struct Connection {
  virtual ~Connection() = default;

  int fd = -1;  // -1 once closed.
  ConnState state = ConnState::kOpen;
  bool paused = false;       // Backpressure: no reading or executing until output drains.
  bool peer_closed = false;  // End of stream read: answer what is buffered, then close.
  bool write_shut = false;   // shutdown(SHUT_WR) done (lingering).
  bool refused = false;      // Over max_connections: lingers to deliver its ERROR, not counted.
  size_t index = 0;          // Position in EventLoop::conns_.
  size_t need_hint = 0;      // Size of the partial frame held in `in`, as far as known.
  // Held only while non-empty (a partial frame or frames paused by backpressure; replies not yet
  // handed to the kernel).
  Buffer in;
  Buffer out;
  core::Millis frame_started = 0;    // When the partial frame in `in` began; 0: none.
  core::Millis stalled_since = 0;    // Paused: the last time output made progress.
  core::Millis linger_deadline = 0;  // Lingering: close at this time at the latest.
  uint64_t accounted_bytes = 0;      // Buffer bytes included in counters_.buffer_bytes.
  // I/O operations the kernel still holds (io_uring); the connection is freed only at zero,
  // because the kernel may still write into or read from its memory until then.
  int ops_in_flight = 0;
  // Authentication (only when the loop has tokens).
  bool authenticated = false;
  uint8_t auth_failures = 0;
  core::Millis accepted_at = 0;
  auth::Grant grant;  // Which token let it in, to notice its revocation.
};

// Thread-safety: Adopt, BeginShutdown and AddStats may be called from any thread; everything else
// runs on the loop's own thread (Run). Ownership: owns its wake fd, the engine's descriptors and
// every adopted connection; `config` pointers are not owned and must outlive the loop.
class EventLoop {
 public:
  explicit EventLoop(const LoopConfig& config);
  // REQUIRES: the thread was joined (or never started).
  virtual ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Creates the wake fd; engines extend it with their own set-up. Called before Start.
  virtual absl::Status Init();
  void Start();
  void Join();

  // Takes ownership of a connected, non-blocking socket; the loop serves it from its next turn.
  // A `refused` socket (over max_connections, counted in lingering_refusals, not in
  // open_connections) is only answered config.refusal_message and closed the way a malformed
  // frame's connection is: the ERROR is flushed, the write side shut, and input discarded until
  // the client closes or the linger time ends, so the client reads the ERROR rather than a reset.
  void Adopt(int fd, bool refused = false);
  // Stops reading requests, flushes the replies already computed, closes every connection once
  // flushed or at `deadline`, and ends the thread. Idempotent.
  void BeginShutdown(absl::Time deadline);

  void AddStats(ServerStats* stats) const;

 protected:
  // ---- The engine's side of the seam (all on the loop thread) ----

  // The thread body: waits for events and drives the shared machinery below until WaitMs()
  // says the loop is done, then CloseAll().
  virtual void Run() = 0;
  // A connection object for an adopted socket, registered with the engine; nullptr on failure
  // (the caller closes the fd).
  virtual Connection* NewConnection(int fd) = 0;
  // Where the next replies of `c` are encoded.
  virtual Buffer* Out(Connection* c) = 0;
  // Reply bytes of `c` not yet accepted by the socket (including any the kernel holds in flight).
  virtual size_t Unsent(const Connection* c) const = 0;
  // Sends (epoll) or queues the send of (io_uring) the pending replies of `c`. Returns false if
  // the connection was closed.
  virtual bool Flush(Connection* c) = 0;
  // Makes the engine wait for what `c` needs next (readable, writable); may close it.
  virtual void UpdateInterest(Connection* c) = 0;
  // The engine's part of closing `c`, before its fd is closed.
  virtual void CloseIo(Connection* c) = 0;
  // Buffer bytes `c` holds (for the buffer gauge).
  virtual uint64_t HeldBytes(const Connection* c) const {
    return c->in.capacity() + c->out.capacity();
  }
  // Buffer bytes the loop itself holds (scratch blocks, buffer rings, pools).
  virtual uint64_t LoopBytes() const = 0;

  // ---- Shared machinery the engines call ----

  // Milliseconds the engine may wait for events now, or -1 when the loop should end (shutting
  // down and every connection closed, or the shutdown deadline passed).
  int WaitMs() const;
  // After the wake fd fired: adopts the handed-over sockets and starts a requested shutdown.
  void TakeHandoff();
  // End of a turn: frees closed connections, runs the idle/linger sweep when it is due.
  void FinishTurn();
  // After the last turn: closes whatever is still open.
  void CloseAll();

  // Fresh input of `c` (bytes not in c->in; REQUIRES: c->state == kOpen): runs its complete
  // frames (none while paused) and keeps the rest in c->in. Returns false if `c` was closed.
  //
  // Backpressure: a batch stops at the frame whose reply takes the unsent output to the pause
  // mark (PauseMark); if a flush cannot bring it back under the mark the connection pauses, and
  // the frames that did not run stay in c->in until EndTurn sees the output drained to half the
  // mark. So a connection's unsent output stays below the hard limit whatever the client sends,
  // and a client that reads promptly is never cut off however much it asks for.
  bool OnInput(Connection* c, std::string_view fresh);
  // Runs the complete frames buffered in c->in. Returns false if `c` was closed.
  bool ProcessOwnInput(Connection* c);
  // After I/O on `c`: flushes, resumes it when its output drained, applies the state machine
  // (close after EOF, half-close when lingering, close when drained), then UpdateInterest.
  void EndTurn(Connection* c);
  void Close(Connection* c, bool graceful);
  void Account(Connection* c);
  // Closes `fd` and takes it off the count it was on (open connections or lingering refusals).
  void CloseFd(int fd, bool refused);
  // Frees closed connections the kernel no longer references.
  void Reap();

  // Immutable after construction.
  const LoopConfig config_;
  const size_t pause_at_;  // PauseMark(config_).
  const core::Millis tick_ms_;

  // Owned by the loop thread (the wake fd is created by Init before the thread starts).
  int wake_fd_ = -1;  // eventfd: Adopt and BeginShutdown write it, the engine watches it.
  std::vector<Connection*> conns_;
  std::vector<Connection*> graveyard_;  // Closed; freed once no kernel operation refers to them.
  core::Millis now_ = 0;
  bool shutting_down_ = false;

  LoopCounters counters_;

 private:
  static constexpr size_t kClosed = static_cast<size_t>(-1);

  void AddConnection(int fd, bool refused);
  void StartShutdown();
  enum class BatchRun : uint8_t {
    kRanAll,   // Every frame of the batch ran (or it was empty).
    kStopped,  // The connection paused part-way: *pos moved back to the first frame not run.
    kClosed,   // The connection was closed.
  };

  // Parses the complete frames at the front of `data`, runs them in batches and encodes the
  // replies. Returns the bytes used, or kClosed. When `c` leaves kOpen (a rejected frame), the
  // caller drops the rest of its input.
  size_t Process(Connection* c, std::string_view data);
  bool Authenticate(Connection* c, std::string_view token);
  void Reject(Connection* c, std::string_view message);
  // Runs batch_ (the frames ending at batch_ends_ in the input being processed) and empties it.
  // Whenever the executor stops at the pause mark it flushes; if the socket took enough, the
  // rest of the batch runs at once (no frame is parsed twice), else `c` pauses.
  BatchRun RunBatch(Connection* c, size_t* pos);
  void Sweep();
  void DropInput(Connection* c);

  std::thread thread_;
  std::vector<core::Command> batch_;
  std::vector<size_t> batch_ends_;  // Where each frame of batch_ ends in the input processed.
  ReplyEncoder encoder_;
  core::Millis next_sweep_ = 0;
  absl::Time shutdown_deadline_ = absl::InfiniteFuture();
  uint64_t loop_accounted_ = 0;  // LoopBytes() included in counters_.buffer_bytes.

  core::Mutex mu_;
  struct Handoff {
    int fd;
    bool refused;
  };
  std::vector<Handoff> pending_fds_ ABSL_GUARDED_BY(mu_);
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time requested_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace crabcache::fastpath::internal

#endif  // CRABCACHE_FASTPATH_EVENT_LOOP_H_
