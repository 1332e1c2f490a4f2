// Prometheus metrics for crabcached, collected at scrape time.
//
// The executor calls RecordBatch once per batch. Counts land in one of a few cache-line-aligned
// stripes (a thread keeps its stripe), as relaxed atomic adds on memory other threads rarely
// touch: no contended atomic per command, and nothing is summed until Prometheus scrapes.
// Everything else (store size, connections, streams, protocol errors, bytes) is read at scrape
// time from callbacks the front ends register.
#ifndef CRABCACHE_SERVER_METRICS_H_
#define CRABCACHE_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "core/mutex.h"
#include "core/store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace crabcache::server {

// Upper bounds of the histogram buckets (+Inf is implicit).
inline constexpr std::array<double, 13> kBatchCommandBuckets = {1,   2,   4,   8,    16,   32,   64,
                                                                128, 256, 512, 1024, 4096, 16384};
inline constexpr std::array<double, 15> kBatchSecondsBuckets = {
    2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5,   1e-4, 2.5e-4, 5e-4,
    1e-3,   2.5e-3, 5e-3, 1e-2,   2.5e-2, 5e-2, 1e-1};

// Thread-safety: RecordBatch and Collect may run concurrently from any threads. Add* calls are
// made during start-up, before the exposer serves; they are guarded anyway.
// Ownership: the callbacks' captured objects must outlive scraping (stop the exposer first).
class Metrics final : public core::MetricsSink, public prometheus::Collectable {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  Metrics(std::string version, std::string git_commit);
  ~Metrics() override;

  // core::MetricsSink
  void RecordBatch(const core::BatchMetrics& batch) override;

  // Scrape-time samples. All samples of one name must share type and help.
  void AddCounter(const std::string& name, const std::string& help, Labels labels,
                  std::function<double()> read);
  void AddGauge(const std::string& name, const std::string& help, Labels labels,
                std::function<double()> read);
  // Keys, memory used/limit, evictions (by policy) and expirations of `store` (not owned).
  void AddStore(const core::Store* store);

  // prometheus::Collectable
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  static constexpr size_t kStripes = 16;
  static constexpr size_t kCmdCells = core::kNumCommands * core::kNumOutcomes;

  struct PerFrontend {
    std::array<std::atomic<uint64_t>, kCmdCells> commands{};
    std::array<std::atomic<uint64_t>, kBatchCommandBuckets.size() + 1> size_buckets{};
    std::array<std::atomic<uint64_t>, kBatchSecondsBuckets.size() + 1> latency_buckets{};
    std::atomic<uint64_t> size_sum{0};
    std::atomic<uint64_t> latency_sum_ns{0};
  };
  struct alignas(64) Stripe {
    std::array<PerFrontend, core::kNumFrontends> fe;
  };
  struct Source {
    std::string name;
    std::string help;
    bool counter;
    Labels labels;
    std::function<double()> read;
  };

  Stripe& MyStripe();
  void AddSource(Source source);
  void CollectBatches(std::vector<prometheus::MetricFamily>* out) const;

  // Immutable after construction.
  const std::string version_;
  const std::string git_commit_;
  const std::unique_ptr<Stripe[]> stripes_;

  std::atomic<size_t> next_stripe_{0};

  mutable core::Mutex mu_;
  std::vector<Source> sources_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_METRICS_H_
