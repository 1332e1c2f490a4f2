// The phases every load engine shares: warm-up (unmeasured), measurement, stop. Workers poll the
// phase; the controlling thread drives it, reads the clock and calls the progress hooks.
#ifndef CRABCACHE_BENCH_RUN_CONTROL_H_
#define CRABCACHE_BENCH_RUN_CONTROL_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "core/mutex.h"

namespace crabcache::bench {

struct LoadOptions;

// Monotonic nanoseconds.
uint64_t NowNs();

// Thread-safe: workers call measuring()/stopping()/AddMeasured()/Fail() concurrently with Drive().
class RunControl {
 public:
  bool measuring() const { return phase_.load(std::memory_order_relaxed) == kMeasuring; }
  bool stopping() const { return phase_.load(std::memory_order_relaxed) == kStopping; }
  // Workers report measured requests in batches (once per reply batch, not per request).
  void AddMeasured(uint64_t ops) { measured_.fetch_add(ops, std::memory_order_relaxed); }
  // Records the first failure and stops the run.
  void Fail(std::string message);
  // Stops the run without a failure (e.g. every worker ended on its own).
  void Stop() { phase_.store(kStopping); }
  // Empty when nothing failed.
  std::string failure() const;

  // Runs on the controlling thread while workers run: warm-up, then measurement until the
  // duration or request count is reached (or a failure), then the stop phase. Returns the
  // measured seconds (0 if the run failed or stopped during warm-up).
  double Drive(const LoadOptions& options);

 private:
  enum Phase : int { kWarmup = 0, kMeasuring = 1, kStopping = 2 };

  std::atomic<int> phase_{kWarmup};
  std::atomic<uint64_t> measured_{0};
  mutable core::Mutex mu_;
  std::string failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_RUN_CONTROL_H_
