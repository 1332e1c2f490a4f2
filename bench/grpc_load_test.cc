// The gRPC engine against the real gRPC front end in process (service::GrpcFrontend over a real
// store and executor on 127.0.0.1:0): batches and unary calls run clean, and a store holding
// values other than the bench's fails the run.
#include "bench/grpc_load.h"

#include <memory>

#include "core/executor.h"
#include "core/store.h"
#include "gtest/gtest.h"
#include "service/grpc_server.h"

namespace crabcache::bench {
namespace {

class GrpcLoadTest : public ::testing::Test {
 protected:
  GrpcLoadTest() : store_(core::StoreOptions{.num_shards = 4}), executor_(&store_, nullptr) {
    auto frontend = service::GrpcFrontend::Start({.address = "127.0.0.1", .port = 0}, &executor_);
    EXPECT_TRUE(frontend.ok()) << frontend.status();
    frontend_ = *std::move(frontend);
  }

  LoadOptions Options() const {
    LoadOptions o;
    o.protocol = ProtocolKind::kGrpc;
    o.port = frontend_->port();
    o.connections = 2;
    o.streams = 4;
    o.pipeline = 16;
    o.keys = 2000;
    o.key_size = 12;
    o.value_size = 32;
    o.requests = 5000;
    o.warmup_s = 0;
    return o;
  }

  static absl::StatusOr<LoadResult> Run(const LoadOptions& o) {
    return RunGrpcLoad(*KeySpace::Create(o.keys, o.key_size, o.value_size), o);
  }

  core::Store store_;
  core::Executor executor_;
  std::unique_ptr<service::GrpcFrontend> frontend_;
};

TEST_F(GrpcLoadTest, BatchExecuteRunsAndVerifiesEveryResult) {
  auto r = Run(Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->ops, 5000u);
  EXPECT_GE(r->verified, 2000u + r->ops);
  EXPECT_GT(r->gets, 0u);
  EXPECT_EQ(r->gets, r->get_hits);
  EXPECT_EQ(r->latency_ns.count(), r->ops);
}

TEST_F(GrpcLoadTest, TwoThreadsAndBatchesOfOne) {
  LoadOptions o = Options();
  o.threads = 2;
  o.pipeline = 1;
  o.requests = 2000;
  auto r = Run(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->ops, 2000u);
}

TEST_F(GrpcLoadTest, UnaryCallsRunAndVerify) {
  LoadOptions o = Options();
  o.unary = true;
  o.streams = 8;
  o.requests = 2000;
  auto r = Run(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->ops, 2000u);
  EXPECT_EQ(r->gets, r->get_hits);
}

TEST_F(GrpcLoadTest, ValuesOtherThanTheBenchsFailTheRun) {
  LoadOptions o = Options();
  o.load_only = true;  // Store 32-byte values...
  ASSERT_TRUE(Run(o).ok());
  o.load_only = false;
  o.prefill = false;
  o.value_size = 20;  // ...then expect 20-byte ones.
  o.get_ratio = 1;
  for (bool unary : {false, true}) {
    o.unary = unary;
    auto r = Run(o);
    ASSERT_FALSE(r.ok()) << "unary " << unary;
    EXPECT_NE(r.status().message().find("wrong value"), std::string::npos) << r.status();
  }
}

TEST_F(GrpcLoadTest, MissesAreAllowedOnlyWithoutPrefill) {
  LoadOptions o = Options();
  o.prefill = false;
  o.get_ratio = 1;
  o.requests = 500;
  auto r = Run(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->get_hits, 0u);
}

}  // namespace
}  // namespace crabcache::bench
