#include "core/sweeper.h"

#include <chrono>

namespace crabcache::core {

ExpirySweeper::ExpirySweeper(Store* store, absl::Duration interval, size_t budget_per_shard)
    : store_(store), interval_(interval), budget_per_shard_(budget_per_shard) {}

ExpirySweeper::~ExpirySweeper() { Stop(); }

void ExpirySweeper::Start() {
  {
    MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void ExpirySweeper::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ExpirySweeper::Run() {
  const auto interval = absl::ToChronoMilliseconds(interval_);
  const size_t full_tick = budget_per_shard_ * store_->num_shards();
  for (;;) {
    // Keep going while ticks come back full: there is a backlog of expired entries.
    while (store_->SweepExpired(store_->Now(), budget_per_shard_) >= full_tick) {
      MutexLock lock(&mu_);
      if (stopping_) return;
    }
    mu_.Lock();
    const bool stop = wake_.wait_for(mu_, interval,
                                     [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_; });
    mu_.Unlock();
    if (stop) return;
  }
}

}  // namespace crabcache::core
