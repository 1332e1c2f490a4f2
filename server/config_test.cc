#include "server/config.h"

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "gtest/gtest.h"
#include "server/byte_size.h"

ABSL_DECLARE_FLAG(crabcache::server::ByteSize, max_memory);
ABSL_DECLARE_FLAG(crabcache::server::ByteSize, output_soft_limit);
ABSL_DECLARE_FLAG(std::string, eviction);
ABSL_DECLARE_FLAG(std::string, log_format);
ABSL_DECLARE_FLAG(int, port);
ABSL_DECLARE_FLAG(crabcache::server::ByteSize, grpc_memory_limit);

namespace crabcache::server {
namespace {

class ConfigTest : public ::testing::Test {
 private:
  absl::FlagSaver saver_;  // Every test starts from the defaults.
};

TEST_F(ConfigTest, DefaultsAreValidAndResolveTheMemoryLimit) {
  auto config = ConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->port, 8000);
  EXPECT_EQ(config->grpc_port, 50051);
  EXPECT_EQ(config->metrics_address, "0.0.0.0:9090");
  EXPECT_EQ(config->eviction, core::EvictionPolicy::kS3Fifo);
  EXPECT_EQ(config->max_key_bytes, 64u << 10);
  EXPECT_EQ(config->max_value_bytes, 1u << 20);
  // io_uring is opt-in until it matches epoll with large values (docs/operations.md).
  EXPECT_EQ(config->io_engine, fastpath::IoEngine::kEpoll);
  // This machine has RAM (and maybe a cgroup limit): the default is a share of one of them.
  EXPECT_GT(config->max_memory_bytes, 0u);
  EXPECT_NE(config->max_memory_source.find("80% of"), std::string::npos)
      << config->max_memory_source;
}

TEST_F(ConfigTest, ExplicitMemoryLimitWins) {
  absl::SetFlag(&FLAGS_max_memory, ByteSize{uint64_t{3} << 30});
  auto config = ConfigFromFlags();
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->max_memory_bytes, uint64_t{3} << 30);
  EXPECT_EQ(config->max_memory_source, "flag");
}

TEST_F(ConfigTest, BadValuesNameTheirFlag) {
  absl::SetFlag(&FLAGS_eviction, "random");
  EXPECT_NE(ConfigFromFlags().status().message().find("--eviction"), absl::string_view::npos);
  absl::SetFlag(&FLAGS_eviction, "LRU");
  EXPECT_TRUE(ConfigFromFlags().ok());

  absl::SetFlag(&FLAGS_log_format, "xml");
  EXPECT_NE(ConfigFromFlags().status().message().find("--log_format"), absl::string_view::npos);
  absl::SetFlag(&FLAGS_log_format, "json");

  absl::SetFlag(&FLAGS_port, 70000);
  EXPECT_NE(ConfigFromFlags().status().message().find("--port"), absl::string_view::npos);
  absl::SetFlag(&FLAGS_port, 0);

  absl::SetFlag(&FLAGS_output_soft_limit, ByteSize{uint64_t{1} << 40});
  EXPECT_NE(ConfigFromFlags().status().message().find("--output_soft_limit"),
            absl::string_view::npos);
}

TEST(ValidateTest, Limits) {
  Config c;
  EXPECT_TRUE(Validate(c).ok());
  c.max_value_bytes = kMaxValueBytesCeiling;
  c.output_hard_limit = kMaxValueBytesCeiling + 5;  // Must exceed the largest GET reply.
  EXPECT_NE(Validate(c).message().find("--output_hard_limit"), std::string::npos);
  c.output_hard_limit = kMaxValueBytesCeiling + 6;
  EXPECT_TRUE(Validate(c).ok());
  c.max_value_bytes = kMaxValueBytesCeiling + 1;
  EXPECT_FALSE(Validate(c).ok());
  c = Config{};
  c.max_key_bytes = 0;
  EXPECT_FALSE(Validate(c).ok());
  c = Config{};
  c.shutdown_grace = absl::Seconds(-1);
  EXPECT_FALSE(Validate(c).ok());
  c = Config{};
  c.threads = -2;
  EXPECT_FALSE(Validate(c).ok());
  c = Config{};
  c.address = "";
  EXPECT_FALSE(Validate(c).ok());
}

TEST(ValidateTest, SecurityFlagsGoTogether) {
  Config c;
  c.tls_cert = "/tls/tls.crt";
  EXPECT_NE(Validate(c).message().find("--tls_cert and --tls_key go together"), std::string::npos);
  c.tls_key = "/tls/tls.key";
  EXPECT_TRUE(Validate(c).ok());
  c.tls_client_ca = "/tls/ca.crt";
  EXPECT_TRUE(Validate(c).ok());
  c = Config{};
  c.tls_key = "/tls/tls.key";
  EXPECT_NE(Validate(c).message().find("--tls_key"), std::string::npos);
  c = Config{};
  c.tls_client_ca = "/tls/ca.crt";
  EXPECT_NE(Validate(c).message().find("--tls_client_ca"), std::string::npos);
  c = Config{};
  c.reload_interval = absl::Milliseconds(99);
  EXPECT_NE(Validate(c).message().find("--reload_interval"), std::string::npos);
  c.reload_interval = absl::Milliseconds(100);
  EXPECT_TRUE(Validate(c).ok());
  c.reload_interval = absl::Hours(2);
  EXPECT_FALSE(Validate(c).ok());
}

TEST(DescribeTest, NamesEveryListenerAndTheMemoryLimit) {
  Config c;
  c.max_memory_bytes = 123;
  c.max_memory_source = "flag";
  bool saw_memory = false, saw_port = false;
  for (const auto& [name, value] : c.Describe()) {
    if (name == "max_memory") saw_memory = value == "123";
    if (name == "grpc_port") saw_port = value == "50051";
  }
  EXPECT_TRUE(saw_memory);
  EXPECT_TRUE(saw_port);
}

// gRPC's resource flags: the memory quota defaults to a quarter of the store's limit with two
// messages' worth as a floor, and is refused below one message; the connection cap and the
// per-address auth limit are checked.
TEST(GrpcResourceFlagsTest, DefaultsAndChecks) {
  constexpr uint64_t kMi = uint64_t{1} << 20;
  EXPECT_EQ(DefaultGrpcMemoryLimit(4096 * kMi, 64 << 20), 1024 * kMi);
  EXPECT_EQ(DefaultGrpcMemoryLimit(64 * kMi, 64 << 20), 128 * kMi);
  EXPECT_EQ(DefaultGrpcMemoryLimit(0, 64 << 20), 1024 * kMi);
  Config c;
  c.grpc_memory_limit_bytes = 64 * kMi;
  EXPECT_TRUE(Validate(c).ok());
  c.grpc_memory_limit_bytes = 64 * kMi - 1;
  EXPECT_NE(Validate(c).message().find("--grpc_memory_limit"), std::string::npos);
  c = Config{};
  c.grpc_max_connections = 0;
  EXPECT_NE(Validate(c).message().find("--grpc_max_connections"), std::string::npos);
  c = Config{};
  c.grpc_auth_max_failures = -1;
  EXPECT_NE(Validate(c).message().find("--grpc_auth_max_failures"), std::string::npos);
  c = Config{};
  c.grpc_auth_failure_window = absl::Milliseconds(500);
  EXPECT_NE(Validate(c).message().find("--grpc_auth_failure_window"), std::string::npos);
}

TEST_F(ConfigTest, GrpcMemoryLimitFollowsMaxMemoryUnlessSet) {
  absl::SetFlag(&FLAGS_max_memory, ByteSize{uint64_t{2} << 30});
  auto config = ConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_memory_limit_bytes, uint64_t{512} << 20);
  absl::SetFlag(&FLAGS_grpc_memory_limit, ByteSize{uint64_t{300} << 20});
  config = ConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_memory_limit_bytes, uint64_t{300} << 20);
}

}  // namespace
}  // namespace crabcache::server
