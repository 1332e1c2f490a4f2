// The crabcache.v1.Cache service on gRPC's callback API.
#ifndef CRABCACHE_SERVICE_CACHE_SERVICE_H_
#define CRABCACHE_SERVICE_CACHE_SERVICE_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "core/executor.h"
#include "core/mutex.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "fastpath/token_store.h"
#include "service/auth.h"
#include "service/auth_limiter.h"

namespace crabcache::service {

// The generated service with BatchExecute served raw: its messages arrive and leave as wire bytes
// (grpc::ByteBuffer) that service/batch_decoder.h and service/response_encoder.h translate, so a
// batch costs no protobuf message objects. Clients see no difference: the bytes are the same
// BatchRequest and BatchResponse messages. The unary methods stay typed.
using CacheServiceBase = crabcache::v1::Cache::WithCallbackMethod_Get<
    crabcache::v1::Cache::WithCallbackMethod_Set<crabcache::v1::Cache::WithCallbackMethod_Delete<
        crabcache::v1::Cache::WithCallbackMethod_Ping<
            crabcache::v1::Cache::WithRawCallbackMethod_BatchExecute<
                crabcache::v1::Cache::Service>>>>>;

struct CacheServiceOptions {
  // A BatchRequest with more commands fails its stream with INVALID_ARGUMENT.
  size_t max_batch_commands = 10000;
  // Non-null: every Cache RPC needs `authorization: Bearer <token>` with one of these tokens
  // (service/auth.h). Not owned; must outlive the service; may be reloaded while it runs.
  const auth::TokenStore* tokens = nullptr;
  // With tokens: an address that presented max_failures invalid tokens within the window is
  // refused with RESOURCE_EXHAUSTED, its token unchecked, until a window after the last of them
  // (service/auth_limiter.h).
  AuthLimitOptions auth_limit;
};

// Serves BatchExecute (one reactor per stream, see cache_service.cc; raw, see CacheServiceBase)
// and the unary RPCs, all through the shared core executor, on gRPC's callback threads.
//
// Authentication (options.tokens set): every RPC handler starts with Authenticate(), before it
// runs a command (a unary handler runs after gRPC has read and parsed its request; a stream's,
// before it reads a batch); a refused call ends with UNAUTHENTICATED, or RESOURCE_EXHAUSTED
// while its client address is rate-limited (options.auth_limit). A BatchExecute
// stream re-checks its token before each batch (one atomic load unless tokens were reloaded), so
// removing a token also ends the streams that used it. The test AuthGuardsEveryCacheMethod
// calls every method of the service descriptor without a token, so a new RPC cannot skip it.
//
// Thread-safety: gRPC calls the methods concurrently from its threads. The service's one lock
// guards the registry of open streams (taken when a stream opens or ends, and by BeginDrain);
// each stream's reactor has its own. The counters are atomics readable from any thread.
// Ownership: `executor` is not owned and must outlive the service; the service must outlive the
// grpc::Server it is registered with (i.e. until Server::Wait returns).
class CacheService final : public CacheServiceBase {
 public:
  CacheService(const core::Executor* executor, const CacheServiceOptions& options);
  CacheService(const CacheService&) = delete;
  CacheService& operator=(const CacheService&) = delete;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* BatchExecute(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const crabcache::v1::GetRequest* request,
                                crabcache::v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* context,
                                const crabcache::v1::SetRequest* request,
                                crabcache::v1::SetResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const crabcache::v1::DeleteRequest* request,
                                   crabcache::v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const crabcache::v1::PingRequest* request,
                                 crabcache::v1::PingResponse* response) override;

  // Graceful drain, the first step of a shutdown: from now on new BatchExecute streams are
  // refused with UNAVAILABLE "server shutting down", and every open stream stops reading, answers
  // the batches it has already read, then finishes with that status (see BatchReactor in
  // cache_service.cc). Returns at once; the streams end as their writes complete. Unary calls
  // are not affected (each runs to completion in its handler). Idempotent.
  void BeginDrain();
  // Waits until no BatchExecute stream is open (every reactor's OnDone ran) or `deadline`;
  // true if none is open.
  bool WaitForStreams(absl::Time deadline);

  // BatchExecute streams currently open (reactor created, OnDone not yet run). For metrics.
  int64_t open_streams() const { return open_streams_.load(std::memory_order_relaxed); }
  // BatchExecute streams ever opened. For metrics.
  uint64_t streams_total() const { return streams_total_.load(std::memory_order_relaxed); }
  // BatchExecute message bytes read and written: the exact serialized BatchRequest and
  // BatchResponse sizes (gRPC and HTTP/2 framing not included). For metrics.
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }
  uint64_t bytes_out() const { return bytes_out_.load(std::memory_order_relaxed); }
  // Streams failed because a BatchRequest had more than max_batch_commands commands (malformed
  // requests, which also end their stream with INVALID_ARGUMENT, are not counted here).
  uint64_t oversized_batches() const { return oversized_batches_.load(std::memory_order_relaxed); }
  // Streams failed because a BatchRequest was not a valid protobuf message.
  uint64_t malformed_batches() const { return malformed_batches_.load(std::memory_order_relaxed); }
  // Calls refused by authentication, by AuthResult (index 0, kOk, stays 0).
  uint64_t auth_failures(AuthResult why) const {
    return auth_failures_[static_cast<size_t>(why)].load(std::memory_order_relaxed);
  }

 private:
  class BatchReactor;

  // The one authentication check (see the class comment); counts refusals. `grant` may be null.
  grpc::Status Authenticate(grpc::CallbackServerContext* context, auth::Grant* grant);
  // For a stream: false (and counted) once its token has been removed by a reload.
  bool StillAuthorized(auth::Grant* grant);
  // Called by a stream's OnDone, just before it deletes itself.
  void Unregister(BatchReactor* reactor);

  // Immutable after construction.
  const core::Executor* const executor_;
  const CacheServiceOptions options_;

  // The live streams, so a drain can reach them. Lock order: streams_mu_, then a reactor's own
  // mutex; no gRPC call is made while holding streams_mu_.
  core::Mutex streams_mu_;
  absl::flat_hash_set<BatchReactor*> streams_ ABSL_GUARDED_BY(streams_mu_);
  std::condition_variable_any streams_ended_;  // Notified when a stream unregisters.
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;

  // Atomic; updated by reactors on gRPC threads.
  std::atomic<int64_t> open_streams_{0};
  std::atomic<uint64_t> streams_total_{0};
  // Per batch, never per command.
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> oversized_batches_{0};
  std::atomic<uint64_t> malformed_batches_{0};
  std::array<std::atomic<uint64_t>, kNumAuthResults> auth_failures_{};

  AuthLimiter auth_limiter_;  // Thread-safe.
};

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_CACHE_SERVICE_H_
