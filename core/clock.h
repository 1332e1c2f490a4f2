// Monotonic time for TTLs, behind a seam so tests never sleep to wait for expiry.
#ifndef CRABCACHE_CORE_CLOCK_H_
#define CRABCACHE_CORE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace crabcache::core {

// Milliseconds on a monotonic clock. Only differences are meaningful.
using Millis = uint64_t;

// A source of monotonic time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis NowMs() const = 0;
};

// std::chrono::steady_clock. Stateless; the returned object lives forever.
const Clock* SystemClock();

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(Millis start = 1'000'000) : now_(start) {}
  Millis NowMs() const override { return now_.load(std::memory_order_acquire); }
  void Advance(Millis delta) { now_.fetch_add(delta, std::memory_order_acq_rel); }
  void Set(Millis now) { now_.store(now, std::memory_order_release); }

 private:
  std::atomic<Millis> now_;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_CLOCK_H_
