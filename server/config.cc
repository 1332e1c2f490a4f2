#include "server/config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "core/memory_limit.h"
#include "core/string_view.h"
#include "fastpath/codec.h"
#include "server/byte_size.h"
#include "server/cpus.h"

using crabcache::server::ByteSize;

ABSL_FLAG(std::string, address, "0.0.0.0",
          "Bind address of the fast path and gRPC listeners; the wildcards 0.0.0.0 and :: both "
          "listen on IPv4 and IPv6.");
ABSL_FLAG(int, port, 8000, "Fast path TCP port (0 picks a free port).");
ABSL_FLAG(int, grpc_port, 50051, "gRPC port (0 picks a free port).");
ABSL_FLAG(int, health_port, 0,
          "If non-zero, an extra plaintext gRPC port serving only grpc.health.v1 (for kubelet "
          "gRPC probes when the main port uses TLS).");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9090",
          "host:port of the Prometheus /metrics endpoint (empty: off; port 0 picks a free one).");
ABSL_FLAG(std::string, ready_file, "",
          "If set, a JSON file with the pid and bound ports, written once every listener is up.");
ABSL_FLAG(int, threads, 0,
          "Fast path event-loop threads (0: 1 with up to 2 CPUs, else CPUs - 1; CPUs counted "
          "from the affinity mask and the cgroup CPU quota).");
ABSL_FLAG(int, shards, 0, "Store shards, rounded up to a power of two (0: 4 x cores).");
ABSL_FLAG(ByteSize, max_memory, ByteSize{0},
          "Memory limit for stored data, e.g. 512Mi or 4Gi (0: 80% of the cgroup memory limit "
          "when one is set, else of physical memory).");
ABSL_FLAG(std::string, eviction, "s3fifo",
          "What happens at the memory limit: s3fifo, lru or noeviction (writes fail).");
ABSL_FLAG(absl::Duration, sweep_interval, absl::Milliseconds(100),
          "Period of the incremental active-expiry sweep.");
ABSL_FLAG(ByteSize, max_key_bytes, ByteSize{64 << 10}, "Largest key accepted.");
ABSL_FLAG(ByteSize, max_value_bytes, ByteSize{1 << 20}, "Largest value accepted (at most 512Mi).");
ABSL_FLAG(int, max_batch_commands, 10000,
          "gRPC: a BatchRequest with more commands fails its stream with INVALID_ARGUMENT.");
ABSL_FLAG(int, max_connections, 10000, "Fast path connections; extra ones are refused.");
ABSL_FLAG(ByteSize, output_soft_limit, ByteSize{8 << 20},
          "Fast path: once a connection's unsent replies reach this, stop running its requests "
          "and reading from it until they drain to half of it.");
ABSL_FLAG(ByteSize, output_hard_limit, ByteSize{64 << 20},
          "Fast path: unsent replies one connection may never pass (the server pauses it early "
          "enough); must exceed --max_value_bytes + 5.");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "Fast path: close a connection stalled this long mid-frame, paused with unsent "
          "replies the client does not read, or (with --auth_token_file) not yet "
          "authenticated (0: never).");
ABSL_FLAG(std::string, io_engine, "epoll",
          "Fast path I/O: epoll, io_uring (start-up fails if the kernel or a seccomp profile "
          "forbids it), or auto (io_uring when a start-up probe passes, else epoll). epoll is "
          "the default: io_uring is slower with large values (docs/operations.md).");
ABSL_FLAG(ByteSize, grpc_max_message_bytes, ByteSize{64 << 20},
          "gRPC: largest message received or sent.");
ABSL_FLAG(int, grpc_max_concurrent_streams, 1024, "gRPC: concurrent streams per connection.");
ABSL_FLAG(int, grpc_max_connections, 10000,
          "gRPC: connections open at once on --grpc_port; more are closed as soon as they are "
          "accepted.");
ABSL_FLAG(ByteSize, grpc_memory_limit, ByteSize{0},
          "gRPC: memory its transports may hold for message buffers, both gRPC ports together; "
          "past it gRPC resets streams (RESOURCE_EXHAUSTED) and closes idle connections. 0: "
          "max(2 x --grpc_max_message_bytes, --max_memory / 4), or 1Gi without a memory limit.");
ABSL_FLAG(int, grpc_auth_max_failures, 10,
          "gRPC with --auth_token_file: invalid tokens from one client address within "
          "--grpc_auth_failure_window after which that address is refused (RESOURCE_EXHAUSTED, "
          "no token checked) until a window after the last of them; 0: no limit.");
ABSL_FLAG(absl::Duration, grpc_auth_failure_window, absl::Minutes(1),
          "gRPC: the window of --grpc_auth_max_failures.");
ABSL_FLAG(std::string, auth_token_file, "",
          "If set, clients must authenticate with one of the tokens in this file (one per line; "
          "'#' comments): fast path AUTH first, gRPC `authorization: Bearer <token>`. Reloaded on "
          "SIGHUP and when the file changes.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for TLS on the gRPC port (with --tls_key); re-read when it "
          "changes and on SIGHUP.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: gRPC clients must present a certificate signed by it (mutual TLS).");
ABSL_FLAG(absl::Duration, reload_interval, absl::Seconds(10),
          "How often the token file and the TLS files are checked for changes (SIGHUP checks at "
          "once).");
ABSL_FLAG(absl::Duration, shutdown_delay, absl::ZeroDuration(),
          "On SIGTERM: keep serving (health NOT_SERVING) this long before the listeners stop, so "
          "load balancers see the instance leave.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGTERM: after the listeners stop, in-flight work drains for at most this long.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(std::string, log_format, "text", "text or json (one line per event on stderr).");

namespace crabcache::server {
namespace {

absl::Status FlagError(std::string_view flag, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", core::ToAbsl(flag), ": ", core::ToAbsl(problem)));
}

absl::Status CheckPort(std::string_view flag, int port) {
  if (port < 0 || port > 65535) return FlagError(flag, absl::StrCat("port out of range: ", port));
  return absl::OkStatus();
}

}  // namespace

uint64_t DefaultGrpcMemoryLimit(uint64_t max_memory_bytes, int grpc_max_message_bytes) {
  const uint64_t share = max_memory_bytes != 0 ? max_memory_bytes / 4 : uint64_t{1} << 30;
  return std::max(uint64_t{2} * static_cast<uint64_t>(grpc_max_message_bytes), share);
}

std::vector<std::pair<std::string, std::string>> Config::Describe() const {
  return {
      {"address", address},
      {"port", absl::StrCat(port)},
      {"grpc_port", absl::StrCat(grpc_port)},
      {"health_port", absl::StrCat(health_port)},
      {"metrics_address", metrics_address},
      {"threads", absl::StrCat(threads)},
      {"threads_source", threads_source},
      {"shards", absl::StrCat(shards)},
      {"max_memory", absl::StrCat(max_memory_bytes)},
      {"max_memory_source", max_memory_source},
      {"eviction", std::string(core::EvictionPolicyName(eviction))},
      {"sweep_interval", absl::FormatDuration(sweep_interval)},
      {"max_key_bytes", absl::StrCat(max_key_bytes)},
      {"max_value_bytes", absl::StrCat(max_value_bytes)},
      {"max_batch_commands", absl::StrCat(max_batch_commands)},
      {"max_connections", absl::StrCat(max_connections)},
      {"output_soft_limit", absl::StrCat(output_soft_limit)},
      {"output_hard_limit", absl::StrCat(output_hard_limit)},
      {"idle_timeout", absl::FormatDuration(idle_timeout)},
      {"io_engine", std::string(fastpath::IoEngineName(io_engine))},
      {"grpc_max_message_bytes", absl::StrCat(grpc_max_message_bytes)},
      {"grpc_max_concurrent_streams", absl::StrCat(grpc_max_concurrent_streams)},
      {"grpc_max_connections", absl::StrCat(grpc_max_connections)},
      {"grpc_memory_limit", absl::StrCat(grpc_memory_limit_bytes)},
      {"grpc_auth_max_failures", absl::StrCat(grpc_auth_max_failures)},
      {"grpc_auth_failure_window", absl::FormatDuration(grpc_auth_failure_window)},
      {"auth_token_file", auth_token_file},
      {"tls_cert", tls_cert},
      {"tls_key", tls_key},
      {"tls_client_ca", tls_client_ca},
      {"reload_interval", absl::FormatDuration(reload_interval)},
      {"shutdown_delay", absl::FormatDuration(shutdown_delay)},
      {"shutdown_grace", absl::FormatDuration(shutdown_grace)},
  };
}

absl::Status Validate(const Config& c) {
  if (c.address.empty()) return FlagError("address", "must not be empty");
  if (absl::Status s = CheckPort("port", c.port); !s.ok()) return s;
  if (absl::Status s = CheckPort("grpc_port", c.grpc_port); !s.ok()) return s;
  if (absl::Status s = CheckPort("health_port", c.health_port); !s.ok()) return s;
  if (c.threads < 0 || c.threads > 1024) return FlagError("threads", "must be in [0, 1024]");
  if (c.shards > (size_t{1} << 16)) return FlagError("shards", "must be at most 65536");
  if (c.max_key_bytes == 0 || c.max_key_bytes > kMaxValueBytesCeiling) {
    return FlagError("max_key_bytes", "must be in [1, 512Mi]");
  }
  if (c.max_value_bytes > kMaxValueBytesCeiling) {
    return FlagError("max_value_bytes", "must be at most 512Mi");
  }
  if (c.max_batch_commands == 0) return FlagError("max_batch_commands", "must be positive");
  if (c.max_connections == 0) return FlagError("max_connections", "must be positive");
  if (c.output_soft_limit == 0 || c.output_soft_limit > c.output_hard_limit) {
    return FlagError("output_soft_limit", "must be positive and at most --output_hard_limit");
  }
  if (c.output_hard_limit <= c.max_value_bytes + fastpath::kReplyHeaderBytes) {
    return FlagError("output_hard_limit",
                     absl::StrCat("must exceed --max_value_bytes + ", fastpath::kReplyHeaderBytes,
                                  " (", c.max_value_bytes + fastpath::kReplyHeaderBytes,
                                  "), the reply to a GET of the largest value"));
  }
  if (c.idle_timeout < absl::ZeroDuration()) return FlagError("idle_timeout", "is negative");
  if (c.grpc_max_message_bytes <= 0) {
    return FlagError("grpc_max_message_bytes", "must be in [1, 2Gi)");
  }
  if (c.grpc_max_concurrent_streams <= 0) {
    return FlagError("grpc_max_concurrent_streams", "must be positive");
  }
  if (c.grpc_max_connections == 0) return FlagError("grpc_max_connections", "must be positive");
  if (c.grpc_memory_limit_bytes != 0 &&
      c.grpc_memory_limit_bytes < static_cast<uint64_t>(c.grpc_max_message_bytes)) {
    return FlagError("grpc_memory_limit",
                     "must be at least --grpc_max_message_bytes (gRPC refuses any message "
                     "larger than its memory quota)");
  }
  if (c.grpc_auth_max_failures < 0) return FlagError("grpc_auth_max_failures", "is negative");
  if (c.grpc_auth_failure_window < absl::Seconds(1) ||
      c.grpc_auth_failure_window > absl::Hours(24)) {
    return FlagError("grpc_auth_failure_window", "must be between 1s and 24h");
  }
  if (c.sweep_interval <= absl::ZeroDuration()) {
    return FlagError("sweep_interval", "must be positive");
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return FlagError(c.tls_cert.empty() ? "tls_key" : "tls_cert",
                     "--tls_cert and --tls_key go together");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    return FlagError("tls_client_ca", "needs --tls_cert and --tls_key (mutual TLS is TLS)");
  }
  if (c.reload_interval < absl::Milliseconds(100) || c.reload_interval > absl::Hours(1)) {
    return FlagError("reload_interval", "must be between 100ms and 1h");
  }
  if (c.shutdown_delay < absl::ZeroDuration()) return FlagError("shutdown_delay", "is negative");
  if (c.shutdown_grace < absl::ZeroDuration()) return FlagError("shutdown_grace", "is negative");
  return absl::OkStatus();
}

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  c.address = absl::GetFlag(FLAGS_address);
  c.port = absl::GetFlag(FLAGS_port);
  c.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  c.health_port = absl::GetFlag(FLAGS_health_port);
  c.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  c.ready_file = absl::GetFlag(FLAGS_ready_file);
  c.threads = absl::GetFlag(FLAGS_threads);
  if (c.threads == 0) {
    const CpuBudget cpus = AvailableCpus();
    c.threads = DefaultEventLoops(cpus.cpus);
    c.threads_source = absl::StrCat(cpus.cpus, " CPUs (", cpus.source, ")");
  } else {
    c.threads_source = "flag";
  }
  const int shards = absl::GetFlag(FLAGS_shards);
  if (shards < 0) return FlagError("shards", "is negative");
  c.shards = static_cast<size_t>(shards);

  c.max_memory_bytes = absl::GetFlag(FLAGS_max_memory).bytes;
  if (c.max_memory_bytes != 0) {
    c.max_memory_source = "flag";
  } else {
    const core::MemoryLimit found = core::DetectMemoryLimit();
    c.max_memory_bytes = core::DefaultMaxMemory();
    c.max_memory_source =
        found.bytes == 0 ? "none found: unlimited" : absl::StrCat("80% of ", found.source);
  }
  if (!core::ParseEvictionPolicy(absl::GetFlag(FLAGS_eviction), &c.eviction)) {
    return FlagError("eviction", "must be s3fifo, lru or noeviction");
  }
  c.sweep_interval = absl::GetFlag(FLAGS_sweep_interval);

  c.max_key_bytes = absl::GetFlag(FLAGS_max_key_bytes).bytes;
  c.max_value_bytes = absl::GetFlag(FLAGS_max_value_bytes).bytes;
  const int batch = absl::GetFlag(FLAGS_max_batch_commands);
  if (batch <= 0) return FlagError("max_batch_commands", "must be positive");
  c.max_batch_commands = static_cast<size_t>(batch);
  const int connections = absl::GetFlag(FLAGS_max_connections);
  if (connections <= 0) return FlagError("max_connections", "must be positive");
  c.max_connections = static_cast<size_t>(connections);
  c.output_soft_limit = absl::GetFlag(FLAGS_output_soft_limit).bytes;
  c.output_hard_limit = absl::GetFlag(FLAGS_output_hard_limit).bytes;
  c.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  if (!fastpath::ParseIoEngine(absl::GetFlag(FLAGS_io_engine), &c.io_engine)) {
    return FlagError("io_engine", "must be auto, epoll or io_uring");
  }

  const uint64_t message = absl::GetFlag(FLAGS_grpc_max_message_bytes).bytes;
  if (message == 0 || message > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
    return FlagError("grpc_max_message_bytes", "must be in [1, 2Gi)");
  }
  c.grpc_max_message_bytes = static_cast<int>(message);
  c.grpc_max_concurrent_streams = absl::GetFlag(FLAGS_grpc_max_concurrent_streams);
  const int grpc_connections = absl::GetFlag(FLAGS_grpc_max_connections);
  if (grpc_connections <= 0) return FlagError("grpc_max_connections", "must be positive");
  c.grpc_max_connections = static_cast<size_t>(grpc_connections);
  c.grpc_memory_limit_bytes = absl::GetFlag(FLAGS_grpc_memory_limit).bytes;
  if (c.grpc_memory_limit_bytes == 0) {
    c.grpc_memory_limit_bytes =
        DefaultGrpcMemoryLimit(c.max_memory_bytes, c.grpc_max_message_bytes);
  }
  c.grpc_auth_max_failures = absl::GetFlag(FLAGS_grpc_auth_max_failures);
  c.grpc_auth_failure_window = absl::GetFlag(FLAGS_grpc_auth_failure_window);

  c.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  c.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  c.tls_key = absl::GetFlag(FLAGS_tls_key);
  c.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  c.reload_interval = absl::GetFlag(FLAGS_reload_interval);
  c.shutdown_delay = absl::GetFlag(FLAGS_shutdown_delay);
  c.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (!core::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &c.log_level)) {
    return FlagError("log_level", "must be debug, info, warning or error");
  }
  if (!core::ParseLogFormat(absl::GetFlag(FLAGS_log_format), &c.log_format)) {
    return FlagError("log_format", "must be text or json");
  }
  if (absl::Status s = Validate(c); !s.ok()) return s;
  return c;
}

}  // namespace crabcache::server
