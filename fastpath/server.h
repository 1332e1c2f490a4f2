// The fast path listener: protocol v1 over TCP, served by N event loops (epoll or io_uring).
//
// How a connection is served (docs/protocol.md has the client's view):
//   - One acceptor thread owns the listening socket and deals accepted sockets round-robin to
//     the loops (non-blocking, TCP_NODELAY). Beyond max_connections a socket is accepted,
//     counted as rejected (not as open), and handed to a loop that sends it one ERROR frame and
//     closes it as it closes a malformed frame's connection (see below), so the client reads the
//     ERROR rather than a reset even if it wrote first (at most 128 such refusals linger at a
//     time; beyond that the acceptor answers and closes at once).
//   - For every read a loop parses every complete frame, runs them as one batch through
//     core::Executor::Execute(kFastPath, ...) (at most max_batch_commands per call), encodes every
//     reply into the output buffer and sends it in one piece. Partial frames stay buffered.
//     Steady state allocates nothing per request. How bytes move is the I/O engine's business
//     (options.io_engine): epoll (epoll_loop.h: read until drained or read_budget_bytes, one
//     send()) or io_uring (uring_loop.h: multishot receives into a ring of provided buffers, the
//     sends of every connection submitted together with one io_uring_enter per turn). Both
//     engines share the connection logic (event_loop.h), so everything below holds for both.
//   - A malformed frame: the replies of the good frames before it, one ERROR frame, then the
//     connection is closed (after a short linger that discards further input, so the client
//     reads the ERROR rather than a reset). A well-formed frame that fails (limits in the
//     executor, out of memory, AUTH while auth is off) gets ERROR and the connection stays open.
//   - Backpressure: once a connection's unsent replies reach output_soft_limit, its batch stops
//     at that frame (the executor runs no further command of it), and the loop stops reading
//     and executing that connection's frames until the replies drain to half the limit; the
//     frames already read wait, unexecuted, in its input buffer. The mark is lowered below the
//     soft limit when needed so that one more reply (max_value_bytes + 5 at most) cannot pass
//     output_hard_limit: whatever a client pipelines, its connection holds less than the hard
//     limit of replies, and a client that reads promptly is never cut off. A connection paused
//     by backpressure whose output makes no progress for idle_timeout (a client that stopped
//     reading) is closed and counted as a slow-consumer disconnect.
//   - idle_timeout: a connection holding a partial frame that has not completed within
//     idle_timeout of its first byte is closed (slowloris); so is a paused connection whose
//     output made no progress for that long, and (with tokens) one that has not authenticated
//     within it. 0 turns every one of these timeouts off.
//   - Authentication (options.tokens set): the first frame of a connection must be AUTH with a
//     configured token (reply OK). A first byte other than AUTH's opcode gets one ERROR and the
//     connection is closed at once, before anything else is buffered, so an unauthenticated
//     client can make the server hold at most one AUTH frame (4 KiB). A wrong token gets ERROR;
//     the max_auth_failures-th wrong token on a connection closes it. A connection that has not
//     authenticated within idle_timeout of being accepted is closed. A connection whose token is
//     removed by a reload gets one ERROR at its next request and is closed (revocation).
//     Without tokens, AUTH answers ERROR "auth is not enabled" and the connection stays open.
#ifndef CRABCACHE_FASTPATH_SERVER_H_
#define CRABCACHE_FASTPATH_SERVER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/mutex.h"
#include "fastpath/codec.h"
#include "fastpath/token_store.h"

namespace crabcache::fastpath {

namespace internal {
class EventLoop;
class Acceptor;
}  // namespace internal

// How the loops do their I/O (docs/threading.md, "Fast path I/O engines").
enum class IoEngine : uint8_t {
  kAuto = 0,     // io_uring when the probe says it works, else epoll (one log line says why).
  kEpoll = 1,    // epoll_wait + read + send.
  kIoUring = 2,  // io_uring; Start fails if it is unavailable.
};
// "auto", "epoll", "io_uring".
std::string_view IoEngineName(IoEngine engine);
// Parses IoEngineName's names; false for anything else.
bool ParseIoEngine(std::string_view name, IoEngine* engine);

// Checks that this process may use io_uring with every feature the io_uring loop needs (kernel
// 6.1 or later, not blocked by seccomp or kernel.io_uring_disabled): sets up a ring and runs a
// multishot receive into a provided buffer ring and a send over a socket pair. kUnavailable
// with the reason ("io_uring_setup: Operation not permitted") when not.
absl::Status ProbeIoUring();

struct ServerOptions {
  // Host or IP to bind ("0.0.0.0", "127.0.0.1", "::", "localhost").
  std::string address = "0.0.0.0";
  // 0 picks a free port (see Server::port()).
  int port = 8000;
  // Event-loop threads; 0 means one per CPU this process may run on.
  int threads = 0;
  // Key and value limits, each at most kMaxConfigurableBytes (512 MiB). Should match the
  // executor's options: the parser enforces these, the executor its own.
  Limits limits;
  // Open connections beyond this are refused.
  size_t max_connections = 10000;
  // Backpressure, per connection: see the file comment. REQUIRES 0 < soft <= hard and
  // hard > limits.max_value_bytes + kReplyHeaderBytes (else Start fails with kInvalidArgument).
  size_t output_soft_limit = 8 << 20;
  size_t output_hard_limit = 64 << 20;
  // Partial-frame, stalled-output and authentication timeout; zero turns it off.
  absl::Duration idle_timeout = absl::Seconds(60);
  // epoll: bytes read from one connection per readable event before the loop serves the others.
  // (io_uring receives in provided-buffer-sized pieces the kernel interleaves across
  // connections.)
  size_t read_budget_bytes = 256 << 10;
  // Commands per Executor::Execute call (a pipeline longer than this runs as several batches).
  size_t max_batch_commands = 1024;
  int listen_backlog = 1024;
  // Non-null: clients must authenticate with one of these tokens (see the file comment). Not
  // owned; must outlive the server. The store may be reloaded while the server runs.
  const auth::TokenStore* tokens = nullptr;
  // Wrong AUTH tokens a connection may send; the last one's ERROR is followed by a close.
  int max_auth_failures = 3;
  // Time source for idle_timeout and lingering closes; null means core::SystemClock(). Not
  // owned. Tests pass a core::FakeClock (loops still wake every few ms to look at it).
  const core::Clock* clock = nullptr;
  // epoll by default: io_uring is faster with small values, slower with large ones
  // (docs/operations.md, "The fast path I/O engine").
  IoEngine io_engine = IoEngine::kEpoll;
  // Replaces ProbeIoUring (tests simulate a runtime that blocks io_uring); null: the real probe.
  absl::Status (*io_uring_probe)() = nullptr;
};

// Why a connection failed to authenticate. The names are the `reason` label of
// crabcache_auth_failures_total.
enum class AuthFailure : uint8_t {
  kMissing = 0,  // A request other than AUTH before authenticating.
  kInvalid = 1,  // AUTH with a token that is not configured.
  kTimeout = 2,  // No successful AUTH within idle_timeout of connecting.
  kRevoked = 3,  // The connection's token was removed by a reload.
};
inline constexpr size_t kNumAuthFailures = 4;
// "missing", "invalid", "timeout", "revoked".
std::string_view AuthFailureName(AuthFailure failure);

// A snapshot for metrics, summed over the loops at the time of the call.
struct ServerStats {
  int64_t connections_open = 0;
  uint64_t connections_accepted = 0;  // Served (rejected ones are not included).
  uint64_t connections_rejected = 0;  // Refused because of max_connections.
  std::array<uint64_t, kNumParseErrors> protocol_errors{};  // By ParseError.
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t slow_consumer_disconnects = 0;
  uint64_t idle_timeout_closes = 0;
  std::array<uint64_t, kNumAuthFailures> auth_failures{};  // By AuthFailure.
  // Bytes of buffers held by the loops now (scratch, partial frames, unsent replies).
  uint64_t buffer_bytes = 0;
};

// The running fast path.
//
// Thread-safety: every public method may be called from any thread, concurrently.
// Ownership: `executor` is not owned and must outlive the server. The destructor shuts down at
// once (Shutdown(absl::InfinitePast())) if Shutdown was not called.
class Server {
 public:
  // Validates `options`, binds and listens, and starts the loops and the acceptor. Fails with
  // kInvalidArgument for bad options and kUnavailable when the address cannot be bound.
  // REQUIRES: executor != nullptr.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       const core::Executor* executor);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const { return port_; }
  int threads() const { return static_cast<int>(loops_.size()); }
  // The engine the loops use: kEpoll or kIoUring, never kAuto.
  IoEngine io_engine() const { return io_engine_; }
  // Why kAuto fell back to epoll (empty if it did not).
  const std::string& io_engine_fallback_reason() const { return fallback_reason_; }

  // Closes the listening socket: from the return on, new connections are refused by the kernel.
  // Connections already accepted are still served. Idempotent.
  void StopAccepting();

  // StopAccepting, then every loop stops reading requests, writes the replies it has already
  // computed (batches are never cut in half: a batch runs to completion before a loop looks at
  // the shutdown), and closes each connection once its output is flushed; whatever is still
  // unflushed at `deadline` is dropped. Returns when every loop thread has ended. Requests read
  // but held back by backpressure are not executed. Idempotent; later calls return at once.
  void Shutdown(absl::Time deadline);

  ServerStats Stats() const;

 private:
  Server(const ServerOptions& options, int port);

  // Immutable after Start.
  const ServerOptions options_;
  const int port_;
  IoEngine io_engine_ = IoEngine::kEpoll;
  std::string fallback_reason_;
  std::vector<std::unique_ptr<internal::EventLoop>> loops_;
  std::unique_ptr<internal::Acceptor> acceptor_;
  std::unique_ptr<std::atomic<int64_t>> open_connections_;
  std::unique_ptr<std::atomic<int64_t>> lingering_refusals_;

  core::Mutex mu_;
  bool stopped_accepting_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace crabcache::fastpath

#endif  // CRABCACHE_FASTPATH_SERVER_H_
