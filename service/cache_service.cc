#include "service/cache_service.h"

#include <grpcpp/support/slice.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/command.h"
#include "core/mutex.h"
#include "core/string_view.h"
#include "service/batch_decoder.h"
#include "service/response_encoder.h"
#include "service/status.h"

namespace crabcache::service {
namespace {

// Per-stream buffers that an unusually large batch grew beyond these are given back afterwards.
constexpr size_t kKeepCommands = 4096;
constexpr size_t kKeepFlatBytes = 1 << 20;

// The message of the UNAVAILABLE status that drained and refused streams end with.
constexpr std::string_view kShuttingDown = "server shutting down";

}  // namespace

// One BatchExecute stream, served raw: a BatchRequest arrives as wire bytes, is decoded into
// core::Commands that view those bytes (service/batch_decoder.h), runs through the executor, and
// its results are encoded into gRPC slices that are sent as the BatchResponse
// (service/response_encoder.h).
//
// Pipelining: when a batch has been read it is executed (on the gRPC thread that delivered it)
// and, if no write is in flight, its response is written while the next batch is read. A batch
// read while the previous response is still being written is executed into the second response
// buffer and waits ("pending"); the next read starts only when that write completes. So at most
// one read and one write are in flight and memory is bounded by one request and two responses.
//
// Drain (BeginDrain, when the server shuts down): no read is started again; a batch that was
// read is executed and its response written, as is a pending one; then the stream finishes with
// UNAVAILABLE "server shutting down". A read still waiting for the client's next message is
// abandoned: Finish is called with it outstanding (gRPC then fails it), and a message that still
// arrives is dropped unexecuted. So a batch without a response was never executed (unless the
// shutdown deadline cancels a write that was in flight). A stream that had already stopped
// reading (half-closed by the client, or failed) keeps its own status.
//
// Finish is called exactly once, when no batch is executing, no write is in flight or pending
// and no StartRead call is in progress; a read may still be outstanding only while draining (a
// broken stream waits for its read to fail, so cancellation surfaces as a failed operation).
//
// Lifetime: created and registered by CacheService::BatchExecute; deleted by itself in OnDone
// (after gRPC's last callback), which first unregisters it. OnDone cannot run before Finish has
// been called, so a reactor whose finish was claimed under mu_ stays alive until that Finish.
// mu_ guards the state machine only; it is never held while calling into gRPC or the executor.
class CacheService::BatchReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Does not touch gRPC: Start() issues the first read once the stream is registered.
  BatchReactor(CacheService* service, const auth::Grant& grant) : service_(service), grant_(grant) {
    core::MutexLock lock(&mu_);
    read_outstanding_ = true;
    starting_reads_ = 1;
  }

  void Start() { IssueRead(); }

  // See the class comment. The status to Finish with when the caller must finish the stream now
  // (after releasing the registry lock); nullopt when the stream's own callbacks will.
  std::optional<grpc::Status> BeginDrain() {
    core::MutexLock lock(&mu_);
    if (reads_done_) return std::nullopt;  // Half-closed or failed: it ends on its own.
    draining_ = true;
    reads_done_ = true;
    if (status_.ok()) {
      status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(kShuttingDown));
    }
    return TakeFinishLocked();
  }

  void OnReadDone(bool ok) override {
    std::optional<grpc::Status> finish;
    bool execute = false;
    {
      core::MutexLock lock(&mu_);
      read_outstanding_ = false;
      if (!ok) reads_done_ = true;  // Half-close by the client, cancellation or a broken stream.
      if (reads_done_) {
        finish = TakeFinishLocked();
      } else {
        execute = executing_ = true;
      }
    }
    if (!execute) {
      // A message that arrived after the stream stopped reading (drained or broken): dropped,
      // never executed, so it gets no response.
      if (ok) ReleaseRequest();
      if (finish.has_value()) Finish(*finish);
      return;
    }
    service_->bytes_in_.fetch_add(request_.Length(), std::memory_order_relaxed);
    if (!service_->StillAuthorized(&grant_)) {
      ReleaseRequest();
      EndReads(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                            "the token of this stream was revoked; reconnect with a valid token"));
      return;
    }
    if (std::optional<grpc::Status> error = Decode(); error.has_value()) {
      ReleaseRequest();
      EndReads(*std::move(error));
      return;
    }

    int slot;
    {
      core::MutexLock lock(&mu_);
      slot = 1 - write_index_;  // Never the buffer being written.
    }
    writer_.Reset(expected_response_bytes_);
    encoder_.Begin(batch_.id, &writer_);
    ExecuteDecoded(*service_->executor_, batch_, encoder_);
    const size_t written = writer_.Finish(&responses_[slot]);
    response_bytes_[slot] = written;
    expected_response_bytes_ = written + written / 4;  // Room for the next one to be larger.
    ReleaseRequest();

    grpc::ByteBuffer* to_write = nullptr;
    bool read_next = false;
    {
      core::MutexLock lock(&mu_);
      executing_ = false;
      if (broken_) {
        finish = TakeFinishLocked();  // A write failed meanwhile: no response can arrive.
      } else if (writing_) {
        pending_ = true;  // OnWriteDone writes it (and starts the next read unless draining).
      } else {
        write_index_ = slot;
        writing_ = true;
        to_write = &responses_[slot];
        read_next = ClaimReadLocked();
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_next) IssueRead();
    if (finish.has_value()) Finish(*finish);
  }

  void OnWriteDone(bool ok) override {
    grpc::ByteBuffer* to_write = nullptr;
    bool read_next = false;
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) {
        // Counted once the response was handed to the transport, never for a failed write.
        service_->bytes_out_.fetch_add(response_bytes_[write_index_], std::memory_order_relaxed);
      } else {
        // The stream is broken (cancelled or the peer went away): drop what is pending and read
        // no more. A read still in flight fails on its own and finishes the stream.
        broken_ = true;
        pending_ = false;
        reads_done_ = true;
        if (status_.ok()) status_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
      if (pending_) {
        pending_ = false;
        write_index_ = 1 - write_index_;
        writing_ = true;
        to_write = &responses_[write_index_];
        read_next = ClaimReadLocked();
      } else {
        finish = TakeFinishLocked();
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_next) IssueRead();
    if (finish.has_value()) Finish(*finish);
  }

  void OnCancel() override {
    // Nothing to do: every operation in flight completes with ok=false and the state machine
    // finishes the stream from there.
  }

  void OnDone() override {
    service_->Unregister(this);
    delete this;
  }

 private:
  // Decodes request_ into batch_. The stream's final status when the request is refused.
  std::optional<grpc::Status> Decode() {
    std::string_view bytes;
    if (request_.TrySingleSlice(&request_slice_).ok()) {  // Decoded in place.
      bytes = {reinterpret_cast<const char*>(request_slice_.begin()), request_slice_.size()};
    } else {
      // A message that arrived in several slices: one copy into the stream's flat buffer.
      if (!request_.Dump(&request_slices_).ok()) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the BatchRequest bytes");
      }
      flat_.clear();
      for (const grpc::Slice& slice : request_slices_) {
        flat_.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
      request_slices_.clear();
      bytes = flat_;
    }
    const absl::Status status =
        DecodeBatchRequest(bytes, service_->options_.max_batch_commands, &batch_);
    if (status.ok()) return std::nullopt;
    (batch_.over_limit ? service_->oversized_batches_ : service_->malformed_batches_)
        .fetch_add(1, std::memory_order_relaxed);
    return ToGrpcStatus(status);
  }

  // Lets go of the request's bytes (and of what an unusually large batch grew).
  void ReleaseRequest() {
    request_slice_ = grpc::Slice();
    request_.Clear();
    batch_.Clear();
    batch_.ShrinkIfAbove(kKeepCommands);
    if (flat_.capacity() > kKeepFlatBytes) std::string().swap(flat_);
  }

  // True (and the read recorded as outstanding and starting) if the caller must IssueRead.
  bool ClaimReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reads_done_) return false;  // Draining: no new read.
    read_outstanding_ = true;
    ++starting_reads_;
    return true;
  }

  // StartRead, then lets a drain that came meanwhile finish the stream: Finish must never
  // overtake a StartRead call in progress.
  void IssueRead() {
    StartRead(&request_);
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      --starting_reads_;
      finish = TakeFinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
  }

  // No more reads (the batch being executed was refused): finishes the stream once the write
  // in flight (if any) is done. `error` is the stream's final status.
  void EndReads(grpc::Status error) {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      executing_ = false;
      reads_done_ = true;
      if (status_.ok()) status_ = std::move(error);
      finish = TakeFinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
  }

  // The status to Finish with if the stream is over and nothing blocks Finish (see the class
  // comment), once only.
  std::optional<grpc::Status> TakeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || executing_ || writing_ || pending_ || starting_reads_ > 0) {
      return std::nullopt;
    }
    if (read_outstanding_ && !draining_) return std::nullopt;
    finished_ = true;
    return status_;
  }

  // Immutable after construction.
  CacheService* const service_;

  // Owned by the read path: only one read is in flight, gRPC orders StartRead before
  // OnReadDone, and only OnReadDone touches these after construction.
  auth::Grant grant_;
  grpc::ByteBuffer request_;                 // The message read; cleared once executed.
  grpc::Slice request_slice_;                // Its bytes when they are one slice.
  std::vector<grpc::Slice> request_slices_;  // Its slices otherwise (reused).
  std::string flat_;                         // Those slices' bytes, contiguous (reused).
  DecodedBatch batch_;                       // Views into request_slice_ or flat_.
  SliceWriter writer_;
  BatchResponseEncoder encoder_;
  size_t expected_response_bytes_ = 0;  // Sizes the next response's first chunk.

  // responses_[write_index_] is being written while writing_; responses_[1 - write_index_] is
  // filled by the read path and, while pending_, waits for that write to end. The buffers (and
  // their sizes) are not guarded themselves: who owns which follows from write_index_/pending_,
  // flipped under mu_.
  grpc::ByteBuffer responses_[2];
  size_t response_bytes_[2] = {0, 0};

  core::Mutex mu_;
  int write_index_ ABSL_GUARDED_BY(mu_) = 1;
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;  // StartRead claimed, OnReadDone not run.
  int starting_reads_ ABSL_GUARDED_BY(mu_) = 0;         // StartRead calls not yet returned.
  bool executing_ ABSL_GUARDED_BY(mu_) = false;         // OnReadDone runs a batch.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;     // A response waits for the write in flight.
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;  // No read will be started again.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;    // BeginDrain ended the reads.
  bool broken_ ABSL_GUARDED_BY(mu_) = false;      // A write failed.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);  // Final status; OK unless an error was recorded.
};

namespace {

// A BatchExecute call refused before it started: finishes at once with `status`.
class RejectedStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RejectedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// Captures the single result of a one-command batch.
class SingleResultSink : public core::ResultSink {
 public:
  explicit SingleResultSink(std::string* hit_value = nullptr) : hit_value_(hit_value) {}
  void OnResult(const core::Result& result) override {
    code = result.code;
    error = result.error;
    if (result.code == core::ResultCode::kHit && hit_value_ != nullptr) {
      hit_value_->assign(result.value.data(), result.value.size());
    } else if (result.code == core::ResultCode::kError) {
      message.assign(result.value.data(), result.value.size());
    }
  }
  // An error result as a status (OK otherwise).
  absl::Status status() const {
    if (code != core::ResultCode::kError) return absl::OkStatus();
    return absl::Status(error, message);
  }

  core::ResultCode code = core::ResultCode::kError;
  absl::StatusCode error = absl::StatusCode::kInternal;
  std::string message = "no result";

 private:
  std::string* const hit_value_;
};

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  return FinishUnary(context, ToGrpcStatus(status));
}

// Runs one command unless the call is already cancelled or past its deadline.
bool RunOne(grpc::CallbackServerContext* context, const core::Executor& executor,
            const core::Command& command, SingleResultSink& sink) {
  if (context->IsCancelled()) return false;
  executor.Execute(core::Frontend::kGrpc, absl::MakeConstSpan(&command, 1), sink);
  return true;
}

const absl::Status& CancelledStatus() {
  static const absl::Status* const status = new absl::Status(absl::CancelledError("cancelled"));
  return *status;
}

}  // namespace

CacheService::CacheService(const core::Executor* executor, const CacheServiceOptions& options)
    : executor_(executor), options_(options), auth_limiter_(options.auth_limit) {}

grpc::Status CacheService::Authenticate(grpc::CallbackServerContext* context, auth::Grant* grant) {
  if (options_.tokens == nullptr) return grpc::Status::OK;
  // context->peer() allocates: fetched only when an address is being limited or a check fails.
  std::string peer;
  if (auth_limiter_.MayBlock()) {
    peer = context->peer();
    const std::string_view address = AuthLimiter::PeerAddress(peer);
    if (auth_limiter_.Blocked(address)) {
      auth_failures_[static_cast<size_t>(AuthResult::kRateLimited)].fetch_add(
          1, std::memory_order_relaxed);
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("too many invalid tokens from ", core::ToAbsl(address),
                       "; refused for up to ", options_.auth_limit.window_ms / 1000, " s"));
    }
  }
  AuthResult why = AuthResult::kOk;
  grpc::Status status =
      CheckAuthorization(context->client_metadata(), *options_.tokens, grant, &why);
  if (!status.ok()) {
    auth_failures_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    // Guesses count; a missing token guesses nothing.
    if (why == AuthResult::kInvalid && auth_limiter_.enabled()) {
      if (peer.empty()) peer = context->peer();
      auth_limiter_.RecordFailure(AuthLimiter::PeerAddress(peer));
    }
  }
  return status;
}

bool CacheService::StillAuthorized(auth::Grant* grant) {
  if (options_.tokens == nullptr || options_.tokens->StillValid(grant)) return true;
  auth_failures_[static_cast<size_t>(AuthResult::kRevoked)].fetch_add(1, std::memory_order_relaxed);
  return false;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* CacheService::BatchExecute(
    grpc::CallbackServerContext* context) {
  auth::Grant grant;
  if (grpc::Status s = Authenticate(context, &grant); !s.ok()) return new RejectedStream(s);
  BatchReactor* reactor = nullptr;
  {
    core::MutexLock lock(&streams_mu_);
    if (!draining_) {
      reactor = new BatchReactor(this, grant);
      streams_.insert(reactor);
      open_streams_.fetch_add(1, std::memory_order_relaxed);
      streams_total_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (reactor == nullptr) {
    return new RejectedStream(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(kShuttingDown)));
  }
  reactor->Start();
  return reactor;
}

void CacheService::Unregister(BatchReactor* reactor) {
  {
    core::MutexLock lock(&streams_mu_);
    streams_.erase(reactor);
    open_streams_.fetch_sub(1, std::memory_order_relaxed);
  }
  streams_ended_.notify_all();
}

bool CacheService::WaitForStreams(absl::Time deadline) {
  streams_mu_.Lock();
  const bool ended = streams_ended_.wait_until(
      streams_mu_, absl::ToChronoTime(deadline),
      [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return streams_.empty(); });
  streams_mu_.Unlock();
  return ended;
}

void CacheService::BeginDrain() {
  std::vector<std::pair<BatchReactor*, grpc::Status>> to_finish;
  {
    core::MutexLock lock(&streams_mu_);
    if (draining_) return;
    draining_ = true;
    for (BatchReactor* reactor : streams_) {
      if (std::optional<grpc::Status> status = reactor->BeginDrain(); status.has_value()) {
        to_finish.emplace_back(reactor, *std::move(status));
      }
    }
  }
  // Outside the lock (never held across gRPC calls). Each of these reactors had its finish
  // claimed, so it cannot reach OnDone (and be deleted) before this Finish.
  for (auto& [reactor, status] : to_finish) reactor->Finish(std::move(status));
}

grpc::ServerUnaryReactor* CacheService::Get(grpc::CallbackServerContext* context,
                                            const crabcache::v1::GetRequest* request,
                                            crabcache::v1::GetResponse* response) {
  if (grpc::Status s = Authenticate(context, nullptr); !s.ok()) return FinishUnary(context, s);
  SingleResultSink sink(response->mutable_value());
  if (!RunOne(context, *executor_, core::Command::Get(request->key()), sink)) {
    return FinishUnary(context, CancelledStatus());
  }
  response->set_found(sink.code == core::ResultCode::kHit);
  return FinishUnary(context, sink.status());
}

grpc::ServerUnaryReactor* CacheService::Set(grpc::CallbackServerContext* context,
                                            const crabcache::v1::SetRequest* request,
                                            crabcache::v1::SetResponse* response) {
  if (grpc::Status s = Authenticate(context, nullptr); !s.ok()) return FinishUnary(context, s);
  const core::Command command =
      request->ttl_ms() == 0
          ? core::Command::Set(request->key(), request->value())
          : core::Command::SetWithTtl(request->key(), request->value(), request->ttl_ms());
  SingleResultSink sink;
  if (!RunOne(context, *executor_, command, sink)) return FinishUnary(context, CancelledStatus());
  return FinishUnary(context, sink.status());
}

grpc::ServerUnaryReactor* CacheService::Delete(grpc::CallbackServerContext* context,
                                               const crabcache::v1::DeleteRequest* request,
                                               crabcache::v1::DeleteResponse* response) {
  if (grpc::Status s = Authenticate(context, nullptr); !s.ok()) return FinishUnary(context, s);
  SingleResultSink sink;
  if (!RunOne(context, *executor_, core::Command::Delete(request->key()), sink)) {
    return FinishUnary(context, CancelledStatus());
  }
  response->set_deleted(sink.code == core::ResultCode::kOk);
  return FinishUnary(context, sink.status());
}

grpc::ServerUnaryReactor* CacheService::Ping(grpc::CallbackServerContext* context,
                                             const crabcache::v1::PingRequest* request,
                                             crabcache::v1::PingResponse* response) {
  if (grpc::Status s = Authenticate(context, nullptr); !s.ok()) return FinishUnary(context, s);
  SingleResultSink sink;
  if (!RunOne(context, *executor_, core::Command::Ping(), sink)) {
    return FinishUnary(context, CancelledStatus());
  }
  return FinishUnary(context, sink.status());
}

}  // namespace crabcache::service
