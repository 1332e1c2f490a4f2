#include "bench/run_control.h"

#include <chrono>
#include <thread>

#include "bench/stream_load.h"

namespace crabcache::bench {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void RunControl::Fail(std::string message) {
  {
    core::MutexLock lock(&mu_);
    if (failure_.empty()) failure_ = std::move(message);
  }
  phase_.store(kStopping);
}

std::string RunControl::failure() const {
  core::MutexLock lock(&mu_);
  return failure_;
}

double RunControl::Drive(const LoadOptions& options) {
  const uint64_t warmup_end = NowNs() + static_cast<uint64_t>(options.warmup_s * 1e9);
  while (NowNs() < warmup_end && !stopping()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  int expected = kWarmup;
  if (!phase_.compare_exchange_strong(expected, kMeasuring)) return 0;  // Failed in warm-up.
  if (options.on_measure_start) options.on_measure_start();
  const uint64_t start = NowNs();
  const uint64_t end =
      options.requests > 0 ? UINT64_MAX : start + static_cast<uint64_t>(options.duration_s * 1e9);
  uint64_t last_progress = start;
  while (NowNs() < end && !stopping()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const uint64_t done = measured_.load(std::memory_order_relaxed);
    if (options.requests > 0 && done >= options.requests) break;
    if (options.progress && NowNs() - last_progress >= 1'000'000'000ull) {
      last_progress = NowNs();
      options.progress(done, static_cast<double>(last_progress - start) / 1e9);
    }
  }
  phase_.store(kStopping);
  const uint64_t stop = NowNs();
  if (options.on_measure_end) options.on_measure_end();
  return static_cast<double>(stop - start) / 1e9;
}

}  // namespace crabcache::bench
