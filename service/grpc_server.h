// The gRPC front end as crabcached's main sees it: start, report the port, go NOT_SERVING, stop.
#ifndef CRABCACHE_SERVICE_GRPC_SERVER_H_
#define CRABCACHE_SERVICE_GRPC_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/executor.h"
#include "core/mutex.h"
#include "fastpath/token_store.h"
#include "service/cache_service.h"
#include "service/grpc_listener.h"
#include "service/tls.h"

namespace grpc {
class CallbackGenericService;
class ResourceQuota;
class Server;
}  // namespace grpc

namespace crabcache::service {

// The health-only port (GrpcOptions::health_port) takes at most this many connections (kubelet
// probes open one per probe) and messages of at most this size (a HealthCheckRequest is a
// service name).
inline constexpr size_t kHealthMaxConnections = 64;
inline constexpr int kHealthMaxMessageBytes = 4096;
// Threads gRPC may run synchronous handlers on, for both ports together: only server reflection
// is synchronous (the cache and health services use the callback API), and each open reflection
// stream holds one of these threads, so this caps what unauthenticated reflection clients can
// take. gRPC's own polling threads for them come out of the same budget.
inline constexpr int kMaxSyncThreads = 16;

struct GrpcOptions {
  // Host or IP to bind ("0.0.0.0", "127.0.0.1", "::"); IPv6 literals need no brackets.
  std::string address = "0.0.0.0";
  // 0 picks a free port (see GrpcFrontend::port()).
  int port = 50051;
  // A BatchRequest with more commands fails its stream with INVALID_ARGUMENT.
  size_t max_batch_commands = 10000;
  // Largest message received or sent; a larger one fails the call with RESOURCE_EXHAUSTED.
  int max_message_bytes = 64 << 20;
  // HTTP/2 streams (concurrent RPCs) per client connection.
  int max_concurrent_streams = 1024;
  // Connections open at once on the main port; more are closed as soon as they are accepted
  // (service/grpc_listener.h).
  size_t max_connections = 10000;
  // Memory gRPC's transports may take for their buffers (grpc::ResourceQuota, shared by both
  // ports); 0: no quota. See docs/security.md for what gRPC does when it is used up.
  size_t memory_limit_bytes = 0;
  // Per-address limit on failed token checks (service/auth_limiter.h).
  AuthLimitOptions auth_limit;
  // If non-zero (or -1 for "any free port"), a second listener that serves only
  // grpc.health.v1 in plaintext, for kubelet gRPC probes when the main port needs TLS or auth.
  int health_port = 0;
  // Non-null: Cache RPCs need a bearer token (service/auth.h). Health and reflection stay open.
  // Not owned; must outlive the frontend.
  const auth::TokenStore* tokens = nullptr;
  // TLS on the main port when tls.cert is set (mutual TLS when tls.client_ca is set too); the
  // health port stays plaintext. The files are checked at start and on ReloadTls
  // (service/tls.h).
  TlsFiles tls;
};

// The running gRPC server: crabcache.v1.Cache, grpc.health.v1.Health (SERVING until
// SetNotServing or Shutdown) and server reflection, on one listener (plaintext, TLS or mutual
// TLS), plus an optional plaintext listener that serves grpc.health.v1 only. Both listeners are
// CrabCache's own (service/grpc_listener.h), which cap and count connections; one
// grpc::ResourceQuota bounds gRPC's buffers and synchronous threads on both.
//
// Thread-safety: every method may be called from any thread, concurrently.
// Ownership: `executor` is not owned and must outlive the frontend. Destroying the frontend
// shuts it down at once (Shutdown(absl::InfinitePast())) if Shutdown was not called.
class GrpcFrontend {
 public:
  // Binds and starts serving. Fails with kInvalidArgument for bad options and kUnavailable when
  // the address cannot be bound. REQUIRES: executor != nullptr.
  static absl::StatusOr<std::unique_ptr<GrpcFrontend>> Start(const GrpcOptions& options,
                                                             const core::Executor* executor);
  ~GrpcFrontend();
  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const { return port_; }
  // The bound health-only port; 0 when there is none.
  int health_port() const { return health_port_; }

  // Health answers NOT_SERVING from now on (for every service name); RPCs still run. Call at the
  // start of a graceful shutdown so load balancers drain the instance.
  void SetNotServing();

  // Stops accepting RPCs and drains (CacheService::BeginDrain): every open BatchExecute stream
  // answers the batches it has read, then ends with UNAVAILABLE "server shutting down"; unary
  // calls in flight complete. Returns once every RPC has finished (OnDone ran), which is as soon
  // as the last one ends; whatever still runs at `deadline` (a stream whose client does not read
  // its responses) is cancelled. Idempotent; later calls return at once.
  void Shutdown(absl::Time deadline);

  // Re-reads and checks the TLS files; valid ones are served to new handshakes within
  // kGrpcRefreshSeconds, invalid ones are refused (the error) and the last good ones stay.
  // kFailedPrecondition without TLS. `changed` (if not null) says whether anything changed.
  absl::StatusOr<TlsSummary> ReloadTls(bool* changed = nullptr);

  // BatchExecute streams open now / ever. For metrics; cheap (relaxed atomics).
  int64_t open_streams() const { return service_->open_streams(); }
  uint64_t streams_total() const { return service_->streams_total(); }
  const CacheService& service() const { return *service_; }
  // Connections of the main port: open now (one fstat per open connection), accepted ever, and
  // refused by max_connections. For metrics.
  int64_t open_connections() const { return listener_->open_connections(); }
  uint64_t connections_accepted() const { return listener_->accepted(); }
  uint64_t connections_rejected() const { return listener_->rejected(); }

 private:
  GrpcFrontend(std::unique_ptr<CacheService> service, std::unique_ptr<TlsMaterial> tls,
               std::unique_ptr<grpc::ResourceQuota> quota, std::unique_ptr<GrpcListener> listener,
               std::unique_ptr<grpc::CallbackGenericService> health_unknown,
               std::unique_ptr<GrpcListener> health_listener);

  // Immutable after Start. Declared before server_ so they are destroyed after it.
  const std::unique_ptr<CacheService> service_;
  const std::unique_ptr<TlsMaterial> tls_;  // Null without TLS.
  const std::unique_ptr<grpc::ResourceQuota> quota_;
  const std::unique_ptr<GrpcListener> listener_;
  // The health-only server's answer to every other method (null without health_port).
  const std::unique_ptr<grpc::CallbackGenericService> health_unknown_;
  const std::unique_ptr<GrpcListener> health_listener_;  // Null without health_port.
  const int port_;
  const int health_port_;

  core::Mutex mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Server> health_server_ ABSL_GUARDED_BY(mu_);  // Null without health_port.
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_GRPC_SERVER_H_
