// Serves /metrics (and nothing else) over HTTP with prometheus-cpp's pull exposer.
#ifndef CRABCACHE_SERVER_METRICS_EXPOSER_H_
#define CRABCACHE_SERVER_METRICS_EXPOSER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

namespace prometheus {
class Exposer;
}

namespace crabcache::server {

// Thread-safety: the exposer serves scrapes from its own threads; this object is owned and
// destroyed by one thread. Destroying it stops serving before `collectable` may go away.
class MetricsExposer {
 public:
  // `address` is host:port ("0.0.0.0:9090", "127.0.0.1:0" for an ephemeral port).
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Collectable> collectable);
  ~MetricsExposer();

  int port() const { return port_; }

 private:
  MetricsExposer(std::unique_ptr<prometheus::Exposer> exposer, int port);

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_;
};

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_METRICS_EXPOSER_H_
