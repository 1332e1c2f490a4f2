// End-to-end tests of the gRPC front end through real channels.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/executor.h"
#include "core/mutex.h"
#include "core/recording_sink.h"
#include "core/store.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "gtest/gtest.h"
#include "service/grpc_server.h"
#include "tests/grpc/test_server.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;
using crabcache::v1::Cache;

// What only an in-process front end can show: its own limits, health switch and shutdown.
class GrpcFrontendTest : public ::testing::Test {
 protected:
  GrpcFrontendTest()
      : channel_(grpc::CreateChannel(server_.target(), grpc::InsecureChannelCredentials())),
        stub_(Cache::NewStub(channel_)),
        frontend_(server_.frontend_.get()),
        executor_(server_.executor_) {}

  void SetUp() override { ASSERT_TRUE(server_.status().ok()) << server_.status(); }

  InProcessServer server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Cache::Stub> stub_;
  GrpcFrontend* const frontend_;
  core::Executor& executor_;
};

// The stored value of `key`, or nullopt: read straight from the executor, so a test sees what
// the server did, not what a client was told.
std::optional<std::string> Stored(const core::Executor& executor, const std::string& key) {
  core::RecordingSink sink;
  const core::Command get = core::Command::Get(key);
  executor.Execute(core::Frontend::kGrpc, absl::MakeConstSpan(&get, 1), sink);
  if (sink.results.size() != 1 || sink.results[0].code != core::ResultCode::kHit) {
    return std::nullopt;
  }
  return sink.results[0].value;
}

void AddSet(BatchRequest* batch, const std::string& key, const std::string& value,
            uint64_t ttl_ms = 0) {
  auto* set = batch->add_commands()->mutable_set();
  set->set_key(key);
  set->set_value(value);
  set->set_ttl_ms(ttl_ms);
}
void AddGet(BatchRequest* batch, const std::string& key) {
  batch->add_commands()->mutable_get()->set_key(key);
}
void AddDelete(BatchRequest* batch, const std::string& key) {
  batch->add_commands()->mutable_delete_()->set_key(key);
}
// A unary Get that must succeed.
crabcache::v1::GetResponse UnaryGet(Cache::Stub& stub, const std::string& key) {
  grpc::ClientContext context;
  crabcache::v1::GetRequest request;
  request.set_key(key);
  crabcache::v1::GetResponse response;
  EXPECT_TRUE(stub.Get(&context, request, &response).ok()) << key;
  return response;
}

TEST_F(GrpcContractTest, ManyBatchesPipelined) {
  constexpr int kBatches = 1000;
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  // Writes run ahead of reads, so the server's pending path is exercised.
  std::thread writer([&] {
    for (int i = 0; i < kBatches; ++i) {
      BatchRequest batch;
      batch.set_id(i);
      AddSet(&batch, absl::StrCat("k", i), absl::StrCat("v", i));
      AddGet(&batch, absl::StrCat("k", i));
      AddGet(&batch, absl::StrCat("k", i - 1));
      ASSERT_TRUE(stream->Write(batch));
    }
    stream->WritesDone();
  });
  BatchResponse response;
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_TRUE(stream->Read(&response)) << i;
    ASSERT_EQ(response.id(), static_cast<uint64_t>(i));
    ASSERT_EQ(response.results_size(), 3);
    EXPECT_EQ(response.results(0).code(), crabcache::v1::OK);
    EXPECT_EQ(response.results(1).code(), crabcache::v1::HIT);
    EXPECT_EQ(response.results(1).value(), absl::StrCat("v", i));
    EXPECT_EQ(response.results(2).code(), i == 0 ? crabcache::v1::MISS : crabcache::v1::HIT);
  }
  EXPECT_FALSE(stream->Read(&response));
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  ExpectNoOpenStreams();
}

TEST_F(GrpcContractTest, EmptyBatchGetsEmptyResponse) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  BatchRequest batch;
  batch.set_id(42);
  ASSERT_TRUE(stream->Write(batch));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), 42u);
  EXPECT_EQ(response.results_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcContractTest, TenThousandCommandBatch) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  BatchRequest sets, gets;
  sets.set_id(1);
  gets.set_id(2);
  for (int i = 0; i < 5000; ++i) {
    AddSet(&sets, absl::StrCat("key", i), std::string(16, 'a' + i % 26));
    AddSet(&sets, absl::StrCat("gone", i), "x");
  }
  for (int i = 0; i < 10000; ++i) AddGet(&gets, absl::StrCat("key", i));
  ASSERT_EQ(sets.commands_size(), 10000);
  ASSERT_TRUE(stream->Write(sets));
  ASSERT_TRUE(stream->Write(gets));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 10000);
  for (const auto& result : response.results()) ASSERT_EQ(result.code(), crabcache::v1::OK);
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.id(), 2u);
  ASSERT_EQ(response.results_size(), 10000);
  for (int i = 0; i < 10000; ++i) {
    if (i < 5000) {
      ASSERT_EQ(response.results(i).code(), crabcache::v1::HIT) << i;
      ASSERT_EQ(response.results(i).value(), std::string(16, 'a' + i % 26));
    } else {
      ASSERT_EQ(response.results(i).code(), crabcache::v1::MISS) << i;
    }
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcContractTest, OversizedBatchFailsTheStream) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  BatchRequest ok_batch;
  ok_batch.set_id(1);
  AddSet(&ok_batch, "a", "b");
  ASSERT_TRUE(stream->Write(ok_batch));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  BatchRequest big;
  big.set_id(2);
  for (int i = 0; i < 10001; ++i) big.add_commands()->mutable_ping();
  stream->Write(big);  // May or may not report the failure yet.
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  ExpectNoOpenStreams();
}

TEST_F(GrpcFrontendTest, MessageAboveTheSizeLimitIsResourceExhausted) {
  auto small = GrpcFrontend::Start({.address = "127.0.0.1", .port = 0, .max_message_bytes = 4096},
                                   &executor_);
  ASSERT_TRUE(small.ok()) << small.status();
  auto stub = Cache::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*small)->port()),
                                                 grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->BatchExecute(&context);
  BatchRequest batch;
  batch.set_id(1);
  AddSet(&batch, "big", std::string(8192, 'x'));
  stream->Write(batch);
  BatchResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  (*small)->Shutdown(absl::Now() + absl::Seconds(1));
  EXPECT_EQ((*small)->open_streams(), 0);
}

TEST_F(GrpcContractTest, BadCommandsAreErrorResultsAndTheStreamGoesOn) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  BatchRequest batch;
  batch.set_id(1);
  AddSet(&batch, "k", "v");
  batch.add_commands();                                     // No operation.
  AddSet(&batch, std::string(kMaxKeyBytes + 1, 'k'), "v");  // Key above the limit.
  AddGet(&batch, "k");
  ASSERT_TRUE(stream->Write(batch));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).code(), crabcache::v1::OK);
  EXPECT_EQ(response.results(1).code(), crabcache::v1::ERROR);
  EXPECT_EQ(response.results(1).error().rfind("INVALID_ARGUMENT", 0), 0u);
  EXPECT_EQ(response.results(2).code(), crabcache::v1::ERROR);
  EXPECT_EQ(response.results(2).error().rfind("INVALID_ARGUMENT", 0), 0u);
  EXPECT_EQ(response.results(3).code(), crabcache::v1::HIT);

  BatchRequest next;
  next.set_id(2);
  next.add_commands()->mutable_ping();
  next.add_commands()->mutable_ttl()->set_key("k");
  next.add_commands()->mutable_ttl()->set_key("missing");
  next.add_commands()->mutable_expire()->set_key("k");
  next.mutable_commands(3)->mutable_expire()->set_ttl_ms(60000);
  next.add_commands()->mutable_ttl()->set_key("k");
  next.add_commands()->mutable_stats();
  ASSERT_TRUE(stream->Write(next));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 6);
  EXPECT_EQ(response.results(0).code(), crabcache::v1::PONG);
  EXPECT_EQ(response.results(1).code(), crabcache::v1::OK);
  EXPECT_EQ(response.results(1).ttl_ms(), -1);
  EXPECT_EQ(response.results(2).code(), crabcache::v1::NOT_FOUND);
  EXPECT_EQ(response.results(2).ttl_ms(), -2);
  EXPECT_EQ(response.results(3).code(), crabcache::v1::OK);
  EXPECT_GT(response.results(4).ttl_ms(), 50000);
  EXPECT_LE(response.results(4).ttl_ms(), 60000);
  EXPECT_EQ(response.results(5).code(), crabcache::v1::OK);
  EXPECT_NE(response.results(5).value().find("\"keys\""), std::string::npos);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcContractTest, CancellationMidStream) {
  for (int round = 0; round < 20; ++round) {
    grpc::ClientContext context;
    auto stream = stub_->BatchExecute(&context);
    BatchRequest batch;
    batch.set_id(1);
    for (int i = 0; i < 100; ++i) AddSet(&batch, absl::StrCat("c", i), std::string(100, 'x'));
    ASSERT_TRUE(stream->Write(batch));
    BatchResponse response;
    ASSERT_TRUE(stream->Read(&response));
    for (int i = 0; i < round; ++i) stream->Write(batch);  // Some left in flight.
    context.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ExpectNoOpenStreams();
}

TEST_F(GrpcContractTest, DeadlineEndsAnIdleStream) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  auto stream = stub_->BatchExecute(&context);
  BatchResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectNoOpenStreams();
}

// A deadline that expires while the stream is busy (the client writing and reading as fast as
// it can): the stream ends with DEADLINE_EXCEEDED after a prefix of correct responses, the
// server lets go of it (no open stream left; ASan's leak check covers the reactor), and serves
// the next stream and call as before.
TEST_F(GrpcContractTest, DeadlineExpiresWhileAStreamIsBusy) {
  const uint64_t streams_before = server_->streams_total();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  auto stream = stub_->BatchExecute(&context);
  std::atomic<int> sent{0};
  std::thread writer([&] {
    for (int id = 0; id < 1000000; ++id) {
      BatchRequest batch;
      batch.set_id(id);
      for (int c = 0; c < 8; ++c) AddSet(&batch, absl::StrCat("busy/", c), std::string(256, 'b'));
      AddGet(&batch, "busy/0");
      if (!stream->Write(batch)) return;
      sent.store(id + 1);
    }
  });
  BatchResponse response;
  uint64_t answered = 0;
  while (stream->Read(&response)) {
    ASSERT_EQ(response.id(), answered);
    ASSERT_EQ(response.results_size(), 9);
    ASSERT_EQ(response.results(8).code(), crabcache::v1::HIT);
    ++answered;
  }
  writer.join();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GT(answered, 0u) << "the stream was not busy when its deadline passed";
  EXPECT_GE(static_cast<uint64_t>(sent.load()), answered);
  ExpectNoOpenStreams();
  EXPECT_EQ(server_->streams_total() - streams_before, 1u);

  // The server goes on serving: a new stream and a unary call.
  grpc::ClientContext next_context;
  auto next = stub_->BatchExecute(&next_context);
  BatchRequest batch;
  batch.set_id(7);
  AddGet(&batch, "busy/1");
  ASSERT_TRUE(next->Write(batch));
  ASSERT_TRUE(next->Read(&response));
  EXPECT_EQ(response.id(), 7u);
  EXPECT_EQ(response.results(0).code(), crabcache::v1::HIT);
  next->WritesDone();
  EXPECT_TRUE(next->Finish().ok());
  grpc::ClientContext ping_context;
  crabcache::v1::PingResponse pong;
  EXPECT_TRUE(stub_->Ping(&ping_context, {}, &pong).ok());
  ExpectNoOpenStreams();
}

// Unary deadlines. A call whose deadline has already passed fails with DEADLINE_EXCEEDED and
// its command never runs (the key stays absent). Calls with deadlines of a millisecond or two
// race the server: each ends OK or DEADLINE_EXCEEDED, every Set that was acknowledged is
// stored, and the server keeps serving.
TEST_F(GrpcContractTest, UnaryDeadlines) {
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
    crabcache::v1::SetRequest request;
    request.set_key("deadline/expired");
    request.set_value("v");
    crabcache::v1::SetResponse response;
    EXPECT_EQ(stub_->Set(&context, request, &response).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  std::vector<int> acknowledged;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(500 * (i % 5)));
    crabcache::v1::SetRequest request;
    request.set_key(absl::StrCat("deadline/", i));
    request.set_value(std::string(64 << 10, 'd'));
    crabcache::v1::SetResponse response;
    const grpc::Status status = stub_->Set(&context, request, &response);
    if (status.ok()) {
      acknowledged.push_back(i);
    } else {
      ASSERT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
    }
  }
  auto get = [&](const std::string& key) { return UnaryGet(*stub_, key).found(); };
  EXPECT_FALSE(get("deadline/expired"));
  for (int i : acknowledged) EXPECT_TRUE(get(absl::StrCat("deadline/", i))) << i;
  ExpectNoOpenStreams();
}

// Each stream owns a slice of the key space and checks every result against its own model.
TEST_F(GrpcContractTest, ConcurrentStreamsAgainstAModel) {
  static constexpr int kStreams = 16;
  static constexpr int kBatches = 100;
  static constexpr int kCommands = 32;
  const uint64_t streams_before = server_->streams_total();
  std::vector<std::thread> threads;
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([this, s] {
      std::mt19937 rng(s);
      std::map<std::string, std::string> model;
      grpc::ClientContext context;
      auto stream = stub_->BatchExecute(&context);
      for (int b = 0; b < kBatches; ++b) {
        BatchRequest batch;
        batch.set_id(b);
        std::vector<crabcache::v1::Result> expected;
        for (int c = 0; c < kCommands; ++c) {
          const std::string key = absl::StrCat("s", s, "/", rng() % 20);
          crabcache::v1::Result want;
          switch (rng() % 3) {
            case 0: {
              const std::string value = absl::StrCat(rng());
              AddSet(&batch, key, value);
              model[key] = value;
              want.set_code(crabcache::v1::OK);
              break;
            }
            case 1:
              AddGet(&batch, key);
              if (auto it = model.find(key); it != model.end()) {
                want.set_code(crabcache::v1::HIT);
                want.set_value(it->second);
              } else {
                want.set_code(crabcache::v1::MISS);
              }
              break;
            default:
              AddDelete(&batch, key);
              want.set_code(model.erase(key) ? crabcache::v1::OK : crabcache::v1::NOT_FOUND);
              break;
          }
          expected.push_back(want);
        }
        ASSERT_TRUE(stream->Write(batch));
        BatchResponse response;
        ASSERT_TRUE(stream->Read(&response));
        ASSERT_EQ(response.id(), static_cast<uint64_t>(b));
        ASSERT_EQ(response.results_size(), kCommands);
        for (int c = 0; c < kCommands; ++c) {
          ASSERT_EQ(response.results(c).code(), expected[c].code()) << s << "/" << b << "/" << c;
          ASSERT_EQ(response.results(c).value(), expected[c].value());
        }
      }
      stream->WritesDone();
      EXPECT_TRUE(stream->Finish().ok());
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(server_->streams_total() - streams_before, static_cast<uint64_t>(kStreams));
  ExpectNoOpenStreams();
}

TEST_F(GrpcContractTest, UnaryRpcs) {
  {
    grpc::ClientContext context;
    crabcache::v1::PingResponse response;
    EXPECT_TRUE(stub_->Ping(&context, {}, &response).ok());
  }
  {
    grpc::ClientContext context;
    crabcache::v1::SetRequest request;
    request.set_key(std::string("bin\0key", 7));
    request.set_value(std::string("\xff\0v", 3));
    crabcache::v1::SetResponse response;
    EXPECT_TRUE(stub_->Set(&context, request, &response).ok());
  }
  auto get = [&](const std::string& key) { return UnaryGet(*stub_, key); };
  auto del = [&](const std::string& key) {
    grpc::ClientContext context;
    crabcache::v1::DeleteRequest request;
    request.set_key(key);
    crabcache::v1::DeleteResponse response;
    EXPECT_TRUE(stub_->Delete(&context, request, &response).ok());
    return response.deleted();
  };
  auto hit = get(std::string("bin\0key", 7));
  EXPECT_TRUE(hit.found());
  EXPECT_EQ(hit.value(), std::string("\xff\0v", 3));
  EXPECT_TRUE(del(std::string("bin\0key", 7)));
  EXPECT_FALSE(del(std::string("bin\0key", 7)));
  EXPECT_FALSE(get(std::string("bin\0key", 7)).found());
  {
    grpc::ClientContext context;
    crabcache::v1::SetRequest request;
    request.set_key(std::string(kMaxKeyBytes + 1, 'k'));
    crabcache::v1::SetResponse response;
    EXPECT_EQ(stub_->Set(&context, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}
std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const auto& slice : slices) out.append(slice.begin(), slice.end());
  return out;
}

// grpc.health.v1.Health/Check with an empty request; answers the serialized response.
std::string HealthCheck(grpc::Channel* channel) {
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  std::optional<grpc::Status> status;
  core::Mutex mu;
  std::condition_variable_any done;
  const grpc::ByteBuffer request = ToBuffer("");
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   core::MutexLock lock(&mu);
                   status = s;
                   done.notify_all();
                 });
  core::MutexLock lock(&mu);
  while (!status.has_value()) done.wait(mu);
  EXPECT_TRUE(status->ok()) << status->error_message();
  return FromBuffer(response);
}

// One ServerReflectionInfo exchange (list_services) on `channel`: its final status.
grpc::Status ListServices(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  call->Write(ToBuffer(std::string("\x3a\x00", 2)), reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST_F(GrpcFrontendTest, HealthGoesNotServing) {
  // HealthCheckResponse{status: SERVING (1)} and {status: NOT_SERVING (2)}.
  EXPECT_EQ(HealthCheck(channel_.get()), std::string("\x08\x01", 2));
  frontend_->SetNotServing();
  EXPECT_EQ(HealthCheck(channel_.get()), std::string("\x08\x02", 2));
}

TEST_F(GrpcContractTest, ReflectionListsTheService) {
  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto await = [&cq](int want) {
    void* tag;
    bool ok;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(await(1));
  // ServerReflectionRequest{list_services: ""} (field 7, length-delimited).
  call->Write(ToBuffer(std::string("\x3a\x00", 2)), reinterpret_cast<void*>(2));
  ASSERT_TRUE(await(2));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(await(3));
  EXPECT_NE(FromBuffer(response).find("crabcache.v1.Cache"), std::string::npos);
  call->WritesDone(reinterpret_cast<void*>(4));
  await(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

// A channel with its own connection (channels to one target otherwise share one).
std::shared_ptr<grpc::Channel> OwnConnection(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

grpc::Status PingOn(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  crabcache::v1::PingResponse pong;
  return Cache::NewStub(channel)->Ping(&context, {}, &pong);
}

// Waits (bounded) until `done`.
template <typename F>
bool WaitFor(F done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!done() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  return done();
}

// --grpc_max_connections: the third connection is closed as soon as it is accepted (the
// client sees UNAVAILABLE) and counted; the two open ones keep working; once one closes, a new
// connection is served. The open count follows gRPC's closes.
TEST_F(GrpcFrontendTest, ConnectionsBeyondTheCapAreClosed) {
  auto capped =
      GrpcFrontend::Start({.address = "127.0.0.1", .port = 0, .max_connections = 2}, &executor_);
  ASSERT_TRUE(capped.ok()) << capped.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*capped)->port());
  auto first = OwnConnection(target);
  auto second = OwnConnection(target);
  ASSERT_TRUE(PingOn(first).ok());
  ASSERT_TRUE(PingOn(second).ok());
  EXPECT_EQ((*capped)->open_connections(), 2);
  EXPECT_EQ((*capped)->connections_accepted(), 2u);

  auto third = OwnConnection(target);
  const grpc::Status refused = PingOn(third);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_GE((*capped)->connections_rejected(), 1u);
  EXPECT_EQ((*capped)->connections_accepted(), 2u);
  EXPECT_TRUE(PingOn(first).ok()) << "an open connection stopped working";
  EXPECT_TRUE(PingOn(second).ok());

  first.reset();  // The client closes its connection; gRPC closes the server's side.
  ASSERT_TRUE(WaitFor([&] { return (*capped)->open_connections() == 1; }))
      << (*capped)->open_connections();
  auto fourth = OwnConnection(target);
  EXPECT_TRUE(PingOn(fourth).ok());
  EXPECT_EQ((*capped)->open_connections(), 2);
  EXPECT_EQ((*capped)->connections_accepted(), 3u);
  (*capped)->Shutdown(absl::Now() + absl::Seconds(5));
  // gRPC closes the sockets of a server that has shut down a moment later, on its own threads.
  EXPECT_TRUE(WaitFor([&] { return (*capped)->open_connections() == 0; }))
      << (*capped)->open_connections();
}

// The health-only port serves grpc.health.v1 and nothing else: no reflection, no Cache.
TEST_F(GrpcFrontendTest, HealthPortServesOnlyHealth) {
  auto with_health =
      GrpcFrontend::Start({.address = "127.0.0.1", .port = 0, .health_port = -1}, &executor_);
  ASSERT_TRUE(with_health.ok()) << with_health.status();
  ASSERT_NE((*with_health)->health_port(), 0);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*with_health)->health_port()),
                                     grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthCheck(channel.get()), std::string("\x08\x01", 2));
  EXPECT_EQ(PingOn(channel).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ListServices(channel).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // The main port still has reflection.
  EXPECT_TRUE(ListServices(grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*with_health)->port()),
                                               grpc::InsecureChannelCredentials()))
                  .ok());
}

// Server reflection runs on gRPC's synchronous threads, one per open stream; the resource
// quota caps them (kMaxSyncThreads), so unauthenticated reflection streams cannot take threads
// without bound: the ones beyond the cap fail with RESOURCE_EXHAUSTED, and Cache RPCs (on the
// callback API) go on.
TEST_F(GrpcFrontendTest, ReflectionStreamsCannotTakeThreadsWithoutBound) {
  grpc::GenericStub stub(channel_);
  struct Call {
    grpc::ClientContext context;
    grpc::CompletionQueue cq;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call;
  };
  std::vector<std::unique_ptr<Call>> calls;
  int answered = 0;
  int exhausted = 0;
  for (int i = 0; i < 2 * kMaxSyncThreads; ++i) {
    auto c = std::make_unique<Call>();
    c->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    c->call = stub.PrepareCall(
        &c->context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &c->cq);
    void* tag;
    bool ok;
    c->call->StartCall(reinterpret_cast<void*>(1));
    ASSERT_TRUE(c->cq.Next(&tag, &ok));
    c->call->Write(ToBuffer(std::string("\x3a\x00", 2)), reinterpret_cast<void*>(2));
    ASSERT_TRUE(c->cq.Next(&tag, &ok));
    grpc::ByteBuffer response;
    c->call->Read(&response, reinterpret_cast<void*>(3));
    ASSERT_TRUE(c->cq.Next(&tag, &ok));
    if (ok) {
      ++answered;  // This stream now holds a thread until it ends.
    } else {
      grpc::Status status;
      c->call->Finish(&status, reinterpret_cast<void*>(4));
      ASSERT_TRUE(c->cq.Next(&tag, &ok));
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << status.error_message();
      ++exhausted;
    }
    calls.push_back(std::move(c));
  }
  EXPECT_GT(answered, 0);
  EXPECT_LT(answered, kMaxSyncThreads);
  EXPECT_EQ(answered + exhausted, 2 * kMaxSyncThreads);
  EXPECT_TRUE(PingOn(channel_).ok());
  for (auto& c : calls) c->context.TryCancel();
  for (auto& c : calls) {
    c->cq.Shutdown();
    void* tag;
    bool ok;
    while (c->cq.Next(&tag, &ok)) {
    }
  }
}

// The memory quota (--grpc_memory_limit): gRPC refuses a message that alone needs more than the
// quota with RESOURCE_EXHAUSTED even when it is under the message size limit, and the server
// serves again once gRPC has released that memory.
TEST_F(GrpcFrontendTest, MessageBeyondTheMemoryQuotaIsRefused) {
  core::Store store(core::StoreOptions{.num_shards = 4});
  core::Executor big_values(&store, nullptr, core::ExecutorOptions{.max_value_bytes = 64 << 20});
  auto quota = GrpcFrontend::Start(
      {.address = "127.0.0.1", .port = 0, .memory_limit_bytes = 8 << 20}, &big_values);
  ASSERT_TRUE(quota.ok()) << quota.status();
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  auto stub = Cache::NewStub(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", (*quota)->port()),
                                                       grpc::InsecureChannelCredentials(), args));
  auto set = [&](size_t bytes) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    crabcache::v1::SetRequest request;
    request.set_key("q");
    request.set_value(std::string(bytes, 'q'));
    crabcache::v1::SetResponse response;
    return stub->Set(&context, request, &response);
  };
  EXPECT_TRUE(set(1 << 20).ok());
  const grpc::Status refused = set(16 << 20);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  // gRPC frees the refused message's memory asynchronously; until then the quota is still used
  // up and calls keep being reset. The server serves again once it is released.
  EXPECT_TRUE(WaitFor([&] { return set(1 << 20).ok(); })) << "the server stopped serving";
  EXPECT_EQ(Stored(big_values, "q"), std::string(1 << 20, 'q'));
}

// An idle stream (its read waiting for the client's next batch) ends at once when the server
// drains, with UNAVAILABLE, and Shutdown returns long before its deadline.
TEST_F(GrpcFrontendTest, ShutdownEndsAnIdleStreamAtOnce) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  BatchRequest batch;
  batch.set_id(1);
  batch.add_commands()->mutable_ping();
  ASSERT_TRUE(stream->Write(batch));
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  const absl::Time start = absl::Now();
  frontend_->Shutdown(absl::Now() + absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "Shutdown waited for its deadline";
  EXPECT_EQ(frontend_->open_streams(), 0);
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "server shutting down");
  frontend_->Shutdown(absl::Now());  // Idempotent.
  // New calls fail with UNAVAILABLE.
  grpc::ClientContext ping_context;
  ping_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  crabcache::v1::PingResponse pong;
  EXPECT_EQ(stub_->Ping(&ping_context, {}, &pong).error_code(), grpc::StatusCode::UNAVAILABLE);
}

// What a client that keeps writing on a BatchExecute stream sees of a drain, and what the server
// did: a correct response for every batch the server read, in order, then UNAVAILABLE; the
// batches without a response were never executed (their keys are not in the store).
struct DrainOutcome {
  std::vector<uint64_t> answered;  // Response ids, in arrival order.
  int sent = 0;                    // Batches whose Write succeeded.
  bool results_ok = true;          // Every response had one OK per SET.
  grpc::Status status;
};

constexpr int kDrainCommands = 16;

BatchRequest DrainBatch(int id) {
  BatchRequest batch;
  batch.set_id(id);
  for (int c = 0; c < kDrainCommands; ++c) {
    AddSet(&batch, absl::StrCat("drain/", id, "/", c), std::string(64, 'a' + c));
  }
  return batch;
}

void ExpectDrainContract(const DrainOutcome& outcome, const core::Executor& executor) {
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << outcome.status.error_message();
  EXPECT_EQ(outcome.status.error_message(), "server shutting down");
  EXPECT_TRUE(outcome.results_ok);
  for (size_t i = 0; i < outcome.answered.size(); ++i) {
    ASSERT_EQ(outcome.answered[i], i) << "the responses are not a prefix of the batches sent";
  }
  const int n = static_cast<int>(outcome.answered.size());
  EXPECT_GE(outcome.sent, n);
  for (int id = 0; id < outcome.sent; ++id) {
    for (int c : {0, kDrainCommands - 1}) {
      const std::optional<std::string> value = Stored(executor, absl::StrCat("drain/", id, "/", c));
      if (id < n) {
        ASSERT_EQ(value, std::string(64, 'a' + c)) << "answered batch " << id << " not stored";
      } else {
        ASSERT_EQ(value, std::nullopt) << "batch " << id << " ran but got no response";
      }
    }
  }
}

// The drain through GrpcFrontend::Shutdown, with the client writing and reading as fast as it
// can: the contract above holds, and Shutdown returns as soon as the stream ended, not at its
// deadline.
TEST_F(GrpcFrontendTest, ShutdownDrainsABusyStream) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  DrainOutcome outcome;
  std::atomic<int> sent{0};
  std::atomic<int> answered{0};
  std::thread writer([&] {
    for (int id = 0; id < 1000000 && stream->Write(DrainBatch(id)); ++id) sent.store(id + 1);
  });
  std::thread reader([&] {
    BatchResponse response;
    while (stream->Read(&response)) {
      outcome.answered.push_back(response.id());
      outcome.results_ok = outcome.results_ok && response.results_size() == kDrainCommands;
      for (const auto& result : response.results()) {
        outcome.results_ok = outcome.results_ok && result.code() == crabcache::v1::OK;
      }
      answered.fetch_add(1);
    }
  });
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (answered.load() < 50 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_GE(answered.load(), 50);

  const absl::Time start = absl::Now();
  frontend_->Shutdown(absl::Now() + absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "Shutdown waited for its deadline";
  EXPECT_EQ(frontend_->open_streams(), 0);
  reader.join();
  writer.join();
  outcome.sent = sent.load();
  outcome.status = stream->Finish();
  ExpectDrainContract(outcome, executor_);
}

// A CacheService on a plain grpc::Server, so a test can call BeginDrain itself while the
// server still accepts calls.
class CacheServiceDrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    stub = Cache::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server != nullptr) {
      server->Shutdown(absl::ToChronoTime(absl::Now()));
      server->Wait();
    }
  }

  core::Store store{core::StoreOptions{.num_shards = 4}};
  core::Executor executor{&store, nullptr};
  CacheService service{&executor, {}};
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<Cache::Stub> stub;
};

// The same contract where the server has certainly left batches unread when the drain begins:
// the client does not read its (1 MiB) responses, so once HTTP/2 flow control stops the
// server's write, one more batch waits executed ("pending") and the server reads nothing more
// while the client keeps writing. Then CacheService::BeginDrain, then the client reads: the few
// responses, then UNAVAILABLE, and none of the dozens of unread batches ran. The server's
// Shutdown is then prompt.
TEST_F(CacheServiceDrainTest, UnreadBatchesAreNeverExecuted) {
  const std::string big(64 << 10, 'B');
  {
    grpc::ClientContext context;
    crabcache::v1::SetRequest set;
    set.set_key("big");
    set.set_value(big);
    crabcache::v1::SetResponse out;
    ASSERT_TRUE(stub->Set(&context, set, &out).ok());
  }

  grpc::ClientContext context;
  auto stream = stub->BatchExecute(&context);
  std::atomic<int> sent{0};
  std::thread writer([&] {
    for (int id = 0; id < 1000000; ++id) {
      BatchRequest batch = DrainBatch(id);
      for (int g = 0; g < 16; ++g) AddGet(&batch, "big");  // A 1 MiB response.
      if (!stream->Write(batch)) return;
      sent.store(id + 1);
    }
  });
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (sent.load() < 50 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_GE(sent.load(), 50);

  service.BeginDrain();
  DrainOutcome outcome;
  BatchResponse response;
  while (stream->Read(&response)) {
    outcome.answered.push_back(response.id());
    outcome.results_ok = outcome.results_ok && response.results_size() == kDrainCommands + 16;
    for (int i = 0; i < response.results_size(); ++i) {
      outcome.results_ok = outcome.results_ok &&
                           response.results(i).code() ==
                               (i < kDrainCommands ? crabcache::v1::OK : crabcache::v1::HIT) &&
                           (i < kDrainCommands || response.results(i).value() == big);
    }
  }
  writer.join();
  outcome.sent = sent.load();
  outcome.status = stream->Finish();
  ExpectDrainContract(outcome, executor);
  // Flow control lets a few MiB through, so a few batches were read; dozens were not.
  EXPECT_LT(outcome.answered.size() + 20, static_cast<size_t>(outcome.sent))
      << "the server read while its writes were blocked";

  const absl::Time start = absl::Now();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  server->Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(service.open_streams(), 0);
}

// A stream whose client half-closed before the drain keeps its own ending: every batch
// answered, then OK.
TEST_F(GrpcFrontendTest, HalfClosedStreamEndsOkDuringShutdown) {
  grpc::ClientContext context;
  auto stream = stub_->BatchExecute(&context);
  for (int id = 0; id < 50; ++id) {
    BatchRequest batch;
    batch.set_id(id);
    AddSet(&batch, absl::StrCat("half/", id), std::string(1000, 'h'));
    ASSERT_TRUE(stream->Write(batch));
  }
  ASSERT_TRUE(stream->WritesDone());
  BatchResponse response;
  ASSERT_TRUE(stream->Read(&response));  // The server is reading the 50.
  EXPECT_EQ(response.id(), 0u);
  frontend_->Shutdown(absl::Now() + absl::Seconds(30));
  int answered = 1;
  while (stream->Read(&response)) EXPECT_EQ(response.id(), static_cast<uint64_t>(answered++));
  const grpc::Status status = stream->Finish();
  // The drain may have found the stream still reading (UNAVAILABLE after a prefix) or already
  // half-closed (every batch, then OK).
  if (status.ok()) {
    EXPECT_EQ(answered, 50);
  } else {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
  for (int id = 0; id < 50; ++id) {
    EXPECT_EQ(Stored(executor_, absl::StrCat("half/", id)).has_value(), id < answered) << id;
  }
}

// CacheService::BeginDrain on its own: the server still accepts calls, but a new BatchExecute
// stream is refused with UNAVAILABLE while unary calls still run.
TEST_F(CacheServiceDrainTest, NewStreamsAreRefusedWhileDraining) {
  service.BeginDrain();
  grpc::ClientContext context;
  auto stream = stub->BatchExecute(&context);
  BatchRequest batch;
  batch.add_commands()->mutable_ping();
  (void)stream->Write(batch);
  BatchResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "server shutting down");
  EXPECT_EQ(service.streams_total(), 0u);
  grpc::ClientContext ping_context;
  crabcache::v1::PingResponse pong;
  EXPECT_TRUE(stub->Ping(&ping_context, {}, &pong).ok());
}

// Streams busy in both directions when the server stops: every one ends, none leaks (ASan).
TEST_F(GrpcFrontendTest, ShutdownUnderLoad) {
  std::vector<std::thread> threads;
  std::atomic<int> batches_done{0};
  for (int s = 0; s < 8; ++s) {
    threads.emplace_back([this, s, &batches_done] {
      grpc::ClientContext context;
      auto stream = stub_->BatchExecute(&context);
      std::thread reader([&] {
        BatchResponse response;
        while (stream->Read(&response)) batches_done.fetch_add(1);
      });
      BatchRequest batch;
      for (int i = 0; i < 64; ++i) AddSet(&batch, absl::StrCat("load", s, "/", i), "v");
      for (int b = 0; b < 100000 && stream->Write(batch); ++b) {
      }
      stream->WritesDone();
      reader.join();
      stream->Finish();
    });
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (batches_done.load() < 200 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  frontend_->Shutdown(absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(frontend_->open_streams(), 0);
  for (auto& thread : threads) thread.join();
}

}  // namespace
}  // namespace crabcache::service
