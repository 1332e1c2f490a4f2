// The background thread that reclaims expired entries incrementally.
#ifndef CRABCACHE_CORE_SWEEPER_H_
#define CRABCACHE_CORE_SWEEPER_H_

#include <condition_variable>
#include <cstddef>
#include <thread>

#include "absl/time/time.h"
#include "core/mutex.h"
#include "core/store.h"

namespace crabcache::core {

// Every `interval`, reclaims at most `budget_per_shard` expired entries in each shard (so no tick
// stops the world), and repeats at once while a tick used its whole budget.
//
// Thread-safety: Start and Stop are called from one owning thread. Ownership: `store` is not
// owned and must outlive the sweeper. The destructor stops the thread.
class ExpirySweeper {
 public:
  ExpirySweeper(Store* store, absl::Duration interval, size_t budget_per_shard);
  ~ExpirySweeper();
  ExpirySweeper(const ExpirySweeper&) = delete;
  ExpirySweeper& operator=(const ExpirySweeper&) = delete;

  void Start();
  void Stop();

 private:
  void Run();

  // Immutable after construction.
  Store* const store_;
  const absl::Duration interval_;
  const size_t budget_per_shard_;

  // Owned by the thread that calls Start/Stop.
  std::thread thread_;

  Mutex mu_;
  std::condition_variable_any wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_SWEEPER_H_
