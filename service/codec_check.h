// Differential checks of the raw BatchExecute codec (service/batch_decoder.h,
// service/response_encoder.h) against protobuf and the typed path (service/translate.h). One
// definition of the invariants, shared by service/batch_codec_differential_test.cc and the fuzz
// target tests/fuzz/grpc_translator_fuzz.cc. For tests only; never linked into the server.
#ifndef CRABCACHE_SERVICE_CODEC_CHECK_H_
#define CRABCACHE_SERVICE_CODEC_CHECK_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "core/executor.h"
#include "crabcache/v1/cache.pb.h"

namespace crabcache::testing {

// Decodes `bytes` with DecodeBatchRequest and with protobuf (BatchRequest::ParseFromArray):
//   - both accept or both refuse;
//   - when they accept: the same id, the same number of commands, and in each place the
//     ToCoreCommand of protobuf's Command (same id, key and value bytes, ttl) or, for a Command
//     without an operation, a no-op; every key and value views `bytes`;
//   - protobuf's own serialization of what it parsed decodes to the same commands again;
//   - with a limit of `small_limit` commands, the decoder refuses exactly when there are more,
//     naming the count and the id.
// Returns an empty string when all of that holds, else what differs. `parsed` (if not null)
// receives protobuf's message.
std::string CompareDecoders(std::string_view bytes, size_t small_limit,
                            crabcache::v1::BatchRequest* parsed = nullptr);

// Runs one request both ways: the typed path (service::ExecuteBatch) on `typed` and the raw path
// (DecodeBatchRequest, ExecuteDecoded, BatchResponseEncoder) on `raw`, whose stores must hold the
// same entries at the same time. Checks that the raw bytes are exactly protobuf's serialization
// of the typed BatchResponse and parse back to a message equal to it; a STATS result's JSON is
// the one exception (memory figures may differ between two stores), it is taken from the raw
// side before comparing. Returns an empty string
// when they agree, else what differs. REQUIRES: protobuf parses `bytes`. `typed_response` (if not
// null) receives the typed path's response.
std::string CompareResponses(const core::Executor& typed, const core::Executor& raw,
                             std::string_view bytes,
                             crabcache::v1::BatchResponse* typed_response = nullptr);

}  // namespace crabcache::testing

#endif  // CRABCACHE_SERVICE_CODEC_CHECK_H_
