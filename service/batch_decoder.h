// A hand-written decoder of crabcache.v1.BatchRequest, straight from the protobuf wire bytes
// into core::Commands whose keys and values point into those bytes (no copy, no allocation per
// command).
//
// It serves the raw BatchExecute path (service/cache_service.cc) and must mean exactly what the
// generated parser means: the same inputs are accepted, and an accepted input yields the
// commands that service::ToCoreCommand (service/translate.h) yields for the message protobuf
// parses. That includes proto3's rules: a missing field is its default; a scalar or bytes field
// that appears twice takes the last value; a sub-message field that appears twice is merged; a
// oneof case that appears twice is merged into, another case replaces it; unknown fields and
// known fields with another wire type are skipped (after checking them as protobuf does).
// tests: service/batch_decoder_test.cc, service/batch_codec_differential_test.cc and the fuzz
// target tests/fuzz/grpc_translator_fuzz.cc.
#ifndef CRABCACHE_SERVICE_BATCH_DECODER_H_
#define CRABCACHE_SERVICE_BATCH_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/command.h"

namespace crabcache::service {

// One decoded BatchRequest. Reused from batch to batch (DecodeBatchRequest clears it), so its
// vectors keep their capacity. Not thread-safe.
struct DecodedBatch {
  // BatchRequest.id.
  uint64_t id = 0;
  // The commands that have an operation, in request order; views into the decoded bytes.
  std::vector<core::Command> commands;
  // Where the commands without an operation are: their indexes in the request, ascending.
  std::vector<uint32_t> no_op_positions;
  // Commands in the request, with or without an operation, counted to the end even past the
  // limit.
  size_t total_commands = 0;
  // More than the limit: `commands` and `no_op_positions` stop at the limit.
  bool over_limit = false;

  void Clear();
  // Drops the vectors' memory when an unusually large batch grew them beyond `max_commands`
  // entries, so a stream does not keep a 10,000-command batch's memory for ever.
  void ShrinkIfAbove(size_t max_commands);
};

// Decodes `bytes` (one serialized BatchRequest) into `out`. Errors, both kInvalidArgument:
//   - malformed bytes (what protobuf would refuse to parse): "malformed BatchRequest: <why> at
//     byte <offset>";
//   - more than `max_commands` commands in a well-formed request: "batch <id> has <n> commands;
//     the limit is <max_commands>", with out->over_limit set. Nothing is stored for the commands
//     past the limit, so memory is bounded by the limit, not by the client.
// The command views stay valid as long as `bytes` does.
absl::Status DecodeBatchRequest(std::string_view bytes, size_t max_commands, DecodedBatch* out);

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_BATCH_DECODER_H_
