// Prometheus metrics for crabcached, collected at scrape time.
//
// The executor calls RecordBatch once per batch. Each thread that records owns a private block of
// counters (taken from a registry on its first batch, handed back when the thread exits, reused by
// the next new thread), so recording is a handful of plain relaxed loads and stores to memory no
// other thread writes: no atomic read-modify-write, no shared cache line, nothing summed until
// Prometheus scrapes. Everything else (store size, connections, streams, protocol errors, bytes)
// is read at scrape time from callbacks the front ends register.
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
  struct Source {
    std::string name;
    std::string help;
    bool counter;
    Labels labels;
    std::function<double()> read;
  };

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
  static constexpr size_t kCmdCells = core::kNumCommands * core::kNumOutcomes;

  // A counter with exactly one writer at a time: Add is a relaxed load and store (no locked
  // instruction); readers on other threads load it relaxed.
  struct Cell {
    std::atomic<uint64_t> v{0};
    void Add(uint64_t n) {
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t Get() const { return v.load(std::memory_order_relaxed); }
  };
  struct PerFrontend {
    std::array<Cell, kCmdCells> commands;
    std::array<Cell, kBatchCommandBuckets.size() + 1> size_buckets;
    std::array<Cell, kBatchSecondsBuckets.size() + 1> latency_buckets;
    Cell size_sum;
    Cell latency_sum_ns;
  };
  // One thread's counters. Cache-line aligned so two threads never share a line.
  struct alignas(64) Block {
    std::array<PerFrontend, core::kNumFrontends> fe;
  };
  class BlockRegistry;
  class ThreadSlot;

  Block& MyBlock();
  void AddSource(Source source);
  void CollectBatches(std::vector<prometheus::MetricFamily>* out) const;

  // Immutable after construction.
  const uint64_t id_;  // Unique per instance, so a thread's cached block is never mistaken.
  const std::string version_;
  const std::string git_commit_;
  // Shared with the thread-local slots, which may outlive this object.
  const std::shared_ptr<BlockRegistry> registry_;

  mutable core::Mutex mu_;
  std::vector<Source> sources_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_METRICS_H_
