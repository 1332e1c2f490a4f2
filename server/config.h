// crabcached's configuration: every flag, parsed once at start-up and validated as a whole.
#ifndef CRABCACHE_SERVER_CONFIG_H_
#define CRABCACHE_SERVER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/log.h"
#include "core/store.h"
#include "fastpath/server.h"

namespace crabcache::server {

// The largest value (and key) the server accepts, whatever the flags say.
inline constexpr uint64_t kMaxValueBytesCeiling = uint64_t{512} << 20;

// A plain value; see docs/operations.md for the meaning of each field's flag.
struct Config {
  // Listeners.
  std::string address = "0.0.0.0";
  int port = 8000;                               // Fast path; 0 picks a free port.
  int grpc_port = 50051;                         // 0 picks a free port.
  int health_port = 0;                           // 0: health is served on grpc_port only.
  std::string metrics_address = "0.0.0.0:9090";  // Empty: no metrics listener.
  std::string ready_file;

  // Store.
  size_t shards = 0;              // 0: 4 x cores.
  uint64_t max_memory_bytes = 0;  // Resolved: never 0 unless no limit could be found.
  std::string max_memory_source;  // "flag", "80% of cgroup v2 memory.max", ...
  core::EvictionPolicy eviction = core::EvictionPolicy::kS3Fifo;
  absl::Duration sweep_interval = absl::Milliseconds(100);

  // Limits.
  size_t max_key_bytes = 64 * 1024;
  size_t max_value_bytes = 1024 * 1024;
  size_t max_batch_commands = 10000;

  // Fast path.
  int threads = 0;             // Resolved: 0 in the flag means DefaultEventLoops(available CPUs).
  std::string threads_source;  // "flag" or how the CPUs were counted.
  size_t max_connections = 10000;
  size_t output_soft_limit = 8u << 20;
  size_t output_hard_limit = 64u << 20;
  absl::Duration idle_timeout = absl::Seconds(60);  // Zero: never.
  // epoll, not auto: io_uring loses to it on large pipelined values (docs/operations.md).
  fastpath::IoEngine io_engine = fastpath::IoEngine::kEpoll;

  // gRPC.
  int grpc_max_message_bytes = 64 << 20;
  int grpc_max_concurrent_streams = 1024;
  size_t grpc_max_connections = 10000;
  uint64_t grpc_memory_limit_bytes = 0;  // Resolved: DefaultGrpcMemoryLimit when the flag is 0.
  int grpc_auth_max_failures = 10;       // 0: no per-address limit.
  absl::Duration grpc_auth_failure_window = absl::Minutes(1);

  // Security (docs/security.md). Empty auth_token_file: no authentication. Empty tls_cert: the
  // gRPC port is plaintext. The token file and the TLS files are checked for changes every
  // reload_interval (and on SIGHUP).
  std::string auth_token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  absl::Duration reload_interval = absl::Seconds(10);

  // Shutdown: health goes NOT_SERVING, listeners keep serving for shutdown_delay (so load
  // balancers notice), then stop accepting and drain in-flight work for up to shutdown_grace.
  absl::Duration shutdown_delay = absl::ZeroDuration();
  absl::Duration shutdown_grace = absl::Seconds(10);

  // Logging.
  core::LogLevel log_level = core::LogLevel::kInfo;
  core::LogFormat log_format = core::LogFormat::kText;

  // The effective configuration as (name, value) pairs, for the start-up log line.
  std::vector<std::pair<std::string, std::string>> Describe() const;
};

// Builds the configuration from the parsed command-line flags (REQUIRES: absl::ParseCommandLine
// has run) and validates it. The default --max_memory is resolved here (80 % of the cgroup limit
// or of physical memory). Errors are kInvalidArgument with a message naming the flag.
absl::StatusOr<Config> ConfigFromFlags();

// Checks ranges and relations between fields (e.g. soft <= hard output limit).
absl::Status Validate(const Config& config);

// The default --grpc_memory_limit: a quarter of the store's limit (1 GiB when there is none), at
// least two messages of the largest size (gRPC refuses a message larger than its quota).
uint64_t DefaultGrpcMemoryLimit(uint64_t max_memory_bytes, int grpc_max_message_bytes);

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_CONFIG_H_
