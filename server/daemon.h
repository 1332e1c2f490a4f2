// crabcached as one object: the store, the executor, both front ends, the sweeper and the
// metrics exposer, started in dependency order and stopped in reverse.
#ifndef CRABCACHE_SERVER_DAEMON_H_
#define CRABCACHE_SERVER_DAEMON_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/executor.h"
#include "core/store.h"
#include "core/sweeper.h"
#include "fastpath/server.h"
#include "fastpath/token_store.h"
#include "server/config.h"
#include "server/file_watcher.h"
#include "server/metrics.h"
#include "server/metrics_exposer.h"
#include "service/grpc_server.h"

namespace crabcache::server {

// The ports every listener actually bound (0: that listener is off).
struct BoundPorts {
  int fastpath = 0;
  int grpc = 0;
  int health = 0;
  int metrics = 0;
};

// Thread-safety: Start, then SetNotServing and Shutdown from one controlling thread (main);
// the components run their own threads. Ownership: owns everything it starts. Destroying a
// Daemon that was not shut down shuts it down at once.
class Daemon {
 public:
  // Starts every component; on failure stops what was started and returns why (kUnavailable
  // for an address that cannot be bound, kInvalidArgument for a bad option).
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const Config& config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const BoundPorts& ports() const { return ports_; }

  // SIGHUP: re-reads the token file and the TLS files now. A file that fails its checks is
  // refused (logged and counted) and the previous tokens or certificate stay; a new certificate
  // reaches new handshakes within service::kGrpcRefreshSeconds. The same runs on its own when the
  // files change on disk (checked every --reload_interval). Thread-safe.
  void Reload();

  // First step of a graceful stop: health answers NOT_SERVING; everything keeps serving.
  void SetNotServing();
  // Stops accepting, lets in-flight work finish until `deadline`, then closes what is left and
  // stops the sweeper and the metrics listener. Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  explicit Daemon(const Config& config);
  absl::Status StartComponents();
  absl::Status StartSecurity();
  void RegisterFrontendMetrics();
  void RegisterSecurityMetrics();
  void ReloadTokens(std::string_view trigger);
  void CheckTls(std::string_view trigger);

  // Immutable after construction.
  const Config config_;

  // Declaration order is construction order; destruction runs in reverse, so the exposer stops
  // scraping before the objects its callbacks read go away.
  std::unique_ptr<core::Store> store_;
  // Null without --auth_token_file. Both front ends read it; reloads replace its contents.
  std::unique_ptr<auth::TokenStore> tokens_;
  std::shared_ptr<Metrics> metrics_;
  std::unique_ptr<core::Executor> executor_;
  std::unique_ptr<core::ExpirySweeper> sweeper_;
  std::unique_ptr<service::GrpcFrontend> grpc_;
  // --- fast path: members ---
  std::unique_ptr<fastpath::Server> fastpath_;
  // --- fast path: end ---
  std::unique_ptr<MetricsExposer> exposer_;
  // Declared after everything they reload, so they stop first.
  std::unique_ptr<FileWatcher> token_watcher_;
  std::unique_ptr<FileWatcher> tls_watcher_;
  BoundPorts ports_;
  bool shut_down_ = false;

  // Serialises reloads (SIGHUP on the main thread, file changes on the watchers' threads).
  core::Mutex reload_mu_;
  // Token file reloads that succeeded / failed (the start-up load not included). For metrics.
  std::atomic<uint64_t> token_reloads_ok_{0};
  std::atomic<uint64_t> token_reloads_failed_{0};
  std::atomic<uint64_t> tls_reloads_ok_{0};
  std::atomic<uint64_t> tls_reloads_failed_{0};
};

// Writes the ready file: {"pid":..,"fastpath_port":..,"grpc_port":..,"health_port":..,
// "metrics_port":..}, atomically (a temporary file renamed into place).
absl::Status WriteReadyFile(const std::string& path, const BoundPorts& ports);

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_DAEMON_H_
