#include "server/daemon.h"

#include <unistd.h>

#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/log.h"
#include "server/build_info.h"
#include "server/process_metrics.h"

namespace crabcache::server {
namespace {

// Expired entries reclaimed per shard per sweep tick: small enough that a tick never stalls a
// shard noticeably, large enough to keep up with heavy TTL churn (the sweeper repeats a tick at
// once while it uses its whole budget).
constexpr size_t kSweepBudgetPerShard = 64;

// Families both front ends export (one name, one help, a `frontend` label).
constexpr char kBytesReceived[] = "crabcache_received_bytes_total";
constexpr char kBytesReceivedHelp[] =
    "Request payload bytes received (fast path: wire bytes; gRPC: protobuf-encoded messages).";
constexpr char kBytesSent[] = "crabcache_sent_bytes_total";
constexpr char kBytesSentHelp[] =
    "Reply payload bytes sent (fast path: wire bytes; gRPC: protobuf-encoded messages).";
constexpr char kProtocolErrors[] = "crabcache_protocol_errors_total";
constexpr char kProtocolErrorsHelp[] =
    "Requests rejected as malformed or over a limit, by front end and reason.";

}  // namespace

Daemon::Daemon(const Config& config) : config_(config) {}

Daemon::~Daemon() { Shutdown(absl::InfinitePast()); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const Config& config) {
  std::unique_ptr<Daemon> daemon(new Daemon(config));
  if (absl::Status status = daemon->StartComponents(); !status.ok()) {
    daemon->Shutdown(absl::InfinitePast());
    return status;
  }
  return daemon;
}

absl::Status Daemon::StartComponents() {
  store_ = std::make_unique<core::Store>(core::StoreOptions{
      .num_shards = config_.shards,
      .max_memory_bytes = config_.max_memory_bytes,
      .eviction = config_.eviction,
  });
  const bool metrics_on = !config_.metrics_address.empty();
  if (metrics_on) {
    metrics_ = std::make_shared<Metrics>(std::string(kVersion), std::string(kGitCommit));
  }
  executor_ = std::make_unique<core::Executor>(
      store_.get(), metrics_.get(),
      core::ExecutorOptions{.max_key_bytes = config_.max_key_bytes,
                            .max_value_bytes = config_.max_value_bytes});
  sweeper_ = std::make_unique<core::ExpirySweeper>(store_.get(), config_.sweep_interval,
                                                   kSweepBudgetPerShard);
  sweeper_->Start();

  auto grpc = service::GrpcFrontend::Start(
      service::GrpcOptions{
          .address = config_.address,
          .port = config_.grpc_port,
          .max_batch_commands = config_.max_batch_commands,
          .max_message_bytes = config_.grpc_max_message_bytes,
          .max_concurrent_streams = config_.grpc_max_concurrent_streams,
          .health_port = config_.health_port,
      },
      executor_.get());
  if (!grpc.ok()) return grpc.status();
  grpc_ = *std::move(grpc);
  ports_.grpc = grpc_->port();
  ports_.health = grpc_->health_port();

  // --- fast path: start ---
  auto fastpath = fastpath::Server::Start(
      fastpath::ServerOptions{
          .address = config_.address,
          .port = config_.port,
          .threads = config_.threads,
          .limits = {.max_key_bytes = config_.max_key_bytes,
                     .max_value_bytes = config_.max_value_bytes},
          .max_connections = config_.max_connections,
          .output_soft_limit = config_.output_soft_limit,
          .output_hard_limit = config_.output_hard_limit,
          .idle_timeout = config_.idle_timeout,
      },
      executor_.get());
  if (!fastpath.ok()) return fastpath.status();
  fastpath_ = *std::move(fastpath);
  ports_.fastpath = fastpath_->port();
  core::Log(core::LogLevel::kInfo, "fast path listening",
            {{"address", config_.address},
             {"port", absl::StrCat(ports_.fastpath)},
             {"threads", absl::StrCat(fastpath_->threads())}});
  // --- fast path: end ---

  if (metrics_on) {
    metrics_->AddStore(store_.get());
    RegisterFrontendMetrics();
    auto exposer = MetricsExposer::Start(config_.metrics_address, metrics_);
    if (!exposer.ok()) return exposer.status();
    exposer_ = *std::move(exposer);
    ports_.metrics = exposer_->port();
    core::Log(core::LogLevel::kInfo, "metrics listening",
              {{"address", config_.metrics_address}, {"port", absl::StrCat(ports_.metrics)}});
  }
  return absl::OkStatus();
}

void Daemon::RegisterFrontendMetrics() {
  AddProcessMetrics(metrics_.get());
  const service::CacheService* grpc = &grpc_->service();
  const Metrics::Labels fe = {{"frontend", "grpc"}};
  metrics_->AddGauge("crabcache_grpc_streams_open", "BatchExecute streams open now.", {},
                     [grpc] { return static_cast<double>(grpc->open_streams()); });
  metrics_->AddCounter("crabcache_grpc_streams_total", "BatchExecute streams opened.", {},
                       [grpc] { return static_cast<double>(grpc->streams_total()); });
  metrics_->AddCounter(kBytesReceived, kBytesReceivedHelp, fe,
                       [grpc] { return static_cast<double>(grpc->bytes_in()); });
  metrics_->AddCounter(kBytesSent, kBytesSentHelp, fe,
                       [grpc] { return static_cast<double>(grpc->bytes_out()); });
  metrics_->AddCounter(kProtocolErrors, kProtocolErrorsHelp,
                       {{"frontend", "grpc"}, {"reason", "batch_too_large"}},
                       [grpc] { return static_cast<double>(grpc->oversized_batches()); });
  // --- fast path: metrics ---
  // Each callback sums the loops' counters (fastpath::Server::Stats) at scrape time.
  const fastpath::Server* fast = fastpath_.get();
  const Metrics::Labels fp = {{"frontend", "fastpath"}};
  auto stat = [fast](auto field) {
    return [fast, field] { return static_cast<double>(fast->Stats().*field); };
  };
  metrics_->AddGauge("crabcache_connections_open", "Client connections open now.", fp,
                     stat(&fastpath::ServerStats::connections_open));
  metrics_->AddCounter("crabcache_connections_accepted_total", "Client connections accepted.", fp,
                       stat(&fastpath::ServerStats::connections_accepted));
  metrics_->AddCounter("crabcache_connections_rejected_total",
                       "Client connections refused because of --max_connections.", fp,
                       stat(&fastpath::ServerStats::connections_rejected));
  metrics_->AddCounter(kBytesReceived, kBytesReceivedHelp, fp,
                       stat(&fastpath::ServerStats::bytes_in));
  metrics_->AddCounter(kBytesSent, kBytesSentHelp, fp, stat(&fastpath::ServerStats::bytes_out));
  for (size_t i = 0; i < fastpath::kNumParseErrors; ++i) {
    const auto reason = static_cast<fastpath::ParseError>(i);
    metrics_->AddCounter(
        kProtocolErrors, kProtocolErrorsHelp,
        {{"frontend", "fastpath"}, {"reason", std::string(fastpath::ParseErrorName(reason))}},
        [fast, i] { return static_cast<double>(fast->Stats().protocol_errors[i]); });
  }
  metrics_->AddCounter("crabcache_slow_consumer_disconnects_total",
                       "Connections closed because their unsent replies passed "
                       "--output_hard_limit or stayed paused for --idle_timeout.",
                       fp, stat(&fastpath::ServerStats::slow_consumer_disconnects));
  metrics_->AddCounter("crabcache_idle_timeout_closes_total",
                       "Connections closed for holding a partial frame longer than --idle_timeout.",
                       fp, stat(&fastpath::ServerStats::idle_timeout_closes));
  metrics_->AddGauge("crabcache_fastpath_buffer_bytes",
                     "Bytes of I/O buffers the fast path holds (scratch, partial frames, unsent "
                     "replies).",
                     {}, stat(&fastpath::ServerStats::buffer_bytes));
  // --- fast path: end ---
}

void Daemon::SetNotServing() {
  if (grpc_ != nullptr) grpc_->SetNotServing();
  core::Log(core::LogLevel::kInfo, "health NOT_SERVING");
}

void Daemon::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  // The front ends drain concurrently: each may take until the deadline.
  std::thread grpc_stop([this, deadline] {
    if (grpc_ != nullptr) grpc_->Shutdown(deadline);
  });
  // --- fast path: shutdown ---
  // Stops accepting at once, flushes the replies already computed, closes at the deadline.
  if (fastpath_ != nullptr) fastpath_->Shutdown(deadline);
  // --- fast path: end ---
  grpc_stop.join();
  if (sweeper_ != nullptr) sweeper_->Stop();
  exposer_.reset();
}

absl::Status WriteReadyFile(const std::string& path, const BoundPorts& ports) {
  const std::string json = absl::StrFormat(
      "{\"pid\":%d,\"fastpath_port\":%d,\"grpc_port\":%d,\"health_port\":%d,\"metrics_port\":%d}"
      "\n",
      static_cast<int>(getpid()), ports.fastpath, ports.grpc, ports.health, ports.metrics);
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  const bool written = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  if (std::fclose(f) != 0 || !written || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ready file ", path));
  }
  return absl::OkStatus();
}

}  // namespace crabcache::server
