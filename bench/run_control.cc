#include "bench/run_control.h"

#include <time.h>

#include <chrono>
#include <thread>

#include "bench/options.h"

namespace crabcache::bench {
namespace {

// How often the controlling thread wakes: rare enough to cost nothing next to the load, often
// enough that --requests overshoots little.
constexpr auto kTick = std::chrono::milliseconds(5);

}  // namespace

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
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
  while (NowNs() < warmup_end && !stopping()) std::this_thread::sleep_for(kTick);
  int expected = kWarmup;
  if (!phase_.compare_exchange_strong(expected, kMeasuring)) return 0;
  if (options.on_measure_start) options.on_measure_start();
  const uint64_t start = NowNs();
  const uint64_t end =
      options.requests > 0 ? UINT64_MAX : start + static_cast<uint64_t>(options.duration_s * 1e9);
  uint64_t last_progress = start;
  uint64_t now = start;
  while (now < end && !stopping()) {
    std::this_thread::sleep_for(kTick);
    now = NowNs();
    const uint64_t done = measured_.load(std::memory_order_relaxed);
    if (options.requests > 0 && done >= options.requests) break;
    if (options.progress && now - last_progress >= 1'000'000'000ull) {
      last_progress = now;
      options.progress(done, static_cast<double>(now - start) / 1e9);
    }
  }
  // The measured window closes here for the clock, the server's CPU and the workers alike
  // (replies that arrive later are not counted).
  expected = kMeasuring;
  const bool ended_normally = phase_.compare_exchange_strong(expected, kStopping);
  const uint64_t stop = NowNs();
  if (options.on_measure_end) options.on_measure_end();
  return ended_normally ? static_cast<double>(stop - start) / 1e9 : 0;
}

}  // namespace crabcache::bench
