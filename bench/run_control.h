// The phases every load engine shares: warm-up (unmeasured), measurement, stop. Workers poll the
// phase; the controlling thread drives it, reads the clock and calls the progress hooks.
#ifndef CRABCACHE_BENCH_RUN_CONTROL_H_
#define CRABCACHE_BENCH_RUN_CONTROL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
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

// Runs `run(worker)` for every worker on a thread of its own while this thread drives `control`
// through the phases, then merges every worker's result() into `total` (its seconds set from
// the measurement) or returns the run's failure as kDataLoss. Shared by every load engine.
template <typename Worker, typename Result, typename Run>
absl::StatusOr<Result> DriveWorkers(const LoadOptions& options, RunControl& control,
                                    std::vector<std::unique_ptr<Worker>>& workers, Result total,
                                    Run run) {
  std::vector<std::thread> running;
  running.reserve(workers.size());
  for (auto& w : workers) running.emplace_back([&w, &run] { run(*w); });
  total.seconds = control.Drive(options);
  for (auto& t : running) t.join();
  if (std::string failure = control.failure(); !failure.empty()) {
    return absl::DataLossError(failure);
  }
  for (auto& w : workers) total.Merge(w->result());
  return total;
}

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_RUN_CONTROL_H_
