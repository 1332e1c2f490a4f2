// The server the gRPC tests talk to: in this process, or a real crabcached (tests/grpc/).
#ifndef CRABCACHE_TESTS_GRPC_TEST_SERVER_H_
#define CRABCACHE_TESTS_GRPC_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/executor.h"
#include "core/store.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "gtest/gtest.h"
#include "service/grpc_server.h"
#include "tests/testlib/metrics_scrape.h"

namespace crabcache::service {

// The key limit the tests assume; the external server is started with --max_key_bytes=1024.
constexpr size_t kMaxKeyBytes = 1024;

// Where the tests' server lives. By default in this process: a GrpcFrontend over a real store
// and executor on 127.0.0.1:0, so the tests also run under ASan+UBSan. When the environment names
// CRABCACHE_TEST_GRPC_TARGET (host:port) and CRABCACHE_TEST_METRICS_PORT, a real crabcached that
// tests/polyglot/run_with_server.py started, observed through its /metrics.
class TestServer {
 public:
  virtual ~TestServer() = default;
  // Why the server could not start (OK when it runs). Fixtures ASSERT on it in SetUp, so a
  // server that failed to start fails the test cleanly instead of crashing it.
  virtual absl::Status status() const { return absl::OkStatus(); }
  virtual std::string target() const = 0;
  virtual int64_t open_streams() = 0;
  virtual uint64_t streams_total() = 0;
};

class InProcessServer final : public TestServer {
 public:
  InProcessServer()
      : store_(core::StoreOptions{.num_shards = 8}),
        executor_(&store_, nullptr, core::ExecutorOptions{.max_key_bytes = kMaxKeyBytes}) {
    auto frontend = GrpcFrontend::Start({.address = "127.0.0.1", .port = 0}, &executor_);
    if (frontend.ok()) {
      frontend_ = *std::move(frontend);
    } else {
      status_ = frontend.status();
    }
  }
  absl::Status status() const override { return status_; }
  // Port 0 (nothing listens there) when the server did not start.
  std::string target() const override {
    return absl::StrCat("127.0.0.1:", frontend_ != nullptr ? frontend_->port() : 0);
  }
  int64_t open_streams() override { return frontend_ != nullptr ? frontend_->open_streams() : 0; }
  uint64_t streams_total() override {
    return frontend_ != nullptr ? frontend_->streams_total() : 0;
  }

  core::Store store_;
  core::Executor executor_;
  absl::Status status_;
  std::unique_ptr<GrpcFrontend> frontend_;  // Null when Start failed (status_ says why).
};

class ExternalServer final : public TestServer {
 public:
  ExternalServer(std::string target, int metrics_port)
      : target_(std::move(target)), metrics_port_(metrics_port) {}
  std::string target() const override { return target_; }
  int64_t open_streams() override {
    return static_cast<int64_t>(Sample("crabcache_grpc_streams_open"));
  }
  uint64_t streams_total() override {
    return static_cast<uint64_t>(Sample("crabcache_grpc_streams_total"));
  }

 private:
  // The value of an unlabelled sample in the server's /metrics (-1 if absent).
  double Sample(const std::string& name) {
    const double v = crabcache::testing::ScrapeSample(metrics_port_, name);
    if (v < 0) ADD_FAILURE() << name << " not in /metrics";
    return v;
  }

  const std::string target_;
  const int metrics_port_;
};

inline std::unique_ptr<TestServer> MakeTestServer() {
  const char* target = std::getenv("CRABCACHE_TEST_GRPC_TARGET");
  const char* metrics = std::getenv("CRABCACHE_TEST_METRICS_PORT");
  if (target != nullptr && metrics != nullptr) {
    return std::make_unique<ExternalServer>(target, std::atoi(metrics));
  }
  return std::make_unique<InProcessServer>();
}

// The contract every crabcached honours: runs in process and against the real binary.
class GrpcContractTest : public ::testing::Test {
 protected:
  GrpcContractTest()
      : server_(MakeTestServer()),
        channel_(grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials())),
        stub_(crabcache::v1::Cache::NewStub(channel_)) {}

  void SetUp() override { ASSERT_TRUE(server_->status().ok()) << server_->status(); }

  // Waits (bounded) until every stream's reactor has run OnDone.
  void ExpectNoOpenStreams() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (server_->open_streams() != 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_EQ(server_->open_streams(), 0);
  }

  std::unique_ptr<TestServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<crabcache::v1::Cache::Stub> stub_;
};

}  // namespace crabcache::service

#endif  // CRABCACHE_TESTS_GRPC_TEST_SERVER_H_
