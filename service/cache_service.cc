#include "service/cache_service.h"

#include <grpcpp/support/slice.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "core/command.h"
#include "core/mutex.h"
#include "service/batch_decoder.h"
#include "service/response_encoder.h"
#include "service/status.h"

namespace crabcache::service {
namespace {

// Per-stream buffers that an unusually large batch grew beyond these are given back afterwards.
constexpr size_t kKeepCommands = 4096;
constexpr size_t kKeepFlatBytes = 1 << 20;

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
// Invariant until Finish: at least one read or write is in flight, so cancellation always
// surfaces as a failed operation, and Finish is called exactly once, when neither is in flight.
//
// Lifetime: created by BatchExecute, deleted by itself in OnDone (after gRPC's last callback).
// mu_ guards the state machine only; it is never held while calling into gRPC or the executor.
class CacheService::BatchReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  BatchReactor(CacheService* service, const auth::Grant& grant) : service_(service), grant_(grant) {
    service_->open_streams_.fetch_add(1, std::memory_order_relaxed);
    service_->streams_total_.fetch_add(1, std::memory_order_relaxed);
    {
      core::MutexLock lock(&mu_);
      reading_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // Half-close by the client, cancellation or a broken stream.
      EndReads(std::nullopt);
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
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      reading_ = false;
      if (reads_done_) {
        finish = TakeFinishLocked();  // A write failed meanwhile: the stream is broken.
      } else if (writing_) {
        pending_ = true;  // OnWriteDone writes it and starts the next read.
      } else {
        write_index_ = slot;
        writing_ = true;
        to_write = &responses_[slot];
        read_next = reading_ = true;
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_next) StartRead(&request_);
    if (finish.has_value()) Finish(*finish);
  }

  void OnWriteDone(bool ok) override {
    grpc::ByteBuffer* to_write = nullptr;
    bool read_next = false;
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      writing_ = false;
      service_->bytes_out_.fetch_add(response_bytes_[write_index_], std::memory_order_relaxed);
      if (!ok) {
        // The stream is broken (cancelled or the peer went away): drop what is pending and read
        // no more. A read still in flight fails on its own and finishes the stream.
        pending_ = false;
        reads_done_ = true;
        if (status_.ok()) status_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
      if (pending_) {
        pending_ = false;
        write_index_ = 1 - write_index_;
        writing_ = true;
        to_write = &responses_[write_index_];
        read_next = reading_ = true;
      } else {
        finish = TakeFinishLocked();
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_next) StartRead(&request_);
    if (finish.has_value()) Finish(*finish);
  }

  void OnCancel() override {
    // Nothing to do: every operation in flight completes with ok=false and the state machine
    // finishes the stream from there.
  }

  void OnDone() override {
    service_->open_streams_.fetch_sub(1, std::memory_order_relaxed);
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

  // No more reads: finishes the stream once the write in flight (if any) is done. `error`, when
  // set, is the stream's final status.
  void EndReads(std::optional<grpc::Status> error) {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      reading_ = false;
      reads_done_ = true;
      if (error.has_value() && status_.ok()) status_ = *std::move(error);
      finish = TakeFinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
  }

  // The status to Finish with if the stream is over and nothing is in flight, once only.
  std::optional<grpc::Status> TakeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || reading_ || writing_ || pending_) return std::nullopt;
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
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;     // A response waits for the write in flight.
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;  // No read will be started again.
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
    : executor_(executor), options_(options) {}

grpc::Status CacheService::Authenticate(grpc::CallbackServerContext* context, auth::Grant* grant) {
  if (options_.tokens == nullptr) return grpc::Status::OK;
  AuthResult why = AuthResult::kOk;
  grpc::Status status =
      CheckAuthorization(context->client_metadata(), *options_.tokens, grant, &why);
  if (!status.ok())
    auth_failures_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
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
  return new BatchReactor(this, grant);
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
