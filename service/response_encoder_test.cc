#include "service/response_encoder.h"

#include <grpcpp/support/slice.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "core/store.h"
#include "crabcache/v1/cache.pb.h"
#include "gtest/gtest.h"
#include "service/batch_decoder.h"
#include "service/codec_check.h"
#include "service/translate.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const auto& slice : slices) out.append(slice.begin(), slice.end());
  return out;
}

// Encodes `results` (nullopt: a command without an operation) as batch `id`, with the first chunk
// sized `expected_bytes`.
std::string Encode(uint64_t id, const std::vector<std::optional<core::Result>>& results,
                   size_t expected_bytes = 0) {
  SliceWriter writer;
  writer.Reset(expected_bytes);
  BatchResponseEncoder encoder;
  encoder.Begin(id, &writer);
  for (const auto& result : results) {
    if (result.has_value()) {
      encoder.OnResult(*result);
    } else {
      encoder.AddNoOperation();
    }
  }
  grpc::ByteBuffer buffer;
  const size_t size = writer.Finish(&buffer);
  std::string bytes = Flatten(buffer);
  EXPECT_EQ(size, bytes.size());
  EXPECT_EQ(buffer.Length(), bytes.size());
  return bytes;
}

// What protobuf serializes for the same results, built the typed path's way.
std::string Protobuf(uint64_t id, const std::vector<std::optional<core::Result>>& results) {
  BatchResponse response;
  response.set_id(id);
  for (const auto& result : results) {
    auto* out = response.add_results();
    if (result.has_value()) {
      ToProtoResult(*result, out);
    } else {
      out->set_code(crabcache::v1::ERROR);
      out->set_error(std::string(kNoOperationError));
    }
  }
  return response.SerializeAsString();
}

TEST(ResponseEncoderTest, EveryResultKindIsWhatProtobufSerializes) {
  const std::string big(300 * 1024, 'b');  // Spans chunks.
  const std::string json = R"({"keys":1})";
  using core::ResultCode;
  const std::vector<std::optional<core::Result>> results = {
      core::Result{ResultCode::kOk},
      core::Result{ResultCode::kPong},
      core::Result{ResultCode::kHit, ""},  // An empty value: the code alone.
      core::Result{ResultCode::kHit, "v"},
      core::Result{ResultCode::kHit, std::string_view(big).substr(0, 122)},  // The short path.
      core::Result{ResultCode::kHit, std::string_view(big).substr(0, 123)},  // Just past it.
      core::Result{ResultCode::kHit, std::string_view(big).substr(0, 127)},
      core::Result{ResultCode::kHit, std::string_view(big).substr(0, 128)},  // 2-byte lengths.
      core::Result{ResultCode::kHit, std::string_view("\0\xff", 2)},
      core::Result{ResultCode::kHit, big},
      core::Result{ResultCode::kMiss},
      core::Result{ResultCode::kNotFound},
      core::Result{ResultCode::kTtl, {}, core::kTtlNoExpiry},  // Negative: 10 bytes.
      core::Result{ResultCode::kTtl, {}, core::kTtlMissing},   // NOT_FOUND with -2.
      core::Result{ResultCode::kTtl, {}, 0},                   // Zero: omitted.
      core::Result{ResultCode::kTtl, {}, 1},
      core::Result{ResultCode::kTtl, {}, std::numeric_limits<int64_t>::max()},
      core::Result{ResultCode::kStats, json},
      core::Result{ResultCode::kError, "value too large", 0, absl::StatusCode::kInvalidArgument},
      core::Result{ResultCode::kError, "", 0, absl::StatusCode::kResourceExhausted},
      std::nullopt,
  };
  for (uint64_t id :
       {uint64_t{0}, uint64_t{1}, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max()}) {
    for (size_t expected : {size_t{0}, size_t{1} << 20}) {
      EXPECT_EQ(Encode(id, results, expected), Protobuf(id, results)) << id << " " << expected;
    }
    // One at a time too, so each starts a message.
    for (const auto& result : results) EXPECT_EQ(Encode(id, {result}), Protobuf(id, {result}));
  }
}

TEST(ResponseEncoderTest, EmptyResponseIsEmpty) {
  EXPECT_EQ(Encode(0, {}), "");
  EXPECT_EQ(Encode(5, {}), std::string("\x08\x05", 2));
}

TEST(ResponseEncoderTest, SliceWriterKeepsBytesAcrossChunks) {
  SliceWriter writer;
  std::string want;
  for (int round = 0; round < 3; ++round) {  // Reusable after Finish.
    writer.Reset(round == 0 ? 0 : 4096);
    want.clear();
    for (int i = 0; i < 2000; ++i) {
      const std::string piece(static_cast<size_t>(i % 97), static_cast<char>('a' + i % 26));
      writer.Append(piece);
      want += piece;
      uint8_t* p = writer.Reserve(SliceWriter::kMaxReserve);
      const size_t n = static_cast<size_t>(i % SliceWriter::kMaxReserve);
      for (size_t j = 0; j < n; ++j) p[j] = static_cast<uint8_t>(j);
      writer.Commit(p + n);
      for (size_t j = 0; j < n; ++j) want += static_cast<char>(j);
      ASSERT_EQ(writer.size(), want.size());
    }
    grpc::ByteBuffer buffer;
    EXPECT_EQ(writer.Finish(&buffer), want.size());
    EXPECT_EQ(Flatten(buffer), want);
    EXPECT_EQ(writer.size(), 0u);
  }
  // Dropped unfinished: nothing leaks (ASan) and the next batch starts empty.
  writer.Append("abandoned");
  writer.Reset(0);
  grpc::ByteBuffer buffer;
  EXPECT_EQ(writer.Finish(&buffer), 0u);
}

// Counts the executor's batches, to show the raw path splits a batch like the typed one.
class BatchSizes final : public core::MetricsSink {
 public:
  void RecordBatch(const core::BatchMetrics& batch) override {
    core::MutexLock lock(&mu_);
    sizes_.push_back(batch.commands);
  }
  std::vector<uint32_t> Take() {
    core::MutexLock lock(&mu_);
    return std::move(sizes_);
  }

 private:
  core::Mutex mu_;
  std::vector<uint32_t> sizes_ ABSL_GUARDED_BY(mu_);
};

TEST(ResponseEncoderTest, ExecuteDecodedAnswersNoOpsInPlaceLikeTheTypedPath) {
  core::FakeClock clock(1000);
  core::Store typed_store(core::StoreOptions{.num_shards = 2, .clock = &clock, .hash_seed = 7});
  core::Store raw_store(core::StoreOptions{.num_shards = 2, .clock = &clock, .hash_seed = 7});
  BatchSizes typed_sizes;
  BatchSizes raw_sizes;
  core::Executor typed(&typed_store, &typed_sizes);
  core::Executor raw(&raw_store, &raw_sizes);

  BatchRequest request;
  request.set_id(3);
  request.add_commands();
  auto* set = request.add_commands()->mutable_set();
  set->set_key("k");
  set->set_value("v");
  request.add_commands();
  request.add_commands();
  request.add_commands()->mutable_get()->set_key("k");
  request.add_commands()->mutable_get()->set_key("k");
  request.add_commands()->mutable_ttl()->set_key("k");
  request.add_commands();
  BatchResponse response;
  EXPECT_EQ(testing::CompareResponses(typed, raw, request.SerializeAsString(), &response), "");
  ASSERT_EQ(response.results_size(), 8);
  EXPECT_EQ(response.results(0).error(), kNoOperationError);
  EXPECT_EQ(response.results(4).value(), "v");
  EXPECT_EQ(raw_sizes.Take(), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(typed_sizes.Take(), (std::vector<uint32_t>{1, 3}));

  // Only no-ops: no executor call at all; only commands: one.
  request.Clear();
  request.add_commands();
  EXPECT_EQ(testing::CompareResponses(typed, raw, request.SerializeAsString()), "");
  EXPECT_TRUE(raw_sizes.Take().empty());
  request.Clear();
  for (int i = 0; i < 5; ++i) request.add_commands()->mutable_ping();
  EXPECT_EQ(testing::CompareResponses(typed, raw, request.SerializeAsString()), "");
  EXPECT_EQ(raw_sizes.Take(), (std::vector<uint32_t>{5}));
}

}  // namespace
}  // namespace crabcache::service
