// Translation between crabcache.v1 protos and core commands/results: the typed path.
//
// Requests become core::Commands whose key and value are views into the request's bytes fields:
// nothing is copied on the way in, so the request must outlive the execution. Results are
// appended straight into the response proto (a GET hit is copied once, under the shard lock).
//
// BatchExecute itself is served raw (service/batch_decoder.h, service/response_encoder.h), from
// and to wire bytes; this typed path is the reference it is tested against (same commands, same
// response bytes), and the helpers below are the one definition of codes and error texts both
// paths use.
#ifndef CRABCACHE_SERVICE_TRANSLATE_H_
#define CRABCACHE_SERVICE_TRANSLATE_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/command.h"
#include "core/executor.h"
#include "crabcache/v1/cache.pb.h"

namespace crabcache::service {

// The core command for `command`, or nullopt when no operation is set. Views point into
// `command`.
std::optional<core::Command> ToCoreCommand(const crabcache::v1::Command& command);

// The ERROR text of a command without an operation.
inline constexpr std::string_view kNoOperationError =
    "INVALID_ARGUMENT: command has no operation set";

// The v1 code of a core result. Inline: the raw encoder calls it once per result.
inline crabcache::v1::Code ToProtoCode(const core::Result& result) {
  switch (result.code) {
    case core::ResultCode::kOk:
    case core::ResultCode::kStats:
      return crabcache::v1::OK;
    case core::ResultCode::kPong:
      return crabcache::v1::PONG;
    case core::ResultCode::kHit:
      return crabcache::v1::HIT;
    case core::ResultCode::kMiss:
      return crabcache::v1::MISS;
    case core::ResultCode::kNotFound:
      return crabcache::v1::NOT_FOUND;
    case core::ResultCode::kTtl:
      return result.ttl_ms == core::kTtlMissing ? crabcache::v1::NOT_FOUND : crabcache::v1::OK;
    case core::ResultCode::kError:
      return crabcache::v1::ERROR;
  }
  return crabcache::v1::ERROR;
}
// The v1 error text of a kError result: the canonical code name, ": ", the message.
std::string ErrorText(const core::Result& result);

// Fills `out` (which need not be empty) with the v1 form of a core result.
void ToProtoResult(const core::Result& result, crabcache::v1::Result* out);

// Appends one v1::Result per core result to a response. Not thread-safe (one batch at a time).
class ProtoResultSink : public core::ResultSink {
 public:
  // `results` is not owned and must outlive the sink.
  explicit ProtoResultSink(google::protobuf::RepeatedPtrField<crabcache::v1::Result>* results)
      : results_(results) {}
  void OnResult(const core::Result& result) override { ToProtoResult(result, results_->Add()); }

 private:
  google::protobuf::RepeatedPtrField<crabcache::v1::Result>* const results_;
};

// Executes every command of `request` in order and appends one result per command to
// `response->results` (`response->id` is set to the request's id). Commands without an
// operation get an ERROR result in place; the others run through `executor` in as few batches
// as possible (one when every command is valid). REQUIRES: `response` is empty (Clear()ed).
void ExecuteBatch(const core::Executor& executor, const crabcache::v1::BatchRequest& request,
                  crabcache::v1::BatchResponse* response);

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_TRANSLATE_H_
