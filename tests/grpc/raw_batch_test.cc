// BatchExecute on the wire, through real channels: what a client other than the C++ generated
// code may send (valid but unusual protobuf encodings, compressed messages, bytes that are no
// BatchRequest at all), and the byte counts the server reports. BatchExecute is served raw
// (service/batch_decoder.h, service/response_encoder.h); these tests hold it to protobuf's meaning
// end to end. The GrpcContractTest cases also run against a real crabcached.
#include <grpc/compression.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/grpc/test_server.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;

// Wire-format pieces for hand-made requests.
std::string Varint(uint64_t v) {
  std::string out;
  for (; v >= 0x80; v >>= 7) out += static_cast<char>(v | 0x80);
  return out + static_cast<char>(v);
}
std::string Len(uint32_t field, const std::string& payload) {
  return Varint(field << 3 | 2) + Varint(payload.size()) + payload;
}
std::string VarintField(uint32_t field, uint64_t v) { return Varint(field << 3) + Varint(v); }

// A BatchExecute stream whose messages are raw bytes (a generic call on a completion queue).
class RawBatchStream {
 public:
  explicit RawBatchStream(const std::shared_ptr<grpc::Channel>& channel) : stub_(channel) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    call_ = stub_.PrepareCall(&context_, "/crabcache.v1.Cache/BatchExecute", &cq_);
    call_->StartCall(Tag(kStart));
    Await(kStart);
  }
  ~RawBatchStream() {
    if (!finished_) {
      context_.TryCancel();
      Finish();
    }
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  bool Write(const std::string& bytes) {
    grpc::Slice slice(bytes);
    const grpc::ByteBuffer buffer(&slice, 1);
    call_->Write(buffer, Tag(kWrite));
    return Await(kWrite);
  }
  // The next message's bytes; nullopt when the stream is over.
  std::optional<std::string> Read() {
    grpc::ByteBuffer buffer;
    call_->Read(&buffer, Tag(kRead));
    if (!Await(kRead)) return std::nullopt;
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(buffer.Dump(&slices).ok());
    std::string out;
    for (const auto& slice : slices) out.append(slice.begin(), slice.end());
    return out;
  }
  grpc::Status Finish() {
    call_->WritesDone(Tag(kWritesDone));
    Await(kWritesDone);
    grpc::Status status;
    call_->Finish(&status, Tag(kFinish));
    Await(kFinish);
    finished_ = true;
    return status;
  }

 private:
  enum Op : intptr_t { kStart = 1, kWrite, kRead, kWritesDone, kFinish };
  static void* Tag(Op op) { return reinterpret_cast<void*>(op); }
  bool Await(Op op) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq_.Next(&tag, &ok));
    EXPECT_EQ(tag, Tag(op));
    return ok;
  }

  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool finished_ = false;
};

BatchResponse Parse(const std::optional<std::string>& bytes) {
  BatchResponse response;
  EXPECT_TRUE(bytes.has_value());
  if (bytes.has_value()) {
    EXPECT_TRUE(response.ParseFromString(*bytes));
    // The server's encoding is protobuf's own, byte for byte.
    EXPECT_EQ(response.SerializeAsString(), *bytes);
  }
  return response;
}

// Encodings protobuf accepts but never produces: repeated fields, merged and replaced oneof
// cases, unknown fields and known numbers with other wire types.
TEST_F(GrpcContractTest, UnusualEncodingsMeanWhatProtobufMeans) {
  RawBatchStream stream(channel_);
  const std::string unknown =
      VarintField(15, 300) + Len(1000, "skip") + Varint(17 << 3 | 5) + "abcd";
  const std::string set_merged =  // key "raw/b", value "x", no ttl
      Len(2, Len(2, Len(1, "raw/a") + Len(2, "x")) + unknown + Len(2, Len(1, "raw/b")));
  const std::string get = Len(2, unknown + Len(3, Len(1, "raw/b") + unknown));
  const std::string replaced = Len(2, Len(2, Len(1, "raw/c")) + Len(3, Len(1, "raw/a")));
  const std::string request = VarintField(1, 5) + set_merged + unknown + get + replaced +
                              Len(2, "") + Len(1, "not an id") + VarintField(1, 6);
  ASSERT_TRUE(stream.Write(request));
  const BatchResponse response = Parse(stream.Read());
  EXPECT_EQ(response.id(), 6u);
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).code(), crabcache::v1::OK);
  EXPECT_EQ(response.results(1).code(), crabcache::v1::HIT);
  EXPECT_EQ(response.results(1).value(), "x");
  EXPECT_EQ(response.results(2).code(), crabcache::v1::MISS);  // The Get of "raw/a" won.
  EXPECT_EQ(response.results(3).code(), crabcache::v1::ERROR);
  EXPECT_EQ(response.results(3).error(), "INVALID_ARGUMENT: command has no operation set");
  EXPECT_TRUE(stream.Finish().ok());
  ExpectNoOpenStreams();
}

TEST_F(GrpcContractTest, MalformedRequestFailsTheStreamWithInvalidArgument) {
  const std::vector<std::string> malformed = {
      Len(2, Len(3, Len(1, "k"))).substr(0, 5),  // Cut short.
      Len(2, "") + std::string(1, '\0'),         // A zero tag.
      Varint(5 << 3 | 7),                        // Wire type 7.
  };
  for (const std::string& bytes : malformed) {
    RawBatchStream stream(channel_);
    ASSERT_TRUE(stream.Write(Len(2, Len(1, ""))));  // One good batch first: a ping.
    EXPECT_EQ(Parse(stream.Read()).results(0).code(), crabcache::v1::PONG);
    stream.Write(bytes);
    EXPECT_FALSE(stream.Read().has_value());
    const grpc::Status status = stream.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind("malformed BatchRequest: ", 0), 0u)
        << status.error_message();
  }
  ExpectNoOpenStreams();
}

TEST_F(GrpcContractTest, CompressedRequestsAreDecoded) {
  grpc::ClientContext context;
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  auto stream = stub_->BatchExecute(&context);
  BatchRequest batch;
  batch.set_id(1);
  for (int i = 0; i < 200; ++i) {
    auto* set = batch.add_commands()->mutable_set();
    set->set_key(absl::StrCat("gz/", i));
    set->set_value(std::string(1000, static_cast<char>('a' + i % 26)));
  }
  for (int i = 0; i < 200; ++i)
    batch.add_commands()->mutable_get()->set_key(absl::StrCat("gz/", i));
  ASSERT_TRUE(stream->Write(batch));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 400);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(response.results(200 + i).value(),
              std::string(1000, static_cast<char>('a' + i % 26)));
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Requests of several MiB arrive in many slices and are decoded from one flat copy; responses of
// several MiB leave in several chunks. (3 MB: clients accept 4 MiB messages by default.)
TEST_F(GrpcContractTest, LargeRequestsAndResponses) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  BatchRequest sets;
  BatchRequest gets;
  for (int i = 0; i < 3; ++i) {
    auto* set = sets.add_commands()->mutable_set();
    set->set_key(absl::StrCat("large/", i));
    set->set_value(std::string(1000 * 1000, static_cast<char>('A' + i)));
    gets.add_commands()->mutable_get()->set_key(absl::StrCat("large/", i));
  }
  ASSERT_TRUE(stream->Write(sets));
  ASSERT_TRUE(stream->Write(gets));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(response.results(i).value(), std::string(1000 * 1000, static_cast<char>('A' + i)));
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// The service's counters: exact message sizes in and out, malformed and oversized batches.
TEST(RawBatchMetricsTest, CountsWireBytesAndRefusals) {
  InProcessServer server;
  ASSERT_TRUE(server.status().ok()) << server.status();
  const auto channel = grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  const CacheService& service = server.frontend_->service();
  uint64_t sent = 0;
  uint64_t received = 0;
  {
    RawBatchStream stream(channel);
    for (int i = 0; i < 50; ++i) {
      BatchRequest batch;
      batch.set_id(i);
      for (int c = 0; c <= i; ++c) {
        auto* set = batch.add_commands()->mutable_set();
        set->set_key(absl::StrCat("m", c));
        set->set_value(std::string(c * 7, 'v'));
        batch.add_commands()->mutable_get()->set_key(absl::StrCat("m", c));
      }
      const std::string bytes = batch.SerializeAsString();
      ASSERT_TRUE(stream.Write(bytes));
      sent += bytes.size();
      const std::optional<std::string> reply = stream.Read();
      ASSERT_TRUE(reply.has_value());
      received += reply->size();
    }
    EXPECT_TRUE(stream.Finish().ok());
  }
  EXPECT_EQ(service.bytes_in(), sent);
  EXPECT_EQ(service.bytes_out(), received);

  {
    RawBatchStream stream(channel);
    stream.Write(std::string("\x12\x09", 2));
    EXPECT_EQ(stream.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(service.malformed_batches(), 1u);
  EXPECT_EQ(service.oversized_batches(), 0u);
  {
    RawBatchStream stream(channel);
    std::string big;
    for (int i = 0; i < 10001; ++i) big += Len(2, "");
    stream.Write(big);
    const grpc::Status status = stream.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "batch 0 has 10001 commands; the limit is 10000");
  }
  EXPECT_EQ(service.oversized_batches(), 1u);
  EXPECT_EQ(service.malformed_batches(), 1u);
}

// Regression: a response whose write failed (the client cancelled while it was flow-controlled)
// was counted in bytes_out as if it had been sent.
TEST(RawBatchMetricsTest, FailedWriteIsNotCounted) {
  InProcessServer server;
  ASSERT_TRUE(server.status().ok()) << server.status();
  const CacheService& service = server.frontend_->service();
  auto stub = crabcache::v1::Cache::NewStub(
      grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    crabcache::v1::SetRequest set;
    set.set_key("big");
    set.set_value(std::string(1 << 20, 'x'));
    crabcache::v1::SetResponse out;
    ASSERT_TRUE(stub->Set(&context, set, &out).ok());
  }
  // A 32 MiB response that the client never reads: far beyond what HTTP/2 flow control lets
  // the server send, so the write stays in flight until the cancellation fails it.
  BatchRequest batch;
  batch.set_id(1);
  for (int i = 0; i < 32; ++i) batch.add_commands()->mutable_get()->set_key("big");
  grpc::ClientContext context;
  auto stream = stub->BatchExecute(&context);
  ASSERT_TRUE(stream->Write(batch));
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (service.bytes_in() == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_GT(service.bytes_in(), 0u) << "the server never read the batch";
  absl::SleepFor(absl::Milliseconds(200));  // Executed and its write started (microseconds).
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  while (service.open_streams() != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(service.open_streams(), 0);
  EXPECT_EQ(service.bytes_out(), 0u);
}

}  // namespace
}  // namespace crabcache::service
