#include "server/daemon.h"

#include <sys/stat.h>
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
// The connection families. The gRPC samples are registered first, so these help texts are the
// families' (the fast path's samples repeat the names).
constexpr char kConnectionsOpen[] = "crabcache_connections_open";
constexpr char kConnectionsOpenHelp[] = "Client connections open now.";
constexpr char kConnectionsAccepted[] = "crabcache_connections_accepted_total";
constexpr char kConnectionsAcceptedHelp[] = "Client connections accepted.";
constexpr char kConnectionsRejected[] = "crabcache_connections_rejected_total";
constexpr char kConnectionsRejectedHelp[] =
    "Client connections refused because of --max_connections (fast path) or "
    "--grpc_max_connections (gRPC).";

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

absl::Status Daemon::StartSecurity() {
  if (!config_.auth_token_file.empty()) {
    tokens_ = std::make_unique<auth::TokenStore>();
    if (absl::Status s = tokens_->LoadFile(config_.auth_token_file); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--auth_token_file: ", s.message()));
    }
    struct stat st;
    if (stat(config_.auth_token_file.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
      core::Log(core::LogLevel::kWarning, "auth token file is readable by every user",
                {{"path", config_.auth_token_file}});
    }
    core::Log(core::LogLevel::kInfo, "auth on",
              {{"tokens", absl::StrCat(tokens_->size())}, {"path", config_.auth_token_file}});
    if (config_.tls_cert.empty()) {
      core::Log(core::LogLevel::kWarning,
                "auth tokens travel in clear text: gRPC has no TLS (--tls_cert) and the fast "
                "path never has; keep both ports on a trusted network (docs/security.md)");
    } else {
      core::Log(core::LogLevel::kInfo,
                "the fast path has no TLS: its AUTH tokens travel in clear text; keep it on a "
                "trusted network (docs/security.md)");
    }
  }
  return absl::OkStatus();
}

void Daemon::Reload() {
  ReloadTokens("SIGHUP");
  CheckTls("SIGHUP");
}

void Daemon::ReloadTokens(std::string_view trigger) {
  if (tokens_ == nullptr) return;
  core::MutexLock lock(&reload_mu_);
  const size_t before = tokens_->size();
  if (absl::Status s = tokens_->LoadFile(config_.auth_token_file); !s.ok()) {
    token_reloads_failed_.fetch_add(1, std::memory_order_relaxed);
    core::Log(core::LogLevel::kError, "auth token reload failed; keeping the previous tokens",
              {{"trigger", std::string(trigger)},
               {"error", std::string(s.message())},
               {"tokens_kept", absl::StrCat(before)}});
    return;
  }
  token_reloads_ok_.fetch_add(1, std::memory_order_relaxed);
  core::Log(core::LogLevel::kInfo, "auth tokens reloaded",
            {{"trigger", std::string(trigger)},
             {"tokens", absl::StrCat(tokens_->size())},
             {"previous", absl::StrCat(before)}});
}

void Daemon::CheckTls(std::string_view trigger) {
  if (config_.tls_cert.empty() || grpc_ == nullptr) return;
  core::MutexLock lock(&reload_mu_);
  bool changed = false;
  absl::StatusOr<service::TlsSummary> tls = grpc_->ReloadTls(&changed);
  if (!tls.ok()) {
    tls_reloads_failed_.fetch_add(1, std::memory_order_relaxed);
    core::Log(core::LogLevel::kError, "tls reload refused; still serving the previous certificate",
              {{"trigger", std::string(trigger)}, {"error", std::string(tls.status().message())}});
    return;
  }
  if (!changed) {
    core::Log(core::LogLevel::kInfo, "tls files unchanged", {{"trigger", std::string(trigger)}});
    return;
  }
  tls_reloads_ok_.fetch_add(1, std::memory_order_relaxed);
  core::Log(tls->expired ? core::LogLevel::kWarning : core::LogLevel::kInfo,
            tls->expired ? "tls certificate reloaded (EXPIRED)" : "tls certificate reloaded",
            {{"trigger", std::string(trigger)},
             {"subject", tls->subject},
             {"not_after", tls->not_after},
             {"serving_within", absl::StrCat(service::kGrpcRefreshSeconds, "s")}});
}

absl::Status Daemon::StartComponents() {
  if (absl::Status s = StartSecurity(); !s.ok()) return s;
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
          .max_connections = config_.grpc_max_connections,
          .memory_limit_bytes = config_.grpc_memory_limit_bytes,
          .auth_limit = {.max_failures = config_.grpc_auth_max_failures,
                         .window_ms = static_cast<core::Millis>(
                             absl::ToInt64Milliseconds(config_.grpc_auth_failure_window))},
          .health_port = config_.health_port,
          .tokens = tokens_.get(),
          .tls = {.cert = config_.tls_cert,
                  .key = config_.tls_key,
                  .client_ca = config_.tls_client_ca},
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
          .tokens = tokens_.get(),
          .io_engine = config_.io_engine,
      },
      executor_.get());
  if (!fastpath.ok()) return fastpath.status();
  fastpath_ = *std::move(fastpath);
  ports_.fastpath = fastpath_->port();
  core::Log(core::LogLevel::kInfo, "fast path listening",
            {{"address", config_.address},
             {"port", absl::StrCat(ports_.fastpath)},
             {"threads", absl::StrCat(fastpath_->threads())},
             {"io_engine", std::string(fastpath::IoEngineName(fastpath_->io_engine()))}});
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
  if (tokens_ != nullptr) {
    token_watcher_ = std::make_unique<FileWatcher>(
        std::vector<std::string>{config_.auth_token_file}, config_.reload_interval,
        [this] { ReloadTokens("file changed"); });
  }
  if (!config_.tls_cert.empty()) {
    std::vector<std::string> files = {config_.tls_cert, config_.tls_key};
    if (!config_.tls_client_ca.empty()) files.push_back(config_.tls_client_ca);
    tls_watcher_ = std::make_unique<FileWatcher>(std::move(files), config_.reload_interval,
                                                 [this] { CheckTls("file changed"); });
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
  metrics_->AddCounter(kProtocolErrors, kProtocolErrorsHelp,
                       {{"frontend", "grpc"}, {"reason", "malformed"}},
                       [grpc] { return static_cast<double>(grpc->malformed_batches()); });
  // The main gRPC port's connections, from its own listener (service/grpc_listener.h); the open
  // count costs one fstat per open connection per scrape.
  const service::GrpcFrontend* frontend = grpc_.get();
  metrics_->AddGauge(kConnectionsOpen, kConnectionsOpenHelp, fe,
                     [frontend] { return static_cast<double>(frontend->open_connections()); });
  metrics_->AddCounter(kConnectionsAccepted, kConnectionsAcceptedHelp, fe, [frontend] {
    return static_cast<double>(frontend->connections_accepted());
  });
  metrics_->AddCounter(kConnectionsRejected, kConnectionsRejectedHelp, fe, [frontend] {
    return static_cast<double>(frontend->connections_rejected());
  });
  // --- fast path: metrics ---
  // Each callback sums the loops' counters (fastpath::Server::Stats) at scrape time.
  const fastpath::Server* fast = fastpath_.get();
  const Metrics::Labels fp = {{"frontend", "fastpath"}};
  auto stat = [fast](auto field) {
    return [fast, field] { return static_cast<double>(fast->Stats().*field); };
  };
  metrics_->AddGauge(kConnectionsOpen, kConnectionsOpenHelp, fp,
                     stat(&fastpath::ServerStats::connections_open));
  metrics_->AddCounter(kConnectionsAccepted, kConnectionsAcceptedHelp, fp,
                       stat(&fastpath::ServerStats::connections_accepted));
  metrics_->AddCounter(kConnectionsRejected, kConnectionsRejectedHelp, fp,
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
                       "Connections closed because they stayed paused (unsent replies at "
                       "--output_soft_limit, not read by the client) for --idle_timeout.",
                       fp, stat(&fastpath::ServerStats::slow_consumer_disconnects));
  metrics_->AddCounter("crabcache_idle_timeout_closes_total",
                       "Connections closed for holding a partial frame longer than --idle_timeout.",
                       fp, stat(&fastpath::ServerStats::idle_timeout_closes));
  metrics_->AddGauge("crabcache_fastpath_buffer_bytes",
                     "Bytes of I/O buffers the fast path holds (scratch, partial frames, unsent "
                     "replies).",
                     {}, stat(&fastpath::ServerStats::buffer_bytes));
  // --- fast path: end ---
  RegisterSecurityMetrics();
}

void Daemon::RegisterSecurityMetrics() {
  constexpr char kAuthFailures[] = "crabcache_auth_failures_total";
  constexpr char kAuthFailuresHelp[] =
      "Requests or connections refused by authentication, by front end and reason (missing: no "
      "token; invalid: wrong token; timeout: no AUTH in time; revoked: token removed by a "
      "reload; rate_limited: gRPC, too many invalid tokens from the address).";
  const service::CacheService* grpc = &grpc_->service();
  for (const auto why : {service::AuthResult::kMissing, service::AuthResult::kInvalid,
                         service::AuthResult::kRevoked, service::AuthResult::kRateLimited}) {
    metrics_->AddCounter(
        kAuthFailures, kAuthFailuresHelp,
        {{"frontend", "grpc"}, {"reason", std::string(service::AuthResultName(why))}},
        [grpc, why] { return static_cast<double>(grpc->auth_failures(why)); });
  }
  const fastpath::Server* fast = fastpath_.get();
  for (size_t i = 0; i < fastpath::kNumAuthFailures; ++i) {
    const auto why = static_cast<fastpath::AuthFailure>(i);
    metrics_->AddCounter(
        kAuthFailures, kAuthFailuresHelp,
        {{"frontend", "fastpath"}, {"reason", std::string(fastpath::AuthFailureName(why))}},
        [fast, i] { return static_cast<double>(fast->Stats().auth_failures[i]); });
  }
  if (tokens_ != nullptr) {
    const auth::TokenStore* tokens = tokens_.get();
    metrics_->AddGauge("crabcache_auth_tokens", "Tokens accepted now (--auth_token_file).", {},
                       [tokens] { return static_cast<double>(tokens->size()); });
    constexpr char kReloads[] = "crabcache_auth_reloads_total";
    constexpr char kReloadsHelp[] =
        "Reloads of --auth_token_file (SIGHUP or a change on disk); a failed one keeps the "
        "previous tokens.";
    metrics_->AddCounter(kReloads, kReloadsHelp, {{"result", "success"}}, [this] {
      return static_cast<double>(token_reloads_ok_.load(std::memory_order_relaxed));
    });
    metrics_->AddCounter(kReloads, kReloadsHelp, {{"result", "failure"}}, [this] {
      return static_cast<double>(token_reloads_failed_.load(std::memory_order_relaxed));
    });
  }
  if (!config_.tls_cert.empty()) {
    constexpr char kTlsReloads[] = "crabcache_tls_reloads_total";
    constexpr char kTlsReloadsHelp[] =
        "Changed TLS files taken (success) or refused because they failed the checks (failure: "
        "the previous certificate keeps serving).";
    metrics_->AddCounter(kTlsReloads, kTlsReloadsHelp, {{"result", "success"}}, [this] {
      return static_cast<double>(tls_reloads_ok_.load(std::memory_order_relaxed));
    });
    metrics_->AddCounter(kTlsReloads, kTlsReloadsHelp, {{"result", "failure"}}, [this] {
      return static_cast<double>(tls_reloads_failed_.load(std::memory_order_relaxed));
    });
  }
}

void Daemon::SetNotServing() {
  if (grpc_ != nullptr) grpc_->SetNotServing();
  core::Log(core::LogLevel::kInfo, "health NOT_SERVING");
}

void Daemon::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  if (token_watcher_ != nullptr) token_watcher_->Stop();
  if (tls_watcher_ != nullptr) tls_watcher_->Stop();
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
