#include "core/clock.h"

#include <chrono>

namespace crabcache::core {
namespace {

class SteadyClock final : public Clock {
 public:
  Millis NowMs() const override {
    return static_cast<Millis>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
  }
};

}  // namespace

const Clock* SystemClock() {
  static const SteadyClock* const clock = new SteadyClock();
  return clock;
}

}  // namespace crabcache::core
